/**
 * Rollout analysis from a Prometheus query (operator/pool/rollout/prometheus-analysis.ts) against a real
 * Prometheus (the release test/cluster/build-tools.sh builds), scraping every second two tiny HTTP servers
 * that export what a runtime pod exports, through the runtime's own metric registration
 * (registerTdRequestMetrics + promRequestHooks, plus the memory gauges): one plays the canary pod
 * tdlib-canary-p-0, whose TDLib requests take 600 ms, the other the stable pod tdlib-runtime-p-0, with 10 ms.
 * Both also meet Telegram's flood waits, which must not count as errors.
 *   - every query rolloutQueries() builds parses, escaping and error filters included;
 *   - with both pods scraped and no traffic yet, the analysis holds the step: Inconclusive 'requests';
 *   - with traffic, it fails the canary on its P95 (above 500 ms) while the stable pods are fast, with the
 *     memory ratio read through the join of the two gauges and no error counted;
 *   - a Prometheus that cannot be reached, a server that is not Prometheus, or a query Prometheus refuses is
 *     inconclusive 'scrape', never failed.
 */
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Gauge, Registry } from 'prom-client';
import type { Gates } from '../../../operator/pool/rollout/analysis.js';
import {
  PrometheusAnalysis,
  podRegexes,
  rolloutQueries,
  type RolloutQueries,
  type RolloutQueryInput,
} from '../../../operator/pool/rollout/prometheus-analysis.js';
import {
  promRequestHooks,
  registerTdRequestMetrics,
  type TdRequestHooks,
} from '../../../runtime/tdlib/metrics-hooks.js';
import { freePort } from '../../cluster/ports.js';
import { waitFor } from '../../cluster/wait.js';
import { startPrometheus, type PrometheusServer } from '../../support/prometheus.js';

const NAMESPACE = 'telegram';
const POOL = 'p';
const CANARY_POD = 'tdlib-canary-p-0';
const STABLE_POD = 'tdlib-runtime-p-0';
const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

const gates: Gates = {
  minRequests: 100,
  maxErrorRatio: 0.01,
  maxP95LatencyMs: 500,
  maxMemoryRatio: 0.8,
  countTelegramLimits: false,
  ignoredErrorCodes: [],
};

/** A process that exports a runtime pod's metrics: the runtime's request metrics and its memory gauges. */
interface FakeRuntime {
  pod: string;
  hooks: TdRequestHooks;
  address: string;
  close(): Promise<void>;
}

async function startFakeRuntime(
  pod: string,
  residentBytes: number,
  limitBytes: number,
): Promise<FakeRuntime> {
  const registry = new Registry();
  const hooks = promRequestHooks(registerTdRequestMetrics(registry));
  new Gauge({
    name: 'process_resident_memory_bytes',
    help: 'Resident memory size in bytes.',
    registers: [registry],
  }).set(residentBytes);
  new Gauge({
    name: 'tdlib_runtime_memory_limit_bytes',
    help: "Memory limit of this runtime's container",
    registers: [registry],
  }).set(limitBytes);
  const server: Server = createServer((request, response) => {
    if (request.url !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    registry.metrics().then(
      (text) => response.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (error: unknown) => response.writeHead(500).end(String(error)),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const bound = server.address();
  if (bound === null || typeof bound === 'string') throw new Error('no port');
  return {
    pod,
    hooks,
    address: `127.0.0.1:${bound.port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('rollout analysis from Prometheus', () => {
  let canary: FakeRuntime;
  let stable: FakeRuntime;
  let prometheus: PrometheusServer;
  let traffic: NodeJS.Timeout | undefined;
  const analysis = new PrometheusAnalysis({ timeoutMs: 5000 });
  const pods = podRegexes(POOL);
  const input: RolloutQueryInput = {
    namespace: NAMESPACE,
    canaryPodRegex: pods.canary,
    stablePodRegex: pods.stable,
    windowSeconds: 10,
    gates,
    podLabel: 'pod',
    namespaceLabel: 'namespace',
  };
  const queries: RolloutQueries = rolloutQueries(input);

  beforeAll(async () => {
    canary = await startFakeRuntime(CANARY_POD, 200 * MiB, GiB);
    stable = await startFakeRuntime(STABLE_POD, 100 * MiB, GiB);
    prometheus = await startPrometheus({
      jobs: [
        {
          job: 'tdlib-runtime',
          targets: [canary, stable].map((r) => ({
            address: r.address,
            labels: { namespace: NAMESPACE, pod: r.pod },
          })),
        },
      ],
    });
    // Both pods scraped: each set has a pod in Prometheus.
    await waitFor(
      'Prometheus to have series of both pods',
      async () => {
        const [c, s] = await Promise.all([
          prometheus.query(queries.canary.pods),
          prometheus.query(queries.stable.pods),
        ]);
        return c[0]?.value[1] === '1' && s[0]?.value[1] === '1' ? true : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 250, onTimeout: () => prometheus.output().slice(-2000) },
    );
  });

  afterAll(async () => {
    if (traffic !== undefined) clearInterval(traffic);
    await prometheus?.stop();
    await canary?.close();
    await stable?.close();
  });

  it('builds queries Prometheus parses, escaping and error filters included', async () => {
    const variants: RolloutQueryInput[] = [
      input,
      {
        ...input,
        gates: { ...gates, countTelegramLimits: true, ignoredErrorCodes: ['400', 'timeout', 'a.b|c('] },
      },
      {
        ...input,
        namespace: 'we"ird\\ns',
        canaryPodRegex: podRegexes('a.b+c').canary,
        stablePodRegex: podRegexes('a.b+c').stable,
        podLabel: 'kubernetes_pod_name',
      },
    ];
    for (const variant of variants) {
      const built = rolloutQueries(variant);
      for (const expr of [...Object.values(built.canary), ...Object.values(built.stable)]) {
        const result = await prometheus.tryQuery(expr);
        expect({ expr, ok: result.ok, error: result.ok ? undefined : result.error }).toEqual({
          expr,
          ok: true,
          error: undefined,
        });
      }
    }
  });

  it('holds the step, inconclusive, while the canary has no traffic', async () => {
    const verdict = await analysis.run(prometheus.url, queries, gates);
    expect(verdict).toMatchObject({
      verdict: 'Inconclusive',
      metric: 'requests',
      canary: { pods: 1, requests: 0 },
      stable: { pods: 1, requests: 0 },
    });
    expect(verdict.message).toMatch(
      /^canary answered 0 TDLib requests in the interval, fewer than minRequests 100/,
    );
    expect(verdict.canary.memoryRatio).toBeCloseTo(200 / 1024, 6);
  });

  it("fails a canary whose P95 is above the gate while the stable pods' is not", async () => {
    let tick = 0;
    traffic = setInterval(() => {
      tick++;
      for (let i = 0; i < 10; i++) {
        canary.hooks.requestDone('sendMessage', 0.6, 'ok');
        stable.hooks.requestDone('sendMessage', 0.01, 'ok');
      }
      // Telegram's flood waits on both: more than 1% of the requests, and no count against either version.
      if (tick % 2 === 0) {
        canary.hooks.requestDone('sendMessage', 0.6, '429', 'flood_wait');
        stable.hooks.requestDone('sendMessage', 0.01, '429', 'flood_wait');
      }
    }, 50);

    // Enough traffic of both sets in the window for every gate to count.
    const verdict = await waitFor(
      'both sets to have minRequests requests and a P95 in Prometheus',
      async () => {
        const v = await analysis.run(prometheus.url, queries, gates);
        const measured = (values: typeof v.canary | undefined) =>
          values !== undefined && values.requests >= gates.minRequests && values.p95LatencyMs !== undefined;
        return measured(v.canary) && measured(v.stable) ? v : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 500, onTimeout: () => prometheus.output().slice(-2000) },
    );

    expect(verdict).toMatchObject({ verdict: 'Failed', metric: 'p95LatencyMs' });
    const shown = /^canary P95 latency (\d+(?:\.\d+)?) ms > 500 ms \(stable (\d+(?:\.\d+)?) ms\)$/.exec(
      verdict.message,
    );
    expect(shown).not.toBeNull();
    expect(Number(shown?.[1])).toBeGreaterThan(500);
    expect(Number(shown?.[2])).toBeLessThan(500);
    // 600 ms lies in the (0.5, 1] bucket, 10 ms in (0.005, 0.01]: histogram_quantile interpolates in them.
    expect(verdict.canary.p95LatencyMs).toBeGreaterThan(500);
    expect(verdict.canary.p95LatencyMs).toBeLessThanOrEqual(1000);
    expect(verdict.stable?.p95LatencyMs).toBeLessThanOrEqual(10);
    // The flood waits are not errors of either version; memory comes through the join of the two gauges.
    expect(verdict.canary.errorRatio).toBe(0);
    expect(verdict.stable?.errorRatio).toBe(0);
    expect(verdict.canary).toMatchObject({ pods: 1 });
    expect(verdict.canary.memoryRatio).toBeCloseTo(200 / 1024, 6);
    expect(verdict.stable?.memoryRatio).toBeCloseTo(100 / 1024, 6);

    // Counting Telegram's limits, the same traffic fails both versions' error gate alike: inconclusive. The
    // flood-wait series start later than the others (every other tick) and rate() needs two of their samples
    // in the window: until Prometheus has them for both sets, the errors are not measured yet.
    const countingGates = { ...gates, countTelegramLimits: true };
    const countingQueries = rolloutQueries({ ...input, gates: countingGates });
    const counted = await waitFor(
      "both sets' flood waits to be measured as errors in Prometheus",
      async () => {
        const v = await analysis.run(prometheus.url, countingQueries, countingGates);
        return (v.canary.errorRatio ?? 0) > 0 && (v.stable?.errorRatio ?? 0) > 0 ? v : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 500, onTimeout: () => prometheus.output().slice(-2000) },
    );
    expect(counted).toMatchObject({ verdict: 'Inconclusive', metric: 'errorRatio' });
    expect(counted.canary.errorRatio).toBeGreaterThan(gates.maxErrorRatio);
  });

  it('is inconclusive, never failed, when Prometheus cannot be queried', async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    const unreachable = await analysis.run(closed, queries, gates);
    expect(unreachable).toMatchObject({
      verdict: 'Inconclusive',
      metric: 'scrape',
      canary: { pods: 0, requests: 0 },
    });
    expect(unreachable.message).toContain(`Prometheus at ${closed} could not be queried`);
    expect(unreachable.message).toContain('ECONNREFUSED');

    const notPrometheus = await analysis.run(`http://${canary.address}`, queries, gates);
    expect(notPrometheus).toMatchObject({ verdict: 'Inconclusive', metric: 'scrape' });
    expect(notPrometheus.message).toContain('HTTP 404');

    const broken: RolloutQueries = {
      ...queries,
      canary: { ...queries.canary, p95: 'histogram_quantile(0.95, ' },
    };
    const refused = await analysis.run(prometheus.url, broken, gates);
    expect(refused).toMatchObject({ verdict: 'Inconclusive', metric: 'scrape' });
    expect(refused.message).toContain(
      `Prometheus at ${prometheus.url} could not be queried (canary p95: bad_data:`,
    );
  });
});
