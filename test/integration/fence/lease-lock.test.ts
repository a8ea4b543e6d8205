/**
 * LeaseLock (operator/kube/lease.ts) against the real apiserver: creating a missing Lease as its first holder,
 * waiting for a Lease it may not create,
 * taking a free one, judging another holder's expiry on its own monotonic clock only, renewing with one
 * conditional PUT (F2), treating a foreign write as lost (F8), giving the Lease back, and raising the epoch.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { RestClient } from '../../../operator/kube/client.js';
import { LeaseLock, type LeaseObject, type LeaseRecord } from '../../../operator/kube/lease.js';
import { createRegistry, metricValue, type Registry } from '../../../operator/kube/metrics.js';
import { Resources, type ApiObject } from '../../../operator/kube/resource.js';
import { waitFor } from '../../cluster/wait.js';
import { adminKubeConfig, createTestNamespace } from '../../support/cluster.js';
import { testLogger } from '../kube/support.js';

const logger = testLogger('fence-lease-lock');
let rest: RestClient;
let namespace: string;

/** A monotonic clock the test moves by hand: shows that a lock judges expiry on its own clock only. */
class ManualClock {
  private t = 1_000_000;
  readonly now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

beforeAll(async () => {
  const kc = adminKubeConfig();
  rest = new RestClient(kc, { registry: createRegistry(), logger });
  namespace = await createTestNamespace(kc, 'fence-lease');
});

afterAll(async () => {
  await rest.close();
});

type LeaseOwners = NonNullable<LeaseObject['metadata']>['ownerReferences'];

function lock(
  name: string,
  identity: string,
  durationSeconds: number,
  extra: {
    create?: boolean;
    createdEpoch?: number;
    ownerReferences?: LeaseOwners | (() => LeaseOwners);
    now?: () => number;
    rest?: RestClient;
  } = {},
): LeaseLock {
  return new LeaseLock({ rest: extra.rest ?? rest, namespace, name, identity, durationSeconds, ...extra });
}

async function readLease(name: string): Promise<LeaseObject> {
  return rest.get<LeaseObject>(Resources.Lease, namespace, name);
}

/** What the operator does for a pod's heartbeat: a Lease with nobody holding it. */
async function createFreeLease(name: string, spec: LeaseRecord = {}): Promise<LeaseObject> {
  return rest.create<LeaseObject>(Resources.Lease, {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name, namespace },
    spec,
  });
}

/** Someone else writes the Lease (conditionally, on what it read): the test plays another process. */
async function writeForeign(name: string, spec: LeaseRecord): Promise<LeaseObject> {
  const current = await readLease(name);
  return rest.replace<LeaseObject>(Resources.Lease, { ...current, spec: { ...current.spec, ...spec } });
}

async function requestsByMethod(registry: Registry, method: string): Promise<number> {
  return metricValue(registry, 'rest_client_requests_total', { method });
}

/** A real owner (a ConfigMap): a garbage collector must not take the Lease away while the test reads it. */
async function realOwner(name: string): Promise<NonNullable<LeaseOwners>[number]> {
  const made = await rest.create<ApiObject>(Resources.ConfigMap, {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name, namespace },
  });
  return { apiVersion: 'v1', kind: 'ConfigMap', name, uid: made.metadata?.uid ?? '' };
}

describe('LeaseLock', () => {
  it('creates a missing Lease as its first holder, at createdEpoch, with its owner; a second creator loses', async () => {
    const owner = await realOwner('lease-owner');
    const first = lock('account-new', 'runtime-0/uid-1/aaaa', 2, {
      createdEpoch: 1,
      ownerReferences: [owner],
    });
    const rival = lock('account-new', 'runtime-1/uid-2/bbbb', 2, { createdEpoch: 1 });
    const [a, b] = await Promise.all([first.tryAcquireOrRenew(), rival.tryAcquireOrRenew()]);
    const winner = a.held ? first : rival;
    // Exactly one of two racing creators holds it; the other is told it lost, and holds nothing.
    expect([a.held, b.held].filter(Boolean)).toHaveLength(1);
    expect(a.held ? b : a).toMatchObject({ held: false });
    expect(a.held ? a : b).toMatchObject({ held: true, acquired: true, epoch: 1, previousHolder: '' });
    const lease = await readLease('account-new');
    expect(lease.spec).toMatchObject({ holderIdentity: winner.identity, leaseTransitions: 1 });
    expect(lease.metadata?.ownerReferences).toEqual(winner === first ? [owner] : undefined);
  });

  it('reads an owner given as a function at the create, not when the lock was made', async () => {
    const owner = await realOwner('late-owner');
    // As a runtime's account: KeepSession when hosting began (no owner), LogOut by the time it first takes it.
    let owners: LeaseOwners = undefined;
    const first = lock('account-late-owner', 'runtime-0/uid-1/cccc', 2, {
      createdEpoch: 1,
      ownerReferences: () => owners,
    });
    owners = [owner];
    expect(await first.tryAcquireOrRenew()).toMatchObject({ held: true, epoch: 1 });
    expect((await readLease('account-late-owner')).metadata?.ownerReferences).toEqual([owner]);
  });

  it('with create: false waits for a missing Lease, then takes it once it exists and is free (epoch + 1)', async () => {
    const pod = lock('hb-missing', 'runtime-0/uid-1/aaaa', 2, { create: false });
    const first = await pod.tryAcquireOrRenew();
    expect(first).toEqual({ held: false, holder: '', unchangedForMs: 0, missing: true });
    const again = await pod.tryAcquireOrRenew();
    expect(again).toMatchObject({ held: false, holder: '', missing: true });
    // It was not created by the waiting lock.
    await expect(readLease('hb-missing')).rejects.toMatchObject({ status: 404 });

    // The operator creates it, free, after earlier holders gave it back 4 times.
    await createFreeLease('hb-missing', { leaseDurationSeconds: 2, leaseTransitions: 4 });
    const taken = await pod.tryAcquireOrRenew();
    expect(taken).toMatchObject({ held: true, acquired: true, epoch: 5, previousHolder: '' });
    const lease = await readLease('hb-missing');
    expect(lease.spec).toMatchObject({
      holderIdentity: 'runtime-0/uid-1/aaaa',
      leaseTransitions: 5,
      leaseDurationSeconds: 2,
    });
    expect(pod.heldByUs).toBe(true);
  });

  it('a second identity takes a held Lease only after the record stayed unchanged for its duration on its own clock', async () => {
    const holder = lock('takeover', 'runtime-0/uid-1/aaaa', 2);
    // Created by the lock itself (create defaults to true): epoch 0.
    const held = await holder.tryAcquireOrRenew();
    expect(held).toMatchObject({ held: true, acquired: true, epoch: 0 });

    // Another incarnation of the same pod name (F8): a different holder, however the name reads.
    const clock = new ManualClock();
    const contender = lock('takeover', 'runtime-0/uid-2/bbbb', 2, { now: clock.now });
    expect(await contender.tryAcquireOrRenew()).toEqual({
      held: false,
      holder: 'runtime-0/uid-1/aaaa',
      unchangedForMs: 0,
      missing: false,
    });
    clock.advance(1500);
    expect(await contender.tryAcquireOrRenew()).toMatchObject({ held: false, unchangedForMs: 1500 });

    // The holder renews: a new record, so the contender's observation starts again.
    expect(await holder.tryAcquireOrRenew()).toMatchObject({ held: true, acquired: false, epoch: 0 });
    clock.advance(1500);
    expect(await contender.tryAcquireOrRenew()).toMatchObject({ held: false, unchangedForMs: 0 });
    clock.advance(2000);
    // Exactly the duration is not enough ("longer than").
    expect(await contender.tryAcquireOrRenew()).toMatchObject({ held: false, unchangedForMs: 2000 });
    clock.advance(1);
    // Only milliseconds of real time passed since the holder's renewTime: the contender's clock decided.
    const taken = await contender.tryAcquireOrRenew();
    expect(taken).toMatchObject({
      held: true,
      acquired: true,
      epoch: 1,
      previousHolder: 'runtime-0/uid-1/aaaa',
    });
    expect((await readLease('takeover')).spec).toMatchObject({
      holderIdentity: 'runtime-0/uid-2/bbbb',
      leaseTransitions: 1,
    });
    // The old holder's next renewal finds it gone.
    expect(await holder.tryAcquireOrRenew()).toMatchObject({ held: false, holder: 'runtime-0/uid-2/bbbb' });
  });

  it("never reads a record's timestamps: an ancient or a future renewTime both mean waiting the whole duration", async () => {
    for (const [name, stamp] of [
      ['ancient', '2001-01-01T00:00:00.000000Z'],
      ['future', '2101-01-01T00:00:00.000000Z'],
    ] as const) {
      await createFreeLease(name, {
        holderIdentity: 'ghost/uid-0/0000',
        leaseDurationSeconds: 1,
        acquireTime: stamp,
        renewTime: stamp,
        leaseTransitions: 3,
      });
      const contender = lock(name, 'runtime-1/uid-1/cccc', 1);
      const startedAt = performance.now();
      expect(await contender.tryAcquireOrRenew()).toMatchObject({ held: false, holder: 'ghost/uid-0/0000' });
      const taken = await waitFor(
        `${name}: the contender to take the Lease`,
        async () => {
          const attempt = await contender.tryAcquireOrRenew();
          return attempt.held ? { attempt, at: performance.now() } : undefined;
        },
        { timeoutMs: 10_000, intervalMs: 50 },
      );
      expect(taken.attempt).toMatchObject({ epoch: 4, previousHolder: 'ghost/uid-0/0000' });
      // Not before the record was unchanged for 1 s since this process first saw it.
      expect(taken.at - startedAt).toBeGreaterThan(1000);
    }
  });

  it('renews a held Lease with exactly one request: a conditional PUT, no GET (F2)', async () => {
    const registry = createRegistry();
    const own = new RestClient(adminKubeConfig(), { registry, logger });
    try {
      const holder = lock('renew', 'runtime-0/uid-1/aaaa', 2, { rest: own });
      expect(await holder.tryAcquireOrRenew()).toMatchObject({ held: true, acquired: true });
      let previous = await readLease('renew');
      for (let i = 0; i < 3; i++) {
        const requests = own.requestCount();
        const puts = await requestsByMethod(registry, 'PUT');
        const gets = await requestsByMethod(registry, 'GET');
        const attempt = await holder.tryAcquireOrRenew();
        expect(attempt).toMatchObject({ held: true, acquired: false, epoch: 0, previousHolder: '' });
        expect(own.requestCount() - requests).toBe(1);
        expect((await requestsByMethod(registry, 'PUT')) - puts).toBe(1);
        expect((await requestsByMethod(registry, 'GET')) - gets).toBe(0);
        const lease = await readLease('renew');
        expect(lease.metadata?.resourceVersion).not.toBe(previous.metadata?.resourceVersion);
        expect(lease.spec?.renewTime).not.toBe(previous.spec?.renewTime);
        expect(lease.spec?.acquireTime).toBe(previous.spec?.acquireTime);
        previous = lease;
      }
    } finally {
      await own.close();
    }
  });

  it('a foreign write makes the next renewal return held: false, and it does not fight back (F8)', async () => {
    const holder = lock('foreign', 'runtime-0/uid-1/aaaa', 2);
    expect(await holder.tryAcquireOrRenew()).toMatchObject({ held: true });
    // A recreated runtime-0 (another pod uid) writes the Lease as its holder.
    const foreign = await writeForeign('foreign', { holderIdentity: 'runtime-0/uid-2/dddd' });

    const attempt = await holder.tryAcquireOrRenew();
    expect(attempt).toEqual({
      held: false,
      holder: 'runtime-0/uid-2/dddd',
      unchangedForMs: 0,
      missing: false,
    });
    expect(holder.heldByUs).toBe(false);
    expect(await holder.tryAcquireOrRenew()).toMatchObject({ held: false, holder: 'runtime-0/uid-2/dddd' });
    const lease = await readLease('foreign');
    expect(lease.metadata?.resourceVersion).toBe(foreign.metadata?.resourceVersion);
    expect(lease.spec?.holderIdentity).toBe('runtime-0/uid-2/dddd');
  });

  it('release() empties the holder, so another identity takes it at once (epoch + 1)', async () => {
    // A long duration: only the release can explain a takeover within the test.
    const holder = lock('release', 'runtime-0/uid-1/aaaa', 60);
    const contender = lock('release', 'runtime-1/uid-1/eeee', 60);
    await createFreeLease('release', { leaseTransitions: 6 });
    expect(await holder.tryAcquireOrRenew()).toMatchObject({ held: true, epoch: 7 });
    expect(await contender.tryAcquireOrRenew()).toMatchObject({
      held: false,
      holder: 'runtime-0/uid-1/aaaa',
    });

    expect(await holder.release()).toBe(true);
    const released = await readLease('release');
    expect(released.spec?.holderIdentity ?? '').toBe('');
    expect(released.spec?.leaseTransitions).toBe(7);
    expect(holder.heldByUs).toBe(false);
    // Nothing to give back twice.
    const requests = rest.requestCount();
    expect(await holder.release()).toBe(false);
    expect(rest.requestCount()).toBe(requests);

    expect(await contender.tryAcquireOrRenew()).toMatchObject({
      held: true,
      acquired: true,
      epoch: 8,
      previousHolder: '',
    });
    expect((await readLease('release')).spec?.holderIdentity).toBe('runtime-1/uid-1/eeee');
  });

  it('raiseEpoch() lifts leaseTransitions while held, keeps it on renewal, and does nothing once the Lease is not ours', async () => {
    const holder = lock('epoch', 'runtime-0/uid-1/aaaa', 2);
    await createFreeLease('epoch');
    expect(await holder.tryAcquireOrRenew()).toMatchObject({ held: true, epoch: 1 });

    // Already there: no request.
    let requests = rest.requestCount();
    expect(await holder.raiseEpoch(1)).toBe(1);
    expect(rest.requestCount()).toBe(requests);

    expect(await holder.raiseEpoch(10)).toBe(10);
    expect((await readLease('epoch')).spec).toMatchObject({
      holderIdentity: 'runtime-0/uid-1/aaaa',
      leaseTransitions: 10,
    });
    expect(await holder.tryAcquireOrRenew()).toMatchObject({ held: true, acquired: false, epoch: 10 });

    // Someone else wrote it since: the conditional PUT is refused and nothing changes.
    const foreign = await writeForeign('epoch', { holderIdentity: 'runtime-1/uid-1/ffff' });
    expect(await holder.raiseEpoch(20)).toBeUndefined();
    const lease = await readLease('epoch');
    expect(lease.metadata?.resourceVersion).toBe(foreign.metadata?.resourceVersion);
    expect(lease.spec?.leaseTransitions).toBe(10);
    // Known not ours: not even a request.
    requests = rest.requestCount();
    expect(await holder.raiseEpoch(30)).toBeUndefined();
    expect(rest.requestCount()).toBe(requests);
  });
});
