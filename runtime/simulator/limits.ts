/**
 * Server-side flood control per account: token buckets for sends (per account and per chat) and lookups,
 * and the PEER_FLOOD rule for user accounts writing to too many strangers. State is kept in memory by the
 * process hosting the account's session (Telegram kills duplicate sessions, so there is one) and written to
 * state/accounts/<id>.json now and then, so a restarted client is still rate limited.
 */
import { join } from 'node:path';
import { isRecord, readJson, writeJsonAtomic, ensureDir } from './store/files.js';
import type { RateLimit } from './world-schema.js';

export interface Bucket {
  tokens: number;
  at: number;
}

/**
 * Seconds until a token is available (0 = now). `reserve` takes the token even when it is in the future:
 * TDLib waits out short flood waits by itself and sends then, so the next message queues behind it.
 */
export function takeToken(bucket: Bucket, limit: RateLimit, nowMs: number, reserve: boolean): number {
  const elapsed = Math.max(0, nowMs - bucket.at) / 1000;
  const tokens = Math.min(limit.burst, bucket.tokens + elapsed * limit.per_second);
  const wait = tokens >= 1 ? 0 : (1 - tokens) / limit.per_second;
  if (wait === 0 || reserve) {
    bucket.tokens = tokens - 1;
    bucket.at = nowMs;
  }
  return wait;
}

export function fullBucket(limit: RateLimit, nowMs: number): Bucket {
  return { tokens: limit.burst, at: nowMs };
}

export function copyBucket(from: Bucket, to: Bucket): Bucket {
  to.tokens = from.tokens;
  to.at = from.at;
  return to;
}

/** Server message ids are multiples of this (MessageId's server part); TDLib's local ids fill the gaps. */
export const MESSAGE_ID_SHIFT = 1048576;

interface AccountFile {
  next_message_id: number;
  buckets: Record<string, Bucket>;
  strangers: Record<string, number>;
  peer_flood_until: number;
  imported_contacts: number[];
}

/** One account's counters. Chat buckets are kept only while they matter (not full). */
export class AccountState {
  nextMessageId = 1;
  readonly buckets = new Map<string, Bucket>();
  readonly chatBuckets = new Map<number, Bucket>();
  /** Strangers written to, with the time of the first message in the current window. */
  readonly strangers = new Map<number, number>();
  peerFloodUntil = 0;
  readonly importedContacts = new Set<number>();
  dirty = false;

  constructor(
    readonly userId: number,
    private readonly file: string,
  ) {}

  static load(stateDir: string, userId: number): AccountState {
    const dir = join(stateDir, 'accounts');
    const state = new AccountState(userId, join(dir, `${userId}.json`));
    const data = readJson(join(dir, `${userId}.json`));
    if (isRecord(data)) {
      const f = data as Partial<AccountFile>;
      state.nextMessageId = typeof f.next_message_id === 'number' ? f.next_message_id : 1;
      for (const [key, b] of Object.entries(f.buckets ?? {})) {
        if (key.startsWith('chat:')) state.chatBuckets.set(Number(key.slice(5)), b);
        else state.buckets.set(key, b);
      }
      for (const [key, at] of Object.entries(f.strangers ?? {})) state.strangers.set(Number(key), at);
      state.peerFloodUntil = typeof f.peer_flood_until === 'number' ? f.peer_flood_until : 0;
      for (const id of f.imported_contacts ?? []) state.importedContacts.add(id);
    }
    return state;
  }

  bucket(key: string, limit: RateLimit, nowMs: number): Bucket {
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      bucket = fullBucket(limit, nowMs);
      this.buckets.set(key, bucket);
    }
    this.dirty = true;
    return bucket;
  }

  /** Per-chat send buckets live in their own map: keyed by number, no string built per send. */
  chatBucket(chatId: number, limit: RateLimit, nowMs: number): Bucket {
    let bucket = this.chatBuckets.get(chatId);
    if (bucket === undefined) {
      bucket = fullBucket(limit, nowMs);
      this.chatBuckets.set(chatId, bucket);
    }
    this.dirty = true;
    return bucket;
  }

  save(): void {
    if (!this.dirty) return;
    this.dirty = false;
    const now = Date.now();
    const buckets: Record<string, Bucket> = {};
    // A bucket that has been idle long enough is full again: no need to keep it.
    for (const [key, b] of this.buckets) if (now - b.at < 3_600_000) buckets[key] = b;
    for (const [chat, b] of this.chatBuckets) if (now - b.at < 3_600_000) buckets[`chat:${chat}`] = b;
    const file: AccountFile = {
      next_message_id: this.nextMessageId,
      buckets,
      strangers: Object.fromEntries(this.strangers),
      peer_flood_until: this.peerFloodUntil,
      imported_contacts: [...this.importedContacts],
    };
    ensureDir(join(this.file, '..'));
    writeJsonAtomic(this.file, file);
  }
}

export type PeerFloodVerdict = 'ok' | 'peer_flood';

/**
 * PEER_FLOOD: a user account that starts conversations with more than `maxNew` strangers inside the window
 * is restricted until the window ends; messages to people it already wrote to still go through.
 */
export function checkPeerFlood(
  state: AccountState,
  recipient: number,
  maxNew: number,
  windowSeconds: number,
  nowMs: number,
): PeerFloodVerdict {
  const windowMs = windowSeconds * 1000;
  if (state.strangers.has(recipient) && nowMs - (state.strangers.get(recipient) ?? 0) < windowMs) return 'ok';
  if (nowMs < state.peerFloodUntil) return 'peer_flood';
  for (const [id, at] of state.strangers) if (nowMs - at >= windowMs) state.strangers.delete(id);
  state.dirty = true;
  if (state.strangers.size >= maxNew) {
    const oldest = Math.min(...state.strangers.values());
    state.peerFloodUntil = oldest + windowMs;
    return 'peer_flood';
  }
  state.strangers.set(recipient, nowMs);
  return 'ok';
}
