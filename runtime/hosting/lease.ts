/**
 * A Lease held by this pod: the fence that keeps two pods from running one session (and, for the pod's own
 * heartbeat Lease, how the operator sees that a runtime died). Expiry is judged on this process's clock from
 * when the holder's record last changed, never by comparing remote timestamps (client-go's rule), and every
 * write carries the resourceVersion it read, so two pods can never both win.
 */
import type { RestClient } from '../../operator/kube/client.js';
import { isAlreadyExists, isConflict, isNotFound } from '../../operator/kube/errors.js';
import type { Logger } from '../../operator/kube/logging.js';
import { Resources, type ApiObject } from '../../operator/kube/resource.js';

interface LeaseObject extends ApiObject {
  spec?: {
    holderIdentity?: string | null;
    leaseDurationSeconds?: number;
    renewTime?: string | null;
    acquireTime?: string | null;
    leaseTransitions?: number;
  };
}

export interface LeaseFenceOptions {
  rest: RestClient;
  namespace: string;
  name: string;
  holder: string;
  durationSeconds: number;
  labels: Record<string, string>;
  logger: Logger;
  /** Called once when the Lease is lost (renewal failed past the deadline, or taken): stop at once. */
  onLost: (reason: string) => void;
  now?: () => number;
}

const microTime = (ms: number): string => new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

export class LeaseFence {
  private observed?: { key: string; at: number };
  private resourceVersion?: string;
  private lastRenew = 0;
  private timer?: NodeJS.Timeout;
  private held = false;
  private lost = false;
  private readonly now: () => number;

  constructor(private readonly options: LeaseFenceOptions) {
    this.now = options.now ?? (() => performance.now());
  }

  isHeld(): boolean {
    return this.held && !this.lost;
  }

  /** One attempt; true once this pod holds the Lease. Callers retry on their own schedule. */
  async tryAcquire(): Promise<boolean> {
    const { rest, namespace, name, holder, durationSeconds } = this.options;
    const wall = Date.now();
    let current: LeaseObject;
    try {
      current = await rest.get<LeaseObject>(Resources.Lease, namespace, name);
    } catch (error) {
      if (!isNotFound(error)) throw error;
      try {
        const created = await rest.create<LeaseObject>(Resources.Lease, {
          apiVersion: 'coordination.k8s.io/v1',
          kind: 'Lease',
          metadata: { name, namespace, labels: this.options.labels },
          spec: {
            holderIdentity: holder,
            leaseDurationSeconds: durationSeconds,
            acquireTime: microTime(wall),
            renewTime: microTime(wall),
            leaseTransitions: 0,
          },
        } as LeaseObject);
        return this.won(created);
      } catch (createError) {
        if (isAlreadyExists(createError)) return false;
        throw createError;
      }
    }
    const spec = current.spec ?? {};
    const key = `${spec.holderIdentity ?? ''}|${spec.renewTime ?? ''}`;
    if (this.observed?.key !== key) this.observed = { key, at: this.now() };
    const mine = spec.holderIdentity === holder;
    const free = !spec.holderIdentity;
    const expired = this.now() - this.observed.at > (spec.leaseDurationSeconds ?? durationSeconds) * 1000;
    if (!mine && !free && !expired) return false;
    try {
      const updated = await rest.replace<LeaseObject>(Resources.Lease, {
        ...current,
        metadata: {
          ...current.metadata,
          labels: { ...(current.metadata?.labels ?? {}), ...this.options.labels },
        },
        spec: {
          ...spec,
          holderIdentity: holder,
          leaseDurationSeconds: durationSeconds,
          renewTime: microTime(wall),
          acquireTime: mine ? spec.acquireTime : microTime(wall),
          leaseTransitions: (spec.leaseTransitions ?? 0) + (mine ? 0 : 1),
        },
      });
      return this.won(updated);
    } catch (error) {
      if (isConflict(error)) return false; // another pod wrote first: it wins, we observe again
      throw error;
    }
  }

  private won(lease: LeaseObject): boolean {
    this.resourceVersion = lease.metadata?.resourceVersion;
    this.held = true;
    this.lost = false;
    this.lastRenew = this.now();
    this.scheduleRenew();
    return true;
  }

  private scheduleRenew(): void {
    clearTimeout(this.timer);
    const period = (this.options.durationSeconds * 1000) / 3;
    this.timer = setTimeout(() => void this.renew(), period);
    this.timer.unref();
  }

  private async renew(): Promise<void> {
    if (!this.held || this.lost) return;
    const { rest, namespace, name, holder, durationSeconds } = this.options;
    try {
      const current = await rest.get<LeaseObject>(Resources.Lease, namespace, name);
      if (current.spec?.holderIdentity !== holder)
        return this.lose(`taken over by ${current.spec?.holderIdentity ?? 'nobody'}`);
      const updated = await rest.replace<LeaseObject>(Resources.Lease, {
        ...current,
        spec: { ...current.spec, renewTime: microTime(Date.now()), leaseDurationSeconds: durationSeconds },
      });
      this.resourceVersion = updated.metadata?.resourceVersion;
      this.lastRenew = this.now();
    } catch (error) {
      this.options.logger.warn(
        { lease: name, err: error instanceof Error ? error.message : String(error) },
        'renewing a lease failed',
      );
      // Stop before the Lease could expire in another pod's eyes: two thirds of its duration.
      if (this.now() - this.lastRenew > (durationSeconds * 1000 * 2) / 3)
        return this.lose('could not renew in time');
    }
    if (this.held && !this.lost) this.scheduleRenew();
  }

  private lose(reason: string): void {
    if (this.lost) return;
    this.lost = true;
    this.held = false;
    clearTimeout(this.timer);
    this.options.logger.warn({ lease: this.options.name, reason }, 'lease lost');
    this.options.onLost(reason);
  }

  /** Gives the Lease up so the next holder need not wait for it to expire. Safe to call when not held. */
  async release(): Promise<void> {
    clearTimeout(this.timer);
    if (!this.held || this.lost) {
      this.held = false;
      return;
    }
    this.held = false;
    const { rest, namespace, name, holder } = this.options;
    try {
      const current = await rest.get<LeaseObject>(Resources.Lease, namespace, name);
      if (current.spec?.holderIdentity !== holder) return;
      await rest.replace(Resources.Lease, {
        ...current,
        spec: { ...current.spec, holderIdentity: null, renewTime: null, acquireTime: null },
      });
    } catch (error) {
      this.options.logger.warn(
        { lease: name, err: error instanceof Error ? error.message : String(error) },
        'releasing a lease failed; it will expire',
      );
    }
  }

  /** Stops renewing without releasing (the Lease expires on its own): for tests that simulate a crash. */
  abandon(): void {
    clearTimeout(this.timer);
    this.held = false;
  }
}
