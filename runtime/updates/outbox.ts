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
  | { op: 'done'; seq: number; outcome: DoneOutcome }
  /** Written when the file is rewritten: what the dropped records said (marks, counts, creation). */
  | {
      op: 'state';
      seq: number;
      createdAt: number;
      marks: Record<string, number>;
      counts: OutcomeCounts;
      /** The newest message date taken in (ms). */
      newest?: number;
    };

export type OutcomeCounts = Record<DoneOutcome, number>;

const NO_COUNTS: OutcomeCounts = { delivered: 0, expired: 0, rejected: 0, deadLettered: 0 };

/** The message a MessageNew event announces (its chat's newest taken in is the chat's mark). */
function newMessageId(event: UpdateEvent): number | undefined {
  const id = event.data.message_id;
  return event.kind === 'MessageNew' && typeof id === 'number' ? id : undefined;
}

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
  if (value.op === 'state' && isRecord(value.marks) && isRecord(value.counts)) return value as OutboxRecord;
  return undefined;
}

export interface Replayed {
  pending: PendingEvent[];
  records: number;
  nextSeq: number;
  /** When the outbox was first written (ms); undefined for an empty file. */
  createdAt?: number;
  /** Per chat (subject), the highest message id taken in as MessageNew. */
  marks: Map<string, number>;
  counts: OutcomeCounts;
  newest?: number;
}

/** What an outbox file holds (pure; exported for tests). */
export function replay(text: string): Replayed {
  const pending = new Map<number, PendingEvent>();
  const marks = new Map<string, number>();
  const counts = { ...NO_COUNTS };
  let records = 0;
  let nextSeq = 1;
  let createdAt: number | undefined;
  let newest: number | undefined;
  for (const line of text.split('\n')) {
    if (!line) continue;
    const record = parseRecord(line);
    if (!record) continue;
    records += 1;
    nextSeq = Math.max(nextSeq, record.seq + 1);
    if (record.op === 'add') {
      pending.set(record.seq, { seq: record.seq, event: record.event, enqueuedAt: record.enqueuedAt });
      createdAt ??= record.enqueuedAt;
      const id = newMessageId(record.event);
      if (id !== undefined)
        marks.set(record.event.subject, Math.max(id, marks.get(record.event.subject) ?? 0));
    } else if (record.op === 'done') {
      pending.delete(record.seq);
      if (record.outcome in counts) counts[record.outcome] += 1;
    } else {
      createdAt = record.createdAt;
      if (typeof record.newest === 'number') newest = Math.max(newest ?? 0, record.newest);
      for (const [chat, id] of Object.entries(record.marks))
        if (typeof id === 'number') marks.set(chat, Math.max(id, marks.get(chat) ?? 0));
      for (const key of Object.keys(counts) as DoneOutcome[])
        counts[key] += typeof record.counts[key] === 'number' ? record.counts[key] : 0;
    }
  }
  return {
    pending: [...pending.values()].sort((a, b) => a.seq - b.seq),
    records,
    nextSeq,
    createdAt,
    marks,
    counts,
    ...(newest === undefined ? {} : { newest }),
  };
}

export class Outbox {
  private readonly pending = new Map<number, PendingEvent>();
  /** Ids of pending events: an update TDLib announces twice is kept once. */
  private readonly pendingIds = new Set<string>();
  private records: number;
  private nextSeq: number;
  private readonly marks: Map<string, number>;
  /** Events given up or delivered since the outbox was created. */
  readonly counts: OutcomeCounts;
  /** When this outbox was first written to (ms): refills start no earlier. */
  createdAt?: number;
  /** The newest message date taken in as MessageNew (ms). */
  newest?: number;
  private queue: OutboxRecord[] = [];
  private waiters: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];
  private flushing?: Promise<void>;
  private closed = false;

  private constructor(
    private readonly path: string,
    private handle: FileHandle,
    replayed: Replayed,
    /** The file did not exist: this outbox starts now. */
    readonly fresh: boolean,
  ) {
    for (const entry of replayed.pending) {
      this.pending.set(entry.seq, entry);
      this.pendingIds.add(entry.event.id);
    }
    this.records = replayed.records;
    this.nextSeq = replayed.nextSeq;
    this.marks = replayed.marks;
    this.counts = replayed.counts;
    this.createdAt = replayed.createdAt;
    this.newest = replayed.newest;
  }

  /** Opens (or creates) the outbox in `dir` and replays it. */
  static async open(dir: string, now = Date.now()): Promise<Outbox> {
    const path = join(dir, FILE);
    const fresh = !existsSync(path);
    const replayed = fresh ? replay('') : replay(readFileSync(path, 'utf8'));
    const handle = await open(path, 'a', 0o600);
    const outbox = new Outbox(path, handle, replayed, fresh);
    if (fresh) {
      // The start of this outbox is what a refill after a restart goes back to at most: on disk first.
      outbox.createdAt = now;
      outbox.append({ op: 'state', seq: 0, createdAt: now, marks: {}, counts: { ...NO_COUNTS } });
      await outbox.durable();
    }
    return outbox;
  }

  /** Pending events in seq order (delivery order within a chat). */
  list(): PendingEvent[] {
    return [...this.pending.values()];
  }

  get size(): number {
    return this.pending.size;
  }

  /** The highest message id of `chat` taken in as MessageNew (0: none). */
  mark(chat: string): number {
    return this.marks.get(chat) ?? 0;
  }

  marksSnapshot(): ReadonlyMap<string, number> {
    return new Map(this.marks);
  }

  /**
   * Takes over another pod's state (a move): its creation time, marks and counts. Written as a state
   * record, so a restart here keeps them.
   */
  adopt(createdAt: number, marks: ReadonlyMap<string, number>, counts: Partial<OutcomeCounts>): void {
    this.createdAt = Math.min(this.createdAt ?? createdAt, createdAt);
    for (const [chat, id] of marks)
      if (typeof id === 'number') this.marks.set(chat, Math.max(id, this.marks.get(chat) ?? 0));
    this.seedCounts(counts);
    this.append({
      op: 'state',
      seq: 0,
      createdAt: this.createdAt,
      marks: Object.fromEntries(this.marks),
      counts: { ...this.counts },
    });
    void this.durable().catch(() => undefined);
  }

  /** Counts carried over from elsewhere (the account's status, when this pod starts it afresh). */
  seedCounts(counts: Partial<OutcomeCounts>): void {
    for (const key of Object.keys(this.counts) as DoneOutcome[])
      this.counts[key] = Math.max(this.counts[key], counts[key] ?? 0);
  }

  /**
   * Adds events not already taken in; resolves once they are on disk. Returns what was added: an event
   * whose id is pending is not added twice, and a new message at or below its chat's mark was taken in
   * before (a refill overlapping live updates, TDLib announcing it again after a restart).
   */
  async add(events: readonly UpdateEvent[], now: number): Promise<PendingEvent[]> {
    const added: PendingEvent[] = [];
    for (const event of events) {
      if (this.pendingIds.has(event.id)) continue;
      const messageId = newMessageId(event);
      if (messageId !== undefined) {
        if (messageId <= this.mark(event.subject)) continue;
        this.marks.set(event.subject, messageId);
        this.newest = Math.max(this.newest ?? 0, Date.parse(event.time) || 0);
      }
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
    this.counts[outcome] += 1;
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
    this.queue.push(record);
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
      const lines = this.queue.map((record) => `${JSON.stringify(record)}\n`).join('');
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

  private countsWithout(queued: readonly OutboxRecord[]): OutcomeCounts {
    const counts = { ...this.counts };
    for (const record of queued) if (record.op === 'done') counts[record.outcome] -= 1;
    return counts;
  }

  /** Rewrites the file with only the pending events (temporary file, fsync, rename, fsync of the dir). */
  private async compact(): Promise<void> {
    const tmp = join(dirname(this.path), `.${FILE}.tmp`);
    const fd = openSync(tmp, 'w', 0o600);
    try {
      const state: OutboxRecord = {
        op: 'state',
        seq: 0,
        createdAt: this.createdAt ?? Date.now(),
        marks: Object.fromEntries(this.marks),
        ...(this.newest === undefined ? {} : { newest: this.newest }),
        // Done records still queued are written after the rewrite: they count there, not here too.
        counts: this.countsWithout(this.queue),
      };
      const text = [state, ...[...this.pending.values()].map((entry) => ({ op: 'add', ...entry }))]
        .map((record) => `${JSON.stringify(record)}\n`)
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
    this.records = this.pending.size + 1;
  }
}
