import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { createRegistry, metricValue } from '../../../operator/kube/metrics.js';
import { ItemExponentialFailureRateLimiter, type RateLimiter } from '../../../operator/kube/rate-limiter.js';
import { WorkQueue } from '../../../operator/kube/workqueue.js';

function newQueue(options: { rateLimiter?: RateLimiter<string> } = {}) {
  const registry = createRegistry();
  const queue = new WorkQueue<string>({ name: 'test', registry, ...options });
  return { queue, registry };
}

/** Takes whatever is immediately available, without waiting. */
async function drainNow(queue: WorkQueue<string>): Promise<string[]> {
  const taken: string[] = [];
  while (queue.len() > 0) {
    const key = await queue.get();
    if (key === undefined) break;
    taken.push(key);
  }
  return taken;
}

afterEach(() => {
  jest.useRealTimers();
});

describe('WorkQueue', () => {
  it('hands out a key added several times once', async () => {
    const { queue, registry } = newQueue();
    queue.add('a');
    queue.add('b');
    queue.add('a');
    queue.add('a');
    expect(queue.len()).toBe(2);
    expect(await drainNow(queue)).toEqual(['a', 'b']);
    expect(await metricValue(registry, 'workqueue_adds_total', { name: 'test', controller: 'test' })).toBe(2);
    queue.shutDown();
  });

  it('does not hand out a key that is being processed; re-adds run after done()', async () => {
    const { queue } = newQueue();
    queue.add('a');
    const first = await queue.get();
    expect(first).toBe('a');
    queue.add('a');
    queue.add('a');
    queue.add('b');
    // 'a' is dirty but held: only 'b' may be taken now.
    expect(await queue.get()).toBe('b');
    let second: string | undefined;
    void queue.get().then((key) => (second = key));
    await Promise.resolve();
    expect(second).toBeUndefined();
    queue.done('b');
    await Promise.resolve();
    expect(second).toBeUndefined();
    queue.done('a');
    await Promise.resolve();
    expect(second).toBe('a');
    queue.done('a');
    expect(queue.len()).toBe(0);
    queue.shutDown();
  });

  it('never lets two workers hold one key, and processes every key after its last add', async () => {
    const { queue } = newQueue();
    const keys = ['k0', 'k1', 'k2', 'k3', 'k4'];
    const held = new Set<string>();
    const lastAdd = new Map<string, number>();
    const lastStart = new Map<string, number>();
    let tick = 0;
    let overlaps = 0;
    const workers = Array.from({ length: 8 }, async () => {
      for (;;) {
        const key = await queue.get();
        if (key === undefined) return;
        if (held.has(key)) overlaps++;
        held.add(key);
        lastStart.set(key, ++tick);
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 3));
        held.delete(key);
        queue.done(key);
      }
    });
    for (let i = 0; i < 400; i++) {
      const key = keys[i % keys.length] as string;
      lastAdd.set(key, ++tick);
      queue.add(key);
      if (i % 7 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
    }
    await queue.shutDownWithDrain();
    await Promise.all(workers);
    expect(overlaps).toBe(0);
    // Level-triggered guarantee: every key was (re)processed after the last time it was added.
    for (const key of keys) expect(lastStart.get(key) ?? 0).toBeGreaterThan(lastAdd.get(key) ?? 0);
  });

  it('puts low-priority keys behind normal ones and promotes a low key added at normal priority', async () => {
    const { queue } = newQueue();
    queue.add('low-1', { priority: 'low' });
    queue.add('low-2', { priority: 'low' });
    queue.add('low-3', { priority: 'low' });
    queue.add('normal-1');
    queue.add('low-2'); // promoted
    queue.add('normal-2', { priority: 'low' });
    queue.add('normal-2', { priority: 'normal' });
    expect(await drainNow(queue)).toEqual(['normal-1', 'low-2', 'normal-2', 'low-1', 'low-3']);
    queue.shutDown();
  });

  it('keeps a re-added low key at normal priority when it was promoted while being processed', async () => {
    const { queue } = newQueue();
    queue.add('x', { priority: 'low' });
    expect(await queue.get()).toBe('x');
    queue.add('x', { priority: 'low' });
    queue.add('y', { priority: 'low' });
    queue.add('x');
    queue.done('x');
    expect(await drainNow(queue)).toEqual(['x', 'y']);
    queue.shutDown();
  });

  it('delays addAfter keys and keeps the earliest time for a key delayed twice', async () => {
    jest.useFakeTimers({ now: 1_000_000 });
    const { queue } = newQueue();
    queue.addAfter('late', 500);
    queue.addAfter('early', 100);
    queue.addAfter('late', 200); // earlier than 500: wins
    queue.addAfter('early', 1000); // later than 100: ignored
    expect(queue.len()).toBe(0);
    jest.advanceTimersByTime(99);
    expect(queue.len()).toBe(0);
    jest.advanceTimersByTime(1);
    expect(queue.len()).toBe(1);
    expect(await queue.get()).toBe('early');
    jest.advanceTimersByTime(100);
    expect(await queue.get()).toBe('late');
    queue.done('early');
    queue.done('late');
    // The superseded 500 ms and 1000 ms entries must not fire again.
    jest.advanceTimersByTime(2000);
    expect(queue.len()).toBe(0);
    queue.shutDown();
  });

  it('rate-limits re-adds with per-key exponential backoff and forgets on success', async () => {
    jest.useFakeTimers({ now: 0 });
    const { queue, registry } = newQueue({
      rateLimiter: new ItemExponentialFailureRateLimiter<string>(10, 1000),
    });
    const delays: number[] = [];
    for (let attempt = 0; attempt < 4; attempt++) {
      const before = Date.now();
      queue.addRateLimited('a');
      // Advance until the key shows up; record how long that took.
      while (queue.len() === 0) jest.advanceTimersByTime(1);
      delays.push(Date.now() - before);
      expect(await queue.get()).toBe('a');
      queue.done('a');
    }
    expect(delays).toEqual([10, 20, 40, 80]);
    expect(queue.numRequeues('a')).toBe(4);
    expect(await metricValue(registry, 'workqueue_retries_total', { name: 'test' })).toBe(4);
    queue.forget('a');
    expect(queue.numRequeues('a')).toBe(0);
    const before = Date.now();
    queue.addRateLimited('a');
    while (queue.len() === 0) jest.advanceTimersByTime(1);
    expect(Date.now() - before).toBe(10);
    queue.shutDown();
  });

  it('honours a minimum delay for rate-limited adds (Retry-After)', () => {
    jest.useFakeTimers({ now: 0 });
    const { queue } = newQueue({ rateLimiter: new ItemExponentialFailureRateLimiter<string>(5, 1000) });
    queue.addRateLimited('a', { atLeastMs: 3000 });
    jest.advanceTimersByTime(2999);
    expect(queue.len()).toBe(0);
    jest.advanceTimersByTime(1);
    expect(queue.len()).toBe(1);
    queue.shutDown();
  });

  it('shutDown wakes waiting workers with undefined and ignores later adds', async () => {
    const { queue } = newQueue();
    const waiting = [queue.get(), queue.get()];
    queue.shutDown();
    expect(await Promise.all(waiting)).toEqual([undefined, undefined]);
    queue.add('a');
    expect(queue.len()).toBe(0);
    expect(await queue.get()).toBeUndefined();
  });

  it('shutDownWithDrain hands out what is queued, waits for done(), then returns undefined', async () => {
    const { queue } = newQueue();
    queue.add('a');
    queue.add('b');
    expect(await queue.get()).toBe('a');
    let drained = false;
    const drain = queue.shutDownWithDrain().then(() => (drained = true));
    queue.add('c'); // ignored: shutting down
    expect(await queue.get()).toBe('b');
    expect(await queue.get()).toBeUndefined();
    queue.done('a');
    await Promise.resolve();
    expect(drained).toBe(false);
    queue.done('b');
    await drain;
    expect(drained).toBe(true);
  });

  it('exports depth and in-flight time gauges for live queues only', async () => {
    const { queue, registry } = newQueue();
    queue.add('a');
    queue.add('b');
    expect(await metricValue(registry, 'workqueue_depth', { name: 'test' })).toBe(2);
    await queue.get();
    expect(await metricValue(registry, 'workqueue_depth', { name: 'test' })).toBe(1);
    expect(
      await metricValue(registry, 'workqueue_longest_running_processor_seconds', { name: 'test' }),
    ).toBeGreaterThanOrEqual(0);
    queue.shutDown();
    const text = await registry.metrics();
    expect(text).not.toMatch(/workqueue_depth\{/);
    expect(text).toMatch(/workqueue_adds_total\{name="test",controller="test"\} 2/);
  });
});
