/**
 * File primitives for state that several processes share through one world directory. Every write that
 * replaces a file goes through a temporary file and rename(2), so a reader in another process sees either
 * the old or the new content, never half of it.
 */
import {
  closeSync,
  fsyncSync,
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

/** Atomically replaces `path` with `data`. `durable` adds an fsync for state that must survive a crash. */
export function writeFileAtomic(path: string, data: string | Uint8Array, durable = false): void {
  const tmp = join(dirname(path), `.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data);
    if (durable) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    renameSync(tmp, path);
  } catch (error) {
    rmSync(tmp, { force: true });
    throw error;
  }
}

export function writeJsonAtomic(path: string, value: unknown, durable = false): void {
  writeFileAtomic(path, JSON.stringify(value, null, 1) + '\n', durable);
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
