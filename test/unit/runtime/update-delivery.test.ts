import {
  DEFAULT_POLICY,
  afterTry,
  parseRetryAfter,
  plan,
  retryDelayMs,
  verdictOf,
  type OutboxEntry,
} from '../../../runtime/updates/delivery.js';

const T0 = 1_000_000;
let seq = 0;
const entry = (chat: string, extra: Partial<OutboxEntry> = {}): OutboxEntry => ({
  seq: ++seq,
  kind: 'MessageNew',
  chat,
  enqueuedAt: T0,
  attempts: 0,
  notBefore: 0,
  ...extra,
});

describe('verdictOf: what a sink answer means', () => {
  it('accepts any 2xx', () => {
    for (const status of [200, 202, 204])
      expect(verdictOf(status, undefined, T0)).toEqual({ outcome: 'delivered' });
  });

  it('retries no answer, 5xx and the 4xx a receiver can recover from', () => {
    for (const status of [undefined, 404, 408, 409, 429, 500, 503])
      expect(verdictOf(status, undefined, T0).outcome).toBe('retry');
  });

  it('does not retry other 4xx (the request itself is wrong for this receiver)', () => {
    for (const status of [400, 401, 403, 410, 413, 422])
      expect(verdictOf(status, undefined, T0).outcome).toBe('rejected');
  });

  it('reads Retry-After as seconds or as an HTTP date', () => {
    expect(verdictOf(503, '7', T0)).toEqual({ outcome: 'retry', reason: 'HTTP 503', retryAfterMs: 7000 });
    const at = new Date(T0 + 30_000).toUTCString();
    expect(parseRetryAfter(at, T0)).toBe(30_000);
    expect(parseRetryAfter('soon', T0)).toBeUndefined();
    expect(parseRetryAfter(new Date(T0 - 5000).toUTCString(), T0)).toBe(0);
  });
});

describe('retryDelayMs: backoff', () => {
  const retry = { outcome: 'retry' as const, reason: 'HTTP 503' };

  it('waits 1 s, doubling per failure, then a random 60-120 s', () => {
    expect([1, 2, 3, 4, 5, 6].map((n) => retryDelayMs(n, retry, DEFAULT_POLICY, 0))).toEqual([
      1000, 2000, 4000, 8000, 16000, 32000,
    ]);
    expect(retryDelayMs(7, retry, DEFAULT_POLICY, 0)).toBe(60_000);
    expect(retryDelayMs(30, retry, DEFAULT_POLICY, 0.999)).toBeCloseTo(119_940);
  });

  it('honours Retry-After instead, clamped to an hour', () => {
    expect(retryDelayMs(1, { ...retry, retryAfterMs: 90_000 }, DEFAULT_POLICY, 0)).toBe(90_000);
    expect(retryDelayMs(1, { ...retry, retryAfterMs: 86_400_000 }, DEFAULT_POLICY, 0)).toBe(3_600_000);
  });
});

describe('afterTry', () => {
  it('schedules the next try, or expires the event when that try would come after its lifetime', () => {
    const message = entry('1');
    expect(afterTry(message, { outcome: 'retry', reason: 'HTTP 503' }, T0, DEFAULT_POLICY, 0)).toEqual({
      outcome: 'retry',
      notBefore: T0 + 1000,
      reason: 'HTTP 503',
    });
    const query = entry('1', { kind: 'CallbackQuery' });
    const verdict = afterTry(
      query,
      { outcome: 'retry', reason: 'HTTP 503', retryAfterMs: 200_000 },
      T0,
      DEFAULT_POLICY,
      0,
    );
    expect(verdict.outcome).toBe('expired');
  });

  it('passes delivered and rejected through', () => {
    expect(afterTry(entry('1'), { outcome: 'delivered' }, T0, DEFAULT_POLICY, 0)).toEqual({
      outcome: 'delivered',
    });
    expect(afterTry(entry('1'), { outcome: 'rejected', reason: 'HTTP 400' }, T0, DEFAULT_POLICY, 0)).toEqual({
      outcome: 'rejected',
      reason: 'HTTP 400',
    });
  });
});

describe('plan: order within a chat, chats in parallel', () => {
  it('sends only the head of each chat, oldest head first, within the parallel limit', () => {
    const a1 = entry('a');
    const a2 = entry('a');
    const b1 = entry('b');
    const c1 = entry('c');
    const result = plan([a1, a2, b1, c1], new Set(), T0, { ...DEFAULT_POLICY, maxParallelChats: 2 });
    expect(result.send).toEqual([a1, b1]);
    expect(result.expired).toEqual([]);
  });

  it('sends nothing more of a chat while one of its events is in flight', () => {
    const a1 = entry('a');
    const b1 = entry('b');
    expect(plan([a1, b1], new Set(['a']), T0, DEFAULT_POLICY).send).toEqual([b1]);
  });

  it('keeps a chat whose head waits for its retry behind it, and says when to wake', () => {
    const a1 = entry('a', { attempts: 3, notBefore: T0 + 4000 });
    const a2 = entry('a');
    const b1 = entry('b');
    const result = plan([a1, a2, b1], new Set(), T0, DEFAULT_POLICY);
    expect(result.send).toEqual([b1]);
    expect(result.wakeAt).toBe(T0 + 4000);
  });

  it('drops an expired head and lets the next event of its chat go in the same plan', () => {
    const old = entry('a', { kind: 'CallbackQuery', enqueuedAt: T0 - 200_000 });
    const next = entry('a');
    const result = plan([old, next], new Set(), T0, DEFAULT_POLICY);
    expect(result.expired).toEqual([old]);
    expect(result.send).toEqual([next]);
  });

  it('one failing chat never holds back the others', () => {
    const stuck = Array.from({ length: 50 }, () => entry('slow', { attempts: 9, notBefore: T0 + 60_000 }));
    const others = ['x', 'y', 'z'].map((chat) => entry(chat));
    const result = plan([...stuck, ...others], new Set(), T0, DEFAULT_POLICY);
    expect(result.send).toEqual(others);
  });
});
