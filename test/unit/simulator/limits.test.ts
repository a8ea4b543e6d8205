import { describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AccountState, checkPeerFlood, fullBucket, takeToken } from '../../../runtime/simulator/limits.js';
import { Scheduler } from '../../../runtime/simulator/scheduler.js';
import { waitFor } from '../../cluster/wait.js';

describe('token buckets', () => {
  const limit = { per_second: 2, burst: 3 };

  it('allows a burst, then says how long to wait', () => {
    const bucket = fullBucket(limit, 0);
    expect([
      takeToken(bucket, limit, 0, false),
      takeToken(bucket, limit, 0, false),
      takeToken(bucket, limit, 0, false),
    ]).toEqual([0, 0, 0]);
    expect(takeToken(bucket, limit, 0, false)).toBeCloseTo(0.5);
    expect(takeToken(bucket, limit, 250, false)).toBeCloseTo(0.25);
    expect(takeToken(bucket, limit, 500, false)).toBe(0);
  });

  it('reserves future tokens so queued messages line up behind each other', () => {
    const bucket = fullBucket({ per_second: 1, burst: 1 }, 0);
    expect(takeToken(bucket, { per_second: 1, burst: 1 }, 0, true)).toBe(0);
    expect(takeToken(bucket, { per_second: 1, burst: 1 }, 0, true)).toBeCloseTo(1);
    expect(takeToken(bucket, { per_second: 1, burst: 1 }, 0, true)).toBeCloseTo(2);
  });
});

describe('PEER_FLOOD', () => {
  it('restricts an account that writes to too many new strangers until the window ends', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sim-acc-'));
    try {
      const state = AccountState.load(dir, 1);
      expect(checkPeerFlood(state, 10, 2, 60, 0)).toBe('ok');
      expect(checkPeerFlood(state, 11, 2, 60, 1000)).toBe('ok');
      expect(checkPeerFlood(state, 12, 2, 60, 2000)).toBe('peer_flood');
      expect(checkPeerFlood(state, 10, 2, 60, 3000)).toBe('ok');
      expect(checkPeerFlood(state, 13, 2, 60, 59_000)).toBe('peer_flood');
      expect(checkPeerFlood(state, 13, 2, 60, 61_000)).toBe('ok');
      state.save();
      const reloaded = AccountState.load(dir, 1);
      expect([...reloaded.strangers.keys()]).toEqual([13]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('persists counters and flood buckets across restarts', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sim-acc-'));
    try {
      const state = AccountState.load(dir, 7);
      state.nextMessageId = 42;
      state.chatBucket(99, { per_second: 1, burst: 1 }, Date.now()).tokens = -3;
      state.dirty = true;
      state.save();
      const reloaded = AccountState.load(dir, 7);
      expect(reloaded.nextMessageId).toBe(42);
      expect(reloaded.chatBuckets.get(99)?.tokens).toBe(-3);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('scheduler', () => {
  it('runs tasks by due time, keeping insertion order for equal times, then flushes once', async () => {
    let now = 1000;
    const order: string[] = [];
    let flushes = 0;
    const scheduler = new Scheduler(
      () => now,
      () => flushes++,
    );
    scheduler.at(1000, () => order.push('a'));
    scheduler.at(990, () => order.push('b'));
    scheduler.at(1000, () => order.push('c'));
    scheduler.at(1005, () => order.push('late'));
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual(['b', 'a', 'c']);
    expect(flushes).toBe(1);
    now = 1010;
    await new Promise((r) => setTimeout(r, 20));
    expect(order).toEqual(['b', 'a', 'c', 'late']);
    scheduler.close();
  });

  it('runs at most its budget of work per turn and the rest, in order, in the next turns', async () => {
    const order: number[] = [];
    let flushes = 0;
    const scheduler = new Scheduler(
      () => 0,
      () => flushes++,
      4,
    );
    const busy = (ms: number): void => {
      const end = performance.now() + ms;
      while (performance.now() < end);
    };
    for (let i = 0; i < 10; i++)
      scheduler.at(0, () => {
        busy(1.5);
        order.push(i);
      });
    await new Promise((r) => setImmediate(r));
    // 1.5 ms or more each against a 4 ms budget: the turn ends by the third task (sooner if preempted).
    expect(order.length).toBeGreaterThanOrEqual(1);
    expect(order.length).toBeLessThanOrEqual(3);
    expect(flushes).toBe(1);
    await waitFor('every task', () => (order.length === 10 ? true : undefined), {
      timeoutMs: 5000,
      intervalMs: 1,
    });
    expect(order).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(flushes).toBeGreaterThanOrEqual(4);
    scheduler.close();
  });

  it('never runs tasks added while draining in the same turn', async () => {
    const order: number[] = [];
    const scheduler = new Scheduler(
      () => 0,
      () => undefined,
    );
    scheduler.at(0, () => {
      order.push(1);
      scheduler.at(0, () => order.push(2));
    });
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual([1]);
    await new Promise((r) => setImmediate(r));
    expect(order).toEqual([1, 2]);
    scheduler.close();
  });
});
