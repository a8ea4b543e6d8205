/**
 * A runtime killed with SIGKILL: its heartbeat stops, the operator moves its accounts to another pod, and
 * the new pod restores the session from the backup Secret after the old account Lease expired: no new login,
 * and never two live clients on one session. Breaking the fence on purpose shows what it prevents.
 */
import * as k8s from '@kubernetes/client-node';
import { GROUP, VERSION, type TelegramAccount } from '../../crds/index.js';
import { World } from '../../runtime/simulator/world.js';
import { waitFor } from '../cluster/wait.js';
import { adminKubeConfig } from '../support/cluster.js';
import type { OperatorProcess } from '../support/operator.js';
import {
  serviceAccountKubeconfig,
  startRuntimeProcess,
  waitForPodReady,
  type RuntimeProcess,
  getTelegramAccount,
  startSimulatorScene,
} from '../support/runtime.js';

const BOT_USER_ID = 7000000001;

describe('runtime fail-over (SIGKILL) and the session fence', () => {
  const kc = adminKubeConfig();
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  let namespace = '';
  let worldDir = '';
  let operator: OperatorProcess;
  let runtimeKubeconfig = '';
  const runtimes: RuntimeProcess[] = [];

  const getAccount = (name: string) => getTelegramAccount(custom, namespace, name);
  const ready = (a: TelegramAccount) =>
    a.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
  const waitForAccount = (what: string, test: (a: TelegramAccount) => boolean, timeoutMs = 60_000) =>
    waitFor(
      `mover: ${what}`,
      async () => {
        const a = await getAccount('mover');
        return test(a) ? a : undefined;
      },
      {
        timeoutMs,
        intervalMs: 200,
        onTimeout: () => runtimes.map((r) => `${r.pod}:\n${r.output().slice(-2500)}`).join('\n---\n'),
      },
    );
  const podReady = (name: string) => waitForPodReady(kc, namespace, name);
  const startRuntime = (pod: string, env: Record<string, string> = {}) => {
    const r = startRuntimeProcess({ pod, namespace, kubeconfig: runtimeKubeconfig, worldDir, env });
    runtimes.push(r);
    return r;
  };
  const botSessions = () =>
    World.open(worldDir)
      .sessions()
      .filter((s) => s.user_id === BOT_USER_ID);
  const duplicateKills = () =>
    World.open(worldDir)
      .events()
      .filter((e) => e.type === 'auth_key_duplicated');

  beforeAll(async () => {
    ({ namespace, worldDir, operator } = await startSimulatorScene(kc, 'failover'));
    await custom.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: 'telegramaccounts',
      body: {
        apiVersion: `${GROUP}/${VERSION}`,
        kind: 'TelegramAccount',
        metadata: { name: 'mover' },
        spec: {
          type: 'Bot',
          botTokenSecretRef: { name: 'bot-token' },
          apiCredentialsSecretRef: { name: 'api' },
        },
      },
    });
    await podReady('tdlib-runtime-default-0');
    runtimeKubeconfig = await serviceAccountKubeconfig(kc, namespace, 'tdlib-runtime-default');
  });

  afterAll(async () => {
    await Promise.all(runtimes.map((r) => r.stop('SIGKILL')));
    await operator.stop();
  });

  it('moves the accounts of a SIGKILLed runtime to another pod and restores the session without a new login', async () => {
    startRuntime('tdlib-runtime-default-0');
    await waitForAccount(
      'Ready on pod 0',
      (a) => ready(a) && a.status?.placement?.pod === 'tdlib-runtime-default-0',
    );
    await waitFor(
      'the session backup',
      async () => {
        const s = await core.readNamespacedSecret({ namespace, name: 'mover-tdlib-session' });
        return s.data?.session ? true : undefined;
      },
      { timeoutMs: 15_000 },
    );
    const sessionsBefore = botSessions();
    expect(sessionsBefore).toHaveLength(1);

    await runtimes[0]?.stop('SIGKILL');
    const moved = await waitForAccount(
      'placed on pod 1',
      (a) => a.status?.placement?.pod === 'tdlib-runtime-default-1',
    );
    expect(moved.status?.conditions?.find((c) => c.type === 'Scheduled')?.status).toBe('True');
    await podReady('tdlib-runtime-default-1');
    startRuntime('tdlib-runtime-default-1');
    await waitForAccount(
      'Ready on pod 1',
      (a) => ready(a) && a.status?.placement?.pod === 'tdlib-runtime-default-1',
    );

    // The same Telegram session (auth key) continues: no second login, no duplicate-session kill.
    const sessionsAfter = botSessions();
    expect(sessionsAfter.map((s) => s.auth_key)).toEqual(sessionsBefore.map((s) => s.auth_key));
    expect(sessionsAfter.every((s) => s.revoked === undefined)).toBe(true);
    expect(
      World.open(worldDir)
        .events()
        .filter((e) => e.type === 'login' && e.user_id === BOT_USER_ID),
    ).toHaveLength(1);
    expect(duplicateKills()).toEqual([]);
  });

  it('shows what the fence prevents: a second client on the session without the Lease gets it killed', async () => {
    // A rogue runtime that claims the same pod but skips the Leases; its empty volume makes it restore the
    // session backup, i.e. the same auth key the legitimate pod is using.
    startRuntime('tdlib-runtime-default-1', { RUNTIME_UNSAFE_DISABLE_FENCE: 'true' });
    await waitFor(
      'the simulator to kill the duplicated session',
      () => (duplicateKills().length > 0 ? true : undefined),
      {
        timeoutMs: 30_000,
        onTimeout: () => `rogue:\n${runtimes[runtimes.length - 1]?.output().slice(-4000) ?? ''}`,
      },
    );
    expect(botSessions().some((s) => s.revoked?.reason === 'AUTH_KEY_DUPLICATED')).toBe(true);
  });
});
