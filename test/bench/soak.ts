/**
 * Soak benchmark: a day of churn compressed into N minutes, through the operator and the runtime, on a real
 * control plane (with the controller-manager, whose garbage collector removes what accounts own), looking
 * for what grows and what is left behind.
 *
 *   npm run bench:soak -- [--json] [--minutes N] [--days D] [--accounts S] [--sample-seconds T]
 *                         [--cut-every-seconds C]
 *
 * Churn (soak-churn.ts) over S account slots (default 60; about three quarters live at a time): creates,
 * suspends and resumes, moves, deletions with LogOut and with KeepSession, small Campaigns, proxy failovers in
 * the simulated world, and cuts of every API connection of the operator and the runtimes (they reach the API
 * server through test/support/api-proxy.ts). Moving an account needs a second runtime process: accounts move
 * between the pools "default" (tdlib-runtime-default-0, the runtime this benchmark is about) and "spare"
 * (tdlib-runtime-spare-0), through the same fenced handover as any move. Network events are compressed
 * only down to what clients need to get over one: proxy outages at least a minute apart, API connection
 * cuts at least C seconds apart (default 150; see soak-churn.ts).
 *
 * Every T seconds (default 5) it samples RSS, V8 heap used, open handles, event listeners and TDLib clients
 * of each process; at the end, after the warm-up (20% of the run, at least a minute), the least-squares slope
 * of each series per real hour and per simulated day, with a 95% interval (soak-stats.ts), and the same over
 * the second half of the run alone (a plateau after a long warm-up, or a leak in both).
 *
 * With --days D (default 1) the day repeats D times, N minutes each, and the live heap of every process is
 * read after each day (full collections through the inspector): growth that stops after the first day is
 * start-up (compiled code, caches, V8 sizing its heap), growth that repeats every day is a leak. The slopes
 * are then fitted over the last day after its first fifth (soakWarmup). Then it deletes
 * every account and counts what is left: TDLib clients, account Leases, Secrets of deleted accounts, handles
 * above the baseline taken before the first account. The last line with --json is one JSON object.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import {
  LABEL_ACCOUNT,
  LABEL_CAMPAIGN,
  LABEL_MANAGED_BY,
  LABEL_POOL,
  LABEL_SECRET_OPT_IN,
  SECRET_OPT_IN_VALUE,
  accountLeaseName,
  sessionSecretName,
  type TelegramAccount,
} from '../../crds/index.js';
import { CampaignSliceResource, TelegramAccountResource } from '../../crds/resources.js';
import { RestClient, loadKubeConfig } from '../../operator/kube/client.js';
import { createLogger } from '../../operator/kube/logging.js';
import { createRegistry } from '../../operator/kube/metrics.js';
import { Informer } from '../../operator/kube/reflector.js';
import { Resources, type ApiObject } from '../../operator/kube/resource.js';
import { forEachLimited } from '../../operator/kube/util.js';
import { World } from '../../runtime/simulator/world.js';
import { ControlPlane } from '../cluster/control-plane.js';
import { freePort } from '../cluster/ports.js';
import { waitFor } from '../cluster/wait.js';
import { byEntrypoint, operatorByEntrypoint } from './entrypoint.js';
import { createApiCredentials, installBenchApi } from './bench-api.js';
import { ApiProxy, writeKubeconfigVia } from '../support/api-proxy.js';
import { Churn, SENDER_SLOTS, dayPlan, makeSlots, tokenSecretName, type Slot } from './soak-churn.js';
import {
  SERIES,
  inspectorUrlIn,
  liveHeapMb,
  sampleProcess,
  type ProcessSample,
  type Probe,
  type SeriesName,
} from './soak-probe.js';
import { growthByDay, soakWarmup, summarizeSeries, type Sample } from './soak-stats.js';

const NAMESPACE = 'soak';
const RECIPIENTS = 10;
const BOT_BASE_ID = 9_100_000_000;
const RECIPIENT_BASE_ID = 6_100_000_000;
/** Share of the slots live when the churn starts: the rest leaves room for creates. */
const INITIAL_LIVE = 0.75;

interface Args {
  json: boolean;
  minutes: number;
  days: number;
  accounts: number;
  sampleSeconds: number;
  cutEverySeconds: number;
}

function parseArgs(argv: string[]): Args {
  const args: Args = {
    json: false,
    minutes: 30,
    days: 1,
    accounts: 60,
    sampleSeconds: 5,
    cutEverySeconds: 150,
  };
  const positive = (name: string, v: string | undefined): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} takes a number > 0`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') args.json = true;
    else if (a === '--minutes') args.minutes = positive(a, argv[++i]);
    else if (a === '--days') {
      args.days = positive(a, argv[++i]);
      if (!Number.isInteger(args.days))
        throw new Error(`--days takes a whole number of days, got ${args.days}`);
    } else if (a === '--accounts') args.accounts = Math.round(positive(a, argv[++i]));
    else if (a === '--sample-seconds') args.sampleSeconds = positive(a, argv[++i]);
    else if (a === '--cut-every-seconds') args.cutEverySeconds = positive(a, argv[++i]);
    else
      throw new Error(
        `unknown argument ${a}; expected --json, --minutes N, --days D, --accounts S, --sample-seconds T, --cut-every-seconds C`,
      );
  }
  if (args.accounts < SENDER_SLOTS + 4) throw new Error(`--accounts: at least ${SENDER_SLOTS + 4}`);
  return args;
}

const botToken = (i: number): string => `${BOT_BASE_ID + i}:AAsoak-${String(i).padStart(4, '0')}`;
const botUsername = (i: number): string => `soak_bot_${i}`;
const recipientUsername = (i: number): string => `soak_rcpt_${String(i).padStart(3, '0')}`;

/** A world of one bot per slot and a few recipients who started the sender bots; generous limits. */
function writeWorld(dir: string, slots: number): void {
  const senders = Array.from({ length: SENDER_SLOTS }, (_, i) => botUsername(i));
  const users = [
    ...Array.from({ length: slots }, (_, i) => ({
      id: BOT_BASE_ID + i,
      first_name: `Soak Bot ${i}`,
      username: botUsername(i),
      bot: { token: botToken(i) },
    })),
    ...Array.from({ length: RECIPIENTS }, (_, i) => ({
      id: RECIPIENT_BASE_ID + i,
      first_name: `Soak Recipient ${i}`,
      username: recipientUsername(i),
      started_bots: senders,
    })),
  ];
  const bucket = { per_second: 1000, burst: 1000 };
  const world = {
    version: 1,
    seed: 11,
    users,
    limits: {
      user: { account: bucket, chat: bucket },
      bot: { account: bucket, chat: bucket },
      peer_flood: { max_new_strangers: 1_000_000, window_seconds: 86400 },
      search_public_chat: bucket,
      tdlib_flood_wait_limit_seconds: 60,
    },
    network: { connect_delay_ms: 50, ping_ms: 10 },
    faults: { latency_ms: { default: 5 }, error_rate: { default: 0 } },
    simulation: { chat_updates: false },
  };
  writeFileSync(join(dir, 'world.json'), JSON.stringify(world));
}

function keepLog(child: ChildProcess, path: string): void {
  const out = createWriteStream(path, { flags: 'a' });
  child.stdout?.pipe(out);
  child.stderr?.pipe(out);
}

/** Dies with this process (setpriv --pdeathsig), so a failed or killed benchmark leaves nothing behind. */
function startNode(script: string, env: NodeJS.ProcessEnv, log: string, dir: string): ChildProcess {
  // --trace-warnings: a MaxListenersExceededWarning in the log says where the listeners were added.
  // --inspect: the benchmark collects garbage through the inspector to read the heap that stays.
  const debugOptions = ['--trace-warnings', '--inspect=127.0.0.1:0'];
  // Both start as the image starts them (the operator's heap sized from the chart's memory limit, malloc
  // arenas limited).
  const started =
    script === 'dist/operator/main.js'
      ? operatorByEntrypoint(dir, debugOptions.join(' '))
      : script === 'dist/runtime/main.js'
        ? byEntrypoint('runtime', debugOptions.join(' '))
        : { args: [process.execPath, ...debugOptions, resolve(script)], env: {} };
  const child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', ...started.args], {
    env: { ...process.env, ...started.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  keepLog(child, log);
  return child;
}

async function stopNode(child: ChildProcess, timeoutMs: number): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await exited;
  clearTimeout(timer);
  return code;
}

interface Timeline {
  t: number;
  samples: Record<string, ProcessSample>;
  liveAccounts: number;
}

async function sampleAll(probes: readonly Probe[]): Promise<Record<string, ProcessSample>> {
  const out: Record<string, ProcessSample> = {};
  await Promise.all(
    probes.map(async (p) => {
      const s = await sampleProcess(p);
      if (s) out[p.name] = s;
    }),
  );
  return out;
}

/** What deleted accounts left behind, beyond what deletionPolicy KeepSession keeps on purpose. */
interface Leftovers {
  accounts: number;
  tdlib_clients: number;
  leases: number;
  secrets: number;
  campaign_slices: number;
  /** Kept by deletionPolicy KeepSession (the Lease, key and session Secrets of a deleted account): by design. */
  kept_by_keep_session: { leases: number; secrets: number };
}

async function countLeftovers(
  rest: RestClient,
  slots: readonly Slot[],
  probes: readonly Probe[],
): Promise<Leftovers> {
  const kept = new Set<string>();
  for (const slot of slots)
    if (slot.deletedWith === 'KeepSession')
      for (const name of [accountLeaseName(slot.name), sessionSecretName(slot.name)]) kept.add(name);
  const [accounts, leases, secrets, slices, samples] = await Promise.all([
    rest.listAll(TelegramAccountResource, { namespace: NAMESPACE }),
    rest.listAll(Resources.Lease, {
      namespace: NAMESPACE,
      labelSelector: `${LABEL_MANAGED_BY}=tdlib-runtime`,
    }),
    rest.listAll(Resources.Secret, { namespace: NAMESPACE }),
    rest.listAll(CampaignSliceResource, { namespace: NAMESPACE }),
    sampleAll(probes),
  ]);
  // Heartbeat Leases (one per runtime pod) carry the pool label; the account Leases carry the account's name.
  const accountLeases = leases.items.filter((l) => !l.metadata?.labels?.[LABEL_POOL]);
  const ofAccounts = secrets.items.filter(
    (s) =>
      s.metadata?.labels?.[LABEL_ACCOUNT] !== undefined ||
      (s.metadata as { ownerReferences?: Array<{ kind: string }> } | undefined)?.ownerReferences?.some(
        (o) => o.kind === 'TelegramAccount',
      ),
  );
  const isKept = (o: ApiObject): boolean => kept.has(o.metadata?.name ?? '');
  return {
    accounts: accounts.items.length,
    tdlib_clients: Object.values(samples).reduce((sum, s) => sum + s.clients, 0),
    leases: accountLeases.filter((l) => !isKept(l)).length,
    secrets: ofAccounts.filter((s) => !isKept(s)).length,
    campaign_slices: slices.items.filter((s) => s.metadata?.labels?.[LABEL_CAMPAIGN] !== undefined).length,
    kept_by_keep_session: {
      leases: accountLeases.filter(isKept).length,
      secrets: ofAccounts.filter(isKept).length,
    },
  };
}

const clean = (l: Leftovers): boolean =>
  l.accounts === 0 && l.tdlib_clients === 0 && l.leases === 0 && l.secrets === 0 && l.campaign_slices === 0;

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const log = (line: string): void => console.log(line);
  const dir = mkdtempSync(join(tmpdir(), 'tdlib-operator-bench-soak-'));
  const worldDir = join(dir, 'world');
  mkdirSync(worldDir);
  writeWorld(worldDir, args.accounts);
  const dayMs = args.minutes * 60_000;
  const children: ChildProcess[] = [];
  let plane: ControlPlane | undefined;
  let rest: RestClient | undefined;
  let proxy: ApiProxy | undefined;
  let accounts: Informer<TelegramAccount & ApiObject> | undefined;
  try {
    log(`run directory: ${dir}`);
    // The controller-manager's garbage collector removes what a deleted account owns, as in a cluster.
    plane = await ControlPlane.start({ dir: join(dir, 'plane'), controllers: true });
    const logger = createLogger({ name: 'bench-soak', level: 'warn' });
    const client = new RestClient(loadKubeConfig(plane.info.kubeconfigPath), {
      registry: createRegistry(),
      logger,
    });
    rest = client;
    await installBenchApi(client, NAMESPACE);
    const optIn = { [LABEL_SECRET_OPT_IN]: SECRET_OPT_IN_VALUE };
    await createApiCredentials(client, NAMESPACE);
    const slots = makeSlots(args.accounts);
    // The bot token Secrets are the user's, and stay: only what the operator and runtime make is churned.
    await forEachLimited(slots, 16, async (slot) => {
      await client.create(Resources.Secret, {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: tokenSecretName(slot), namespace: NAMESPACE, labels: optIn },
        stringData: { token: botToken(slot.index) },
      } as ApiObject);
    });

    // The operator and the runtimes reach the API server through a proxy that can cut every connection.
    proxy = await ApiProxy.start(plane.info.apiServerUrl);
    const admin = new KubeConfig();
    admin.loadFromFile(plane.info.kubeconfigPath);
    const viaProxy = writeKubeconfigVia(admin, proxy, join(dir, 'kubeconfig-via-proxy'));
    const operatorPort = await freePort();
    const operator = startNode(
      'dist/operator/main.js',
      {
        KUBECONFIG: viaProxy,
        METRICS_PORT: String(operatorPort),
        HEALTH_PORT: String(operatorPort),
        LEADER_ELECT: 'false',
        WATCH_NAMESPACE: NAMESPACE,
        RUNTIME_BACKEND: 'simulator',
        RUNTIME_STORAGE_SIZE: 'emptyDir',
        RUNTIME_ACCOUNTS_PER_POD: String(args.accounts),
        LOG_LEVEL: 'warn',
      },
      join(dir, 'operator.log'),
      dir,
    );
    children.push(operator);
    const runtimes: Array<{ name: string; pool: string; child: ChildProcess; port: number }> = [];
    for (const pool of ['default', 'spare']) {
      const port = await freePort();
      const pod = `tdlib-runtime-${pool}-0`;
      const child = startNode(
        'dist/runtime/main.js',
        {
          KUBECONFIG: viaProxy,
          POD_NAME: pod,
          POD_NAMESPACE: NAMESPACE,
          RUNTIME_POOL: pool,
          TDLIB_BACKEND: 'simulator',
          TDLIB_SIMULATOR_WORLD: worldDir,
          TDLIB_DATA_DIR: join(dir, `data-${pool}`),
          HTTP_PORT: String(port),
          LOG_LEVEL: 'warn',
        },
        join(dir, `runtime-${pool}.log`),
        dir,
      );
      children.push(child);
      runtimes.push({ name: pool === 'default' ? 'runtime' : 'runtime_spare', pool, child, port });
    }
    log(
      `logs: ${dir}/operator.log, ${dir}/runtime-default.log, ${dir}/runtime-spare.log, ${plane.info.dir}/logs`,
    );
    const probes: Probe[] = [
      { name: 'operator', pid: operator.pid ?? 0, metricsUrl: `http://127.0.0.1:${operatorPort}/metrics` },
      ...runtimes.map((r) => ({
        name: r.name,
        pid: r.child.pid ?? 0,
        metricsUrl: `http://127.0.0.1:${r.port}/metrics`,
      })),
    ];
    await waitFor(
      'the operator synced and both runtimes serving /metrics',
      async () => {
        const ready = await fetch(`http://127.0.0.1:${operatorPort}/readyz`, {
          signal: AbortSignal.timeout(3000),
        });
        if (!ready.ok) return undefined;
        return Object.keys(await sampleAll(probes)).length === probes.length ? true : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 250 },
    );
    const logs: Record<string, string> = {
      operator: join(dir, 'operator.log'),
      runtime: join(dir, 'runtime-default.log'),
      runtime_spare: join(dir, 'runtime-spare.log'),
    };
    /** Live heap of every process after full collections (MB), or undefined where the inspector failed. */
    const liveHeaps = async (): Promise<Record<string, number | undefined>> => {
      const out: Record<string, number | undefined> = {};
      for (const p of probes) {
        const url = inspectorUrlIn(logs[p.name] ?? '');
        out[p.name] = url ? await liveHeapMb(url).catch(() => undefined) : undefined;
      }
      return out;
    };
    const idle = await sampleAll(probes);
    log(
      `started, no accounts: ${probes.map((p) => `${p.name} ${idle[p.name]?.handles} handles, ${idle[p.name]?.rss_mb.toFixed(0)} MB`).join('; ')}`,
    );

    accounts = new Informer<TelegramAccount & ApiObject>(client, TelegramAccountResource, {
      name: 'soak',
      namespace: NAMESPACE,
      logger,
    });
    accounts.start();
    await accounts.waitForSync(60_000);
    const cache = accounts;
    const world = World.open(worldDir);
    const churn = new Churn(slots, dayPlan(args.accounts, dayMs, args.cutEverySeconds * 1000), {
      rest: client,
      namespace: NAMESPACE,
      accounts: cache,
      world,
      proxy,
      recipients: Array.from({ length: RECIPIENTS }, (_, i) => recipientUsername(i)),
      log,
    });
    const initial = slots.filter((s) => s.sender || s.index < Math.round(args.accounts * INITIAL_LIVE));
    const readyCount = (): number =>
      cache
        .list(NAMESPACE)
        .filter((a) => a.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).length;
    const setupAt = Date.now();
    await forEachLimited(initial, 8, (slot) => churn.create(slot));
    await waitFor('the initial accounts Ready', () => (readyCount() === initial.length ? true : undefined), {
      timeoutMs: 300_000,
      intervalMs: 250,
    });
    log(`${initial.length} accounts Ready in ${((Date.now() - setupAt) / 1000).toFixed(1)} s`);
    // The baseline: every process running with its watches open, before the churn.
    const baseline = await sampleAll(probes);
    const liveBefore = await liveHeaps();
    log(
      `baseline before churn: ${probes.map((p) => `${p.name} ${baseline[p.name]?.handles} handles, ${baseline[p.name]?.rss_mb.toFixed(0)} MB RSS, ${liveBefore[p.name]?.toFixed(1)} MB live heap`).join('; ')}`,
    );
    log(`churn for ${args.days > 1 ? `${args.days} days of ` : ''}${args.minutes} min`);

    // ---- the day(s), compressed --------------------------------------------------------------------------
    const timeline: Timeline[] = [];
    const liveAfterDay: Array<Record<string, number | undefined>> = [];
    const t0 = Date.now();
    let nextSample = t0;
    let nextPrint = t0 + 30_000;
    for (let day = 0; day < args.days; day++) {
      const dayStart = Date.now();
      if (day > 0) churn.beginDay();
      for (;;) {
        const now = Date.now();
        const elapsed = now - dayStart;
        if (now >= nextSample) {
          nextSample += args.sampleSeconds * 1000;
          timeline.push({
            t: now - t0,
            samples: await sampleAll(probes),
            liveAccounts: churn.liveAccounts(),
          });
        }
        if (elapsed >= dayMs) break;
        await churn.tick(elapsed / dayMs);
        if (now >= nextPrint) {
          nextPrint += 30_000;
          const last = timeline[timeline.length - 1]?.samples;
          log(
            `  ${args.days > 1 ? `day ${day + 1}, ` : ''}${(elapsed / 60_000).toFixed(1)} min (${((24 * elapsed) / dayMs).toFixed(1)} simulated h): ${churn.liveAccounts()} accounts, ${readyCount()} Ready; ` +
              probes.map((p) => `${p.name} ${last?.[p.name]?.rss_mb.toFixed(0) ?? '?'} MB`).join(', ') +
              `; ops ${JSON.stringify(churn.done)}`,
          );
        }
        await new Promise((r) => setTimeout(r, 250));
      }
      if (args.days > 1) {
        liveAfterDay.push(await liveHeaps());
        log(
          `  after day ${day + 1}: live heap (MB) ${probes.map((p) => `${p.name} ${liveAfterDay[day]?.[p.name]?.toFixed(1) ?? '?'}`).join(', ')}`,
        );
      }
    }
    const churnSeconds = (Date.now() - t0) / 1000;
    // Every sample, for a look at the shape of a series (a plateau, a step) beyond its slope.
    writeFileSync(join(dir, 'timeline.json'), JSON.stringify(timeline));
    log(`samples: ${join(dir, 'timeline.json')}`);

    // ---- the end of the day: everything goes ------------------------------------------------------------
    await churn.stop();
    log('churn stopped; deleting every account');
    for (const slot of slots) if (slot.state === 'live') await churn.deleteAccount(slot);
    const cleanupAt = Date.now();
    await waitFor('every account gone', () => (cache.list(NAMESPACE).length === 0 ? true : undefined), {
      timeoutMs: 180_000,
      intervalMs: 500,
      onTimeout: () =>
        cache
          .list(NAMESPACE)
          .map(
            (a) =>
              `${a.metadata?.name}: ${a.status?.authorizationState ?? '-'} on ${a.status?.hostedBy ?? '-'}, finalizers ${JSON.stringify(a.metadata?.finalizers ?? [])}, conditions ${JSON.stringify((a.status?.conditions ?? []).map((c) => `${c.type}=${c.status} ${c.reason}: ${c.message}`))}`,
          )
          .join('\n'),
    }).catch((error: unknown) => log(`  ${error instanceof Error ? error.message : String(error)}`));
    // The garbage collector and the runtimes finish on their own time: wait for a clean state, up to a
    // deadline, and report whatever is still there then.
    let leftovers = await countLeftovers(client, slots, probes);
    const overBaseline = (now: Record<string, ProcessSample>): Record<string, number> =>
      Object.fromEntries(
        probes.map((p) => [
          p.name,
          Math.max(0, (now[p.name]?.handles ?? 0) - (baseline[p.name]?.handles ?? 0)),
        ]),
      );
    let handlesOver = overBaseline(await sampleAll(probes));
    await waitFor(
      'nothing left behind',
      async () => {
        leftovers = await countLeftovers(client, slots, probes);
        handlesOver = overBaseline(await sampleAll(probes));
        return clean(leftovers) && Object.values(handlesOver).every((n) => n === 0) ? true : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 1000 },
    ).catch(() => undefined);
    const cleanupSeconds = (Date.now() - cleanupAt) / 1000;
    const finalSamples = await sampleAll(probes);
    const liveAfter = await liveHeaps();
    const mb = (x: number | undefined): number | null => (x === undefined ? null : Number(x.toFixed(1)));
    const liveHeap = Object.fromEntries(
      probes.map((p) => {
        const before = liveBefore[p.name];
        const after = liveAfter[p.name];
        return [
          p.name,
          {
            before_churn: mb(before),
            after_cleanup: mb(after),
            growth: before === undefined || after === undefined ? null : mb(after - before),
            ...(args.days > 1
              ? {
                  after_each_day: liveAfterDay.map((d) => mb(d[p.name])),
                  growth_by_day: growthByDay(
                    before,
                    liveAfterDay.map((d) => d[p.name]),
                  ).map((g) => (g === null ? null : mb(g))),
                }
              : {}),
          },
        ];
      }),
    );

    // ---- the numbers -------------------------------------------------------------------------------------
    const seriesOf = (name: string, key: SeriesName): Sample[] =>
      timeline.flatMap((s) => {
        const sample = s.samples[name];
        return sample ? [{ t: s.t, v: sample[key] }] : [];
      });
    const series: Record<string, Record<string, ReturnType<typeof summarizeSeries>>> = {};
    const secondHalf: Record<string, Record<string, ReturnType<typeof summarizeSeries>>> = {};
    const warmup = soakWarmup(args.days);
    for (const p of probes) {
      series[p.name] = {};
      for (const key of SERIES) {
        if (key === 'clients' && p.name === 'operator') continue;
        const summary = summarizeSeries(seriesOf(p.name, key), { dayMs, warmupFraction: warmup.fraction });
        (series[p.name] as Record<string, unknown>)[key] = summary;
        // The same series over the run's second half only: growth that stops after a warm-up longer than the
        // first fifth (V8 sizing its heap, code compiled late) shows as a slope above and none here, while a
        // leak grows with the churn in both halves.
        secondHalf[p.name] = {
          ...secondHalf[p.name],
          [key]: summarizeSeries(seriesOf(p.name, key), { dayMs, warmupFraction: 0.5 }),
        };
      }
    }
    const liveSeries = summarizeSeries(
      timeline.map((s) => ({ t: s.t, v: s.liveAccounts })),
      { dayMs },
    );
    const warnings = Object.fromEntries(
      probes.map((p) => [p.name, finalSamples[p.name]?.max_listeners_warnings ?? 0]),
    );

    log(
      `churn ${churnSeconds.toFixed(0)} s (${24 * args.days} simulated hours), ${timeline.length} samples every ${args.sampleSeconds} s; slopes after the warm-up (${warmup.label})`,
    );
    log(`operations: ${JSON.stringify(churn.done)}`);
    log(
      `skipped (nothing eligible): ${JSON.stringify(churn.skipped)}; errors: ${JSON.stringify(churn.errors)}`,
    );
    log(
      `campaigns completed ${churn.campaignsCompleted}, failed ${churn.campaignsFailed}; API connections cut ${churn.connectionsCut}; proxy switches seen in status: ${churn.observedFailovers} to the failover, ${churn.observedRecoveries} back`,
    );
    log(`live accounts: ${liveSeries.start} -> ${liveSeries.end} (slope ${liveSeries.slope_per_hour}/h)`);
    for (const p of probes)
      for (const key of SERIES) {
        const s = series[p.name]?.[key];
        if (!s) continue;
        log(
          `  ${p.name} ${key}: ${s.start} -> ${s.end}; slope ${s.slope_per_hour}/h [${s.ci95_per_hour.join(', ')}], ${s.slope_per_sim_day}/simulated day [${s.ci95_per_sim_day.join(', ')}]${s.zero_in_ci ? ' (indistinguishable from 0)' : ''}`,
        );
        const h = secondHalf[p.name]?.[key];
        if (h)
          log(
            `    second half: ${h.start} -> ${h.end}; slope ${h.slope_per_hour}/h [${h.ci95_per_hour.join(', ')}], ${h.slope_per_sim_day}/simulated day [${h.ci95_per_sim_day.join(', ')}]${h.zero_in_ci ? ' (indistinguishable from 0)' : ''}`,
          );
      }
    log(
      `left behind after ${cleanupSeconds.toFixed(0)} s: ${JSON.stringify(leftovers)}; handles over baseline ${JSON.stringify(handlesOver)}`,
    );
    log(`MaxListenersExceededWarning: ${JSON.stringify(warnings)}`);
    log(
      `live heap after full GCs (MB), before the churn (with accounts)${args.days > 1 ? ', after each day, growth by day' : ''} and after the cleanup (none): ${JSON.stringify(liveHeap)}`,
    );
    for (const p of probes)
      log(
        `  ${p.name} handles by type: baseline ${JSON.stringify(baseline[p.name]?.handle_types)}, end ${JSON.stringify(finalSamples[p.name]?.handle_types)}`,
      );

    await accounts.stop();
    accounts = undefined;
    const exitCodes: Record<string, number | null> = {};
    for (const r of runtimes) exitCodes[r.name] = await stopNode(r.child, 60_000);
    exitCodes.operator = await stopNode(operator, 30_000);
    log(`exit codes on SIGTERM: ${JSON.stringify(exitCodes)}`);

    const result = {
      minutes: args.minutes,
      days: args.days,
      simulated_hours: 24 * args.days,
      account_slots: args.accounts,
      churn_seconds: Number(churnSeconds.toFixed(1)),
      samples: timeline.length,
      sample_seconds: args.sampleSeconds,
      warmup: warmup.label,
      operations: churn.done,
      operations_skipped: churn.skipped,
      operation_errors: churn.errors,
      campaigns: { completed: churn.campaignsCompleted, failed: churn.campaignsFailed },
      api_connections_cut: churn.connectionsCut,
      proxy_switches_observed: { to_failover: churn.observedFailovers, back: churn.observedRecoveries },
      live_accounts: liveSeries,
      series: Object.fromEntries(
        Object.entries(series).map(([name, byKey]) => [
          name,
          Object.fromEntries(
            Object.entries(byKey).map(([key, s]) => [
              key,
              {
                start: s.start,
                end: s.end,
                [key.endsWith('_mb') ? 'slope_mb_per_hour' : 'slope_per_hour']: s.slope_per_hour,
                ci95: s.ci95_per_hour,
                slope_per_sim_day: s.slope_per_sim_day,
                ci95_per_sim_day: s.ci95_per_sim_day,
                zero_in_ci: s.zero_in_ci,
                second_half: {
                  slope_per_hour: secondHalf[name]?.[key]?.slope_per_hour,
                  ci95: secondHalf[name]?.[key]?.ci95_per_hour,
                  slope_per_sim_day: secondHalf[name]?.[key]?.slope_per_sim_day,
                  ci95_per_sim_day: secondHalf[name]?.[key]?.ci95_per_sim_day,
                  zero_in_ci: secondHalf[name]?.[key]?.zero_in_ci,
                },
              },
            ]),
          ),
        ]),
      ),
      started_idle: Object.fromEntries(probes.map((p) => [p.name, idle[p.name]])),
      baseline: Object.fromEntries(probes.map((p) => [p.name, baseline[p.name]])),
      live_heap_mb: liveHeap,
      leftovers: {
        ...leftovers,
        handles_over_baseline: handlesOver,
      },
      handle_types: Object.fromEntries(
        probes.map((p) => [
          p.name,
          { baseline: baseline[p.name]?.handle_types, end: finalSamples[p.name]?.handle_types },
        ]),
      ),
      cleanup_seconds: Number(cleanupSeconds.toFixed(1)),
      max_listeners_warnings: warnings,
      exit_codes: exitCodes,
    };
    if (args.json) console.log(JSON.stringify(result));
  } finally {
    await accounts?.stop().catch(() => undefined);
    for (const c of children) c.kill('SIGKILL');
    await proxy?.close().catch(() => undefined);
    await rest?.close().catch(() => undefined);
    await plane?.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exit(1);
});
