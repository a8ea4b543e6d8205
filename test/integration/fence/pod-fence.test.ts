/**
 * PodFence (runtime/hosting/fence.ts) against the real apiserver, its heartbeat renewed through a TCP proxy
 * that can stall or slow the path (F2): validity lapses at validUntil = last send + D - margin from a
 * timer, while the renewal is still stuck, and strictly before a contender judging expiry on its own clock
 * could take the heartbeat; it comes back by itself when the path heals (nothing terminal, F5b); and a
 * slow answer never extends validity past its send time + D - margin.
 */
import { Writable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { RestClient } from '../../../operator/kube/client.js';
import {
  LeaseLock,
  leaseExpired,
  type LeaseObject,
  type TakeoverRule,
} from '../../../operator/kube/lease.js';
import { createLogger, type Logger } from '../../../operator/kube/logging.js';
import { createRegistry } from '../../../operator/kube/metrics.js';
import { Resources } from '../../../operator/kube/resource.js';
import { pause } from '../../../operator/kube/util.js';
import { PodFence, fenceTiming } from '../../../runtime/hosting/fence.js';
import { waitFor } from '../../cluster/wait.js';
import { ApiProxy, kubeConfigVia } from '../../support/api-proxy.js';
import { adminKubeConfig, createTestNamespace } from '../../support/cluster.js';
import { testLogger } from '../kube/support.js';

const logger = testLogger('fence-pod-fence');
// RUNTIME-like: D = 3 s, so validity is the last send + 2.4 s, renewals every 1 s, margin 0.6 s.
const LEASE_SECONDS = 3;
const timing = fenceTiming(LEASE_SECONDS);

/** A full garbage collection now, as happens at any time in a busy runtime (--expose-gc, set at run time). */
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

let namespace: string;
let proxy: ApiProxy;
/** The fence's own client, through the proxy (the runtime gives Leases their own client too). */
let viaProxy: RestClient;
/** Everyone else (the operator creating the Lease, the contender): a direct connection. */
let direct: RestClient;
const fences: PodFence[] = [];
const stops: AbortController[] = [];

beforeAll(async () => {
  const kc = adminKubeConfig();
  namespace = await createTestNamespace(kc, 'fence-pod');
  const server = kc.getCurrentCluster()?.server;
  if (!server) throw new Error('the admin kubeconfig names no server');
  proxy = await ApiProxy.start(server);
  viaProxy = new RestClient(kubeConfigVia(kc, proxy), {
    registry: createRegistry(),
    logger,
    maxConcurrentRequests: 16,
  });
  direct = new RestClient(kc, { registry: createRegistry(), logger });
});

afterEach(async () => {
  for (const stop of stops.splice(0)) stop.abort();
  proxy.delay(0);
  proxy.resume();
  await Promise.all(fences.splice(0).map((f) => f.abandon()));
});

afterAll(async () => {
  await viaProxy.close();
  await direct.close();
  await proxy.close();
});

interface ValidityEvent {
  valid: boolean;
  at: number;
  /** The fence's validUntil right after the change (at + remainingMs). */
  until: number;
  /** When the proxy last received bytes from the fence's client: no earlier than its last send. */
  lastSentBy: number | undefined;
}

/** The operator's part: a heartbeat Lease nobody holds yet. */
async function heartbeatLease(name: string): Promise<void> {
  await direct.create<LeaseObject>(Resources.Lease, {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name, namespace },
    spec: { leaseDurationSeconds: LEASE_SECONDS },
  });
}

function podFence(
  pod: string,
  now?: () => number,
  fenceLogger: Logger = logger,
): { fence: PodFence; events: ValidityEvent[] } {
  const fence = new PodFence({
    lock: new LeaseLock({
      rest: viaProxy,
      namespace,
      name: pod,
      identity: `${pod}/uid-1/0001`,
      durationSeconds: LEASE_SECONDS,
      create: false,
      now,
    }),
    timing,
    logger: fenceLogger,
    now,
  });
  const events: ValidityEvent[] = [];
  fence.onValidityChange((valid) => {
    const at = performance.now();
    events.push({ valid, at, until: at + fence.remainingMs(), lastSentBy: proxy.lastClientDataAt });
  });
  fences.push(fence);
  return { fence, events };
}

/**
 * A second runtime judging the heartbeat on its own clock through a direct connection, as often as it can.
 * It never takes the Lease: it notes the earliest moment it could have (first sight of the record it
 * finds expired + D), which is when a real contender would.
 */
function watchingContender(pod: string): { couldTakeAt: () => number | undefined } {
  const contender = new LeaseLock({
    rest: direct,
    namespace,
    name: pod,
    identity: `${pod}/uid-2/0002`,
    durationSeconds: LEASE_SECONDS,
    create: false,
  });
  let couldTakeAt: number | undefined;
  const rule: TakeoverRule = ({ record, unchangedForMs }) => {
    if (couldTakeAt === undefined && leaseExpired(record, unchangedForMs, LEASE_SECONDS))
      couldTakeAt = performance.now() - unchangedForMs + LEASE_SECONDS * 1000;
    return false;
  };
  const stop = new AbortController();
  stops.push(stop);
  void (async () => {
    while (!stop.signal.aborted) {
      await contender.tryAcquireOrRenew({ mayTakeOver: rule }).catch(() => undefined);
      await pause(20, stop.signal);
    }
  })();
  return { couldTakeAt: () => couldTakeAt };
}

describe('PodFence', () => {
  it('lapses at validUntil while its renewal hangs, before a contender could take over, and recovers by itself', async () => {
    await heartbeatLease('runtime-stall');
    const { fence, events } = podFence('runtime-stall');
    await fence.start();
    expect(fence.valid()).toBe(true);
    // Started once the fence holds the heartbeat (a free Lease it would simply take).
    const contender = watchingContender('runtime-stall');
    await waitFor(
      'two renewals after the first acquisition',
      () => (fence.renewals >= 3 ? true : undefined),
      {
        timeoutMs: 10_000,
      },
    );

    // Every renewal that can still succeed reached the proxy before this moment.
    const lastSentBy = proxy.lastClientDataAt ?? Number.NaN;
    proxy.pause();
    const pausedAt = performance.now();
    const renewalsAtPause = fence.renewals;
    const failuresAtPause = fence.failures;
    // A renewal goes out and hangs; the process collects garbage meanwhile (its deadline must survive that).
    await waitFor('a renewal to hang in the proxy', () => (proxy.bufferedBytes > 0 ? true : undefined), {
      timeoutMs: timing.durationMs,
      intervalMs: 20,
    });
    collectGarbage();

    const lapse = await waitFor('the fence to lapse', () => events.find((e) => !e.valid && e.at > pausedAt), {
      timeoutMs: timing.durationMs + 5_000,
      intervalMs: 20,
    });
    const extended = events.filter((e) => e.valid && e.at < lapse.at);
    const validUntil = extended[extended.length - 1]?.until ?? Number.NaN;
    // The timer reports it at validUntil, not whenever the stuck renewal ends.
    expect(lapse.at).toBeGreaterThanOrEqual(validUntil);
    expect(lapse.at).toBeLessThan(validUntil + timing.marginMs / 2);
    expect(fence.valid()).toBe(false);
    expect(fence.remainingMs()).toBeLessThanOrEqual(0);
    expect(() => fence.check('a TDLib request')).toThrow(/not valid/);
    expect(fence.renewals).toBe(renewalsAtPause);
    // Counted from the send of the last renewal that got through, never from its answer.
    expect(validUntil).toBeLessThanOrEqual(lastSentBy + timing.durationMs - timing.marginMs);

    const couldTakeAt = await waitFor('the contender to find the heartbeat expired', contender.couldTakeAt, {
      timeoutMs: timing.durationMs + 5_000,
      intervalMs: 20,
    });
    expect(lapse.at).toBeLessThan(couldTakeAt);
    expect(fence.valid()).toBe(false);
    // A hung request does not hold the loop: each attempt gives up at its deadline and the next one starts.
    await waitFor(
      'renewal attempts to time out and be tried again',
      () => (fence.failures >= failuresAtPause + 2 ? true : undefined),
      { timeoutMs: timing.durationMs + 5_000 },
    );
    expect(fence.valid()).toBe(false);

    proxy.resume();
    await waitFor('the fence to be valid again', () => (fence.valid() ? true : undefined), {
      timeoutMs: 15_000,
    });
    expect(events[events.length - 1]?.valid).toBe(true);
    const lease = await direct.get<LeaseObject>(Resources.Lease, namespace, 'runtime-stall');
    expect(lease.spec?.holderIdentity).toBe(fence.identity);
    await waitFor('renewals to go on', () => (fence.renewals >= renewalsAtPause + 2 ? true : undefined), {
      timeoutMs: 10_000,
    });
    expect(fence.valid()).toBe(true);
  });

  it('a slowly answered renewal extends validity only to its send time + D - margin', async () => {
    await heartbeatLease('runtime-slow');
    const { fence, events } = podFence('runtime-slow');
    await fence.start();
    await waitFor('a renewal after the first acquisition', () => (fence.renewals >= 2 ? true : undefined), {
      timeoutMs: 10_000,
    });

    // Requests now reach the apiserver 500 ms after they were sent: slow, but within each attempt's budget.
    const delayMs = 500;
    proxy.delay(delayMs);
    const slowFrom = performance.now();
    const slow = await waitFor(
      'three renewals answered slowly',
      () => {
        const renewed = events.filter((e) => e.valid && e.at > slowFrom + delayMs);
        return renewed.length >= 3 ? renewed : undefined;
      },
      { timeoutMs: 15_000 },
    );
    for (const renewal of slow) {
      const sentBy = renewal.lastSentBy ?? Number.NaN;
      // The answer really came at least `delayMs` after the request left...
      expect(renewal.at - sentBy).toBeGreaterThanOrEqual(delayMs - 1);
      // ...and validity counts from the send, not from the answer.
      expect(renewal.until).toBeLessThanOrEqual(sentBy + timing.durationMs - timing.marginMs);
      expect(renewal.until).toBeLessThanOrEqual(
        renewal.at + timing.durationMs - timing.marginMs - delayMs + 1,
      );
    }
    // Slow but in time: it never lapsed.
    expect(events.filter((e) => !e.valid)).toEqual([]);
    expect(fence.valid()).toBe(true);
  });

  it("reports the lapse even when Node's timer fires before validUntil on the fence's clock", async () => {
    // Node timers count whole milliseconds on the event loop's clock; by performance.now() they fire up to
    // about a millisecond early, which beats the fence's 1 ms of slack in roughly 1% of lapses. A fence clock
    // running 2% slow makes every timer early, so the fence must wait out the rest rather than miss the lapse.
    const slow = (): number => performance.now() * 0.98;
    await heartbeatLease('runtime-early');
    const { fence, events } = podFence('runtime-early', slow);
    await fence.start();
    await waitFor('a renewal after the first acquisition', () => (fence.renewals >= 2 ? true : undefined), {
      timeoutMs: 10_000,
    });
    proxy.pause();
    const pausedAt = performance.now();
    const lapse = await waitFor(
      'the fence to report its lapse',
      () => events.find((e) => !e.valid && e.at > pausedAt),
      { timeoutMs: timing.durationMs + 5_000, intervalMs: 20 },
    );
    expect(fence.valid()).toBe(false);
    // Reported once validUntil passed on the fence's own clock, and only then.
    expect(lapse.until).toBeLessThanOrEqual(lapse.at);
    expect(events.filter((e) => !e.valid)).toHaveLength(1);
  });

  it('gives the heartbeat up at shutdown without reporting a lapse', async () => {
    // Every graceful shutdown ends this way: an error saying the Lease lapsed would be a false alarm.
    let output = '';
    const captured = createLogger({
      name: 'fence-release',
      level: 'info',
      destination: new Writable({
        write(chunk: Buffer, _encoding, done) {
          output += chunk.toString();
          done();
        },
      }),
    });
    await heartbeatLease('runtime-release');
    const { fence, events } = podFence('runtime-release', undefined, captured);
    await fence.start();
    expect(fence.valid()).toBe(true);
    await fence.release();
    expect(fence.valid()).toBe(false);
    expect(events.map((e) => e.valid)).toEqual([true, false]);
    const lease = await direct.get<LeaseObject>(Resources.Lease, namespace, 'runtime-release');
    expect(lease.spec?.holderIdentity ?? '').toBe('');
    const messages = output
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { level: number; msg: string });
    expect(messages).toContainEqual(
      expect.objectContaining({ level: 30, msg: 'pod heartbeat Lease released' }),
    );
    expect(messages.filter((m) => /lapsed/.test(m.msg) || m.level >= 50)).toEqual([]);
  });
});
