/**
 * Writes the runtime's part of account status with server-side apply, only when something a reader sees
 * changed, coalescing bursts per account: a change is written `coalesceMs` after the first unwritten one,
 * with everything reported meanwhile. While the newest view is one the client moves on from by itself
 * (`settling`: starting, logging in, connecting, the first backup), the window is `settleMs` instead, so a
 * start that completes within it (a bot's WaitTdlibParameters -> WaitPhoneNumber -> Ready -> connected -> its
 * user -> its first backup) is one write, and a start that stalls is still shown once the window ends.
 *
 * A pod that lost or moved an account must never write its status again, even a write it decided on just
 * before. So every write is, in order: allowed only while this pod's fence is valid and the cached account is
 * placed here, and sent with the resourceVersion it was decided on as a precondition: if anything changed the
 * account since (the operator moving it, the new pod's first write), the API server refuses it (409) and the
 * decision is made again on the fresh object. Failed writes retry with per-account exponential backoff.
 */
import { API_VERSION, TELEGRAM_ACCOUNT_KIND, type TelegramAccount } from '../../crds/index.js';
import { TelegramAccountResource } from '../../crds/resources.js';
import type { RestClient } from '../../operator/kube/client.js';
import { isConflict, isNotFound } from '../../operator/kube/errors.js';
import type { Logger } from '../../operator/kube/logging.js';
import type { ApiObject } from '../../operator/kube/resource.js';
import { errorMessage } from '../../operator/kube/util.js';
import {
  RUNTIME_FIELD_MANAGER,
  desiredRuntimeStatus,
  settling,
  statusFingerprint,
  withReady,
  type HostedView,
} from './status.js';

export interface StatusWriterOptions {
  rest: RestClient;
  logger: Logger;
  /** This pod: only accounts labelled with it are written, and status.hostedBy says so. */
  podName: string;
  /** The session fence: no write while it is not valid. */
  fenceValid: () => boolean;
  /** The informer's current object for an account. */
  cached: (namespace: string, name: string) => TelegramAccount | undefined;
  /** How long an account's first unwritten change waits for more (default 500 ms): latency for writes. */
  coalesceMs?: number;
  /** The same while the newest view is `settling` (default 3 s): a start that completes within it is one write. */
  settleMs?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

interface Pending {
  view: HostedView;
  failures: number;
  /** Not before (backoff after failures, or +Infinity while the fence is not valid). */
  retryAt: number;
  /**
   * When the first unwritten change was reported: the coalescing window runs from it (its length depends on
   * the newest view). The timer waits for the window, an explicit flush() does not. -Infinity: no window
   * (after a failed write, the backoff alone decides).
   */
  since: number;
}

/** resourceVersions are etcd revisions; the larger is the newer (used only to pick a precondition). */
function newer(a: TelegramAccount | undefined, b: TelegramAccount | undefined): TelegramAccount | undefined {
  if (!a) return b;
  if (!b) return a;
  const ra = Number(a.metadata.resourceVersion);
  const rb = Number(b.metadata.resourceVersion);
  if (!Number.isFinite(ra) || !Number.isFinite(rb)) return a;
  return rb > ra ? b : a;
}

const DEFAULT_COALESCE_MS = 500;
const DEFAULT_SETTLE_MS = 3000;
const MAX_WRITES_IN_FLIGHT = 32;

export class StatusWriter {
  private readonly written = new Map<string, string>();
  private readonly pending = new Map<string, Pending>();
  /** The object our own last write returned, until the informer delivers it (or something newer). */
  private readonly returned = new Map<string, TelegramAccount>();
  /** Accounts with a write in flight: never two at once for one account, or an older view could land last. */
  private readonly inFlight = new Map<string, Promise<void>>();
  private timer?: NodeJS.Timeout;
  private timerAt = 0;
  /** The last timer pass left due writes behind for want of a free slot: a finished write starts another. */
  private waitingForSlot = false;
  writes = 0;
  refused = 0;
  conflicts = 0;
  failures = 0;

  constructor(private readonly options: StatusWriterOptions) {}

  report(namespace: string, name: string, view: HostedView): void {
    const key = `${namespace}/${name}`;
    const existing = this.pending.get(key);
    // The window is per account and starts at its first unwritten change: a steady stream of other
    // accounts' reports never delays it, and its own later reports join it.
    const pending: Pending = {
      view: { ...view },
      failures: existing?.failures ?? 0,
      retryAt: existing?.retryAt ?? 0,
      since: existing?.since ?? performance.now(),
    };
    this.pending.set(key, pending);
    // Only this account's due time: a thousand accounts reporting at once must not each look at all the
    // others (that was a 300 ms stall at a thousand, profiled).
    this.scheduleFor(pending);
  }

  /**
   * Writes everything pending now, coalescing windows or not (not what waits for a backoff or the fence),
   * and waits for writes in flight: for a state that must be visible at once, and for shutdown.
   */
  flush(): Promise<void> {
    return this.writeDue(false);
  }

  /**
   * The timer's pass (`respectWindows`) keeps at most MAX_WRITES_IN_FLIGHT writes out and goes on as they
   * finish: a thousand accounts starting at once must not put a thousand requests on the wire in one tick
   * (a 234 ms event-loop stall, measured). An explicit flush() is rare and must not leave its write behind.
   */
  private async writeDue(respectWindows: boolean): Promise<void> {
    const now = performance.now();
    let next = Number.POSITIVE_INFINITY;
    if (respectWindows) this.waitingForSlot = false;
    for (const [key, pending] of [...this.pending.entries()]) {
      if (respectWindows && this.inFlight.size >= MAX_WRITES_IN_FLIGHT) {
        this.waitingForSlot = true;
        break;
      }
      // Its write in flight schedules it when it ends.
      if (this.inFlight.has(key)) continue;
      const due = this.dueAt(pending, respectWindows);
      if (due > now) {
        next = Math.min(next, this.dueAt(pending, true));
        continue;
      }
      this.pending.delete(key);
      const write = this.write(key, pending).finally(() => {
        this.inFlight.delete(key);
        // A report that arrived meanwhile (or a retry) waited for this write, others for a free slot.
        const waiting = this.pending.get(key);
        if (waiting) this.scheduleFor(waiting);
        if (this.waitingForSlot) this.schedule(0);
      });
      this.inFlight.set(key, write);
    }
    if (Number.isFinite(next)) this.schedule(Math.max(0, next - now));
    await Promise.all(this.inFlight.values());
  }

  private dueAt(pending: Pending, respectWindow: boolean): number {
    if (!respectWindow) return pending.retryAt;
    const window = settling(pending.view)
      ? (this.options.settleMs ?? DEFAULT_SETTLE_MS)
      : (this.options.coalesceMs ?? DEFAULT_COALESCE_MS);
    return Math.max(pending.retryAt, pending.since + window);
  }

  /** Drops an account's bookkeeping (it is gone, or no longer hosted here). */
  forget(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    this.written.delete(key);
    this.pending.delete(key);
    this.returned.delete(key);
  }

  /** Pending writes waiting for the fence are tried again (call when it becomes valid). */
  resume(): void {
    for (const pending of this.pending.values())
      if (pending.retryAt === Number.POSITIVE_INFINITY) pending.retryAt = 0;
    if (this.pending.size > 0) this.schedule(0);
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  /** Flushes in `ms`, unless a flush is already due sooner (a backoff far out must not hold a new change). */
  private schedule(ms: number): void {
    const at = performance.now() + ms;
    if (this.timer) {
      if (this.timerAt <= at) return;
      clearTimeout(this.timer);
    }
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.writeDue(true);
    }, ms);
  }

  private scheduleFor(pending: Pending): void {
    const due = this.dueAt(pending, true);
    // Writes held for the fence wait for resume(), not for a timer.
    if (Number.isFinite(due)) this.schedule(Math.max(0, due - performance.now()));
  }

  private async write(key: string, taken: Pending): Promise<void> {
    let pending = taken;
    const slash = key.indexOf('/');
    const namespace = key.slice(0, slash);
    const name = key.slice(slash + 1);
    for (let attempt = 0; attempt < 2; attempt++) {
      // Always write the newest view: one reported while this write was being decided replaces it.
      const newest = this.pending.get(key);
      if (newest) {
        this.pending.delete(key);
        pending = { ...newest, failures: pending.failures };
      }
      const cached = this.options.cached(namespace, name);
      const base = newer(cached, this.returned.get(key));
      if (!base) return this.forget(namespace, name);
      if (base.status?.placement?.pod !== this.options.podName) {
        // Moved (or unplaced): the account is no longer ours to report on.
        this.refused++;
        return this.forget(namespace, name);
      }
      if (!this.options.fenceValid()) {
        this.refused++;
        // Kept: written once the fence is valid again (resume()).
        this.pending.set(key, { ...pending, retryAt: Number.POSITIVE_INFINITY });
        return;
      }
      const now = new Date();
      const status = withReady(
        desiredRuntimeStatus(pending.view, base.status?.conditions, now, this.options.podName),
        base,
        now,
      );
      const fingerprint = statusFingerprint(status);
      if (this.written.get(key) === fingerprint && base.status?.hostedBy === this.options.podName) return;
      try {
        const result = await this.options.rest.applyStatus<TelegramAccount & ApiObject>(
          TelegramAccountResource,
          {
            apiVersion: API_VERSION,
            kind: TELEGRAM_ACCOUNT_KIND,
            metadata: { name, namespace, resourceVersion: base.metadata.resourceVersion },
            status,
          } as ApiObject,
          { fieldManager: RUNTIME_FIELD_MANAGER, force: true },
        );
        this.writes++;
        this.written.set(key, fingerprint);
        this.returned.set(key, result);
        return;
      } catch (error) {
        if (isNotFound(error)) return this.forget(namespace, name);
        if (isConflict(error) && attempt === 0) {
          // Changed since we decided: read it afresh and decide again (placement and fence included).
          this.conflicts++;
          try {
            const fresh = await this.options.rest.get<TelegramAccount & ApiObject>(
              TelegramAccountResource,
              namespace,
              name,
            );
            this.returned.set(key, fresh);
            continue;
          } catch (readError) {
            if (isNotFound(readError)) return this.forget(namespace, name);
            return this.retryLater(key, pending, readError);
          }
        }
        return this.retryLater(key, pending, error);
      }
    }
  }

  private retryLater(key: string, pending: Pending, error: unknown): void {
    this.failures++;
    const failures = pending.failures + 1;
    const min = this.options.minBackoffMs ?? 500;
    const max = this.options.maxBackoffMs ?? 60_000;
    const delay = Math.min(max, min * 2 ** (failures - 1)) * (0.8 + Math.random() * 0.4);
    // A newer report that arrived meanwhile replaces the view but keeps the backoff.
    const latest = this.pending.get(key);
    this.pending.set(key, {
      view: latest?.view ?? pending.view,
      failures,
      retryAt: performance.now() + delay,
      since: Number.NEGATIVE_INFINITY,
    });
    if (failures === 1 || failures % 5 === 0)
      this.options.logger.warn(
        { account: key, err: errorMessage(error), failures, retryInMs: Math.round(delay) },
        'status write failed; retrying with backoff',
      );
  }
}
