/**
 * Kubernetes Events for what a user must act on, with client-go's record.EventCorrelator behaviour:
 *
 * - aggregation: the same event (object + type + reason + message) again within the window updates the
 *   existing Event's count and lastTimestamp instead of creating a new object;
 * - a per-object token bucket (client-go's spam filter: burst 25, one token per 5 minutes) bounds the writes
 *   one object can cause; occurrences beyond it are still counted locally and written once a token frees up,
 *   so a hot loop costs a handful of writes, not one per iteration;
 * - writes happen off the caller's path (event() never blocks a reconcile), one at a time, and repeated
 *   occurrences between two writes coalesce into one patch.
 *
 * Events go to core/v1 (what `kubectl describe` and most dashboards read). Never put secrets or login codes
 * into a message: Events are readable by anyone who can read the namespace.
 */
import type { Counter, Registry } from 'prom-client';
import type { RestClient } from './client.js';
import { isNotFound } from './errors.js';
import type { Logger } from './logging.js';
import { counter, defaultRegistry } from './metrics.js';
import { Resources, type ApiObject } from './resource.js';
import { errorMessage } from './util.js';

export type EventType = 'Normal' | 'Warning';

export interface EventRecorderOptions {
  /** source.component / reportingComponent, e.g. "tdlib-operator". */
  component: string;
  /** source.host / reportingInstance, e.g. the pod name. */
  host?: string;
  logger?: Logger;
  registry?: Registry;
  /** Identical events within this window are aggregated (default 10 min, client-go's). */
  aggregationWindowMs?: number;
  /** Per-object write budget: burst and refill interval (default 25 and 5 min, client-go's spam filter). */
  burst?: number;
  refillIntervalMs?: number;
  /** Pending writes are flushed this often (default 500 ms). */
  flushIntervalMs?: number;
  /** Aggregation entries kept (LRU, default 4096). */
  maxEntries?: number;
}

interface Entry {
  objectKey: string;
  namespace: string;
  /** The Event object's name once created; a new one is generated when the window passed or it vanished. */
  name: string;
  created: boolean;
  involvedObject: Record<string, string | undefined>;
  type: EventType;
  reason: string;
  message: string;
  count: number;
  firstTimestamp: string;
  lastTimestamp: string;
  lastSeen: number;
}

interface Bucket {
  tokens: number;
  last: number;
}

function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

let nameCounter = 0;

/** client-go names Events "<object>.<unix nanos in hex>"; a counter stands in for the nanoseconds. */
function eventName(objectName: string, now: number): string {
  nameCounter = (nameCounter + 1) % 0x100000;
  return `${objectName.slice(0, 230)}.${now.toString(16)}${nameCounter.toString(16).padStart(5, '0')}`;
}

export class EventRecorder {
  private readonly entries = new Map<string, Entry>();
  private readonly buckets = new Map<string, Bucket>();
  private readonly dirty = new Set<string>();
  private readonly metrics: { written: Counter<'verb'>; dropped: Counter<'reason'> };
  private readonly window: number;
  private readonly burst: number;
  private readonly refillMs: number;
  private readonly flushMs: number;
  private readonly maxEntries: number;
  private timer?: NodeJS.Timeout;
  private flushing?: Promise<void>;
  private closed = false;

  constructor(
    private readonly rest: RestClient,
    private readonly options: EventRecorderOptions,
  ) {
    this.window = options.aggregationWindowMs ?? 600_000;
    this.burst = options.burst ?? 25;
    this.refillMs = options.refillIntervalMs ?? 300_000;
    this.flushMs = options.flushIntervalMs ?? 500;
    this.maxEntries = options.maxEntries ?? 4096;
    const registry = options.registry ?? defaultRegistry();
    this.metrics = {
      written: counter(registry, {
        name: 'events_recorder_writes_total',
        help: 'Event writes by verb (create: new Event, patch: count update of an aggregated one).',
        labelNames: ['verb'],
      }),
      dropped: counter(registry, {
        name: 'events_recorder_dropped_total',
        help: 'Events not written, by reason (evicted: aggregation cache full; error: the write failed).',
        labelNames: ['reason'],
      }),
    };
  }

  /** Records an event about `object`. Returns at once; the write happens in the background. */
  event(object: ApiObject, type: EventType, reason: string, message: string): void {
    if (this.closed) return;
    const meta = object.metadata ?? {};
    if (!meta.name) return;
    const objectKey = meta.uid ?? `${object.kind ?? ''}/${meta.namespace ?? ''}/${meta.name}`;
    // The apiserver caps messages at 1 KiB in events.k8s.io; keep core Events within the same bound.
    const text = message.length > 1024 ? `${message.slice(0, 1021)}...` : message;
    const key = `${objectKey}\u0000${type}\u0000${reason}\u0000${text}`;
    const now = Date.now();
    let entry = this.entries.get(key);
    if (entry && now - entry.lastSeen <= this.window) {
      entry.count++;
      entry.lastSeen = now;
      entry.lastTimestamp = isoSeconds(now);
      // Refresh LRU position.
      this.entries.delete(key);
      this.entries.set(key, entry);
    } else {
      entry = {
        objectKey,
        namespace: meta.namespace || 'default',
        name: eventName(meta.name, now),
        created: false,
        involvedObject: {
          apiVersion: object.apiVersion,
          kind: object.kind,
          name: meta.name,
          namespace: meta.namespace,
          uid: meta.uid,
          resourceVersion: meta.resourceVersion,
        },
        type,
        reason,
        message: text,
        count: 1,
        firstTimestamp: isoSeconds(now),
        lastTimestamp: isoSeconds(now),
        lastSeen: now,
      };
      this.entries.delete(key);
      this.entries.set(key, entry);
      this.evict();
    }
    this.dirty.add(key);
    this.schedule();
  }

  /** Writes everything pending whose object still has budget (tests, shutdown). */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    this.flushing = this.writePending().finally(() => {
      this.flushing = undefined;
    });
    await this.flushing;
  }

  /** Flushes and stops; later events are ignored. */
  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush().then(() => {
        if (this.dirty.size > 0) this.schedule();
      });
    }, this.flushMs);
    // Events are best effort: a pending one must not keep a finished process alive.
    this.timer.unref();
  }

  private evict(): void {
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) return;
      if (this.dirty.delete(oldest)) this.metrics.dropped.inc({ reason: 'evicted' });
      this.entries.delete(oldest);
    }
    while (this.buckets.size > this.maxEntries) {
      const oldest = this.buckets.keys().next().value;
      if (oldest === undefined) return;
      this.buckets.delete(oldest);
    }
  }

  private takeToken(objectKey: string): boolean {
    const now = Date.now();
    let bucket = this.buckets.get(objectKey);
    if (!bucket) {
      bucket = { tokens: this.burst, last: now };
      this.buckets.set(objectKey, bucket);
    }
    bucket.tokens = Math.min(this.burst, bucket.tokens + (now - bucket.last) / this.refillMs);
    bucket.last = now;
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  private async writePending(): Promise<void> {
    for (const key of [...this.dirty]) {
      const entry = this.entries.get(key);
      if (!entry) {
        this.dirty.delete(key);
        continue;
      }
      if (!this.takeToken(entry.objectKey)) continue;
      this.dirty.delete(key);
      try {
        await this.write(entry);
      } catch (error) {
        this.metrics.dropped.inc({ reason: 'error' });
        this.options.logger?.warn(
          { err: errorMessage(error), reason: entry.reason },
          'writing an Event failed',
        );
      }
    }
  }

  private async write(entry: Entry): Promise<void> {
    if (entry.created) {
      try {
        await this.rest.mergePatch(Resources.Event, entry.namespace, entry.name, {
          count: entry.count,
          lastTimestamp: entry.lastTimestamp,
        });
        this.metrics.written.inc({ verb: 'patch' });
        return;
      } catch (error) {
        // Events expire (1 h TTL by default); start a new one.
        if (!isNotFound(error)) throw error;
        entry.created = false;
        entry.name = eventName(entry.involvedObject.name ?? 'event', Date.now());
      }
    }
    await this.rest.create(Resources.Event, {
      metadata: { name: entry.name, namespace: entry.namespace },
      involvedObject: entry.involvedObject,
      type: entry.type,
      reason: entry.reason,
      message: entry.message,
      count: entry.count,
      firstTimestamp: entry.firstTimestamp,
      lastTimestamp: entry.lastTimestamp,
      source: { component: this.options.component, host: this.options.host },
      reportingComponent: this.options.component,
      reportingInstance: this.options.host ?? this.options.component,
    } as ApiObject);
    entry.created = true;
    this.metrics.written.inc({ verb: 'create' });
  }
}
