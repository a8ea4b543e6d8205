import { describe, expect, it } from '@jest/globals';
import { DeadlineQueue, type Expirable } from '../../runtime/tdlib/deadlines.js';

class Item implements Expirable {
  settled = false;
  constructor(
    readonly name: string,
    readonly deadline: number,
  ) {}
}

async function until(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 2));
}

describe('DeadlineQueue', () => {
  it('expires only unsettled items, earliest deadline first, across different timeouts', async () => {
    const expired: string[] = [];
    const queue = new DeadlineQueue<Item>((item) => expired.push(item.name));
    const now = performance.now();
    const slow = new Item('slow', now + 60);
    const fast = new Item('fast', now + 20);
    const answered = new Item('answered', now + 20);
    queue.add(slow, 60);
    queue.add(fast, 20);
    queue.add(answered, 20);
    answered.settled = true;
    queue.settled(20);
    await until(() => expired.length === 2, 2_000);
    expect(expired).toEqual(['fast', 'slow']);
    queue.clear();
  });

  it('does not hold answered items behind a slow one indefinitely', () => {
    const queue = new DeadlineQueue<Item>(() => undefined);
    const now = performance.now();
    const slow = new Item('slow', now + 60_000);
    queue.add(slow, 60_000);
    for (let i = 0; i < 100_000; i++) {
      const item = new Item(`i${i}`, now + 60_000);
      queue.add(item, 60_000);
      item.settled = true;
      queue.settled(60_000);
    }
    const fifo = (queue as unknown as { queues: Map<number, { items: unknown[]; live: number }> }).queues.get(
      60_000,
    );
    expect(fifo?.live).toBe(1);
    expect(fifo?.items.length).toBeLessThan(10_000);
    queue.clear();
  });
});
