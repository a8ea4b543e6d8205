/**
 * What every campaign end-to-end test starts from: CRDs, a namespace, a campaign world, the operator with
 * simulator runtimes, the senders' Secrets and TelegramAccounts (user senders logged in with the plugin, as a
 * person would), and a runtime process for every runtime pod kwok runs. Plus the reads the tests share.
 */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { GROUP, VERSION, type Campaign, type TelegramAccount } from '../../crds/index.js';
import { World, type Delivery } from '../../runtime/simulator/world.js';
import { waitFor } from '../cluster/wait.js';
import {
  SENDER_CODE,
  botToken,
  userSenderPhone,
  writeCampaignWorld,
  type CampaignWorldOptions,
} from './campaign-world.js';
import { adminKubeConfig, createTestNamespace, testCluster } from './cluster.js';
import { installCrds } from './crds.js';
import { operatorKubeconfig, startOperatorProcess, type OperatorProcess } from './operator.js';
import {
  DEMO_API_CREDENTIALS,
  SECRET_OPT_IN,
  getTelegramAccount,
  serviceAccountKubeconfig,
  startRuntimeProcess,
  waitForPodReady,
  type RuntimeProcess,
} from './runtime.js';

export const run = promisify(execFile);
export const plugin = resolve('dist/tools/kubectl-telegram/main.js');

export interface SenderSpec {
  name: string;
  kind: 'user' | 'bot';
  /** Which of the world's user senders or bots. */
  index: number;
}

export interface CampaignScene {
  namespace: string;
  worldDir: string;
  operator: OperatorProcess;
  runtimes: RuntimeProcess[];
  runtimeKubeconfig: string;
  account(name: string): Promise<TelegramAccount>;
  campaign(name: string): Promise<Campaign>;
  createCampaign(name: string, spec: Record<string, unknown>): Promise<void>;
  patchCampaign(name: string, spec: Record<string, unknown>): Promise<void>;
  recipientList(name: string, lines: string[]): Promise<void>;
  /** Delivered messages with `text`, from the simulator's own log. */
  deliveries(text: string): Delivery[];
  waitForPhase(name: string, phase: string, timeoutMs?: number): Promise<Campaign>;
  /** The runtime process playing `pod`, if one runs. */
  runtime(pod: string): RuntimeProcess | undefined;
  /**
   * Starts the runtime process for `pod` (once kwok reports it Ready), on the volume it had before if it ran
   * here already: what a kubelet does when it (re)starts a container.
   */
  startRuntime(pod: string, env?: Record<string, string>): Promise<RuntimeProcess>;
  /**
   * Plays the kubelet once: starts a runtime for every pod an account of the scene is placed on that has no
   * running process (pods in `lost` stay down: their node is gone). Returns the pods it started.
   */
  kubelet(lost?: ReadonlySet<string>): Promise<string[]>;
  logs(): string;
  stop(): Promise<void>;
}

const kc = adminKubeConfig();
/** The operator's grace before a sender that just became Ready gets work, plus a second of clock rounding. */
const SENDER_SETTLED_MS = 6000;

export async function startCampaignScene(options: {
  prefix: string;
  world: CampaignWorldOptions;
  senders: SenderSpec[];
  pods: number;
  accountsPerPod: number;
  /** Environment of every runtime process the scene starts. */
  runtimeEnv?: Record<string, string>;
  /** Extra environment of the operator (its settings, operator/config.ts). */
  operatorEnv?: Record<string, string>;
}): Promise<CampaignScene> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  await installCrds(kc);
  const namespace = await createTestNamespace(kc, options.prefix);
  const worldDir = writeCampaignWorld(options.world);
  const operator = startOperatorProcess(await operatorKubeconfig(), {
    WATCH_NAMESPACE: namespace,
    RUNTIME_BACKEND: 'simulator',
    RUNTIME_ACCOUNTS_PER_POD: String(options.accountsPerPod),
    ...options.operatorEnv,
  });
  const runtimes: RuntimeProcess[] = [];
  const account = (name: string): Promise<TelegramAccount> => getTelegramAccount(custom, namespace, name);
  const campaign = async (name: string): Promise<Campaign> =>
    (await custom.getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: 'campaigns',
      name,
    })) as Campaign;
  const logs = (): string =>
    `operator:\n${operator.rawOutput().slice(-3000)}\n${runtimes.map((r) => `${r.pod}:\n${r.output().slice(-3000)}`).join('\n---\n')}`;
  let runtimeKubeconfig = '';
  const stop = async (): Promise<void> => {
    await Promise.all(runtimes.map((r) => r.stop('SIGKILL')));
    await operator.stop();
  };
  // A scene that fails to come up stops what it started: no process outlives the test file.
  try {
    const secrets: Array<[string, Record<string, string>]> = [['api', DEMO_API_CREDENTIALS]];
    for (const s of options.senders)
      if (s.kind === 'bot') secrets.push([`${s.name}-token`, { token: botToken(s.index) }]);
    for (const [name, data] of secrets)
      await core.createNamespacedSecret({
        namespace,
        body: { metadata: { name, labels: SECRET_OPT_IN }, stringData: data },
      });
    for (const s of options.senders)
      await custom.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace,
        plural: 'telegramaccounts',
        body: {
          apiVersion: `${GROUP}/${VERSION}`,
          kind: 'TelegramAccount',
          metadata: { name: s.name, labels: { role: 'sender' } },
          spec:
            s.kind === 'user'
              ? {
                  type: 'User',
                  phoneNumber: userSenderPhone(s.index),
                  apiCredentialsSecretRef: { name: 'api' },
                }
              : {
                  type: 'Bot',
                  botTokenSecretRef: { name: `${s.name}-token` },
                  apiCredentialsSecretRef: { name: 'api' },
                },
        },
      });
    runtimeKubeconfig = await serviceAccountKubeconfig(kc, namespace, 'tdlib-runtime-default');
    for (let i = 0; i < options.pods; i++) {
      const pod = `tdlib-runtime-default-${i}`;
      await waitForPodReady(kc, namespace, pod);
      runtimes.push(
        startRuntimeProcess({
          pod,
          namespace,
          kubeconfig: runtimeKubeconfig,
          worldDir,
          env: options.runtimeEnv,
        }),
      );
    }
    for (const s of options.senders.filter((x) => x.kind === 'user')) {
      await waitFor(
        `${s.name} WaitCode`,
        async () => ((await account(s.name)).status?.authorizationState === 'WaitCode' ? true : undefined),
        {
          timeoutMs: 60_000,
          onTimeout: logs,
        },
      );
      await run(process.execPath, [
        plugin,
        'login',
        s.name,
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
    // Ready, and for longer than the operator's grace (5 s) before a new sender takes work: as accounts are
    // when a user applies a campaign, so every sender starts with its share.
    for (const s of options.senders)
      await waitFor(
        `${s.name} Ready for 5 s`,
        async () => {
          const ready = (await account(s.name)).status?.conditions?.find(
            (c) => c.type === 'Ready' && c.status === 'True',
          );
          return ready && Date.now() - Date.parse(ready.lastTransitionTime ?? '') >= SENDER_SETTLED_MS
            ? true
            : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 250, onTimeout: logs },
      );
  } catch (error) {
    await stop();
    throw error;
  }
  const merge = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
  const running = (pod: string): RuntimeProcess | undefined =>
    runtimes.find((r) => r.pod === pod && r.child.exitCode === null && r.child.signalCode === null);
  const starting = new Set<string>();
  const startRuntime = async (pod: string, env?: Record<string, string>): Promise<RuntimeProcess> => {
    starting.add(pod);
    try {
      await waitForPodReady(kc, namespace, pod);
      const dataDir = runtimes.find((r) => r.pod === pod)?.dataDir;
      const started = startRuntimeProcess({
        pod,
        namespace,
        kubeconfig: runtimeKubeconfig,
        worldDir,
        dataDir,
        env: { ...options.runtimeEnv, ...env },
      });
      runtimes.push(started);
      return started;
    } finally {
      starting.delete(pod);
    }
  };
  return {
    namespace,
    worldDir,
    operator,
    runtimes,
    runtimeKubeconfig,
    account,
    campaign,
    logs,
    createCampaign: async (name, spec) => {
      await custom.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace,
        plural: 'campaigns',
        body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'Campaign', metadata: { name }, spec },
      });
    },
    patchCampaign: async (name, spec) => {
      await custom.patchNamespacedCustomObject(
        { group: GROUP, version: VERSION, namespace, plural: 'campaigns', name, body: { spec } },
        merge,
      );
    },
    recipientList: async (name, lines) => {
      await core.createNamespacedConfigMap({
        namespace,
        body: { metadata: { name }, data: { recipients: lines.join('\n') } },
      });
    },
    deliveries: (text) => World.open(worldDir).deliveries((d) => d.status === 'delivered' && d.text === text),
    waitForPhase: (name, phase, timeoutMs = 180_000) => {
      let last: Campaign | undefined;
      return waitFor(
        `campaign ${name} ${phase}`,
        async () => {
          last = await campaign(name);
          return last.status?.phase === phase ? last : undefined;
        },
        {
          timeoutMs,
          intervalMs: 250,
          onTimeout: () => `last status: ${JSON.stringify(last?.status)}\n${logs()}`,
        },
      );
    },
    runtime: running,
    startRuntime,
    kubelet: async (lost = new Set()) => {
      const placed = new Set<string>();
      for (const s of options.senders) {
        const pod = (await account(s.name)).status?.placement?.pod;
        if (pod && !lost.has(pod) && !running(pod) && !starting.has(pod)) placed.add(pod);
      }
      for (const pod of placed) await startRuntime(pod);
      return [...placed];
    },
    stop,
  };
}

/** How many times each recipient got a message, by recipient user id. */
export function perRecipient(deliveries: readonly Delivery[]): Map<number, number> {
  const counts = new Map<number, number>();
  for (const d of deliveries) counts.set(d.to, (counts.get(d.to) ?? 0) + 1);
  return counts;
}
