/**
 * Which runtime pods of a pool are alive, judged from their heartbeat Leases on the operator's own clock
 * (client-go's rule: a record unchanged for longer than its duration means its holder stopped), as the
 * runtime's contenders judge it too (operator/kube/lease.ts).
 *
 * Two refinements keep a live pod from being declared dead:
 * - time during which the operator itself could not see the API (requests failing or stalling: a paused or
 *   overloaded apiserver) does not count: every observation clock restarts when that trouble ends;
 * - a pod that has never taken its heartbeat (not started yet, or shut down) is "starting" until
 *   `startTimeoutMs` passed with accounts placed on it, then dead (it never came up: its accounts move).
 *   That time counts from when accounts were placed on it, not only from when its Lease last changed: an
 *   account moved to a pod whose Lease has been without a holder for longer (a pod that never started, to
 *   which accounts return from another such pod) gets the whole timeout there too, instead of being moved
 *   on at once, again and again.
 */
import { LeaseObserver, type LeaseRecord } from '../kube/lease.js';
import type { PodHealth } from './account-status.js';

/** Pure: a pod's health from its heartbeat record and how long that record stayed as it is. */
export function judgePod(input: {
  record: LeaseRecord | undefined;
  unchangedForMs: number;
  hasAccounts: boolean;
  graceFactor: number;
  startTimeoutMs: number;
  defaultDurationSeconds: number;
}): PodHealth {
  const seconds = Math.round(input.unchangedForMs / 1000);
  if (input.record?.holderIdentity) {
    const limitMs =
      (input.record.leaseDurationSeconds ?? input.defaultDurationSeconds) * 1000 * input.graceFactor;
    return input.unchangedForMs > limitMs
      ? { state: 'dead', why: `its heartbeat Lease was not renewed for ${seconds} s` }
      : { state: 'alive' };
  }
  if (input.hasAccounts && input.unchangedForMs > input.startTimeoutMs)
    return { state: 'dead', why: `no runtime process has held its heartbeat Lease for ${seconds} s` };
  return { state: 'starting' };
}

export interface PodLivenessOptions {
  graceFactor: number;
  startTimeoutMs: number;
  defaultDurationSeconds?: number;
  /** When the operator's own API trouble last ended (RestClient.apiTroubleEndedAt). */
  apiTroubleEndedAt: () => number;
  now?: () => number;
}

export class PodLiveness {
  private readonly observer: LeaseObserver;
  private readonly now: () => number;
  /** Since when (monotonic ms) each pod has had accounts placed on it, without a break. */
  private readonly placedSince = new Map<string, number>();

  constructor(private readonly options: PodLivenessOptions) {
    this.now = options.now ?? (() => performance.now());
    this.observer = new LeaseObserver(this.now);
  }

  /**
   * Judges one pod (`id` unique per namespace and pod) and returns its health plus when to look again
   * (the moment it could turn dead), if it could.
   */
  judge(
    id: string,
    record: LeaseRecord | undefined,
    hasAccounts: boolean,
  ): { health: PodHealth; recheckMs?: number } {
    const observed = this.observer.observe(id, record);
    const now = this.now();
    if (!hasAccounts) this.placedSince.delete(id);
    else if (!this.placedSince.has(id)) this.placedSince.set(id, now);
    const sinceTrouble = now - this.options.apiTroubleEndedAt();
    // Without a holder the question is "did it start in time since it got accounts?".
    const sincePlaced = record?.holderIdentity ? Infinity : now - (this.placedSince.get(id) ?? now);
    const unchangedForMs = Math.max(0, Math.min(observed, sinceTrouble, sincePlaced));
    const defaultDurationSeconds = this.options.defaultDurationSeconds ?? 15;
    const health = judgePod({
      record,
      unchangedForMs,
      hasAccounts,
      graceFactor: this.options.graceFactor,
      startTimeoutMs: this.options.startTimeoutMs,
      defaultDurationSeconds,
    });
    if (health.state === 'dead') return { health };
    const limitMs = record?.holderIdentity
      ? (record.leaseDurationSeconds ?? defaultDurationSeconds) * 1000 * this.options.graceFactor
      : hasAccounts
        ? this.options.startTimeoutMs
        : undefined;
    return {
      health,
      recheckMs: limitMs === undefined ? undefined : Math.max(100, limitMs - unchangedForMs + 250),
    };
  }

  forget(id: string): void {
    this.observer.forget(id);
    this.placedSince.delete(id);
  }
}
