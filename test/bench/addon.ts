/**
 * Native addon vs tdl 8.1.0, same libtdjson, same workload code, each phase in a fresh process.
 *
 *   npm run bench:addon                 human-readable report
 *   npm run bench:addon -- --json       ...and, as the last line, {"ours": {...}, "tdl": {...},
 *                                       "c_interface": {...}, "js_floor": {...}, "meta": {...}}
 *   options: --rounds N (RPC rounds, median reported; default 3), --quick (skip 5,000 clients)
 *
 * Workloads (test/bench/addon/workload.ts): 100 clients without parameters answer testSquareInt.
 *   sequential   one request at a time, round-robin, 10,000 round trips: p50/p99
 *   pipelined    100,000 requests, each client keeping 10 in flight (1,000 in total): requests/s, and the
 *                event loop's worst stall (monitorEventLoopDelay, 1 ms resolution) during that burst
 *   burst        100,000 requests issued 1,000 per event-loop turn without waiting (open loop)
 *   C interface  the pipelined and sequential workloads driven from C++ (test/bench/addon/c-baseline.cc):
 *                one thread that blocks in td_receive and answers each batch of answers with as many new
 *                requests, no JS: what libtdjson itself delivers on this machine at this moment
 *   JS floor     the pipelined workload over a promise API with TDLib and native code taken out
 *                (test/bench/addon/impl-js-floor.ts): the least CPU per request any JS binding's side needs
 *   clients      1,000 and 5,000 clients with a database each on disk, to authorizationStateWaitPhoneNumber:
 *                time, and RSS growth per client; then all closed
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveLibraryPath } from '../../native/index.js';

type Side = 'ours' | 'tdl';
type Figures = Record<string, number>;

interface Args {
  readonly json: boolean;
  readonly rounds: number;
  readonly quick: boolean;
}

const HERE = path.dirname(fileURLToPath(import.meta.url));
const WORKER = path.join(HERE, 'addon', 'worker.js');
// dist/test/bench -> the source next to it in the checkout
const REPO_ROOT = path.resolve(HERE, '..', '..', '..');
const C_BASELINE_SOURCE = path.join(REPO_ROOT, 'test', 'bench', 'addon', 'c-baseline.cc');
const C_BASELINE_BINARY = path.join(REPO_ROOT, 'native', 'build', 'c-baseline');
const PHASE_TIMEOUT_MS = 240_000;
/** Per-thread-role CPU figures from the workers: thread_cpu_us_js, thread_cpu_us_tdlib, ... */
const THREAD_CPU_PREFIX = 'thread_cpu_us_';
const RPC_OPTIONS = { clients: 100, seqOps: 10_000, pipelinedOps: 100_000, perClient: 10, burstOps: 100_000 };

function parseArgs(argv: readonly string[]): Args {
  const roundsAt = argv.indexOf('--rounds');
  const rounds = roundsAt >= 0 ? Number(argv[roundsAt + 1]) : 3;
  return { json: argv.includes('--json'), rounds: rounds > 0 ? rounds : 3, quick: argv.includes('--quick') };
}

function runPhase(side: Side | 'js-floor', phase: string, options: object): Promise<Figures> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', WORKER, side, phase, JSON.stringify(options)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let stdout = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${side} ${phase} did not finish within ${PHASE_TIMEOUT_MS} ms`));
    }, PHASE_TIMEOUT_MS);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const last = stdout.trim().split('\n').pop() ?? '';
      if (code !== 0) {
        reject(new Error(`${side} ${phase} exited with ${code ?? signal}: ${stdout}`));
        return;
      }
      const parsed = JSON.parse(last) as Record<string, unknown>;
      const figures: Figures = {};
      for (const [key, value] of Object.entries(parsed)) if (typeof value === 'number') figures[key] = value;
      resolve(figures);
    });
  });
}

/** Builds and runs the C baseline; undefined (with a note) when no C++ compiler is available. */
function runCBaseline(libraryPath: string): Figures | undefined {
  try {
    mkdirSync(path.dirname(C_BASELINE_BINARY), { recursive: true });
    execFileSync('c++', ['-O2', '-std=c++17', '-o', C_BASELINE_BINARY, C_BASELINE_SOURCE, '-ldl'], {
      stdio: 'pipe',
    });
    const output = execFileSync(C_BASELINE_BINARY, [libraryPath, String(RPC_OPTIONS.pipelinedOps), '1000'], {
      encoding: 'utf8',
      timeout: PHASE_TIMEOUT_MS,
    });
    return JSON.parse(output.trim().split('\n').pop() ?? '{}') as Figures;
  } catch (error) {
    console.log(
      `C baseline skipped: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`,
    );
    return undefined;
  }
}

/**
 * What 5x tdl's throughput would cost: CPU per request must fit in (busy CPUs) / rate. Set against what
 * ours spends outside JS (its library threads) plus the JS floor, it says whether the goal is reachable on
 * this machine at all. Two budgets: every CPU busy all the time (never reached), and as busy as ours
 * actually kept them during the pipelined burst.
 */
function budgetLine(ours: Figures, tdl: Figures, jsFloor: Figures, cpus: number): string {
  const target = 5 * (tdl.throughput_rps ?? NaN);
  const busyCpus = ((ours.throughput_rps ?? NaN) * (ours.process_cpu_us_per_req ?? NaN)) / 1e6;
  const library =
    (ours.thread_cpu_us_send ?? 0) + (ours.thread_cpu_us_receive ?? 0) + (ours.thread_cpu_us_tdlib ?? 0);
  const floor = jsFloor.process_cpu_us_per_req ?? NaN;
  const r = (x: number): number => Math.round(x * 100) / 100;
  return (
    `5x tdl = ${Math.round(target)} req/s allows ${r((cpus * 1e6) / target)} us CPU per request with ` +
    `${cpus} CPUs always busy, ${r((busyCpus * 1e6) / target)} us at the ${r(busyCpus)} CPUs ours kept ` +
    `busy; ours spends ${r(library)} us in its library threads (sender, receive, TDLib) and the JS floor of ` +
    `a promise API is ${r(floor)} us (JS thread + Node's helpers): ${r(library + floor)} us at best`
  );
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[middle] as number)
    : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

function medianFigures(rounds: readonly Figures[]): Figures {
  const result: Figures = {};
  for (const key of Object.keys(rounds[0] ?? {})) result[key] = median(rounds.map((r) => r[key] ?? NaN));
  return result;
}

function otherLoad(): string {
  try {
    return execFileSync('pgrep', ['-f', 'go build'], { encoding: 'utf8' }).trim()
      ? 'go build running'
      : 'none seen';
  } catch {
    return 'none seen';
  }
}

function row(label: string, ours: number | undefined, tdl: number | undefined, unit: string): string {
  const ratio = ours !== undefined && tdl !== undefined && tdl !== 0 ? `${(ours / tdl).toFixed(2)}x` : '';
  const cell = (v: number | undefined): string => (v === undefined ? '-' : String(v)).padStart(12);
  return `${label.padEnd(44)}${cell(ours)}${cell(tdl)}  ${unit.padEnd(6)} ${ratio}`;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const meta = {
    date: new Date().toISOString(),
    cpus: cpus().length,
    cpu_model: cpus()[0]?.model ?? 'unknown',
    node: process.version,
    loadavg_start: loadavg().map((l) => Math.round(l * 100) / 100),
    other_load_start: otherLoad(),
    rounds: args.rounds,
  };
  const log = (line: string): void => console.log(line);
  log(`tdjson addon vs tdl 8.1.0 on ${meta.cpus} CPUs (${meta.cpu_model}), Node ${meta.node}`);
  log(`load average at start: ${meta.loadavg_start.join(' ')}; other builds: ${meta.other_load_start}`);

  const rpc: Record<Side, Figures[]> = { ours: [], tdl: [] };
  const cRounds: Figures[] = [];
  const floorRounds: Figures[] = [];
  const libraryPath = resolveLibraryPath().file;
  for (let round = 0; round < args.rounds; round++) {
    const c = runCBaseline(libraryPath);
    if (c) {
      cRounds.push(c);
      log(`round ${round + 1} C interface: ${c.throughput_rps} req/s pipelined, p99 ${c.seq_p99_us} us`);
    }
    // Alternate who goes first, so drifting background load does not favour one side.
    const floor = await runPhase('js-floor', 'pipelined', RPC_OPTIONS);
    floorRounds.push(floor);
    log(
      `round ${round + 1} JS floor: ${floor.process_cpu_us_per_req} us CPU per request (no TDLib, no native code)`,
    );
    const order: Side[] = round % 2 === 0 ? ['ours', 'tdl'] : ['tdl', 'ours'];
    for (const side of order) {
      const figures = await runPhase(side, 'rpc', RPC_OPTIONS);
      rpc[side].push(figures);
      log(
        `round ${round + 1} ${side}: ${figures.throughput_rps} req/s pipelined, p99 ${figures.seq_p99_us} us ` +
          `(steal ${figures.seq_steal_pct} %), ` +
          `stall ${figures.max_stall_ms} ms`,
      );
    }
  }

  const clientCounts = args.quick ? [1000] : [1000, 5000];
  const clients: Record<Side, Record<number, Figures>> = { ours: {}, tdl: {} };
  for (const count of clientCounts) {
    for (const side of ['ours', 'tdl'] as const) {
      clients[side][count] = await runPhase(side, 'clients', { clients: count });
      log(`${count} clients ${side}: ready in ${clients[side][count]?.clients_ready_s} s`);
    }
  }

  const summary = (side: Side): Figures => {
    const r = medianFigures(rpc[side]);
    const c1000 = clients[side][1000] ?? {};
    const c5000 = clients[side][5000];
    return {
      throughput_rps: r.throughput_rps ?? NaN,
      seq_p50_us: r.seq_p50_us ?? NaN,
      seq_p99_us: r.seq_p99_us ?? NaN,
      seq_steal_pct: r.seq_steal_pct ?? NaN,
      max_stall_ms: r.max_stall_ms ?? NaN,
      rss_per_client_mb: c1000.rss_per_client_mb ?? NaN,
      clients_ready_s: c1000.clients_ready_s ?? NaN,
      close_s: c1000.close_s ?? NaN,
      burst_throughput_rps: r.burst_throughput_rps ?? NaN,
      burst_max_stall_ms: r.burst_max_stall_ms ?? NaN,
      stall_p99_ms: r.stall_p99_ms ?? NaN,
      js_thread_cpu_us_per_req: r.js_thread_cpu_us_per_req ?? NaN,
      js_thread_runqueue_wait_ms: r.js_thread_runqueue_wait_ms ?? NaN,
      process_cpu_us_per_req: r.process_cpu_us_per_req ?? NaN,
      ...Object.fromEntries(Object.entries(r).filter(([key]) => key.startsWith(THREAD_CPU_PREFIX))),
      ...(c5000
        ? {
            rss_per_client_mb_5000: c5000.rss_per_client_mb ?? NaN,
            clients_ready_s_5000: c5000.clients_ready_s ?? NaN,
            close_s_5000: c5000.close_s ?? NaN,
          }
        : {}),
    };
  };
  const ours = summary('ours');
  const tdl = summary('tdl');
  const cInterface = cRounds.length > 0 ? medianFigures(cRounds) : undefined;
  const jsFloor = medianFigures(floorRounds);
  const finished = {
    ...meta,
    loadavg_end: loadavg().map((l) => Math.round(l * 100) / 100),
    other_load_end: otherLoad(),
    duration_s: Math.round((Date.now() - started) / 1000),
  };

  log('');
  log(`${''.padEnd(44)}${'ours'.padStart(12)}${'tdl'.padStart(12)}         ours/tdl`);
  log(row('pipelined testSquareInt (1,000 in flight)', ours.throughput_rps, tdl.throughput_rps, 'req/s'));
  if (cInterface) {
    const share = Math.round((100 * (ours.throughput_rps ?? 0)) / (cInterface.throughput_rps ?? NaN));
    log(
      `  reference, same workload from C (one thread, batched, no JS): ${cInterface.throughput_rps} ` +
        `req/s, ${cInterface.process_cpu_us_per_req} us CPU per request, p50/p99 ${cInterface.seq_p50_us}/` +
        `${cInterface.seq_p99_us} us; ours = ${share}% of its throughput`,
    );
  }
  log(row('sequential round trip p50', ours.seq_p50_us, tdl.seq_p50_us, 'us'));
  log(row('sequential round trip p99', ours.seq_p99_us, tdl.seq_p99_us, 'us'));
  log(row('  host steal during those round trips', ours.seq_steal_pct, tdl.seq_steal_pct, '%'));
  log(row('worst event-loop stall, pipelined burst', ours.max_stall_ms, tdl.max_stall_ms, 'ms'));
  log(
    row(
      'open-loop burst (100k issued at once)',
      ours.burst_throughput_rps,
      tdl.burst_throughput_rps,
      'req/s',
    ),
  );
  log(row('worst event-loop stall, open-loop burst', ours.burst_max_stall_ms, tdl.burst_max_stall_ms, 'ms'));
  log(
    row(
      'JS thread CPU per pipelined request',
      ours.js_thread_cpu_us_per_req,
      tdl.js_thread_cpu_us_per_req,
      'us',
    ),
  );
  log(
    row('process CPU per pipelined request', ours.process_cpu_us_per_req, tdl.process_cpu_us_per_req, 'us'),
  );
  const roles = new Set(
    [...Object.keys(ours), ...Object.keys(tdl)].filter((key) => key.startsWith(THREAD_CPU_PREFIX)),
  );
  for (const key of roles) {
    log(row(`  of which ${key.slice(THREAD_CPU_PREFIX.length)} threads`, ours[key], tdl[key], 'us'));
  }
  if (cInterface) {
    const driver = cInterface.driver_thread_cpu_us_per_req ?? NaN;
    log(
      `  C reference: ${cInterface.process_cpu_us_per_req} us per request, of which its one thread ` +
        `(td_send's parsing, td_receive) ${driver} us and TDLib's threads ` +
        `${Math.round(((cInterface.process_cpu_us_per_req ?? NaN) - driver) * 100) / 100} us`,
    );
  }
  log(row('1,000 clients to WaitPhoneNumber', ours.clients_ready_s, tdl.clients_ready_s, 's'));
  log(row('RSS per client at 1,000', ours.rss_per_client_mb, tdl.rss_per_client_mb, 'MB'));
  if (!args.quick) {
    log(row('5,000 clients to WaitPhoneNumber', ours.clients_ready_s_5000, tdl.clients_ready_s_5000, 's'));
    log(row('RSS per client at 5,000', ours.rss_per_client_mb_5000, tdl.rss_per_client_mb_5000, 'MB'));
  }
  const spread = (side: Side, key: string): string => {
    const values = rpc[side].map((r) => r[key] ?? NaN);
    return `${Math.min(...values)}..${Math.max(...values)}`;
  };
  for (const side of ['ours', 'tdl'] as const) {
    log(
      `spread over rounds, ${side}: pipelined ${spread(side, 'throughput_rps')} req/s, p99 ` +
        `${spread(side, 'seq_p99_us')} us, stall ${spread(side, 'max_stall_ms')} ms`,
    );
  }
  const ratios = rpc.ours.map((r, i) =>
    ((r.throughput_rps ?? NaN) / (rpc.tdl[i]?.throughput_rps ?? NaN)).toFixed(2),
  );
  log(`pipelined throughput ours/tdl per round (same round, back to back): ${ratios.join(', ')}`);
  if (cRounds.length === rpc.tdl.length) {
    const cRatios = cRounds.map((c, i) =>
      ((c.throughput_rps ?? NaN) / (rpc.tdl[i]?.throughput_rps ?? NaN)).toFixed(2),
    );
    log(`pipelined throughput C reference/tdl per round: ${cRatios.join(', ')}`);
  }
  log(
    `median of ${args.rounds} rounds for the RPC rows; took ${finished.duration_s} s; load average at end: ${finished.loadavg_end.join(' ')}`,
  );
  log(budgetLine(ours, tdl, jsFloor, meta.cpus));
  if (args.json) {
    console.log(
      JSON.stringify({ ours, tdl, c_interface: cInterface ?? null, js_floor: jsFloor, meta: finished }),
    );
  }
}

await main();
