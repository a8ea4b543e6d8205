/**
 * The one coordination.k8s.io/v1 Lease implementation: client-go's tryAcquireOrRenew, shared by leader
 * election, the runtime's pod heartbeat, the per-account session fences, and everyone who judges whether
 * another holder expired.
 *
 * - Expiry is judged on the local monotonic clock only: an observer notes when it first saw the current
 *   record (holder, renewTime, ...), and a holder has expired once that record stayed unchanged for its
 *   leaseDurationSeconds. Remote timestamps are never compared with ours (clock skew does not matter).
 * - Every write is conditional (the resourceVersion last read), so two contenders can never both win.
 * - A holder that knows the resourceVersion renews with one conditional PUT (no GET first). A 409 means the
 *   object changed: it is read again, and kept only if the holder is still exactly our identity (which
 *   names the process incarnation, so no other process can hold it under that name).
 * - `sentAt` of an attempt is when the successful write was *sent*: a holder's validity is counted from
 *   there, never from when the answer arrived (a slow answer must not extend it).
 */
import type { RestClient } from './client.js';
import { isAlreadyExists, isConflict, isNotFound } from './errors.js';
import { Resources } from './resource.js';

export interface LeaseRecord {
  holderIdentity?: string | null;
  leaseDurationSeconds?: number;
  acquireTime?: string | null;
  renewTime?: string | null;
  leaseTransitions?: number;
}

export interface LeaseObject {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: Array<{ apiVersion: string; kind: string; name: string; uid: string }>;
  };
  spec?: LeaseRecord;
}

/** MicroTime as the apiserver formats it: RFC 3339 with exactly six fractional digits. */
export function microTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/** What identifies one version of a record: any change of these is a sign of life of its holder. */
export function recordKey(record: LeaseRecord | undefined): string {
  if (!record) return '<none>';
  return [
    record.holderIdentity ?? '',
    record.renewTime ?? '',
    record.acquireTime ?? '',
    record.leaseTransitions ?? 0,
    record.leaseDurationSeconds ?? '',
  ].join('|');
}

/**
 * When each Lease's current record was first seen, on this process's monotonic clock. A missing Lease is a
 * record too ('<none>'), so a deleted Lease is judged like an unrenewed one, not as "free at once".
 */
export class LeaseObserver {
  private readonly seen = new Map<string, { key: string; at: number }>();

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Notes `record` for `lease`; returns for how long (ms) this exact record has been observed unchanged. */
  observe(lease: string, record: LeaseRecord | undefined): number {
    const key = recordKey(record);
    const now = this.now();
    const previous = this.seen.get(lease);
    if (previous?.key !== key) {
      this.seen.set(lease, { key, at: now });
      return 0;
    }
    return now - previous.at;
  }

  forget(lease: string): void {
    this.seen.delete(lease);
  }

  get size(): number {
    return this.seen.size;
  }
}

/** Expired: held by someone, and that record unchanged for longer than its duration. */
export function leaseExpired(
  record: LeaseRecord | undefined,
  unchangedForMs: number,
  defaultSeconds: number,
): boolean {
  return unchangedForMs > (record?.leaseDurationSeconds ?? defaultSeconds) * 1000;
}

/** Whether a contender may take the Lease from its current (other, non-empty) holder. Default: expired. */
export type TakeoverRule = (current: {
  holder: string;
  record: LeaseRecord;
  unchangedForMs: number;
}) => boolean | Promise<boolean>;

type LeaseOwnerReferences = NonNullable<LeaseObject['metadata']>['ownerReferences'];

export interface LeaseLockOptions {
  rest: RestClient;
  namespace: string;
  name: string;
  /** Unique per process incarnation (e.g. pod name + pod UID + a per-start nonce). */
  identity: string;
  durationSeconds: number;
  /** Set on create (and kept on writes); e.g. who manages the Lease. */
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** Create the Lease when it does not exist (default true). False: a missing Lease is not ours to make. */
  create?: boolean;
  /**
   * leaseTransitions of a Lease this lock creates, and so the epoch of the first holder (default 0, as
   * client-go creates them).
   */
  createdEpoch?: number;
  /**
   * Set on create only: who the Lease is collected with. A function is read at the create, so an owner that
   * depends on a spec the caller keeps watching (an account's deletionPolicy) is as fresh as the caller's view.
   */
  ownerReferences?: LeaseOwnerReferences | (() => LeaseOwnerReferences);
  /** Monotonic milliseconds; injectable for tests. */
  now?: () => number;
}

export type LeaseAttempt =
  | {
      held: true;
      /** Monotonic time the successful write was sent: validity counts from here. */
      sentAt: number;
      /** leaseTransitions after our write: grows with every change of holder (a fencing epoch). */
      epoch: number;
      /** True when this attempt took the Lease (rather than renewing it). */
      acquired: boolean;
      /** The holder we took it from ('' when it was free or new). */
      previousHolder: string;
    }
  | {
      held: false;
      /** The current holder ('' if none, e.g. the Lease does not exist and may not be created). */
      holder: string;
      unchangedForMs: number;
      missing: boolean;
    };

export class LeaseLock {
  readonly identity: string;
  private readonly observer: LeaseObserver;
  private readonly now: () => number;
  /** The last object we read or wrote. */
  private known?: LeaseObject;

  constructor(private readonly options: LeaseLockOptions) {
    if (!options.identity) throw new Error('a Lease holder needs a non-empty identity');
    this.identity = options.identity;
    this.now = options.now ?? (() => performance.now());
    this.observer = new LeaseObserver(this.now);
  }

  get name(): string {
    return this.options.name;
  }

  /** The holder we last saw ('' when released or none, undefined before the first read). */
  get observedHolder(): string | undefined {
    return this.known === undefined ? undefined : (this.known.spec?.holderIdentity ?? '');
  }

  get observedRecord(): LeaseRecord | undefined {
    return this.known?.spec;
  }

  /** True if the last object we saw names us as the holder. */
  get heldByUs(): boolean {
    return this.known?.spec?.holderIdentity === this.identity;
  }

  /**
   * One round. Holding it with a known resourceVersion: a single conditional PUT. Otherwise read it (or
   * create it), and take it if it is free, ours, or `mayTakeOver` says its holder is gone. Throws on API
   * errors other than the conflicts of a lost race (which return held: false).
   */
  async tryAcquireOrRenew(
    options: { signal?: AbortSignal; mayTakeOver?: TakeoverRule } = {},
  ): Promise<LeaseAttempt> {
    const { signal } = options;
    if (this.heldByUs && this.known?.metadata?.resourceVersion) {
      const renewed = await this.write(this.known, this.known.spec ?? {}, signal);
      if (renewed) return renewed;
      // 409: someone wrote the Lease since; read it and decide again.
    }
    let current: LeaseObject | undefined;
    try {
      current = await this.options.rest.get<LeaseObject>(
        Resources.Lease,
        this.options.namespace,
        this.options.name,
        {
          signal,
        },
      );
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
    if (current === undefined) return this.createOrWait(signal);
    this.known = current;
    const record = current.spec ?? {};
    const holder = record.holderIdentity ?? '';
    const unchangedForMs = this.observer.observe(this.options.name, record);
    if (holder !== '' && holder !== this.identity) {
      const rule =
        options.mayTakeOver ??
        ((c: { record: LeaseRecord; unchangedForMs: number }) =>
          leaseExpired(c.record, c.unchangedForMs, this.options.durationSeconds));
      if (!(await rule({ holder, record, unchangedForMs })))
        return { held: false, holder, unchangedForMs, missing: false };
    }
    const attempt = await this.write(current, record, signal);
    if (attempt) return attempt;
    return { held: false, holder: this.observedHolder ?? '', unchangedForMs: 0, missing: false };
  }

  /** Gives the Lease up (only if we hold it), so the next holder need not wait for it to expire. */
  async release(options: { signal?: AbortSignal; releaseDurationSeconds?: number } = {}): Promise<boolean> {
    for (let attempt = 0; attempt < 3; attempt++) {
      if (!this.heldByUs || !this.known) return false;
      const wall = microTime(new Date());
      const body: LeaseObject = {
        ...this.known,
        spec: {
          ...this.known.spec,
          holderIdentity: null,
          leaseDurationSeconds: options.releaseDurationSeconds ?? this.known.spec?.leaseDurationSeconds,
          acquireTime: null,
          renewTime: wall,
        },
      };
      try {
        this.known = await this.options.rest.replace<LeaseObject>(Resources.Lease, body, {
          signal: options.signal,
        });
        return true;
      } catch (error) {
        if (isNotFound(error)) {
          this.known = undefined;
          return false;
        }
        if (!isConflict(error)) throw error;
        this.known = await this.options.rest.get<LeaseObject>(
          Resources.Lease,
          this.options.namespace,
          this.options.name,
          { signal: options.signal },
        );
      }
    }
    return false;
  }

  /**
   * Raises leaseTransitions to at least `min` while we hold the Lease (one conditional PUT), so our epoch
   * stays ahead of anything written under an earlier incarnation of the Lease object (deleted and
   * recreated). Returns the epoch now held, or undefined when the Lease is no longer ours.
   */
  async raiseEpoch(min: number, signal?: AbortSignal): Promise<number | undefined> {
    if (!this.heldByUs || !this.known) return undefined;
    const current = this.known.spec?.leaseTransitions ?? 0;
    if (current >= min) return current;
    try {
      this.known = await this.options.rest.replace<LeaseObject>(
        Resources.Lease,
        { ...this.known, spec: { ...this.known.spec, leaseTransitions: min } },
        { signal },
      );
      return min;
    } catch (error) {
      if (isConflict(error) || isNotFound(error)) {
        this.known = undefined;
        return undefined;
      }
      throw error;
    }
  }

  /** Forgets what we know (e.g. after losing it), so the next attempt reads the Lease afresh. */
  reset(): void {
    this.known = undefined;
  }

  private async createOrWait(signal: AbortSignal | undefined): Promise<LeaseAttempt> {
    const unchangedForMs = this.observer.observe(this.options.name, undefined);
    this.known = undefined;
    if (this.options.create === false) return { held: false, holder: '', unchangedForMs, missing: true };
    const wall = microTime(new Date());
    const sentAt = this.now();
    const epoch = this.options.createdEpoch ?? 0;
    const owners = this.options.ownerReferences;
    const ownerReferences = typeof owners === 'function' ? owners() : owners;
    try {
      const created = await this.options.rest.create<LeaseObject>(
        Resources.Lease,
        {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: {
            name: this.options.name,
            namespace: this.options.namespace,
            labels: this.options.labels,
            annotations: this.options.annotations,
            ...(ownerReferences?.length ? { ownerReferences } : {}),
          },
          spec: {
            holderIdentity: this.identity,
            leaseDurationSeconds: this.options.durationSeconds,
            acquireTime: wall,
            renewTime: wall,
            leaseTransitions: epoch,
          },
        },
        { signal },
      );
      this.known = created;
      this.observer.observe(this.options.name, created.spec);
      return { held: true, sentAt, epoch, acquired: true, previousHolder: '' };
    } catch (error) {
      if (isAlreadyExists(error) || isConflict(error))
        return { held: false, holder: '', unchangedForMs: 0, missing: false };
      throw error;
    }
  }

  /** The conditional PUT: renews (holder is us) or takes over; undefined on 409. */
  private async write(
    base: LeaseObject,
    record: LeaseRecord,
    signal: AbortSignal | undefined,
  ): Promise<LeaseAttempt | undefined> {
    const previousHolder = record.holderIdentity ?? '';
    const ours = previousHolder === this.identity;
    const wall = microTime(new Date());
    const epoch = (record.leaseTransitions ?? 0) + (ours ? 0 : 1);
    const body: LeaseObject = {
      ...base,
      metadata: {
        ...base.metadata,
        labels: { ...(base.metadata?.labels ?? {}), ...(this.options.labels ?? {}) },
        annotations: { ...(base.metadata?.annotations ?? {}), ...(this.options.annotations ?? {}) },
      },
      spec: {
        ...record,
        holderIdentity: this.identity,
        leaseDurationSeconds: this.options.durationSeconds,
        acquireTime: ours ? (record.acquireTime ?? wall) : wall,
        renewTime: wall,
        leaseTransitions: epoch,
      },
    };
    const sentAt = this.now();
    try {
      const written = await this.options.rest.replace<LeaseObject>(Resources.Lease, body, { signal });
      this.known = written;
      this.observer.observe(this.options.name, written.spec);
      return { held: true, sentAt, epoch, acquired: !ours, previousHolder: ours ? '' : previousHolder };
    } catch (error) {
      if (isConflict(error)) {
        this.known = undefined;
        return undefined;
      }
      if (isNotFound(error)) {
        this.known = undefined;
        return undefined;
      }
      throw error;
    }
  }
}
