/**
 * Leader election on a coordination.k8s.io/v1 Lease: a port of client-go's tools/leaderelection.
 *
 * - Expiry is judged on the local clock only: a candidate records when it *observed* the current record
 *   (any change of holder/renewTime/...), and takes over once that record stayed unchanged for the holder's
 *   leaseDurationSeconds. Remote timestamps are never compared with ours, so clock skew between nodes does
 *   not matter (only skew *rate* would).
 * - Every write is a PUT carrying the observed resourceVersion: two candidates racing for an expired lease
 *   cannot both win; the loser gets 409 and tries again next period.
 * - The leader renews every retryPeriod; if it cannot renew for renewDeadline it stops leading (its signal
 *   is aborted) before its lease can expire for others (renewDeadline < leaseDuration): the caller must then
 *   stop all work and exit, as controller-runtime does, rather than try to lead again with stale caches.
 * - release() (on SIGTERM) writes an empty holder with leaseDurationSeconds=1 after work has stopped
 *   (client-go's ReleaseOnCancel), so a standby takes over within one retry period instead of a lease
 *   duration.
 *
 * client-go's caveat holds: this is an efficiency lock, not fencing. Anything that must never run twice
 * (a TDLib session) needs its own lease held by whoever runs it.
 */
import type { Gauge, Registry } from 'prom-client';
import type { RestClient } from './client.js';
import { isConflict, isNotFound } from './errors.js';
import type { Logger } from './logging.js';
import { defaultRegistry, gauge } from './metrics.js';
import { Resources } from './resource.js';
import { errorMessage, jitter, pause } from './util.js';

export interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

export interface LeaseObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; resourceVersion?: string; labels?: Record<string, string> };
  spec?: LeaseSpec;
}

export interface LeaderElectorOptions {
  rest: RestClient;
  namespace: string;
  /** The Lease name, e.g. "tdlib-operator-leader". */
  name: string;
  /** Unique per candidate: the pod name (plus a random suffix when pods may restart in place). */
  identity: string;
  leaseDurationSeconds?: number;
  renewDeadlineSeconds?: number;
  retryPeriodSeconds?: number;
  logger: Logger;
  registry?: Registry;
  /** Monotonic milliseconds (default performance.now()); injectable for tests. */
  now?: () => number;
}

export interface LeaderCallbacks {
  /**
   * Called once leadership is acquired. `signal` aborts when leadership ends; all work must stop then. If
   * it returns a promise, release() waits for it (bounded by renewDeadline) before giving the lease away, so
   * return one that settles once work has actually stopped.
   */
  onStartedLeading(signal: AbortSignal): void | Promise<void>;
  /** Called once leading ended (lost, released or stopped), after the signal was aborted. */
  onStoppedLeading(): void | Promise<void>;
  /** Called when the observed holder changes (including to ourselves). */
  onNewLeader?(identity: string): void;
}

/** Why run() returned: lost (renew deadline passed: exit), released (release()), stopped (stop()). */
export type LeaderElectionEnd = 'lost' | 'released' | 'stopped';

/** MicroTime as the apiserver formats it: RFC 3339 with exactly six fractional digits. */
export function microTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

function sameRecord(a: LeaseSpec | undefined, b: LeaseSpec | undefined): boolean {
  if (!a || !b) return a === b;
  return (
    (a.holderIdentity ?? '') === (b.holderIdentity ?? '') &&
    a.leaseDurationSeconds === b.leaseDurationSeconds &&
    a.acquireTime === b.acquireTime &&
    a.renewTime === b.renewTime &&
    (a.leaseTransitions ?? 0) === (b.leaseTransitions ?? 0)
  );
}

export class LeaderElector {
  private readonly rest: RestClient;
  private readonly namespace: string;
  private readonly leaseName: string;
  readonly identity: string;
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly leaseDurationSeconds: number;
  private readonly logger: Logger;
  private readonly now: () => number;
  private readonly status: Gauge<'name'>;

  private observedRecord?: LeaseSpec;
  private observedResourceVersion?: string;
  private observedTime = 0;
  private leading = false;
  private running = false;
  private stopAbort = new AbortController();
  private end?: LeaderElectionEnd;
  private finished?: Promise<LeaderElectionEnd>;

  constructor(options: LeaderElectorOptions) {
    this.rest = options.rest;
    this.namespace = options.namespace;
    this.leaseName = options.name;
    this.identity = options.identity;
    this.leaseDurationSeconds = options.leaseDurationSeconds ?? 15;
    this.leaseDurationMs = this.leaseDurationSeconds * 1000;
    this.renewDeadlineMs = (options.renewDeadlineSeconds ?? 10) * 1000;
    this.retryPeriodMs = (options.retryPeriodSeconds ?? 2) * 1000;
    // client-go's NewLeaderElector checks: a leader must give up before others may take over.
    if (this.leaseDurationMs <= this.renewDeadlineMs)
      throw new Error('leaseDuration must be greater than renewDeadline');
    if (this.renewDeadlineMs <= 1.2 * this.retryPeriodMs)
      throw new Error('renewDeadline must be greater than 1.2 * retryPeriod');
    if (!this.identity) throw new Error('leader election needs a non-empty identity');
    this.logger = options.logger.child({
      lease: `${options.namespace}/${options.name}`,
      identity: options.identity,
    });
    this.now = options.now ?? (() => performance.now());
    this.status = gauge(options.registry ?? defaultRegistry(), {
      name: 'leader_election_master_status',
      help: 'Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master.',
      labelNames: ['name'],
    });
    this.status.set({ name: this.leaseName }, 0);
  }

  isLeader(): boolean {
    return this.leading;
  }

  /** The holder we last observed ('' when released, undefined before the first read). */
  leader(): string | undefined {
    return this.observedRecord?.holderIdentity;
  }

  /**
   * Campaigns until leadership is acquired, leads until it is lost, released or stopped, and resolves with
   * why it ended. Like client-go, one elector leads at most once: after 'lost', exit the process.
   */
  run(callbacks: LeaderCallbacks): Promise<LeaderElectionEnd> {
    if (this.running) throw new Error('LeaderElector.run called twice');
    this.running = true;
    this.finished = this.campaign(callbacks);
    return this.finished;
  }

  /** Stops leading (after the work stopped) and hands the lease over at once. */
  async release(): Promise<void> {
    this.end ??= 'released';
    this.stopAbort.abort(new Error('released'));
    await this.finished;
  }

  /** Stops without touching the lease, as a crash would: others take over after the lease expires. */
  async stop(): Promise<void> {
    this.end ??= 'stopped';
    this.stopAbort.abort(new Error('stopped'));
    await this.finished;
  }

  private async campaign(callbacks: LeaderCallbacks): Promise<LeaderElectionEnd> {
    const stop = this.stopAbort.signal;
    this.logger.info('attempting to acquire leader lease');
    while (!stop.aborted) {
      if (
        await this.tryAcquireOrRenew(
          callbacks,
          AbortSignal.any([stop, AbortSignal.timeout(Math.ceil(this.renewDeadlineMs))]),
        )
      )
        break;
      await pause(jitter(this.retryPeriodMs, 1.2), stop);
    }
    if (stop.aborted) return this.end ?? 'stopped';

    this.leading = true;
    this.status.set({ name: this.leaseName }, 1);
    this.logger.info('acquired leader lease');
    const leadAbort = new AbortController();
    const work = Promise.resolve()
      .then(() => callbacks.onStartedLeading(leadAbort.signal))
      .catch((error: unknown) => this.logger.error({ err: errorMessage(error) }, 'onStartedLeading failed'));

    const lost = await this.renewLoop(callbacks, stop);
    this.leading = false;
    this.status.set({ name: this.leaseName }, 0);
    leadAbort.abort(new Error(lost ? 'leadership lost' : 'leadership released'));
    if (lost) {
      this.end = 'lost';
      this.logger.error('failed to renew leader lease within the renew deadline: leadership lost');
    } else if (this.end === 'released') {
      // Give the lease away only once our work has stopped, or a successor could overlap with it.
      await Promise.race([work, pause(this.renewDeadlineMs)]);
      await this.releaseLease();
    }
    try {
      await callbacks.onStoppedLeading();
    } catch (error) {
      this.logger.error({ err: errorMessage(error) }, 'onStoppedLeading failed');
    }
    return this.end ?? 'stopped';
  }

  /** Renews every retryPeriod; returns true when a renewal window of renewDeadline passed without success. */
  private async renewLoop(callbacks: LeaderCallbacks, stop: AbortSignal): Promise<boolean> {
    for (;;) {
      await pause(this.retryPeriodMs, stop);
      if (stop.aborted) return false;
      const deadline = this.now() + this.renewDeadlineMs;
      let renewed = false;
      while (!stop.aborted) {
        const remaining = deadline - this.now();
        if (remaining <= 0) break;
        renewed = await this.tryAcquireOrRenew(
          callbacks,
          AbortSignal.any([stop, AbortSignal.timeout(Math.ceil(remaining))]),
        );
        if (renewed) break;
        await pause(Math.min(this.retryPeriodMs, Math.max(0, deadline - this.now())), stop);
      }
      if (stop.aborted) return false;
      if (!renewed) return true;
    }
  }

  /** One round of client-go's tryAcquireOrRenew. */
  private async tryAcquireOrRenew(callbacks: LeaderCallbacks, signal: AbortSignal): Promise<boolean> {
    const wallNow = microTime(new Date());
    let lease: LeaseObject;
    try {
      lease = await this.rest.get<LeaseObject>(Resources.Lease, this.namespace, this.leaseName, { signal });
    } catch (error) {
      if (!isNotFound(error)) {
        this.logger.warn({ err: errorMessage(error) }, 'reading the leader lease failed');
        return false;
      }
      return this.create(callbacks, wallNow, signal);
    }

    const record = lease.spec ?? {};
    const now = this.now();
    if (!sameRecord(record, this.observedRecord)) {
      const previousHolder = this.observedRecord?.holderIdentity;
      this.observedRecord = record;
      this.observedTime = now;
      if ((record.holderIdentity ?? '') !== (previousHolder ?? '') && record.holderIdentity) {
        callbacks.onNewLeader?.(record.holderIdentity);
      }
    }
    this.observedResourceVersion = lease.metadata?.resourceVersion;

    const holder = record.holderIdentity ?? '';
    const heldByUs = holder === this.identity;
    const durationMs = (record.leaseDurationSeconds ?? this.leaseDurationSeconds) * 1000;
    if (holder !== '' && !heldByUs && this.observedTime + durationMs > now) return false;

    const spec: LeaseSpec = {
      holderIdentity: this.identity,
      leaseDurationSeconds: this.leaseDurationSeconds,
      acquireTime: heldByUs ? (record.acquireTime ?? wallNow) : wallNow,
      renewTime: wallNow,
      leaseTransitions: heldByUs ? (record.leaseTransitions ?? 0) : (record.leaseTransitions ?? 0) + 1,
    };
    return this.update(callbacks, spec, signal);
  }

  private async create(callbacks: LeaderCallbacks, wallNow: string, signal: AbortSignal): Promise<boolean> {
    const spec: LeaseSpec = {
      holderIdentity: this.identity,
      leaseDurationSeconds: this.leaseDurationSeconds,
      acquireTime: wallNow,
      renewTime: wallNow,
      leaseTransitions: 0,
    };
    try {
      const created = await this.rest.create<LeaseObject>(
        Resources.Lease,
        { metadata: { name: this.leaseName, namespace: this.namespace }, spec },
        { signal },
      );
      this.observe(callbacks, created);
      return true;
    } catch (error) {
      // 409 AlreadyExists: another candidate created it first; read it next round.
      if (!isConflict(error))
        this.logger.warn({ err: errorMessage(error) }, 'creating the leader lease failed');
      return false;
    }
  }

  private async update(callbacks: LeaderCallbacks, spec: LeaseSpec, signal: AbortSignal): Promise<boolean> {
    try {
      const updated = await this.rest.replace<LeaseObject>(
        Resources.Lease,
        {
          metadata: {
            name: this.leaseName,
            namespace: this.namespace,
            resourceVersion: this.observedResourceVersion,
          },
          spec,
        },
        { signal },
      );
      this.observe(callbacks, updated);
      return true;
    } catch (error) {
      // 409: the lease changed since we read it (another candidate won the race, or the holder renewed).
      if (!isConflict(error))
        this.logger.warn({ err: errorMessage(error) }, 'updating the leader lease failed');
      return false;
    }
  }

  private observe(callbacks: LeaderCallbacks, lease: LeaseObject): void {
    const previousHolder = this.observedRecord?.holderIdentity;
    this.observedRecord = lease.spec ?? {};
    this.observedResourceVersion = lease.metadata?.resourceVersion;
    this.observedTime = this.now();
    if (previousHolder !== this.identity) callbacks.onNewLeader?.(this.identity);
  }

  /** client-go's release(): empty holder, 1 s duration, transitions kept; only if we still hold it. */
  private async releaseLease(): Promise<void> {
    if (this.observedRecord?.holderIdentity !== this.identity) return;
    const wallNow = microTime(new Date());
    try {
      const released = await this.rest.replace<LeaseObject>(
        Resources.Lease,
        {
          metadata: {
            name: this.leaseName,
            namespace: this.namespace,
            resourceVersion: this.observedResourceVersion,
          },
          spec: {
            holderIdentity: '',
            leaseDurationSeconds: 1,
            acquireTime: wallNow,
            renewTime: wallNow,
            leaseTransitions: this.observedRecord.leaseTransitions ?? 0,
          },
        },
        { signal: AbortSignal.timeout(Math.ceil(this.renewDeadlineMs)) },
      );
      this.observedRecord = released.spec ?? {};
      this.observedResourceVersion = released.metadata?.resourceVersion;
      this.logger.info('released leader lease');
    } catch (error) {
      this.logger.warn(
        { err: errorMessage(error) },
        'releasing the leader lease failed; it will expire instead',
      );
    }
  }
}
