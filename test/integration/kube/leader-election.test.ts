/**
 * Lease leader election against the real apiserver: exclusivity, hand-over after a crash (no release)
 * within the lease duration, immediate hand-over on release, and stepping down when the lease is taken.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { RestClient } from '../../../operator/kube/client.js';
import {
  LeaderElector,
  type LeaderElectionEnd,
  type LeaseObject,
} from '../../../operator/kube/leader-election.js';
import { createRegistry, metricValue, type Registry } from '../../../operator/kube/metrics.js';
import { Resources } from '../../../operator/kube/resource.js';
import { waitFor } from '../../cluster/wait.js';
import { adminKubeConfig, createTestNamespace } from '../../support/cluster.js';
import { testLogger } from './support.js';

const logger = testLogger('leader-test');
let rest: RestClient;
let namespace: string;

// Short timings keep the suite fast; the ratios are client-go's defaults (15/10/2).
const LEASE_S = 3;
const RENEW_S = 2;
const RETRY_S = 0.4;

beforeAll(async () => {
  const kc = adminKubeConfig();
  rest = new RestClient(kc, { registry: createRegistry(), logger });
  namespace = await createTestNamespace(kc, 'kube-leader');
});

afterAll(async () => {
  await rest.close();
});

interface Candidate {
  elector: LeaderElector;
  registry: Registry;
  leading: boolean;
  startedAt?: number;
  stoppedAt?: number;
  done: Promise<LeaderElectionEnd>;
}

/** Every candidate's leading flag, sampled on each transition: two at once would be split brain. */
const overlaps: string[] = [];

function candidate(lease: string, identity: string, all: Candidate[]): Candidate {
  const registry = createRegistry();
  const elector = new LeaderElector({
    rest,
    namespace,
    name: lease,
    identity,
    leaseDurationSeconds: LEASE_S,
    renewDeadlineSeconds: RENEW_S,
    retryPeriodSeconds: RETRY_S,
    logger,
    registry,
  });
  const c: Candidate = { elector, registry, leading: false, done: Promise.resolve('stopped') };
  c.done = elector.run({
    onStartedLeading: (signal) => {
      c.leading = true;
      c.startedAt = Date.now();
      const others = all.filter((o) => o !== c && o.leading).map((o) => o.elector.identity);
      if (others.length > 0) overlaps.push(`${identity} started while ${others.join(',')} led`);
      signal.addEventListener('abort', () => {
        c.leading = false;
      });
    },
    onStoppedLeading: () => {
      c.leading = false;
      c.stoppedAt = Date.now();
    },
  });
  all.push(c);
  return c;
}

async function readLease(name: string): Promise<LeaseObject> {
  return rest.get<LeaseObject>(Resources.Lease, namespace, name);
}

function leaderOf(all: Candidate[]): Candidate | undefined {
  const leaders = all.filter((c) => c.elector.isLeader());
  return leaders.length === 1 ? leaders[0] : undefined;
}

describe('LeaderElector', () => {
  it('elects exactly one leader, and a crashed leader is replaced after the lease expires', async () => {
    const all: Candidate[] = [];
    candidate('crash', 'a', all);
    candidate('crash', 'b', all);
    candidate('crash', 'c', all);
    try {
      const first = await waitFor('a leader', () => leaderOf(all), { timeoutMs: 10_000 });
      // Give the others several retry periods to (wrongly) take over too.
      const lease = await waitFor(
        'the leader to renew a few times',
        async () => {
          const l = await readLease('crash');
          return l.spec?.renewTime !== l.spec?.acquireTime ? l : undefined;
        },
        { timeoutMs: 10_000 },
      );
      expect(all.filter((c) => c.elector.isLeader())).toHaveLength(1);
      expect(lease.spec?.holderIdentity).toBe(first.elector.identity);
      expect(lease.spec?.leaseDurationSeconds).toBe(LEASE_S);
      expect(await metricValue(first.registry, 'leader_election_master_status', { name: 'crash' })).toBe(1);

      // Crash: stop without releasing. Nobody may take over before the lease could have expired.
      const crashedAt = Date.now();
      await first.elector.stop();
      expect(await first.done).toBe('stopped');
      const next = await waitFor('a new leader', () => leaderOf(all), {
        timeoutMs: (LEASE_S + 5 * RETRY_S) * 1000 + 2000,
      });
      const handover = Date.now() - crashedAt;
      expect(next).not.toBe(first);
      // Followers measure the lease from when they last saw it renewed (at most ~2 retry periods before
      // the crash), and poll every retry period (+20% jitter).
      expect(handover).toBeGreaterThanOrEqual((LEASE_S - 2.5 * RETRY_S) * 1000);
      expect(handover).toBeLessThanOrEqual((LEASE_S + 3 * RETRY_S) * 1000 + 1000);
      const after = await readLease('crash');
      expect(after.spec?.holderIdentity).toBe(next.elector.identity);
      expect(after.spec?.leaseTransitions).toBe((lease.spec?.leaseTransitions ?? 0) + 1);
      expect(overlaps).toEqual([]);
    } finally {
      await Promise.all(all.map((c) => c.elector.stop()));
    }
  }, 60_000);

  it('hands over at once when the leader releases the lease (SIGTERM path)', async () => {
    const all: Candidate[] = [];
    candidate('release', 'x', all);
    const y = candidate('release', 'y', all);
    try {
      const first = await waitFor('a leader', () => leaderOf(all), { timeoutMs: 10_000 });
      const other = first === y ? (all[0] as Candidate) : y;
      await waitFor(
        'the follower to observe the lease',
        () => (other.elector.leader() === first.elector.identity ? true : undefined),
        {
          timeoutMs: 5_000,
        },
      );
      const releasedAt = Date.now();
      await first.elector.release();
      expect(await first.done).toBe('released');
      expect(first.stoppedAt).toBeDefined();
      await waitFor('the follower to lead', () => (other.elector.isLeader() ? true : undefined), {
        timeoutMs: 5_000,
      });
      // One retry period (+ jitter), far less than the lease duration.
      expect(Date.now() - releasedAt).toBeLessThan(RETRY_S * 1.2 * 1000 + 1000);
      expect(Date.now() - releasedAt).toBeLessThan(LEASE_S * 1000);
      expect(overlaps).toEqual([]);
    } finally {
      await Promise.all(all.map((c) => c.elector.stop()));
    }
  }, 30_000);

  it('steps down within the renew deadline when the lease is taken from it', async () => {
    const all: Candidate[] = [];
    const only = candidate('stolen', 'victim', all);
    try {
      await waitFor('leadership', () => (only.elector.isLeader() ? true : undefined), { timeoutMs: 10_000 });
      const lease = await readLease('stolen');
      const stolenAt = Date.now();
      // Someone else writes the lease as its holder (e.g. an operator that thinks ours expired).
      await rest.replace(Resources.Lease, {
        metadata: { name: 'stolen', namespace, resourceVersion: lease.metadata?.resourceVersion },
        spec: { ...lease.spec, holderIdentity: 'thief', leaseDurationSeconds: 3600 },
      } as LeaseObject);
      expect(await only.done).toBe('lost');
      expect(only.elector.isLeader()).toBe(false);
      expect(only.leading).toBe(false);
      expect(Date.now() - stolenAt).toBeLessThan((RENEW_S + 2 * RETRY_S) * 1000 + 1000);
      expect(await metricValue(only.registry, 'leader_election_master_status', { name: 'stolen' })).toBe(0);
      expect((await readLease('stolen')).spec?.holderIdentity).toBe('thief'); // it did not fight back
    } finally {
      await only.elector.stop();
    }
  }, 30_000);
});
