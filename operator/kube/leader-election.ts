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
 * The Lease mechanics (observation, conditional writes, release) are operator/kube/lease.ts, shared with the
 * runtime's session fences; this file is the elector's loop and callbacks.
 *
 * client-go's caveat holds: this is an efficiency lock, not fencing. Anything that must never run twice
 * (a TDLib session) needs its own lease held by whoever runs it.
 */
import type { Gauge, Registry } from 'prom-client';
import type { RestClient } from './client.js';
import { LeaseLock, microTime, type LeaseRecord } from './lease.js';
import type { Logger } from './logging.js';
import { defaultRegistry, gauge } from './metrics.js';
import { deadline as attemptDeadline, errorMessage, jitter, pause } from './util.js';

export { microTime };
export type LeaseSpec = LeaseRecord;
export type { LeaseObject } from './lease.js';

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

export class LeaderElector {
  readonly identity: string;
  private readonly lock: LeaseLock;
  private readonly leaseName: string;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private readonly logger: Logger;
  private readonly now: () => number;
  private readonly status: Gauge<'name'>;

  private reportedHolder?: string;
  private leading = false;
  private running = false;
  private stopAbort = new AbortController();
  private end?: LeaderElectionEnd;
  private finished?: Promise<LeaderElectionEnd>;

  constructor(options: LeaderElectorOptions) {
    this.leaseName = options.name;
    this.identity = options.identity;
    const leaseDurationSeconds = options.leaseDurationSeconds ?? 15;
    const leaseDurationMs = leaseDurationSeconds * 1000;
    this.renewDeadlineMs = (options.renewDeadlineSeconds ?? 10) * 1000;
    this.retryPeriodMs = (options.retryPeriodSeconds ?? 2) * 1000;
    // client-go's NewLeaderElector checks: a leader must give up before others may take over.
    if (leaseDurationMs <= this.renewDeadlineMs)
      throw new Error('leaseDuration must be greater than renewDeadline');
    if (this.renewDeadlineMs <= 1.2 * this.retryPeriodMs)
      throw new Error('renewDeadline must be greater than 1.2 * retryPeriod');
    if (!this.identity) throw new Error('leader election needs a non-empty identity');
    this.now = options.now ?? (() => performance.now());
    this.lock = new LeaseLock({
      rest: options.rest,
      namespace: options.namespace,
      name: options.name,
      identity: options.identity,
      durationSeconds: leaseDurationSeconds,
      now: this.now,
    });
    this.logger = options.logger.child({
      lease: `${options.namespace}/${options.name}`,
      identity: options.identity,
    });
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
    return this.lock.observedHolder;
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
      const attempt = attemptDeadline(this.renewDeadlineMs, stop);
      const acquired = await this.tryAcquireOrRenew(callbacks, attempt.signal).finally(attempt.clear);
      if (acquired) break;
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
        const attempt = attemptDeadline(remaining, stop);
        renewed = await this.tryAcquireOrRenew(callbacks, attempt.signal).finally(attempt.clear);
        if (renewed) break;
        await pause(Math.min(this.retryPeriodMs, Math.max(0, deadline - this.now())), stop);
      }
      if (stop.aborted) return false;
      if (!renewed) return true;
    }
  }

  /** One round of client-go's tryAcquireOrRenew, on the shared Lease lock. */
  private async tryAcquireOrRenew(callbacks: LeaderCallbacks, signal: AbortSignal): Promise<boolean> {
    let held = false;
    try {
      held = (await this.lock.tryAcquireOrRenew({ signal })).held;
    } catch (error) {
      this.logger.warn({ err: errorMessage(error) }, 'acquiring or renewing the leader lease failed');
    }
    const holder = this.lock.observedHolder;
    if (holder && holder !== this.reportedHolder) {
      this.reportedHolder = holder;
      callbacks.onNewLeader?.(holder);
    }
    return held;
  }

  /** client-go's release(): empty holder, 1 s duration, transitions kept; only if we still hold it. */
  private async releaseLease(): Promise<void> {
    try {
      if (
        await this.lock.release({
          signal: AbortSignal.timeout(Math.ceil(this.renewDeadlineMs)),
          releaseDurationSeconds: 1,
        })
      )
        this.logger.info('released leader lease');
    } catch (error) {
      this.logger.warn(
        { err: errorMessage(error) },
        'releasing the leader lease failed; it will expire instead',
      );
    }
  }
}
