/**
 * The measured workloads, written once against BenchImpl so both sides run identical code.
 */
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { BenchClient } from './impl.js';
import { percentile, round } from './stats.js';
import { cpuPerOperationByRole, snapshotThreads, type ThreadClassifier } from './thread-cpu.js';

export interface RpcFigures {
  readonly seq_p50_us: number;
  readonly seq_p99_us: number;
  readonly seq_ops: number;
  /**
   * Share of the machine's CPU time the hypervisor took (steal) during the sequential round trips. On this
   * VM the p99 follows it: a round trip whose thread's vCPU is descheduled waits for the host.
   */
  readonly seq_steal_pct: number;
  readonly throughput_rps: number;
  readonly pipelined_ops: number;
  readonly pipelined_s: number;
  readonly in_flight: number;
  readonly max_stall_ms: number;
  readonly stall_p99_ms: number;
  /** Open loop: all requests issued (1,000 per event-loop turn) before any answer is awaited. */
  readonly burst_throughput_rps: number;
  readonly burst_max_stall_ms: number;
  /** CPU time of the JS thread per pipelined request: what bounds throughput on a busy machine. */
  readonly js_thread_cpu_us_per_req: number;
  /** Time the JS thread was runnable but waiting for a CPU during the burst (other threads, other load). */
  readonly js_thread_runqueue_wait_ms: number;
  /** CPU time of the whole process (all threads: JS, TDLib's, the addon's) per pipelined request. */
  readonly process_cpu_us_per_req: number;
  /** The same, split by thread role (js, node_helpers, and the library's: tdlib, receive, send...). */
  readonly thread_cpu_us_per_req: Record<string, number>;
}

/** The JS thread's [on-CPU ns, runnable-but-waiting ns] from the kernel's scheduler statistics. */
function threadSchedstat(): [number, number] {
  try {
    const [run, wait] = readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ').map(Number);
    return [run ?? NaN, wait ?? NaN];
  } catch {
    return [NaN, NaN];
  }
}

/** The machine's aggregate CPU times (the "cpu" line of /proc/stat, in clock ticks), empty if unreadable. */
function machineCpuTimes(): number[] {
  try {
    return (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
  } catch {
    return [];
  }
}

/** Steal (the 8th field) as a percentage of all CPU time between two readings; NaN if unknown. */
function stealPercent(before: readonly number[], after: readonly number[]): number {
  const delta = after.map((value, i) => value - (before[i] ?? NaN));
  const total = delta.reduce((sum, value) => sum + value, 0);
  const steal = delta[7];
  return steal === undefined || !(total > 0) ? NaN : round((100 * steal) / total, 1);
}

/**
 * `total` testSquareInt requests spread over the clients, each client keeping `perClient` requests in
 * flight (a new one is sent as soon as one is answered). Every answer is checked.
 */
export async function pipelined(
  clients: readonly BenchClient[],
  total: number,
  perClient: number,
): Promise<void> {
  let issued = 0;
  const lane = async (client: BenchClient): Promise<void> => {
    while (issued < total) {
      const x = issued++ % 46341;
      const value = await client.squareInt(x);
      if (value !== x * x) throw new Error(`testSquareInt(${x}) answered ${value}`);
    }
  };
  const lanes: Promise<void>[] = [];
  for (const client of clients) for (let i = 0; i < perClient; i++) lanes.push(lane(client));
  await Promise.all(lanes);
}

/**
 * Open loop: all `total` requests are issued without waiting for answers, `chunk` per event-loop turn
 * (so issuing them is not itself one long stall), round-robin over the clients; then every answer is
 * awaited and checked.
 */
export async function burst(clients: readonly BenchClient[], total: number, chunk: number): Promise<void> {
  const answers: Promise<void>[] = [];
  for (let issued = 0; issued < total;) {
    const end = Math.min(total, issued + chunk);
    for (; issued < end; issued++) {
      const x = issued % 46341;
      const client = clients[issued % clients.length] as BenchClient;
      answers.push(
        client.squareInt(x).then((value) => {
          if (value !== x * x) throw new Error(`testSquareInt(${x}) answered ${value}`);
        }),
      );
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  await Promise.all(answers);
}

/** One request at a time, round-robin over the clients; returns each round trip in microseconds. */
export async function sequential(clients: readonly BenchClient[], ops: number): Promise<number[]> {
  const samples = new Array<number>(ops);
  for (let i = 0; i < ops; i++) {
    const client = clients[i % clients.length] as BenchClient;
    const started = performance.now();
    const value = await client.squareInt(i % 1000);
    samples[i] = (performance.now() - started) * 1000;
    if (value !== (i % 1000) ** 2) throw new Error('wrong answer');
  }
  return samples;
}

/** The pipelined workload, timed, with its CPU per request in total and by thread role. */
interface PipelinedRun {
  readonly seconds: number;
  readonly processCpuUsPerReq: number;
  readonly byThread: Record<string, number>;
}

async function timedPipelined(
  clients: readonly BenchClient[],
  options: { readonly pipelinedOps: number; readonly perClient: number },
  classifyThread: ThreadClassifier,
): Promise<PipelinedRun> {
  const threadsBefore = snapshotThreads();
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  await pipelined(clients, options.pipelinedOps, options.perClient);
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const byThread = cpuPerOperationByRole(
    threadsBefore,
    snapshotThreads(),
    options.pipelinedOps,
    classifyThread,
  );
  return { seconds, processCpuUsPerReq: round((cpu.user + cpu.system) / options.pipelinedOps, 2), byThread };
}

/**
 * Only the pipelined workload (after a warm-up), with CPU per request in total and by thread role: for the
 * JS floor, which has no sequential round trip worth measuring.
 */
export async function measurePipelinedCpu(
  clients: readonly BenchClient[],
  options: { readonly pipelinedOps: number; readonly perClient: number },
  classifyThread: ThreadClassifier,
): Promise<Record<string, number>> {
  await pipelined(clients, 10_000, options.perClient);
  const run = await timedPipelined(clients, options, classifyThread);
  return {
    throughput_rps: Math.round(options.pipelinedOps / run.seconds),
    process_cpu_us_per_req: run.processCpuUsPerReq,
    ...Object.fromEntries(Object.entries(run.byThread).map(([role, us]) => [`thread_cpu_us_${role}`, us])),
  };
}

export async function measureRpc(
  clients: readonly BenchClient[],
  options: {
    readonly seqOps: number;
    readonly pipelinedOps: number;
    readonly perClient: number;
    readonly burstOps: number;
  },
  classifyThread: ThreadClassifier = () => 'library',
): Promise<RpcFigures> {
  await pipelined(clients, 10_000, options.perClient);
  await sequential(clients, 1_000);

  const cpuTimesBefore = machineCpuTimes();
  const samples = await sequential(clients, options.seqOps);
  const stealPct = stealPercent(cpuTimesBefore, machineCpuTimes());

  // Node's event-loop delay monitor: a 1 ms timer whose lateness is recorded; max is the worst stall.
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const schedBefore = threadSchedstat();
  const run = await timedPipelined(clients, options, classifyThread);
  const seconds = run.seconds;
  const schedAfter = threadSchedstat();
  delay.disable();

  const burstDelay = monitorEventLoopDelay({ resolution: 1 });
  burstDelay.enable();
  const burstStarted = performance.now();
  await burst(clients, options.burstOps, 1000);
  const burstSeconds = (performance.now() - burstStarted) / 1000;
  burstDelay.disable();

  return {
    seq_p50_us: round(percentile(samples, 50)),
    seq_p99_us: round(percentile(samples, 99)),
    seq_ops: options.seqOps,
    seq_steal_pct: stealPct,
    throughput_rps: Math.round(options.pipelinedOps / seconds),
    pipelined_ops: options.pipelinedOps,
    pipelined_s: round(seconds, 3),
    in_flight: clients.length * options.perClient,
    max_stall_ms: round(delay.max / 1e6, 2),
    stall_p99_ms: round(delay.percentile(99) / 1e6, 2),
    burst_throughput_rps: Math.round(options.burstOps / burstSeconds),
    burst_max_stall_ms: round(burstDelay.max / 1e6, 2),
    js_thread_cpu_us_per_req: round((schedAfter[0] - schedBefore[0]) / 1000 / options.pipelinedOps, 2),
    js_thread_runqueue_wait_ms: round((schedAfter[1] - schedBefore[1]) / 1e6),
    process_cpu_us_per_req: run.processCpuUsPerReq,
    thread_cpu_us_per_req: run.byThread,
  };
}
