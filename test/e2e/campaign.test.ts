/**
 * A Campaign end to end: the operator plans it into slices and assigns them to three senders (two users, a
 * bot) hosted on two runtime pods, the runtimes send through the simulator, and the status, the report and
 * the simulator's own delivery log agree: every deliverable recipient got the message exactly once.
 */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { GROUP, VERSION, type Campaign, type TelegramAccount } from '../../crds/index.js';
import { World } from '../../runtime/simulator/world.js';
import { waitFor } from '../cluster/wait.js';
import {
  BOT_SENDER_TOKEN,
  SENDER_CODE,
  recipientName,
  userSenderPhone,
  writeCampaignWorld,
} from '../support/campaign-world.js';
import { adminKubeConfig, createTestNamespace, testCluster } from '../support/cluster.js';
import { installCrds } from '../support/crds.js';
import { operatorKubeconfig, startOperatorProcess, type OperatorProcess } from '../support/operator.js';
import {
  DEMO_API_CREDENTIALS,
  SECRET_OPT_IN,
  serviceAccountKubeconfig,
  startRuntimeProcess,
  waitForPodReady,
  type RuntimeProcess,
} from '../support/runtime.js';

const run = promisify(execFile);
const plugin = resolve('dist/tools/kubectl-telegram/main.js');
const RECIPIENTS = 1000;
const TEXT = 'Spring sale: everything half price until Sunday.';

describe('a campaign over three senders on two runtime pods', () => {
  const kc = adminKubeConfig();
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  let namespace = '';
  let worldDir = '';
  let operator: OperatorProcess;
  const runtimes: RuntimeProcess[] = [];

  const account = async (name: string): Promise<TelegramAccount> =>
    (await custom.getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: 'telegramaccounts',
      name,
    })) as TelegramAccount;
  const campaign = async (): Promise<Campaign> =>
    (await custom.getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: 'campaigns',
      name: 'spring',
    })) as Campaign;
  const ready = (a: TelegramAccount) =>
    a.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
  const logs = () =>
    `operator:\n${operator.rawOutput().slice(-3000)}\n${runtimes.map((r) => `${r.pod}:\n${r.output().slice(-3000)}`).join('\n---\n')}`;

  beforeAll(async () => {
    await installCrds(kc);
    namespace = await createTestNamespace(kc, 'campaign');
    worldDir = writeCampaignWorld({ recipients: RECIPIENTS, userSenders: 2, bot: true });
    operator = startOperatorProcess(await operatorKubeconfig(), {
      WATCH_NAMESPACE: namespace,
      RUNTIME_BACKEND: 'simulator',
      RUNTIME_ACCOUNTS_PER_POD: '2',
    });
    for (const [name, data] of [
      ['api', DEMO_API_CREDENTIALS],
      ['bot-token', { token: BOT_SENDER_TOKEN }],
    ] as const)
      await core.createNamespacedSecret({
        namespace,
        body: { metadata: { name, labels: SECRET_OPT_IN }, stringData: data },
      });
    const create = (name: string, spec: Record<string, unknown>) =>
      custom.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace,
        plural: 'telegramaccounts',
        body: {
          apiVersion: `${GROUP}/${VERSION}`,
          kind: 'TelegramAccount',
          metadata: { name, labels: { team: 'spring' } },
          spec,
        },
      });
    await create('sender-a', {
      type: 'User',
      phoneNumber: userSenderPhone(0),
      apiCredentialsSecretRef: { name: 'api' },
    });
    await create('sender-b', {
      type: 'User',
      phoneNumber: userSenderPhone(1),
      apiCredentialsSecretRef: { name: 'api' },
    });
    await create('sender-bot', {
      type: 'Bot',
      botTokenSecretRef: { name: 'bot-token' },
      apiCredentialsSecretRef: { name: 'api' },
    });
    const runtimeKubeconfig = await serviceAccountKubeconfig(kc, namespace, 'tdlib-runtime-default');
    for (const pod of ['tdlib-runtime-default-0', 'tdlib-runtime-default-1']) {
      await waitForPodReady(kc, namespace, pod);
      runtimes.push(startRuntimeProcess({ pod, namespace, kubeconfig: runtimeKubeconfig, worldDir }));
    }
    // The user senders log in with the code the world gives them, as a person would with the plugin.
    for (const name of ['sender-a', 'sender-b']) {
      await waitFor(
        `${name} WaitCode`,
        async () => ((await account(name)).status?.authorizationState === 'WaitCode' ? true : undefined),
        {
          timeoutMs: 60_000,
          onTimeout: logs,
        },
      );
      await run(process.execPath, [
        plugin,
        'login',
        name,
        '-n',
        namespace,
        '--kubeconfig',
        testCluster().kubeconfigPath,
        '--code',
        SENDER_CODE,
        '--timeout',
        '60s',
      ]);
    }
    for (const name of ['sender-a', 'sender-b', 'sender-bot'])
      await waitFor(`${name} Ready`, async () => (ready(await account(name)) ? true : undefined), {
        timeoutMs: 60_000,
        onTimeout: logs,
      });
  });

  afterAll(async () => {
    await Promise.all(runtimes.map((r) => r.stop('SIGKILL')));
    await operator?.stop();
  });

  it('delivers to every recipient exactly once, and the status, the report and the delivery log agree', async () => {
    const lines = Array.from({ length: RECIPIENTS }, (_, i) => `@${recipientName(i)}`);
    // Three that cannot get it, each for its own reason; and a duplicate, counted and dropped.
    lines.push('@nobody_by_that_name', 'not a recipient at all', `@${recipientName(0)}`);
    await core.createNamespacedConfigMap({
      namespace,
      body: { metadata: { name: 'spring-list' }, data: { recipients: lines.join('\n') } },
    });
    await custom.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: 'campaigns',
      body: {
        apiVersion: `${GROUP}/${VERSION}`,
        kind: 'Campaign',
        metadata: { name: 'spring' },
        spec: {
          senders: { selector: { matchLabels: { team: 'spring' } } },
          message: { text: TEXT },
          recipients: { configMapRefs: [{ name: 'spring-list' }] },
          pace: { messagesPerMinute: 60_000, perSenderMessagesPerMinute: 30_000 },
        },
      },
    });

    // While it runs, kubectl shows it running with progress.
    const progress = await waitFor(
      'kubectl get tgc to show the campaign running with progress',
      async () => {
        const { stdout } = await run('kubectl', [
          '--kubeconfig',
          testCluster().kubeconfigPath,
          'get',
          'tgc',
          '-n',
          namespace,
          '--no-headers',
        ]);
        const cols = stdout.trim().split(/\s+/);
        return cols[1] === 'Running' && Number(cols[2]) > 0 ? stdout : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 200, onTimeout: logs },
    );
    expect(progress).toContain('spring');

    const done = await waitFor(
      'the campaign to complete',
      async () => {
        const c = await campaign();
        return c.status?.phase === 'Completed' ? c : undefined;
      },
      { timeoutMs: 240_000, intervalMs: 500, onTimeout: logs },
    );
    const status = done.status ?? {};
    expect(status).toMatchObject({
      total: RECIPIENTS + 2,
      duplicates: 1,
      sent: RECIPIENTS,
      failed: 2,
      pending: 0,
      inDoubt: 0,
    });
    expect(status.failures).toEqual({ UsernameNotFound: 1, InvalidRecipient: 1 });

    // The simulator's own delivery log: every recipient exactly once, from the sender the status names.
    const deliveries = World.open(worldDir).deliveries((d) => d.status === 'delivered' && d.text === TEXT);
    const perRecipient = new Map<number, number>();
    for (const d of deliveries) perRecipient.set(d.to, (perRecipient.get(d.to) ?? 0) + 1);
    expect(perRecipient.size).toBe(RECIPIENTS);
    expect([...perRecipient.values()].every((n) => n === 1)).toBe(true);
    const bySenderId = new Map<number, number>();
    for (const d of deliveries) bySenderId.set(d.from, (bySenderId.get(d.from) ?? 0) + 1);
    const senderIds = await Promise.all(
      ['sender-a', 'sender-b', 'sender-bot'].map(
        async (n) => [n, (await account(n)).status?.user?.id ?? 0] as const,
      ),
    );
    for (const [name, id] of senderIds)
      expect(status.senders?.find((s) => s.name === name)?.sent ?? 0).toBe(bySenderId.get(id) ?? 0);
    // Every sender took part.
    expect(senderIds.every(([, id]) => (bySenderId.get(id) ?? 0) > 0)).toBe(true);

    // The report lists every recipient, with its outcome and, for failures, why.
    const { stdout: report } = await run(
      process.execPath,
      [
        plugin,
        'campaign',
        'report',
        'spring',
        '-n',
        namespace,
        '--kubeconfig',
        testCluster().kubeconfigPath,
        '-o',
        'csv',
      ],
      { maxBuffer: 64 * 1024 * 1024 },
    );
    const rows = report.trim().split('\n');
    expect(rows[0]).toBe('recipient,sender,outcome,reason,time');
    expect(rows).toHaveLength(RECIPIENTS + 2 + 1);
    expect(rows.filter((r) => r.includes(',Sent,'))).toHaveLength(RECIPIENTS);
    expect(rows.find((r) => r.startsWith('@nobody_by_that_name'))).toContain('Failed,UsernameNotFound');
  });
});
