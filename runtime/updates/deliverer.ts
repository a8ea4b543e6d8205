/**
 * Delivers one account's outbox to its sink: the decisions of delivery.ts, carried out with HTTP POSTs in
 * CloudEvents binary mode. Attempts and retry times live in memory: after a restart every pending event
 * is due at once, which costs at most one early try each.
 */
import { binaryRequest, type UpdateEvent } from './cloudevents.js';
import {
  DEFAULT_POLICY,
  afterTry,
  plan,
  verdictOf,
  type DeliveryPolicy,
  type OutboxEntry,
  type Verdict,
} from './delivery.js';
import type { DoneOutcome, Outbox, PendingEvent } from './outbox.js';
import { httpPost } from './http-post.js';

export interface SinkTarget {
  url: string;
  /** Sent with every event, e.g. the secret header a receiver authenticates the account by. */
  headers?: Record<string, string>;
  /** How to POST to this target (its CA bundle); default: the deliverer's. */
  post?: Post;
}

export type PostResult = { status: number; retryAfter?: string } | { error: string };

/** One HTTP POST: the answer's status (and Retry-After), or the error when there was no answer. */
export type Post = (
  url: string,
  headers: Record<string, string>,
  body: string,
  signal: AbortSignal,
) => Promise<PostResult>;

export interface DelivererOptions {
  outbox: Outbox;
  /** CloudEvents source of the account. */
  source: string;
  /** Where to deliver now (the sink may change while the account runs); undefined pauses delivery. */
  sink: () => SinkTarget | undefined;
  /** Where events that will never be delivered go; undefined drops them (counted). */
  deadLetterSink?: () => SinkTarget | undefined;
  /** Read before every decision: the account's spec may change while it runs. */
  policy?: DeliveryPolicy | (() => DeliveryPolicy);
  /** How to POST (default: httpPost, with the address guard). */
  post?: Post;
  /** Per try (a receiver slower than this gets the event again: a duplicate by id). */
  timeoutMs?: number;
  now?: () => number;
  random?: () => number;
  onOutcome?: (event: UpdateEvent, outcome: DoneOutcome | 'retrying', detail: string) => void;
}

export class Deliverer {
  private readonly post: Post;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly tries = new Map<number, { attempts: number; notBefore: number }>();
  private readonly inFlight = new Set<string>();
  /** Events on their way to the dead-letter sink (or being dropped): not planned again meanwhile. */
  private readonly givingUp = new Set<number>();
  private readonly controller = new AbortController();
  private timer?: NodeJS.Timeout;
  private running = false;
  private settled?: () => void;

  constructor(private readonly options: DelivererOptions) {
    this.post = options.post ?? httpPost();
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
  }

  private get policy(): DeliveryPolicy {
    const policy = this.options.policy ?? DEFAULT_POLICY;
    return typeof policy === 'function' ? policy() : policy;
  }

  /** Looks at the outbox again: call after adding events (and it calls itself after every try). */
  kick(): void {
    if (this.controller.signal.aborted) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    const target = this.options.sink();
    if (!target) return;
    const pendings = this.options.outbox.list().filter((p) => !this.givingUp.has(p.seq));
    const byseq = new Map(pendings.map((p) => [p.seq, p]));
    const next = plan(
      pendings.map((p) => this.entryOf(p)),
      this.inFlight,
      this.now(),
      this.policy,
    );
    for (const gone of next.expired) {
      const pending = byseq.get(gone.seq);
      if (pending) void this.giveUp(pending, 'expired', 'its lifetime ended while it waited');
    }
    for (const entry of next.send) {
      const pending = byseq.get(entry.seq);
      if (pending) void this.attempt(pending, entry, target);
    }
    if (next.wakeAt !== undefined)
      this.timer = setTimeout(() => this.kick(), Math.max(0, next.wakeAt - this.now()));
    if (this.inFlight.size === 0 && next.send.length === 0) this.settled?.();
  }

  /** Resolves once nothing is in flight (for a graceful stop: the outbox keeps the rest). */
  async stop(): Promise<void> {
    clearTimeout(this.timer);
    if (this.inFlight.size > 0) await new Promise<void>((resolve) => (this.settled = resolve));
    this.controller.abort();
  }

  private entryOf(pending: PendingEvent): OutboxEntry {
    const tried = this.tries.get(pending.seq);
    return {
      seq: pending.seq,
      kind: pending.event.kind,
      chat: pending.event.subject,
      enqueuedAt: pending.enqueuedAt,
      attempts: tried?.attempts ?? 0,
      notBefore: tried?.notBefore ?? 0,
    };
  }

  private async send(event: UpdateEvent, target: SinkTarget): Promise<Verdict> {
    const request = binaryRequest(event, this.options.source);
    const signal = AbortSignal.any([
      this.controller.signal,
      AbortSignal.timeout(this.options.timeoutMs ?? 30_000),
    ]);
    const result = await (target.post ?? this.post)(
      target.url,
      { ...target.headers, ...request.headers },
      request.body,
      signal,
    );
    return 'error' in result
      ? { outcome: 'retry', reason: result.error }
      : verdictOf(result.status, result.retryAfter, this.now());
  }

  private async attempt(pending: PendingEvent, entry: OutboxEntry, target: SinkTarget): Promise<void> {
    this.inFlight.add(entry.chat);
    try {
      const verdict = await this.send(pending.event, target);
      const next = afterTry(entry, verdict, this.now(), this.policy, this.random());
      if (next.outcome === 'delivered') {
        this.tries.delete(pending.seq);
        this.options.outbox.done(pending.seq, 'delivered');
        this.options.onOutcome?.(pending.event, 'delivered', '');
      } else if (next.outcome === 'retry') {
        this.tries.set(pending.seq, { attempts: entry.attempts + 1, notBefore: next.notBefore });
        this.options.onOutcome?.(pending.event, 'retrying', next.reason);
      } else await this.giveUp(pending, next.outcome, next.reason);
    } finally {
      this.inFlight.delete(entry.chat);
      this.kick();
    }
  }

  /** An event that will never reach the sink: to the dead-letter sink (one try), or dropped. */
  private async giveUp(pending: PendingEvent, why: 'expired' | 'rejected', reason: string): Promise<void> {
    this.tries.delete(pending.seq);
    this.givingUp.add(pending.seq);
    try {
      const deadLetter = this.options.deadLetterSink?.();
      let outcome: DoneOutcome = why;
      if (deadLetter) {
        const verdict = await this.send(pending.event, deadLetter);
        if (verdict.outcome === 'delivered') outcome = 'deadLettered';
      }
      this.options.outbox.done(pending.seq, outcome);
      this.options.onOutcome?.(pending.event, outcome, reason);
    } finally {
      this.givingUp.delete(pending.seq);
    }
  }
}
