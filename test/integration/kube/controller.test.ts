/**
 * The controller runtime end to end against the shared apiserver: cache-gated start, convergence through
 * server-side apply, zero writes when idle, retries, requeueAfter, per-key exclusivity, low priority for
 * the initial list, metrics under controller-runtime's names, and SSA field ownership.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ApiError, RestClient } from '../../../operator/kube/client.js';
import { createRegistry, metricValue } from '../../../operator/kube/metrics.js';
import { Resources, type ApiObject } from '../../../operator/kube/resource.js';
import { waitFor } from '../../cluster/wait.js';
import { adminKubeConfig, createTestNamespace } from '../../support/cluster.js';
import { FIELD_MANAGER, converged, createMirror, source, type ConfigMap, type Mirror } from './mirror.js';
import { testLogger, turnCounter } from './support.js';

const logger = testLogger('controller-test');
let rest: RestClient;
let namespace: string;

beforeAll(async () => {
  const kc = adminKubeConfig();
  rest = new RestClient(kc, { registry: createRegistry(), logger });
  namespace = await createTestNamespace(kc, 'kube-controller');
});

afterAll(async () => {
  await rest.close();
});

async function settle(mirror: Mirror): Promise<void> {
  await waitFor(
    'the queue to go idle',
    () =>
      mirror.controller.queue.len() === 0 && mirror.controller.queue.inFlight() === 0 ? true : undefined,
    {
      timeoutMs: 20_000,
    },
  );
}

describe('Controller', () => {
  it('starts workers after the caches sync, converges, and writes nothing when nothing changed', async () => {
    const suite = 'converge';
    for (let i = 0; i < 20; i++)
      await rest.create(Resources.ConfigMap, source(namespace, suite, `${i}`, { n: `${i}`, extra: 'x' }));
    const registry = createRegistry();
    const mirror = createMirror({ rest, namespace, suite, logger, registry, workers: 4 });
    // Start the sources informer and the controller, but hold the mirrors informer back: no reconcile may
    // run before every watched cache synced (it would re-apply all mirrors, seeing none).
    mirror.sources.start();
    const started = mirror.controller.start();
    try {
      await waitFor('sources synced', () => (mirror.sources.hasSynced() ? true : undefined), {
        timeoutMs: 10_000,
      });
      await rest.list(Resources.ConfigMap, { namespace, limit: 1 }); // let the event loop run a while
      expect(mirror.controller.queue.len()).toBe(20);
      expect(mirror.reconciled).toEqual([]);
      mirror.mirrors.start();
      await started;
      await waitFor(
        'convergence',
        async () => ((await converged(rest, namespace, suite)) ? true : undefined),
        { timeoutMs: 20_000 },
      );
      await settle(mirror);

      // Reconcile every key again with nothing changed: no write at all.
      const writes = rest.writeCount();
      const before = mirror.reconciled.length;
      for (let i = 0; i < 20; i++) mirror.controller.enqueue({ namespace, name: `src-${i}` });
      await waitFor(
        '20 more reconciles',
        () => (mirror.reconciled.length >= before + 20 ? true : undefined),
        { timeoutMs: 10_000 },
      );
      await settle(mirror);
      expect(rest.writeCount()).toBe(writes);

      // One change, one write (the source patch) plus one apply of its mirror.
      await rest.mergePatch(Resources.ConfigMap, namespace, 'src-3', { data: { n: 'changed' } });
      await waitFor(
        'mirror-3 updated',
        () => (mirror.mirrors.get(namespace, 'mirror-3')?.data?.n === 'changed' ? true : undefined),
        {
          timeoutMs: 10_000,
        },
      );
      await settle(mirror);
      expect(rest.writeCount()).toBe(writes + 2);

      // Dropping a key from the source drops it from the mirror: the intent hash makes that apply happen.
      await rest.mergePatch(Resources.ConfigMap, namespace, 'src-4', { data: { extra: null } });
      await waitFor(
        'extra gone from mirror-4',
        () => (mirror.mirrors.get(namespace, 'mirror-4')?.data?.extra === undefined ? true : undefined),
        {
          timeoutMs: 10_000,
        },
      );
      await rest.delete(Resources.ConfigMap, namespace, 'src-5');
      await waitFor(
        'mirror-5 deleted',
        () => (mirror.mirrors.get(namespace, 'mirror-5') === undefined ? true : undefined),
        { timeoutMs: 10_000 },
      );
      expect(await converged(rest, namespace, suite)).toBe(true);

      // Server-side apply recorded our field manager on the mirrors.
      const raw = await rest.get<ConfigMap>(Resources.ConfigMap, namespace, 'mirror-0');
      expect(JSON.stringify(raw.metadata?.managedFields)).toContain(
        `"manager":"${FIELD_MANAGER}","operation":"Apply"`,
      );

      const text = await registry.metrics();
      expect(text).toMatch(
        /controller_runtime_reconcile_total\{controller="converge",result="success"\} \d+/,
      );
      expect(text).toMatch(/controller_runtime_max_concurrent_reconciles\{controller="converge"\} 4/);
      expect(text).toMatch(/controller_runtime_active_workers\{controller="converge"\} 0/);
      expect(text).toMatch(/controller_runtime_reconcile_time_seconds_count\{controller="converge"\} \d+/);
      expect(text).toMatch(/workqueue_adds_total\{name="converge",controller="converge"\} \d+/);
      expect(text).toMatch(/workqueue_depth\{name="converge",controller="converge"\} 0/);
      expect(text).toMatch(
        /workqueue_queue_duration_seconds_bucket\{le="1",name="converge",controller="converge"\} \d+/,
      );
      expect(text).toMatch(
        /workqueue_work_duration_seconds_count\{name="converge",controller="converge"\} \d+/,
      );
    } finally {
      await mirror.stop();
    }
  }, 90_000);

  it('retries failures with backoff, honours requeueAfter, and counts both', async () => {
    const suite = 'retry';
    await rest.create(Resources.ConfigMap, source(namespace, suite, 'flaky', { v: '1' }));
    await rest.create(Resources.ConfigMap, source(namespace, suite, 'later', { v: '1' }));
    const registry = createRegistry();
    const mirror = createMirror({ rest, namespace, suite, logger, registry });
    let failures = 2;
    let laterRequeued = false;
    const laterTimes: number[] = [];
    mirror.before = (key) => {
      if (key.name === 'src-flaky' && failures > 0) {
        failures--;
        throw new Error('transient failure');
      }
      if (key.name === 'src-later') {
        laterTimes.push(Date.now());
        if (!laterRequeued) {
          laterRequeued = true;
          return { requeueAfterMs: 300 };
        }
      }
      return undefined;
    };
    await mirror.start();
    try {
      await waitFor(
        'convergence',
        async () => ((await converged(rest, namespace, suite)) ? true : undefined),
        { timeoutMs: 20_000 },
      );
      expect(failures).toBe(0);
      expect(
        await metricValue(registry, 'controller_runtime_reconcile_errors_total', { controller: suite }),
      ).toBe(2);
      expect(
        await metricValue(registry, 'controller_runtime_reconcile_total', {
          controller: suite,
          result: 'error',
        }),
      ).toBe(2);
      expect(
        await metricValue(registry, 'controller_runtime_reconcile_total', {
          controller: suite,
          result: 'requeue_after',
        }),
      ).toBe(1);
      expect(await metricValue(registry, 'workqueue_retries_total', { name: suite })).toBe(2);
      expect(mirror.controller.queue.numRequeues(`${namespace}/src-flaky`)).toBe(0); // forgotten after success
      expect(laterTimes.length).toBeGreaterThanOrEqual(2);
      expect((laterTimes[1] ?? 0) - (laterTimes[0] ?? 0)).toBeGreaterThanOrEqual(290);
    } finally {
      await mirror.stop();
    }
  }, 60_000);

  it('never reconciles one key twice at once and coalesces a burst of changes', async () => {
    const suite = 'burst';
    await rest.create(Resources.ConfigMap, source(namespace, suite, 'hot', { v: '0' }));
    const mirror = createMirror({ rest, namespace, suite, logger, registry: createRegistry(), workers: 4 });
    const inFlight = new Set<string>();
    let overlaps = 0;
    let hotReconciles = 0;
    mirror.before = async (key) => {
      const id = `${key.namespace}/${key.name}`;
      if (inFlight.has(id)) overlaps++;
      inFlight.add(id);
      if (key.name === 'src-hot') hotReconciles++;
      await new Promise((resolve) => setTimeout(resolve, 30));
      inFlight.delete(id);
    };
    await mirror.start();
    try {
      await waitFor(
        'convergence',
        async () => ((await converged(rest, namespace, suite)) ? true : undefined),
        { timeoutMs: 20_000 },
      );
      const before = hotReconciles;
      const patches = 30;
      await Promise.all(
        Array.from({ length: patches }, (_, i) =>
          rest.mergePatch(Resources.ConfigMap, namespace, 'src-hot', { data: { [`k${i}`]: 'x' } }),
        ),
      );
      await waitFor(
        'the mirror to carry every key',
        () => {
          const data = mirror.mirrors.get(namespace, 'mirror-hot')?.data ?? {};
          return Object.keys(data).length === patches + 1 ? true : undefined;
        },
        { timeoutMs: 20_000 },
      );
      expect(overlaps).toBe(0);
      // 30 changes (plus the mirror's own events) were coalesced into fewer reconciles.
      expect(hotReconciles - before).toBeLessThan(patches);
      expect(await converged(rest, namespace, suite)).toBe(true);
    } finally {
      await mirror.stop();
    }
  }, 60_000);

  it('starts its workers one per event-loop turn, so a full queue does not begin every first reconcile in one', async () => {
    const suite = 'stagger';
    const workers = 8;
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        rest.create(Resources.ConfigMap, source(namespace, suite, `stagger-${i}`, { v: '1' })),
      ),
    );
    const mirror = createMirror({ rest, namespace, suite, logger, registry: createRegistry(), workers });
    // In which event-loop turn each worker begins its first reconcile.
    const turns = turnCounter();
    const firstTurns: number[] = [];
    let release = (): void => undefined;
    const released = new Promise<void>((resolve) => (release = resolve));
    // Each reconcile waits until released, so every worker stays on its first key.
    mirror.before = async () => {
      firstTurns.push(turns.current());
      await released;
      return undefined;
    };
    try {
      await mirror.start();
      await waitFor(
        'every worker on its first key',
        () => (firstTurns.length >= workers ? true : undefined),
        {
          timeoutMs: 10_000,
        },
      );
      expect(firstTurns).toHaveLength(workers);
      expect(new Set(firstTurns).size).toBe(workers);
    } finally {
      turns.stop();
      release();
      await mirror.stop();
    }
  }, 60_000);

  it('queues the initial list at low priority, so a live change is reconciled before the backlog', async () => {
    const suite = 'priority';
    const backlog = 150;
    await Promise.all(
      Array.from({ length: backlog }, (_, i) =>
        rest.create(Resources.ConfigMap, source(namespace, suite, `old-${i}`, { v: '1' })),
      ),
    );
    const mirror = createMirror({ rest, namespace, suite, logger, registry: createRegistry(), workers: 1 });
    // Slow reconciles keep the backlog queued long enough for the live change to overtake it.
    mirror.before = () => new Promise((resolve) => setTimeout(resolve, 20));
    await mirror.start();
    try {
      await rest.create(Resources.ConfigMap, source(namespace, suite, 'live', { v: '1' }));
      await waitFor(
        'the live key reconciled',
        () => (mirror.reconciled.includes(`${namespace}/src-live`) ? true : undefined),
        {
          timeoutMs: 30_000,
        },
      );
      const position = mirror.reconciled.indexOf(`${namespace}/src-live`);
      expect(position).toBeLessThan(backlog / 3);
      expect(mirror.controller.queue.len()).toBeGreaterThan(backlog / 3);
    } finally {
      await mirror.stop();
    }
  }, 90_000);
});

describe('server-side apply', () => {
  it('tracks ownership per field manager: a conflicting apply fails without force and wins with it', async () => {
    const intent = (value: string) => ({ metadata: { name: 'ssa', namespace }, data: { shared: value } });
    await rest.applyPatch(Resources.ConfigMap, intent('from-a'), { fieldManager: 'manager-a' });
    const conflict = await rest
      .applyPatch(Resources.ConfigMap, intent('from-b'), { fieldManager: 'manager-b', force: false })
      .catch((e: unknown) => e);
    expect(conflict).toBeInstanceOf(ApiError);
    expect(conflict).toMatchObject({ status: 409, reason: 'Conflict' });
    expect((conflict as ApiError).message).toContain('manager-a');
    const forced = await rest.applyPatch<ConfigMap>(Resources.ConfigMap, intent('from-b'), {
      fieldManager: 'manager-b',
    });
    expect(forced.data?.shared).toBe('from-b');
    const owners = JSON.stringify(forced.metadata?.managedFields);
    expect(owners).toContain('"manager":"manager-b"');
    expect(owners).not.toContain('"manager":"manager-a"'); // it owned only that field, now taken over

    // Status subresource apply (Pods have one; no kubelet runs here, so nobody else writes it).
    await rest.create(Resources.Pod, {
      metadata: { name: 'status-apply', namespace },
      spec: { containers: [{ name: 'c', image: 'example.invalid/none' }] },
    } as never);
    const withStatus = await rest.applyStatus<
      ApiObject & { status?: { conditions?: Array<{ type: string; status: string }> } }
    >(
      Resources.Pod,
      {
        metadata: { name: 'status-apply', namespace },
        status: { conditions: [{ type: 'tdlib.dev/Probe', status: 'True' }] },
      } as never,
      { fieldManager: 'status-writer' },
    );
    expect(withStatus.status?.conditions).toEqual(
      expect.arrayContaining([expect.objectContaining({ type: 'tdlib.dev/Probe', status: 'True' })]),
    );
  }, 30_000);
});
