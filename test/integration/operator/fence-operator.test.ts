/**
 * The operator's half of the session fence, with the operator running as a process (its ServiceAccount, the
 * shipped ClusterRole) and no runtime process: the test plays the runtime. It takes and renews each pod's
 * heartbeat Lease under an incarnation identity (`<pod>/<uid>/<nonce>`, leaseDurationSeconds 2) and writes
 * the runtime-owned status fields (hostedBy, Authorized, Connected) by server-side apply under the
 * runtime's field manager, and checks what the operator derives: Ready, RuntimeLost, re-placement, the
 * start timeout of pods that never heartbeat, Secret opt-in, the key Secret lifecycle, and that a logged-in
 * session survives the deletion of a Secret it no longer needs.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import {
  API_VERSION,
  LABEL_ACCOUNT,
  LABEL_MANAGED_BY,
  LABEL_POOL,
  LABEL_SECRET_OPT_IN,
  runtimePodName,
  type Condition,
  type TelegramAccount,
} from '../../../crds/index.js';
import { TelegramAccountResource } from '../../../crds/resources.js';
import { RestClient, loadKubeConfig } from '../../../operator/kube/client.js';
import { isConflict, isNotFound } from '../../../operator/kube/errors.js';
import type { LeaseObject } from '../../../operator/kube/lease.js';
import { microTime } from '../../../operator/kube/lease.js';
import { createLogger } from '../../../operator/kube/logging.js';
import { createRegistry } from '../../../operator/kube/metrics.js';
import { Informer } from '../../../operator/kube/reflector.js';
import { Resources, type ApiObject } from '../../../operator/kube/resource.js';
import { waitFor } from '../../cluster/wait.js';
import { adminKubeConfig, createTestNamespace, testCluster } from '../../support/cluster.js';
import { installCrds } from '../../support/crds.js';
import { operatorKubeconfig, startOperatorProcess, type OperatorProcess } from '../../support/operator.js';

const RUNTIME_FIELD_MANAGER = 'tdlib-runtime';
/** Heartbeat Lease duration the fake runtime writes: the operator judges death from it. */
const LEASE_SECONDS = 2;
/** RUNTIME_POD_START_TIMEOUT_SECONDS the operator runs with. */
const START_TIMEOUT_SECONDS = 5;
const WAIT_MS = 20_000;

type Account = TelegramAccount & ApiObject;
type Lease = ApiObject & LeaseObject;
type SecretObject = ApiObject & {
  data?: Record<string, string>;
  metadata?: ApiObject['metadata'] & { ownerReferences?: Array<{ uid: string }> };
};
interface Observation {
  at: number;
  pod?: string;
  ready?: Pick<Condition, 'status' | 'reason' | 'message'>;
}

describe('the operator derives Ready and moves accounts from the runtime heartbeats it observes', () => {
  const kc = adminKubeConfig();
  const logger = createLogger({ name: 'fence-operator-test', level: 'warn' });
  const rest = new RestClient(loadKubeConfig(testCluster().kubeconfigPath), {
    registry: createRegistry(),
    logger,
  });
  let namespace = '';
  let operator: OperatorProcess;
  let accounts: Informer<Account>;
  /** Every distinct (placement label, Ready) an account showed, in order, as the watch delivered them. */
  const history = new Map<string, Observation[]>();
  const runtimes: FakeRuntime[] = [];
  const pools: KeepAlive[] = [];

  // ---- the fake runtime ------------------------------------------------------------------------------

  /** One runtime process: holds and renews its pod's heartbeat Lease (created by the operator). */
  class FakeRuntime {
    readonly identity: string;
    private timer?: NodeJS.Timeout;
    private lease?: Lease;
    private renewing = false;

    constructor(readonly pod: string) {
      this.identity = `${pod}/${randomBytes(8).toString('hex')}/${randomBytes(4).toString('hex')}`;
      runtimes.push(this);
    }

    /** Waits for the operator to create the heartbeat Lease, takes it, and renews it every D/4. */
    async start(): Promise<this> {
      const existing = await waitFor(
        `heartbeat Lease ${this.pod}`,
        () => rest.get<Lease>(Resources.Lease, namespace, this.pod),
        { timeoutMs: WAIT_MS },
      );
      const now = microTime(new Date());
      this.lease = await rest.replace<Lease>(Resources.Lease, {
        ...existing,
        spec: {
          holderIdentity: this.identity,
          leaseDurationSeconds: LEASE_SECONDS,
          acquireTime: now,
          renewTime: now,
          leaseTransitions: (existing.spec?.leaseTransitions ?? 0) + 1,
        },
      });
      this.timer = setInterval(() => void this.renew(), (LEASE_SECONDS * 1000) / 4);
      return this;
    }

    private async renew(): Promise<void> {
      if (this.renewing || !this.lease) return;
      this.renewing = true;
      try {
        const lease: Lease = this.lease;
        this.lease = await rest.replace<Lease>(Resources.Lease, {
          ...lease,
          spec: { ...lease.spec, renewTime: microTime(new Date()) },
        });
      } catch (error) {
        // A conflict: read it again. Anything else: the next tick retries (like a runtime would).
        if (isConflict(error))
          this.lease = await rest.get<Lease>(Resources.Lease, namespace, this.pod).catch(() => this.lease);
      } finally {
        this.renewing = false;
      }
    }

    /** Stops renewing without releasing: what a crashed, paused or partitioned process looks like. */
    stop(): void {
      clearInterval(this.timer);
      this.timer = undefined;
    }

    /** The runtime-owned status of an account hosted here, as the real runtime applies it. */
    async report(
      account: string,
      authorized: [Condition['status'], string],
      connected: [Condition['status'], string],
      options: { hostedBy?: string; observedGeneration?: number } = {},
    ): Promise<void> {
      const current = await rest.get<Account>(TelegramAccountResource, namespace, account);
      const generation = options.observedGeneration ?? current.metadata.generation;
      const condition = (type: string, [status, reason]: [Condition['status'], string]): Condition => ({
        type,
        status,
        reason,
        message: `${type} ${status} (${reason}), as the test's runtime reports it`,
        observedGeneration: generation,
        lastTransitionTime: microTime(new Date()).replace(/\.\d+Z$/, 'Z'),
      });
      await rest.applyStatus(
        TelegramAccountResource,
        {
          apiVersion: API_VERSION,
          kind: 'TelegramAccount',
          metadata: { name: account, namespace },
          status: {
            hostedBy: options.hostedBy ?? this.pod,
            conditions: [condition('Authorized', authorized), condition('Connected', connected)],
          },
        } as ApiObject,
        { fieldManager: RUNTIME_FIELD_MANAGER, force: true },
      );
    }
  }

  /** Runtimes for every pod of a pool as soon as the operator creates its heartbeat Lease. */
  class KeepAlive {
    readonly byPod = new Map<string, FakeRuntime>();
    private readonly timer: NodeJS.Timeout;
    private busy = false;

    constructor(readonly pool: string) {
      pools.push(this);
      this.timer = setInterval(() => void this.tick(), 200);
    }

    private async tick(): Promise<void> {
      if (this.busy) return;
      this.busy = true;
      try {
        const leases = await rest.list<Lease>(Resources.Lease, {
          namespace,
          labelSelector: `${LABEL_POOL}=${this.pool}`,
        });
        for (const lease of leases.items) {
          const pod = lease.metadata?.name ?? '';
          if (this.byPod.has(pod)) continue;
          const runtime = new FakeRuntime(pod);
          this.byPod.set(pod, runtime);
          await runtime.start();
        }
      } catch {
        // The next tick tries again.
      } finally {
        this.busy = false;
      }
    }

    async runtimeOf(pod: string): Promise<FakeRuntime> {
      return waitFor(`a runtime for ${pod}`, () => this.byPod.get(pod), { timeoutMs: WAIT_MS });
    }

    stop(): void {
      clearInterval(this.timer);
    }
  }

  // ---- API helpers -----------------------------------------------------------------------------------

  const secret = (name: string, data: Record<string, string>, optIn = true) =>
    rest.create(Resources.Secret, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name, namespace, labels: optIn ? { [LABEL_SECRET_OPT_IN]: 'true' } : {} },
      stringData: data,
    } as ApiObject);
  const readSecret = (name: string) => rest.get<SecretObject>(Resources.Secret, namespace, name);
  const secretGone = async (name: string): Promise<boolean> =>
    readSecret(name).then(
      () => false,
      (error: unknown) => {
        if (isNotFound(error)) return true;
        throw error;
      },
    );

  const createAccount = (name: string, spec: Record<string, unknown>) =>
    rest.create(TelegramAccountResource, {
      apiVersion: API_VERSION,
      kind: 'TelegramAccount',
      metadata: { name, namespace },
      spec,
    } as ApiObject);
  const bot = (pool: string, extra: Record<string, unknown> = {}) => ({
    type: 'Bot',
    botTokenSecretRef: { name: 'bot' },
    apiCredentialsSecretRef: { name: 'api' },
    runtimePool: pool,
    ...extra,
  });
  const getAccount = (name: string) => rest.get<Account>(TelegramAccountResource, namespace, name);
  const conditionOf = (account: TelegramAccount | undefined, type: string) =>
    account?.status?.conditions?.find((c) => c.type === type);
  const logTail = () => operator.rawOutput().slice(-4000);
  /** Waits until the test's own watch has delivered an observation of `name` that `accept`s. */
  const waitForSeen = (name: string, what: string, accept: (o: Observation) => boolean) =>
    waitFor(`the watch to show ${name} ${what}`, () => (history.get(name) ?? []).find(accept), {
      timeoutMs: WAIT_MS,
    });

  /** Waits until the account's `type` condition has `status` (and `reason`, if given); returns the account. */
  const waitForCondition = (
    name: string,
    type: string,
    status: string,
    reason?: string,
    timeoutMs = WAIT_MS,
  ) =>
    waitFor(
      `${name}: ${type}=${status}${reason ? ` (${reason})` : ''}`,
      async () => {
        const account = await getAccount(name);
        const c = conditionOf(account, type);
        const placed = reason !== 'Placed' || account.status?.placement?.pod !== undefined;
        return c?.status === status && (reason === undefined || c.reason === reason) && placed
          ? account
          : undefined;
      },
      { timeoutMs, onTimeout: logTail },
    );
  const waitForPod = (name: string, accept: (pod: string | undefined) => boolean, what: string) =>
    waitFor(
      `${name} ${what}`,
      async () => {
        const account = await getAccount(name);
        return accept(account.status?.placement?.pod) ? account : undefined;
      },
      { timeoutMs: WAIT_MS, onTimeout: logTail },
    );
  const warningEvent = (object: string, reason: string) =>
    waitFor(
      `a Warning Event ${reason} on ${object}`,
      async () => {
        const events = await rest.list<ApiObject & { type?: string; reason?: string; message?: string }>(
          Resources.Event,
          { namespace, fieldSelector: `involvedObject.name=${object}` },
        );
        return events.items.find((e) => e.type === 'Warning' && e.reason === reason);
      },
      { timeoutMs: WAIT_MS, onTimeout: logTail },
    );
  /** Secret names the pool's runtime Role lets it `get`. */
  const readableSecrets = async (pool: string): Promise<string[]> => {
    const role = await rest.get<
      ApiObject & { rules?: Array<{ resources?: string[]; verbs: string[]; resourceNames?: string[] }> }
    >(Resources.Role, namespace, `tdlib-runtime-${pool}`);
    return (role.rules ?? [])
      .filter((r) => r.resources?.includes('secrets') && r.verbs.includes('get'))
      .flatMap((r) => r.resourceNames ?? ['<any>']);
  };

  beforeAll(async () => {
    await installCrds(kc);
    namespace = await createTestNamespace(kc, 'fence-operator');
    await secret('api', { api_id: '12345', api_hash: '0123456789abcdef0123456789abcdef' });
    await secret('bot', { token: '123456:AAAA-test-token' });
    accounts = new Informer<Account>(rest, TelegramAccountResource, {
      name: 'fence-test-accounts',
      namespace,
      logger,
      registry: createRegistry(),
    });
    accounts.onEvent((_type, account) => {
      const name = account.metadata.name ?? '';
      const ready = conditionOf(account, 'Ready');
      const seen: Observation = {
        at: performance.now(),
        pod: account.status?.placement?.pod,
        ready: ready && { status: ready.status, reason: ready.reason, message: ready.message },
      };
      const list = history.get(name) ?? [];
      const last = list[list.length - 1];
      if (
        last?.pod !== seen.pod ||
        last?.ready?.status !== seen.ready?.status ||
        last?.ready?.reason !== seen.ready?.reason ||
        last?.ready?.message !== seen.ready?.message
      )
        list.push(seen);
      history.set(name, list);
    });
    accounts.start();
    await accounts.waitForSync(WAIT_MS);
    operator = startOperatorProcess(await operatorKubeconfig(), {
      WATCH_NAMESPACE: namespace,
      RUNTIME_ACCOUNTS_PER_POD: '10',
      RUNTIME_POD_START_TIMEOUT_SECONDS: String(START_TIMEOUT_SECONDS),
    });
  });

  afterAll(async () => {
    for (const pool of pools) pool.stop();
    for (const runtime of runtimes) runtime.stop();
    const code = await operator?.stop();
    await accounts?.stop();
    await rest.close();
    expect(code).toBe(0);
  });

  it('Ready is True only while the pod the account is placed on reports it logged in and connected', async () => {
    await createAccount('alpha', bot('default'));
    const placed = await waitForCondition('alpha', 'Scheduled', 'True', 'Placed');
    const pod = placed.status?.placement?.pod;
    expect(pod).toBe(runtimePodName('default', 0));
    const runtime = await new FakeRuntime(pod ?? '').start();

    // Before any report: Unknown, waiting for the runtime.
    const waiting = await waitForCondition('alpha', 'Ready', 'Unknown', 'WaitingForRuntime');
    expect(conditionOf(waiting, 'Ready')?.message).toContain(pod);

    // The right pod, but not logged in yet: False, with the runtime's reason.
    await runtime.report('alpha', ['False', 'WaitCode'], ['True', 'Ready']);
    await waitForCondition('alpha', 'Ready', 'False', 'WaitCode');

    // Logged in, not connected: still False.
    await runtime.report('alpha', ['True', 'Authorized'], ['False', 'Connecting']);
    await waitForCondition('alpha', 'Ready', 'False', 'Connecting');

    // Logged in and connected, but reported by another pod than the one it is placed on: not True.
    await runtime.report('alpha', ['True', 'Authorized'], ['True', 'Ready'], {
      hostedBy: runtimePodName('default', 1),
    });
    const elsewhere = await waitForCondition('alpha', 'Ready', 'Unknown', 'WaitingForRuntime');
    expect(conditionOf(elsewhere, 'Ready')?.message).toContain(runtimePodName('default', 1));

    // The placement pod reports logged in and connected: True.
    await runtime.report('alpha', ['True', 'Authorized'], ['True', 'Ready']);
    const ready = await waitForCondition('alpha', 'Ready', 'True', 'Ready');
    expect(conditionOf(ready, 'Ready')?.observedGeneration).toBe(ready.metadata.generation);
    // Not even briefly True at any earlier step (polling could miss that; the watch does not).
    await waitForSeen('alpha', 'Ready=True', (o) => o.ready?.status === 'True');
    const steps = history.get('alpha') ?? [];
    expect(steps.filter((o) => o.ready?.status === 'True')).toHaveLength(1);
    expect(steps[steps.length - 1]?.ready?.status).toBe('True');

    // A new spec: Ready speaks for the generation the runtime has seen, never a newer one.
    await rest.mergePatch(TelegramAccountResource, namespace, 'alpha', {
      spec: { deletionPolicy: 'LogOut' },
    });
    const newer = await waitFor(
      'observedGeneration of the new spec',
      async () => {
        const a = await getAccount('alpha');
        return a.status?.observedGeneration === a.metadata.generation &&
          a.metadata.generation !== ready.metadata.generation
          ? a
          : undefined;
      },
      { timeoutMs: WAIT_MS, onTimeout: logTail },
    );
    expect(conditionOf(newer, 'Ready')?.observedGeneration).toBe(ready.metadata.generation);
    await runtime.report('alpha', ['True', 'Authorized'], ['True', 'Ready']);
    await waitFor(
      'Ready to follow the runtime to the new generation',
      async () => {
        const a = await getAccount('alpha');
        return conditionOf(a, 'Ready')?.observedGeneration === newer.metadata.generation ? a : undefined;
      },
      { timeoutMs: WAIT_MS, onTimeout: logTail },
    );
  });

  it('RuntimeLost: a pod that stops heartbeating makes its accounts Ready=Unknown, then they move, and Ready waits for the new pod', async () => {
    await createAccount('bravo', bot('lost'));
    const first = runtimePodName('lost', 0);
    const second = runtimePodName('lost', 1);
    await waitForPod('bravo', (p) => p === first, `placed on ${first}`);
    const old = await new FakeRuntime(first).start();
    await old.report('bravo', ['True', 'Authorized'], ['True', 'Ready']);
    await waitForCondition('bravo', 'Ready', 'True', 'Ready');
    const before = (history.get('bravo') ?? []).length;

    old.stop();
    // Declared dead once its record stayed unchanged for a Lease duration (2 s), then re-placed: a deadline
    // of that plus slack for a loaded machine.
    const lost = await waitForCondition(
      'bravo',
      'Ready',
      'Unknown',
      'RuntimeLost',
      LEASE_SECONDS * 1000 + 8_000,
    );
    expect(conditionOf(lost, 'Ready')?.message).toContain(first);
    expect(conditionOf(lost, 'Ready')?.message).toContain('heartbeat');
    await waitForPod('bravo', (p) => p === second, `re-placed on ${second}`);
    const fresh = await new FakeRuntime(second).start();
    // The new pod heartbeats but has not reported the account: still not Ready, and it says why.
    const moved = await waitForSeen(
      'bravo',
      `Ready=Unknown RuntimeLost, moved to ${second}`,
      (o) =>
        o.pod === second &&
        o.ready?.status === 'Unknown' &&
        o.ready.reason === 'RuntimeLost' &&
        o.ready.message.includes(`moved to ${second}`),
    );
    expect(moved.ready?.message).toContain(first);
    expect((await getAccount('bravo')).status?.hostedBy).toBe(first);

    await fresh.report('bravo', ['True', 'Authorized'], ['True', 'Ready']);
    await waitForCondition('bravo', 'Ready', 'True', 'Ready');
    await waitForSeen(
      'bravo',
      'Ready=True on the new pod',
      (o) => o.pod === second && o.ready?.status === 'True',
    );

    const after = (history.get('bravo') ?? []).slice(before);
    const lostAt = after.findIndex((o) => o.ready?.reason === 'RuntimeLost');
    const movedAt = after.findIndex((o) => o.pod === second);
    const trueAgainAt = after.findIndex((o) => o.ready?.status === 'True');
    // Ready=Unknown no later than the move (placement and Ready go in one status write), naming the dead pod,
    // and never True until the new pod said so.
    expect(lostAt).toBeGreaterThanOrEqual(0);
    expect(after[lostAt]?.ready?.message).toContain(first);
    expect(movedAt).toBeGreaterThanOrEqual(lostAt);
    expect(after.slice(0, trueAgainAt).some((o) => o.ready?.status === 'True')).toBe(false);
    expect(after[trueAgainAt]?.pod).toBe(second);
  });

  it('F7: an account naming a Secret its owner did not opt in is not scheduled and its runtime may not read it, until the Secret is labelled', async () => {
    new KeepAlive('optin');
    await secret('private-token', { token: '654321:BBBB-not-for-accounts' }, false);
    await createAccount('charlie', bot('optin', { botTokenSecretRef: { name: 'private-token' } }));
    const refused = await waitForCondition('charlie', 'Scheduled', 'False', 'SecretNotOptedIn');
    const message = conditionOf(refused, 'Scheduled')?.message ?? '';
    expect(message).toContain(
      `kubectl label secret private-token -n ${namespace} ${LABEL_SECRET_OPT_IN}=true`,
    );
    expect(message).toContain('spec.botTokenSecretRef');
    expect(message).not.toContain('BBBB');
    expect(refused.status?.placement?.pod).toBeUndefined();
    expect(refused.status?.placement).toBeUndefined();
    // The Role is written in the same pass as that condition: it grants the opted-in Secrets only.
    const before = await readableSecrets('optin');
    expect(before).toEqual(expect.arrayContaining(['api', 'charlie-tdlib-session']));
    expect(before).not.toContain('private-token');
    expect(before).not.toContain('<any>');
    const event = await warningEvent('charlie', 'SecretNotOptedIn');
    expect(event.message).toContain('kubectl label secret private-token');

    await rest.mergePatch(Resources.Secret, namespace, 'private-token', {
      metadata: { labels: { [LABEL_SECRET_OPT_IN]: 'true' } },
    });
    const placed = await waitForCondition('charlie', 'Scheduled', 'True', 'Placed');
    expect(placed.status?.placement?.pod).toBe(runtimePodName('optin', 0));
    await waitFor(
      'the Role to grant the labelled Secret',
      async () => ((await readableSecrets('optin')).includes('private-token') ? true : undefined),
      { timeoutMs: WAIT_MS, onTimeout: logTail },
    );
  });

  it('F16: accounts on a pod that never takes its heartbeat move after RUNTIME_POD_START_TIMEOUT_SECONDS, each placement given the full timeout', async () => {
    await createAccount('delta', bot('stuck'));
    const first = runtimePodName('stuck', 0);
    const second = runtimePodName('stuck', 1);
    await waitForPod('delta', (p) => p === first, `placed on ${first}`);
    await waitForPod('delta', (p) => p === second, `moved off ${first}, which never started`);
    const said = await waitFor(
      `a log line saying why ${first} was given up`,
      () => operator.logs.find((l) => String(l.msg).includes('runtime pod declared dead') && l.pod === first),
      { timeoutMs: WAIT_MS, onTimeout: logTail },
    );
    expect(String(said.why)).toMatch(/no runtime process has held its heartbeat Lease for \d+ s/);

    // Neither pod ever starts: the account moves back and forth, but stays START_TIMEOUT on each pod,
    // even on one whose Lease has been without a holder for longer than that (no hot loop of moves).
    await waitForPod('delta', (p) => p === first, `moved back to ${first}`);
    await waitForPod('delta', (p) => p === second, `moved to ${second} again`);
    // The history comes from a watch, which may deliver the last move after the read above saw it.
    const visits = await waitFor(
      'the watch to deliver the four placements',
      () => {
        const v = (history.get('delta') ?? []).filter(
          (o, i, all) => o.pod !== undefined && o.pod !== all[i - 1]?.pod,
        );
        return v.length >= 4 ? v : undefined;
      },
      { timeoutMs: WAIT_MS, onTimeout: logTail },
    );
    expect(visits.map((v) => v.pod).slice(0, 4)).toEqual([first, second, first, second]);
    for (let i = 1; i < 4; i++) {
      const stayedMs = (visits[i]?.at ?? 0) - (visits[i - 1]?.at ?? 0);
      // A generous lower bound (the watch delivers both ends with the same lag): no move within a second.
      expect(stayedMs).toBeGreaterThan((START_TIMEOUT_SECONDS - 1.5) * 1000);
    }

    // Once a runtime takes the heartbeat of the pod it is on, it stays there and becomes Ready.
    const current = (await getAccount('delta')).status?.placement?.pod ?? '';
    const runtime = await new FakeRuntime(current).start();
    await runtime.report('delta', ['True', 'Authorized'], ['True', 'Ready']);
    const ready = await waitForCondition('delta', 'Ready', 'True', 'Ready');
    expect(ready.status?.placement?.pod).toBe(current);
  });

  it('F14: a key deleted from the session Secret is not replaced while a session backup exists, and a foreign Secret of either name is not adopted', async () => {
    const pool = new KeepAlive('keys');
    await createAccount('echo', bot('keys'));
    const placed = await waitForCondition('echo', 'Scheduled', 'True', 'Placed');
    const created = await waitFor('echo-tdlib-session', () => readSecret('echo-tdlib-session'), {
      timeoutMs: WAIT_MS,
    });
    expect(Buffer.from(created.data?.key ?? '', 'base64')).toHaveLength(32);
    // What a runtime's backup leaves in the session Secret (any base64 will do here), and the key lost.
    await rest.mergePatch(Resources.Secret, namespace, 'echo-tdlib-session', {
      data: { session: Buffer.from('an encrypted session backup').toString('base64'), key: null },
    });

    // The operator caches its own Secrets without their content: the runtime finds the key missing when it
    // reads it, and says so, and only then does the operator look.
    const pod = placed.status?.placement?.pod ?? '';
    const runtime = await waitFor(`the runtime of ${pod}`, () => pool.byPod.get(pod), { timeoutMs: WAIT_MS });
    await runtime.report('echo', ['False', 'SessionKeyMissing'], ['False', 'Unknown']);
    await waitForCondition('echo', 'Ready', 'False', 'SessionKeyMissing');
    const event = await warningEvent('echo', 'SessionKeyMissing');
    expect(event.message).toContain('echo-tdlib-session');
    expect(event.message).toContain('Restore the key');
    // Make the account reconciler run again, seen by what it does: a runtime's new account Lease that names
    // an earlier account of this name as its owner loses that reference. Still no new key.
    await rest.delete(Resources.Lease, namespace, 'tga-echo').catch((error: unknown) => {
      if (!isNotFound(error)) throw error;
    });
    await rest.create(Resources.Lease, {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name: 'tga-echo',
        namespace,
        labels: { [LABEL_MANAGED_BY]: 'tdlib-runtime', [LABEL_ACCOUNT]: 'echo' },
        ownerReferences: [
          { apiVersion: API_VERSION, kind: 'TelegramAccount', name: 'echo', uid: randomUUID() },
        ],
      },
      spec: {},
    } as Lease);
    await waitFor(
      'the earlier owner dropped from tga-echo',
      async () =>
        ((await rest.get<Lease>(Resources.Lease, namespace, 'tga-echo')).metadata?.ownerReferences ?? [])
          .length === 0 || undefined,
      { timeoutMs: WAIT_MS },
    );
    expect((await readSecret('echo-tdlib-session')).data?.key).toBeUndefined();
    expect(await secretGone('echo-tdlib-key')).toBe(true);
    // Without the backup there is nothing a new key could orphan: the operator adds one.
    await rest.mergePatch(Resources.Secret, namespace, 'echo-tdlib-session', { data: { session: null } });
    const keyed = await waitFor(
      'a new key in echo-tdlib-session',
      async () => {
        const key = (await readSecret('echo-tdlib-session')).data?.key;
        return key === undefined ? undefined : key;
      },
      { timeoutMs: WAIT_MS },
    );
    expect(Buffer.from(keyed, 'base64')).toHaveLength(32);

    // A session Secret nobody made for this account: left alone, and the account not run with it.
    const someoneElses = { team: 'someone-else' };
    await rest.create(Resources.Secret, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'kilo-tdlib-session', namespace, labels: someoneElses },
      data: { note: Buffer.from('not yours').toString('base64') },
    } as ApiObject);
    await createAccount('kilo', bot('keys'));
    expect((await warningEvent('kilo', 'SecretNameTaken')).message).toContain('kilo-tdlib-session');
    const kilo = await waitForCondition('kilo', 'Scheduled', 'False', 'SecretNameTaken');
    expect(conditionOf(kilo, 'Scheduled')?.message).toContain('kilo-tdlib-session');
    const untouched = await readSecret('kilo-tdlib-session');
    expect(untouched.data).toEqual({ note: Buffer.from('not yours').toString('base64') });
    expect(untouched.metadata?.labels).toEqual(someoneElses);
    expect(await readableSecrets('keys')).not.toContain('kilo-tdlib-session');

    // A Secret that happens to have an account's key name, not made by the operator: left alone.
    await rest.create(Resources.Secret, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'foxtrot-tdlib-key', namespace, labels: { team: 'someone-else' } },
      data: { key: Buffer.from('not yours').toString('base64') },
    } as ApiObject);
    await createAccount('foxtrot', bot('keys'));
    const taken = await warningEvent('foxtrot', 'SecretNameTaken');
    expect(taken.message).toContain('foxtrot-tdlib-key');
    // It made the session Secret in the same pass (with its own key: the foreign one is never used).
    const own = await waitFor('foxtrot-tdlib-session', () => readSecret('foxtrot-tdlib-session'), {
      timeoutMs: WAIT_MS,
    });
    expect(Buffer.from(own.data?.key ?? '', 'base64')).toHaveLength(32);
    const foreign = await readSecret('foxtrot-tdlib-key');
    expect(foreign.data).toEqual({ key: Buffer.from('not yours').toString('base64') });
    expect(foreign.metadata?.labels).toEqual({ team: 'someone-else' });
    expect(foreign.metadata?.ownerReferences ?? []).toEqual([]);
    // Nor is the account run with it: not placed, and the runtime is not granted that Secret.
    const refused = await waitForCondition('foxtrot', 'Scheduled', 'False', 'SecretNameTaken');
    expect(refused.status?.placement?.pod).toBeUndefined();
    expect(conditionOf(refused, 'Scheduled')?.message).toContain('foxtrot-tdlib-key');
    pool.stop();
  });

  it('F17: deleting the 2FA password Secret of an account logged in on its pod does not unplace it', async () => {
    const pool = new KeepAlive('twofa');
    await secret('pw', { password: 'correct horse battery staple' });
    const user = (phone: string) => ({
      type: 'User',
      phoneNumber: phone,
      apiCredentialsSecretRef: { name: 'api' },
      passwordSecretRef: { name: 'pw' },
      runtimePool: 'twofa',
    });
    await createAccount('golf', user('+15550100201'));
    await createAccount('hotel', user('+15550100202'));
    const golf = await waitForCondition('golf', 'Scheduled', 'True', 'Placed');
    await waitForCondition('hotel', 'Scheduled', 'True', 'Placed');
    const pod = golf.status?.placement?.pod ?? '';
    const runtime = await pool.runtimeOf(pod);
    await runtime.report('golf', ['True', 'Authorized'], ['True', 'Ready']);
    await waitForCondition('golf', 'Ready', 'True', 'Ready');

    await rest.delete(Resources.Secret, namespace, 'pw');
    // hotel (not logged in) needs the password: it is unplaced, which shows the operator saw the deletion.
    await waitForCondition('hotel', 'Scheduled', 'False', 'SecretNotFound');
    // One more pass of the pool loop after that one (passes of one pool never overlap), so every write of
    // the pass that saw the deletion has landed.
    await createAccount('india', bot('twofa'));
    await waitForCondition('india', 'Scheduled', 'True', 'Placed');
    const after = await getAccount('golf');
    expect(after.status?.placement?.pod).toBe(pod);
    expect(conditionOf(after, 'Scheduled')?.status).toBe('True');
    expect(conditionOf(after, 'Ready')?.status).toBe('True');
    expect((history.get('golf') ?? []).every((o) => o.pod === undefined || o.pod === pod)).toBe(true);
    pool.stop();
  });
});
