/**
 * Operator benchmark: starts its own control plane (etcd, apiserver, controller-manager, scheduler, kwok),
 * creates N TelegramAccounts over 3 pools, starts the operator and measures how long until every account is
 * placed and every runtime pod is Ready, the operator's RSS, its API writes per account, its writes during an
 * idle window after convergence, and the work queue's p99 latency.
 *
 * Before the operator, the same run measures what a tight client gets from this control plane for the same
 * kinds of writes (api-ceiling.ts), and reports the operator's write rate as a share of that ceiling. It also
 * reads the API server's CPU time: per write of each kind while the tight client writes, and per account while
 * the operator converges, so a ratio below 1 shows whether the operator asked more of the API server than the
 * ceiling's writes do, or left it less of the machine. The operator runs as the chart runs it: its ServiceAccount
 * under the shipped ClusterRole (config/rbac), authenticated by a token.
 *
 *   npm run bench:operator -- [--json] [--accounts N] [--idle-seconds S] [--per-pod P] [--ceiling-writes N] [--ceiling-rounds R] [--probes N]
 *     [--existing-sessions-kb K]
 * After the idle window, --probes accounts are created one at a time (each after the previous one was
 * Scheduled) and the time from sending each create to seeing its Scheduled condition is reported (p50, p99).
 * The ceiling is measured in --ceiling-rounds passes (default 3): each kind's ceiling is its median, and the
 * ratio is also given against each pass's ceiling, so its spread shows.
 * --existing-sessions-kb K (K > 0) is another scenario: an operator restarted over accounts that already have
 * their session Secrets, each with a key and a K KB session backup, as a runtime leaves them. What the operator's
 * Secret watch costs with real backups in them shows in its CPU, RSS and time to converge; its writes per account
 * lack the Secret creates, so they are not comparable with the first scenario's.
 * Prints human-readable lines, then (with --json) one JSON object as the last line.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { allCrds, API_VERSION, type TelegramAccount } from '../../crds/index.js';
import { RestClient, loadKubeConfig } from '../../operator/kube/client.js';
import { createLogger } from '../../operator/kube/logging.js';
import { createRegistry } from '../../operator/kube/metrics.js';
import { forEachLimited } from '../../operator/kube/util.js';
import { Informer } from '../../operator/kube/reflector.js';
import { Resources, type ApiObject } from '../../operator/kube/resource.js';
import {
  FINALIZER,
  LABEL_ACCOUNT,
  LABEL_MANAGED_BY,
  MANAGED_BY,
  SESSION_KEY_BYTES,
  SESSION_SECRET_KEY_FIELD,
  sessionSecretName,
} from '../../crds/naming.js';
import { TelegramAccountResource } from '../../crds/resources.js';
import { ControlPlane } from '../cluster/control-plane.js';
import { freePort } from '../cluster/ports.js';
import { waitFor } from '../cluster/wait.js';
import { metricSum, operatorKubeconfig } from '../support/operator.js';
import { operatorByEntrypoint } from './entrypoint.js';
import {
  auditedWrites,
  measureApiCeiling,
  mixCeiling,
  mixCeilingByRound,
  roundsReport,
  mixCpuMsPerAccount,
  writesByResource,
} from './api-ceiling.js';
import { machineCores, machineCpuSeconds, processCpuSeconds } from './proc-cpu.js';

interface Args {
  json: boolean;
  accounts: number;
  idleSeconds: number;
  perPod: number;
  ceilingWrites: number;
  ceilingRounds: number;
  probes: number;
  existingSessionsKb: number;
}

function parseArgs(argv: string[]): Args {
  const args: Args = {
    json: false,
    accounts: 10_000,
    idleSeconds: 120,
    perPod: 100,
    ceilingWrites: 2000,
    ceilingRounds: 3,
    probes: 100,
    existingSessionsKb: 0,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): number => {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < 0) throw new Error(`${a} takes a whole number`);
      return v;
    };
    if (a === '--json') args.json = true;
    else if (a === '--accounts') args.accounts = value();
    else if (a === '--idle-seconds') args.idleSeconds = value();
    else if (a === '--per-pod') args.perPod = value();
    else if (a === '--ceiling-writes') args.ceilingWrites = value();
    else if (a === '--ceiling-rounds') args.ceilingRounds = value();
    else if (a === '--probes') args.probes = value();
    else if (a === '--existing-sessions-kb') args.existingSessionsKb = value();
    else
      throw new Error(
        `unknown argument ${a}; expected --json, --accounts N, --idle-seconds S, --per-pod P, --ceiling-writes N, --ceiling-rounds R, --probes N, --existing-sessions-kb K`,
      );
  }
  if (args.ceilingRounds < 1) throw new Error('--ceiling-rounds takes a whole number >= 1');
  return args;
}

const POOLS = ['alpha', 'beta', 'gamma'];
/** Requests the tight client keeps in flight (what the reference measurement used). */
const CEILING_IN_FLIGHT = 32;

const roundValues = <T extends Partial<Record<string, number>>>(values: T, digits = 1): T =>
  Object.fromEntries(
    Object.entries(values).map(([k, v]) => [k, v === undefined ? v : Number(v.toFixed(digits))]),
  ) as T;
const NAMESPACE = 'bench';

/**
 * The 0.99 quantile of a Prometheus histogram, interpolated linearly inside the bucket that holds it, as
 * PromQL's histogram_quantile does (several label sets are summed).
 */
function histogramP99(text: string, name: string, labels: Record<string, string>): number {
  const byBound = new Map<number, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}_bucket{`)) continue;
    const labelText = line.match(/\{(.*)\}/)?.[1] ?? '';
    const found = Object.fromEntries([...labelText.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (!Object.entries(labels).every(([k, v]) => found[k] === v)) continue;
    const le = found.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(found.le);
    byBound.set(le, (byBound.get(le) ?? 0) + Number(line.split(' ').pop()));
  }
  const buckets = [...byBound.entries()].sort((a, b) => a[0] - b[0]);
  const total = buckets[buckets.length - 1]?.[1] ?? 0;
  if (total === 0) return 0;
  const rank = total * 0.99;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const [bound, count] of buckets) {
    if (count >= rank) {
      if (!Number.isFinite(bound)) return lowerBound;
      return lowerBound + (bound - lowerBound) * ((rank - lowerCount) / Math.max(1, count - lowerCount));
    }
    lowerBound = bound;
    lowerCount = count;
  }
  return lowerBound;
}

/** An account's session Secret as the operator makes it and a runtime fills it: its key and a backup. */
const existingSessionSecret = (account: string, session: string): ApiObject =>
  ({
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: {
      name: sessionSecretName(account),
      namespace: NAMESPACE,
      labels: { [LABEL_MANAGED_BY]: MANAGED_BY, [LABEL_ACCOUNT]: account },
    },
    data: { [SESSION_SECRET_KEY_FIELD]: randomBytes(SESSION_KEY_BYTES).toString('base64'), session },
  }) as ApiObject;

/** A bot account of the benchmark, in pool i mod 3. */
const benchAccount = (name: string, i: number): ApiObject =>
  ({
    apiVersion: API_VERSION,
    kind: 'TelegramAccount',
    metadata: { name, namespace: NAMESPACE },
    spec: {
      type: 'Bot',
      botTokenSecretRef: { name: 'bot' },
      apiCredentialsSecretRef: { name: 'api' },
      runtimePool: POOLS[i % POOLS.length],
    },
  }) as ApiObject;

const quantile = (sorted: readonly number[], q: number): number =>
  sorted.length === 0 ? 0 : (sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? 0);

/** Creates `count` accounts one at a time, each once the previous was Scheduled (seen by the watch). */
async function scheduleLatencies(
  rest: RestClient,
  accounts: Informer<TelegramAccount & ApiObject>,
  count: number,
): Promise<{ p50: number; p99: number; max: number }> {
  const waiting = new Map<string, () => void>();
  const unsubscribe = accounts.onEvent((_type, account) => {
    const done = waiting.get(account.metadata.name ?? '');
    if (done && account.status?.conditions?.some((c) => c.type === 'Scheduled' && c.status === 'True'))
      done();
  });
  const latencies: number[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const name = `probe-${String(i).padStart(4, '0')}`;
      const scheduled = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${name} not Scheduled within 60 s`)), 60_000);
        waiting.set(name, () => {
          clearTimeout(timer);
          resolve();
        });
      });
      const started = performance.now();
      await rest.create(TelegramAccountResource, benchAccount(name, i));
      await scheduled;
      latencies.push(performance.now() - started);
      waiting.delete(name);
    }
  } finally {
    unsubscribe();
  }
  const sorted = [...latencies].sort((a, b) => a - b);
  return { p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99), max: sorted.at(-1) ?? 0 };
}

function rssMb(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string): number => Number(status.match(new RegExp(`${key}:\\s+(\\d+)`))?.[1] ?? 0);
  return { rss: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const log = (line: string): void => console.log(line);
  const dir = mkdtempSync(join(tmpdir(), 'tdlib-operator-bench-'));
  const expectedPods = POOLS.reduce((sum, _p, i) => {
    const inPool = Math.floor(args.accounts / POOLS.length) + (i < args.accounts % POOLS.length ? 1 : 0);
    return sum + Math.ceil(inPool / args.perPod);
  }, 0);
  const nodes = Math.max(3, Math.ceil(expectedPods / 200));
  log(`starting a control plane with ${nodes} kwok nodes in ${dir}`);
  const plane = await ControlPlane.start({ dir, controllers: true, kwokNodes: nodes, auditWrites: true });
  const logger = createLogger({ name: 'bench', level: 'warn' });
  const rest = new RestClient(loadKubeConfig(plane.info.kubeconfigPath), {
    registry: createRegistry(),
    logger,
    maxConcurrentRequests: 64,
  });
  let operatorPid = 0;
  try {
    for (const crd of allCrds())
      await rest.applyPatch(Resources.CustomResourceDefinition, crd as ApiObject, { fieldManager: 'bench' });
    await waitFor(
      'CRDs served',
      async () => (await rest.list(TelegramAccountResource, { limit: 1 }).then(() => true)) || undefined,
      { timeoutMs: 30_000 },
    );
    await rest.create(Resources.Namespace, {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: NAMESPACE },
    });
    await rest.create(Resources.Namespace, {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: 'tdlib-operator-system' },
    });
    await rest.create(Resources.Secret, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name: 'api',
        namespace: NAMESPACE,
        labels: { 'telegram.tdlib-operator.dev/usable-by-accounts': 'true' },
      },
      stringData: { api_id: '1', api_hash: 'x' },
    } as ApiObject);
    await rest.create(Resources.Secret, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name: 'bot',
        namespace: NAMESPACE,
        labels: { 'telegram.tdlib-operator.dev/usable-by-accounts': 'true' },
      },
      stringData: { token: '1:x' },
    } as ApiObject);

    log(
      `measuring the API server's ceiling: ${args.ceilingWrites} writes of each kind, ${CEILING_IN_FLIGHT} in flight, ${args.ceilingRounds} rounds`,
    );
    const apiServerPid = plane.info.pids['kube-apiserver'];
    const { rates, apiCpuMsPerWrite, roundRates } = await measureApiCeiling({
      apiServerUrl: plane.info.apiServerUrl,
      pki: plane.info.pki,
      namespace: 'bench-ceiling',
      count: args.ceilingWrites,
      inFlight: CEILING_IN_FLIGHT,
      rounds: args.ceilingRounds,
      apiServerPid,
    });
    for (const [round, measured] of roundRates.entries())
      log(`  round ${round + 1}, writes/s: ${JSON.stringify(roundValues(measured))}`);
    log(`  tight client, writes/s (median of the rounds): ${JSON.stringify(roundValues(rates))}`);
    log(`  the API server's CPU per write, ms: ${JSON.stringify(roundValues(apiCpuMsPerWrite, 2))}`);

    const createStart = Date.now();
    const indexes = Array.from({ length: args.accounts }, (_, i) => i);
    await forEachLimited(indexes, 48, async (i) => {
      await rest.create(TelegramAccountResource, benchAccount(`acct-${String(i).padStart(5, '0')}`, i));
    });
    log(`created ${args.accounts} accounts in ${((Date.now() - createStart) / 1000).toFixed(1)} s`);
    if (args.existingSessionsKb > 0) {
      const sessionsStart = Date.now();
      // Random bytes: a compressed, encrypted backup does not compress further on the wire or in etcd.
      const session = randomBytes(args.existingSessionsKb * 1024).toString('base64');
      await forEachLimited(indexes, 48, async (i) => {
        await rest.create(
          Resources.Secret,
          existingSessionSecret(`acct-${String(i).padStart(5, '0')}`, session),
        );
      });
      log(
        `created ${args.accounts} session Secrets with a ${args.existingSessionsKb} KB backup each in ${((Date.now() - sessionsStart) / 1000).toFixed(1)} s: the operator starts over existing sessions`,
      );
    }

    const accounts = new Informer<TelegramAccount & ApiObject>(rest, TelegramAccountResource, {
      name: 'bench-accounts',
      namespace: NAMESPACE,
      logger,
    });
    const statefulSets = new Informer<
      ApiObject & { spec?: { replicas?: number }; status?: { readyReplicas?: number } }
    >(rest, Resources.StatefulSet, {
      name: 'bench-sts',
      namespace: NAMESPACE,
      logger,
    });
    // With existing sessions the Secrets are there by construction; the benchmark does not watch their
    // backups, which would take the machine from the operator.
    const secrets =
      args.existingSessionsKb > 0
        ? undefined
        : new Informer<ApiObject>(rest, Resources.Secret, {
            name: 'bench-secrets',
            namespace: NAMESPACE,
            logger,
          });
    accounts.start();
    statefulSets.start();
    secrets?.start();
    await secrets?.waitForSync(60_000);
    await accounts.waitForSync(120_000);
    await statefulSets.waitForSync(60_000);

    const port = await freePort();
    // Started as the image starts it, by its entrypoint, under the chart's default memory limit.
    // BENCH_OPERATOR_NODE_OPTIONS: further node options for the operator (a profiler's --require, say).
    const byEntrypoint = operatorByEntrypoint(dir, process.env.BENCH_OPERATOR_NODE_OPTIONS ?? '');
    const limitMib = byEntrypoint.limitMib;
    log(
      `operator started by docker-entrypoint.sh, its heap sized for the chart's memory limit (${limitMib} MiB)`,
    );
    // As the chart runs it: its ServiceAccount under the shipped ClusterRole (config/rbac), a token, not the
    // admin certificate (which skips authorization and costs the API server a chain check per request).
    const operatorConfig = await operatorKubeconfig(plane.info.kubeconfigPath);
    const operator = spawn('setpriv', ['--pdeathsig', 'KILL', '--', ...byEntrypoint.args], {
      env: {
        ...process.env,
        ...byEntrypoint.env,
        KUBECONFIG: operatorConfig,
        METRICS_PORT: String(port),
        HEALTH_PORT: String(port),
        RUNTIME_STORAGE_SIZE: 'emptyDir',
        RUNTIME_ACCOUNTS_PER_POD: String(args.perPod),
        RUNTIME_MAX_REPLICAS: '1000',
        // kwok's pods run no runtime: without this, every pod is declared dead after the default 120 s and
        // all accounts move at once, which is not the steady state the probes measure.
        RUNTIME_POD_START_TIMEOUT_SECONDS: '3600',
        LOG_LEVEL: 'warn',
        // One replica: leader election would add a Lease renewal every 2 s to the write counts.
        LEADER_ELECT: 'false',
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    operatorPid = operator.pid ?? 0;
    operator.stdout?.pipe(process.stderr);
    // An operator that exits (a bad node option, a crash) fails the run at once, not after the 30-minute wait.
    const exitedEarly = new Promise<never>((_resolve, reject) => {
      operator.once('exit', (code, signal) =>
        reject(
          new Error(
            `the operator exited (code ${code ?? 'none'}, signal ${signal ?? 'none'}) before it converged; its output is above`,
          ),
        ),
      );
    });
    exitedEarly.catch(() => undefined);
    const started = Date.now();
    const apiServerCpuAtStart = processCpuSeconds(apiServerPid);
    const machineAtStart = machineCpuSeconds();
    let peakRss = 0;
    const sampler = setInterval(() => {
      try {
        peakRss = Math.max(peakRss, rssMb(operatorPid).rss);
      } catch {
        // process gone
      }
    }, 250);

    const converged = (): boolean => {
      const list = accounts.list(NAMESPACE);
      if (list.length < args.accounts) return false;
      for (const a of list) {
        if (!a.status?.conditions?.some((c) => c.type === 'Scheduled' && c.status === 'True')) return false;
        // A finalizer only where the deletion policy needs one (LogOut).
        const wantsFinalizer = a.spec.deletionPolicy === 'LogOut';
        if ((a.metadata.finalizers ?? []).includes(FINALIZER) !== wantsFinalizer) return false;
      }
      // Every account's session Secret (which holds its database key) exists.
      if (
        secrets &&
        secrets.list(NAMESPACE).filter((x) => x.metadata?.labels?.[LABEL_ACCOUNT]).length < args.accounts
      )
        return false;
      // No account Lease: a runtime makes it when it first takes the account (none runs here).
      const sets = statefulSets.list(NAMESPACE);
      if (sets.length < POOLS.length) return false;
      const ready = sets.reduce((sum, s) => sum + (s.status?.readyReplicas ?? 0), 0);
      return ready === expectedPods && sets.every((s) => (s.status?.readyReplicas ?? 0) === s.spec?.replicas);
    };
    let lastReport = 0;
    const convergence = waitFor(
      'convergence',
      () => {
        if (Date.now() - lastReport > 10_000) {
          lastReport = Date.now();
          const scheduled = accounts
            .list(NAMESPACE)
            .filter((a) =>
              a.status?.conditions?.some((c) => c.type === 'Scheduled' && c.status === 'True'),
            ).length;
          const ready = statefulSets.list(NAMESPACE).reduce((s, x) => s + (x.status?.readyReplicas ?? 0), 0);
          log(
            `  ${((Date.now() - started) / 1000).toFixed(0)} s: ${scheduled}/${args.accounts} scheduled, ${ready}/${expectedPods} pods ready`,
          );
        }
        return converged() ? true : undefined;
      },
      { timeoutMs: 30 * 60_000, intervalMs: 200 },
    );
    await Promise.race([convergence, exitedEarly]);
    const convergedAt = Date.now();
    const convergeSeconds = (convergedAt - started) / 1000;
    const scrape = async (): Promise<string> => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const writes = (text: string): number =>
      metricSum(text, 'rest_client_requests_total', { method: /^(POST|PUT|PATCH|DELETE)$/ });
    const atConvergence = await scrape();
    const writesAtConvergence = writes(atConvergence);
    const rssAtConvergence = rssMb(operatorPid).rss;
    // How much of the two cores the operator took from the API server while converging.
    const operatorCpu = processCpuSeconds(operatorPid);
    const apiServerCpu = processCpuSeconds(apiServerPid) - apiServerCpuAtStart;
    const machine = machineCores(machineAtStart, machineCpuSeconds(), convergeSeconds);
    log(
      `converged in ${convergeSeconds.toFixed(1)} s; operator RSS ${rssAtConvergence.toFixed(0)} MB (peak ${peakRss.toFixed(0)} MB); ${writesAtConvergence} writes; operator CPU ${operatorCpu.toFixed(1)} s`,
    );
    // How often each loop ran and for how long (its writes' round trips included): a loop that runs once per
    // event instead of once per burst shows here.
    const loops = Object.fromEntries(
      ['runtimepool', 'telegramaccount'].map((controller) => [
        controller,
        {
          reconciles: metricSum(atConvergence, 'controller_runtime_reconcile_total', { controller }),
          seconds: Number(
            metricSum(atConvergence, 'controller_runtime_reconcile_time_seconds_sum', { controller }).toFixed(
              1,
            ),
          ),
        },
      ]),
    );
    log(`reconciles until converged: ${JSON.stringify(loops)}`);

    log(`idle window: ${args.idleSeconds} s`);
    const idleStart = Date.now();
    // An observation window, not a wait for a condition: the figure is what happens in it.
    await new Promise((r) => setTimeout(r, args.idleSeconds * 1000));
    const afterIdle = await scrape();
    const idleBreakdown = writesByResource(plane.info.logs.audit ?? '', idleStart, Date.now());
    log(
      `idle writes by user, verb and resource (from the apiserver audit log): ${JSON.stringify(idleBreakdown)}`,
    );
    const idleWrites = writes(afterIdle) - writesAtConvergence;
    // The operator's writes while converging, by kind, from the audit log (its requests say tdlib-operator).
    const {
      byKind,
      perAccount,
      total: audited,
    } = auditedWrites(plane.info.logs.audit ?? '', started, convergedAt, 'tdlib-operator', args.accounts);
    const ceiling = mixCeiling(byKind, rates);
    const achieved = audited / convergeSeconds;
    const rounds = roundsReport(achieved, mixCeilingByRound(byKind, roundRates));
    log(`writes per account by verb and resource: ${JSON.stringify(perAccount)}`);
    log(
      `operator writes/s while converging ${achieved.toFixed(0)}; the API server's ceiling for that mix ${ceiling.toFixed(0)} (ratio ${(achieved / ceiling).toFixed(2)}); each round's: ${rounds.text}`,
    );
    // The ratio split in two: what the API server did per account against what the ceiling's writes cost it,
    // and how much of the machine it had while converging (the operator's own CPU is on the same cores).
    const apiMsPerAccount = (apiServerCpu * 1000) / args.accounts;
    const apiMsPerAccountAtCeiling = mixCpuMsPerAccount(byKind, apiCpuMsPerWrite, args.accounts);
    log(
      `the API server while converging: ${(apiServerCpu / convergeSeconds).toFixed(2)} cores, ${apiMsPerAccount.toFixed(2)} ms of CPU per account (the ceiling's writes of the same mix: ${apiMsPerAccountAtCeiling.toFixed(2)} ms); the operator: ${(operatorCpu / convergeSeconds).toFixed(2)} cores; the machine: ${machine.busy} cores busy, ${machine.idle} idle, ${machine.steal} taken by the hypervisor`,
    );
    clearInterval(sampler);
    const probe = await scheduleLatencies(rest, accounts, args.probes);
    log(
      `one new account at a time while the ${args.accounts} are steady: created to Scheduled p50 ${probe.p50.toFixed(0)} ms, p99 ${probe.p99.toFixed(0)} ms, max ${probe.max.toFixed(0)} ms (${args.probes} accounts)`,
    );
    const queueP99 = histogramP99(afterIdle, 'workqueue_queue_duration_seconds', {});
    const result = {
      accounts: args.accounts,
      // 0: the accounts are new; K > 0: their session Secrets exist, with a K KB backup each.
      existing_sessions_kb: args.existingSessionsKb,
      pools: POOLS.length,
      runtime_pods: expectedPods,
      converge_seconds: Number(convergeSeconds.toFixed(2)),
      operator_memory_limit_mib: limitMib,
      operator_rss_mb: Number(rssAtConvergence.toFixed(1)),
      operator_cpu_seconds_to_converge: Number(operatorCpu.toFixed(1)),
      operator_peak_rss_mb: Number(peakRss.toFixed(1)),
      // Where the RSS is: V8's live heap and what it reserved around it, and memory outside the V8 heap.
      operator_heap_used_mb: Number(
        (metricSum(atConvergence, 'nodejs_heap_size_used_bytes') / 1e6).toFixed(1),
      ),
      operator_heap_total_mb: Number(
        (metricSum(atConvergence, 'nodejs_heap_size_total_bytes') / 1e6).toFixed(1),
      ),
      operator_external_mb: Number(
        (metricSum(atConvergence, 'nodejs_external_memory_bytes') / 1e6).toFixed(1),
      ),
      reconciles_to_converge: loops,
      writes_per_account: Number((writesAtConvergence / args.accounts).toFixed(3)),
      writes_per_account_by_kind: perAccount,
      api_ceiling_writes_per_s: Number(ceiling.toFixed(1)),
      api_ceiling_by_kind: roundValues(rates),
      achieved_writes_per_s: Number(achieved.toFixed(1)),
      ceiling_ratio: Number((achieved / ceiling).toFixed(3)),
      ...rounds.figures,
      api_cpu_ms_per_write_by_kind: roundValues(apiCpuMsPerWrite, 2),
      api_server_cores_while_converging: Number((apiServerCpu / convergeSeconds).toFixed(2)),
      api_server_cpu_ms_per_account: Number(apiMsPerAccount.toFixed(2)),
      api_server_cpu_ms_per_account_at_ceiling_cost: Number(apiMsPerAccountAtCeiling.toFixed(2)),
      operator_cores_while_converging: Number((operatorCpu / convergeSeconds).toFixed(2)),
      machine_cores_while_converging: machine,
      idle_writes: idleWrites,
      idle_seconds: args.idleSeconds,
      queue_latency_p99_ms: Number.isFinite(queueP99) ? Number((queueP99 * 1000).toFixed(1)) : -1,
      steady_schedule_probes: args.probes,
      steady_schedule_p50_ms: Number(probe.p50.toFixed(1)),
      steady_schedule_p99_ms: Number(probe.p99.toFixed(1)),
    };
    log(
      `idle writes: ${idleWrites}; queue latency p99 <= ${result.queue_latency_p99_ms} ms (interpolated from the histogram)`,
    );
    operator.kill('SIGTERM');
    await new Promise((r) => operator.once('exit', r));
    await accounts.stop();
    await statefulSets.stop();
    await secrets?.stop();
    if (args.json) console.log(JSON.stringify(result));
  } finally {
    if (operatorPid) {
      try {
        process.kill(operatorPid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await rest.close();
    await plane.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exit(1);
});
