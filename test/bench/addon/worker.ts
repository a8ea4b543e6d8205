/**
 * One benchmark phase for one side, in its own process (TDLib's memory and threads are per process, so
 * sharing one would mix the two sides' figures). Prints its figures as a JSON object on the last line.
 *
 *   node worker.js <ours|tdl> rpc '{"clients":100,"seqOps":10000,"pipelinedOps":100000,"perClient":10,"burstOps":100000}'
 *   node worker.js <ours|tdl> clients '{"clients":1000}'
 *   node worker.js js-floor pipelined '{"clients":100,"pipelinedOps":100000,"perClient":10}'
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { resolveLibraryPath } from '../../../native/index.js';
import type { BenchImpl } from './impl.js';
import { createOurs } from './impl-ours.js';
import { createJsFloorClients } from './impl-js-floor.js';
import { createTdl } from './impl-tdl.js';
import { mb, round } from './stats.js';
import { threadIds } from './thread-cpu.js';
import { measurePipelinedCpu, measureRpc } from './workload.js';

interface PhaseOptions {
  readonly clients: number;
  readonly seqOps?: number;
  readonly pipelinedOps?: number;
  readonly perClient?: number;
  readonly burstOps?: number;
}

function collectGarbage(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    gc();
  }
}

async function clientsPhase(impl: BenchImpl, count: number): Promise<Record<string, number>> {
  const dir = mkdtempSync(path.join(tmpdir(), `tdlib-bench-${impl.name}-`));
  try {
    collectGarbage();
    const rssBefore = process.memoryUsage.rss();
    const started = performance.now();
    await impl.initializedClients(count, dir);
    const readySeconds = (performance.now() - started) / 1000;
    collectGarbage();
    const rssAfter = process.memoryUsage.rss();
    const closeStarted = performance.now();
    await impl.closeAll();
    const closeSeconds = (performance.now() - closeStarted) / 1000;
    return {
      clients: count,
      clients_ready_s: round(readySeconds, 2),
      rss_before_mb: round(mb(rssBefore)),
      rss_after_mb: round(mb(rssAfter)),
      rss_per_client_mb: round(mb(rssAfter - rssBefore) / count, 3),
      close_s: round(closeSeconds, 2),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const [side, phase, optionsJson] = process.argv.slice(2);
  const options = JSON.parse(optionsJson ?? '{}') as PhaseOptions;
  if (side === 'js-floor') {
    const floor = await measurePipelinedCpu(
      createJsFloorClients(options.clients),
      { pipelinedOps: options.pipelinedOps ?? 100_000, perClient: options.perClient ?? 10 },
      () => 'node_helpers', // no library here: every other thread is Node's
    );
    console.log(JSON.stringify({ side, phase, ...floor }));
    process.exit(0);
  }
  const libraryPath = resolveLibraryPath().file;
  // Threads that exist before the library is loaded are Node's own (V8's GC and compiler helpers, libuv).
  const nodeThreads = new Set(threadIds());
  const impl = side === 'tdl' ? createTdl(libraryPath) : createOurs(libraryPath);
  let figures: object;
  if (phase === 'rpc') {
    const clients = impl.bareClients(options.clients);
    const rpc = await measureRpc(
      clients,
      {
        seqOps: options.seqOps ?? 10_000,
        pipelinedOps: options.pipelinedOps ?? 100_000,
        perClient: options.perClient ?? 10,
        burstOps: options.burstOps ?? 100_000,
      },
      (tid, name) => (nodeThreads.has(tid) ? 'node_helpers' : (impl.threadRole?.(tid, name) ?? 'library')),
    );
    // Flattened: the parent keeps numeric fields only, and takes the median of each over the rounds.
    const { thread_cpu_us_per_req: byThread, ...rest } = rpc;
    const threadFigures = Object.fromEntries(
      Object.entries(byThread).map(([role, us]) => [`thread_cpu_us_${role}`, us]),
    );
    figures = { ...rest, ...threadFigures, diagnostics: impl.diagnostics?.() };
    await impl.closeAll();
  } else if (phase === 'clients') {
    figures = await clientsPhase(impl, options.clients);
  } else {
    throw new Error(`unknown phase ${phase}`);
  }
  console.log(JSON.stringify({ side: impl.name, phase, ...figures }));
  // Every client is closed (closeAll waited for authorizationStateClosed), so exiting now is safe.
  process.exit(0);
}

await main();
