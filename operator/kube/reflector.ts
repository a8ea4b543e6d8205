/**
 * Informer = reflector (list, then watch from the list's resourceVersion, forever) + store + event fan-out,
 * following client-go's tools/cache/reflector.go:
 *
 * - paged LIST (limit 500), each page applied as a diff against the store as it arrives: on a relist, objects
 *   that vanished while we were not watching get a synthesized DELETED, changed ones MODIFIED, unchanged ones
 *   nothing;
 * - WATCH with allowWatchBookmarks=true and a randomised server-side timeoutSeconds (5-10 min), resumed from
 *   the last resourceVersion seen (events and bookmarks both advance it), so a normal close costs one request
 *   and no relist;
 * - 410 Gone, whether the watch request itself fails with it or it arrives in the stream as an ERROR Status
 *   event (what a watch from a compacted resourceVersion gets), means the resourceVersion is gone: relist;
 * - any other failure (connection refused during an apiserver restart, reset, 5xx) waits an exponential
 *   backoff with jitter, then resumes from the last resourceVersion;
 * - a watchdog aborts a watch that delivered nothing (no event, no bookmark) for too long: the half-open TCP
 *   connection that otherwise stalls an informer silently.
 *
 * The first LIST is delivered as ADDED events flagged `initial: true` so a controller can queue them at low
 * priority behind live changes. Handlers registered after the first sync get the current contents replayed
 * the same way, so registration order never loses objects.
 */
import type { Counter, Registry } from 'prom-client';
import { Store, pruneForCache, type IndexFunc } from './cache.js';
import type { RestClient } from './client.js';
import { apiErrorFrom, isGone } from './errors.js';
import type { Logger } from './logging.js';
import { counter, defaultRegistry, sampledGauge } from './metrics.js';
import {
  collectionPath,
  keyOfObject,
  objectKeyString,
  type ApiObject,
  type ResourceDescriptor,
} from './resource.js';
import { Backoff, errorMessage, pause } from './util.js';
import { watchEvents, type StatusObject } from './watch.js';

export type InformerEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface InformerEventMeta {
  /** True for the ADDED events of the first list (and of a replay to a late handler): queue at low priority. */
  initial: boolean;
  /** True for a DELETED synthesized by a relist: the object vanished while no watch was open. */
  finalStateUnknown?: boolean;
}

export type InformerEventHandler<T> = (
  type: InformerEventType,
  obj: T,
  old: T | undefined,
  meta: InformerEventMeta,
) => void;

export interface InformerOptions<T> {
  /** Watch one namespace; all namespaces when omitted (one cluster-wide watch, not one per namespace). */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  logger: Logger;
  /** Names the informer in logs and metrics, e.g. "secrets". */
  name: string;
  registry?: Registry;
  /** LIST page size (default 500). */
  pageSize?: number;
  /** Server-side watch timeout, randomised in [min, max] seconds (default [300, 600], client-go's range). */
  watchTimeoutSeconds?: { min: number; max: number };
  /**
   * Abort a watch that delivered nothing for this long (default 3 min; the apiserver sends a bookmark about
   * every minute to watchers that asked for them, so silence that long means a dead connection).
   */
  watchdogMs?: number;
  /** Backoff after errors (default 800 ms doubling to 30 s, with jitter). */
  backoff?: { initialMs: number; maxMs: number };
  /** Applied to every object before it is stored (e.g. to drop fields no reader uses and save memory). */
  transform?: (obj: T) => T;
  /** Keep the kubectl last-applied-configuration annotation (dropped by default). */
  keepLastApplied?: boolean;
  /**
   * List and watch each object's metadata only (PartialObjectMetadata): the cache holds names, labels,
   * annotations and owners, and nothing else of the object is sent, parsed or stored.
   */
  metadataOnly?: boolean;
}

interface ReflectorMetrics {
  lists: Counter<'name'>;
  relists: Counter<'name' | 'reason'>;
  watches: Counter<'name'>;
  watchEnds: Counter<'name' | 'reason'>;
  events: Counter<'name' | 'type'>;
}

function reflectorMetrics(registry: Registry): ReflectorMetrics {
  return {
    lists: counter(registry, {
      name: 'reflector_lists_total',
      help: 'Complete (all pages) LISTs done by a reflector.',
      labelNames: ['name'],
    }),
    relists: counter(registry, {
      name: 'reflector_relists_total',
      help: 'LISTs after the first one, by reason (expired: 410 Gone; error: a failed list was retried).',
      labelNames: ['name', 'reason'],
    }),
    watches: counter(registry, {
      name: 'reflector_watches_total',
      help: 'WATCH requests opened by a reflector.',
      labelNames: ['name'],
    }),
    watchEnds: counter(registry, {
      name: 'reflector_watch_ends_total',
      help: 'Watches that ended, by reason: closed (server timeout), watchdog, expired (410), error, stopped.',
      labelNames: ['name', 'reason'],
    }),
    events: counter(registry, {
      name: 'reflector_watch_events_total',
      help: 'Watch events received, by type (BOOKMARK included).',
      labelNames: ['name', 'type'],
    }),
  };
}

class WatchdogExpired extends Error {
  constructor(ms: number) {
    super(`no watch event or bookmark for ${ms} ms`);
  }
}

class WatchKilled extends Error {
  constructor() {
    super('watch restarted on request');
  }
}

export class Informer<T extends ApiObject = ApiObject> {
  readonly name: string;
  private readonly store = new Store<T>();
  private readonly handlers = new Set<InformerEventHandler<T>>();
  private readonly logger: Logger;
  private readonly metrics: ReflectorMetrics;
  private readonly unregisterGauges: Array<() => void> = [];
  private resourceVersion = '';
  private synced = false;
  private syncWaiters: Array<(synced: boolean) => void> = [];
  private runAbort?: AbortController;
  private running?: Promise<void>;
  private currentWatch?: AbortController;
  private lastEventAt = 0;
  private watching = false;
  private watchOpenedAt = 0;

  constructor(
    private readonly rest: RestClient,
    readonly resource: ResourceDescriptor,
    private readonly options: InformerOptions<T>,
  ) {
    this.name = options.name;
    this.logger = options.logger.child({ informer: options.name, kind: resource.kind });
    const registry = options.registry ?? defaultRegistry();
    this.metrics = reflectorMetrics(registry);
    this.unregisterGauges.push(
      sampledGauge<'name'>(
        registry,
        {
          name: 'reflector_last_event_age_seconds',
          help: 'Seconds since the current watch delivered an event or bookmark (stale = stalled watch).',
          labelNames: ['name'],
        },
        (set) => {
          if (this.lastEventAt > 0) set({ name: this.name }, (Date.now() - this.lastEventAt) / 1000);
        },
      ),
      sampledGauge<'name'>(
        registry,
        { name: 'informer_cached_objects', help: 'Objects held in an informer cache.', labelNames: ['name'] },
        (set) => set({ name: this.name }, this.store.size),
      ),
      sampledGauge<'name'>(
        registry,
        {
          name: 'informer_synced',
          help: '1 once the informer completed its first list.',
          labelNames: ['name'],
        },
        (set) => set({ name: this.name }, this.synced ? 1 : 0),
      ),
    );
  }

  /**
   * Starts (or resumes) the list/watch loop. After a stop(), the store and resourceVersion are kept: the
   * loop resumes watching from where it was, and a relist (if the version expired meanwhile) delivers the
   * differences, DELETED for what vanished included.
   */
  start(): void {
    if (this.running) return;
    const abort = new AbortController();
    this.runAbort = abort;
    this.running = this.run(abort.signal).finally(() => {
      this.running = undefined;
    });
  }

  /** Stops the loop and closes the watch; resolves once the loop has exited. Idempotent. */
  async stop(): Promise<void> {
    this.runAbort?.abort(new Error('informer stopped'));
    await this.running;
  }

  /** Stops for good: also drops this informer's metric series. */
  async dispose(): Promise<void> {
    await this.stop();
    for (const unregister of this.unregisterGauges.splice(0)) unregister();
    for (const wake of this.syncWaiters.splice(0)) wake(false);
  }

  hasSynced(): boolean {
    return this.synced;
  }

  /** Resolves true once synced, false if `timeoutMs` passes first. */
  waitForSync(timeoutMs = 60_000): Promise<boolean> {
    if (this.synced) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.syncWaiters = this.syncWaiters.filter((w) => w !== done);
        resolve(false);
      }, timeoutMs);
      const done = (synced: boolean): void => {
        clearTimeout(timer);
        resolve(synced);
      };
      this.syncWaiters.push(done);
    });
  }

  /** The cached object (frozen: copy before changing), or undefined. */
  get(namespace: string | undefined, name: string): T | undefined {
    return this.store.get(objectKeyString(namespace, name));
  }

  /** Cached objects, all or of one namespace (frozen). */
  list(namespace?: string): T[] {
    return this.store.list(namespace);
  }

  get size(): number {
    return this.store.size;
  }

  addIndex(name: string, fn: IndexFunc<T>): void {
    this.store.addIndex(name, fn);
  }

  byIndex(name: string, value: string): T[] {
    return this.store.byIndex(name, value);
  }

  /**
   * Registers a handler; returns a function that unregisters it. Handlers run synchronously in event order
   * and must not block (enqueue a key, don't reconcile). If the cache already holds objects, they are
   * replayed to this handler at once as initial ADDED events.
   */
  onEvent(handler: InformerEventHandler<T>): () => void {
    this.handlers.add(handler);
    for (const obj of this.store.list()) this.call(handler, 'ADDED', obj, undefined, { initial: true });
    return () => {
      this.handlers.delete(handler);
    };
  }

  /** True while a watch connection is established (the apiserver answered 200 and the stream is open). */
  isWatching(): boolean {
    return this.watching;
  }

  /**
   * Since when (performance.now()) this cache has been kept current: now while no watch is open (between a
   * failure and the reconnect, in backoff or relisting, or before the first sync), else when the open watch
   * was established. "Unchanged in the cache" means "unchanged" only from then on.
   */
  currentSince(): number {
    return this.watching ? this.watchOpenedAt : performance.now();
  }

  /** The resourceVersion the next watch would resume from. */
  lastSyncResourceVersion(): string {
    return this.resourceVersion;
  }

  /**
   * Aborts the current watch connection; the loop reconnects from the last resourceVersion like after a
   * watchdog expiry. For operational use (and tests that kill connections).
   */
  restartWatch(): void {
    this.currentWatch?.abort(new WatchKilled());
  }

  // ---- the loop -------------------------------------------------------------------------------------

  private async run(signal: AbortSignal): Promise<void> {
    const backoff = new Backoff(
      this.options.backoff?.initialMs ?? 800,
      this.options.backoff?.maxMs ?? 30_000,
    );
    let needList = this.resourceVersion === '';
    let listReason = this.synced ? 'error' : 'initial';
    let lastRelistAt = 0;
    while (!signal.aborted) {
      try {
        if (needList) {
          if (listReason !== 'initial') this.metrics.relists.inc({ name: this.name, reason: listReason });
          lastRelistAt = Date.now();
          await this.relist(signal);
          needList = false;
        }
        const opened = Date.now();
        const delivered = await this.watchOnce(signal);
        // A watch the server closes at once, without delivering anything, is a failure in disguise
        // (e.g. a proxy that drops the stream): back off instead of spinning.
        if (!delivered && Date.now() - opened < 1000) await pause(backoff.next(), signal);
      } catch (error) {
        if (signal.aborted) break;
        if (isGone(error)) {
          this.logger.info(
            { resourceVersion: this.resourceVersion, err: errorMessage(error) },
            'resourceVersion expired, relisting',
          );
          needList = true;
          listReason = 'expired';
          // An immediate relist is right once; a second 410 right after one means something is off: back off.
          if (Date.now() - lastRelistAt < 5000) await pause(backoff.next(), signal);
          continue;
        }
        if (needList) listReason = this.synced ? 'error' : 'initial';
        const delay = backoff.next();
        this.logger.warn(
          { err: errorMessage(error), retryInMs: Math.round(delay) },
          needList ? 'list failed' : 'watch failed',
        );
        await pause(delay, signal);
      }
    }
  }

  /**
   * Lists page by page and applies each page to the store as it arrives (ADDED or MODIFIED for what is new
   * or changed), then removes what no page held (DELETED). One page's work per event-loop turn, not the
   * whole list's: a runtime listing its 1,000 accounts held its loop for 80-120 ms applying them at once
   * (profiled). The store then passes through states between the old list and the new one, as it does
   * while watch events arrive one by one; the pages are one snapshot, and the watch resumes from its version
   * only once every page is applied.
   */
  private async relist(signal: AbortSignal): Promise<void> {
    const seen = new Set<string>();
    const initial = !this.synced;
    let added = 0;
    let modified = 0;
    let deleted = 0;
    const { resourceVersion } = await this.rest.listAll<T>(this.resource, {
      namespace: this.options.namespace,
      labelSelector: this.options.labelSelector,
      fieldSelector: this.options.fieldSelector,
      metadataOnly: this.options.metadataOnly,
      limit: this.options.pageSize ?? 500,
      signal,
      onPage: (items, restart) => {
        if (signal.aborted) return;
        // The pages before an expired continue token are of an older snapshot than this full list.
        if (restart) seen.clear();
        for (const item of items) {
          const obj = this.prepare(item);
          const key = keyOfObject(obj);
          seen.add(key);
          const old = this.store.get(key);
          if (old && old.metadata?.resourceVersion === obj.metadata?.resourceVersion) continue;
          this.store.upsert(obj);
          if (old) modified++;
          else added++;
          this.emit(old ? 'MODIFIED' : 'ADDED', obj, old, { initial });
        }
      },
    });
    if (signal.aborted) return;
    this.metrics.lists.inc({ name: this.name });
    const gone: string[] = [];
    for (const key of this.store.keys()) if (!seen.has(key)) gone.push(key);
    for (const key of gone) {
      const old = this.store.remove(key);
      if (old) {
        deleted++;
        this.emit('DELETED', old, old, { initial: false, finalStateUnknown: true });
      }
    }
    this.resourceVersion = resourceVersion;
    this.logger.debug({ resourceVersion, objects: seen.size, added, modified, deleted }, 'listed');
    if (!this.synced) {
      this.synced = true;
      this.logger.info({ objects: seen.size, resourceVersion }, 'cache synced');
      for (const wake of this.syncWaiters.splice(0)) wake(true);
    }
  }

  /**
   * One watch connection, until the server closes it (true/false: whether anything arrived), the watchdog or
   * restartWatch() aborts it (returns normally: resume), or it fails (throws; 410 included).
   */
  private async watchOnce(signal: AbortSignal): Promise<boolean> {
    const watch = new AbortController();
    const onStop = (): void => watch.abort(signal.reason);
    signal.addEventListener('abort', onStop, { once: true });
    // stop() may have run between the list and this call (sync waiters resume first): no listener fires then.
    if (signal.aborted) watch.abort(signal.reason);
    this.currentWatch = watch;
    const timeout = this.options.watchTimeoutSeconds ?? { min: 300, max: 600 };
    const timeoutSeconds = Math.round(timeout.min + Math.random() * Math.max(0, timeout.max - timeout.min));
    const watchdogMs = this.options.watchdogMs ?? 180_000;
    this.lastEventAt = Date.now();
    const watchdog = setInterval(
      () => {
        if (Date.now() - this.lastEventAt > watchdogMs) watch.abort(new WatchdogExpired(watchdogMs));
      },
      Math.max(100, Math.min(watchdogMs / 4, 10_000)),
    );
    let delivered = false;
    let endReason = 'closed';
    try {
      this.metrics.watches.inc({ name: this.name });
      const response = await this.rest.watch(this.resource, {
        namespace: this.options.namespace,
        labelSelector: this.options.labelSelector,
        fieldSelector: this.options.fieldSelector,
        resourceVersion: this.resourceVersion,
        metadataOnly: this.options.metadataOnly,
        allowWatchBookmarks: true,
        timeoutSeconds,
        signal: watch.signal,
      });
      this.lastEventAt = Date.now();
      this.watching = true;
      this.watchOpenedAt = performance.now();
      for await (const event of watchEvents<T>(response)) {
        this.lastEventAt = Date.now();
        delivered = true;
        this.metrics.events.inc({ name: this.name, type: event.type });
        if (event.type === 'ERROR') {
          const status = event.object as StatusObject;
          throw apiErrorFrom(
            status.code ?? 500,
            status,
            `WATCH ${collectionPath(this.resource, this.options.namespace)}`,
          );
        }
        this.apply(event.type, event.object);
      }
      return delivered;
    } catch (error) {
      const reason: unknown = watch.signal.reason;
      if (signal.aborted) {
        endReason = 'stopped';
        return delivered;
      }
      if (watch.signal.aborted && (reason instanceof WatchdogExpired || reason instanceof WatchKilled)) {
        endReason = reason instanceof WatchdogExpired ? 'watchdog' : 'killed';
        this.logger.info(
          { reason: reason.message, resourceVersion: this.resourceVersion },
          'watch aborted, resuming',
        );
        return true;
      }
      endReason = isGone(error) ? 'expired' : 'error';
      throw error;
    } finally {
      this.watching = false;
      clearInterval(watchdog);
      signal.removeEventListener('abort', onStop);
      if (!watch.signal.aborted) watch.abort(new Error('watch finished'));
      if (this.currentWatch === watch) this.currentWatch = undefined;
      this.metrics.watchEnds.inc({ name: this.name, reason: endReason });
    }
  }

  private apply(type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK', raw: T): void {
    const resourceVersion = raw.metadata?.resourceVersion;
    if (type === 'BOOKMARK') {
      if (resourceVersion) this.resourceVersion = resourceVersion;
      return;
    }
    const obj = this.prepare(raw);
    const key = keyOfObject(obj);
    if (type === 'DELETED') {
      const old = this.store.remove(key);
      this.emit('DELETED', obj, old, { initial: false });
    } else {
      const old = this.store.get(key);
      // After a reconnect the apiserver may replay an event we already applied: nothing changed.
      if (!(old && old.metadata?.resourceVersion === resourceVersion)) {
        this.store.upsert(obj);
        this.emit(old ? 'MODIFIED' : 'ADDED', obj, old, { initial: false });
      }
    }
    if (resourceVersion) this.resourceVersion = resourceVersion;
  }

  private prepare(raw: T): T {
    const pruned = pruneForCache(raw, { keepLastApplied: this.options.keepLastApplied });
    return this.options.transform ? this.options.transform(pruned) : pruned;
  }

  private emit(type: InformerEventType, obj: T, old: T | undefined, meta: InformerEventMeta): void {
    for (const handler of this.handlers) this.call(handler, type, obj, old, meta);
  }

  private call(
    handler: InformerEventHandler<T>,
    type: InformerEventType,
    obj: T,
    old: T | undefined,
    meta: InformerEventMeta,
  ): void {
    try {
      handler(type, obj, old, meta);
    } catch (error) {
      this.logger.error({ err: errorMessage(error), type }, 'informer event handler threw');
    }
  }
}
