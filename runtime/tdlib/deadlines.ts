/**
 * Request deadlines without one timer per request. At 100k requests/s a setTimeout/clearTimeout pair per
 * request is a measurable share of the JS thread, and requests with the same timeout expire in the order
 * they were sent, so a FIFO per timeout value plus one armed timer does the same job in O(1) amortized.
 */

export interface Expirable {
  /** Absolute deadline, in performance.now() milliseconds. */
  readonly deadline: number;
  /** True once answered: the queue then just drops the entry when it reaches it. */
  readonly settled: boolean;
}

class Fifo<T extends Expirable> {
  private items: (T | undefined)[] = [];
  private head = 0;
  live = 0;

  push(item: T): void {
    this.items.push(item);
    this.live++;
  }

  peek(): T | undefined {
    this.skipSettled();
    return this.items[this.head];
  }

  shift(): T | undefined {
    this.skipSettled();
    const item = this.items[this.head];
    if (item === undefined) return undefined;
    this.items[this.head++] = undefined;
    this.live--;
    this.maybeCompact();
    return item;
  }

  /** Called when an item settled early, so the backlog of answered entries cannot grow without bound. */
  noteSettled(): void {
    this.live--;
    this.skipSettled();
    this.maybeCompact();
  }

  private skipSettled(): void {
    let item = this.items[this.head];
    while (item !== undefined && item.settled) {
      this.items[this.head++] = undefined;
      item = this.items[this.head];
    }
  }

  // One slow request at the head would otherwise pin every answered entry behind it until its deadline.
  private maybeCompact(): void {
    const length = this.items.length - this.head;
    if (length === 0) {
      this.items.length = 0;
      this.head = 0;
    } else if (this.head > 4096 && this.head > length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    } else if (length > 4096 && length > 4 * (this.live + 256)) {
      this.items = this.items.slice(this.head).filter((item) => item !== undefined && !item.settled);
      this.head = 0;
    }
  }
}

export class DeadlineQueue<T extends Expirable> {
  private readonly queues = new Map<number, Fifo<T>>();
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;

  constructor(private readonly onExpired: (item: T) => void) {}

  add(item: T, timeoutMs: number): void {
    let fifo = this.queues.get(timeoutMs);
    if (fifo === undefined) {
      fifo = new Fifo<T>();
      this.queues.set(timeoutMs, fifo);
    }
    fifo.push(item);
    if (item.deadline < this.timerAt) this.arm(item.deadline);
  }

  /** Tells the queue an item it holds was answered (call after setting settled). */
  settled(timeoutMs: number): void {
    this.queues.get(timeoutMs)?.noteSettled();
  }

  /** Stops the timer; pending items are simply forgotten (the caller settles them itself). */
  clear(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
    this.queues.clear();
  }

  private arm(at: number): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.fire(), Math.max(0, Math.ceil(at - performance.now())));
    // A pending request must not keep the process alive by itself; open clients do that (the backend).
    this.timer.unref();
  }

  private fire(): void {
    this.timer = undefined;
    this.timerAt = Infinity;
    const now = performance.now();
    let next = Infinity;
    for (const [timeoutMs, fifo] of this.queues) {
      let head = fifo.peek();
      while (head !== undefined && head.deadline <= now) {
        fifo.shift();
        this.onExpired(head);
        head = fifo.peek();
      }
      if (head === undefined) {
        if (fifo.live === 0) this.queues.delete(timeoutMs);
      } else if (head.deadline < next) {
        next = head.deadline;
      }
    }
    if (next !== Infinity && this.timer === undefined) this.arm(next);
  }
}
