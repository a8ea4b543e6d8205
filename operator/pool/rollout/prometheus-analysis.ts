/**
 * Rollout analysis from Prometheus (spec.rollout.analysis.prometheus): instead of scraping every runtime pod
 * itself, the operator asks a Prometheus that scrapes them (the chart's PodMonitor) for the increase of the
 * canary pods' and the stable pods' series over the interval, and judges them as the direct path does
 * (analysis.ts judge()).
 *
 * What Prometheus leaves out is absent, never 0: an empty result counts no requests and gives no ratio, and
 * NaN (no observations in the window) gives no value, so an unmeasured canary holds the step as inconclusive
 * (fluxcd/flagger#1098: without traffic a query's NaN read as 0 and passed its threshold). A Prometheus that
 * cannot be reached or answers an error is inconclusive too, never a failure (argoproj/argo-rollouts#1466: an
 * empty result errored the analysis and aborted the rollout).
 */
import { canaryName, runtimeName } from '../../../crds/naming.js';
import { judge, type Gates, type GateValues, type Verdict } from './analysis.js';

export type RolloutQueryName = 'pods' | 'requests' | 'errors' | 'p95' | 'memory';
export type RolloutSet = 'canary' | 'stable';
/** One instant query per value per set; see rolloutQueries(). */
export type RolloutQueries = Record<RolloutSet, Record<RolloutQueryName, string>>;

export interface RolloutQueryInput {
  /** The pool's namespace. */
  namespace: string;
  /** RE2 regex of the canary pods' names (podRegexes().canary); Prometheus anchors it. */
  canaryPodRegex: string;
  /** RE2 regex of the stable pods' names (podRegexes().stable). */
  stablePodRegex: string;
  /** The analysis interval, in seconds: the range of every increase(). */
  windowSeconds: number;
  gates: Gates;
  /** The label naming the pod on runtime series (what the PodMonitor sets; default "pod"). */
  podLabel: string;
  /** The label naming the pod's namespace on runtime series (default "namespace"). */
  namespaceLabel: string;
}

// The runtime's metric names (runtime/tdlib/metrics-hooks.ts, runtime/metrics.ts), as analysis.ts reads them.
const REQUESTS = 'tdlib_requests_total';
const ERRORS = 'tdlib_errors_total';
const DURATION_BUCKET = 'tdlib_request_duration_seconds_bucket';
const RESIDENT_MEMORY = 'process_resident_memory_bytes';
const MEMORY_LIMIT = 'tdlib_runtime_memory_limit_bytes';

/** A string with every RE2 metacharacter escaped, so it matches itself only. */
export function escapeRegex(text: string): string {
  return text.replace(/[\\.+*?()|[\]{}^$]/g, '\\$&');
}

/** `value` as a PromQL double-quoted string literal (Go escapes). */
export function promqlString(value: string): string {
  const escaped = value.replace(/[\\"\n\r\t]/g, (c) =>
    c === '\n' ? '\\n' : c === '\r' ? '\\r' : c === '\t' ? '\\t' : `\\${c}`,
  );
  return `"${escaped}"`;
}

/**
 * The pods of a pool's two StatefulSets (crds/naming.ts): `tdlib-canary-<pool>-N` and `tdlib-runtime-<pool>-N`,
 * as regexes Prometheus anchors. The two never overlap, not even across pools.
 */
export function podRegexes(pool: string): Record<RolloutSet, string> {
  return {
    canary: `${escapeRegex(canaryName(pool))}-[0-9]+`,
    stable: `${escapeRegex(runtimeName(pool))}-[0-9]+`,
  };
}

/**
 * The instant queries of one analysis: per set, how many pods Prometheus has series of, the TDLib requests
 * and the counted errors (without Telegram's limits unless countTelegramLimits, without ignoredErrorCodes) in
 * the window, the P95 request duration in seconds from the histogram, and the highest resident memory /
 * memory limit of a pod. Pure.
 */
export function rolloutQueries(input: RolloutQueryInput): RolloutQueries {
  const ns = input.namespaceLabel;
  const pod = input.podLabel;
  const window = `[${Math.max(1, Math.round(input.windowSeconds))}s]`;
  const errorMatchers = [
    ...(input.gates.countTelegramLimits ? [] : ['telegram_limit=""']),
    ...(input.gates.ignoredErrorCodes.length > 0
      ? [`code!~${promqlString(input.gates.ignoredErrorCodes.map(escapeRegex).join('|'))}`]
      : []),
  ];
  const queries = (podRegex: string): Record<RolloutQueryName, string> => {
    const selector = (extra: readonly string[] = []) =>
      `{${[`${ns}=${promqlString(input.namespace)}`, `${pod}=~${promqlString(podRegex)}`, ...extra].join(', ')}}`;
    const byPod = `by (${ns}, ${pod})`;
    return {
      // One per pod, even when two targets (a PodMonitor and a ServiceMonitor) scrape it.
      pods: `count(count ${byPod} (${RESIDENT_MEMORY}${selector()}))`,
      requests: `sum(increase(${REQUESTS}${selector()}${window}))`,
      errors: `sum(increase(${ERRORS}${selector(errorMatchers)}${window}))`,
      p95: `histogram_quantile(0.95, sum by (le) (increase(${DURATION_BUCKET}${selector()}${window})))`,
      // A pod without a limit (absent, or 0) cannot be judged, as on the direct path.
      memory:
        `max(max ${byPod} (${RESIDENT_MEMORY}${selector()}) / on(${ns}, ${pod}) ` +
        `max ${byPod} (${MEMORY_LIMIT}${selector()} > 0))`,
    };
  };
  return { canary: queries(input.canaryPodRegex), stable: queries(input.stablePodRegex) };
}

/** GETs `url` and resolves with its JSON body; rejects when the server cannot be reached. */
export type PrometheusFetch = (url: string, signal: AbortSignal) => Promise<unknown>;

const fetchJson: PrometheusFetch = async (url, signal) => {
  const response = await fetch(url, { signal, headers: { accept: 'application/json' } });
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`HTTP ${response.status}: ${oneLine(text, 200) || 'empty body'}`);
  }
  // Prometheus answers a bad query with 400/422 and an error body, which run() reports; any other non-2xx
  // answer (a proxy's 502, a wrong path's 404) is about the server, not the query.
  if (!response.ok && !(isRecord(body) && body.status === 'error'))
    throw new Error(`HTTP ${response.status} ${response.statusText}`.trim());
  return body;
};

/** One value per query; undefined is absent (empty result, NaN or infinite). */
type Values = Record<RolloutQueryName, number | undefined>;

/** The longest message an AnalysisRecord takes (crds/runtime-pool.ts). */
const MAX_MESSAGE = 1024;

/** The address with any user:password@ part masked (a URL may carry credentials). */
export function withoutCredentials(address: string): string {
  return address.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, '$1***@');
}

export class PrometheusAnalysis {
  constructor(private readonly options: { fetch?: PrometheusFetch; timeoutMs?: number } = {}) {}

  /**
   * Runs `queries` (rolloutQueries()) on the Prometheus at `address` and judges the canary against the stable
   * pods. Never rejects: a Prometheus that cannot be reached or answers an error gives Inconclusive 'scrape'.
   */
  async run(address: string, queries: RolloutQueries, gates: Gates): Promise<Verdict> {
    // Status and Events show the address; credentials someone put into it must not go with it.
    const shown = withoutCredentials(address);
    let canaryValues: Values;
    let stableValues: Values;
    try {
      [canaryValues, stableValues] = await Promise.all([
        this.queryAll(address, 'canary', queries.canary),
        this.queryAll(address, 'stable', queries.stable),
      ]);
    } catch (error) {
      return {
        verdict: 'Inconclusive',
        metric: 'scrape',
        message: clamp(
          `Prometheus at ${shown} could not be queried (${oneLine(reason(error).split(address).join(shown), 600)}): ` +
            'inconclusive, holding the step',
        ),
        canary: { pods: 0, requests: 0 },
      };
    }
    const canary = gateValues(canaryValues);
    const stableMeasured = gateValues(stableValues);
    const stable = stableMeasured.pods > 0 ? stableMeasured : undefined;
    if (canary.pods === 0)
      return {
        verdict: 'Inconclusive',
        metric: 'scrape',
        message: clamp(
          `Prometheus at ${shown} has no series of a canary pod (${queries.canary.pods} is empty): ` +
            'is it scraping the runtime pods? inconclusive, holding the step',
        ),
        canary,
        ...(stable !== undefined && { stable }),
      };
    return judge(canary, stable, gates);
  }

  private async queryAll(
    address: string,
    set: RolloutSet,
    queries: Record<RolloutQueryName, string>,
  ): Promise<Values> {
    const names = Object.keys(queries) as RolloutQueryName[];
    const values = await Promise.all(
      names.map(async (name) => {
        try {
          return await this.query(address, queries[name]);
        } catch (error) {
          throw new Error(`${set} ${name}: ${reason(error)}`, { cause: error });
        }
      }),
    );
    return Object.fromEntries(names.map((name, i) => [name, values[i]])) as Values;
  }

  /** One instant query's single value; undefined when the result is empty or not a finite number. */
  private async query(address: string, expr: string): Promise<number | undefined> {
    const url = `${address.replace(/\/+$/, '')}/api/v1/query?query=${encodeURIComponent(expr)}`;
    const fetchIt = this.options.fetch ?? fetchJson;
    const body = await fetchIt(url, AbortSignal.timeout(this.options.timeoutMs ?? 10_000));
    if (!isRecord(body)) throw new Error('not a Prometheus query answer');
    if (body.status !== 'success') {
      const type = typeof body.errorType === 'string' ? body.errorType : 'error';
      const detail = typeof body.error === 'string' ? body.error : 'no detail';
      throw new Error(`${type}: ${detail}`);
    }
    const data = body.data;
    if (!isRecord(data)) throw new Error('a Prometheus answer without data');
    if (data.resultType === 'scalar') return sampleValue(data.result);
    if (data.resultType !== 'vector' || !Array.isArray(data.result))
      throw new Error(`result type ${String(data.resultType)}, want a vector`);
    const series: unknown[] = data.result;
    if (series.length === 0) return undefined;
    if (series.length > 1) throw new Error(`${series.length} series, want at most one`);
    const first = series[0];
    return isRecord(first) ? sampleValue(first.value) : undefined;
  }
}

/** What one set measured, as the direct path records it (analysis.ts windowValues). */
function gateValues(values: Values): GateValues {
  // increase() extrapolates to the window's edges; the schema and the direct path count whole requests.
  const requests = Math.max(0, Math.round(values.requests ?? 0));
  const errors = Math.max(0, Math.round(values.errors ?? 0));
  return {
    pods: Math.max(0, Math.round(values.pods ?? 0)),
    requests,
    ...(requests > 0 && { errorRatio: errors / requests }),
    ...(values.p95 !== undefined && { p95LatencyMs: roundToTenth(values.p95 * 1000) }),
    ...(values.memory !== undefined && { memoryRatio: values.memory }),
  };
}

/** A sample's `[time, "value"]` as a finite number; NaN and ±Inf are absent, never 0. */
function sampleValue(sample: unknown): number | undefined {
  if (!Array.isArray(sample) || typeof sample[1] !== 'string') return undefined;
  const value = Number(sample[1]);
  return Number.isFinite(value) ? value : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * An error's message with its cause (fetch's "fetch failed" says nothing without "connect ECONNREFUSED").
 * Duck-typed: an error from another realm (a VM context, a worker) is no `instanceof Error` here.
 */
function reason(error: unknown): string {
  const message = messageOf(error);
  const cause = isErrorLike(error) && error.cause !== undefined ? messageOf(error.cause) : '';
  return cause !== '' && !message.includes(cause) ? `${message}: ${cause}` : message;
}

function isErrorLike(value: unknown): value is { message: string; cause?: unknown } {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { message?: unknown }).message === 'string'
  );
}

function messageOf(error: unknown): string {
  return isErrorLike(error) ? error.message : String(error);
}

function oneLine(text: string, max: number): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

function clamp(message: string): string {
  return message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE - 1)}…` : message;
}

/** Rounded to one decimal, as analysis.ts records P95s. */
function roundToTenth(value: number): number {
  return Math.round(value * 10) / 10;
}
