import {
  afterWarmup,
  growthByDay,
  linearFit,
  soakWarmup,
  summarizeSeries,
  tQuantile975,
  type Sample,
} from '../../bench/soak-stats.js';

const HOUR = 3_600_000;
const series = (values: number[], stepMs = 1): Sample[] => values.map((v, i) => ({ t: i * stepMs, v }));

describe('the t quantile behind the 95% interval', () => {
  it('matches the tables (two-sided 95%)', () => {
    expect(tQuantile975(1)).toBeCloseTo(12.706, 3);
    expect(tQuantile975(2)).toBeCloseTo(4.303, 3);
    expect(tQuantile975(3)).toBeCloseTo(3.182, 2);
    expect(tQuantile975(5)).toBeCloseTo(2.571, 2);
    expect(tQuantile975(10)).toBeCloseTo(2.228, 3);
    expect(tQuantile975(30)).toBeCloseTo(2.042, 3);
    expect(tQuantile975(1000)).toBeCloseTo(1.962, 3);
  });

  it('is infinite without degrees of freedom', () => {
    expect(tQuantile975(0)).toBe(Number.POSITIVE_INFINITY);
  });
});

describe('the least-squares slope', () => {
  it('is exact on a line, with a zero-width interval', () => {
    const fit = linearFit(series([1, 3, 5, 7, 9]));
    expect(fit.slope).toBeCloseTo(2);
    expect(fit.intercept).toBeCloseTo(1);
    expect(fit.ci95HalfWidth).toBeCloseTo(0);
  });

  it('gives the textbook interval for independent residuals', () => {
    // x 1..5, y 2 4 5 4 5: slope 0.6, intercept 2.2, SSE 2.4, s.e. sqrt(0.8 / 10) = 0.2828, t(3) = 3.182.
    const points = [2, 4, 5, 4, 5].map((v, i) => ({ t: i + 1, v }));
    const fit = linearFit(points, { autocorrelation: false });
    expect(fit.slope).toBeCloseTo(0.6);
    expect(fit.intercept).toBeCloseTo(2.2);
    expect(fit.slopeStdErr).toBeCloseTo(0.2828, 4);
    expect(fit.df).toBe(3);
    expect(fit.ci95HalfWidth).toBeCloseTo(0.9, 2);
  });

  it('widens the interval when the residuals are positively autocorrelated', () => {
    // A slow wave around a flat line: neighbours agree, so n samples carry less than n independent facts.
    const wave = series(Array.from({ length: 60 }, (_, i) => 100 + 5 * Math.sin(i / 6)));
    const plain = linearFit(wave, { autocorrelation: false });
    const widened = linearFit(wave);
    expect(widened.lag1).toBeGreaterThan(0.8);
    expect(widened.ci95HalfWidth).toBeGreaterThan(2 * plain.ci95HalfWidth);
    expect(widened.df).toBeLessThan(plain.df);
  });

  it('has no interval with fewer than three points or no spread in time', () => {
    expect(linearFit(series([5])).ci95HalfWidth).toBe(Infinity);
    expect(linearFit(series([5, 6])).ci95HalfWidth).toBe(Infinity);
    expect(
      linearFit([
        { t: 1, v: 1 },
        { t: 1, v: 2 },
        { t: 1, v: 3 },
      ]).slope,
    ).toBe(0);
  });
});

describe('the warm-up', () => {
  it('drops the first 20% of the run when that is longer than the minimum', () => {
    const samples = series(
      Array.from({ length: 101 }, (_, i) => i),
      10_000,
    ); // 1,000 s
    const kept = afterWarmup(samples, { fraction: 0.2, minMs: 60_000 });
    expect(kept[0]?.t).toBe(200_000);
    expect(kept).toHaveLength(81);
  });

  it('drops at least the minimum on a short run', () => {
    const samples = series(
      Array.from({ length: 37 }, (_, i) => i),
      5_000,
    ); // 3 minutes
    const kept = afterWarmup(samples, { fraction: 0.2, minMs: 60_000 });
    expect(kept[0]?.t).toBe(60_000);
    expect(kept).toHaveLength(25);
  });

  it('keeps nothing of nothing', () => {
    expect(afterWarmup([])).toEqual([]);
  });

  it('is every day but the last, and the first fifth of the last, in a run of several days', () => {
    // Three 10-minute days sampled every 5 s: growth through day 1, then every day a drop to 105 at its start
    // (the full collections between days) and a regrowth over its first two minutes, then flat.
    const dayMs = 10 * 60_000;
    const samples: Sample[] = [];
    for (let t = 0; t < 3 * dayMs; t += 5_000) {
      const inDay = t % dayMs;
      const v = t < dayMs ? 100 + t / 60_000 : 105 + Math.min(inDay, 120_000) / 24_000;
      samples.push({ t, v });
    }
    const several = summarizeSeries(samples, { dayMs, warmupFraction: soakWarmup(3).fraction });
    expect(several.start).toBeCloseTo(110, 6);
    expect(several.slope_per_hour).toBeCloseTo(0, 6);
    expect(soakWarmup(3).label).toBe('the first 2 simulated days and 20% of the last');
    expect(soakWarmup(2).fraction).toBeCloseTo(0.6, 9);
    expect(soakWarmup(2).label).toBe('the first simulated day and 20% of the last');
    // The same series read as one long day keeps day 1's growth and the regrowths in its slope.
    const single = summarizeSeries(samples, { dayMs: 3 * dayMs, warmupFraction: soakWarmup(1).fraction });
    expect(single.slope_per_hour).toBeGreaterThan(1);
    expect(soakWarmup(1).fraction).toBe(0.2);
  });
});

describe('growth by day', () => {
  it('counts day 1 from before the churn and every later day from the day before', () => {
    const growth = growthByDay(40, [41.9, 42.2, 41.9]);
    expect(growth.map((g) => (g === null ? null : Number(g.toFixed(1))))).toEqual([1.9, 0.3, -0.3]);
  });

  it('has no figure for a day next to a missing reading', () => {
    expect(growthByDay(undefined, [41, undefined, 43])).toEqual([null, null, null]);
    expect(growthByDay(40, [41, 42])).toEqual([1, 1]);
  });
});

describe('a series summary', () => {
  it('reports the slope per real hour and per simulated day, and whether zero is inside the interval', () => {
    // 30 minutes sampled every 10 s, growing 2 units per real hour after a warm-up jump, no noise.
    const samples: Sample[] = [];
    for (let t = 0; t <= 30 * 60_000; t += 10_000)
      samples.push({ t, v: (t < 60_000 ? 0 : 50) + (2 * t) / HOUR });
    const summary = summarizeSeries(samples, { dayMs: 30 * 60_000 });
    expect(summary.slope_per_hour).toBeCloseTo(2, 3);
    // The run compresses a day into 30 minutes: 2 per hour of wall time is 1 per simulated day.
    expect(summary.slope_per_sim_day).toBeCloseTo(1, 3);
    expect(summary.start).toBeCloseTo(50 + (2 * 360_000) / HOUR, 3);
    expect(summary.end).toBeCloseTo(51, 3);
    expect(summary.zero_in_ci).toBe(false);
    expect(summary.samples).toBe(145);
  });

  it('calls a flat noisy series indistinguishable from zero', () => {
    let seed = 7;
    const noise = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31 - 0.5;
    };
    const samples = series(
      Array.from({ length: 200 }, () => 100 + noise()),
      5_000,
    );
    const summary = summarizeSeries(samples, { dayMs: 1000 * 5_000 });
    expect(summary.zero_in_ci).toBe(true);
    expect(summary.ci95_per_hour[0]).toBeLessThan(0);
    expect(summary.ci95_per_hour[1]).toBeGreaterThan(0);
  });
});
