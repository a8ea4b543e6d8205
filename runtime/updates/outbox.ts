/**
 * An account's persistent outbox: the events received and not yet delivered, in an append-only file in the
 * account's storage. An event is written (and fdatasync'ed, batched with the others that arrive within the
 * same flush) before anything tries to deliver it, and marked done on the sink's 2xx or when it is given
 * up; a process killed at any point loses no event it reported durable, and replays what was not marked
 * done (telegram-bot-api's TQueue does the same with its binlog). The file is rewritten with only the
 * pending events once most of it is done records.
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { UpdateEvent } from './cloudevents.js';

export interface PendingEvent {
  seq: number;
  event: UpdateEvent;
  /** When it entered the outbox (ms). */
  enqueuedAt: number;
}

export type DoneOutcome = 'delivered' | 'expired' | 'rejected' | 'deadLettered';

type OutboxRecord =
  | { op: 'add'; seq: number; event: UpdateEvent; enqueuedAt: number }
  | { op: 'done'; seq: number; outcome: DoneOutcome };

const FILE = 'outbox.jsonl';
/** Rewrite once the file holds this many records and at least three quarters are spent. */
const COMPACT_MIN_RECORDS = 4096;

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

function parseRecord(line: string): OutboxRecord | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined; // the last line of a process killed mid-write
  }
  if (!isRecord(value) || typeof value.seq !== 'number') return undefined;
  if (value.op === 'add' && isRecord(value.event) && typeof value.enqueuedAt === 'number')
    return value as OutboxRecord;
  if (value.op === 'done' && typeof value.outcome === 'string') return value as OutboxRecord;
  return undefined;
}

/** Pending events of an outbox file, in seq order (pure; exported for tests). */
export function replay(text: string): { pending: PendingEvent[]; records: number; nextSeq: number } {
  const pending = new Map<number, PendingEvent>();
  let records = 0;
  let nextSeq = 1;
  for (const line of text.split('\n')) {
    if (!line) continue;
    const record = parseRecord(line);
    if (!record) continue;
    records += 1;
    nextSeq = Math.max(nextSeq, record.seq + 1);
    if (record.op === 'add')
      pending.set(record.seq, { seq: record.seq, event: record.event, enqueuedAt: record.enqueuedAt });
    else pending.delete(record.seq);
  }
  return { pending: [...pending.values()].sort((a, b) => a.seq - b.seq), records, nextSeq };
}

export class Outbox {
  private readonly pending = new Map<number, PendingEvent>();
  /** Ids of pending events: an update TDLib announces twice is kept once. */
  private readonly pendingIds = new Set<string>();
  private records: number;
  private nextSeq: number;
  private queue: string[] = [];
  private waiters: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];
  private flushing?: Promise<void>;
  private closed = false;

  private constructor(
    private readonly path: string,
    private handle: FileHandle,
    replayed: ReturnType<typeof replay>,
  ) {
    for (const entry of replayed.pending) {
      this.pending.set(entry.seq, entry);
      this.pendingIds.add(entry.event.id);
    }
    this.records = replayed.records;
    this.nextSeq = replayed.nextSeq;
  }

  /** Opens (or creates) the outbox in `dir` and replays it. */
  static async open(dir: string): Promise<Outbox> {
    const path = join(dir, FILE);
    const replayed = existsSync(path) ? replay(readFileSync(path, 'utf8')) : replay('');
    const handle = await open(path, 'a', 0o600);
    return new Outbox(path, handle, replayed);
  }

  /** Pending events in seq order (delivery order within a chat). */
  list(): PendingEvent[] {
    return [...this.pending.values()];
  }

  get size(): number {
    return this.pending.size;
  }

  /**
   * Adds events not already pending; resolves once they are on disk. Returns what was added (an event
   * whose id is pending already is not added twice).
   */
  async add(events: readonly UpdateEvent[], now: number): Promise<PendingEvent[]> {
    const added: PendingEvent[] = [];
    for (const event of events) {
      if (this.pendingIds.has(event.id)) continue;
      const entry = { seq: this.nextSeq++, event, enqueuedAt: now };
      added.push(entry);
      this.pending.set(entry.seq, entry);
      this.pendingIds.add(event.id);
      this.append({ op: 'add', ...entry });
    }
    if (added.length > 0) await this.durable();
    return added;
  }

  /** Marks an event done; durable with the next flush (a loss only means one more delivery). */
  done(seq: number, outcome: DoneOutcome): void {
    const entry = this.pending.get(seq);
    if (!entry) return;
    this.pending.delete(seq);
    this.pendingIds.delete(entry.event.id);
    this.append({ op: 'done', seq, outcome });
    void this.durable().catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.durable().catch(() => undefined);
    this.closed = true;
    await this.handle.close();
  }

  private append(record: OutboxRecord): void {
    if (this.closed) throw new Error('outbox closed');
    this.queue.push(`${JSON.stringify(record)}\n`);
    this.records += 1;
  }

  /** Resolves once everything appended so far is on disk: one write and one fdatasync per batch. */
  private durable(): Promise<void> {
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    this.flushing ??= this.flush().finally(() => {
      this.flushing = undefined;
    });
    return done;
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0 || this.waiters.length > 0) {
      const lines = this.queue.join('');
      const waiters = this.waiters;
      this.queue = [];
      this.waiters = [];
      try {
        if (lines) {
          await this.handle.write(lines);
          await this.handle.datasync();
        }
        for (const w of waiters) w.resolve();
      } catch (error) {
        for (const w of waiters) w.reject(error instanceof Error ? error : new Error(String(error)));
      }
      if (this.records >= COMPACT_MIN_RECORDS && this.pending.size * 4 <= this.records) await this.compact();
    }
  }

  /** Rewrites the file with only the pending events (temporary file, fsync, rename, fsync of the dir). */
  private async compact(): Promise<void> {
    const tmp = join(dirname(this.path), `.${FILE}.tmp`);
    const fd = openSync(tmp, 'w', 0o600);
    try {
      const text = [...this.pending.values()]
        .map((entry) => `${JSON.stringify({ op: 'add', ...entry })}\n`)
        .join('');
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    await this.handle.close();
    renameSync(tmp, this.path);
    const dir = openSync(dirname(this.path), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
    this.handle = await open(this.path, 'a', 0o600);
    this.records = this.pending.size;
  }
}
