/**
 * TDLIB_SESSION_TTL_SECONDS: local TDLib databases of accounts this pod no longer hosts are removed once
 * unused for that long, so a pod volume does not fill up with the sessions of accounts that moved away or
 * were deleted (their sessions live on in the backup Secret).
 *
 * A directory's mtime does not change while TDLib rewrites files inside it, so "last used" is kept by
 * touching the directories of accounts in use on every sweep.
 */
import { existsSync, readdirSync, rmSync, statSync, utimesSync } from 'node:fs';
import { join } from 'node:path';

export interface SessionDir {
  /** The account's name: its database directory under <data dir>/<namespace>/. */
  readonly name: string;
  readonly mtimeMs: number;
}

export interface SweepPlan {
  /** In use: touched, so that their age counts from the last sweep that saw them in use. */
  readonly touch: readonly string[];
  /** Not in use for longer than the TTL. */
  readonly remove: readonly string[];
}

export function planSessionSweep(
  dirs: readonly SessionDir[],
  inUse: (name: string) => boolean,
  nowMs: number,
  ttlSeconds: number,
): SweepPlan {
  const touch: string[] = [];
  const remove: string[] = [];
  for (const dir of dirs) {
    if (inUse(dir.name)) touch.push(dir.name);
    else if (nowMs - dir.mtimeMs > ttlSeconds * 1000) remove.push(dir.name);
  }
  return { touch, remove };
}

/** Applies the plan to the directories under `root`; returns the names removed. */
export function sweepSessionDirs(
  root: string,
  inUse: (name: string) => boolean,
  nowMs: number,
  ttlSeconds: number,
): readonly string[] {
  if (!existsSync(root)) return [];
  const dirs: SessionDir[] = [];
  for (const name of readdirSync(root)) {
    const stat = statSync(join(root, name), { throwIfNoEntry: false });
    if (stat?.isDirectory()) dirs.push({ name, mtimeMs: stat.mtimeMs });
  }
  const plan = planSessionSweep(dirs, inUse, nowMs, ttlSeconds);
  const now = new Date(nowMs);
  for (const name of plan.touch) utimesSync(join(root, name), now, now);
  for (const name of plan.remove) rmSync(join(root, name), { recursive: true, force: true });
  return plan.remove;
}
