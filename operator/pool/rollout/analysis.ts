/**
 * Canary analysis: compares what the canary and the stable runtime pods measured between two scrapes of
 * their /metrics against the rollout's gates. Pure: the controller scrapes, this only judges. judge() is the
 * verdict alone, shared with the analysis from a Prometheus query (prometheus-analysis.ts).
 */
import type { AnalysisRecord } from '../../../crds/runtime-pool.js';
import type { Sample } from './metrics-text.js';

/** One pod's samples as scraped: counters are cumulative since the process started. */
export interface PodScrape {
  pod: string;
  set: 'stable' | 'canary';
  samples: readonly Sample[];
}

export interface Gates {
  minRequests: number;
  maxErrorRatio: number;
  maxP95LatencyMs: number;
  maxMemoryRatio: number;
  countTelegramLimits: boolean;
  ignoredErrorCodes: readonly string[];
}

export type GateValues = AnalysisRecord['canary'];

export interface Verdict {
  verdict: 'Passed' | 'Failed' | 'Inconclusive';
  metric?: 'memoryRatio' | 'requests' | 'errorRatio' | 'p95LatencyMs' | 'scrape';
  message: string;
  canary: GateValues;
  stable?: GateValues;
}

// The runtime's metric names (runtime/tdlib/metrics-hooks.ts, runtime/metrics.ts).
const REQUESTS = 'tdlib_requests_total';
const ERRORS = 'tdlib_errors_total';
const DURATION_BUCKET = 'tdlib_request_duration_seconds_bucket';
const RESIDENT_MEMORY = 'process_resident_memory_bytes';
const MEMORY_LIMIT = 'tdlib_runtime_memory_limit_bytes';

const P95 = 0.95;

/** What one set of pods (stable or canary) measured between `previous` and `current`. */
export function windowValues(
  previous: readonly PodScrape[],
  current: readonly PodScrape[],
  set: 'stable' | 'canary',
  gates: Gates,
): GateValues {
  const scrapes = podsOf(current, set);
  const baselines = new Map(previous.map((scrape) => [scrape.pod, scrape.samples]));
  const deltas = scrapes.flatMap((scrape) => counterDeltas(baselines.get(scrape.pod), scrape.samples));
  // Counters count whole requests; rounding only keeps the schema's integer when a float slipped in.
  const requests = Math.round(sum(deltas, (s) => s.name === REQUESTS));
  const errors = sum(deltas, (s) => s.name === ERRORS && isCountedError(s.labels, gates));
  const p95Seconds = histogramQuantile(P95, bucketCounts(deltas));
  const memory = memoryPeak(scrapes);
  return {
    pods: scrapes.length,
    requests,
    ...(requests > 0 && { errorRatio: errors / requests }),
    ...(p95Seconds !== undefined && { p95LatencyMs: roundToTenth(p95Seconds * 1000) }),
    ...(memory !== undefined && { memoryRatio: memory.ratio }),
  };
}

/**
 * Judges the canary from two scrapes of every runtime pod: the interval's values of each set, then judge().
 */
export function analyze(
  previous: readonly PodScrape[],
  current: readonly PodScrape[],
  gates: Gates,
): Verdict {
  const canary = windowValues(previous, current, 'canary', gates);
  const stableValues = windowValues(previous, current, 'stable', gates);
  const stable = stableValues.pods > 0 ? stableValues : undefined;
  return judge(canary, stable, gates, { memoryPod: memoryPeak(podsOf(current, 'canary'))?.pod });
}

/**
 * Judges the canary's values of an interval against the gates, whatever measured them (the pods' own
 * /metrics, or a Prometheus query): no canary measured, then memory, then too little traffic, then the
 * error ratio, then the P95 latency; the first that decides wins. `stable` is undefined when no stable pod
 * was measured; `memoryPod`, when known, is the canary pod with the highest memory ratio, named in a
 * memory failure.
 */
export function judge(
  canary: GateValues,
  stable: GateValues | undefined,
  gates: Gates,
  context: { memoryPod?: string | undefined } = {},
): Verdict {
  const values = { canary, ...(stable !== undefined && { stable }) };
  const verdict = (v: Pick<Verdict, 'verdict' | 'metric' | 'message'>): Verdict => ({ ...v, ...values });

  if (canary.pods === 0)
    return verdict({
      verdict: 'Inconclusive',
      metric: 'scrape',
      message: 'no canary pod could be scraped in the interval: inconclusive, holding the step',
    });

  if (canary.memoryRatio !== undefined && canary.memoryRatio > gates.maxMemoryRatio) {
    // Memory is judged before traffic: a leak shows on an idle canary too, and waiting for traffic
    // could let it reach the OOM killer first.
    const [value, limit] = comparable(canary.memoryRatio * 100, gates.maxMemoryRatio * 100, 0);
    const pod = context.memoryPod !== undefined ? ` (pod ${context.memoryPod})` : '';
    return verdict({
      verdict: 'Failed',
      metric: 'memoryRatio',
      message: `canary memory ${value}% of its limit > ${limit}%${pod}`,
    });
  }

  if (canary.requests < gates.minRequests)
    // An idle canary is not a failed one: too few requests say nothing about the version.
    return verdict({
      verdict: 'Inconclusive',
      metric: 'requests',
      message:
        `canary answered ${canary.requests} TDLib ${canary.requests === 1 ? 'request' : 'requests'} ` +
        `in the interval, fewer than minRequests ${gates.minRequests}: inconclusive, holding the step`,
    });

  const errorRatio = judgeGate({
    metric: 'errorRatio',
    label: 'error ratio',
    canary: canary.errorRatio,
    stable: comparableStable(stable, gates)?.errorRatio,
    stableShown: stable?.errorRatio,
    threshold: gates.maxErrorRatio,
    shown: { scale: 100, digits: 1, unit: '%' },
  });
  if (errorRatio !== undefined) return verdict(errorRatio);

  const latency = judgeGate({
    metric: 'p95LatencyMs',
    label: 'P95 latency',
    canary: canary.p95LatencyMs,
    stable: comparableStable(stable, gates)?.p95LatencyMs,
    stableShown: stable?.p95LatencyMs,
    threshold: gates.maxP95LatencyMs,
    shown: { scale: 1, digits: 0, unit: ' ms' },
  });
  if (latency !== undefined) return verdict(latency);

  return verdict({ verdict: 'Passed', message: passedMessage(canary, gates) });
}

/** The stable values when the stable set answered enough requests to say anything, else undefined. */
function comparableStable(stable: GateValues | undefined, gates: Gates): GateValues | undefined {
  return stable !== undefined && stable.requests >= gates.minRequests ? stable : undefined;
}

interface GateInput {
  metric: 'errorRatio' | 'p95LatencyMs';
  label: string;
  canary: number | undefined;
  /** The stable value when the stable set answered enough requests to be compared with, else undefined. */
  stable: number | undefined;
  /** The stable value to show in the message, whatever its traffic. */
  stableShown: number | undefined;
  threshold: number;
  /** How values print: multiplied by `scale`, with at least `digits` decimals, then `unit`. */
  shown: { scale: number; digits: number; unit: string };
}

/**
 * Failed when the canary is over the threshold; Inconclusive when the stable version, with enough traffic,
 * is over it too (both versions failing alike is not the new version's fault: a Telegram outage, a slow
 * datacenter); undefined when the gate passes or has no value.
 */
function judgeGate(gate: GateInput): Pick<Verdict, 'verdict' | 'metric' | 'message'> | undefined {
  if (gate.canary === undefined || !(gate.canary > gate.threshold)) return undefined;
  const { scale, unit } = gate.shown;
  const digits = comparableDigits(gate.canary * scale, gate.threshold * scale, gate.shown.digits);
  const show = (value: number) => `${(value * scale).toFixed(digits)}${unit}`;
  const canary = `canary ${gate.label} ${show(gate.canary)} > ${show(gate.threshold)}`;
  if (gate.stable !== undefined && gate.stable > gate.threshold)
    return {
      verdict: 'Inconclusive',
      metric: gate.metric,
      message: `${canary}, but stable ${show(gate.stable)} is over it too: both versions fail alike, inconclusive, holding the step`,
    };
  return {
    verdict: 'Failed',
    metric: gate.metric,
    message: gate.stableShown === undefined ? canary : `${canary} (stable ${show(gate.stableShown)})`,
  };
}

function passedMessage(canary: GateValues, gates: Gates): string {
  const parts = [`canary passed: ${canary.requests} TDLib requests`];
  if (canary.errorRatio !== undefined)
    parts.push(
      `error ratio ${(canary.errorRatio * 100).toFixed(1)}% <= ${(gates.maxErrorRatio * 100).toFixed(1)}%`,
    );
  if (canary.p95LatencyMs !== undefined)
    parts.push(`P95 latency ${Math.round(canary.p95LatencyMs)} ms <= ${gates.maxP95LatencyMs} ms`);
  if (canary.memoryRatio !== undefined)
    parts.push(`memory ${Math.round(canary.memoryRatio * 100)}% of its limit`);
  return parts.join(', ');
}

/**
 * The fewest decimals, from `digits`, that keep `value` and `threshold` apart when printed: 500.4 ms over a
 * 500 ms gate must not read "500 ms > 500 ms".
 */
function comparableDigits(value: number, threshold: number, digits: number): number {
  let d = digits;
  while (d < 6 && value !== threshold && value.toFixed(d) === threshold.toFixed(d)) d++;
  return d;
}

function comparable(value: number, threshold: number, digits: number): [string, string] {
  const d = comparableDigits(value, threshold, digits);
  return [value.toFixed(d), threshold.toFixed(d)];
}

function podsOf(scrapes: readonly PodScrape[], set: 'stable' | 'canary'): PodScrape[] {
  // One scrape per pod: a pod listed twice must not count twice.
  const byPod = new Map<string, PodScrape>();
  for (const scrape of scrapes) if (scrape.set === set) byPod.set(scrape.pod, scrape);
  return [...byPod.values()];
}

function seriesKey(sample: Sample): string {
  const labels = Object.entries(sample.labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify([sample.name, labels]);
}

/**
 * Each series' increase since `previous`. Without a baseline (a pod new in this interval) nothing can be
 * told apart from what it counted before, so there is no increase. A series absent from the baseline was
 * created in the interval (prom-client creates a labelled series on its first increment), so all of it is
 * increase; a series that went down belongs to a restarted process, which counted it from zero.
 */
function counterDeltas(previous: readonly Sample[] | undefined, current: readonly Sample[]): Sample[] {
  if (previous === undefined) return [];
  const before = new Map(previous.map((sample) => [seriesKey(sample), sample.value]));
  const deltas: Sample[] = [];
  for (const sample of current) {
    if (!Number.isFinite(sample.value)) continue;
    const old = before.get(seriesKey(sample));
    const increase =
      old !== undefined && Number.isFinite(old) && sample.value >= old ? sample.value - old : sample.value;
    deltas.push({ ...sample, value: increase });
  }
  return deltas;
}

/** Errors that speak about the version: not Telegram's limits on the account, not codes the pool ignores. */
function isCountedError(labels: Readonly<Record<string, string>>, gates: Gates): boolean {
  if (!gates.countTelegramLimits && (labels.telegram_limit ?? '') !== '') return false;
  return !gates.ignoredErrorCodes.includes(labels.code ?? '');
}

function sum(samples: readonly Sample[], include: (sample: Sample) => boolean): number {
  let total = 0;
  for (const sample of samples) if (include(sample)) total += sample.value;
  return total;
}

export interface Bucket {
  upperBound: number;
  count: number;
}

/** Cumulative bucket counts summed by upper bound over every method and pod, as `sum by (le)` does. */
function bucketCounts(deltas: readonly Sample[]): Bucket[] {
  const byBound = new Map<number, number>();
  for (const sample of deltas) {
    if (sample.name !== DURATION_BUCKET) continue;
    const upperBound = parseBound(sample.labels.le);
    if (upperBound === undefined) continue;
    byBound.set(upperBound, (byBound.get(upperBound) ?? 0) + sample.value);
  }
  return [...byBound].map(([upperBound, count]) => ({ upperBound, count }));
}

function parseBound(le: string | undefined): number | undefined {
  if (le === undefined || le === '') return undefined;
  if (le === '+Inf' || le === 'Inf') return Infinity;
  const bound = Number(le);
  return Number.isNaN(bound) ? undefined : bound;
}

/**
 * The `q` quantile of cumulative `buckets`, as Prometheus' histogram_quantile computes it: linear
 * interpolation inside the bucket the rank falls in, 0 as the lower bound of the first bucket, and the
 * highest finite bound when the rank falls in the +Inf bucket (nothing better is known there). Undefined
 * without observations or without a +Inf bucket (the total is unknown then).
 */
export function histogramQuantile(q: number, buckets: readonly Bucket[]): number | undefined {
  const sorted = [...buckets].sort((a, b) => a.upperBound - b.upperBound);
  const last = sorted.at(-1);
  if (last === undefined || last.upperBound !== Infinity || sorted.length < 2) return undefined;
  // Deltas of buckets reset at different moments, or bounds only some pods have, can break cumulativeness;
  // Prometheus evens that out the same way.
  let running = 0;
  const cumulative = sorted.map((b) => ({
    upperBound: b.upperBound,
    count: (running = Math.max(running, b.count)),
  }));
  const observations = running;
  if (!(observations > 0)) return undefined;
  let rank = q * observations;
  const index = cumulative.findIndex((b) => b.count >= rank);
  if (index === cumulative.length - 1) return cumulative[index - 1]?.upperBound;
  const bucket = cumulative[index];
  if (bucket === undefined) return undefined;
  if (index === 0 && bucket.upperBound <= 0) return bucket.upperBound;
  const below = cumulative[index - 1];
  const start = below?.upperBound ?? 0;
  const count = bucket.count - (below?.count ?? 0);
  rank -= below?.count ?? 0;
  return start + (bucket.upperBound - start) * (rank / count);
}

/** The pod of the set using the largest share of its memory limit; pods without a limit cannot be judged. */
function memoryPeak(scrapes: readonly PodScrape[]): { ratio: number; pod: string } | undefined {
  let peak: { ratio: number; pod: string } | undefined;
  for (const scrape of scrapes) {
    const resident = gauge(scrape.samples, RESIDENT_MEMORY);
    const limit = gauge(scrape.samples, MEMORY_LIMIT);
    if (resident === undefined || limit === undefined || !(limit > 0)) continue;
    const ratio = resident / limit;
    if (peak === undefined || ratio > peak.ratio) peak = { ratio, pod: scrape.pod };
  }
  return peak;
}

function gauge(samples: readonly Sample[], name: string): number | undefined {
  const value = samples.find((sample) => sample.name === name)?.value;
  return value !== undefined && Number.isFinite(value) ? value : undefined;
}

/** Rounded to one decimal: multiplying back by 0.1 would print 612.3000000000001. */
function roundToTenth(value: number): number {
  return Math.round(value * 10) / 10;
}
