/** Runtime metrics under the names the previous backend's alerts use (tdlib_*), plus auth and queue gauges. */
import { readFileSync } from 'node:fs';
import { Counter, Gauge } from 'prom-client';
import type { Registry } from '../operator/kube/metrics.js';
import type { RuntimeAgent } from './agent.js';
import type { TdClientManager } from './tdlib/client.js';
import type { UpdatesFigures } from './updates/account-updates.js';

export interface RuntimeMetrics {
  sessionsStarted: Counter;
}

/** cgroup v2 (the container's own cgroup in a pod), then v1. */
const CGROUP_MEMORY_LIMIT_FILES = [
  '/sys/fs/cgroup/memory.max',
  '/sys/fs/cgroup/memory/memory.limit_in_bytes',
];
/** cgroup v1 writes "no limit" as the largest page-aligned 64-bit value (9223372036854771712). */
const NO_LIMIT_FROM = 2 ** 62;

/**
 * The container's memory limit in bytes from the cgroup files, or undefined when there is none ("max",
 * v1's huge value, no cgroup files: a process outside a container). `read` returns a file's text or throws.
 */
export function cgroupMemoryLimitBytes(
  read: (path: string) => string = (path) => readFileSync(path, 'utf8'),
): number | undefined {
  for (const path of CGROUP_MEMORY_LIMIT_FILES) {
    let text: string;
    try {
      text = read(path).trim();
    } catch {
      continue;
    }
    if (text === 'max') return undefined;
    const bytes = Number(text);
    if (!Number.isFinite(bytes) || bytes <= 0 || bytes >= NO_LIMIT_FROM) return undefined;
    return bytes;
  }
  return undefined;
}

/**
 * Bytes from the downward API's limits.memory (a plain byte count) or a Kubernetes quantity (256Mi);
 * undefined for anything else or nothing.
 */
export function quantityBytes(text: string | undefined): number | undefined {
  const m = /^([0-9]+)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec((text ?? '').trim());
  if (!m) return undefined;
  const unit: Record<string, number> = {
    Ki: 2 ** 10,
    Mi: 2 ** 20,
    Gi: 2 ** 30,
    Ti: 2 ** 40,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
  };
  const bytes = Number(m[1]) * (m[2] ? (unit[m[2]] ?? 1) : 1);
  return bytes > 0 && bytes < NO_LIMIT_FROM ? bytes : undefined;
}

/** The figures of status.updates, per hosted account with spec.updates (the same numbers, as reported). */
function registerUpdatesMetrics(registry: Registry, agent: () => RuntimeAgent | undefined): void {
  const withUpdates = function* () {
    for (const hosted of agent()?.hosted.values() ?? []) {
      const figures = hosted.view.updates;
      if (figures) yield { labels: { namespace: hosted.namespace, account: hosted.name }, figures };
    }
  };
  new Counter({
    name: 'tdlib_updates_events_total',
    help: 'Update events that left the outbox, by outcome: delivered, dead_lettered, dropped',
    labelNames: ['namespace', 'account', 'outcome'],
    registers: [registry],
    collect() {
      this.reset();
      for (const { labels, figures } of withUpdates()) {
        this.inc({ ...labels, outcome: 'delivered' }, figures.delivered);
        this.inc({ ...labels, outcome: 'dead_lettered' }, figures.deadLettered);
        this.inc({ ...labels, outcome: 'dropped' }, figures.dropped);
      }
    },
  });
  const gauge = (name: string, help: string, value: (f: UpdatesFigures) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['namespace', 'account'],
      registers: [registry],
      collect() {
        this.reset();
        for (const { labels, figures } of withUpdates()) this.set(labels, value(figures));
      },
    });
  gauge('tdlib_updates_pending', 'Update events in the outbox, not yet delivered', (f) => f.pending);
  gauge('tdlib_updates_retrying', 'Pending update events that failed at least once', (f) => f.retrying);
  gauge(
    'tdlib_updates_oldest_undelivered_seconds',
    'Age of the oldest pending update event (0: none)',
    (f) =>
      f.oldestUndeliveredTime ? Math.max(0, (Date.now() - Date.parse(f.oldestUndeliveredTime)) / 1000) : 0,
  );
}

export function registerRuntimeMetrics(
  registry: Registry,
  manager: () => TdClientManager | undefined,
  agent: () => RuntimeAgent | undefined,
  options: { memoryLimitBytes?: () => number | undefined } = {},
): RuntimeMetrics {
  const memoryLimitBytes = options.memoryLimitBytes ?? (() => cgroupMemoryLimitBytes());
  // Registered only when there is a limit: a gauge without labels would otherwise export 0, and
  // process_resident_memory_bytes / 0 is +Inf. Read at every scrape (a pod's limit can be resized in place).
  const initialLimit = memoryLimitBytes();
  if (initialLimit !== undefined) {
    let lastLimit = initialLimit;
    new Gauge({
      name: 'tdlib_runtime_memory_limit_bytes',
      help: "Memory limit of this runtime's container (cgroup memory.max or memory.limit_in_bytes); absent without a limit",
      registers: [registry],
      collect() {
        lastLimit = memoryLimitBytes() ?? lastLimit;
        this.set(lastLimit);
      },
    });
  }
  new Gauge({
    name: 'tdlib_active_clients',
    help: 'TDLib clients open in this process',
    registers: [registry],
    collect() {
      this.set(manager()?.size ?? 0);
    },
  });
  new Gauge({
    name: 'tdlib_pending_requests',
    help: 'TDLib requests sent and not yet answered (queue depth)',
    registers: [registry],
    collect() {
      this.set(manager()?.pendingRequests ?? 0);
    },
  });
  new Gauge({
    name: 'tdlib_hosted_accounts',
    help: 'Accounts hosted by this runtime, by authorization state',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      this.reset();
      for (const hosted of agent()?.hosted.values() ?? [])
        this.inc({ state: hosted.view.authorizationState ?? 'Starting' });
    },
  });
  registerUpdatesMetrics(registry, agent);
  new Gauge({
    name: 'runtime_status_writes_total',
    help: 'Status writes made by this runtime (server-side apply of the runtime-owned status)',
    registers: [registry],
    collect() {
      this.set(agent()?.status.writes ?? 0);
    },
  });
  return {
    sessionsStarted: new Counter({
      name: 'tdlib_sessions_total',
      help: 'TDLib sessions (clients) started',
      registers: [registry],
      // Read from the manager at scrape time: every client it ever created, whoever created it.
      collect() {
        this.reset();
        this.inc(manager()?.clientsCreated ?? 0);
      },
    }),
  };
}
