/**
 * HolderLiveness (runtime/hosting/fence.ts) against the real apiserver: whether the incarnation that holds
 * an account Lease is gone, judged from its pod's heartbeat Lease on the contender's own clock. Gone: the
 * heartbeat names another incarnation or nobody, or its record stayed unchanged for a whole D (a missing
 * heartbeat included, never "gone at once"). Not gone: while it is renewed.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { RestClient } from '../../../operator/kube/client.js';
import { LeaseLock, type LeaseObject, type LeaseRecord } from '../../../operator/kube/lease.js';
import { createRegistry } from '../../../operator/kube/metrics.js';
import { Resources } from '../../../operator/kube/resource.js';
import { HolderLiveness, PodFence, fenceTiming } from '../../../runtime/hosting/fence.js';
import { waitFor } from '../../cluster/wait.js';
import { adminKubeConfig, createTestNamespace } from '../../support/cluster.js';
import { testLogger } from '../kube/support.js';

const logger = testLogger('fence-liveness');
const D_SECONDS = 2;
const D_MS = D_SECONDS * 1000;
let rest: RestClient;
let namespace: string;

/** A monotonic clock the test moves by hand. */
class ManualClock {
  private t = 5_000_000;
  readonly now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

beforeAll(async () => {
  const kc = adminKubeConfig();
  rest = new RestClient(kc, { registry: createRegistry(), logger });
  namespace = await createTestNamespace(kc, 'fence-liveness');
});

afterAll(async () => {
  await rest.close();
});

async function heartbeat(name: string, spec: LeaseRecord): Promise<LeaseObject> {
  return rest.create<LeaseObject>(Resources.Lease, {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name, namespace },
    spec: { leaseDurationSeconds: D_SECONDS, ...spec },
  });
}

let renewals = 0;
/**
 * A renewal as its holder would write it: a new renewTime. The holder's wall clock is decades behind
 * (renewTime in 2001), which must not matter: only the change is a sign of life.
 */
async function renew(name: string): Promise<void> {
  const current = await rest.get<LeaseObject>(Resources.Lease, namespace, name);
  const renewTime = `2001-01-01T00:00:${String(++renewals % 60).padStart(2, '0')}.000000Z`;
  await rest.replace(Resources.Lease, { ...current, spec: { ...current.spec, renewTime } });
}

/** Liveness on a hand-moved clock, re-reading the heartbeat on every question (no cache). */
function manualLiveness(): { liveness: HolderLiveness; clock: ManualClock } {
  const clock = new ManualClock();
  return {
    clock,
    liveness: new HolderLiveness(rest, namespace, D_SECONDS, { now: clock.now, cacheMs: 0 }),
  };
}

describe('HolderLiveness', () => {
  it('says gone at once when the heartbeat names another incarnation or nobody, not when it names the holder', async () => {
    await heartbeat('pod-replaced', { holderIdentity: 'pod-replaced/uid-2/new0', renewTime: null });
    await heartbeat('pod-released', {});
    await heartbeat('pod-alive', { holderIdentity: 'pod-alive/uid-1/0001' });
    // The clock never moves: no expiry can explain any answer.
    const { liveness } = manualLiveness();
    expect(await liveness.gone('pod-replaced/uid-1/old0')).toBe(true);
    expect(await liveness.gone('pod-released/uid-1/0001')).toBe(true);
    expect(await liveness.gone('pod-alive/uid-1/0001')).toBe(false);
    // The same answers through the takeover rule an account Lease is taken with.
    expect(await liveness.rule({ holder: 'pod-replaced/uid-1/old0', record: {}, unchangedForMs: 0 })).toBe(
      true,
    );
    expect(await liveness.rule({ holder: 'pod-alive/uid-1/0001', record: {}, unchangedForMs: 1e9 })).toBe(
      false,
    );
  });

  it('says gone once the heartbeat record stayed unchanged for D on its own clock, and not while it is renewed', async () => {
    await heartbeat('pod-quiet', { holderIdentity: 'pod-quiet/uid-1/0001', renewTime: null });
    const { liveness, clock } = manualLiveness();
    const holder = 'pod-quiet/uid-1/0001';
    expect(await liveness.gone(holder)).toBe(false);
    clock.advance(D_MS - 500);
    expect(await liveness.gone(holder)).toBe(false);
    // Renewed: the observation starts again.
    await renew('pod-quiet');
    clock.advance(500);
    expect(await liveness.gone(holder)).toBe(false);
    clock.advance(D_MS - 1);
    expect(await liveness.gone(holder)).toBe(false);
    clock.advance(1);
    expect(await liveness.gone(holder)).toBe(false); // exactly D is not "longer than D"
    clock.advance(1);
    expect(await liveness.gone(holder)).toBe(true);
  });

  it('with a real clock: never gone while a PodFence renews the heartbeat, gone about D after it stops', async () => {
    await heartbeat('pod-real', {});
    const timing = fenceTiming(D_SECONDS);
    const fence = new PodFence({
      lock: new LeaseLock({
        rest,
        namespace,
        name: 'pod-real',
        identity: 'pod-real/uid-1/0001',
        durationSeconds: D_SECONDS,
        create: false,
      }),
      timing,
      logger,
    });
    const liveness = new HolderLiveness(rest, namespace, D_SECONDS, { cacheMs: 0 });
    try {
      await fence.start();
      const answers: boolean[] = [];
      // Well over 2 D of renewals, asking all the while.
      const until = fence.renewals + Math.ceil((2.5 * timing.durationMs) / timing.renewEveryMs);
      await waitFor(
        'the fence to renew for 2.5 D',
        async () => {
          answers.push(await liveness.gone(fence.identity));
          return fence.renewals >= until ? true : undefined;
        },
        { timeoutMs: 20_000, intervalMs: 50 },
      );
      expect(answers.length).toBeGreaterThan(10);
      expect(answers.filter((a) => a)).toEqual([]);

      // It stops renewing without giving the heartbeat up, as a crash or a partition would.
      const stoppedAt = performance.now();
      await fence.abandon();
      await waitFor(
        'the holder to be judged gone',
        async () => ((await liveness.gone(fence.identity)) ? true : undefined),
        {
          timeoutMs: timing.durationMs + 5_000,
          intervalMs: 50,
        },
      );
      // Its last renewal was sent about one period (plus an attempt in flight) before it stopped at most, and
      // liveness waited D from seeing that record: far from "gone at once".
      expect(performance.now() - stoppedAt).toBeGreaterThan(timing.durationMs - timing.renewEveryMs - 100);
    } finally {
      await fence.abandon();
    }
  });

  it('counts a missing heartbeat as gone only after D (a deleted one too)', async () => {
    const { liveness, clock } = manualLiveness();
    expect(await liveness.gone('pod-never/uid-1/0001')).toBe(false);
    clock.advance(D_MS);
    expect(await liveness.gone('pod-never/uid-1/0001')).toBe(false);
    clock.advance(1);
    expect(await liveness.gone('pod-never/uid-1/0001')).toBe(true);

    await heartbeat('pod-deleted', { holderIdentity: 'pod-deleted/uid-1/0001' });
    expect(await liveness.gone('pod-deleted/uid-1/0001')).toBe(false);
    await rest.delete(Resources.Lease, namespace, 'pod-deleted');
    clock.advance(D_MS - 1);
    // Deleted is a change of record: the clock starts again, it is not "gone at once".
    expect(await liveness.gone('pod-deleted/uid-1/0001')).toBe(false);
    clock.advance(D_MS);
    expect(await liveness.gone('pod-deleted/uid-1/0001')).toBe(false);
    clock.advance(1);
    expect(await liveness.gone('pod-deleted/uid-1/0001')).toBe(true);
  });

  it('as the takeover rule of an account Lease: the account Lease is taken exactly when its holder is gone', async () => {
    await heartbeat('pod-h', { holderIdentity: 'pod-h/uid-1/0001' });
    // The account Lease, taken by pod-h's incarnation and (as account Leases are) never renewed.
    const owner = new LeaseLock({
      rest,
      namespace,
      name: 'tga-account',
      identity: 'pod-h/uid-1/0001',
      durationSeconds: D_SECONDS,
    });
    expect(await owner.tryAcquireOrRenew()).toMatchObject({ held: true, epoch: 0 });

    const { liveness, clock } = manualLiveness();
    const contender = new LeaseLock({
      rest,
      namespace,
      name: 'tga-account',
      identity: 'pod-k/uid-1/0001',
      durationSeconds: D_SECONDS,
      now: clock.now,
    });
    expect(await contender.tryAcquireOrRenew({ mayTakeOver: liveness.rule })).toMatchObject({
      held: false,
      holder: 'pod-h/uid-1/0001',
    });
    // The account Lease itself is far past its duration on the contender's clock: irrelevant, the heartbeat decides.
    clock.advance(10 * D_MS);
    await renew('pod-h');
    expect(await contender.tryAcquireOrRenew({ mayTakeOver: liveness.rule })).toMatchObject({ held: false });

    // pod-h restarted: its heartbeat now names the new incarnation.
    const hb = await rest.get<LeaseObject>(Resources.Lease, namespace, 'pod-h');
    await rest.replace(Resources.Lease, { ...hb, spec: { ...hb.spec, holderIdentity: 'pod-h/uid-2/0002' } });
    expect(await contender.tryAcquireOrRenew({ mayTakeOver: liveness.rule })).toMatchObject({
      held: true,
      acquired: true,
      epoch: 1,
      previousHolder: 'pod-h/uid-1/0001',
    });
  });
});
