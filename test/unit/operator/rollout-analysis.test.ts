/**
 * Canary analysis of a runtime rollout: interval deltas of the runtime's TDLib metrics per pod, summed per
 * set, judged against the gates in the documented order.
 */
import { describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import {
  analyze,
  histogramQuantile,
  windowValues,
  type Gates,
  type PodScrape,
} from '../../../operator/pool/rollout/analysis.js';
import { parsePrometheusText, type Sample } from '../../../operator/pool/rollout/metrics-text.js';
import { promRequestHooks, registerTdRequestMetrics } from '../../../runtime/tdlib/metrics-hooks.js';

const gates: Gates = {
  minRequests: 100,
  maxErrorRatio: 0.01,
  maxP95LatencyMs: 500,
  maxMemoryRatio: 0.8,
  countTelegramLimits: false,
  ignoredErrorCodes: [],
};

/** The runtime's bucket bounds (runtime/tdlib/metrics-hooks.ts). */
const BOUNDS = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, Infinity];
const GiB = 1024 ** 3;

interface Traffic {
  ok?: number;
  errors?: readonly { code: string; limit?: string; n: number }[];
  /** [seconds, how many requests took that long] */
  latencies?: readonly (readonly [number, number])[];
  memory?: { resident: number; limit?: number };
}

/** What a runtime pod with these cumulative totals exposes, as the runtime names it. */
function samples(t: Traffic): Sample[] {
  const method = 'sendMessage';
  const errors = t.errors ?? [];
  const out: Sample[] = [
    { name: 'tdlib_requests_total', labels: { method, outcome: 'ok' }, value: t.ok ?? 0 },
  ];
  const errorCount = errors.reduce((n, e) => n + e.n, 0);
  if (errorCount > 0)
    out.push({ name: 'tdlib_requests_total', labels: { method, outcome: 'error' }, value: errorCount });
  for (const e of errors)
    out.push({
      name: 'tdlib_errors_total',
      labels: { method, code: e.code, ...(e.limit !== undefined && { telegram_limit: e.limit }) },
      value: e.n,
    });
  for (const bound of BOUNDS) {
    const count = (t.latencies ?? []).reduce((n, [seconds, k]) => n + (seconds <= bound ? k : 0), 0);
    const le = bound === Infinity ? '+Inf' : String(bound);
    out.push({ name: 'tdlib_request_duration_seconds_bucket', labels: { method, le }, value: count });
  }
  if (t.memory !== undefined) {
    out.push({ name: 'process_resident_memory_bytes', labels: {}, value: t.memory.resident });
    if (t.memory.limit !== undefined)
      out.push({ name: 'tdlib_runtime_memory_limit_bytes', labels: {}, value: t.memory.limit });
  }
  return out;
}

const canaryPod = (i: number, t: Traffic): PodScrape => ({
  pod: `tdlib-canary-p-${i}`,
  set: 'canary',
  samples: samples(t),
});
const stablePod = (i: number, t: Traffic): PodScrape => ({
  pod: `tdlib-p-${i}`,
  set: 'stable',
  samples: samples(t),
});

/** A healthy stable pod: 10,000 requests in the interval, all fast. */
const stableBefore = stablePod(0, { ok: 50_000, latencies: [[0.02, 50_000]] });
const stableAfter = stablePod(0, { ok: 60_000, latencies: [[0.02, 60_000]] });

describe('windowValues', () => {
  it('sums interval deltas over the pods of a set', () => {
    const previous = [canaryPod(0, { ok: 100 }), canaryPod(1, { ok: 1000 })];
    const current = [canaryPod(0, { ok: 300 }), canaryPod(1, { ok: 1500 }), stableAfter];
    expect(windowValues(previous, current, 'canary', gates)).toEqual({
      pods: 2,
      requests: 700,
      errorRatio: 0,
    });
  });

  it('takes the current value as the increase of a counter that went down (the process restarted)', () => {
    const previous = [canaryPod(0, { ok: 5000, errors: [{ code: '500', n: 40 }] })];
    const current = [canaryPod(0, { ok: 190, errors: [{ code: '500', n: 10 }] })];
    expect(windowValues(previous, current, 'canary', gates)).toMatchObject({
      requests: 200,
      errorRatio: 0.05,
    });
  });

  it('counts a series first seen in the interval whole (prom-client creates it on its first increment)', () => {
    const previous = [canaryPod(0, { ok: 1000 })];
    const current = [canaryPod(0, { ok: 1990, errors: [{ code: '500', n: 10 }] })];
    expect(windowValues(previous, current, 'canary', gates)).toMatchObject({
      requests: 1000,
      errorRatio: 0.01,
    });
  });

  it('gives a pod without a baseline no counter deltas, but counts it as a pod and for memory', () => {
    const previous = [canaryPod(0, { ok: 1000 })];
    const current = [
      canaryPod(0, { ok: 1200, memory: { resident: 0.2 * GiB, limit: GiB } }),
      canaryPod(1, {
        ok: 90_000,
        errors: [{ code: '500', n: 9000 }],
        memory: { resident: 0.5 * GiB, limit: GiB },
      }),
    ];
    expect(windowValues(previous, current, 'canary', gates)).toEqual({
      pods: 2,
      requests: 200,
      errorRatio: 0,
      memoryRatio: 0.5,
    });
  });

  it('omits the error ratio and P95 without requests, and the memory ratio without a limit', () => {
    const previous = [canaryPod(0, { ok: 10 })];
    const current = [canaryPod(0, { ok: 10, memory: { resident: GiB } })];
    expect(windowValues(previous, current, 'canary', gates)).toEqual({ pods: 1, requests: 0 });
  });
});

describe('histogramQuantile', () => {
  const buckets = (counts: number[]) => counts.map((count, i) => ({ upperBound: BOUNDS[i] ?? NaN, count }));

  it('interpolates linearly inside the bucket, from 0 below the first one', () => {
    expect(
      histogramQuantile(0.5, [
        { upperBound: 1, count: 10 },
        { upperBound: Infinity, count: 10 },
      ]),
    ).toBe(0.5);
  });

  it('returns the highest finite bound when the rank falls in the +Inf bucket', () => {
    expect(histogramQuantile(0.95, buckets([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10, 100]))).toBe(30);
  });

  it('is undefined without observations or without a +Inf bucket', () => {
    expect(histogramQuantile(0.95, buckets(BOUNDS.map(() => 0)))).toBeUndefined();
    expect(histogramQuantile(0.95, [{ upperBound: 1, count: 10 }])).toBeUndefined();
  });
});

describe('analyze', () => {
  it('is inconclusive without a canary pod scraped', () => {
    const result = analyze([stableBefore], [stableAfter], gates);
    expect(result).toMatchObject({ verdict: 'Inconclusive', metric: 'scrape', canary: { pods: 0 } });
    expect(result.stable).toMatchObject({ pods: 1, requests: 10_000 });
  });

  it('holds an idle canary as inconclusive, not failed', () => {
    const result = analyze([canaryPod(0, { ok: 7 })], [canaryPod(0, { ok: 10 })], gates);
    expect(result).toEqual({
      verdict: 'Inconclusive',
      metric: 'requests',
      message:
        'canary answered 3 TDLib requests in the interval, fewer than minRequests 100: inconclusive, holding the step',
      canary: { pods: 1, requests: 3, errorRatio: 0 },
    });
    expect(result.stable).toBeUndefined();
  });

  it('does not count Telegram flood waits, unless countTelegramLimits', () => {
    const previous = [canaryPod(0, { ok: 0 }), stableBefore];
    const current = [
      canaryPod(0, { ok: 1000, errors: [{ code: '429', limit: 'flood_wait', n: 100 }] }),
      stableAfter,
    ];
    const result = analyze(previous, current, gates);
    expect(result.verdict).toBe('Passed');
    expect(result.canary).toMatchObject({ requests: 1100, errorRatio: 0 });

    const counted = analyze(previous, current, { ...gates, countTelegramLimits: true });
    expect(counted).toMatchObject({ verdict: 'Failed', metric: 'errorRatio' });
    expect(counted.canary.errorRatio).toBeCloseTo(100 / 1100, 12);
  });

  it('counts an error with an empty telegram_limit label, and skips ignored codes', () => {
    const previous = [canaryPod(0, { ok: 0 })];
    const current = [
      canaryPod(0, {
        ok: 900,
        errors: [
          { code: '500', limit: '', n: 50 },
          { code: '400', n: 50 },
        ],
      }),
    ];
    expect(analyze(previous, current, gates).canary.errorRatio).toBe(0.1);
    expect(analyze(previous, current, { ...gates, ignoredErrorCodes: ['400'] }).canary.errorRatio).toBe(0.05);
  });

  it('fails a canary with 5% errors while the stable version has none', () => {
    const previous = [canaryPod(0, { ok: 0 }), stableBefore];
    const current = [canaryPod(0, { ok: 950, errors: [{ code: '500', n: 50 }] }), stableAfter];
    expect(analyze(previous, current, gates)).toMatchObject({
      verdict: 'Failed',
      metric: 'errorRatio',
      message: 'canary error ratio 5.0% > 1.0% (stable 0.0%)',
      canary: { pods: 1, requests: 1000, errorRatio: 0.05 },
      stable: { pods: 1, requests: 10_000, errorRatio: 0 },
    });
  });

  it('is inconclusive when the stable version fails the same gate (not the new version’s fault)', () => {
    const failing = (pod: (i: number, t: Traffic) => PodScrape, errors: number) => [
      pod(0, { ok: 0 }),
      pod(0, { ok: 1000 - errors, errors: [{ code: '500', n: errors }] }),
    ];
    const [canaryPrev, canaryNow] = failing(canaryPod, 50);
    const [stablePrev, stableNow] = failing(stablePod, 40);
    const result = analyze([canaryPrev!, stablePrev!], [canaryNow!, stableNow!], gates);
    expect(result).toMatchObject({ verdict: 'Inconclusive', metric: 'errorRatio' });
    expect(result.message).toBe(
      'canary error ratio 5.0% > 1.0%, but stable 4.0% is over it too: both versions fail alike, inconclusive, holding the step',
    );

    // A stable set with too little traffic to judge does not excuse the canary.
    const quiet = analyze(
      [canaryPrev!, stablePod(0, { ok: 0 })],
      [canaryNow!, stablePod(0, { ok: 9, errors: [{ code: '500', n: 1 }] })],
      gates,
    );
    expect(quiet).toMatchObject({
      verdict: 'Failed',
      metric: 'errorRatio',
      message: 'canary error ratio 5.0% > 1.0% (stable 10.0%)',
    });
  });

  it('fails the P95 gate at 600 ms, interpolated inside the (0.5 s, 1 s] bucket', () => {
    // 750 fast requests and 50 at 0.7 s: rank 0.95 * 800 = 760 is 10 of the 50 into (0.5, 1] → 0.6 s.
    const previous = [canaryPod(0, {}), stablePod(0, {})];
    const current = [
      canaryPod(0, {
        ok: 800,
        latencies: [
          [0.02, 750],
          [0.7, 50],
        ],
      }),
      stablePod(0, { ok: 800, latencies: [[0.02, 800]] }),
    ];
    const result = analyze(previous, current, gates);
    expect(result).toMatchObject({
      verdict: 'Failed',
      metric: 'p95LatencyMs',
      message: 'canary P95 latency 600 ms > 500 ms (stable 48 ms)',
      canary: { p95LatencyMs: 600 },
      stable: { p95LatencyMs: 48 },
    });
  });

  it('shows enough decimals to tell a value just over the gate from the gate', () => {
    // Rank 95 of 100 is 1 of the 6 requests in (0.5 s, 1 s]: 583.33 ms, which must not print as the 583 ms gate.
    const current = [
      canaryPod(0, {
        ok: 100,
        latencies: [
          [0.02, 94],
          [0.6, 6],
        ],
      }),
    ];
    const result = analyze([canaryPod(0, {})], current, { ...gates, maxP95LatencyMs: 583 });
    expect(result.canary.p95LatencyMs).toBe(583.3);
    expect(result.message).toBe('canary P95 latency 583.3 ms > 583.0 ms');

    const errors = [canaryPod(0, { ok: 2474, errors: [{ code: '500', n: 26 }] })];
    expect(analyze([canaryPod(0, {})], errors, gates).message).toBe('canary error ratio 1.04% > 1.00%');
  });

  it('fails on memory before anything else, even on an idle canary, naming the pod', () => {
    const previous = [canaryPod(0, {}), canaryPod(1, {})];
    const current = [
      canaryPod(0, { memory: { resident: 0.86 * GiB, limit: GiB } }),
      canaryPod(1, { memory: { resident: 0.3 * GiB, limit: GiB } }),
      canaryPod(2, { memory: { resident: 4 * GiB } }),
    ];
    expect(analyze(previous, current, gates)).toMatchObject({
      verdict: 'Failed',
      metric: 'memoryRatio',
      message: 'canary memory 86% of its limit > 80% (pod tdlib-canary-p-0)',
      canary: { pods: 3, requests: 0, memoryRatio: 0.86 },
    });
  });

  it('passes a canary within every gate', () => {
    const previous = [canaryPod(0, { ok: 0 }), stableBefore];
    const current = [
      canaryPod(0, {
        ok: 995,
        errors: [{ code: '500', n: 5 }],
        latencies: [[0.02, 1000]],
        memory: { resident: 0.4 * GiB, limit: GiB },
      }),
      stableAfter,
    ];
    const result = analyze(previous, current, gates);
    expect(result).toMatchObject({
      verdict: 'Passed',
      canary: { requests: 1000, errorRatio: 0.005, p95LatencyMs: 48 },
    });
    expect(result.metric).toBeUndefined();
    expect(result.message).toBe(
      'canary passed: 1000 TDLib requests, error ratio 0.5% <= 1.0%, P95 latency 48 ms <= 500 ms, memory 40% of its limit',
    );
  });

  it('judges the real runtime metrics as prom-client exposes them', async () => {
    // One registry per pod, fed through the runtime's own hooks, scraped as text twice.
    const pods = [
      { pod: 'tdlib-p-0', set: 'stable' as const, slow: 0.02, failEvery: 0 },
      { pod: 'tdlib-canary-p-0', set: 'canary' as const, slow: 0.7, failEvery: 10 },
    ].map((p) => {
      const registry = new Registry();
      return { ...p, registry, hooks: promRequestHooks(registerTdRequestMetrics(registry)) };
    });
    const scrape = () =>
      Promise.all(
        pods.map(async (p) => ({
          pod: p.pod,
          set: p.set,
          samples: parsePrometheusText(await p.registry.metrics()),
        })),
      );
    for (const p of pods) p.hooks.requestDone('getMe', 0.01, 'ok'); // before the interval: not counted
    const previous = await scrape();
    for (const p of pods)
      for (let i = 1; i <= 200; i++) {
        p.hooks.requestDone(
          'sendMessage',
          i % 2 === 0 ? p.slow : 0.02,
          p.failEvery && i % p.failEvery === 0 ? '500' : 'ok',
        );
        if (i % 20 === 0) p.hooks.requestDone('sendMessage', 0.02, '429', 'flood_wait');
      }
    const result = analyze(previous, await scrape(), gates);
    expect(result).toMatchObject({
      verdict: 'Failed',
      metric: 'errorRatio',
      canary: { pods: 1, requests: 210, errorRatio: 20 / 210 },
      stable: { pods: 1, requests: 210, errorRatio: 0 },
    });
    // With errors out of the way, the latency gate sees the slow half of the canary's requests.
    const latency = analyze(previous, await scrape(), { ...gates, maxErrorRatio: 0.5 });
    expect(latency).toMatchObject({ verdict: 'Failed', metric: 'p95LatencyMs' });
    expect(latency.canary.p95LatencyMs).toBeGreaterThan(500);
    expect(latency.stable?.p95LatencyMs).toBeLessThan(50);
  });
});
