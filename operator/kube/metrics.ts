/**
 * One prom-client Registry per process, shared by the REST client, informers, work queues, controllers and
 * the leader elector. Metric names follow client-go / controller-runtime so existing dashboards and alerts
 * (workqueue_depth, controller_runtime_reconcile_total, rest_client_requests_total, ...) carry over.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  Counter,
  Gauge,
  Histogram,
  Registry,
  collectDefaultMetrics,
  type CounterConfiguration,
  type GaugeConfiguration,
  type HistogramConfiguration,
} from 'prom-client';

export { Registry };

let processRegistry: Registry | undefined;

/** A fresh registry; with `defaultMetrics` it also exports process_* and nodejs_* (RSS, heap, event loop lag). */
export function createRegistry(options: { defaultMetrics?: boolean; prefix?: string } = {}): Registry {
  const registry = new Registry();
  if (options.defaultMetrics) collectDefaultMetrics({ register: registry, prefix: options.prefix ?? '' });
  return registry;
}

/**
 * The process-wide registry, created on first use (with default process metrics). Components take a
 * `registry` option and fall back to this one, so a process that never passes one still exports everything
 * from a single /metrics, and tests can pass their own to read values in isolation.
 */
export function defaultRegistry(): Registry {
  processRegistry ??= createRegistry({ defaultMetrics: true });
  return processRegistry;
}

/** Replaces the process-wide registry (call before creating components). */
export function setDefaultRegistry(registry: Registry): void {
  processRegistry = registry;
}

/*
 * Several instances (one work queue per controller, one informer per kind) share a metric name and differ
 * by label. prom-client throws when a name is registered twice, so every component goes through these
 * get-or-create helpers instead of `new Counter(...)`.
 */

export function counter<L extends string>(registry: Registry, config: CounterConfiguration<L>): Counter<L> {
  const existing = registry.getSingleMetric(config.name);
  if (existing instanceof Counter) return existing as Counter<L>;
  return new Counter<L>({ ...config, registers: [registry] });
}

export function gauge<L extends string>(registry: Registry, config: GaugeConfiguration<L>): Gauge<L> {
  const existing = registry.getSingleMetric(config.name);
  if (existing instanceof Gauge) return existing as Gauge<L>;
  return new Gauge<L>({ ...config, registers: [registry] });
}

export function histogram<L extends string>(
  registry: Registry,
  config: HistogramConfiguration<L>,
): Histogram<L> {
  const existing = registry.getSingleMetric(config.name);
  if (existing instanceof Histogram) return existing as Histogram<L>;
  return new Histogram<L>({ ...config, registers: [registry] });
}

/**
 * Gauges whose value is computed at scrape time from live objects (e.g. workqueue_unfinished_work_seconds):
 * each live instance registers a sampler; the gauge's collect() asks every sampler. Keyed per registry and
 * metric name so two registries never see each other's instances.
 */
type Sampler<L extends string> = (set: (labels: Partial<Record<L, string>>, value: number) => void) => void;
const samplers = new WeakMap<Registry, Map<string, Set<Sampler<string>>>>();

export function sampledGauge<L extends string>(
  registry: Registry,
  config: Omit<GaugeConfiguration<L>, 'collect'>,
  sampler: Sampler<L>,
): () => void {
  let byName = samplers.get(registry);
  if (!byName) {
    byName = new Map();
    samplers.set(registry, byName);
  }
  let set = byName.get(config.name);
  if (!set) {
    const live = new Set<Sampler<string>>();
    set = live;
    byName.set(config.name, live);
    gauge<L>(registry, {
      ...config,
      collect(this: Gauge<L>) {
        // Reset first: a stopped instance's series must disappear rather than freeze at its last value.
        this.reset();
        for (const sample of live) sample((labels, value) => this.set(labels, value));
      },
    });
  }
  const live = set;
  live.add(sampler as Sampler<string>);
  return () => {
    live.delete(sampler as Sampler<string>);
  };
}

/** Reads the current value of a counter or gauge series (tests and benchmarks). */
export async function metricValue(
  registry: Registry,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) return 0;
  const data = await metric.get();
  let total = 0;
  for (const value of data.values) {
    const sampleLabels = value.labels as Record<string, string | number | undefined>;
    if (Object.entries(labels).every(([key, expected]) => String(sampleLabels[key]) === expected)) {
      // Histograms expose _bucket/_sum/_count samples; only the plain series (or _count) are summed.
      const metricName = (value as { metricName?: string }).metricName;
      if (metricName === undefined || metricName === name || metricName === `${name}_count`)
        total += value.value;
    }
  }
  return total;
}

/**
 * A request handler serving the registry in the Prometheus text format. It takes node's own request and
 * response types, so it also works as an express handler: `app.get('/metrics', metricsHandler(registry))`.
 */
export function metricsHandler(
  registry: Registry = defaultRegistry(),
): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  return async (_req, res) => {
    try {
      const body = await registry.metrics();
      res.statusCode = 200;
      res.setHeader('Content-Type', registry.contentType);
      res.end(body);
    } catch (error) {
      res.statusCode = 500;
      res.setHeader('Content-Type', 'text/plain');
      res.end(error instanceof Error ? error.message : String(error));
    }
  };
}

/**
 * A minimal HTTP server with /metrics plus caller-supplied probes (e.g. /healthz, /readyz), for processes
 * that don't run express. Probes return true for 200 and false for 503.
 */
export async function startMetricsServer(options: {
  port: number;
  host?: string;
  registry?: Registry;
  probes?: Record<string, () => boolean | Promise<boolean>>;
}): Promise<{ server: Server; port: number; close: () => Promise<void> }> {
  const handle = metricsHandler(options.registry ?? defaultRegistry());
  const probes = options.probes ?? {};
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (path === '/metrics') {
      void handle(req, res);
      return;
    }
    const probe = probes[path];
    if (!probe) {
      res.statusCode = 404;
      res.end('not found\n');
      return;
    }
    Promise.resolve()
      .then(probe)
      .then(
        (ok) => {
          res.statusCode = ok ? 200 : 503;
          res.end(ok ? 'ok\n' : 'not ready\n');
        },
        (error: unknown) => {
          res.statusCode = 503;
          res.end(`${error instanceof Error ? error.message : String(error)}\n`);
        },
      );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '0.0.0.0', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    server,
    port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
