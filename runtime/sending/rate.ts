/**
 * Pace as pure arithmetic on a clock passed in: a token bucket in messages per minute (a sender never sends
 * faster, whatever the backlog), and a day counter for the per-sender daily limit.
 */

/** Tokens refill continuously at `perMinute`; at most `burst` accumulate (a second's worth, at least one). */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private perMinute: number,
    now: number,
    private burst = Math.max(1, perMinute / 60),
  ) {
    this.tokens = Math.min(1, this.burst);
    this.last = now;
  }

  setRate(perMinute: number, now: number): void {
    if (perMinute === this.perMinute) return;
    this.refill(now);
    this.perMinute = perMinute;
    this.burst = Math.max(1, perMinute / 60);
    this.tokens = Math.min(this.tokens, this.burst);
  }

  private refill(now: number): void {
    const elapsed = Math.max(0, now - this.last);
    this.last = now;
    this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.perMinute) / 60_000);
  }

  /** Takes up to `want` whole tokens now; returns how many were taken. */
  take(want: number, now: number): number {
    this.refill(now);
    const n = Math.max(0, Math.min(want, Math.floor(this.tokens)));
    this.tokens -= n;
    return n;
  }

  /** Milliseconds until one token is available (0 when one is). */
  waitMs(now: number): number {
    this.refill(now);
    if (this.tokens >= 1) return 0;
    return Math.ceil(((1 - this.tokens) * 60_000) / this.perMinute);
  }
}

/** The calendar day of `at` in `timeZone` ("YYYY-MM-DD"). */
export function dayOf(at: Date, timeZone = 'UTC'): string {
  return new Intl.DateTimeFormat('en-CA', {
    timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
  }).format(at);
}

/** Sends counted per day; a new day starts from zero. */
export class DailyCounter {
  private day = '';
  private count = 0;

  constructor(private readonly timeZone = 'UTC') {}

  /** Sends so far on the day of `at`. */
  used(at: Date): number {
    return dayOf(at, this.timeZone) === this.day ? this.count : 0;
  }

  add(at: Date, n = 1): void {
    const day = dayOf(at, this.timeZone);
    if (day !== this.day) {
      this.day = day;
      this.count = 0;
    }
    this.count += n;
  }
}
