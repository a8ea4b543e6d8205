/**
 * Rollout analysis from a Prometheus query: the PromQL rolloutQueries() builds (exact for a typical pool,
 * escaped label values and regexes, Telegram's limits and ignored codes), and PrometheusAnalysis.run() on a
 * fake Prometheus API: nothing Prometheus leaves out (empty result, NaN) reads as 0, a Prometheus that cannot
 * be reached or answers an error is inconclusive, never failed, and the verdict is judge()'s.
 */
import { describe, expect, it } from '@jest/globals';
import { API_VERSION, type RuntimePoolSpec } from '../../../crds/index.js';
import { canaryPodName, runtimePodName } from '../../../crds/naming.js';
import { loadOperatorConfig } from '../../../operator/config.js';
import { judge, type Gates } from '../../../operator/pool/rollout/analysis.js';
import {
  PrometheusAnalysis,
  podRegexes,
  withoutCredentials,
  rolloutQueries,
  type PrometheusFetch,
  type RolloutQueries,
  type RolloutQueryInput,
} from '../../../operator/pool/rollout/prometheus-analysis.js';
import { declaredPool } from '../../../operator/pool/rollout/template.js';

const gates: Gates = {
  minRequests: 100,
  maxErrorRatio: 0.01,
  maxP95LatencyMs: 500,
  maxMemoryRatio: 0.8,
  countTelegramLimits: false,
  ignoredErrorCodes: [],
};

const ADDRESS = 'http://prometheus.monitoring.svc:9090';

const input = (overrides: Partial<RolloutQueryInput> = {}): RolloutQueryInput => {
  const pods = podRegexes('p');
  return {
    namespace: 'telegram',
    canaryPodRegex: pods.canary,
    stablePodRegex: pods.stable,
    windowSeconds: 60,
    gates,
    podLabel: 'pod',
    namespaceLabel: 'namespace',
    ...overrides,
  };
};

/** A PromQL string literal's value (its escapes are Go's, which JSON shares for \\ and \"). */
const unquote = (literal: string): string => JSON.parse(literal) as string;

/** Whether Prometheus's anchored match of `regex` takes `text` (RE2 and JS agree on these regexes). */
const anchoredMatch = (regex: string, text: string): boolean => new RegExp(`^(?:${regex})$`).test(text);

describe('podRegexes', () => {
  it("matches the pool's canary and stable pods, and nothing of the other set or another pool", () => {
    const { canary, stable } = podRegexes('p');
    expect({ canary, stable }).toEqual({ canary: 'tdlib-canary-p-[0-9]+', stable: 'tdlib-runtime-p-[0-9]+' });
    expect(anchoredMatch(canary, canaryPodName('p', 0))).toBe(true);
    expect(anchoredMatch(canary, canaryPodName('p', 12))).toBe(true);
    expect(anchoredMatch(stable, runtimePodName('p', 3))).toBe(true);
    expect(anchoredMatch(canary, runtimePodName('p', 0))).toBe(false);
    expect(anchoredMatch(stable, canaryPodName('p', 0))).toBe(false);
    expect(anchoredMatch(canary, canaryPodName('p-2', 0))).toBe(false);
    expect(anchoredMatch(stable, runtimePodName('pp', 0))).toBe(false);
  });

  it('follows the names crds/naming.ts gives, truncation included', () => {
    const pool = 'a'.repeat(50);
    const { canary, stable } = podRegexes(pool);
    expect(anchoredMatch(canary, canaryPodName(pool, 7))).toBe(true);
    expect(anchoredMatch(stable, runtimePodName(pool, 7))).toBe(true);
  });

  it('escapes regex metacharacters', () => {
    const { canary } = podRegexes('a.b+c');
    expect(canary).toBe('tdlib-canary-a\\.b\\+c-[0-9]+');
    expect(anchoredMatch(canary, 'tdlib-canary-a.b+c-0')).toBe(true);
    expect(anchoredMatch(canary, 'tdlib-canary-aXbbc-0')).toBe(false);
  });
});

describe('rolloutQueries', () => {
  it('builds the queries of a typical pool', () => {
    const sel = (set: string) => `{namespace="telegram", pod=~"tdlib-${set}-p-[0-9]+"}`;
    const expected = (set: string) => ({
      pods: `count(count by (namespace, pod) (process_resident_memory_bytes${sel(set)}))`,
      requests: `sum(increase(tdlib_requests_total${sel(set)}[60s]))`,
      errors: `sum(increase(tdlib_errors_total{namespace="telegram", pod=~"tdlib-${set}-p-[0-9]+", telegram_limit=""}[60s]))`,
      p95: `histogram_quantile(0.95, sum by (le) (increase(tdlib_request_duration_seconds_bucket${sel(set)}[60s])))`,
      memory:
        `max(max by (namespace, pod) (process_resident_memory_bytes${sel(set)}) / on(namespace, pod) ` +
        `max by (namespace, pod) (tdlib_runtime_memory_limit_bytes${sel(set)} > 0))`,
    });
    expect(rolloutQueries(input())).toEqual({ canary: expected('canary'), stable: expected('runtime') });
  });

  it('uses the configured pod and namespace labels', () => {
    const queries = rolloutQueries(
      input({ podLabel: 'kubernetes_pod_name', namespaceLabel: 'kubernetes_namespace' }),
    );
    expect(queries.canary.requests).toBe(
      'sum(increase(tdlib_requests_total{kubernetes_namespace="telegram", kubernetes_pod_name=~"tdlib-canary-p-[0-9]+"}[60s]))',
    );
    expect(queries.stable.memory).toContain('on(kubernetes_namespace, kubernetes_pod_name)');
    expect(queries.stable.pods).toContain('count by (kubernetes_namespace, kubernetes_pod_name)');
  });

  it('escapes label values as PromQL strings, regexes included', () => {
    const pods = podRegexes('a.b');
    const queries = rolloutQueries(
      input({ namespace: 'we"ird\\ns\n', canaryPodRegex: pods.canary, stablePodRegex: pods.stable }),
    );
    expect(queries.canary.requests).toBe(
      'sum(increase(tdlib_requests_total{namespace="we\\"ird\\\\ns\\n", pod=~"tdlib-canary-a\\\\.b-[0-9]+"}[60s]))',
    );
    // What Prometheus reads back is the namespace and the regex as given.
    const [, ns, regex] =
      /namespace=("(?:[^"\\]|\\.)*"), pod=~("(?:[^"\\]|\\.)*")/.exec(queries.canary.requests) ?? [];
    expect(unquote(ns ?? '')).toBe('we"ird\\ns\n');
    expect(unquote(regex ?? '')).toBe(pods.canary);
  });

  it("counts Telegram's limits only with countTelegramLimits", () => {
    const counted = rolloutQueries(input({ gates: { ...gates, countTelegramLimits: true } }));
    expect(counted.canary.errors).toBe(
      'sum(increase(tdlib_errors_total{namespace="telegram", pod=~"tdlib-canary-p-[0-9]+"}[60s]))',
    );
    expect(rolloutQueries(input()).canary.errors).toContain('telegram_limit=""');
  });

  it('leaves out the ignored error codes, regex-escaped', () => {
    const queries = rolloutQueries(
      input({ gates: { ...gates, ignoredErrorCodes: ['400', 'timeout', 'a.b|c'] } }),
    );
    expect(queries.canary.errors).toBe(
      'sum(increase(tdlib_errors_total{namespace="telegram", pod=~"tdlib-canary-p-[0-9]+", telegram_limit="", code!~"400|timeout|a\\\\.b\\\\|c"}[60s]))',
    );
    const regex = unquote(/code!~("(?:[^"\\]|\\.)*")/.exec(queries.stable.errors)?.[1] ?? '');
    for (const code of ['400', 'timeout', 'a.b|c']) expect(anchoredMatch(regex, code)).toBe(true);
    for (const code of ['4000', '500', 'aXb|c', 'a.b']) expect(anchoredMatch(regex, code)).toBe(false);
    // Only the error query filters by code: requests are all requests.
    expect(queries.canary.requests).not.toContain('code');
  });

  it('takes the window in whole seconds, at least one', () => {
    expect(rolloutQueries(input({ windowSeconds: 59.6 })).canary.requests).toContain('[60s]');
    expect(rolloutQueries(input({ windowSeconds: 0.2 })).canary.p95).toContain('[1s]');
  });
});

/** A fake Prometheus query API: each query's value as Prometheus prints it, or absent (empty vector). */
type Answers = Partial<Record<string, string>>;

interface FakePrometheus {
  fetch: PrometheusFetch;
  urls: string[];
}

function fakePrometheus(answers: Answers): FakePrometheus {
  const urls: string[] = [];
  return {
    urls,
    fetch: (url) => {
      urls.push(url);
      const query = new URL(url).searchParams.get('query') ?? '';
      const value = answers[query];
      return Promise.resolve({
        status: 'success',
        data: {
          resultType: 'vector',
          result: value === undefined ? [] : [{ metric: {}, value: [1700000000.123, value] }],
        },
      });
    },
  };
}

const queries: RolloutQueries = rolloutQueries(input());

/** Answers for both sets, by query name. */
const answers = (
  canary: Partial<Record<keyof RolloutQueries['canary'], string>>,
  stable: Partial<Record<keyof RolloutQueries['stable'], string>> = {},
): Answers => {
  const out: Answers = {};
  for (const [name, value] of Object.entries(canary))
    out[queries.canary[name as keyof typeof canary]] = value;
  for (const [name, value] of Object.entries(stable))
    out[queries.stable[name as keyof typeof stable]] = value;
  return out;
};

const healthy = { pods: '3', requests: '6000', errors: '6', p95: '0.02', memory: '0.4' };

describe('PrometheusAnalysis.run', () => {
  it('runs instant GET queries on <address>/api/v1/query', async () => {
    const fake = fakePrometheus(answers({ pods: '1', requests: '500' }, healthy));
    await new PrometheusAnalysis({ fetch: fake.fetch }).run(`${ADDRESS}/`, queries, gates);
    expect(fake.urls).toHaveLength(10);
    const asked = fake.urls.map((url) => new URL(url));
    for (const url of asked) expect(`${url.origin}${url.pathname}`).toBe(`${ADDRESS}/api/v1/query`);
    expect(asked.map((url) => url.searchParams.get('query')).sort()).toEqual(
      [...Object.values(queries.canary), ...Object.values(queries.stable)].sort(),
    );
  });

  it('keeps a path prefix of the address (Prometheus behind a route prefix)', async () => {
    const fake = fakePrometheus({});
    await new PrometheusAnalysis({ fetch: fake.fetch }).run(
      'https://thanos.example/prometheus',
      queries,
      gates,
    );
    expect(new URL(fake.urls[0] ?? '').pathname).toBe('/prometheus/api/v1/query');
  });

  it('holds an idle canary as inconclusive: empty results are 0 requests and no ratios', async () => {
    const fake = fakePrometheus(answers({ pods: '1' }, { pods: '3' }));
    const result = await new PrometheusAnalysis({ fetch: fake.fetch }).run(ADDRESS, queries, gates);
    expect(result).toEqual({
      verdict: 'Inconclusive',
      metric: 'requests',
      message:
        'canary answered 0 TDLib requests in the interval, fewer than minRequests 100: inconclusive, holding the step',
      canary: { pods: 1, requests: 0 },
      stable: { pods: 3, requests: 0 },
    });
  });

  it('is inconclusive when Prometheus has no series of a canary pod, naming the address and the query', async () => {
    const fake = fakePrometheus(answers({}, healthy));
    const result = await new PrometheusAnalysis({ fetch: fake.fetch }).run(ADDRESS, queries, gates);
    expect(result).toMatchObject({
      verdict: 'Inconclusive',
      metric: 'scrape',
      canary: { pods: 0, requests: 0 },
    });
    expect(result.message).toContain(`Prometheus at ${ADDRESS} has no series of a canary pod`);
    expect(result.message).toContain(queries.canary.pods);
    expect(result.stable).toMatchObject({ pods: 3, requests: 6000 });
  });

  it('is inconclusive, not passed, when everything is empty', async () => {
    const result = await new PrometheusAnalysis({ fetch: fakePrometheus({}).fetch }).run(
      ADDRESS,
      queries,
      gates,
    );
    expect(result).toMatchObject({
      verdict: 'Inconclusive',
      metric: 'scrape',
      canary: { pods: 0, requests: 0 },
    });
    expect(result.stable).toBeUndefined();
  });

  it('reads NaN and infinities as absent, never as 0', async () => {
    const fake = fakePrometheus(
      answers({ pods: '1', requests: '800', errors: '0', p95: 'NaN', memory: '+Inf' }),
    );
    const result = await new PrometheusAnalysis({ fetch: fake.fetch }).run(ADDRESS, queries, gates);
    // No P95 and no memory ratio: not 0 ms and 0%, which would read as a measured, perfect canary.
    expect(result.canary).toEqual({ pods: 1, requests: 800, errorRatio: 0 });

    const nanTraffic = fakePrometheus(answers({ pods: '1', requests: 'NaN', errors: 'NaN', p95: 'NaN' }));
    const idle = await new PrometheusAnalysis({ fetch: nanTraffic.fetch }).run(ADDRESS, queries, gates);
    expect(idle).toMatchObject({
      verdict: 'Inconclusive',
      metric: 'requests',
      canary: { pods: 1, requests: 0 },
    });
    expect(idle.canary.errorRatio).toBeUndefined();
    expect(idle.canary.p95LatencyMs).toBeUndefined();
  });

  it('fails a canary whose error ratio is over the gate while the stable pods are healthy', async () => {
    const fake = fakePrometheus(
      answers({ pods: '2', requests: '1000.4', errors: '49.6', p95: '0.0212345', memory: '0.3' }, healthy),
    );
    const result = await new PrometheusAnalysis({ fetch: fake.fetch }).run(ADDRESS, queries, gates);
    expect(result).toEqual({
      verdict: 'Failed',
      metric: 'errorRatio',
      message: 'canary error ratio 5.0% > 1.0% (stable 0.1%)',
      // Counts rounded to whole requests as the direct path records them, P95 in ms to a tenth.
      canary: { pods: 2, requests: 1000, errorRatio: 0.05, p95LatencyMs: 21.2, memoryRatio: 0.3 },
      stable: { pods: 3, requests: 6000, errorRatio: 0.001, p95LatencyMs: 20, memoryRatio: 0.4 },
    });
  });

  it('is inconclusive when the stable pods fail the same gate', async () => {
    const fake = fakePrometheus(
      answers({ pods: '1', requests: '1000', p95: '0.9' }, { pods: '3', requests: '6000', p95: '0.8' }),
    );
    const result = await new PrometheusAnalysis({ fetch: fake.fetch }).run(ADDRESS, queries, gates);
    expect(result).toMatchObject({ verdict: 'Inconclusive', metric: 'p95LatencyMs' });
    expect(result.message).toBe(
      'canary P95 latency 900 ms > 500 ms, but stable 800 ms is over it too: both versions fail alike, inconclusive, holding the step',
    );
  });

  it('fails on memory before traffic, and passes a healthy canary', async () => {
    const leaking = fakePrometheus(answers({ pods: '1', memory: '0.93' }, healthy));
    const leak = await new PrometheusAnalysis({ fetch: leaking.fetch }).run(ADDRESS, queries, gates);
    expect(leak).toMatchObject({
      verdict: 'Failed',
      metric: 'memoryRatio',
      message: 'canary memory 93% of its limit > 80%',
    });

    const fine = fakePrometheus(
      answers({ pods: '1', requests: '1000', errors: '2', p95: '0.05', memory: '0.5' }, healthy),
    );
    const passed = await new PrometheusAnalysis({ fetch: fine.fetch }).run(ADDRESS, queries, gates);
    expect(passed).toMatchObject({
      verdict: 'Passed',
      message:
        'canary passed: 1000 TDLib requests, error ratio 0.2% <= 1.0%, P95 latency 50 ms <= 500 ms, memory 50% of its limit',
    });
  });

  it('is inconclusive, never failed, when Prometheus cannot be reached, naming the address and the error', async () => {
    const unreachable: PrometheusFetch = () =>
      Promise.reject(
        new TypeError('fetch failed', { cause: new Error('connect ECONNREFUSED 10.0.0.9:9090') }),
      );
    const result = await new PrometheusAnalysis({ fetch: unreachable }).run(ADDRESS, queries, gates);
    expect(result).toMatchObject({
      verdict: 'Inconclusive',
      metric: 'scrape',
      canary: { pods: 0, requests: 0 },
    });
    expect(result.message).toContain(`Prometheus at ${ADDRESS} could not be queried`);
    expect(result.message).toContain('fetch failed: connect ECONNREFUSED 10.0.0.9:9090');
    expect(result.message).toContain('inconclusive, holding the step');
  });

  it('is inconclusive when Prometheus answers an error or something else than a query answer', async () => {
    const failing: PrometheusFetch = () =>
      Promise.resolve({ status: 'error', errorType: 'bad_data', error: '1:10: parse error: unexpected "}"' });
    const bad = await new PrometheusAnalysis({ fetch: failing }).run(ADDRESS, queries, gates);
    expect(bad).toMatchObject({ verdict: 'Inconclusive', metric: 'scrape' });
    expect(bad.message).toContain(`Prometheus at ${ADDRESS}`);
    expect(bad.message).toContain('bad_data: 1:10: parse error: unexpected "}"');

    for (const body of [
      '<html>',
      null,
      { status: 'success' },
      { status: 'success', data: { resultType: 'matrix', result: [] } },
    ]) {
      const odd = await new PrometheusAnalysis({ fetch: () => Promise.resolve(body) }).run(
        ADDRESS,
        queries,
        gates,
      );
      expect(odd).toMatchObject({ verdict: 'Inconclusive', metric: 'scrape' });
    }
  });

  it('gives up on a Prometheus that does not answer within timeoutMs', async () => {
    const hanging: PrometheusFetch = (_url, signal) =>
      new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
    const result = await new PrometheusAnalysis({ fetch: hanging, timeoutMs: 50 }).run(
      ADDRESS,
      queries,
      gates,
    );
    expect(result).toMatchObject({ verdict: 'Inconclusive', metric: 'scrape' });
    expect(result.message).toMatch(/timeout|timed out/i);
  });

  it('keeps the message within what the status takes', async () => {
    const verbose: PrometheusFetch = () =>
      Promise.resolve({ status: 'error', errorType: 'execution', error: 'x'.repeat(5000) });
    const result = await new PrometheusAnalysis({ fetch: verbose }).run(ADDRESS, queries, gates);
    expect(result.message.length).toBeLessThanOrEqual(1024);
  });
});

describe('judge', () => {
  it('names the canary pod of a memory failure when the caller knows it', () => {
    const canary = { pods: 2, requests: 0, memoryRatio: 0.9 };
    expect(judge(canary, undefined, gates, { memoryPod: 'tdlib-canary-p-1' }).message).toBe(
      'canary memory 90% of its limit > 80% (pod tdlib-canary-p-1)',
    );
    expect(judge(canary, undefined, gates).message).toBe('canary memory 90% of its limit > 80%');
  });
});

describe('declaredPool', () => {
  const settings = (analysis: NonNullable<RuntimePoolSpec['rollout']>['analysis']) =>
    declaredPool(
      {
        apiVersion: API_VERSION,
        kind: 'TelegramRuntimePool',
        metadata: { name: 'p', namespace: 'telegram' },
        spec: { image: 'registry.example/runtime:2.0', rollout: { analysis } },
      },
      loadOperatorConfig({ RUNTIME_IMAGE: 'registry.example/runtime:1.0' }),
    ).rollout;

  it('carries spec.rollout.analysis.prometheus with the default labels', () => {
    expect(settings({ prometheus: { address: ADDRESS } })?.prometheus).toEqual({
      address: ADDRESS,
      podLabel: 'pod',
      namespaceLabel: 'namespace',
    });
    expect(
      settings({ prometheus: { address: ADDRESS, podLabel: 'kubernetes_pod_name', namespaceLabel: 'ns' } })
        ?.prometheus,
    ).toEqual({ address: ADDRESS, podLabel: 'kubernetes_pod_name', namespaceLabel: 'ns' });
  });

  it('has no prometheus without one: the pods are scraped directly', () => {
    expect(settings({})).not.toHaveProperty('prometheus');
    expect(settings(undefined)).not.toHaveProperty('prometheus');
  });
});

describe('withoutCredentials (the address as status and Events show it)', () => {
  it('masks a user and password in the address and leaves a plain address alone', () => {
    expect(withoutCredentials('https://admin:s3cret@prometheus.monitoring:9090')).toBe(
      'https://***@prometheus.monitoring:9090',
    );
    expect(withoutCredentials('http://prometheus-operated.monitoring.svc:9090')).toBe(
      'http://prometheus-operated.monitoring.svc:9090',
    );
  });

  it('never puts the credentials into an inconclusive verdict', async () => {
    const analysis = new PrometheusAnalysis({
      fetch: (url) => Promise.reject(new Error(`cannot reach ${url}`)),
    });
    const address = 'https://admin:s3cret@prometheus.monitoring:9090';
    const verdict = await analysis.run(
      address,
      rolloutQueries({
        namespace: 'team',
        canaryPodRegex: podRegexes('p').canary,
        stablePodRegex: podRegexes('p').stable,
        windowSeconds: 60,
        gates: gates,
        podLabel: 'pod',
        namespaceLabel: 'namespace',
      }),
      gates,
    );
    expect(verdict.verdict).toBe('Inconclusive');
    expect(verdict.message).not.toContain('s3cret');
  });
});
