/**
 * The session fence end to end (operator, kwok pods, runtime processes on the simulator): a runtime that is
 * killed, paused past its Lease and resumed, or cut off by a paused API server. Whatever happens, the world
 * (the simulated Telegram) must never see two live clients on one session, the newest backup must survive, a
 * pod that lost an account must never write its status again, and Ready must say what is true.
 */
import * as k8s from '@kubernetes/client-node';
import {
  ConditionType,
  GROUP,
  TelegramAccountResource,
  VERSION,
  findCondition,
  type TelegramAccount,
} from '../../crds/index.js';
import { RestClient } from '../../operator/kube/client.js';
import { createLogger } from '../../operator/kube/logging.js';
import { createRegistry } from '../../operator/kube/metrics.js';
import { Informer } from '../../operator/kube/reflector.js';
import type { ApiObject } from '../../operator/kube/resource.js';
import { SESSION_EPOCH_ANNOTATION } from '../../runtime/hosting/session-store.js';
import { World } from '../../runtime/simulator/world.js';
import { waitFor } from '../cluster/wait.js';
import { ApiProxy, writeKubeconfigVia } from '../support/api-proxy.js';
import { adminKubeConfig, createTestNamespace, testCluster } from '../support/cluster.js';
import { installCrds } from '../support/crds.js';
import { operatorKubeconfig, startSupervisedOperator, type SupervisedOperator } from '../support/operator.js';
import {
  DEMO_API_CREDENTIALS,
  DEMO_BOT_TOKEN,
  SECRET_OPT_IN,
  demoWorld,
  serviceAccountKubeconfig,
  startRuntimeProcess,
  waitForPodReady,
  type RuntimeProcess,
} from '../support/runtime.js';

const BOT_USER_ID = 7000000001;
const LEASE_SECONDS = 3;
const POD = (n: number): string => `tdlib-runtime-default-${n}`;

type Account = TelegramAccount & ApiObject;

/** What a watcher saw of an account, version by version. */
interface Seen {
  at: number;
  resourceVersion: string;
  hostedBy?: string;
  placedOn?: string;
  ready?: { status: string; reason: string };
}

interface Scene {
  namespace: string;
  worldDir: string;
  operator: SupervisedOperator;
  runtimeKubeconfig: string;
  runtimes: RuntimeProcess[];
  history: Seen[];
  watcher: Informer<Account>;
  rest: RestClient;
}

const kc = adminKubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const custom = kc.makeApiClient(k8s.CustomObjectsApi);

async function startScene(prefix: string): Promise<Scene> {
  await installCrds(kc);
  const namespace = await createTestNamespace(kc, prefix);
  const worldDir = demoWorld();
  const operator = startSupervisedOperator(await operatorKubeconfig(), {
    WATCH_NAMESPACE: namespace,
    RUNTIME_BACKEND: 'simulator',
  });
  for (const [name, data] of [
    ['api', DEMO_API_CREDENTIALS],
    ['bot-token', { token: DEMO_BOT_TOKEN }],
  ] as const)
    await core.createNamespacedSecret({
      namespace,
      body: { metadata: { name, labels: SECRET_OPT_IN }, stringData: data },
    });
  await custom.createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace,
    plural: 'telegramaccounts',
    body: {
      apiVersion: `${GROUP}/${VERSION}`,
      kind: 'TelegramAccount',
      metadata: { name: 'bot' },
      spec: {
        type: 'Bot',
        botTokenSecretRef: { name: 'bot-token' },
        apiCredentialsSecretRef: { name: 'api' },
      },
    },
  });
  const rest = new RestClient(kc, { registry: createRegistry() });
  const history: Seen[] = [];
  const watcher = new Informer<Account>(rest, TelegramAccountResource, {
    name: `${prefix}-watch`,
    namespace,
    logger: createLogger({ name: 'test', level: 'warn' }),
    registry: createRegistry(),
  });
  watcher.onEvent((_type, a) => {
    const ready = findCondition(a.status?.conditions, ConditionType.Ready);
    history.push({
      at: performance.now(),
      resourceVersion: a.metadata.resourceVersion ?? '',
      hostedBy: a.status?.hostedBy,
      placedOn: a.status?.placement?.pod,
      ready: ready ? { status: ready.status, reason: ready.reason } : undefined,
    });
  });
  watcher.start();
  await waitForPodReady(kc, namespace, POD(0));
  const runtimeKubeconfig = await serviceAccountKubeconfig(kc, namespace, 'tdlib-runtime-default');
  return { namespace, worldDir, operator, runtimeKubeconfig, runtimes: [], history, watcher, rest };
}

async function endScene(scene: Scene | undefined): Promise<void> {
  if (!scene) return;
  await Promise.all(scene.runtimes.map((r) => r.stop('SIGKILL')));
  await scene.operator.stop();
  await scene.watcher.stop();
  await scene.rest.close();
}

function startRuntime(scene: Scene, pod: number, kubeconfig = scene.runtimeKubeconfig): RuntimeProcess {
  const runtime = startRuntimeProcess({
    pod: POD(pod),
    namespace: scene.namespace,
    kubeconfig,
    worldDir: scene.worldDir,
    env: { RUNTIME_LEASE_SECONDS: String(LEASE_SECONDS) },
  });
  scene.runtimes.push(runtime);
  return runtime;
}

const readyOn = (pod: string) => (s: Seen) =>
  s.ready?.status === 'True' && s.hostedBy === pod && s.placedOn === pod;

function waitForSeen(
  scene: Scene,
  what: string,
  test: (s: Seen) => boolean,
  timeoutMs = 60_000,
): Promise<Seen> {
  return waitFor(`bot: ${what}`, () => scene.history.find(test), {
    timeoutMs,
    intervalMs: 50,
    onTimeout: () =>
      `history: ${JSON.stringify(scene.history.slice(-8))}\noperator:\n${scene.operator
        .rawOutput()
        .slice(
          -2000,
        )}\n${scene.runtimes.map((r) => `${r.pod}:\n${r.output().slice(-2500)}`).join('\n---\n')}`,
  });
}

function sessionsOf(worldDir: string) {
  return World.open(worldDir)
    .sessions()
    .filter((s) => s.user_id === BOT_USER_ID);
}

function duplicateKills(worldDir: string) {
  return World.open(worldDir)
    .events()
    .filter((e) => e.type === 'auth_key_duplicated');
}

function logins(worldDir: string) {
  return World.open(worldDir)
    .events()
    .filter((e) => e.type === 'login' && e.user_id === BOT_USER_ID);
}

async function backup(namespace: string): Promise<{ epoch: string; blob: string; resourceVersion: string }> {
  const secret = await core.readNamespacedSecret({ namespace, name: 'bot-tdlib-session' });
  return {
    epoch: secret.metadata?.annotations?.[SESSION_EPOCH_ANNOTATION] ?? '',
    blob: secret.data?.session ?? '',
    resourceVersion: secret.metadata?.resourceVersion ?? '',
  };
}

/** Ready on `pod`, its first backup written; returns the backup. */
async function readyWithBackup(scene: Scene, pod: number) {
  await waitForSeen(scene, `Ready on ${POD(pod)}`, readyOn(POD(pod)));
  return waitFor(
    'a session backup',
    async () => {
      const b = await backup(scene.namespace);
      return b.blob ? b : undefined;
    },
    { timeoutMs: 20_000 },
  );
}

describe('the session fence, end to end', () => {
  describe('a runtime killed with SIGKILL', () => {
    let scene: Scene | undefined;
    afterAll(() => endScene(scene));

    it('shows its accounts Ready=Unknown within one heartbeat window, and Ready=True again only once the new pod serves them', async () => {
      scene = await startScene('fence-kill');
      startRuntime(scene, 0);
      await readyWithBackup(scene, 0);
      const before = sessionsOf(scene.worldDir);
      expect(before).toHaveLength(1);

      const killedAt = performance.now();
      await scene.runtimes[0]?.stop('SIGKILL');
      // One heartbeat window: the Lease duration since the last renewal (at most a renewal period before the
      // kill), plus a second for the operator's write.
      const window = LEASE_SECONDS * 1000 + (LEASE_SECONDS * 1000) / 3 + 1000;
      const lost = await waitForSeen(
        scene,
        'Ready=Unknown RuntimeLost',
        (s) => s.at > killedAt && s.ready?.status === 'Unknown' && s.ready.reason === 'RuntimeLost',
        window + 5000,
      );
      expect(lost.at - killedAt).toBeLessThanOrEqual(window);

      await waitFor('the account placed on pod 1', () => scene?.history.find((s) => s.placedOn === POD(1)), {
        timeoutMs: 30_000,
      });
      await waitForPodReady(kc, scene.namespace, POD(1));
      startRuntime(scene, 1);
      const back = await waitForSeen(scene, 'Ready on pod 1', readyOn(POD(1)));

      // Between the kill and pod 1 serving it, nothing ever claimed Ready=True.
      const between = scene.history.filter((s) => s.at > killedAt && s.at < back.at);
      expect(between.filter((s) => s.ready?.status === 'True')).toEqual([]);
      // The same session continues: no new login, no duplicate-session kill.
      expect(sessionsOf(scene.worldDir).map((s) => s.auth_key)).toEqual(before.map((s) => s.auth_key));
      expect(logins(scene.worldDir)).toHaveLength(1);
      expect(duplicateKills(scene.worldDir)).toEqual([]);
    });
  });

  describe('a runtime paused (SIGSTOP) past its Lease while another takes the account, then resumed', () => {
    let scene: Scene | undefined;
    afterAll(() => endScene(scene));

    it('never runs the session twice, keeps the newer backup, and never writes the account status again', async () => {
      scene = await startScene('fence-pause');
      const old = startRuntime(scene, 0);
      const older = await readyWithBackup(scene, 0);
      const pausedAt = performance.now();
      old.child.kill('SIGSTOP');
      try {
        await waitForSeen(
          scene,
          'RuntimeLost',
          (s) => s.at > pausedAt && s.ready?.reason === 'RuntimeLost',
          30_000,
        );
        await waitFor('placed on pod 1', () => scene?.history.find((s) => s.placedOn === POD(1)), {
          timeoutMs: 30_000,
        });
        await waitForPodReady(kc, scene.namespace, POD(1));
        startRuntime(scene, 1);
        const firstByNew = await waitForSeen(scene, 'first status from pod 1', (s) => s.hostedBy === POD(1));
        await waitForSeen(scene, 'Ready on pod 1', readyOn(POD(1)));
        // The new holder's backup: written under a newer epoch than the old holder's.
        const newer = await waitFor(
          "pod 1's backup",
          async () => {
            const b = await backup(scene?.namespace ?? '');
            return Number(b.epoch) > Number(older.epoch) ? b : undefined;
          },
          { timeoutMs: 20_000 },
        );

        const resumedAt = performance.now();
        old.child.kill('SIGCONT');
        // The resumed process notices that its fence lapsed long ago and closes its client.
        await waitFor(
          'the resumed runtime to close its client',
          () => (/session fence lapsed|pod heartbeat Lease lapsed/.test(old.output()) ? true : undefined),
          { timeoutMs: 15_000, onTimeout: () => old.output().slice(-3000) },
        );
        // Give the resumed process time to do whatever it would do: its overdue timers and queued work
        // (renewal, status writes, backup, the watch's buffered events) all run within a few event-loop turns;
        // waiting for its next heartbeat renewal after the resume bounds that.
        await waitFor(
          'the resumed runtime to renew its heartbeat once more',
          async () => {
            const lease = await kc
              .makeApiClient(k8s.CoordinationV1Api)
              .readNamespacedLease({ namespace: scene?.namespace ?? '', name: POD(0) });
            const renewed = lease.spec?.renewTime ? Date.parse(String(lease.spec.renewTime)) : 0;
            return renewed > Date.now() - 1000 ? true : undefined;
          },
          { timeoutMs: 20_000 },
        );
        expect(duplicateKills(scene.worldDir)).toEqual([]);
        expect(sessionsOf(scene.worldDir).every((s) => s.revoked === undefined)).toBe(true);
        const after = await backup(scene.namespace);
        expect(Number(after.epoch)).toBeGreaterThanOrEqual(Number(newer.epoch));
        // No status write by the old pod after the new pod's first one.
        const stale = scene.history.filter((s) => s.at > firstByNew.at && s.hostedBy === POD(0));
        expect(stale).toEqual([]);
        expect(scene.history.filter((s) => s.at > resumedAt).every((s) => s.hostedBy !== POD(0))).toBe(true);
        // Still served by pod 1, with the same session.
        await waitForSeen(
          scene,
          'still Ready on pod 1',
          (s) => s.at > resumedAt && readyOn(POD(1))(s),
          5000,
        ).catch(() => undefined);
        const latest = scene.history[scene.history.length - 1];
        expect(latest?.hostedBy).toBe(POD(1));
        expect(logins(scene.worldDir)).toHaveLength(1);
      } finally {
        old.child.kill('SIGCONT');
      }
    });
  });

  describe('a runtime whose API server turns slow (every request held longer than the Lease)', () => {
    let scene: Scene | undefined;
    let proxy: ApiProxy | undefined;
    afterAll(async () => {
      proxy?.delay(0);
      await endScene(scene);
      await proxy?.close();
    });

    it('lets the account move without two live sessions, without losing the newer backup, and without late status writes', async () => {
      scene = await startScene('fence-slow');
      const server = kc.getCurrentCluster()?.server;
      if (!server) throw new Error('no apiserver URL');
      proxy = await ApiProxy.start(server);
      const viaProxy = new k8s.KubeConfig();
      viaProxy.loadFromFile(scene.runtimeKubeconfig);
      startRuntime(scene, 0, writeKubeconfigVia(viaProxy, proxy));
      const older = await readyWithBackup(scene, 0);

      // Every request of runtime 0 now reaches the API server 10 s late: its renewals too (D is 3 s).
      const slowSince = performance.now();
      proxy.delay(10_000);
      // A spec change the runtime reports on (observedGeneration): its status write leaves now, lands late.
      await custom.patchNamespacedCustomObject(
        {
          group: GROUP,
          version: VERSION,
          namespace: scene.namespace,
          plural: 'telegramaccounts',
          name: 'bot',
          body: { spec: { deletionPolicy: 'LogOut' } },
        },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      );
      await waitForSeen(
        scene,
        'RuntimeLost',
        (s) => s.at > slowSince && s.ready?.reason === 'RuntimeLost',
        30_000,
      );
      await waitFor('placed on pod 1', () => scene?.history.find((s) => s.placedOn === POD(1)), {
        timeoutMs: 30_000,
      });
      await waitForPodReady(kc, scene.namespace, POD(1));
      startRuntime(scene, 1);
      const firstByNew = await waitForSeen(scene, 'first status from pod 1', (s) => s.hostedBy === POD(1));
      await waitForSeen(scene, 'Ready on pod 1', readyOn(POD(1)));
      const newer = await waitFor(
        "pod 1's backup",
        async () => {
          const b = await backup(scene?.namespace ?? '');
          return Number(b.epoch) > Number(older.epoch) ? b : undefined;
        },
        { timeoutMs: 20_000 },
      );
      // Whatever runtime 0 sent until pod 1 took over reaches the API server 10 s later: wait past that.
      const landed = firstByNew.at + 12_000;
      await waitFor(
        "runtime 0's late requests to land",
        () => (performance.now() > landed ? true : undefined),
        { timeoutMs: 30_000 },
      );
      expect(proxy.openConnections).toBeGreaterThan(0);

      expect(duplicateKills(scene.worldDir)).toEqual([]);
      expect(sessionsOf(scene.worldDir).every((s) => s.revoked === undefined)).toBe(true);
      const after = await backup(scene.namespace);
      expect(Number(after.epoch)).toBeGreaterThanOrEqual(Number(newer.epoch));
      expect(scene.history.filter((s) => s.at > firstByNew.at && s.hostedBy === POD(0))).toEqual([]);
      expect(scene.history[scene.history.length - 1]?.hostedBy).toBe(POD(1));
      expect(logins(scene.worldDir)).toHaveLength(1);
    });
  });

  describe('the API server paused past the Lease duration', () => {
    let scene: Scene | undefined;
    afterAll(() => endScene(scene));

    it('brings every account back to Ready on its own pod within 30 s of the API server returning', async () => {
      const pid = testCluster().pids?.['kube-apiserver'];
      if (!pid) throw new Error('the test cluster does not report the kube-apiserver pid');
      scene = await startScene('fence-outage');
      const runtime = startRuntime(scene, 0);
      await readyWithBackup(scene, 0);
      const sessions = sessionsOf(scene.worldDir);

      process.kill(pid, 'SIGSTOP');
      const pausedAt = performance.now();
      try {
        // Past the Lease: the runtime cannot renew, so its fence lapses and it closes its client (safe).
        await waitFor(
          'the runtime to close its client for lack of a valid Lease',
          () => (/pod heartbeat Lease lapsed/.test(runtime.output()) ? true : undefined),
          { timeoutMs: 30_000, onTimeout: () => runtime.output().slice(-3000) },
        );
        await waitFor(
          'the pause to last three Lease durations',
          () => (performance.now() - pausedAt > LEASE_SECONDS * 3000 ? true : undefined),
          { timeoutMs: 60_000 },
        );
      } finally {
        process.kill(pid, 'SIGCONT');
      }
      const resumedAt = performance.now();
      const back = await waitForSeen(
        scene,
        'Ready on pod 0 again',
        (s) => s.at > resumedAt && readyOn(POD(0))(s),
        60_000,
      );
      expect(back.at - resumedAt).toBeLessThanOrEqual(30_000);
      expect(scene.history.filter((s) => s.at > pausedAt).every((s) => s.placedOn === POD(0))).toBe(true);
      expect(sessionsOf(scene.worldDir).map((s) => s.auth_key)).toEqual(sessions.map((s) => s.auth_key));
      expect(logins(scene.worldDir)).toHaveLength(1);
      expect(duplicateKills(scene.worldDir)).toEqual([]);
    });
  });
});
