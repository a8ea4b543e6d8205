/**
 * Statistics of the soak benchmark, pure: the least-squares slope of a sampled series (RSS, heap, handles,
 * ...) after the warm-up, with a 95% confidence interval, in units per real hour and per simulated day.
 *
 * Samples taken every few seconds are autocorrelated (RSS does not forget between two scrapes), and the
 * textbook interval assumes independent residuals, so it would call random wander a trend. The interval is
 * widened for lag-1 autocorrelation of the residuals (AR(1): the effective sample size is
 * n (1 - r) / (1 + r)), which keeps "indistinguishable from zero" honest without a long model.
 */

export interface Sample {
  /** Milliseconds since the start of the run. */
  t: number;
  v: number;
}

export interface LinearFit {
  n: number;
  /** Units per millisecond. */
  slope: number;
  intercept: number;
  /** Standard error of the slope, already widened for autocorrelation when that was asked for. */
  slopeStdErr: number;
  /** Lag-1 autocorrelation of the residuals (0 with fewer than 3 points). */
  lag1: number;
  /** Degrees of freedom behind the interval. */
  df: number;
  /** Half-width of the 95% interval of the slope, units per millisecond. */
  ci95HalfWidth: number;
}

const Z975 = 1.959963984540054;

/**
 * The 0.975 quantile of Student's t with `df` degrees of freedom (two-sided 95%). Exact for 1 and 2;
 * above that the Cornish-Fisher expansion around the normal quantile, within 0.002 of the tables from df 3.
 */
export function tQuantile975(df: number): number {
  if (!(df > 0)) return Number.POSITIVE_INFINITY;
  if (df < 1.5) return 12.706204736174698;
  if (df < 2.5) return 4.302652729749464;
  const z = Z975;
  const z3 = z ** 3;
  const z5 = z ** 5;
  const z7 = z ** 7;
  const z9 = z ** 9;
  return (
    z +
    (z3 + z) / (4 * df) +
    (5 * z5 + 16 * z3 + 3 * z) / (96 * df ** 2) +
    (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / (384 * df ** 3) +
    (79 * z9 + 776 * z7 + 1482 * z5 - 1920 * z3 - 945 * z) / (92160 * df ** 4)
  );
}

/** Ordinary least squares of v on t; `autocorrelation` (default true) widens the interval for AR(1) noise. */
export function linearFit(
  samples: readonly Sample[],
  options: { autocorrelation?: boolean } = {},
): LinearFit {
  const n = samples.length;
  if (n < 2) {
    const v = samples[0]?.v ?? 0;
    return { n, slope: 0, intercept: v, slopeStdErr: Infinity, lag1: 0, df: 0, ci95HalfWidth: Infinity };
  }
  const meanT = samples.reduce((s, p) => s + p.t, 0) / n;
  const meanV = samples.reduce((s, p) => s + p.v, 0) / n;
  let sxx = 0;
  let sxy = 0;
  for (const p of samples) {
    sxx += (p.t - meanT) ** 2;
    sxy += (p.t - meanT) * (p.v - meanV);
  }
  if (sxx === 0) {
    return { n, slope: 0, intercept: meanV, slopeStdErr: Infinity, lag1: 0, df: 0, ci95HalfWidth: Infinity };
  }
  const slope = sxy / sxx;
  const intercept = meanV - slope * meanT;
  const residuals = samples.map((p) => p.v - (intercept + slope * p.t));
  const sse = residuals.reduce((s, r) => s + r * r, 0);
  if (n < 3) return { n, slope, intercept, slopeStdErr: Infinity, lag1: 0, df: 0, ci95HalfWidth: Infinity };
  let lag1 = 0;
  if (sse > 0) {
    let cross = 0;
    for (let i = 1; i < n; i++) cross += (residuals[i] ?? 0) * (residuals[i - 1] ?? 0);
    lag1 = cross / sse;
  }
  let stdErr = Math.sqrt(sse / (n - 2) / sxx);
  let df = n - 2;
  if ((options.autocorrelation ?? true) && lag1 > 0) {
    // Capped: a series that is all trend-free drift (r -> 1) would otherwise get an infinite interval.
    const r = Math.min(lag1, 0.95);
    stdErr *= Math.sqrt((1 + r) / (1 - r));
    df = Math.max(1, (n * (1 - r)) / (1 + r) - 2);
  }
  return { n, slope, intercept, slopeStdErr: stdErr, lag1, df, ci95HalfWidth: tQuantile975(df) * stdErr };
}

/**
 * The samples after the warm-up: the first `fraction` of the run, or `minMs`, whichever is longer (start-up
 * allocations, caches filling and JIT would read as growth). The run spans first to last sample.
 */
export function afterWarmup(
  samples: readonly Sample[],
  options: { fraction?: number; minMs?: number } = {},
): Sample[] {
  if (samples.length === 0) return [];
  const first = samples[0]?.t ?? 0;
  const last = samples[samples.length - 1]?.t ?? 0;
  const cut = first + Math.max((last - first) * (options.fraction ?? 0.2), options.minMs ?? 60_000);
  return samples.filter((s) => s.t >= cut);
}

export interface SlopeSummary {
  /** First and last value after the warm-up. */
  start: number;
  end: number;
  samples: number;
  slope_per_hour: number;
  /** 95% interval of the slope per real hour, [low, high]. */
  ci95_per_hour: [number, number];
  /** The same slope per simulated day: the run compresses one day into its `dayMs`. */
  slope_per_sim_day: number;
  ci95_per_sim_day: [number, number];
  /** Whether 0 lies inside the 95% interval: no growth that the noise could not explain. */
  zero_in_ci: boolean;
}

const HOUR_MS = 3_600_000;

const round = (x: number, digits: number): number => (Number.isFinite(x) ? Number(x.toFixed(digits)) : x);

/** Slope of one series after its warm-up, per real hour and per simulated day (`dayMs` of wall time). */
export function summarizeSeries(
  samples: readonly Sample[],
  options: { dayMs: number; warmupFraction?: number; warmupMinMs?: number; digits?: number },
): SlopeSummary {
  const kept = afterWarmup(samples, { fraction: options.warmupFraction, minMs: options.warmupMinMs });
  const fit = linearFit(kept);
  const digits = options.digits ?? 3;
  const per = (scale: number): { slope: number; ci: [number, number] } => ({
    slope: round(fit.slope * scale, digits),
    ci: [
      round((fit.slope - fit.ci95HalfWidth) * scale, digits),
      round((fit.slope + fit.ci95HalfWidth) * scale, digits),
    ],
  });
  const hour = per(HOUR_MS);
  const day = per(options.dayMs);
  return {
    start: round(kept[0]?.v ?? Number.NaN, digits),
    end: round(kept[kept.length - 1]?.v ?? Number.NaN, digits),
    samples: kept.length,
    slope_per_hour: hour.slope,
    ci95_per_hour: hour.ci,
    slope_per_sim_day: day.slope,
    ci95_per_sim_day: day.ci,
    zero_in_ci: fit.slope - fit.ci95HalfWidth <= 0 && 0 <= fit.slope + fit.ci95HalfWidth,
  };
}

/**
 * What the slopes leave out as the warm-up: the first fifth of the day, at least a minute (summarizeSeries'
 * default). Over several days, every day before the last as well: the first day carries start-up growth (JIT,
 * caches, V8 sizing its heap; measured), and each later day starts with V8 regrowing the heap that the full
 * collections reading the live heap between days gave back, which the last day's first fifth absorbs.
 */
export function soakWarmup(days: number): { fraction: number; label: string } {
  return days > 1
    ? {
        fraction: (days - 1 + 0.2) / days,
        label: `${days > 2 ? `the first ${days - 1} simulated days` : 'the first simulated day'} and 20% of the last`,
      }
    : { fraction: 0.2, label: 'first 20% of the churn, at least 60 s' };
}

/**
 * How much a reading grew during each day: day 1 from the reading before the churn, every later day from the
 * day before. Start-up growth shows in day 1 only; a leak shows in every day. Null where a reading is missing.
 */
export function growthByDay(
  before: number | undefined,
  afterEachDay: ReadonlyArray<number | undefined>,
): Array<number | null> {
  return afterEachDay.map((after, i) => {
    const from = i === 0 ? before : afterEachDay[i - 1];
    return from === undefined || after === undefined ? null : after - from;
  });
}
