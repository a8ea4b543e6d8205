/**
 * CPU time per thread of this process, from the kernel's scheduler statistics (nanoseconds), grouped by
 * role: where a request's CPU goes is the profile that explains the throughput figures.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Names a thread's role from its id and its name (comm); the JS thread is already 'js'. */
export type ThreadClassifier = (tid: number, name: string) => string;

type Snapshot = Map<number, { readonly name: string; readonly ns: number }>;

function readThread(tid: number): { name: string; ns: number } | undefined {
  try {
    const name = readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim();
    const ns = Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    return Number.isFinite(ns) ? { name, ns } : undefined;
  } catch {
    return undefined; // the thread ended between listing and reading
  }
}

export function threadIds(): number[] {
  try {
    return readdirSync('/proc/self/task').map(Number);
  } catch {
    return [];
  }
}

export function snapshotThreads(): Snapshot {
  const snapshot: Snapshot = new Map();
  for (const tid of threadIds()) {
    const thread = readThread(tid);
    if (thread) snapshot.set(tid, thread);
  }
  return snapshot;
}

/**
 * CPU microseconds per operation between two snapshots, summed by role. Threads that ended in between are
 * missing from `after` and their time is lost, so this is a lower bound for short-lived threads.
 */
export function cpuPerOperationByRole(
  before: Snapshot,
  after: Snapshot,
  operations: number,
  classify: ThreadClassifier,
): Record<string, number> {
  const byRole: Record<string, number> = {};
  for (const [tid, thread] of after) {
    const role = tid === process.pid ? 'js' : classify(tid, thread.name);
    const ns = thread.ns - (before.get(tid)?.ns ?? 0);
    byRole[role] = (byRole[role] ?? 0) + ns;
  }
  const result: Record<string, number> = {};
  for (const [role, ns] of Object.entries(byRole)) result[role] = Math.round(ns / 10 / operations) / 100;
  return result;
}
