/**
 * A Campaign end to end: the operator plans it into slices and assigns them to three senders (two users, a
 * bot) hosted on two runtime pods, the runtimes send through the simulator, and the status, the report and
 * the simulator's own delivery log agree: every deliverable recipient got the message exactly once.
 */
import { waitFor } from '../cluster/wait.js';
import { recipientName } from '../support/campaign-world.js';
import {
  perRecipient,
  plugin,
  run,
  startCampaignScene,
  type CampaignScene,
} from '../support/campaign-scene.js';
import { testCluster } from '../support/cluster.js';

const RECIPIENTS = 1000;
const TEXT = 'Spring sale: everything half price until Sunday.';

describe('a campaign over three senders on two runtime pods', () => {
  let scene: CampaignScene;

  beforeAll(async () => {
    scene = await startCampaignScene({
      prefix: 'campaign',
      world: { recipients: RECIPIENTS, userSenders: 2, bot: true },
      senders: [
        { name: 'sender-a', kind: 'user', index: 0 },
        { name: 'sender-b', kind: 'user', index: 1 },
        { name: 'sender-bot', kind: 'bot', index: 0 },
      ],
      pods: 2,
      accountsPerPod: 2,
    });
  });

  afterAll(() => scene?.stop());

  it('delivers to every recipient exactly once, and the status, the report and the delivery log agree', async () => {
    const lines = Array.from({ length: RECIPIENTS }, (_, i) => `@${recipientName(i)}`);
    // Two that cannot get it, each for its own reason; and a duplicate, counted and dropped.
    lines.push('@nobody_by_that_name', 'not a recipient at all', `@${recipientName(0)}`);
    await scene.recipientList('spring-list', lines);
    await scene.createCampaign('spring', {
      senders: { selector: { matchLabels: { role: 'sender' } } },
      message: { text: TEXT },
      recipients: { configMapRefs: [{ name: 'spring-list' }] },
      pace: { messagesPerMinute: 60_000, perSenderMessagesPerMinute: 30_000 },
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
          scene.namespace,
          '--no-headers',
        ]);
        const cols = stdout.trim().split(/\s+/);
        return cols[1] === 'Running' && Number(cols[2]) > 0 ? stdout : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 200, onTimeout: scene.logs },
    );
    expect(progress).toContain('spring');

    const done = await scene.waitForPhase('spring', 'Completed', 240_000);
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
    const deliveries = scene.deliveries(TEXT);
    const counts = perRecipient(deliveries);
    expect(counts.size).toBe(RECIPIENTS);
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
    const bySenderId = new Map<number, number>();
    for (const d of deliveries) bySenderId.set(d.from, (bySenderId.get(d.from) ?? 0) + 1);
    const senderIds = await Promise.all(
      ['sender-a', 'sender-b', 'sender-bot'].map(
        async (n) => [n, (await scene.account(n)).status?.user?.id ?? 0] as const,
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
        scene.namespace,
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
