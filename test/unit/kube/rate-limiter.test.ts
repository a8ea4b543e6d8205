import { describe, expect, it } from '@jest/globals';
import {
  BucketRateLimiter,
  ItemExponentialFailureRateLimiter,
  MaxOfRateLimiter,
  defaultControllerRateLimiter,
} from '../../../operator/kube/rate-limiter.js';

describe('ItemExponentialFailureRateLimiter', () => {
  it('doubles per failure from the base, caps at the maximum, and is per item', () => {
    const limiter = new ItemExponentialFailureRateLimiter<string>(5, 1_000_000);
    expect([1, 2, 3, 4, 5].map(() => limiter.when('a'))).toEqual([5, 10, 20, 40, 80]);
    expect(limiter.when('b')).toBe(5);
    expect(limiter.numRequeues('a')).toBe(5);
    for (let i = 0; i < 100; i++) limiter.when('a');
    expect(limiter.when('a')).toBe(1_000_000);
  });

  it('starts over after forget', () => {
    const limiter = new ItemExponentialFailureRateLimiter<string>(5, 1000);
    limiter.when('a');
    limiter.when('a');
    limiter.forget('a');
    expect(limiter.numRequeues('a')).toBe(0);
    expect(limiter.when('a')).toBe(5);
  });
});

describe('BucketRateLimiter', () => {
  it('lets a burst through, then spaces requests at 1/qps and refills over time', () => {
    let now = 0;
    const limiter = new BucketRateLimiter<string>(10, 100, () => now);
    for (let i = 0; i < 100; i++) expect(limiter.when('x')).toBe(0);
    // Tokens are now exhausted: each further reservation waits one more 100 ms slot.
    expect(limiter.when('x')).toBeCloseTo(100);
    expect(limiter.when('x')).toBeCloseTo(200);
    now += 300; // repays the debt (-2 tokens) and earns one more
    expect(limiter.when('x')).toBe(0);
    expect(limiter.when('x')).toBeCloseTo(100);
    now += 100_000; // refill is capped at the burst
    for (let i = 0; i < 100; i++) expect(limiter.when('x')).toBe(0);
    expect(limiter.when('x')).toBeGreaterThan(0);
  });
});

describe('MaxOfRateLimiter / defaultControllerRateLimiter', () => {
  it('takes the longest delay of its limiters', () => {
    let now = 0;
    const limiter = new MaxOfRateLimiter<string>(
      new ItemExponentialFailureRateLimiter<string>(5, 1_000_000),
      new BucketRateLimiter<string>(1, 1, () => now),
    );
    expect(limiter.when('a')).toBe(5); // bucket had a token; exponential says 5
    expect(limiter.when('b')).toBe(1000); // bucket empty: 1 s at 1 qps beats 5 ms
    now = 10_000;
    expect(limiter.when('a')).toBe(10);
    expect(limiter.numRequeues('a')).toBe(2);
    limiter.forget('a');
    expect(limiter.numRequeues('a')).toBe(0);
  });

  it('is client-go default: 5 ms per-item base, 10 qps / burst 100 overall', () => {
    const now = 0;
    const limiter = defaultControllerRateLimiter<string>(() => now);
    const delays = Array.from({ length: 100 }, (_, i) => limiter.when(`item-${i}`));
    expect(new Set(delays)).toEqual(new Set([5]));
    expect(limiter.when('item-100')).toBeCloseTo(100);
  });
});
