/**
 * Two kinds of locks over the world directory:
 * - database locks, the simulator's stand-in for the flock TDLib takes on td.binlog: one holder per
 *   database directory per host, released when the client closes or its process dies;
 * - a short mutex for read-modify-write of shared JSON files (the test side editing the world).
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { mkdirSync, openSync, closeSync, writeSync, rmSync, statSync } from 'node:fs';
import { ensureDir, isErrno, isRecord, readJson } from './files.js';
import { LOCAL_HOST, type InstanceRegistry, type LeaseHolder } from './liveness.js';

export type DbLockResult = { readonly ok: true } | { readonly ok: false; readonly holder: LeaseHolder };

export class DbLocks {
  private readonly dir: string;

  constructor(
    stateDir: string,
    private readonly registry: InstanceRegistry,
  ) {
    this.dir = join(stateDir, 'dblocks');
  }

  private file(databaseDirectory: string): string {
    const key = createHash('sha256').update(`${LOCAL_HOST}\0${databaseDirectory}`).digest('hex').slice(0, 32);
    return join(this.dir, `${key}.json`);
  }

  acquire(databaseDirectory: string, holder: LeaseHolder): DbLockResult {
    ensureDir(this.dir);
    const path = this.file(databaseDirectory);
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(path, 'wx', 0o644);
        try {
          writeSync(fd, JSON.stringify({ ...holder, database_directory: databaseDirectory }));
        } finally {
          closeSync(fd);
        }
        return { ok: true };
      } catch (error) {
        if (!isErrno(error, 'EEXIST')) throw error;
      }
      const current = readJson(path);
      if (
        isRecord(current) &&
        typeof current.instance === 'string' &&
        typeof current.client_id === 'number' &&
        this.registry.isLive(current.instance)
      ) {
        return { ok: false, holder: { instance: current.instance, client_id: current.client_id } };
      }
      // The holder is gone (or the file is half-written garbage from a crash): take the lock over.
      rmSync(path, { force: true });
    }
    return { ok: false, holder: { instance: 'unknown', client_id: 0 } };
  }

  release(databaseDirectory: string, holder: LeaseHolder): void {
    const path = this.file(databaseDirectory);
    const current = readJson(path);
    if (isRecord(current) && current.instance === holder.instance && current.client_id === holder.client_id) {
      rmSync(path, { force: true });
    }
  }
}

const sleepCell = new Int32Array(new SharedArrayBuffer(4));

function sleepSync(ms: number): void {
  Atomics.wait(sleepCell, 0, 0, ms);
}

/**
 * Runs `fn` while holding a mkdir(2)-based mutex. A lock older than `staleMs` belongs to a process that
 * died inside its critical section (they last milliseconds) and is broken.
 */
export function withFileMutex<T>(path: string, fn: () => T, timeoutMs = 10_000, staleMs = 5_000): T {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      mkdirSync(path);
      break;
    } catch (error) {
      if (!isErrno(error, 'EEXIST')) throw error;
    }
    try {
      if (Date.now() - statSync(path).mtimeMs > staleMs) {
        rmSync(path, { recursive: true, force: true });
        continue;
      }
    } catch (error) {
      if (!isErrno(error, 'ENOENT')) throw error;
      continue;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for lock ${path}`);
    sleepSync(5);
  }
  try {
    return fn();
  } finally {
    rmSync(path, { recursive: true, force: true });
  }
}
