/**
 * What the soak benchmark samples from one of its processes (the operator or a runtime): RSS from /proc, and
 * from its /metrics the V8 heap in use and held (in all and by space), external memory, open handles, event listeners,
 * MaxListenersExceededWarning count and (runtimes) TDLib clients.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { get } from 'node:http';
import { promisify } from 'node:util';
import { LISTENERS_METRIC, MAX_LISTENERS_WARNINGS_METRIC } from '../../operator/kube/listener-metrics.js';
import { metricSum } from '../support/operator.js';

export interface ProcessSample {
  rss_mb: number;
  heap_mb: number;
  /** What V8 holds for its heap (used or not): RSS that grows with this and not heap_mb is V8 keeping room. */
  heap_total_mb: number;
  /** heap_total_mb by V8 space: which part V8 holds more of (old objects, young ones, compiled code, large objects). */
  heap_old_total_mb: number;
  heap_new_total_mb: number;
  heap_code_total_mb: number;
  heap_large_object_total_mb: number;
  /** Memory of C++ objects bound to JS objects (Buffers, TLS): RSS that grows with this is native. */
  external_mb: number;
  handles: number;
  listeners: number;
  /** TDLib clients open (runtimes; 0 for the operator, which has none). */
  clients: number;
  max_listeners_warnings: number;
  /** Open handles by libuv type (Socket, Timeout, ...): what to look at when handles stay above baseline. */
  handle_types: Record<string, number>;
}

export type SeriesName = Exclude<keyof ProcessSample, 'max_listeners_warnings' | 'handle_types'>;
export const SERIES: readonly SeriesName[] = [
  'rss_mb',
  'heap_mb',
  'heap_total_mb',
  'heap_old_total_mb',
  'heap_new_total_mb',
  'heap_code_total_mb',
  'heap_large_object_total_mb',
  'external_mb',
  'handles',
  'listeners',
  'clients',
];

export interface Probe {
  readonly name: string;
  readonly pid: number;
  readonly metricsUrl: string;
}

export function rssMb(pid: number): number {
  try {
    const kb = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)?.[1];
    return Number(kb ?? 0) / 1024;
  } catch {
    return 0;
  }
}

/** One sample, or undefined when the process did not answer its /metrics in time (it is then skipped). */
export async function sampleProcess(probe: Probe, timeoutMs = 5_000): Promise<ProcessSample | undefined> {
  let text: string;
  try {
    text = await scrapeOnce(probe.metricsUrl, timeoutMs);
  } catch {
    return undefined;
  }
  return {
    rss_mb: rssMb(probe.pid),
    heap_mb: metricSum(text, 'nodejs_heap_size_used_bytes') / 2 ** 20,
    heap_total_mb: metricSum(text, 'nodejs_heap_size_total_bytes') / 2 ** 20,
    heap_old_total_mb: heapSpace(text, 'old'),
    heap_new_total_mb: heapSpace(text, 'new'),
    heap_code_total_mb: heapSpace(text, 'code'),
    heap_large_object_total_mb: heapSpace(text, 'large_object'),
    external_mb: metricSum(text, 'nodejs_external_memory_bytes') / 2 ** 20,
    handles: metricSum(text, 'nodejs_active_handles_total'),
    listeners: metricSum(text, LISTENERS_METRIC),
    clients: metricSum(text, 'tdlib_active_clients'),
    max_listeners_warnings: metricSum(text, MAX_LISTENERS_WARNINGS_METRIC),
    handle_types: handleTypes(text),
  };
}

/**
 * GET on a connection of its own that the server closes after answering: the sample's open handles then
 * count no idle keep-alive connection left over from an earlier sample, only the one answering it.
 */
function scrapeOnce(url: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const request = get(url, { agent: false, signal: AbortSignal.timeout(timeoutMs) }, (response) => {
      if (response.statusCode !== 200) {
        response.resume();
        reject(new Error(`${url}: HTTP ${response.statusCode}`));
        return;
      }
      response.setEncoding('utf8');
      let body = '';
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve(body));
      response.on('error', reject);
    });
    request.on('error', reject);
  });
}

/** What V8 holds for one heap space (prom-client's `space` label: old, new, code, large_object, ...), in MB. */
function heapSpace(text: string, space: string): number {
  return metricSum(text, 'nodejs_heap_space_size_total_bytes', { space }) / 2 ** 20;
}

function handleTypes(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^nodejs_active_handles\{type="([^"]*)"\} (\S+)$/gm))
    out[m[1] ?? ''] = (out[m[1] ?? ''] ?? 0) + Number(m[2]);
  return out;
}

const execFileAsync = promisify(execFile);

/**
 * Heap that survives full garbage collections (used heap + external, MB), through the process's inspector:
 * heap used between collections moves by tens of MB with when V8 collects, this does not. Node 20's
 * WebSocket is behind a flag, so a short child process talks to the inspector (as bench:campaign does).
 */
export async function liveHeapMb(inspectorUrl: string): Promise<number> {
  const usage = await memoryAfterFullGc(inspectorUrl);
  return (usage.heapUsed + usage.external) / 2 ** 20;
}

/** process.memoryUsage() of another process right after two full collections, through its inspector. */
export async function memoryAfterFullGc(inspectorUrl: string): Promise<NodeJS.MemoryUsage> {
  const script = `
    const ws = new WebSocket(process.argv[1]);
    const pending = new Map();
    let id = 0;
    const call = (method, params = {}) =>
      new Promise((r) => { pending.set(++id, r); ws.send(JSON.stringify({ id, method, params })); });
    ws.onmessage = (e) => { const m = JSON.parse(e.data); pending.get(m.id)?.(m); };
    ws.onopen = async () => {
      await call('HeapProfiler.collectGarbage');
      await call('HeapProfiler.collectGarbage');
      const r = await call('Runtime.evaluate', { expression: 'JSON.stringify(process.memoryUsage())', returnByValue: true });
      console.log(r.result.result.value);
      process.exit(0);
    };`;
  const { stdout } = await execFileAsync(
    process.execPath,
    ['--experimental-websocket', '--no-warnings', '-e', script, inspectorUrl],
    { timeout: 60_000 },
  );
  return JSON.parse(stdout) as NodeJS.MemoryUsage;
}

/** The inspector address a process started with --inspect=127.0.0.1:0 printed into its log. */
export function inspectorUrlIn(logPath: string): string | undefined {
  try {
    return readFileSync(logPath, 'utf8').match(/Debugger listening on (ws:\/\/\S+)/)?.[1];
  } catch {
    return undefined;
  }
}
