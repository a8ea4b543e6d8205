/**
 * StatusWriter (runtime/hosting/status-writer.ts) against the real apiserver and the real TelegramAccount
 * CRD (F10, F15): it writes hostedBy and the runtime conditions only for accounts placed on its pod, never
 * again once the placement names another pod, never on a decision made on an object that changed since
 * (the resourceVersion precondition), nothing while the fence is not valid (and the pending write after
 * resume()), and persistent failures back off exponentially with few warnings.
 */
import { execFileSync } from 'node:child_process';
import { Writable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { API_VERSION, TELEGRAM_ACCOUNT_KIND, type TelegramAccount } from '../../../crds/index.js';
import { TelegramAccountResource } from '../../../crds/resources.js';
import { RestClient, type ApplyOptions } from '../../../operator/kube/client.js';
import { createLogger } from '../../../operator/kube/logging.js';
import { createRegistry } from '../../../operator/kube/metrics.js';
import type { ApiObject, ResourceDescriptor } from '../../../operator/kube/resource.js';
import {
  desiredOperatorStatus,
  operatorStatusCurrent,
  statusApplyBody,
  type PodHealth,
} from '../../../operator/pool/account-status.js';
import { STATUS_FIELD_MANAGER } from '../../../operator/pool/controller.js';
import { RUNTIME_FIELD_MANAGER, type HostedView } from '../../../runtime/hosting/status.js';
import { StatusWriter } from '../../../runtime/hosting/status-writer.js';
import { waitFor } from '../../cluster/wait.js';
import { adminKubeConfig, createTestNamespace, testCluster, tokenKubeConfig } from '../../support/cluster.js';
import { installCrds } from '../../support/crds.js';
import { testLogger } from '../kube/support.js';

type Account = TelegramAccount &
  ApiObject & {
    metadata: { managedFields?: Array<{ manager?: string; subresource?: string }> };
  };

const logger = testLogger('fence-status-writer');
const POD = 'runtime-0';
const OTHER_POD = 'runtime-1';
const READY: HostedView = {
  generation: 1,
  authorizationState: 'Ready',
  connectionState: 'Ready',
  user: { id: 7000000001, username: 'demo_bot', isBot: true },
};

let kc: k8s.KubeConfig;
let rest: RestClient;
let namespace: string;
/** What the runtime's informer would hold: the test decides what `cached` returns. */
const cache = new Map<string, Account>();
const writers: StatusWriter[] = [];

beforeAll(async () => {
  kc = adminKubeConfig();
  await installCrds(kc);
  rest = new RestClient(kc, { registry: createRegistry(), logger });
  namespace = await createTestNamespace(kc, 'fence-status');
});

afterAll(async () => {
  await rest.close();
});

afterEach(() => {
  for (const writer of writers.splice(0)) for (const name of cache.keys()) writer.forget(namespace, name);
});

async function createAccount(name: string, pod: string): Promise<Account> {
  const account = await rest.create<Account>(TelegramAccountResource, {
    apiVersion: API_VERSION,
    kind: TELEGRAM_ACCOUNT_KIND,
    metadata: { name, namespace },
    spec: {
      type: 'Bot',
      botTokenSecretRef: { name: 'bot-token' },
      apiCredentialsSecretRef: { name: 'api' },
    },
  } as Account);
  cache.set(name, account);
  return placeOn(account.metadata.name ?? name, pod);
}

async function getAccount(name: string): Promise<Account> {
  return rest.get<Account>(TelegramAccountResource, namespace, name);
}

/** The informer catches up: `cached` returns the API's current object. */
async function refresh(name: string): Promise<Account> {
  const account = await getAccount(name);
  cache.set(name, account);
  return account;
}

/** The operator places or moves the account: status.placement names the pod. */
async function placeOn(name: string, pod: string): Promise<Account> {
  await rest.mergePatch(
    TelegramAccountResource,
    namespace,
    name,
    { status: { placement: { pool: 'default', pod } } },
    { subresource: 'status' },
  );
  return refresh(name);
}

/** kubectl, synchronously: a change that lands exactly while the writer is between deciding and writing. */
function kubectl(...args: string[]): void {
  execFileSync('kubectl', ['--kubeconfig', testCluster().kubeconfigPath, '-n', namespace, ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
}

function statusWriter(
  options: {
    pod?: string;
    rest?: RestClient;
    fenceValid?: () => boolean;
    cached?: (namespace: string, name: string) => TelegramAccount | undefined;
    logger?: ReturnType<typeof createLogger>;
    coalesceMs?: number;
    settleMs?: number;
  } = {},
): StatusWriter {
  const writer = new StatusWriter({
    rest: options.rest ?? rest,
    logger: options.logger ?? logger,
    podName: options.pod ?? POD,
    fenceValid: options.fenceValid ?? (() => true),
    cached: options.cached ?? ((_namespace, name) => cache.get(name)),
    coalesceMs: options.coalesceMs,
    settleMs: options.settleMs,
  });
  writers.push(writer);
  return writer;
}

function runtimeManaged(account: Account): boolean {
  return (account.metadata.managedFields ?? []).some(
    (f) => f.manager === RUNTIME_FIELD_MANAGER && f.subresource === 'status',
  );
}

function condition(account: Account, type: string): { status?: string; reason?: string } | undefined {
  return account.status?.conditions?.find((c) => c.type === type);
}

describe('StatusWriter', () => {
  it('writes status.hostedBy and the runtime conditions of an account placed on its pod', async () => {
    await createAccount('placed', POD);
    const writer = statusWriter();
    writer.report(namespace, 'placed', READY);
    const account = await waitFor(
      'the status write',
      async () => {
        const a = await getAccount('placed');
        return a.status?.hostedBy === POD ? a : undefined;
      },
      { timeoutMs: 10_000 },
    );
    expect(account.status?.authorizationState).toBe('Ready');
    expect(account.status?.connectionState).toBe('Ready');
    expect(account.status?.user).toMatchObject({ id: 7000000001, username: 'demo_bot' });
    expect(condition(account, 'Authorized')).toMatchObject({ status: 'True', reason: 'Authorized' });
    expect(condition(account, 'Connected')).toMatchObject({ status: 'True' });
    expect(runtimeManaged(account)).toBe(true);
    // The writer counts the write once the API server's answer reaches it, which may be after our read.
    await waitFor('the writer to count its write', () => (writer.writes >= 1 ? true : undefined), {
      timeoutMs: 10_000,
    });
    expect(writer.writes).toBe(1);
  });

  it("writes Ready as the operator derives it: shared with the operator's equal apply, yielded to its RuntimeLost", async () => {
    // The operator places the account as it does: placement, Scheduled and Ready (WaitingForRuntime), applied.
    const created = await createAccount('ready-shared', POD);
    const operatorWants = (account: Account, health: PodHealth): ReturnType<typeof desiredOperatorStatus> =>
      desiredOperatorStatus(
        account,
        { pool: 'default', inputs: { ok: true }, outcome: { pod: POD }, podHealth: () => health },
        new Date(),
      );
    const operatorApply = async (health: PodHealth): Promise<Account> => {
      const current = await getAccount('ready-shared');
      const desired = operatorWants(current, health);
      await rest.applyStatus(TelegramAccountResource, statusApplyBody(current, desired), {
        fieldManager: STATUS_FIELD_MANAGER,
        force: true,
      });
      return refresh('ready-shared');
    };
    const alive: PodHealth = { state: 'alive' };
    const waiting = await operatorApply(alive);
    expect(created.status?.placement?.pod).toBe(POD);
    expect(condition(waiting, 'Ready')).toMatchObject({ status: 'Unknown', reason: 'WaitingForRuntime' });

    const writer = statusWriter();
    writer.report(namespace, 'ready-shared', READY);
    const reported = await waitFor(
      'the runtime to write Ready',
      async () => {
        const a = await getAccount('ready-shared');
        return condition(a, 'Ready')?.status === 'True' ? a : undefined;
      },
      { timeoutMs: 10_000 },
    );
    expect(condition(reported, 'Ready')).toMatchObject({ reason: 'Ready' });
    expect(writer.conflicts).toBe(0);
    // Knowing the pod alive, the operator would write exactly this: it finds the status current.
    expect(operatorStatusCurrent(reported, operatorWants(reported, alive))).toBe(true);
    // Its next apply for another reason sets the same Ready: no conflict, the value stays, both own it.
    const shared = await operatorApply(alive);
    expect(condition(shared, 'Ready')).toMatchObject({ status: 'True', reason: 'Ready' });
    const readyOwners = (a: Account): string[] =>
      (a.metadata.managedFields ?? [])
        .filter((f) => f.subresource === 'status' && JSON.stringify(f).includes('{\\"type\\":\\"Ready\\"}'))
        .map((f) => f.manager ?? '')
        .sort();
    expect(readyOwners(shared)).toEqual([RUNTIME_FIELD_MANAGER, STATUS_FIELD_MANAGER].sort());

    // The pod declared dead: the operator's Ready replaces the pod's, which the pod (fenced) never rewrites.
    const lost = await operatorApply({ state: 'dead', why: 'heartbeat not renewed' });
    expect(condition(lost, 'Ready')).toMatchObject({ status: 'Unknown', reason: 'RuntimeLost' });
  });

  it("writes an account's burst of changes as one, and other accounts' steady reports never hold it back", async () => {
    await createAccount('bursty', POD);
    await createAccount('chatty', POD);
    const writer = statusWriter({ coalesceMs: 300 });
    // Another account changes every 50 ms for as long as the test runs.
    let chattering = true;
    let reports = 0;
    const chatter = (async () => {
      while (chattering) {
        const connectionState = reports++ % 2 ? 'Ready' : 'Updating';
        writer.report(namespace, 'chatty', { ...READY, connectionState });
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    // Every state bursty's status shows, polled far more often than the window.
    const seen: string[] = [];
    let watching = true;
    const watch = (async () => {
      while (watching) {
        const state = (await getAccount('bursty')).status?.authorizationState;
        if (state && seen.at(-1) !== state) seen.push(state);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    try {
      // A bot's start, its states 60 ms apart (a busy runtime), beginning late in chatty's window: a window
      // shared by all accounts would cut this burst in two and show a state that lasted 60 ms.
      await new Promise((r) => setTimeout(r, 250));
      for (const authorizationState of ['WaitTdlibParameters', 'WaitPhoneNumber', 'Ready']) {
        writer.report(namespace, 'bursty', { ...READY, authorizationState, connectionState: 'Connecting' });
        await new Promise((r) => setTimeout(r, 60));
      }
      writer.report(namespace, 'bursty', READY);
      const bursty = await waitFor(
        'bursty written while chatty keeps changing',
        async () => {
          const a = await getAccount('bursty');
          return a.status?.connectionState === 'Ready' ? a : undefined;
        },
        { timeoutMs: 10_000 },
      );
      expect(chattering).toBe(true);
      expect(bursty.status?.authorizationState).toBe('Ready');
    } finally {
      chattering = false;
      watching = false;
      await Promise.all([chatter, watch]);
    }
    expect(seen).toEqual(['Ready']);
    await writer.flush();
    // chatty's changes were written once per window at most, not once per report.
    expect(writer.writes).toBeLessThan(reports);
  });

  it('holds a start for the settle window: a start that completes within it is one write, a stalled one is shown when it ends', async () => {
    await createAccount('quick-start', POD);
    await createAccount('stalled-start', POD);
    const settleMs = 1500;
    const writer = statusWriter({ coalesceMs: 100, settleMs });
    const seen: string[] = [];
    let stalledShownAfterMs: number | undefined;
    const session = { backupSecretName: 'quick-start-tdlib-session' };
    const stalledAt = performance.now();
    writer.report(namespace, 'stalled-start', { authReason: 'Starting', session });
    let watching = true;
    const watch = (async () => {
      while (watching) {
        const [quick, stalled] = await Promise.all([getAccount('quick-start'), getAccount('stalled-start')]);
        const reason = condition(quick, 'Authorized')?.reason;
        if (reason && seen.at(-1) !== reason) seen.push(reason);
        if (stalled.status?.hostedBy && stalledShownAfterMs === undefined)
          stalledShownAfterMs = performance.now() - stalledAt;
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    try {
      // A bot's start on a busy runtime, each step 150 ms after the last: every state but the last is one
      // the client leaves by itself, so none of them is written.
      const steps: HostedView[] = [
        { authReason: 'Starting', session },
        { authorizationState: 'WaitTdlibParameters', session },
        { authorizationState: 'WaitPhoneNumber', session },
        { ...READY, connectionState: 'Connecting', user: undefined, session },
        { ...READY, session },
        { ...READY, session: { ...session, lastBackupTime: new Date().toISOString() } },
      ];
      for (const step of steps) {
        writer.report(namespace, 'quick-start', step);
        await new Promise((r) => setTimeout(r, 150));
      }
      await waitFor(
        'the finished start to be written',
        async () => ((await getAccount('quick-start')).status?.session?.lastBackupTime ? true : undefined),
        { timeoutMs: 10_000 },
      );
      await waitFor(
        'the stalled start to be shown',
        () => (stalledShownAfterMs === undefined ? undefined : true),
        {
          timeoutMs: 10_000,
        },
      );
      // Not before its window ended (the watch polls every 20 ms, so it would have seen an early write).
      expect(stalledShownAfterMs).toBeGreaterThanOrEqual(settleMs);
      const stalled = await getAccount('stalled-start');
      expect(condition(stalled, 'Authorized')).toMatchObject({ status: 'False', reason: 'Starting' });
    } finally {
      watching = false;
      await watch;
    }
    expect(seen).toEqual(['Authorized']);
    await writer.flush();
    expect(writer.writes).toBe(2);
  });

  it('writes every account when more report at once than it keeps writes in flight (32)', async () => {
    const names = Array.from({ length: 80 }, (_, i) => `many-${i}`);
    for (const name of names) await createAccount(name, POD);
    const writer = statusWriter({ coalesceMs: 50 });
    for (const name of names) writer.report(namespace, name, READY);
    await waitFor(
      'all 80 written',
      async () => {
        const written = await Promise.all(names.map(async (n) => (await getAccount(n)).status?.hostedBy));
        return written.every((pod) => pod === POD) ? true : undefined;
      },
      { timeoutMs: 30_000 },
    );
    expect(writer.pendingCount).toBe(0);
    await waitFor(
      'the writer to count its writes',
      () => (writer.writes === names.length ? true : undefined),
      {
        timeoutMs: 10_000,
      },
    );
  });

  it('never writes again once the placement names another pod (F10)', async () => {
    await createAccount('moved', POD);
    const writer = statusWriter();
    writer.report(namespace, 'moved', READY);
    await waitFor('the first write', () => (writer.writes === 1 ? true : undefined), { timeoutMs: 10_000 });

    const moved = await placeOn('moved', OTHER_POD);
    writer.report(namespace, 'moved', { ...READY, connectionState: 'Connecting' });
    await writer.flush();
    writer.report(namespace, 'moved', { ...READY, authorizationState: 'Closed', stoppedReason: 'Moved' });
    await waitFor(
      'both reports to be refused',
      () => (writer.refused >= 2 && writer.pendingCount === 0 ? true : undefined),
      { timeoutMs: 10_000 },
    );
    let account = await getAccount('moved');
    expect(account.metadata.resourceVersion).toBe(moved.metadata.resourceVersion);
    expect(account.status?.connectionState).toBe('Ready');
    expect(writer.writes).toBe(1);

    // The new host writes; the old one, reporting again (its client closing), still writes nothing.
    const newHost = statusWriter({ pod: OTHER_POD });
    newHost.report(namespace, 'moved', READY);
    account = await waitFor(
      'the new host to write',
      async () => {
        const a = await getAccount('moved');
        return a.status?.hostedBy === OTHER_POD ? a : undefined;
      },
      { timeoutMs: 10_000 },
    );
    await refresh('moved');
    const refused = writer.refused;
    writer.report(namespace, 'moved', { ...READY, authorizationState: 'Closed', stoppedReason: 'Moved' });
    await waitFor('the report to be refused', () => (writer.refused > refused ? true : undefined), {
      timeoutMs: 10_000,
    });
    const after = await getAccount('moved');
    expect(after.metadata.resourceVersion).toBe(account.metadata.resourceVersion);
    expect(after.status?.hostedBy).toBe(OTHER_POD);
    expect(after.status?.authorizationState).toBe('Ready');
    expect(writer.writes).toBe(1);
  });

  it('a write decided on an object that changed since is refused by the API, and not retried once the account moved', async () => {
    const stale = await createAccount('raced', POD);
    let moved = false;
    const writer = statusWriter({
      cached: () => {
        if (!moved) {
          moved = true;
          // The operator moves it after the writer read its cache and before the write goes out.
          kubectl(
            'patch',
            'telegramaccounts.telegram.tdlib-operator.dev/raced',
            '--subresource=status',
            '--type=merge',
            '-p',
            JSON.stringify({ status: { placement: { pool: 'default', pod: OTHER_POD } } }),
          );
        }
        return stale; // an informer that has not caught up yet
      },
    });
    writer.report(namespace, 'raced', READY);
    await waitFor(
      'the write to be refused and dropped',
      () => (writer.conflicts === 1 && writer.refused === 1 && writer.pendingCount === 0 ? true : undefined),
      { timeoutMs: 10_000 },
    );
    expect(moved).toBe(true);
    expect(writer.writes).toBe(0);
    expect(writer.failures).toBe(0);
    const account = await getAccount('raced');
    expect(account.status?.placement?.pod).toBe(OTHER_POD);
    expect(account.status?.hostedBy).toBeUndefined();
    expect(runtimeManaged(account)).toBe(false);
  });

  it('after such a conflict on an account still placed here, it decides again on the fresh object and writes', async () => {
    const stale = await createAccount('touched', POD);
    let touched = false;
    const writer = statusWriter({
      cached: () => {
        if (!touched) {
          touched = true;
          kubectl(
            'annotate',
            'telegramaccounts.telegram.tdlib-operator.dev/touched',
            'example.com/note=changed',
          );
        }
        return stale;
      },
    });
    writer.report(namespace, 'touched', READY);
    await waitFor('the write after the conflict', () => (writer.writes === 1 ? true : undefined), {
      timeoutMs: 10_000,
    });
    expect(writer.conflicts).toBe(1);
    const account = await getAccount('touched');
    expect(account.status?.hostedBy).toBe(POD);
    expect(account.metadata.annotations?.['example.com/note']).toBe('changed');
  });

  it('writes nothing while the fence is not valid, and the pending write goes out on resume()', async () => {
    const created = await createAccount('fenced', POD);
    let valid = false;
    const writer = statusWriter({ fenceValid: () => valid });
    writer.report(namespace, 'fenced', READY);
    await waitFor(
      'the write to be held back',
      () => (writer.refused >= 1 && writer.pendingCount === 1 ? true : undefined),
      { timeoutMs: 10_000 },
    );
    const account = await getAccount('fenced');
    expect(account.metadata.resourceVersion).toBe(created.metadata.resourceVersion);
    expect(account.status?.hostedBy).toBeUndefined();
    expect(writer.writes).toBe(0);

    valid = true;
    writer.resume();
    await waitFor(
      'the pending write',
      async () =>
        (await getAccount('fenced')).status?.hostedBy === POD && writer.writes >= 1 ? true : undefined,
      { timeoutMs: 10_000 },
    );
    expect(writer.writes).toBe(1);
    expect(writer.pendingCount).toBe(0);
  });

  it('backs off exponentially on persistent failures (a ServiceAccount without status rights), warning only a few times (F15)', async () => {
    await createAccount('forbidden', POD);
    const core = kc.makeApiClient(k8s.CoreV1Api);
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'no-status' } } });
    const token = await waitFor(
      'a token for the ServiceAccount',
      async () =>
        (
          await core.createNamespacedServiceAccountToken({
            namespace,
            name: 'no-status',
            body: {
              spec: { audiences: ['https://kubernetes.default.svc.cluster.local'], expirationSeconds: 600 },
            },
          })
        ).status?.token,
      { timeoutMs: 10_000 },
    );
    const attempts = new CountingRest(tokenKubeConfig(kc, token), { registry: createRegistry(), logger });
    const lines: string[] = [];
    const captured = createLogger({
      name: 'status-writer',
      level: 'warn',
      destination: new Writable({
        write(chunk: Buffer, _encoding, done) {
          lines.push(chunk.toString('utf8'));
          done();
        },
      }),
    });
    const writer = statusWriter({ rest: attempts, logger: captured });
    try {
      writer.report(namespace, 'forbidden', READY);
      const FAILURES = 5;
      await waitFor('five failed attempts', () => (writer.failures >= FAILURES ? true : undefined), {
        timeoutMs: 30_000,
      });
      const times = attempts.statusAttempts.slice(0, FAILURES);
      // Each retry waits at least 0.8 x 500 ms x 2^(n-1) (the writer's default schedule with its jitter).
      const minimum = [0, 400, 800, 1600, 3200];
      for (let i = 1; i < FAILURES; i++) {
        expect((times[i] ?? 0) - (times[i - 1] ?? 0)).toBeGreaterThanOrEqual((minimum[i] ?? 0) - 2);
      }
      // So five attempts span at least 6 s; a 50 ms retry loop makes about 120 attempts in that time.
      const span = (times[FAILURES - 1] ?? 0) - (times[0] ?? 0);
      expect(span).toBeGreaterThanOrEqual(6000 - 10);
      const warnings = lines
        .map((l) => JSON.parse(l) as { msg?: string; failures?: number })
        .filter((l) => l.msg === 'status write failed; retrying with backoff');
      // Warned at the first failure and at every fifth.
      expect(warnings.length).toBeGreaterThanOrEqual(1);
      expect(warnings.length).toBeLessThanOrEqual(1 + Math.floor(writer.failures / 5));
      expect(writer.writes).toBe(0);
      expect((await getAccount('forbidden')).status?.hostedBy).toBeUndefined();
    } finally {
      writer.forget(namespace, 'forbidden');
      await attempts.close();
    }
  });
});

/** The ServiceAccount's client, noting when each status write attempt was sent. */
class CountingRest extends RestClient {
  readonly statusAttempts: number[] = [];

  override applyStatus<T extends ApiObject = ApiObject>(
    resource: ResourceDescriptor,
    obj: ApiObject,
    options: ApplyOptions,
  ): Promise<T> {
    this.statusAttempts.push(performance.now());
    return super.applyStatus<T>(resource, obj, options);
  }
}
