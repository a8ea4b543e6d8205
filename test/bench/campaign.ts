/**
 * Campaign benchmark: one Campaign of R recipients over N bot senders, end to end (own etcd +
 * kube-apiserver, the operator planning and aggregating, one runtime process with the simulator backend
 * hosting every sender), and in the same run the reference: the simulator alone doing the same TDLib work
 * (resolve the recipient, send, wait for the outcome) from the same bots, with no operator, runtime or API
 * server in the way.
 *
 *   npm run bench:campaign -- [--json] [--recipients R] [--senders N] [--no-reference] [--cpu-prof] [--keep]
 *
 * Exactly-once is judged by the simulator's own delivery log, API writes by the kube-apiserver's own
 * request counter (apiserver_request_total), RSS from /proc. With --json the last line is one JSON object:
 * recipients, delivered, duplicates, lost, wall_seconds, sends_per_second, api_writes, api_writes_per_1k,
 * operator_rss_mb, runtime_rss_mb, and more. --cpu-prof writes V8 CPU profiles of the operator and the
 * runtime (into the kept run directory).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import {
  API_VERSION,
  parseRecipientKey,
  recipientKey,
  username,
  type Campaign,
  type TelegramAccount,
} from '../../crds/index.js';
import { CampaignResource, TelegramAccountResource } from '../../crds/resources.js';
import { RestClient, loadKubeConfig } from '../../operator/kube/client.js';
import { createLogger } from '../../operator/kube/logging.js';
import { createRegistry } from '../../operator/kube/metrics.js';
import { Resources, type ApiObject } from '../../operator/kube/resource.js';
import { forEachLimited } from '../../operator/kube/util.js';
import { SendOutcomes, resolveChat, sendMessageRequest } from '../../runtime/sending/telegram.js';
import { SimulatorBackend, World } from '../../runtime/simulator/index.js';
import type { TdObject } from '../../runtime/tdlib/backend.js';
import { TdClientManager, type TdClient } from '../../runtime/tdlib/client.js';
import { ControlPlane } from '../cluster/control-plane.js';
import type { Pki } from '../cluster/pki.js';
import { freePort } from '../cluster/ports.js';
import { waitFor } from '../cluster/wait.js';
import { createApiCredentials, installBenchApi } from './bench-api.js';
import { RECIPIENT_BASE_ID, botToken, recipientName, writeCampaignWorld } from '../support/campaign-world.js';
import { metricSum } from '../support/operator.js';
import { memoryAfterFullGc } from './soak-probe.js';
import { byEntrypoint } from './entrypoint.js';
import { processCpuSeconds } from './proc-cpu.js';

const NAMESPACE = 'bench';
const POD = 'tdlib-runtime-default-0';
const SENDER_LABEL = { role: 'campaign-sender' };
/** Lines per recipient ConfigMap: 13 bytes a line keeps it well under the 1 MiB a ConfigMap may hold. */
const LINES_PER_CONFIGMAP = 50_000;
/** The most the Campaign CRD allows: the pace must not be what limits the run. */
const PACE = { messagesPerMinute: 1_000_000, perSenderMessagesPerMinute: 100_000 };
const WRITE_VERBS = new Set(['POST', 'PUT', 'PATCH', 'DELETE', 'APPLY']);
const unlimited = { per_second: 1e9, burst: 1e9 };
/** Nothing in the world limits the senders: what is measured is our code, not Telegram's rules. */
const LIFTED_LIMITS = {
  user: { account: unlimited, chat: unlimited },
  bot: { account: unlimited, chat: unlimited },
  peer_flood: { max_new_strangers: 1_000_000_000, window_seconds: 86400 },
  search_public_chat: unlimited,
  tdlib_flood_wait_limit_seconds: 60,
};
const NO_FAULTS = { latency_ms: { default: 0 }, error_rate: { default: 0 } };

interface Args {
  json: boolean;
  recipients: number;
  senders: number;
  reference: boolean;
  referenceWindow: number;
  cpuProf: boolean;
  keep: boolean;
  timeoutSeconds: number;
}

function parseArgs(argv: string[]): Args {
  const args: Args = {
    json: false,
    recipients: 100_000,
    senders: 10,
    reference: true,
    referenceWindow: 1000,
    cpuProf: false,
    keep: false,
    timeoutSeconds: 1800,
  };
  const whole = (name: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`${name} takes a whole number >= ${min}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') args.json = true;
    else if (a === '--recipients') args.recipients = whole(a, argv[++i], 1);
    else if (a === '--senders') args.senders = whole(a, argv[++i], 1);
    else if (a === '--no-reference') args.reference = false;
    else if (a === '--reference-window') args.referenceWindow = whole(a, argv[++i], 1);
    else if (a === '--cpu-prof') args.cpuProf = args.keep = true;
    else if (a === '--keep') args.keep = true;
    else if (a === '--timeout-seconds') args.timeoutSeconds = whole(a, argv[++i], 1);
    else
      throw new Error(
        `unknown argument ${a}; expected --json, --recipients R, --senders N, --no-reference, --reference-window W, --cpu-prof, --keep, --timeout-seconds S`,
      );
  }
  if (args.recipients > 999_999) throw new Error('--recipients: at most 999,999 (rcpt_NNNNNN usernames)');
  return args;
}

const mb = (kb: number): number => Number((kb / 1024).toFixed(1));

function rssKb(pid: number | undefined): number {
  try {
    return Number(readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** JS heap + external memory that survives a full garbage collection, in bytes. */
const liveBytes = (m: NodeJS.MemoryUsage): number => m.heapUsed + m.external;

/**
 * What the runtime keeps alive: full GCs through its inspector, then process.memoryUsage() (RSS alone moves
 * with when V8 collects, by hundreds of MB between identical runs). Node 20's WebSocket is behind a flag, so
 * a short child process talks to the inspector.
 */
async function liveHeapOf(inspectorUrl: string): Promise<number> {
  return liveBytes(await memoryAfterFullGc(inspectorUrl));
}

/** The same for this process (the reference): a full GC through V8's own gc(), exposed on demand. */
function ownLiveHeap(): number {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  gc();
  return liveBytes(process.memoryUsage());
}

function keepLog(child: ChildProcess, path: string): void {
  const out = createWriteStream(path, { flags: 'a' });
  child.stdout?.pipe(out);
  child.stderr?.pipe(out);
}

/** Dies with this process (setpriv --pdeathsig), so a failed or killed benchmark leaves nothing behind. */
function startNode(script: string, env: NodeJS.ProcessEnv, log: string): ChildProcess {
  // The runtime starts as the image starts it (malloc arenas limited by the entrypoint).
  const started =
    script === 'dist/runtime/main.js'
      ? byEntrypoint('runtime')
      : { args: [process.execPath, resolve(script)], env: {} };
  const child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', ...started.args], {
    env: { ...process.env, ...started.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  keepLog(child, log);
  return child;
}

async function stopNode(child: ChildProcess, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  await exited;
  clearTimeout(timer);
}

function apiserverMetrics(url: string, pki: Pki): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const req = request(
      `${url}/metrics`,
      {
        ca: readFileSync(pki.caCert),
        cert: readFileSync(pki.adminCert),
        key: readFileSync(pki.adminKey),
        timeout: 10_000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () =>
          res.statusCode === 200 ? resolvePromise(body) : reject(new Error(`/metrics: ${res.statusCode}`)),
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error('GET /metrics timed out')));
    req.on('error', reject);
    req.end();
  });
}

/** Write requests the apiserver served, by "VERB resource[/subresource]". */
function writesByResource(metrics: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of metrics.split('\n')) {
    if (!line.startsWith('apiserver_request_total{')) continue;
    const labels = Object.fromEntries(
      [...(line.match(/^[^{]*\{(.*)\}/)?.[1] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]),
    );
    if (!WRITE_VERBS.has(labels.verb ?? '')) continue;
    const key = `${labels.verb} ${labels.resource}${labels.subresource ? `/${labels.subresource}` : ''}`;
    out.set(key, (out.get(key) ?? 0) + Number(line.split(' ').pop()));
  }
  return out;
}

function diffWrites(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, n] of after) {
    const d = n - (before.get(key) ?? 0);
    if (d > 0) out[key] = d;
  }
  return Object.fromEntries(Object.entries(out).sort((a, b) => b[1] - a[1]));
}

const isReady = (a: TelegramAccount): boolean =>
  a.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

interface Reference {
  sends_per_second: number;
  /** RSS this process gained while the simulator alone did the work (its server and client state). */
  rss_growth_mb: number;
  /** Live heap (after full GCs) this process gained while the simulator alone did the work. */
  live_heap_growth_mb: number;
  wall_seconds: number;
  cpu_seconds: number;
  delivered: number;
  window: number;
}

/**
 * The simulator alone: the same bots, each recipient once, each send doing what the runtime does for it
 * (searchPublicChat, sendMessage, wait for updateMessageSendSucceeded) through TdClient, `window` at once.
 */
async function runReference(
  worldDir: string,
  senders: number,
  recipients: number,
  text: string,
  window: number,
): Promise<Reference> {
  const backend = new SimulatorBackend({ worldDir });
  const manager = new TdClientManager(backend, { defaultTimeoutMs: 120_000 });
  try {
    const clients: TdClient[] = [];
    for (let b = 0; b < senders; b++) {
      const client = manager.createClient();
      await client.invokeUnchecked({
        '@type': 'setTdlibParameters',
        database_directory: join(worldDir, `db-${b}`),
        api_id: 94575,
        api_hash: 'a3406de8d171bb422bb6ddf3bbd800e2',
        system_language_code: 'en',
        device_model: 'bench',
        application_version: '1',
      });
      await client.invokeUnchecked({ '@type': 'checkAuthenticationBotToken', token: botToken(b) });
      clients.push(client);
    }
    for (const client of clients)
      await waitFor(
        'reference bot logged in',
        async () =>
          (await client.invokeUnchecked({ '@type': 'getAuthorizationState' }))['@type'] ===
          'authorizationStateReady'
            ? true
            : undefined,
        { timeoutMs: 60_000, intervalMs: 50 },
      );
    const trackers = clients.map((c) => new SendOutcomes(c));
    const message = { text };
    const formatted: TdObject = { '@type': 'formattedText', text, entities: [] };
    let next = 0;
    let failed = 0;
    const live0 = ownLiveHeap();
    const rss0 = process.memoryUsage.rss();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const lane = async (): Promise<void> => {
      for (let i = next++; i < recipients; i = next++) {
        const b = i % senders;
        const client = clients[b] as TdClient;
        const recipient = parseRecipientKey(recipientKey(username(recipientName(i))));
        const chatId = await resolveChat(client, recipient, true);
        const result = await (trackers[b] as SendOutcomes).send(
          client,
          sendMessageRequest(chatId, formatted, message),
        );
        if (!result.ok) failed++;
      }
    };
    await Promise.all(Array.from({ length: Math.min(window, recipients) }, lane));
    const wall = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const rssGrowth = process.memoryUsage.rss() - rss0;
    // Still referenced while measured: the trackers and the clients hold what a sender holds.
    const liveGrowth = ownLiveHeap() - live0;
    for (const t of trackers) t.close();
    if (failed > 0) throw new Error(`reference: ${failed} sends failed`);
    const delivered = World.open(worldDir).deliveries(
      (d) => d.status === 'delivered' && d.text === text,
    ).length;
    return {
      sends_per_second: Math.round(recipients / wall),
      rss_growth_mb: Number((rssGrowth / 1024 / 1024).toFixed(1)),
      live_heap_growth_mb: Number((liveGrowth / 1024 / 1024).toFixed(1)),
      wall_seconds: Number(wall.toFixed(2)),
      cpu_seconds: Number(((cpu.user + cpu.system) / 1e6).toFixed(2)),
      delivered,
      window,
    };
  } finally {
    await manager.shutdown({ timeoutMs: 10_000 }).catch(() => undefined);
    await backend.close().catch(() => undefined);
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const log = (line: string): void => console.log(line);
  const dir = mkdtempSync(join(tmpdir(), 'tdlib-operator-bench-campaign-'));
  const text = `Benchmark campaign ${new Date().toISOString()}: everything half price until Sunday.`;
  const worldDir = writeCampaignWorld({
    recipients: args.recipients,
    userSenders: 0,
    bot: true,
    bots: args.senders,
    limits: LIFTED_LIMITS,
    faults: NO_FAULTS,
    format: 'json',
  });
  // The reference gets a world of its own: its deliveries and sessions must not mix with the campaign's.
  const referenceWorld = join(dir, 'reference-world');
  mkdirSync(referenceWorld);
  copyFileSync(join(worldDir, 'world.json'), join(referenceWorld, 'world.json'));
  const profDir = join(dir, 'prof');
  const loadSamples: number[] = [];
  const children: ChildProcess[] = [];
  let plane: ControlPlane | undefined;
  let rest: RestClient | undefined;
  try {
    log(`run directory: ${dir}`);
    plane = await ControlPlane.start({ dir: join(dir, 'plane') });
    const { info } = plane;
    const logger = createLogger({ name: 'bench-campaign', level: 'warn' });
    const client = new RestClient(loadKubeConfig(info.kubeconfigPath), {
      registry: createRegistry(),
      logger,
    });
    rest = client;
    await installBenchApi(client, NAMESPACE);
    const optIn = { 'telegram.tdlib-operator.dev/usable-by-accounts': 'true' };
    await createApiCredentials(client, NAMESPACE);
    const senderIndexes = Array.from({ length: args.senders }, (_, b) => b);
    await forEachLimited(senderIndexes, 8, async (b) => {
      const name = `sender-${b}`;
      await client.create(Resources.Secret, {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: `${name}-token`, namespace: NAMESPACE, labels: optIn },
        stringData: { token: botToken(b) },
      } as ApiObject);
      await client.create(TelegramAccountResource, {
        apiVersion: API_VERSION,
        kind: 'TelegramAccount',
        metadata: { name, namespace: NAMESPACE, labels: SENDER_LABEL },
        spec: {
          type: 'Bot',
          botTokenSecretRef: { name: `${name}-token` },
          apiCredentialsSecretRef: { name: 'api' },
        },
      } as ApiObject);
    });

    const profile = (name: string): NodeJS.ProcessEnv =>
      args.cpuProf
        ? { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${profDir} --cpu-prof-name=${name}.cpuprofile` }
        : {};
    const operator = startNode(
      'dist/operator/main.js',
      {
        KUBECONFIG: info.kubeconfigPath,
        METRICS_PORT: '0',
        HEALTH_PORT: '0',
        LEADER_ELECT: 'false',
        RUNTIME_BACKEND: 'simulator',
        RUNTIME_STORAGE_SIZE: 'emptyDir',
        RUNTIME_ACCOUNTS_PER_POD: String(args.senders),
        LOG_LEVEL: 'warn',
        ...profile('operator'),
      },
      join(dir, 'operator.log'),
    );
    children.push(operator);
    const accounts = async (): Promise<TelegramAccount[]> =>
      (await client.listAll<TelegramAccount & ApiObject>(TelegramAccountResource, { namespace: NAMESPACE }))
        .items;
    await waitFor(
      'every sender placed on one runtime pod, with its session Secret',
      async () => {
        const placed = (await accounts()).filter((a) => a.status?.placement?.pod === POD).length;
        if (placed < args.senders) return undefined;
        // One session Secret per account, holding its database key (the separate key Secret is gone).
        const sessions = (await client.listAll(Resources.Secret, { namespace: NAMESPACE })).items.filter(
          (s) => /-tdlib-session$/.test(s.metadata?.name ?? ''),
        ).length;
        return sessions >= args.senders ? true : undefined;
      },
      { timeoutMs: 300_000, intervalMs: 250 },
    );

    const runtimePort = await freePort();
    const runtime = startNode(
      'dist/runtime/main.js',
      {
        KUBECONFIG: info.kubeconfigPath,
        POD_NAME: POD,
        POD_NAMESPACE: NAMESPACE,
        TDLIB_BACKEND: 'simulator',
        TDLIB_SIMULATOR_WORLD: worldDir,
        TDLIB_DATA_DIR: join(dir, 'data'),
        HTTP_PORT: String(runtimePort),
        LOG_LEVEL: 'warn',
        ...profile('runtime'),
        // The inspector lets the benchmark collect garbage in the runtime before it reads its heap.
        NODE_OPTIONS: `${profile('runtime').NODE_OPTIONS ?? ''} --inspect=127.0.0.1:0`.trim(),
      },
      join(dir, 'runtime.log'),
    );
    children.push(runtime);
    log(`logs: ${dir}/operator.log, ${dir}/runtime.log, ${info.dir}/logs`);
    await waitFor(
      'every sender Ready',
      async () => ((await accounts()).filter(isReady).length === args.senders ? true : undefined),
      { timeoutMs: 600_000, intervalMs: 250 },
    );
    // Let the Ready transition's own writes and the first GCs settle before the baseline is taken, and the
    // senders pass the operator's 5 s "Ready for a while" grace, which is not what is measured here.
    await new Promise((r) => setTimeout(r, 6000));
    const runtimeRssBefore = rssKb(runtime.pid);
    const operatorRssBefore = rssKb(operator.pid);
    const inspector = await waitFor(
      'the runtime inspector address',
      () => readFileSync(join(dir, 'runtime.log'), 'utf8').match(/Debugger listening on (ws:\/\/\S+)/)?.[1],
      { timeoutMs: 10_000 },
    );
    const runtimeHeapBefore = await liveHeapOf(inspector);

    const configMaps: Array<{ name: string }> = [];
    for (let from = 0; from < args.recipients; from += LINES_PER_CONFIGMAP) {
      const name = `recipients-${configMaps.length}`;
      const lines: string[] = [];
      for (let i = from; i < Math.min(args.recipients, from + LINES_PER_CONFIGMAP); i++)
        lines.push(`@${recipientName(i)}`);
      await client.create(Resources.ConfigMap, {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name, namespace: NAMESPACE },
        data: { recipients: lines.join('\n') },
      } as ApiObject);
      configMaps.push({ name });
    }

    const pids = {
      runtime: runtime.pid,
      operator: operator.pid,
      apiserver: info.pids['kube-apiserver'],
      etcd: info.pids.etcd,
      bench: process.pid,
    };
    const cpuBefore = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, processCpuSeconds(pid)]));
    const writesBefore = writesByResource(await apiserverMetrics(info.apiServerUrl, info.pki));
    const loadBefore = loadavg()[0] ?? 0;
    const createdAt = Date.now();
    const t0 = performance.now();
    await client.create(CampaignResource, {
      apiVersion: API_VERSION,
      kind: 'Campaign',
      metadata: { name: 'bench', namespace: NAMESPACE },
      spec: {
        senders: { selector: { matchLabels: SENDER_LABEL } },
        message: { text },
        recipients: { configMapRefs: configMaps },
        pace: PACE,
      },
    } as ApiObject);
    let lastPrint = 0;
    let peakRuntimeRss = 0;
    const done = await waitFor(
      'campaign Completed',
      async () => {
        const c = await client.get<Campaign & ApiObject>(CampaignResource, NAMESPACE, 'bench');
        peakRuntimeRss = Math.max(peakRuntimeRss, rssKb(runtime.pid));
        if (performance.now() - lastPrint > 5000) {
          lastPrint = performance.now();
          loadSamples.push(loadavg()[0] ?? 0);
          const s = c.status;
          log(
            `  ${((performance.now() - t0) / 1000).toFixed(0)} s: ${s?.phase ?? '-'} sent ${s?.sent ?? 0}/${s?.total ?? 0}, ${s?.messagesPerMinute ?? 0}/min; runtime RSS ${mb(rssKb(runtime.pid))} MB`,
          );
        }
        return c.status?.phase === 'Completed' || c.status?.phase === 'Failed' ? c : undefined;
      },
      { timeoutMs: args.timeoutSeconds * 1000, intervalMs: 100 },
    );
    const wall = (performance.now() - t0) / 1000;
    const writesAfter = writesByResource(await apiserverMetrics(info.apiServerUrl, info.pki));
    const cpuAfter = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, processCpuSeconds(pid)]));
    const runtimeRss = rssKb(runtime.pid);
    const runtimeHeapAfter = await liveHeapOf(inspector);
    const operatorRss = rssKb(operator.pid);
    const loadAfter = loadavg()[0] ?? 0;
    let runtimeSends: Record<string, number> = {};
    try {
      const text = await (await fetch(`http://127.0.0.1:${runtimePort}/metrics`)).text();
      runtimeSends = Object.fromEntries(
        ['sent', 'failed', 'retry', 'parked', 'inDoubt'].map((r) => [
          r,
          metricSum(text, 'tdlib_campaign_sends_total', { result: r }),
        ]),
      );
    } catch {
      // The counters are a cross-check only.
    }

    // Stopped gracefully so their CPU profiles (with --cpu-prof) are written.
    await stopNode(runtime, 60_000);
    await stopNode(operator, 30_000);
    await client.close();
    rest = undefined;
    await plane.stop();
    plane = undefined;

    const status = done.status ?? {};
    const perRecipient = new Map<number, number>();
    const deliveries = World.open(worldDir).deliveries((d) => d.status === 'delivered' && d.text === text);
    let firstAt = Number.POSITIVE_INFINITY;
    let lastAt = 0;
    for (const d of deliveries) {
      perRecipient.set(d.to, (perRecipient.get(d.to) ?? 0) + 1);
      firstAt = Math.min(firstAt, d.at);
      lastAt = Math.max(lastAt, d.at);
    }
    let delivered = 0;
    let duplicates = 0;
    let lost = 0;
    for (let i = 0; i < args.recipients; i++) {
      const n = perRecipient.get(RECIPIENT_BASE_ID + i) ?? 0;
      if (n > 0) delivered++;
      else lost++;
      duplicates += Math.max(0, n - 1);
    }
    const strangers = [...perRecipient.keys()].filter(
      (to) => to < RECIPIENT_BASE_ID || to >= RECIPIENT_BASE_ID + args.recipients,
    ).length;
    const writes = diffWrites(writesBefore, writesAfter);
    const apiWrites = Object.values(writes).reduce((a, b) => a + b, 0);
    const cpu = Object.fromEntries(
      Object.keys(pids).map((k) => [k, Number(((cpuAfter[k] ?? 0) - (cpuBefore[k] ?? 0)).toFixed(1))]),
    );
    const sendingSeconds = deliveries.length > 1 ? (lastAt - firstAt) / 1000 : 0;

    let reference: Reference | undefined;
    if (args.reference) {
      log('reference: the simulator alone, same bots, same recipients ...');
      reference = await runReference(
        referenceWorld,
        args.senders,
        args.recipients,
        text,
        args.referenceWindow,
      );
    }

    const sendsPerSecond = Math.round(delivered / wall);
    const result = {
      benchmark: 'campaign',
      recipients: args.recipients,
      senders: args.senders,
      delivered,
      duplicates,
      lost,
      wall_seconds: Number(wall.toFixed(2)),
      sends_per_second: sendsPerSecond,
      api_writes: apiWrites,
      api_writes_per_1k: Number(((apiWrites * 1000) / Math.max(1, delivered)).toFixed(2)),
      operator_rss_mb: mb(operatorRss),
      runtime_rss_mb: mb(runtimeRss),
      runtime_rss_before_mb: mb(runtimeRssBefore),
      runtime_rss_growth_mb: mb(runtimeRss - runtimeRssBefore),
      // What the runtime gained beyond what the simulator alone gains for the same sends: the part that is ours
      // (in a real pod the simulator's server state does not exist, and TDLib's own caches replace its client's).
      runtime_live_heap_growth_mb: Number(((runtimeHeapAfter - runtimeHeapBefore) / 1024 / 1024).toFixed(1)),
      runtime_live_heap_growth_beyond_reference_mb: reference
        ? Number(
            ((runtimeHeapAfter - runtimeHeapBefore) / 1024 / 1024 - reference.live_heap_growth_mb).toFixed(1),
          )
        : undefined,
      runtime_rss_growth_beyond_reference_mb: reference
        ? Number((mb(runtimeRss - runtimeRssBefore) - reference.rss_growth_mb).toFixed(1))
        : undefined,
      runtime_rss_peak_mb: mb(peakRuntimeRss),
      operator_rss_before_mb: mb(operatorRssBefore),
      reference_sends_per_second: reference?.sends_per_second,
      ratio_to_reference: reference
        ? Number((sendsPerSecond / reference.sends_per_second).toFixed(3))
        : undefined,
      reference,
      first_delivery_seconds: Number(((firstAt - createdAt) / 1000).toFixed(2)),
      sending_seconds: Number(sendingSeconds.toFixed(2)),
      sends_per_second_while_sending:
        sendingSeconds > 0 ? Math.round(deliveries.length / sendingSeconds) : undefined,
      deliveries_to_others: strangers,
      status: {
        phase: status.phase,
        total: status.total,
        sent: status.sent,
        failed: status.failed,
        inDoubt: status.inDoubt,
        pending: status.pending,
      },
      runtime_sends: runtimeSends,
      api_writes_by_resource: writes,
      cpu_seconds: cpu,
      load_average_1m: {
        before: Number(loadBefore.toFixed(2)),
        max: Number(Math.max(loadBefore, loadAfter, ...loadSamples).toFixed(2)),
        after: Number(loadAfter.toFixed(2)),
      },
      date: new Date(createdAt).toISOString(),
      node: process.version,
      ...(args.cpuProf ? { cpu_profiles: profDir } : {}),
    };
    log(
      `${args.recipients} recipients, ${args.senders} bot senders: phase ${status.phase} after ${result.wall_seconds} s (first delivery at ${result.first_delivery_seconds} s)`,
    );
    log(`delivered ${delivered}, duplicates ${duplicates}, lost ${lost} (simulator delivery log)`);
    log(
      `end to end ${sendsPerSecond} sends/s (${result.sends_per_second_while_sending ?? '-'}/s between the first and last delivery); reference (simulator alone) ${reference?.sends_per_second ?? '-'} sends/s`,
    );
    log(
      `API writes ${apiWrites} (${result.api_writes_per_1k} per 1,000 messages): ${JSON.stringify(writes)}`,
    );
    log(
      `RSS: operator ${result.operator_rss_mb} MB, runtime ${result.runtime_rss_mb} MB (${result.runtime_rss_before_mb} MB before the campaign, growth ${result.runtime_rss_growth_mb} MB, peak ${result.runtime_rss_peak_mb} MB); the simulator alone grew ${reference?.rss_growth_mb ?? '-'} MB for the same sends, so ${result.runtime_rss_growth_beyond_reference_mb ?? '-'} MB is the runtime's own`,
    );
    log(
      `live heap after full GCs: the runtime gained ${result.runtime_live_heap_growth_mb} MB, the simulator alone ${reference?.live_heap_growth_mb ?? '-'} MB, so ${result.runtime_live_heap_growth_beyond_reference_mb ?? '-'} MB is the runtime's own`,
    );
    log(
      `CPU seconds during the campaign: ${JSON.stringify(cpu)}; load ${JSON.stringify(result.load_average_1m)}`,
    );
    if (args.json) console.log(JSON.stringify(result));
  } finally {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await rest?.close();
    await plane?.stop();
    rmSync(worldDir, { recursive: true, force: true });
    if (!args.keep) rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exit(1);
});
