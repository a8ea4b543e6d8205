/**
 * Runtime benchmark: N bot accounts (simulator) placed on ONE runtime process; measures the time until all
 * are Ready, the process RSS, the runtime's status writes per account (and, by kind, the operator's writes
 * while the accounts start: its Ready), and its writes in an idle window.
 *
 *   npm run bench:runtime -- [--json] [--accounts N] [--idle-seconds S] [--burn-cpus C]
 * The last line with --json: {"ready_seconds", "rss_mb", "status_writes_per_account", ...}, and what the runtime's
 * drain at SIGTERM took ("shutdown_seconds", its exit code, errors it logged, Node process warnings).
 * --burn-cpus C runs C busy-looping processes while the accounts come up (other work using the CPUs), and
 * reports how often the runtime's fence lapsed and the operator declared the pod dead meanwhile.
 * Before the accounts, the same run measures what a tight client gets from this control plane for the
 * runtime's kinds of writes (api-ceiling.ts), and reports the runtime's write rate as a share of it.
 * The runtime authenticates as the pool's ServiceAccount, under the Role the operator made, as in a pod; the run
 * reports the cores each process (API server, etcd, operator, runtime) used while the accounts started.
 */
import { spawn } from 'node:child_process';
import type { V1Role } from '@kubernetes/client-node';
import { createWriteStream, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { allCrds, API_VERSION, type TelegramAccount } from '../../crds/index.js';
import { runtimeName } from '../../crds/naming.js';
import { RestClient, loadKubeConfig } from '../../operator/kube/client.js';
import { clientNodeKubeConfig } from '../support/cluster.js';
import { createLogger } from '../../operator/kube/logging.js';
import { createRegistry } from '../../operator/kube/metrics.js';
import { forEachLimited } from '../../operator/kube/util.js';
import { Informer } from '../../operator/kube/reflector.js';
import { Resources, type ApiObject } from '../../operator/kube/resource.js';
import { TelegramAccountResource } from '../../crds/resources.js';
import { ControlPlane } from '../cluster/control-plane.js';
import { freePort } from '../cluster/ports.js';
import { waitFor } from '../cluster/wait.js';
import { metricSum, operatorKubeconfig } from '../support/operator.js';
import { serviceAccountKubeconfig } from '../support/runtime.js';
import {
  auditedWrites,
  measureApiCeiling,
  mixCeiling,
  mixCeilingByRound,
  roundsReport,
} from './api-ceiling.js';
import { byEntrypoint } from './entrypoint.js';
import { machineCores, machineCpuSeconds, processCpuSeconds } from './proc-cpu.js';

const NAMESPACE = 'bench';
/** The default pool's runtime ServiceAccount and Role, made by the operator (operator/pool/desired.ts). */
const RUNTIME_IDENTITY = runtimeName('default');
const CEILING_WRITES = 2000;
/** Passes over the kinds: each kind's ceiling is its median (one pass varies by a fifth from the next). */
const CEILING_ROUNDS = 3;
function parseArgs(argv: string[]): {
  json: boolean;
  accounts: number;
  idleSeconds: number;
  burnCpus: number;
} {
  const args = { json: false, accounts: 1000, idleSeconds: 30, burnCpus: 0 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') args.json = true;
    else if (a === '--accounts') args.accounts = Number(argv[++i]);
    else if (a === '--idle-seconds') args.idleSeconds = Number(argv[++i]);
    else if (a === '--burn-cpus') args.burnCpus = Number(argv[++i]);
    else
      throw new Error(
        `unknown argument ${a}; expected --json, --accounts N, --idle-seconds S, --burn-cpus C`,
      );
  }
  if (!Number.isInteger(args.accounts) || args.accounts < 1)
    throw new Error('--accounts takes a whole number >= 1');
  if (!Number.isInteger(args.burnCpus) || args.burnCpus < 0)
    throw new Error('--burn-cpus takes a whole number >= 0');
  return args;
}

/** A process that keeps one CPU busy until killed (or until its parent dies). */
function burner(): ReturnType<typeof spawn> {
  return spawn('setpriv', ['--pdeathsig', 'KILL', '--', process.execPath, '-e', 'for (;;) {}'], {
    stdio: 'ignore',
  });
}

const countLines = (file: string, pattern: RegExp): number => {
  try {
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => pattern.test(l)).length;
  } catch {
    return 0;
  }
};

/**
 * From the runtime's log: lines at level error (pino 50+) stamped at or after `since`, and the names of the Node
 * process warnings it printed at any time ("(node:PID) MaxListenersExceededWarning: ...").
 */
function shutdownReport(file: string, since: number): { errors: number; processWarnings: string[] } {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return { errors: 0, processWarnings: [] };
  }
  let errors = 0;
  const processWarnings: string[] = [];
  for (const line of text.split('\n')) {
    const warning = /^\(node:\d+\) (\w+Warning)\b/.exec(line);
    if (warning?.[1]) processWarnings.push(warning[1]);
    if (!line.startsWith('{')) continue;
    try {
      const entry = JSON.parse(line) as { level?: number; time?: string };
      if ((entry.level ?? 0) >= 50 && Date.parse(entry.time ?? '') >= since) errors++;
    } catch {
      // Not a log line (a child's stray output).
    }
  }
  return { errors, processWarnings };
}

const token = (i: number): string => `${8000000000 + i}:AAbench-${String(i).padStart(6, '0')}`;

function writeWorld(dir: string, n: number): void {
  const users = Array.from({ length: n }, (_, i) => ({
    id: 8000000000 + i,
    first_name: `Bench Bot ${i}`,
    username: `bench_bot_${i}`,
    bot: { token: token(i) },
  }));
  // The demo world's settings with our bots added to its users. Written as JSON: the simulator stands in for
  // Telegram inside the runtime's process, and parsing 1,000 users from YAML there took 120 ms of its event
  // loop (profiled), a cost no production runtime has.
  const world = parse(readFileSync(resolve('config/samples/simulator-world.yaml'), 'utf8')) as {
    users: unknown[];
  };
  world.users.push(...users);
  writeFileSync(join(dir, 'world.json'), JSON.stringify(world));
}

function keepLog(child: ReturnType<typeof spawn>, path: string): void {
  const out = createWriteStream(path, { flags: 'a' });
  child.stdout?.pipe(out);
  child.stderr?.pipe(out);
}

const round2 = (figures: Record<string, number>): Record<string, number> =>
  Object.fromEntries(Object.entries(figures).map(([k, v]) => [k, Number(v.toFixed(2))]));
const sum = (figures: Record<string, number>): number => Object.values(figures).reduce((a, b) => a + b, 0);

const rssMb = (pid: number): number =>
  Number(readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)?.[1] ?? 0) / 1024;

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const dir = mkdtempSync(join(tmpdir(), 'tdlib-operator-bench-runtime-'));
  const world = join(dir, 'world');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(world);
  writeWorld(world, args.accounts);
  const plane = await ControlPlane.start({ dir: join(dir, 'plane'), auditWrites: true });
  const logger = createLogger({ name: 'bench-runtime', level: 'warn' });
  const rest = new RestClient(loadKubeConfig(plane.info.kubeconfigPath), {
    registry: createRegistry(),
    logger,
  });
  const children: Array<ReturnType<typeof spawn>> = [];
  try {
    for (const crd of allCrds())
      await rest.applyPatch(Resources.CustomResourceDefinition, crd as ApiObject, { fieldManager: 'bench' });
    await waitFor('CRDs served', () => rest.list(TelegramAccountResource, { limit: 1 }).then(() => true), {
      timeoutMs: 30_000,
    });
    console.log(
      `measuring the API server's ceiling: ${CEILING_WRITES} writes of each kind, 32 in flight, ${CEILING_ROUNDS} rounds`,
    );
    const { rates, roundRates } = await measureApiCeiling({
      apiServerUrl: plane.info.apiServerUrl,
      pki: plane.info.pki,
      namespace: 'bench-ceiling',
      count: CEILING_WRITES,
      inFlight: 32,
      rounds: CEILING_ROUNDS,
    });
    console.log(`  tight client, writes/s (median of the rounds): ${JSON.stringify(rates)}`);
    for (const ns of [NAMESPACE, 'tdlib-operator-system'])
      await rest.create(Resources.Namespace, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    await rest.create(Resources.Secret, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name: 'api',
        namespace: NAMESPACE,
        labels: { 'telegram.tdlib-operator.dev/usable-by-accounts': 'true' },
      },
      stringData: { api_id: '94575', api_hash: 'a3406de8d171bb422bb6ddf3bbd800e2' },
    } as ApiObject);
    const ids = Array.from({ length: args.accounts }, (_, i) => i);
    await forEachLimited(ids, 32, async (i) => {
      await rest.create(Resources.Secret, {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: {
          name: `bot-${i}`,
          namespace: NAMESPACE,
          labels: { 'telegram.tdlib-operator.dev/usable-by-accounts': 'true' },
        },
        stringData: { token: token(i) },
      } as ApiObject);
      await rest.create(TelegramAccountResource, {
        apiVersion: API_VERSION,
        kind: 'TelegramAccount',
        metadata: { name: `bot-${i}`, namespace: NAMESPACE },
        spec: {
          type: 'Bot',
          botTokenSecretRef: { name: `bot-${i}` },
          apiCredentialsSecretRef: { name: 'api' },
        },
      } as ApiObject);
    });
    // The operator places every account on pod 0 (capacity N) and creates the key and session Secrets. It
    // runs as the chart runs it: its ServiceAccount under the shipped ClusterRole (config/rbac).
    const operatorConfig = await operatorKubeconfig(plane.info.kubeconfigPath);
    const operator = spawn(
      'setpriv',
      ['--pdeathsig', 'KILL', '--', process.execPath, resolve('dist/operator/main.js')],
      {
        env: {
          ...process.env,
          KUBECONFIG: operatorConfig,
          METRICS_PORT: '0',
          HEALTH_PORT: '0',
          LEADER_ELECT: 'false',
          RUNTIME_BACKEND: 'simulator',
          RUNTIME_STORAGE_SIZE: 'emptyDir',
          RUNTIME_ACCOUNTS_PER_POD: String(args.accounts),
          LOG_LEVEL: 'warn',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    children.push(operator);
    keepLog(operator, join(dir, 'operator.log'));
    const accounts = new Informer<TelegramAccount & ApiObject>(rest, TelegramAccountResource, {
      name: 'bench',
      namespace: NAMESPACE,
      logger,
    });
    accounts.start();
    await accounts.waitForSync(60_000);
    const count = (test: (a: TelegramAccount) => boolean): number =>
      accounts.list(NAMESPACE).filter(test).length;
    await waitFor(
      'every account placed',
      () =>
        count((a) => a.status?.placement?.pod === 'tdlib-runtime-default-0') === args.accounts
          ? true
          : undefined,
      { timeoutMs: 600_000, intervalMs: 250 },
    );
    const secrets = new Informer<ApiObject>(rest, Resources.Secret, {
      name: 'bench-secrets',
      namespace: NAMESPACE,
      logger,
    });
    secrets.start();
    await waitFor(
      'session Secrets (each holding its key)',
      () =>
        secrets.list(NAMESPACE).filter((s) => /-tdlib-session$/.test(s.metadata?.name ?? '')).length ===
        args.accounts
          ? true
          : undefined,
      { timeoutMs: 600_000, intervalMs: 250 },
    );
    await secrets.stop();
    // The runtime runs as its pods do: as the pool's ServiceAccount, under the Role the operator keeps naming
    // each placed account's Secrets and Lease. Every request then pays token authentication and that Role's
    // checks, as in a cluster, instead of the admin certificate's (which skips authorization).
    await waitFor(
      `the Role ${RUNTIME_IDENTITY} to name every account's session Secret and Lease`,
      async () => {
        const role = await rest
          .get<ApiObject & Pick<V1Role, 'rules'>>(Resources.Role, NAMESPACE, RUNTIME_IDENTITY)
          .catch(() => undefined);
        const named = (resource: string, verb: string): number =>
          role?.rules?.find((r) => r.resources?.includes(resource) && r.verbs?.includes(verb))?.resourceNames
            ?.length ?? 0;
        return named('secrets', 'update') >= args.accounts && named('leases', 'update') > args.accounts
          ? true
          : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 250 },
    );
    const runtimeKubeconfig = await serviceAccountKubeconfig(
      clientNodeKubeConfig(plane.info.kubeconfigPath),
      NAMESPACE,
      RUNTIME_IDENTITY,
    );

    const port = await freePort();
    const burners = Array.from({ length: args.burnCpus }, burner);
    children.push(...burners);
    // What each process of the machine spends while the accounts start: the Ready time on two cores is the
    // sum of these, not the runtime's alone.
    const cpuPids = {
      kube_apiserver: plane.info.pids['kube-apiserver'],
      etcd: plane.info.pids.etcd,
      operator: operator.pid,
    };
    const cpuAtStart = Object.fromEntries(
      Object.entries(cpuPids).map(([name, pid]) => [name, processCpuSeconds(pid)]),
    );
    const machineAtStart = machineCpuSeconds();
    const started = Date.now();
    // Started as the image starts it (malloc arenas limited by the entrypoint).
    // BENCH_RUNTIME_NODE_OPTIONS: further node options for the runtime (a profiler's --require, say).
    const byImage = byEntrypoint('runtime', process.env.BENCH_RUNTIME_NODE_OPTIONS ?? '');
    const runtime = spawn('setpriv', ['--pdeathsig', 'KILL', '--', ...byImage.args], {
      env: {
        ...process.env,
        ...byImage.env,
        KUBECONFIG: runtimeKubeconfig,
        POD_NAME: 'tdlib-runtime-default-0',
        POD_NAMESPACE: NAMESPACE,
        TDLIB_BACKEND: 'simulator',
        TDLIB_SIMULATOR_WORLD: world,
        TDLIB_DATA_DIR: join(dir, 'data'),
        HTTP_PORT: String(port),
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(runtime);
    keepLog(runtime, join(dir, 'runtime.log'));
    console.log(`logs: ${dir}/operator.log, ${dir}/runtime.log`);
    // The runtime serves /metrics once its modules and its backend (the simulator, with its world) are
    // loaded. prom-client's event-loop monitor restarts at each scrape, so this first scrape carries the
    // stalls of starting up, and the one at Ready those from then on: while the accounts log in.
    const startup = waitFor(
      'the runtime to serve /metrics',
      async () => {
        try {
          const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
          return {
            stallMs: metricSum(text, 'nodejs_eventloop_lag_max_seconds') * 1000,
            servingSeconds: (Date.now() - started) / 1000,
          };
        } catch {
          return undefined;
        }
      },
      { timeoutMs: 120_000, intervalMs: 50 },
    );
    const ready = (a: TelegramAccount): boolean =>
      a.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
    let last = 0;
    await waitFor(
      'every account Ready',
      () => {
        const n = count(ready);
        if (Date.now() - last > 10_000) {
          last = Date.now();
          console.log(`  ${((Date.now() - started) / 1000).toFixed(0)} s: ${n}/${args.accounts} Ready`);
        }
        return n === args.accounts ? true : undefined;
      },
      { timeoutMs: 900_000, intervalMs: 200 },
    );
    const readyAt = Date.now();
    const readySeconds = (readyAt - started) / 1000;
    const coresWhileStarting: Record<string, number> = {
      ...Object.fromEntries(
        Object.entries(cpuPids).map(([name, pid]) => [
          name,
          (processCpuSeconds(pid) - (cpuAtStart[name] ?? 0)) / readySeconds,
        ]),
      ),
      runtime: processCpuSeconds(runtime.pid) / readySeconds,
    };
    const machine = machineCores(machineAtStart, machineCpuSeconds(), readySeconds);
    const apiServerCpuMsPerAccount =
      ((coresWhileStarting.kube_apiserver ?? 0) * readySeconds * 1000) / args.accounts;
    for (const b of burners) b.kill('SIGKILL');
    const scrape = async (): Promise<string> => (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    // Let in-flight coalesced writes land before counting.
    await new Promise((r) => setTimeout(r, 1000));
    const readyMetrics = await scrape();
    const atReady = metricSum(readyMetrics, 'runtime_status_writes_total');
    // prom-client's event-loop monitor (10 ms resolution) restarts at each scrape: this scrape's maximum is
    // the worst stall from the runtime serving /metrics (before it lists its accounts) to every account Ready.
    const startedUp = await startup;
    const worstStallMs = metricSum(readyMetrics, 'nodejs_eventloop_lag_max_seconds') * 1000;
    // Reads are not in the audit log (its policy records writes): the runtime's own client counts them.
    const readsAtReady = metricSum(readyMetrics, 'rest_client_requests_total', { method: 'GET' });
    // Requests its Role refused: each one a start that waited for the operator to name the account.
    const forbidden = metricSum(readyMetrics, 'rest_client_requests_total', { code: '403' });
    const rss = rssMb(runtime.pid ?? 0);
    console.log(
      `${args.accounts} accounts Ready in ${readySeconds.toFixed(1)} s; runtime RSS ${rss.toFixed(0)} MB; ${atReady} status writes; ${readsAtReady} GETs; ${forbidden} refused by its Role; worst event-loop stall ${worstStallMs.toFixed(0)} ms while the accounts started (${startedUp.stallMs.toFixed(0)} ms before, in the ${startedUp.servingSeconds.toFixed(1)} s to serving /metrics)`,
    );
    // An observation window: what the runtime writes while nothing changes.
    await new Promise((r) => setTimeout(r, args.idleSeconds * 1000));
    const idle = metricSum(await scrape(), 'runtime_status_writes_total') - atReady;
    const runtimeWrites = auditedWrites(
      plane.info.logs.audit ?? '',
      started,
      readyAt,
      'tdlib-runtime',
      args.accounts,
    );
    // The operator follows each account's report with its Ready: a second status apply per account in the same
    // seconds, which the API server pays for as much as the runtime's own.
    const operatorWrites = auditedWrites(
      plane.info.logs.audit ?? '',
      started,
      readyAt,
      'tdlib-operator',
      args.accounts,
    );
    const ceiling = mixCeiling(runtimeWrites.byKind, rates);
    const achieved = runtimeWrites.total / readySeconds;
    const rounds = roundsReport(achieved, mixCeilingByRound(runtimeWrites.byKind, roundRates));
    console.log(
      `runtime writes per account by verb and resource: ${JSON.stringify(runtimeWrites.perAccount)}; the operator's meanwhile: ${JSON.stringify(operatorWrites.perAccount)}`,
    );
    console.log(
      `runtime writes/s until Ready ${achieved.toFixed(0)}; the API server's ceiling for that mix ${ceiling.toFixed(0)} (ratio ${(achieved / ceiling).toFixed(2)}); each round's: ${rounds.text}`,
    );
    console.log(
      `cores while the accounts started: ${JSON.stringify(round2(coresWhileStarting))} (sum ${sum(coresWhileStarting).toFixed(2)}); the machine: ${machine.busy} cores busy, ${machine.idle} idle, ${machine.steal} taken by the hypervisor; the API server's CPU per account ${apiServerCpuMsPerAccount.toFixed(1)} ms`,
    );
    const transitions = 5; // WaitTdlibParameters, WaitPhoneNumber, Ready, connection Ready, user/backup details
    const result = {
      accounts: args.accounts,
      ready_seconds: Number(readySeconds.toFixed(2)),
      rss_mb: Number(rss.toFixed(1)),
      worst_event_loop_stall_ms: Number(worstStallMs.toFixed(1)),
      startup_event_loop_stall_ms: Number(startedUp.stallMs.toFixed(1)),
      serving_metrics_seconds: Number(startedUp.servingSeconds.toFixed(2)),
      status_writes_per_account: Number((atReady / args.accounts).toFixed(2)),
      reads_per_account: Number((readsAtReady / args.accounts).toFixed(2)),
      writes_per_account_by_kind: runtimeWrites.perAccount,
      operator_writes_per_account_by_kind: operatorWrites.perAccount,
      api_ceiling_writes_per_s: Number(ceiling.toFixed(1)),
      api_ceiling_by_kind: Object.fromEntries(
        Object.entries(rates).map(([k, v]) => [k, Number(v.toFixed(1))]),
      ),
      achieved_writes_per_s: Number(achieved.toFixed(1)),
      ceiling_ratio: Number((achieved / ceiling).toFixed(3)),
      ...rounds.figures,
      cores_while_starting: round2(coresWhileStarting),
      machine_cores_while_starting: machine,
      api_server_cpu_ms_per_account: Number(apiServerCpuMsPerAccount.toFixed(1)),
      runtime_identity: `ServiceAccount ${NAMESPACE}/${RUNTIME_IDENTITY}`,
      runtime_forbidden_requests: forbidden,
      observable_transitions_per_account: transitions,
      idle_status_writes: idle,
      idle_seconds: args.idleSeconds,
      burn_cpus: args.burnCpus,
      // The runtime's log is at level warn: a lapse logs at error, a death declared by the operator at warn.
      runtime_fence_lapses: countLines(join(dir, 'runtime.log'), /heartbeat Lease lapsed/),
      pods_declared_dead: countLines(join(dir, 'operator.log'), /runtime pod declared dead/),
    };
    console.log(`idle status writes over ${args.idleSeconds} s: ${idle}`);
    // The drain a rollout or node drain asks of the pod: every client closed, backed up and its Lease released.
    const termAt = Date.now();
    const exited = new Promise<number | null>((r) => runtime.once('exit', (code) => r(code)));
    runtime.kill('SIGTERM');
    const exitCode = await exited;
    const shutdownSeconds = (Date.now() - termAt) / 1000;
    const shutdown = shutdownReport(join(dir, 'runtime.log'), termAt);
    console.log(
      `SIGTERM to exit ${shutdownSeconds.toFixed(1)} s, exit code ${exitCode}; errors logged meanwhile: ${shutdown.errors}; Node process warnings in the runtime's log: ${JSON.stringify(shutdown.processWarnings)}`,
    );
    await accounts.stop();
    if (args.json)
      console.log(
        JSON.stringify({
          ...result,
          shutdown_seconds: Number(shutdownSeconds.toFixed(2)),
          shutdown_exit_code: exitCode,
          shutdown_errors_logged: shutdown.errors,
          runtime_process_warnings: shutdown.processWarnings,
        }),
      );
  } finally {
    for (const c of children) c.kill('SIGKILL');
    await rest.close();
    await plane.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exit(1);
});
