/**
 * A real Prometheus for end-to-end tests: the release the chart's rules are checked against (module
 * github.com/prometheus/prometheus, built and cached by test/cluster/build-tools.sh), scraping static targets
 * that carry the labels a PodMonitor or ServiceMonitor would give them (namespace, pod), with the shipped
 * alert rules loaded. Plus the reads tests make through its HTTP API.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse, stringify } from 'yaml';
import { freePort } from '../cluster/ports.js';
import { toolPath } from '../cluster/tools.js';
import { waitFor } from '../cluster/wait.js';

export const RULES_DIR = resolve('charts/tdlib-operator/prometheus_rules');

type Yaml = Record<string, unknown>;

const isObject = (value: unknown): value is Yaml =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

export interface AssembledRules {
  /** The rules file Prometheus loads. */
  path: string;
  /** Every alert in it, by name. */
  alerts: string[];
}

/**
 * The shipped alert rules (one rule per file) as one rule group in `dir`, as the chart's PrometheusRule
 * groups them, with every non-zero `for:` replaced by `forDuration` so a test sees alerts fire in seconds.
 * The expressions are left exactly as shipped.
 */
export function assembleAlertRules(dir: string, forDuration: string): AssembledRules {
  const rules = readdirSync(RULES_DIR)
    .filter((name) => name.endsWith('.yaml'))
    .sort()
    .map((name) => {
      const rule: unknown = parse(readFileSync(join(RULES_DIR, name), 'utf8'));
      if (!isObject(rule) || typeof rule.alert !== 'string') throw new Error(`${name}: not an alert rule`);
      const keep = rule.for === undefined || /^0+[smh]?$/.test(String(rule.for));
      return keep ? rule : { ...rule, for: forDuration };
    });
  const path = join(dir, 'tdlib-operator.rules.yaml');
  writeFileSync(path, stringify({ groups: [{ name: 'tdlib-operator', rules }] }, { lineWidth: 0 }));
  return { path, alerts: rules.map((r) => String(r.alert)) };
}

export interface StaticTarget {
  /** host:port */
  address: string;
  labels: Record<string, string>;
}

export interface ScrapeJob {
  job: string;
  targets: StaticTarget[];
  /** A file_sd JSON file whose targets Prometheus re-reads as it changes (pods that come and go). */
  fileSd?: string;
}

/** One series of an instant vector. */
export interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

export type QueryResult = { ok: true; series: Sample[] } | { ok: false; error: string };

export interface RuleState {
  name: string;
  type: string;
  health: string;
  lastError?: string;
  state?: string;
  query: string;
}

export interface RuleGroupState {
  name: string;
  rules: RuleState[];
}

export interface TargetState {
  labels: Record<string, string>;
  scrapeUrl: string;
  health: string;
  lastError: string;
}

export interface PrometheusServer {
  url: string;
  /** An instant query; `ok: false` with Prometheus's error (a parse error, a bad match...) when it failed. */
  tryQuery(expr: string): Promise<QueryResult>;
  /** An instant query that must succeed. */
  query(expr: string): Promise<Sample[]>;
  rules(): Promise<RuleGroupState[]>;
  targets(): Promise<TargetState[]>;
  output(): string;
  stop(): Promise<void>;
}

interface ApiResponse<T> {
  status: 'success' | 'error';
  data?: T;
  errorType?: string;
  error?: string;
}

async function api<T>(base: string, path: string, form?: Record<string, string>): Promise<ApiResponse<T>> {
  const response = await fetch(
    `${base}${path}`,
    form ? { method: 'POST', body: new URLSearchParams(form) } : { method: 'GET' },
  );
  return (await response.json()) as ApiResponse<T>;
}

async function getData<T>(base: string, path: string): Promise<T> {
  const body = await api<T>(base, path);
  if (body.status !== 'success' || body.data === undefined)
    throw new Error(`${path}: ${body.errorType ?? 'error'}: ${body.error ?? 'no data'}`);
  return body.data;
}

function launch(
  dir: string,
  port: number,
): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn(
    toolPath('prometheus'),
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout?.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr?.setEncoding('utf8').on('data', (c: string) => (out += c));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, output: () => out, exited };
}

/**
 * Starts Prometheus on a free loopback port, scraping `jobs` every second and evaluating `ruleFiles` every
 * second, and waits until it is ready. Its data lives in a temporary directory that stop() removes.
 */
export async function startPrometheus(options: {
  jobs: ScrapeJob[];
  ruleFiles?: string[];
  dir?: string;
}): Promise<PrometheusServer> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'tdlib-operator-prometheus-'));
  writeFileSync(
    join(dir, 'prometheus.yml'),
    stringify({
      global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
      rule_files: options.ruleFiles ?? [],
      scrape_configs: options.jobs.map((job) => ({
        job_name: job.job,
        static_configs: job.targets.map((t) => ({ targets: [t.address], labels: t.labels })),
        ...(job.fileSd ? { file_sd_configs: [{ files: [job.fileSd], refresh_interval: '1s' }] } : {}),
      })),
    }),
  );
  // The port is free when asked for; another process may take it before Prometheus binds: try again.
  let lastOutput = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const run = launch(dir, port);
    let exitCode: number | null | undefined;
    void run.exited.then((code) => (exitCode = code));
    const state = await waitFor(
      'Prometheus to be ready',
      async () => {
        if (exitCode !== undefined) return 'exited';
        const response = await fetch(`${base}/-/ready`).catch(() => undefined);
        return response?.ok ? 'ready' : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 100, onTimeout: () => run.output().slice(-3000) },
    ).catch((error: unknown) => {
      lastOutput = error instanceof Error ? error.message : String(error);
      return 'timeout' as const;
    });
    if (state !== 'ready') {
      if (state === 'exited')
        lastOutput = `prometheus exited with ${String(exitCode)}\n${run.output().slice(-3000)}`;
      if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
      await run.exited;
      continue;
    }
    return {
      url: base,
      tryQuery: async (expr) => {
        const body = await api<{ resultType: string; result: unknown }>(base, '/api/v1/query', {
          query: expr,
        });
        if (body.status !== 'success' || body.data === undefined)
          return { ok: false, error: `${body.errorType ?? 'error'}: ${body.error ?? 'no data'}` };
        if (body.data.resultType !== 'vector')
          return { ok: false, error: `result type ${body.data.resultType}, want vector` };
        return { ok: true, series: body.data.result as Sample[] };
      },
      query: async (expr) => {
        const body = await api<{ resultType: string; result: Sample[] }>(base, '/api/v1/query', {
          query: expr,
        });
        if (body.status !== 'success' || body.data === undefined)
          throw new Error(`${expr}: ${body.errorType ?? 'error'}: ${body.error ?? 'no data'}`);
        return body.data.result;
      },
      rules: async () => (await getData<{ groups: RuleGroupState[] }>(base, '/api/v1/rules')).groups,
      targets: async () =>
        (await getData<{ activeTargets: TargetState[] }>(base, '/api/v1/targets?state=active')).activeTargets,
      output: run.output,
      stop: async () => {
        if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGTERM');
        const timer = setTimeout(() => run.child.kill('SIGKILL'), 10_000);
        await run.exited;
        clearTimeout(timer);
        if (!options.dir) rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  if (!options.dir) rmSync(dir, { recursive: true, force: true });
  throw new Error(`Prometheus did not start:\n${lastOutput}`);
}
