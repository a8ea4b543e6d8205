/**
 * File primitives for state that several processes share through one world directory. Every write that
 * replaces a file goes through a temporary file and rename(2), so a reader in another process sees either
 * the old or the new content, never half of it.
 */
import {
  close,
  closeSync,
  fsync,
  fsyncSync,
  open,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';

export function ensureDir(path: string): void {
  mkdirSync(path, { recursive: true });
}

/**
 * Atomically replaces `path` with `data`. `durable` adds an fsync for state that must survive a crash:
 * 'now' before the rename, 'background' after it on libuv's thread pool. A process killed meanwhile loses
 * nothing (the data is in the page cache); only a machine crash could, as with TDLib, which flushes its
 * binlog on its own threads. 'background' is for the TDLib stand-in: a synchronous fsync there would block
 * the runtime's event loop for a cost real TDLib never puts on it (about 1.4 ms per write, measured).
 */
export function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  durable: false | 'now' | 'background' = false,
): void {
  const tmp = join(dirname(path), `.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    if (durable === 'now') fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(tmp, path);
  } catch (error) {
    rmSync(tmp, { force: true });
    throw error;
  }
  if (durable === 'background') flushInBackground(path);
}

function flushInBackground(path: string): void {
  open(path, 'r', (openError, fd) => {
    // Replaced or deleted meanwhile: its successor has its own flush.
    if (openError) return;
    fsync(fd, () => close(fd, () => undefined));
  });
}

export function writeJsonAtomic(path: string, value: unknown, durable = false): void {
  writeFileAtomic(path, JSON.stringify(value, null, 1) + '\n', durable ? 'now' : false);
}

/** Reads and parses a JSON file; undefined when it does not exist (ENOENT) or is not valid JSON. */
export function readJson(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return undefined;
    throw error;
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

export function isErrno(error: unknown, code: string): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === code;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
