/**
 * A sender's pace (runtime/sending/rate.ts): the token bucket in messages per minute and the per-day counter
 * behind perSenderDailyLimit. Every clock is a number or a Date passed in: no timers, no sleeps.
 */
import { DailyCounter, TokenBucket, dayOf } from '../../../runtime/sending/rate.js';

const T0 = 1_800_000_000_000;
const SECOND = 1000;
const MINUTE = 60 * SECOND;

/**
 * Runs a sender loop the way the campaign sender does: take as many as it may, then wait what the bucket
 * says (or `tick` when it says 0). Returns how many were taken, and when, over `durationMs`.
 */
function drive(bucket: TokenBucket, durationMs: number, tick = 50): number[] {
  const taken: number[] = [];
  let now = T0;
  while (now <= T0 + durationMs) {
    const n = bucket.take(1000, now);
    for (let i = 0; i < n; i++) taken.push(now);
    now += bucket.waitMs(now) || tick;
  }
  return taken;
}

describe('TokenBucket', () => {
  it.each([1, 7, 20, 60, 61, 600, 1000])(
    'never sends faster than %i per minute, and keeps that pace',
    (rate) => {
      const minutes = 10;
      const taken = drive(new TokenBucket(rate, T0), minutes * MINUTE);
      const burst = Math.max(1, rate / 60);
      // One token at the start, then the rate: no more, and (the loop always wanting more) hardly fewer.
      expect(taken.length).toBeLessThanOrEqual(Math.floor(rate * minutes + 1));
      expect(taken.length).toBeGreaterThanOrEqual(rate * minutes - burst);
      // Over any minute, never more than a minute's worth plus the burst.
      let most = 0;
      for (let i = 0, j = 0; i < taken.length; i++) {
        while ((taken[j] ?? Infinity) < (taken[i] ?? 0) + MINUTE) j++;
        most = Math.max(most, j - i);
      }
      expect(most).toBeLessThanOrEqual(Math.ceil(rate + burst));
    },
  );

  it('starts with one token, whatever the rate', () => {
    for (const rate of [1, 60, 600, 6000]) {
      const bucket = new TokenBucket(rate, T0);
      expect(bucket.take(1000, T0)).toBe(1);
      expect(bucket.take(1000, T0)).toBe(0);
    }
  });

  it.each<[rate: number, idleMs: number, burst: number]>([
    [20, 60 * MINUTE, 1],
    [60, 60 * MINUTE, 1],
    [600, 60 * MINUTE, 10],
    [3000, 60 * MINUTE, 50],
    [600, 500, 5], // half a second refills half the burst
  ])('at %i per minute, after %i ms idle, allows a burst of %i', (rate, idleMs, burst) => {
    const bucket = new TokenBucket(rate, T0);
    bucket.take(1, T0);
    expect(bucket.take(10_000, T0 + idleMs)).toBe(burst);
    expect(bucket.take(10_000, T0 + idleMs)).toBe(0);
  });

  it('honours a burst given to it', () => {
    const bucket = new TokenBucket(60, T0, 5);
    expect(bucket.take(10, T0)).toBe(1);
    expect(bucket.take(10, T0 + MINUTE)).toBe(5);
  });

  it('says how long until the next token, and that token is there once the wait is over', () => {
    const bucket = new TokenBucket(60, T0);
    expect(bucket.waitMs(T0)).toBe(0);
    bucket.take(1, T0);
    expect(bucket.waitMs(T0)).toBe(1000);
    expect(bucket.waitMs(T0 + 400)).toBe(600);
    expect(bucket.take(1, T0 + 999)).toBe(0);
    expect(bucket.take(1, T0 + 1000)).toBe(1);

    // With rates that do not divide a minute, from any fraction of a token: the wait is never short.
    for (const rate of [1, 3, 7, 13, 17, 59, 61, 97, 333, 999]) {
      const b = new TokenBucket(rate, T0);
      let now = T0;
      for (let k = 0; k < 50; k++) {
        now += 137 * k; // an arbitrary partial refill
        b.take(1000, now);
        now += b.waitMs(now);
        expect(b.take(1, now)).toBe(1);
      }
    }
  });

  it('takes only what is asked, and nothing for a non-positive want', () => {
    const bucket = new TokenBucket(600, T0);
    bucket.take(1, T0);
    expect(bucket.take(0, T0 + MINUTE)).toBe(0);
    expect(bucket.take(-3, T0 + MINUTE)).toBe(0);
    expect(bucket.take(4, T0 + MINUTE)).toBe(4);
    expect(bucket.take(100, T0 + MINUTE)).toBe(6);
  });

  it('counts the time before a rate change at the old rate and the time after at the new one', () => {
    // 6 per minute: half a token after 5 s. Raised to 600 per minute then: 50 ms more make a whole one.
    const raised = new TokenBucket(6, T0);
    raised.take(1, T0);
    raised.setRate(600, T0 + 5 * SECOND);
    expect(raised.take(100, T0 + 5 * SECOND + 49)).toBe(0);
    expect(raised.take(100, T0 + 5 * SECOND + 50)).toBe(1);
    expect(raised.take(100, T0 + 6 * SECOND + 50)).toBe(10);

    // Lowered from 600 to 60 per minute: what had accumulated shrinks to the new burst, and the pace slows.
    const lowered = new TokenBucket(600, T0);
    lowered.take(1, T0);
    lowered.setRate(60, T0 + MINUTE);
    expect(lowered.take(100, T0 + MINUTE)).toBe(1);
    expect(lowered.waitMs(T0 + MINUTE)).toBe(1000);
    expect(lowered.take(100, T0 + MINUTE + 999)).toBe(0);
  });

  it('keeps its state when told the same rate again', () => {
    const bucket = new TokenBucket(60, T0, 5);
    bucket.take(1, T0);
    for (let t = T0; t <= T0 + 10 * SECOND; t += SECOND) bucket.setRate(60, t);
    // The custom burst and the 10 s of refill are both still there.
    expect(bucket.take(100, T0 + 10 * SECOND)).toBe(5);
  });

  it('gives nothing for a clock that went backwards, and does not go into debt', () => {
    const bucket = new TokenBucket(60, T0);
    bucket.take(1, T0);
    expect(bucket.take(10, T0 - 5 * SECOND)).toBe(0);
    expect(bucket.waitMs(T0 - 5 * SECOND)).toBe(1000);
    expect(bucket.take(10, T0 - 4 * SECOND)).toBe(1);
  });
});

describe('dayOf', () => {
  it.each<[iso: string, timeZone: string | undefined, day: string]>([
    ['2026-03-01T00:00:00Z', undefined, '2026-03-01'],
    ['2026-02-28T23:59:59Z', 'UTC', '2026-02-28'],
    ['2026-03-01T04:59:59Z', 'America/New_York', '2026-02-28'],
    ['2026-03-01T05:00:00Z', 'America/New_York', '2026-03-01'],
    ['2026-03-01T14:59:59Z', 'Asia/Tokyo', '2026-03-01'],
    ['2026-03-01T15:00:00Z', 'Asia/Tokyo', '2026-03-02'],
    ['2026-03-01T18:14:59Z', 'Asia/Kathmandu', '2026-03-01'],
    ['2026-03-01T18:15:00Z', 'Asia/Kathmandu', '2026-03-02'],
    ['2026-12-31T10:00:00Z', 'Pacific/Kiritimati', '2027-01-01'],
  ])('%s in %s is %s', (iso, timeZone, day) => {
    expect(dayOf(new Date(iso), timeZone)).toBe(day);
  });
});

describe('DailyCounter', () => {
  it('adds up sends within a day and starts from zero on the next', () => {
    const daily = new DailyCounter();
    const morning = new Date('2026-03-01T08:00:00Z');
    expect(daily.used(morning)).toBe(0);
    daily.add(morning);
    daily.add(morning, 4);
    expect(daily.used(morning)).toBe(5);
    expect(daily.used(new Date('2026-03-01T23:59:59Z'))).toBe(5);
    const next = new Date('2026-03-02T00:00:00Z');
    expect(daily.used(next)).toBe(0);
    daily.add(next, 2);
    expect(daily.used(next)).toBe(2);
    // The previous day's count is gone, not brought back.
    expect(daily.used(morning)).toBe(0);
  });

  it.each<[timeZone: string, lastOfDay: string, firstOfNext: string]>([
    ['UTC', '2026-03-07T23:59:59Z', '2026-03-08T00:00:00Z'],
    ['Europe/Berlin', '2026-03-07T22:59:59Z', '2026-03-07T23:00:00Z'],
    ['Asia/Tokyo', '2026-03-07T14:59:59Z', '2026-03-07T15:00:00Z'],
    // New York moves to daylight saving time on 2026-03-08: that day starts at 05:00Z and ends at 04:00Z.
    ['America/New_York', '2026-03-08T04:59:59Z', '2026-03-08T05:00:00Z'],
    ['America/New_York', '2026-03-09T03:59:59Z', '2026-03-09T04:00:00Z'],
  ])('in %s, rolls over at local midnight', (timeZone, lastOfDay, firstOfNext) => {
    const daily = new DailyCounter(timeZone);
    const last = new Date(lastOfDay);
    const first = new Date(firstOfNext);
    // Counted from an hour before the end of the day.
    daily.add(new Date(last.getTime() - 3600_000), 3);
    daily.add(last, 2);
    expect(daily.used(last)).toBe(5);
    expect(daily.used(first)).toBe(0);
    daily.add(first);
    expect(daily.used(first)).toBe(1);
  });
});
