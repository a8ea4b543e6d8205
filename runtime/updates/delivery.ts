/**
 * Delivery decisions for one account's outbox, as pure functions (telegram-bot-api's webhook rules, read
 * in its source, with Knative's list of retried answers):
 * - one event in flight per chat, the next of that chat only after a 2xx or giving up, so a chat stays in
 *   order; different chats in parallel, up to maxParallelChats, oldest head first;
 * - a failed try waits 1 s, doubling per failure, capped at a random 60-120 s; Retry-After (seconds or an
 *   HTTP date) is honoured, clamped to an hour;
 * - an event expires (per kind) once its next try would fall after its lifetime, like the Bot API's drop;
 * - answers that retrying cannot fix (4xx other than 404, 408, 409, 429) are not retried.
 */
import type { UpdateKind } from './cloudevents.js';

export interface DeliveryPolicy {
  maxParallelChats: number;
  initialBackoffMs: number;
  /** The doubling stops here, and the wait is then a random value in [max, 2 max). */
  maxBackoffMs: number;
  retryAfterMaxMs: number;
  lifetimeMs: Readonly<Record<UpdateKind, number>>;
}

const HOUR = 3_600_000;

export const DEFAULT_POLICY: DeliveryPolicy = {
  maxParallelChats: 10,
  initialBackoffMs: 1000,
  maxBackoffMs: 60_000,
  retryAfterMaxMs: HOUR,
  // The Bot API keeps messages a day and callback queries 150 s (a button press answered later is useless).
  lifetimeMs: {
    MessageNew: 24 * HOUR,
    MessageEdited: 24 * HOUR,
    MessageDeleted: 24 * HOUR,
    CallbackQuery: 150_000,
    ChatMember: 24 * HOUR,
  },
};

/** One event waiting in the outbox. */
export interface OutboxEntry {
  /** Position in the outbox: the order events of a chat are delivered in. */
  seq: number;
  kind: UpdateKind;
  /** The chat (the event's subject). */
  chat: string;
  /** When the event entered the outbox (ms). */
  enqueuedAt: number;
  /** Tries so far. */
  attempts: number;
  /** No try before this (ms); 0 for a new event. */
  notBefore: number;
}

export type Verdict =
  | { outcome: 'delivered' }
  | { outcome: 'retry'; reason: string; retryAfterMs?: number }
  | { outcome: 'rejected'; reason: string };

/** Answers worth trying again (Knative's SelectiveRetry): the receiver or the path may recover. */
const RETRIED = new Set([404, 408, 409, 429]);

/**
 * What a sink's answer means for the event: `status` undefined is no answer at all (connection refused,
 * reset, timeout). `retryAfter` is the Retry-After header as received.
 */
export function verdictOf(status: number | undefined, retryAfter: string | undefined, now: number): Verdict {
  if (status === undefined) return { outcome: 'retry', reason: 'no answer' };
  if (status >= 200 && status < 300) return { outcome: 'delivered' };
  const reason = `HTTP ${status}`;
  if (status >= 500 || RETRIED.has(status)) {
    const retryAfterMs = parseRetryAfter(retryAfter, now);
    return retryAfterMs === undefined
      ? { outcome: 'retry', reason }
      : { outcome: 'retry', reason, retryAfterMs };
  }
  return { outcome: 'rejected', reason };
}

/** Retry-After as delay-seconds or an HTTP date (RFC 9110 10.2.3); undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  const text = value?.trim();
  if (!text) return undefined;
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** How long to wait after the `attempts`-th failed try (`random` in [0, 1)). */
export function retryDelayMs(
  attempts: number,
  verdict: Extract<Verdict, { outcome: 'retry' }>,
  policy: DeliveryPolicy,
  random: number,
): number {
  if (verdict.retryAfterMs !== undefined)
    return Math.min(Math.max(0, verdict.retryAfterMs), policy.retryAfterMaxMs);
  const doubled = policy.initialBackoffMs * 2 ** Math.max(0, attempts - 1);
  return doubled < policy.maxBackoffMs ? doubled : policy.maxBackoffMs * (1 + random);
}

export type AfterTry =
  | { outcome: 'delivered' }
  | { outcome: 'retry'; notBefore: number; reason: string }
  /** Not delivered and never will be: dead-lettered when a dead-letter sink is set, else dropped. */
  | { outcome: 'expired' | 'rejected'; reason: string };

/** What happens to an entry after a try (its `attempts` not yet counting this one). */
export function afterTry(
  entry: OutboxEntry,
  verdict: Verdict,
  now: number,
  policy: DeliveryPolicy,
  random: number,
): AfterTry {
  if (verdict.outcome !== 'retry') return verdict;
  const notBefore = now + retryDelayMs(entry.attempts + 1, verdict, policy, random);
  if (notBefore >= expiresAt(entry, policy))
    return { outcome: 'expired', reason: `${verdict.reason}; its next try would come after its lifetime` };
  return { outcome: 'retry', notBefore, reason: verdict.reason };
}

export function expiresAt(entry: OutboxEntry, policy: DeliveryPolicy): number {
  return entry.enqueuedAt + policy.lifetimeMs[entry.kind];
}

export interface Plan {
  /** Heads to try now, oldest first, at most the free parallel slots. */
  send: OutboxEntry[];
  /** Heads whose lifetime ended while they waited. */
  expired: OutboxEntry[];
  /** The earliest time a waiting head becomes due (ms), when nothing else would wake the sender. */
  wakeAt?: number;
}

/**
 * What to do now: `entries` in seq order, `inFlight` the chats with a try under way. Only a chat's head
 * may go; an expired head makes way for the next entry of its chat in the same plan.
 */
export function plan(
  entries: readonly OutboxEntry[],
  inFlight: ReadonlySet<string>,
  now: number,
  policy: DeliveryPolicy,
): Plan {
  const expired: OutboxEntry[] = [];
  const heads: OutboxEntry[] = [];
  const settled = new Set<string>(inFlight);
  let wakeAt: number | undefined;
  for (const entry of entries) {
    if (settled.has(entry.chat)) continue;
    if (now >= expiresAt(entry, policy)) {
      expired.push(entry);
      continue;
    }
    settled.add(entry.chat);
    if (entry.notBefore > now) wakeAt = Math.min(wakeAt ?? Infinity, entry.notBefore);
    else heads.push(entry);
  }
  const free = Math.max(0, policy.maxParallelChats - inFlight.size);
  const send = heads.slice(0, free);
  // A due head left out for want of a slot is woken by the next completion, not by a timer.
  return wakeAt === undefined ? { send, expired } : { send, expired, wakeAt };
}
