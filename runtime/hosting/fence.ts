/**
 * The session fence of a runtime process ("never two live clients for one session").
 *
 * Validity is delegated: every account Lease this process holds names its incarnation
 * (`<pod>/<pod uid>/<nonce>`), and is valid exactly as long as the pod's heartbeat Lease, held under the
 * same identity, is. Only the heartbeat is renewed (one conditional PUT every D/3, with a per-attempt
 * deadline, on its own connection), so a pod with 1,000 accounts costs the API server one write per renewal
 * period instead of a thousand; the account Leases are written only when taken and given back.
 *
 *   validUntil = (when the last successful renewal was *sent*) + D - margin
 *
 * is checked before every TDLib request, backup write and status write; at validUntil every client of the
 * process is closed by a timer (and, below JavaScript, by the backend's watchdog), whether or not a renewal
 * attempt is still running. A contender takes an account Lease only when its holder's incarnation is gone:
 * the heartbeat names someone else or nobody, or the holder's heartbeat record stayed unchanged for a whole
 * duration on the contender's own clock; it then waits `margin` more before starting TDLib.
 */
import { randomBytes } from 'node:crypto';
import type { RestClient } from '../../operator/kube/client.js';
import { isNotFound } from '../../operator/kube/errors.js';
import {
  LeaseLock,
  LeaseObserver,
  leaseExpired,
  type LeaseAttempt,
  type LeaseObject,
  type TakeoverRule,
} from '../../operator/kube/lease.js';
import type { Logger } from '../../operator/kube/logging.js';
import { Resources } from '../../operator/kube/resource.js';
import { heartbeatLeaseOf } from '../../crds/naming.js';

export { heartbeatLeaseOf };
import { errorMessage, sleep } from '../../operator/kube/util.js';

export interface FenceTiming {
  /** Lease duration D. */
  readonly durationMs: number;
  /** Renewal period (D/3). */
  readonly renewEveryMs: number;
  /** Safety margin: the holder stops this long before a contender may take over, who waits it again. */
  readonly marginMs: number;
}

export function fenceTiming(leaseSeconds: number): FenceTiming {
  const durationMs = leaseSeconds * 1000;
  return { durationMs, renewEveryMs: durationMs / 3, marginMs: durationMs / 5 };
}

/** Until when a holder may act after a renewal sent at `sentAt` (monotonic ms). */
export function validUntilAfter(sentAt: number, timing: FenceTiming): number {
  return sentAt + timing.durationMs - timing.marginMs;
}

/** `<pod>/<pod uid>/<nonce>`: a recreated pod with the same name is a different holder. */
export function incarnationIdentity(podName: string, podUid: string | undefined): string {
  return `${podName}/${podUid || 'no-uid'}/${randomBytes(4).toString('hex')}`;
}

/**
 * Whether `holder` is an earlier incarnation in this very pod (same pod name and uid, another nonce): the
 * kubelet starts a pod's container again only after the previous one exited, so that process is gone and
 * its heartbeat need not be waited out. Without a pod uid (processes run outside a pod) nothing is known.
 */
export function earlierIncarnationInPod(ours: string, holder: string): boolean {
  const [pod, uid] = ours.split('/');
  if (!pod || !uid || uid === 'no-uid') return false;
  const [holderPod, holderUid, holderNonce] = holder.split('/');
  return holderPod === pod && holderUid === uid && holderNonce !== undefined && holder !== ours;
}

/** Raised by a fenced action attempted without a valid fence. */
export class FenceLostError extends Error {
  override readonly name = 'FenceLostError';
}

export interface PodFenceOptions {
  lock: LeaseLock;
  timing: FenceTiming;
  logger: Logger;
  now?: () => number;
}

type ValidityListener = (valid: boolean) => void;

/** The pod's heartbeat Lease, renewed in a loop that never gives up; validity is what everything checks. */
export class PodFence {
  private validUntilMs = Number.NEGATIVE_INFINITY;
  private readonly now: () => number;
  private readonly listeners = new Set<ValidityListener>();
  private lapseTimer?: NodeJS.Timeout;
  private readonly stop = new AbortController();
  private loop?: Promise<void>;
  private wasValid = false;
  /** Given up on purpose (shutdown): the end of validity is then no lapse and no error. */
  private released = false;
  private lastError?: string;
  renewals = 0;
  failures = 0;

  constructor(private readonly options: PodFenceOptions) {
    this.now = options.now ?? (() => performance.now());
  }

  get identity(): string {
    return this.options.lock.identity;
  }

  get timing(): FenceTiming {
    return this.options.timing;
  }

  /** True while actions under this fence are allowed (checked synchronously before each of them). */
  valid(): boolean {
    return this.now() < this.validUntilMs;
  }

  /** Milliseconds of validity left (<= 0 when lapsed). */
  remainingMs(): number {
    return this.validUntilMs - this.now();
  }

  /** Throws FenceLostError unless valid: call right before a fenced action. */
  check(what: string): void {
    if (!this.valid())
      throw new FenceLostError(
        `${what} refused: this pod's heartbeat Lease is not valid (${this.lastError ?? 'not renewed in time'})`,
      );
  }

  /** Called with true when validity starts or is extended after a lapse, false when it lapses. */
  onValidityChange(listener: ValidityListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Starts the renewal loop; resolves once the first acquisition succeeded (waiting out a previous holder). */
  start(): Promise<void> {
    let first!: () => void;
    const acquired = new Promise<void>((resolve) => (first = resolve));
    this.loop = this.run(first);
    return acquired;
  }

  /** Stops renewing and gives the heartbeat up (call after every account Lease was released). */
  async release(): Promise<void> {
    this.stop.abort(new Error('released'));
    await this.loop;
    clearTimeout(this.lapseTimer);
    this.released = true;
    this.setValidUntil(Number.NEGATIVE_INFINITY);
    try {
      await this.options.lock.release({
        signal: AbortSignal.timeout(Math.ceil(this.options.timing.renewEveryMs)),
      });
    } catch (error) {
      this.options.logger.warn(
        { err: errorMessage(error) },
        'releasing the heartbeat Lease failed; it will expire',
      );
    }
  }

  /** Stops renewing without releasing, as a crash would (tests). */
  async abandon(): Promise<void> {
    this.stop.abort(new Error('abandoned'));
    await this.loop;
    clearTimeout(this.lapseTimer);
  }

  private async run(acquired: () => void): Promise<void> {
    const { lock, timing, logger } = this.options;
    const signal = this.stop.signal;
    while (!signal.aborted) {
      // An attempt never outlives the validity it is meant to extend; unheld, it gets one period.
      const budget = this.valid() ? this.remainingMs() : timing.renewEveryMs;
      let attempt: LeaseAttempt | undefined;
      // A timer we hold, not AbortSignal.any([signal, AbortSignal.timeout(...)]): on Node 20 a timeout signal
      // inside any() can be garbage collected before it fires (nodejs/node#57736), and the attempt would
      // then hang past its deadline, holding up every later renewal.
      const deadline = new AbortController();
      const timer = setTimeout(
        () => deadline.abort(new DOMException('renewal attempt deadline', 'TimeoutError')),
        Math.max(50, Math.ceil(budget)),
      );
      const onStop = (): void => deadline.abort(signal.reason);
      signal.addEventListener('abort', onStop, { once: true });
      try {
        attempt = await lock.tryAcquireOrRenew({
          signal: deadline.signal,
          // A restarted container takes its pod's heartbeat at once; anyone else waits for it to expire.
          mayTakeOver: ({ holder, record, unchangedForMs }) =>
            earlierIncarnationInPod(lock.identity, holder) ||
            leaseExpired(record, unchangedForMs, timing.durationMs / 1000),
        });
      } catch (error) {
        if (signal.aborted) break;
        this.failures++;
        this.lastError = errorMessage(error);
        logger.warn({ lease: lock.name, err: this.lastError }, 'renewing the pod heartbeat Lease failed');
      } finally {
        clearTimeout(timer);
        signal.removeEventListener('abort', onStop);
      }
      if (signal.aborted) break;
      let wait: number;
      if (attempt?.held) {
        this.renewals++;
        this.lastError = undefined;
        this.setValidUntil(validUntilAfter(attempt.sentAt, timing));
        acquired();
        wait = attempt.sentAt + timing.renewEveryMs - this.now();
      } else {
        if (attempt && !attempt.held) {
          this.lastError = attempt.missing
            ? `Lease ${lock.name} does not exist yet`
            : `held by ${attempt.holder}, waiting for it to expire`;
          // Someone else holds our heartbeat (we were replaced): nothing here may act until we hold it again.
          if (attempt.holder !== '' && this.valid()) this.setValidUntil(Number.NEGATIVE_INFINITY);
        }
        wait = Math.min(1000, timing.renewEveryMs / 2);
      }
      await sleep(Math.max(0, wait), signal).catch(() => undefined);
    }
  }

  private setValidUntil(until: number): void {
    this.validUntilMs = until;
    this.armLapseTimer();
    this.notify();
  }

  /** The lapse must act at validUntil, not at the next renewal attempt's end. */
  private armLapseTimer(): void {
    clearTimeout(this.lapseTimer);
    const remaining = this.validUntilMs - this.now();
    if (remaining <= 0) return;
    this.lapseTimer = setTimeout(() => {
      // Node timers count whole milliseconds on the event loop's clock and can fire just before validUntil
      // by ours: then wait out the rest, or the lapse would never be reported.
      if (this.valid()) this.armLapseTimer();
      else this.notify();
    }, remaining + 1);
    this.lapseTimer.unref();
  }

  private notify(): void {
    const valid = this.valid();
    if (valid === this.wasValid && valid) {
      // Extended: listeners that mirror the deadline elsewhere (the backend's watchdog) need the new one.
      for (const listener of this.listeners) listener(true);
      return;
    }
    if (valid === this.wasValid) return;
    this.wasValid = valid;
    if (!valid && this.released)
      this.options.logger.info({ lease: this.options.lock.name }, 'pod heartbeat Lease released');
    else if (!valid)
      this.options.logger.error(
        { lease: this.options.lock.name },
        'pod heartbeat Lease lapsed: closing every client',
      );
    for (const listener of this.listeners) listener(valid);
  }
}

/**
 * Whether the incarnation named by an account Lease's holder is gone, judged from its heartbeat Lease on
 * our own clock. Reads each heartbeat at most once per `cacheMs`, however many accounts wait on it.
 */
export class HolderLiveness {
  private readonly observer: LeaseObserver;
  private readonly cache = new Map<string, { at: number; lease?: LeaseObject; unchangedForMs: number }>();
  private readonly now: () => number;
  private readonly cacheMs: number;

  constructor(
    private readonly rest: RestClient,
    private readonly namespace: string,
    private readonly defaultSeconds: number,
    options: { now?: () => number; cacheMs?: number } = {},
  ) {
    this.now = options.now ?? (() => performance.now());
    this.observer = new LeaseObserver(this.now);
    this.cacheMs = options.cacheMs ?? 1000;
  }

  /** The takeover rule for account Leases. */
  readonly rule: TakeoverRule = async ({ holder }) => this.gone(holder);

  async gone(holderIdentity: string, signal?: AbortSignal): Promise<boolean> {
    const name = heartbeatLeaseOf(holderIdentity);
    let entry = this.cache.get(name);
    if (!entry || this.now() - entry.at >= this.cacheMs) {
      let lease: LeaseObject | undefined;
      try {
        lease = await this.rest.get<LeaseObject>(Resources.Lease, this.namespace, name, { signal });
      } catch (error) {
        if (!isNotFound(error)) throw error;
      }
      entry = { at: this.now(), lease, unchangedForMs: this.observer.observe(name, lease?.spec) };
      this.cache.set(name, entry);
    }
    const record = entry.lease?.spec;
    // The heartbeat names another incarnation, or nobody: this one released it (after closing everything)
    // or was replaced (whoever replaced it waited it out). Either way it runs nothing any more.
    if (record && (record.holderIdentity ?? '') !== holderIdentity) return true;
    // Unchanged (or missing) for a whole duration on our clock: it could not have renewed, so it stopped.
    return leaseExpired(record, entry.unchangedForMs, this.defaultSeconds);
  }
}
