/**
 * The send API's idempotency keys of one account, on the pod's volume: a key is written down (and
 * fdatasync'ed) as accepted before TDLib is asked to send, and its outcome after. What a restarted process
 * finds accepted without an outcome is in doubt and must be resolved before anything else happens to it.
 * Keys are kept for a day (Stripe's window for Idempotency-Key); the file is rewritten once mostly stale.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';

export const KEY_RETENTION_MS = 24 * 3_600_000;
const FILE = 'sends.jsonl';
const COMPACT_MIN_RECORDS = 2048;

export type SendOutcome =
  | { ok: true; chatId: number; messageId: number }
  | { ok: false; code: number; message: string; retryAfterSeconds?: number };

export interface KeyRecord {
  key: string;
  /** A digest of the request: the same key with another request is refused. */
  digest: string;
  /** When it was accepted (ms). */
  at: number;
  /** Where it goes and what it says, for resolving a send whose outcome was lost. */
  chatId?: number;
  text: string;
  outcome?: SendOutcome;
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** What a ledger file says, per key (pure; exported for tests). */
export function replayLedger(text: string, now: number): Map<string, KeyRecord> {
  const keys = new Map<string, KeyRecord>();
  for (const line of text.split('\n')) {
    if (!line) continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      continue; // a torn last line
    }
    if (!isRecord(value) || typeof value.key !== 'string') continue;
    if (value.forgotten === true) {
      keys.delete(value.key);
      continue;
    }
    const previous = keys.get(value.key);
    const merged = { ...previous, ...value } as KeyRecord;
    if (typeof merged.digest !== 'string' || typeof merged.at !== 'number') continue;
    keys.set(merged.key, merged);
  }
  for (const [key, record] of keys) if (now - record.at > KEY_RETENTION_MS) keys.delete(key);
  return keys;
}

export class SendLedger {
  private records = 0;
  private tail: Promise<void> = Promise.resolve();

  private constructor(
    private readonly path: string,
    private handle: FileHandle,
    private readonly keys: Map<string, KeyRecord>,
  ) {
    this.records = keys.size;
  }

  static async open(dir: string, now = Date.now()): Promise<SendLedger> {
    const path = join(dir, FILE);
    const keys = existsSync(path) ? replayLedger(readFileSync(path, 'utf8'), now) : new Map();
    const handle = await open(path, 'a', 0o600);
    return new SendLedger(path, handle, keys);
  }

  get(key: string): KeyRecord | undefined {
    return this.keys.get(key);
  }

  /** Writes `record` (a new key, or a key's outcome or chat) and resolves once it is on disk. */
  write(record: KeyRecord): Promise<void> {
    this.keys.set(record.key, record);
    return this.append(`${JSON.stringify(record)}\n`);
  }

  private append(line: string): Promise<void> {
    const done = this.tail.then(async () => {
      await this.handle.write(line);
      await this.handle.datasync();
      this.records += 1;
      if (this.records >= COMPACT_MIN_RECORDS && this.keys.size * 4 <= this.records) await this.compact();
    });
    this.tail = done.catch(() => undefined);
    return done;
  }

  /** Nothing was sent under `key`: it may be accepted again. */
  forget(key: string): Promise<void> {
    this.keys.delete(key);
    return this.append(`${JSON.stringify({ key, forgotten: true })}\n`);
  }

  async close(): Promise<void> {
    await this.tail;
    await this.handle.close();
  }

  /** Keeps only keys inside their window (temporary file, fsync, rename). */
  private async compact(): Promise<void> {
    const now = Date.now();
    for (const [key, record] of this.keys) if (now - record.at > KEY_RETENTION_MS) this.keys.delete(key);
    const tmp = `${this.path}.tmp`;
    writeFileSync(tmp, [...this.keys.values()].map((r) => `${JSON.stringify(r)}\n`).join(''), {
      mode: 0o600,
      flush: true,
    });
    await this.handle.close();
    renameSync(tmp, this.path);
    this.handle = await open(this.path, 'a', 0o600);
    this.records = this.keys.size;
  }
}
