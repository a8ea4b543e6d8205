/**
 * Append-only JSON Lines logs shared by processes. Writers open the file with O_APPEND and hand the kernel
 * a whole batch of complete lines in one write(2): on a local filesystem the append offset and the data
 * move together, so batches from different processes never interleave inside a line.
 */
import { closeSync, openSync, readSync, fstatSync, writeSync } from 'node:fs';
import { isErrno } from './files.js';

export class JsonlAppender {
  private fd: number | undefined;
  private buffer: string[] = [];

  constructor(readonly path: string) {}

  /** Queues one record; nothing reaches the file before flush(). */
  append(record: unknown): void {
    this.buffer.push(JSON.stringify(record));
  }

  /** Queues a record already serialized as one line of JSON (no newline). */
  appendLine(line: string): void {
    this.buffer.push(line);
  }

  get pending(): number {
    return this.buffer.length;
  }

  /** Writes every queued record with a single write(2). */
  flush(): void {
    if (this.buffer.length === 0) return;
    const data = Buffer.from(this.buffer.join('\n') + '\n');
    this.buffer = [];
    if (this.fd === undefined) this.fd = openSync(this.path, 'a', 0o644);
    let offset = 0;
    // A regular file only takes a short write on errors such as ENOSPC; keep going rather than drop lines.
    while (offset < data.length) offset += writeSync(this.fd, data, offset, data.length - offset);
  }

  close(): void {
    this.flush();
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

/**
 * Reads a JSONL file incrementally: each read() returns the records appended since the previous one.
 * A last line without its newline is a write still in progress elsewhere and is left for the next read.
 */
export class JsonlReader<T> {
  private offset = 0;
  private carry = '';

  constructor(
    readonly path: string,
    private readonly accept: (value: unknown) => value is T,
  ) {}

  /** Bytes of the file taken in so far (what the next read() starts after). */
  get position(): number {
    return this.offset;
  }

  /** Starts after what the file holds now: the next read() returns only lines appended from here on. */
  skipExisting(): void {
    try {
      const fd = openSync(this.path, 'r');
      try {
        this.offset = fstatSync(fd).size;
      } finally {
        closeSync(fd);
      }
    } catch (error) {
      if (!isErrno(error, 'ENOENT')) throw error;
    }
    this.carry = '';
  }

  read(): T[] {
    let fd: number;
    try {
      fd = openSync(this.path, 'r');
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return [];
      throw error;
    }
    const chunks: Buffer[] = [];
    try {
      const size = fstatSync(fd).size;
      while (this.offset < size) {
        const chunk = Buffer.allocUnsafe(Math.min(size - this.offset, 1 << 20));
        const n = readSync(fd, chunk, 0, chunk.length, this.offset);
        if (n === 0) break;
        chunks.push(chunk.subarray(0, n));
        this.offset += n;
      }
    } finally {
      closeSync(fd);
    }
    const text = this.carry + Buffer.concat(chunks).toString('utf8');
    const end = text.lastIndexOf('\n');
    this.carry = text.slice(end + 1);
    const records: T[] = [];
    if (end < 0) return records;
    for (const line of text.slice(0, end).split('\n')) {
      if (line.length === 0) continue;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        continue;
      }
      if (this.accept(value)) records.push(value);
    }
    return records;
  }
}

export function readJsonl<T>(path: string, accept: (value: unknown) => value is T): T[] {
  return new JsonlReader(path, accept).read();
}
