/**
 * A rate-limited, delaying, de-duplicating work queue with client-go's semantics
 * (util/workqueue/queue.go, delaying_queue.go, rate_limiting_queue.go):
 *
 * - dedup: a key added any number of times before a worker takes it is processed once;
 * - never concurrently: a key re-added while a worker holds it waits ("dirty") and is handed out again only
 *   after done(key), so two workers never reconcile the same object at once;
 * - two priorities: 'low' keys (the informers' initial lists) go behind every 'normal' key, so a live change
 *   is reconciled promptly even while thousands of startup keys are pending; adding a queued low key at
 *   normal priority promotes it;
 * - addAfter: one timer for all delayed keys (a heap), keeping the earliest time when a key is delayed twice;
 * - addRateLimited: the delay comes from the rate limiter (per-key exponential plus overall token bucket).
 *
 * Metrics use controller-runtime's names (workqueue_*), labelled {name, controller}.
 */
import type { Counter, Histogram, Registry } from 'prom-client';
import { counter, defaultRegistry, histogram, sampledGauge } from './metrics.js';
import { defaultControllerRateLimiter, type RateLimiter } from './rate-limiter.js';

export type Priority = 'low' | 'normal';

export interface WorkQueueOptions<K> {
  /** The queue's name label (controller-runtime uses the controller name). */
  name: string;
  /** The controller label; defaults to `name`. */
  controller?: string;
  rateLimiter?: RateLimiter<string>;
  registry?: Registry;
  /** Maps a key to its identity for dedup; default String(key). Needed when K is an object. */
  keyOf?: (key: K) => string;
  now?: () => number;
}

interface Dirty<K> {
  key: K;
  addedAt: number;
  priority: Priority;
}

interface Delayed<K> {
  key: K;
  readyAt: number;
}

interface HeapEntry {
  id: string;
  readyAt: number;
}

interface QueueMetrics {
  adds: Counter<'name' | 'controller'>;
  retries: Counter<'name' | 'controller'>;
  queueDuration: Histogram<'name' | 'controller'>;
  workDuration: Histogram<'name' | 'controller'>;
}

// controller-runtime: prometheus.ExponentialBuckets(10e-9, 10, 12), i.e. 10 ns .. 1000 s.
const DURATION_BUCKETS = Array.from({ length: 12 }, (_, i) => 1e-8 * 10 ** i);

function queueMetrics(registry: Registry): QueueMetrics {
  const labelNames = ['name', 'controller'] as const;
  return {
    adds: counter(registry, {
      name: 'workqueue_adds_total',
      help: 'Total number of adds handled by workqueue',
      labelNames,
    }),
    retries: counter(registry, {
      name: 'workqueue_retries_total',
      help: 'Total number of retries handled by workqueue',
      labelNames,
    }),
    queueDuration: histogram(registry, {
      name: 'workqueue_queue_duration_seconds',
      help: 'How long in seconds an item stays in workqueue before being requested',
      labelNames,
      buckets: DURATION_BUCKETS,
    }),
    workDuration: histogram(registry, {
      name: 'workqueue_work_duration_seconds',
      help: 'How long in seconds processing an item from workqueue takes.',
      labelNames,
      buckets: DURATION_BUCKETS,
    }),
  };
}

export class WorkQueue<K = string> {
  readonly name: string;
  private readonly labels: { name: string; controller: string };
  private readonly keyOf: (key: K) => string;
  private readonly now: () => number;
  private readonly limiter: RateLimiter<string>;
  private readonly metrics: QueueMetrics;
  private readonly unregister: Array<() => void>;

  private readonly dirty = new Map<string, Dirty<K>>();
  private readonly processing = new Map<string, { key: K; startedAt: number }>();
  // Sets keep insertion order, so they are FIFO queues with O(1) removal (needed for promotion).
  private readonly normal = new Set<string>();
  private readonly low = new Set<string>();
  private readonly waiters: Array<(key: K | undefined) => void> = [];

  private readonly delayed = new Map<string, Delayed<K>>();
  private readonly heap: HeapEntry[] = [];
  private timer?: NodeJS.Timeout;
  private timerAt = Infinity;

  private shuttingDown = false;
  private draining = false;
  private drained?: () => void;

  constructor(options: WorkQueueOptions<K>) {
    this.name = options.name;
    this.labels = { name: options.name, controller: options.controller ?? options.name };
    this.keyOf = options.keyOf ?? ((key: K) => String(key));
    this.now = options.now ?? Date.now;
    this.limiter = options.rateLimiter ?? defaultControllerRateLimiter<string>();
    const registry = options.registry ?? defaultRegistry();
    this.metrics = queueMetrics(registry);
    const labelNames = ['name', 'controller'] as const;
    this.unregister = [
      sampledGauge(
        registry,
        { name: 'workqueue_depth', help: 'Current depth of workqueue', labelNames },
        (set) => set(this.labels, this.dirty.size),
      ),
      sampledGauge(
        registry,
        {
          name: 'workqueue_unfinished_work_seconds',
          help:
            "How many seconds of work has been done that is in progress and hasn't been observed by work_duration. " +
            'Large values indicate stuck threads.',
          labelNames,
        },
        (set) => set(this.labels, this.unfinishedWorkSeconds()),
      ),
      sampledGauge(
        registry,
        {
          name: 'workqueue_longest_running_processor_seconds',
          help: 'How many seconds has the longest running processor for workqueue been running.',
          labelNames,
        },
        (set) => set(this.labels, this.longestRunningSeconds()),
      ),
    ];
  }

  /** Queues `key` unless it is already queued; while a worker holds it, it is queued again after done(). */
  add(key: K, options: { priority?: Priority } = {}): void {
    if (this.shuttingDown) return;
    const priority = options.priority ?? 'normal';
    const id = this.keyOf(key);
    const existing = this.dirty.get(id);
    if (existing) {
      if (priority === 'normal' && existing.priority === 'low') {
        existing.priority = 'normal';
        if (this.low.delete(id)) this.normal.add(id);
      }
      return;
    }
    this.dirty.set(id, { key, addedAt: this.now(), priority });
    this.metrics.adds.inc(this.labels);
    if (this.processing.has(id)) return;
    this.push(id, priority);
  }

  /** Queues `key` after `delayMs` (at once if <= 0). A key delayed twice keeps the earlier time. */
  addAfter(key: K, delayMs: number, options: { priority?: Priority } = {}): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) {
      this.add(key, options);
      return;
    }
    const id = this.keyOf(key);
    const readyAt = this.now() + delayMs;
    const existing = this.delayed.get(id);
    if (existing && existing.readyAt <= readyAt) return;
    this.delayed.set(id, { key, readyAt });
    heapPush(this.heap, { id, readyAt });
    this.schedule();
  }

  /**
   * Queues `key` after the rate limiter's delay for it (exponential per key, bounded overall). `atLeastMs`
   * raises the delay, e.g. to honour a Retry-After the apiserver sent.
   */
  addRateLimited(key: K, options: { atLeastMs?: number } = {}): void {
    if (this.shuttingDown) return;
    this.metrics.retries.inc(this.labels);
    const delay = Math.max(this.limiter.when(this.keyOf(key)), options.atLeastMs ?? 0);
    this.addAfter(key, delay);
  }

  /** Clears the key's failure history (after a successful reconcile). */
  forget(key: K): void {
    this.limiter.forget(this.keyOf(key));
  }

  numRequeues(key: K): number {
    return this.limiter.numRequeues(this.keyOf(key));
  }

  /**
   * The next key to process (normal before low, FIFO within each), waiting for one if needed. undefined once
   * the queue is shut down (after shutDownWithDrain: once every queued key was handed out). The caller must
   * call done(key) when finished.
   */
  get(): Promise<K | undefined> {
    if (this.shuttingDown && !this.draining) return Promise.resolve(undefined);
    if (this.normal.size > 0 || this.low.size > 0) return Promise.resolve(this.take());
    if (this.draining) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Marks the key finished; if it was re-added meanwhile, it is queued again now. */
  done(key: K): void {
    const id = this.keyOf(key);
    const entry = this.processing.get(id);
    if (!entry) return;
    this.processing.delete(id);
    this.metrics.workDuration.observe(this.labels, (this.now() - entry.startedAt) / 1000);
    const dirty = this.dirty.get(id);
    if (dirty && !(this.shuttingDown && !this.draining)) this.push(id, dirty.priority);
    this.checkDrained();
  }

  /** Distinct keys waiting to be handed out (delayed keys not counted until they are due). */
  len(): number {
    return this.dirty.size;
  }

  /** Keys being processed right now. */
  inFlight(): number {
    return this.processing.size;
  }

  isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /** Stops at once: adds are ignored, get() resolves undefined, queued and delayed keys are dropped. */
  shutDown(): void {
    if (this.shuttingDown && !this.draining) return;
    this.shuttingDown = true;
    this.draining = false;
    this.stopTimer();
    for (const wake of this.waiters.splice(0)) wake(undefined);
    this.drained?.();
    for (const unregister of this.unregister.splice(0)) unregister();
  }

  /**
   * Stops accepting keys, lets workers take what is already queued (delayed keys are dropped) and resolves
   * once every key handed out was done(): the graceful stop before releasing leadership.
   */
  shutDownWithDrain(): Promise<void> {
    if (this.shuttingDown) {
      return this.draining ? new Promise((resolve) => this.onDrained(resolve)) : Promise.resolve();
    }
    this.shuttingDown = true;
    this.draining = true;
    this.stopTimer();
    const promise = new Promise<void>((resolve) => this.onDrained(resolve));
    this.checkDrained();
    return promise;
  }

  private onDrained(resolve: () => void): void {
    const previous = this.drained;
    this.drained = () => {
      previous?.();
      resolve();
    };
  }

  private checkDrained(): void {
    if (!this.draining) return;
    if (this.normal.size === 0 && this.low.size === 0) {
      for (const wake of this.waiters.splice(0)) wake(undefined);
    }
    if (this.normal.size === 0 && this.low.size === 0 && this.processing.size === 0) {
      this.draining = false;
      const drained = this.drained;
      this.drained = undefined;
      for (const unregister of this.unregister.splice(0)) unregister();
      drained?.();
    }
  }

  private push(id: string, priority: Priority): void {
    (priority === 'normal' ? this.normal : this.low).add(id);
    const waiter = this.waiters.shift();
    if (waiter) waiter(this.take());
  }

  private take(): K | undefined {
    const id = first(this.normal) ?? first(this.low);
    if (id === undefined) return undefined;
    this.normal.delete(id);
    this.low.delete(id);
    const entry = this.dirty.get(id);
    if (!entry) return undefined;
    this.dirty.delete(id);
    const now = this.now();
    this.processing.set(id, { key: entry.key, startedAt: now });
    this.metrics.queueDuration.observe(this.labels, (now - entry.addedAt) / 1000);
    return entry.key;
  }

  private unfinishedWorkSeconds(): number {
    const now = this.now();
    let total = 0;
    for (const { startedAt } of this.processing.values()) total += (now - startedAt) / 1000;
    return total;
  }

  private longestRunningSeconds(): number {
    const now = this.now();
    let longest = 0;
    for (const { startedAt } of this.processing.values())
      longest = Math.max(longest, (now - startedAt) / 1000);
    return longest;
  }

  // ---- delayed keys ---------------------------------------------------------------------------------

  private schedule(): void {
    const next = this.heap[0];
    if (!next || next.readyAt >= this.timerAt) return;
    this.stopTimer();
    this.timerAt = next.readyAt;
    this.timer = setTimeout(() => this.fire(), Math.max(0, next.readyAt - this.now()));
  }

  private fire(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = this.now();
    for (let top = this.heap[0]; top && top.readyAt <= now; top = this.heap[0]) {
      heapPop(this.heap);
      const entry = this.delayed.get(top.id);
      // Stale heap entries (superseded by an earlier time for the same key) are skipped.
      if (!entry || entry.readyAt !== top.readyAt) continue;
      this.delayed.delete(top.id);
      this.add(entry.key);
    }
    this.schedule();
  }

  private stopTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
    if (this.shuttingDown) {
      this.delayed.clear();
      this.heap.length = 0;
    }
  }
}

function first(set: Set<string>): string | undefined {
  for (const value of set) return value;
  return undefined;
}

function heapPush(heap: HeapEntry[], entry: HeapEntry): void {
  heap.push(entry);
  let i = heap.length - 1;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    const p = heap[parent] as HeapEntry;
    if (p.readyAt <= entry.readyAt) break;
    heap[i] = p;
    i = parent;
  }
  heap[i] = entry;
}

function heapPop(heap: HeapEntry[]): HeapEntry | undefined {
  const top = heap[0];
  const last = heap.pop();
  if (top === undefined || last === undefined || heap.length === 0) return top;
  let i = 0;
  for (;;) {
    const left = 2 * i + 1;
    const right = left + 1;
    let smallest = i;
    let smallestAt = last.readyAt;
    const l = heap[left];
    if (l && l.readyAt < smallestAt) {
      smallest = left;
      smallestAt = l.readyAt;
    }
    const r = heap[right];
    if (r && r.readyAt < smallestAt) smallest = right;
    if (smallest === i) break;
    heap[i] = heap[smallest] as HeapEntry;
    i = smallest;
  }
  heap[i] = last;
  return top;
}
