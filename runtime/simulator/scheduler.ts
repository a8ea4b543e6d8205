/**
 * Deferred work for the simulated network (latencies, flood waits, connection delays) on one timer: a
 * binary heap ordered by due time, then by insertion, so equal delays keep request order. Tasks due now go
 * through setImmediate, after the current batch of requests, like answers from a real network would.
 *
 * One turn drains at most TURN_BUDGET_MS of tasks; what is left runs in the next turn. Real TDLib does its
 * work (disk, crypto, network) on its own threads and the runtime takes its answers one bounded batch per
 * event-loop turn. The stand-in runs in the runtime's process, so without a budget a burst of logins (each
 * writing its session file) held the loop for 40 ms of the simulator's own work plus the runtime's
 * reactions to all of it (profiled while 1,000 accounts started).
 */
export type Task = () => void;

const TURN_BUDGET_MS = 4;

interface Entry {
  due: number;
  seq: number;
  task: Task;
}

export class Scheduler {
  private heap: Entry[] = [];
  private seq = 0;
  private timer: NodeJS.Timeout | undefined;
  private timerDue = Infinity;
  private immediate: NodeJS.Immediate | undefined;
  private closed = false;

  constructor(
    private readonly now: () => number,
    /** Runs after every drain, e.g. to flush the outbox once per turn rather than once per task. */
    private readonly afterRun: () => void,
    private readonly turnBudgetMs = TURN_BUDGET_MS,
  ) {}

  get size(): number {
    return this.heap.length;
  }

  at(due: number, task: Task): void {
    if (this.closed) return;
    this.push({ due, seq: this.seq++, task });
    this.arm();
  }

  after(delayMs: number, task: Task): void {
    this.at(this.now() + Math.max(0, delayMs), task);
  }

  close(): void {
    this.closed = true;
    this.heap = [];
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.immediate !== undefined) clearImmediate(this.immediate);
    this.timer = undefined;
    this.immediate = undefined;
  }

  private arm(): void {
    const top = this.heap[0];
    if (top === undefined) return;
    const delay = top.due - this.now();
    if (delay <= 0) {
      this.immediate ??= setImmediate(() => {
        this.immediate = undefined;
        this.run();
      });
      return;
    }
    if (this.timer !== undefined && this.timerDue <= top.due) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timerDue = top.due;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerDue = Infinity;
      this.run();
    }, delay);
  }

  private run(): void {
    const now = this.now();
    // Tasks scheduled while draining for "now" run in the next turn, so a task can never starve the loop.
    const limit = this.seq;
    // Wall time, not `now`: the simulated clock may stand still while the work takes real time.
    const endOfTurn = performance.now() + this.turnBudgetMs;
    for (;;) {
      const top = this.heap[0];
      if (top === undefined || top.due > now || top.seq >= limit) break;
      this.pop();
      top.task();
      if (performance.now() >= endOfTurn) break;
    }
    this.afterRun();
    this.arm();
  }

  private push(entry: Entry): void {
    const heap = this.heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent] as Entry;
      if (p.due < entry.due || (p.due === entry.due && p.seq < entry.seq)) break;
      heap[i] = p;
      i = parent;
    }
    heap[i] = entry;
  }

  private pop(): void {
    const heap = this.heap;
    const last = heap.pop() as Entry;
    if (heap.length === 0) return;
    let i = 0;
    const n = heap.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      let c = l;
      const le = heap[l] as Entry;
      if (r < n) {
        const re = heap[r] as Entry;
        if (re.due < le.due || (re.due === le.due && re.seq < le.seq)) c = r;
      }
      const ce = heap[c] as Entry;
      if (last.due < ce.due || (last.due === ce.due && last.seq < ce.seq)) break;
      heap[i] = ce;
      i = c;
    }
    heap[i] = last;
  }
}
