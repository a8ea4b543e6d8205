/**
 * A controller in controller-runtime's shape: informers feed keys through map functions into one work queue;
 * `workers` loops take keys and call the reconciler. Reconcile is level-triggered: it gets only a key and
 * reads the current state from the caches, so a dropped or coalesced event never loses work; it must be
 * idempotent because any key may be reconciled again at any time (relists, requeues, restarts).
 *
 * Outcome handling (controller-runtime's reconcileHandler):
 *   throws            -> addRateLimited (exponential per key), result="error"
 *   throws Terminal.. -> forget, no retry, result="error" (and terminal counter)
 *   {requeueAfterMs}  -> forget + addAfter, result="requeue_after"
 *   {requeue: true}   -> addRateLimited, result="requeue"
 *   otherwise         -> forget, result="success"
 */
import { setMaxListeners } from 'node:events';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ApiError } from './errors.js';
import type { Logger } from './logging.js';
import { counter, defaultRegistry, gauge, histogram } from './metrics.js';
import type { RateLimiter } from './rate-limiter.js';
import type { Informer, InformerEventType } from './reflector.js';
import type { ApiObject } from './resource.js';
import { errorMessage } from './util.js';
import { WorkQueue, type Priority } from './workqueue.js';

export interface ObjectKey {
  /** '' for cluster-scoped objects. */
  namespace: string;
  name: string;
}

export interface ReconcileResult {
  /** Reconcile this key again after the delay (e.g. a scheduled campaign start); resets its backoff. */
  requeueAfterMs?: number;
  /** Reconcile again with rate-limited backoff (work remains but nothing failed). */
  requeue?: boolean;
}

export interface ReconcileContext {
  /** Aborted when the controller stops (shutdown, lost leadership): stop writing and return. */
  signal: AbortSignal;
  logger: Logger;
  /** How many times this key was requeued with backoff since its last success. */
  retries: number;
}

export interface Reconciler {
  reconcile(key: ObjectKey, context: ReconcileContext): Promise<ReconcileResult | void>;
}

/** An error retrying cannot fix (invalid spec): logged and counted, not requeued. */
export class TerminalError extends Error {
  override readonly name = 'TerminalError';
}

/** "namespace/name", or "name" for cluster-scoped objects. */
export function keyToString(key: ObjectKey): string {
  return key.namespace ? `${key.namespace}/${key.name}` : key.name;
}

export function parseKey(key: string): ObjectKey {
  const slash = key.indexOf('/');
  return slash < 0
    ? { namespace: '', name: key }
    : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

/** The key of an object itself (what `For(kind)` enqueues in controller-runtime). */
export function objectKey(obj: ApiObject): ObjectKey {
  return { namespace: obj.metadata?.namespace ?? '', name: obj.metadata?.name ?? '' };
}

export interface ControllerOptions {
  name: string;
  reconciler: Reconciler;
  /** Concurrent reconciles (controller-runtime's MaxConcurrentReconciles); default 1. */
  workers?: number;
  logger: Logger;
  registry?: Registry;
  rateLimiter?: RateLimiter<string>;
  /** How long start() waits for the informers' first lists before failing (default 2 min). */
  cacheSyncTimeoutMs?: number;
  /** Requests one reconcile may have in flight at once (default 8): sizes the shared signal's listeners. */
  requestsPerReconcile?: number;
}

/** Which event types a watch reacts to; the map function may also return [] to filter. */
export interface WatchOptions {
  types?: InformerEventType[];
  /**
   * Delay the key by this much after a live event (not the first list): a burst of events for one key
   * within the delay costs one reconcile (the queue keeps the earliest time of a key already waiting).
   */
  coalesceMs?: number;
}

/** controller-runtime's predicates: whether an event may matter to the reconciler at all. */
export type WatchPredicate<T> = (type: InformerEventType, obj: T, old: T | undefined) => boolean;

interface ControllerMetrics {
  total: Counter<'controller' | 'result'>;
  errors: Counter<'controller'>;
  terminal: Counter<'controller'>;
  time: Histogram<'controller'>;
  active: Gauge<'controller'>;
  max: Gauge<'controller'>;
}

const DEFAULT_REQUESTS_PER_RECONCILE = 8;

// controller-runtime's reconcile_time_seconds buckets.
const RECONCILE_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.25,
  1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60,
];

function controllerMetrics(registry: Registry): ControllerMetrics {
  const labelNames = ['controller'] as const;
  return {
    total: counter(registry, {
      name: 'controller_runtime_reconcile_total',
      help: 'Total number of reconciliations per controller',
      labelNames: ['controller', 'result'],
    }),
    errors: counter(registry, {
      name: 'controller_runtime_reconcile_errors_total',
      help: 'Total number of reconciliation errors per controller',
      labelNames,
    }),
    terminal: counter(registry, {
      name: 'controller_runtime_terminal_reconcile_errors_total',
      help: 'Total number of terminal reconciliation errors per controller',
      labelNames,
    }),
    time: histogram(registry, {
      name: 'controller_runtime_reconcile_time_seconds',
      help: 'Length of time per reconciliation per controller',
      labelNames,
      buckets: RECONCILE_BUCKETS,
    }),
    active: gauge(registry, {
      name: 'controller_runtime_active_workers',
      help: 'Number of currently used workers per controller',
      labelNames,
    }),
    max: gauge(registry, {
      name: 'controller_runtime_max_concurrent_reconciles',
      help: 'Maximum number of concurrent reconciles per controller',
      labelNames,
    }),
  };
}

export class Controller {
  readonly name: string;
  readonly queue: WorkQueue<string>;
  private readonly reconciler: Reconciler;
  private readonly workers: number;
  private readonly logger: Logger;
  private readonly metrics: ControllerMetrics;
  private readonly informers: Informer<ApiObject>[] = [];
  private readonly unsubscribe: Array<() => void> = [];
  private readonly cacheSyncTimeoutMs: number;
  private abort?: AbortController;
  private loops: Promise<void>[] = [];
  private started = false;
  private stopping?: Promise<void>;
  private readonly requestsPerReconcile: number;

  constructor(options: ControllerOptions) {
    this.name = options.name;
    this.reconciler = options.reconciler;
    this.workers = Math.max(1, options.workers ?? 1);
    this.requestsPerReconcile = options.requestsPerReconcile ?? DEFAULT_REQUESTS_PER_RECONCILE;
    this.logger = options.logger.child({ controller: options.name });
    this.cacheSyncTimeoutMs = options.cacheSyncTimeoutMs ?? 120_000;
    const registry = options.registry ?? defaultRegistry();
    this.metrics = controllerMetrics(registry);
    this.queue = new WorkQueue<string>({
      name: options.name,
      controller: options.name,
      registry,
      rateLimiter: options.rateLimiter,
    });
    this.metrics.max.set({ controller: this.name }, this.workers);
    this.metrics.active.set({ controller: this.name }, 0);
    // Born at 0, as controller-runtime does: a counter that first appears at 1 is invisible to rate().
    const labels = { controller: this.name };
    this.metrics.errors.inc(labels, 0);
    this.metrics.terminal.inc(labels, 0);
    for (const result of ['success', 'error', 'requeue', 'requeue_after'])
      this.metrics.total.inc({ ...labels, result }, 0);
  }

  /**
   * Enqueues the keys `mapFn` returns for each event of `informer`. For MODIFIED both the new and the old
   * object are mapped (as controller-runtime does), so a change that moves an object from one owner to
   * another reconciles both. The informer's first-list events are queued at low priority.
   */
  watches<T extends ApiObject>(
    informer: Informer<T>,
    mapFn: (obj: T) => ObjectKey[],
    options: WatchOptions & { predicate?: WatchPredicate<T> } = {},
  ): this {
    this.informers.push(informer as unknown as Informer<ApiObject>);
    const types = options.types ? new Set(options.types) : undefined;
    this.unsubscribe.push(
      informer.onEvent((type, obj, old, meta) => {
        if (types && !types.has(type)) return;
        // The first list always counts: it is how a restarted controller catches up.
        if (options.predicate && !meta.initial && !options.predicate(type, obj, old)) return;
        const priority: Priority = meta.initial ? 'low' : 'normal';
        const keys = new Set<string>();
        for (const key of this.safeMap(mapFn, obj)) keys.add(keyToString(key));
        if (type === 'MODIFIED' && old)
          for (const key of this.safeMap(mapFn, old)) keys.add(keyToString(key));
        for (const key of keys)
          if (options.coalesceMs && !meta.initial) this.queue.addAfter(key, options.coalesceMs, { priority });
          else this.queue.add(key, { priority });
      }),
    );
    return this;
  }

  /** Shorthand for watching the primary kind: each object enqueues its own key. */
  for<T extends ApiObject>(informer: Informer<T>, options: { predicate?: WatchPredicate<T> } = {}): this {
    return this.watches(informer, (obj) => [objectKey(obj)], options);
  }

  /** True once every watched informer completed its first list (for /readyz). */
  hasSynced(): boolean {
    return this.informers.every((informer) => informer.hasSynced());
  }

  /** Enqueues a key directly (e.g. from a timer or another controller). */
  enqueue(key: ObjectKey | string, options: { priority?: Priority; afterMs?: number } = {}): void {
    const id = typeof key === 'string' ? key : keyToString(key);
    if (options.afterMs && options.afterMs > 0) this.queue.addAfter(id, options.afterMs, options);
    else this.queue.add(id, options);
  }

  /**
   * Waits until every watched informer has synced (the informers must be started by their owner; they may
   * be shared between controllers), then starts the workers and resolves. Rejects if the caches do not sync
   * within cacheSyncTimeoutMs. Aborting `signal` stops the controller (same as stop()).
   */
  async start(signal?: AbortSignal): Promise<void> {
    if (this.started) throw new Error(`controller ${this.name} already started`);
    this.started = true;
    const abort = new AbortController();
    this.abort = abort;
    // Every worker's reconcile shares this signal, and each request it makes listens on it until it ends:
    // Node's default of 10 listeners warns at 11 requests in flight, which is normal here, not a leak.
    setMaxListeners(this.workers * this.requestsPerReconcile + 1, abort.signal);
    if (signal) {
      if (signal.aborted) abort.abort(signal.reason);
      else signal.addEventListener('abort', () => void this.stop(), { once: true });
    }
    const synced = await Promise.all(
      this.informers.map((informer) => informer.waitForSync(this.cacheSyncTimeoutMs)),
    );
    if (abort.signal.aborted) return;
    const missing = this.informers.filter((_, i) => !synced[i]).map((informer) => informer.name);
    if (missing.length > 0) {
      throw new Error(
        `controller ${this.name}: caches did not sync within ${this.cacheSyncTimeoutMs} ms: ${missing.join(', ')}`,
      );
    }
    this.logger.info({ workers: this.workers, queued: this.queue.len() }, 'caches synced, starting workers');
    // One worker per event-loop turn, the first after the turn that completed the caches: with a full queue
    // every worker's first reconcile (and its first requests) would otherwise run in that one turn. A
    // runtime held its loop 115 ms for its last page of accounts and its 16 workers' first steps (profiled).
    for (let i = 0; i < this.workers; i++) {
      await nextTurn();
      if (abort.signal.aborted) return;
      this.loops.push(this.worker(abort.signal));
    }
  }

  /**
   * Stops taking keys, aborts the signal reconcilers were given and waits for running reconciles to return.
   * Queued keys are dropped: they are rebuilt from the caches by whoever runs next (level-triggered).
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.abort?.abort(new Error(`controller ${this.name} stopped`));
      for (const unsubscribe of this.unsubscribe.splice(0)) unsubscribe();
      this.queue.shutDown();
      await Promise.all(this.loops);
      this.metrics.active.set({ controller: this.name }, 0);
      this.logger.info('stopped');
    })();
    return this.stopping;
  }

  private async worker(signal: AbortSignal): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      await this.process(key, signal);
    }
  }

  private async process(key: string, signal: AbortSignal): Promise<void> {
    const labels = { controller: this.name };
    const logger = this.logger.child({ key });
    const started = process.hrtime.bigint();
    this.metrics.active.inc(labels);
    try {
      const result = await this.reconciler.reconcile(parseKey(key), {
        signal,
        logger,
        retries: this.queue.numRequeues(key),
      });
      if (result && result.requeueAfterMs !== undefined && result.requeueAfterMs > 0) {
        this.queue.forget(key);
        this.queue.addAfter(key, result.requeueAfterMs);
        this.metrics.total.inc({ ...labels, result: 'requeue_after' });
      } else if (result?.requeue) {
        this.queue.addRateLimited(key);
        this.metrics.total.inc({ ...labels, result: 'requeue' });
      } else {
        this.queue.forget(key);
        this.metrics.total.inc({ ...labels, result: 'success' });
      }
    } catch (error) {
      this.metrics.total.inc({ ...labels, result: 'error' });
      this.metrics.errors.inc(labels);
      if (error instanceof TerminalError) {
        this.metrics.terminal.inc(labels);
        this.queue.forget(key);
        logger.error({ err: errorMessage(error) }, 'reconcile failed permanently');
      } else if (!signal.aborted) {
        // A 429 that outlived the client's own retries: wait at least as long as the server asked.
        const retryAfterMs =
          error instanceof ApiError && error.retryAfterSeconds !== undefined
            ? error.retryAfterSeconds * 1000
            : 0;
        this.queue.addRateLimited(key, { atLeastMs: retryAfterMs });
        logger.error({ err: errorMessage(error), retries: this.queue.numRequeues(key) }, 'reconcile failed');
      }
    } finally {
      this.queue.done(key);
      this.metrics.active.dec(labels);
      this.metrics.time.observe(labels, Number(process.hrtime.bigint() - started) / 1e9);
    }
  }

  private safeMap<T>(mapFn: (obj: T) => ObjectKey[], obj: T): ObjectKey[] {
    try {
      return mapFn(obj);
    } catch (error) {
      this.logger.error({ err: errorMessage(error) }, 'map function threw');
      return [];
    }
  }
}
