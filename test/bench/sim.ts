/**
 * Simulator throughput: how many sendMessage -> updateMessageSendSucceeded round trips one core sustains.
 * The simulator, its world files and the driver share one process, pinned to CPU 0 with `taskset -c 0`
 * when available (the process re-executes itself under taskset), so "per core" is literal. Two drivers:
 *   backend  - JSON requests straight into SimulatorBackend.send, counting updates in the batch listener
 *              (the simulator's own cost plus JSON.stringify of each request);
 *   tdclient - the same through TdClient.invokeUnchecked (promise per request), as the runtime uses it.
 * Every message is checked against the shared delivery log at the end.
 *
 *   npm run bench:sim [-- --json] [-- --messages N --clients C --window W]
 * With --json the last line is one JSON object; `sends_per_second` is the backend driver's figure.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { SimulatorBackend, World } from '../../runtime/simulator/index.js';
import type { TdObject, TdReceived } from '../../runtime/tdlib/backend.js';
import { TdClientManager, type TdClient } from '../../runtime/tdlib/client.js';

interface Args {
  readonly json: boolean;
  readonly messages: number;
  readonly clients: number;
  readonly window: number;
  readonly rounds: number;
}

function parseArgs(argv: readonly string[]): Args {
  const value = (name: string, fallback: number): number => {
    const i = argv.indexOf(`--${name}`);
    const v = i >= 0 ? Number(argv[i + 1]) : fallback;
    if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number`);
    return v;
  };
  return {
    json: argv.includes('--json'),
    messages: value('messages', 100_000),
    clients: value('clients', 4),
    window: value('window', 2_000),
    rounds: value('rounds', 3),
  };
}

function pinToOneCore(): string {
  if (process.env.SIM_BENCH_PINNED !== undefined) return process.env.SIM_BENCH_PINNED;
  const taskset = spawnSync('taskset', ['--version'], { stdio: 'ignore' });
  if (taskset.status !== 0) return 'not pinned (taskset unavailable)';
  const result = spawnSync(
    'taskset',
    ['-c', '0', process.execPath, ...process.execArgv, ...process.argv.slice(1)],
    {
      stdio: 'inherit',
      env: { ...process.env, SIM_BENCH_PINNED: 'taskset -c 0' },
    },
  );
  process.exit(result.status ?? 1);
}

function otherLoad(): { go_build_running: boolean; load_average_1m: number } {
  let goBuild = false;
  try {
    goBuild = execFileSync('pgrep', ['-f', 'go build'], { encoding: 'utf8' }).trim() !== '';
  } catch {
    goBuild = false;
  }
  return { go_build_running: goBuild, load_average_1m: loadavg()[0] ?? 0 };
}

const RECIPIENTS = 1000;

function createWorld(dir: string, clients: number): void {
  const users: Record<string, unknown>[] = [];
  for (let b = 0; b < clients; b++) {
    users.push({
      id: 7_000_000_000 + b,
      first_name: `Bench Bot ${b}`,
      username: `bench_bot_${b}`,
      bot: { token: `${7_000_000_000 + b}:bench` },
    });
  }
  const bots = users.map((u) => u.id as number);
  for (let i = 0; i < RECIPIENTS; i++) {
    users.push({
      id: 5_000_000_000 + i,
      first_name: `Recipient ${i}`,
      username: `recipient_${i}`,
      started_bots: bots,
    });
  }
  const unlimited = { per_second: 1e9, burst: 1e9 };
  World.create(dir, {
    version: 1,
    users,
    limits: { bot: { account: unlimited, chat: unlimited }, search_public_chat: unlimited },
    network: { connect_delay_ms: 0 },
  });
}

interface Measured {
  readonly sends: number;
  readonly wallSeconds: number;
  readonly cpuSeconds: number;
}

/** A bare-bones request/answer layer over TdBackend for the raw driver (no TdClient in the way). */
class RawDriver {
  private readonly waiting = new Map<number, (answer: TdReceived) => void>();
  private nextExtra = 1_000_000_000;
  private closed = 0;
  onOutcome: (failed: boolean) => void = () => undefined;

  constructor(readonly backend: SimulatorBackend) {
    backend.onReceive((batch) => {
      for (const object of batch) {
        const type = object['@type'];
        if (type === 'updateMessageSendSucceeded') this.onOutcome(false);
        else if (type === 'updateMessageSendFailed') this.onOutcome(true);
        else if (type === 'updateAuthorizationState') {
          if ((object.authorization_state as { '@type': string })['@type'] === 'authorizationStateClosed')
            this.closed++;
        }
        const extra = object['@extra'];
        if (typeof extra === 'number' && extra >= 1_000_000_000) {
          this.waiting.get(extra)?.(object);
          this.waiting.delete(extra);
        }
      }
    });
  }

  call(clientId: number, request: Record<string, unknown>): Promise<TdReceived> {
    const extra = this.nextExtra++;
    return new Promise((resolve, reject) => {
      this.waiting.set(extra, (answer) =>
        answer['@type'] === 'error' ? reject(new Error(JSON.stringify(answer))) : resolve(answer),
      );
      this.backend.send(clientId, JSON.stringify({ ...request, '@extra': extra }));
    });
  }

  async closeAll(ids: readonly number[]): Promise<void> {
    const target = this.closed + ids.length;
    for (const id of ids) this.backend.send(id, '{"@type":"close"}');
    while (this.closed < target) await new Promise((r) => setTimeout(r, 5));
  }
}

function loginRequests(dir: string, b: number, tag: string): Record<string, unknown>[] {
  return [
    {
      '@type': 'setTdlibParameters',
      database_directory: join(dir, `db-${tag}-${b}`),
      api_id: 1,
      api_hash: 'bench',
      system_language_code: 'en',
      device_model: 'bench',
      application_version: '1',
    },
    { '@type': 'checkAuthenticationBotToken', token: `${7_000_000_000 + b}:bench` },
    ...Array.from({ length: RECIPIENTS }, (_, i) => ({
      '@type': 'searchPublicChat',
      username: `recipient_${i}`,
    })),
  ];
}

function request(clientIndex: number, n: number, extra: number): string {
  return JSON.stringify({
    '@type': 'sendMessage',
    '@extra': extra,
    chat_id: 5_000_000_000 + (n % RECIPIENTS),
    input_message_content: {
      '@type': 'inputMessageText',
      text: { '@type': 'formattedText', text: `Campaign message ${n} from bot ${clientIndex}`, entities: [] },
    },
  });
}

/** Raw TdBackend driver: keeps `window` sends in flight across the clients, counts outcomes in batches. */
async function runBackendDriver(
  driver: RawDriver,
  clientIds: readonly number[],
  args: Args,
): Promise<Measured> {
  let sent = 0;
  let done = 0;
  let failed = 0;
  let resolveDone!: () => void;
  const finished = new Promise<void>((r) => (resolveDone = r));
  const pump = (): void => {
    while (sent < args.messages && sent - done < args.window) {
      const c = sent % clientIds.length;
      driver.backend.send(clientIds[c] as number, request(c, sent, sent));
      sent++;
    }
  };
  driver.onOutcome = (isFailure) => {
    done++;
    if (isFailure) failed++;
    if (done >= args.messages) resolveDone();
    else if (sent - done < args.window / 2) pump();
  };
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  pump();
  await finished;
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  if (failed > 0) throw new Error(`${failed} sends failed in the benchmark world`);
  return { sends: args.messages, wallSeconds: wall, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

/** The same load through TdClientManager/TdClient, as the runtime sends. */
async function runTdClientDriver(clients: readonly TdClient[], args: Args): Promise<Measured> {
  let done = 0;
  let resolveDone!: () => void;
  let wake: (() => void) | undefined;
  const finished = new Promise<void>((r) => (resolveDone = r));
  const unsubscribe = clients.map((client) =>
    client.subscribe((update) => {
      if (update['@type'] === 'updateMessageSendSucceeded' || update['@type'] === 'updateMessageSendFailed') {
        done++;
        if (done >= args.messages) resolveDone();
        if (wake !== undefined) {
          const w = wake;
          wake = undefined;
          w();
        }
      }
    }),
  );
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for (let sent = 0; sent < args.messages; sent++) {
    if (sent - done >= args.window) await new Promise<void>((r) => (wake = r));
    const c = sent % clients.length;
    void (clients[c] as TdClient).invokeUnchecked({
      '@type': 'sendMessage',
      chat_id: 5_000_000_000 + (sent % RECIPIENTS),
      input_message_content: {
        '@type': 'inputMessageText',
        text: { '@type': 'formattedText', text: `Campaign message ${sent} from bot ${c}`, entities: [] },
      },
    });
  }
  await finished;
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  for (const u of unsubscribe) u();
  return { sends: args.messages, wallSeconds: wall, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

function best(runs: readonly Measured[]): Measured {
  return runs.reduce((a, b) => (b.sends / b.wallSeconds > a.sends / a.wallSeconds ? b : a));
}

async function main(): Promise<void> {
  const pinned = pinToOneCore();
  const args = parseArgs(process.argv.slice(2));
  const load = otherLoad();
  const dir = mkdtempSync(join(tmpdir(), 'sim-bench-'));
  try {
    createWorld(dir, args.clients);
    const world = World.open(dir);

    const rawBackend = new SimulatorBackend({ worldDir: dir });
    const driver = new RawDriver(rawBackend);
    const rawIds: number[] = [];
    for (let b = 0; b < args.clients; b++) {
      const id = rawBackend.createClientId();
      for (const r of loginRequests(dir, b, 'raw')) await driver.call(id, r);
      rawIds.push(id);
    }
    // Warm-up so the JIT has seen the hot path before anything is timed.
    const warmup = Math.min(20_000, args.messages);
    await runBackendDriver(driver, rawIds, { ...args, messages: warmup });
    const rawRuns: Measured[] = [];
    for (let r = 0; r < args.rounds; r++) rawRuns.push(await runBackendDriver(driver, rawIds, args));
    await driver.closeAll(rawIds);
    await rawBackend.close();

    const clientBackend = new SimulatorBackend({ worldDir: dir });
    const manager = new TdClientManager(clientBackend, { defaultTimeoutMs: 120_000 });
    const clients: TdClient[] = [];
    for (let b = 0; b < args.clients; b++) {
      const client = manager.createClient();
      for (const r of loginRequests(dir, b, 'client')) await client.invokeUnchecked(r as TdObject);
      clients.push(client);
    }
    await runTdClientDriver(clients, { ...args, messages: warmup });
    const clientRuns: Measured[] = [];
    for (let r = 0; r < args.rounds; r++) clientRuns.push(await runTdClientDriver(clients, args));
    await manager.shutdown({ timeoutMs: 10_000 });

    const raw = best(rawRuns);
    const viaClient = best(clientRuns);
    const delivered = world.deliveries().length;
    const expected = 2 * (warmup + args.rounds * args.messages);
    const result = {
      benchmark: 'simulator',
      sends_per_second: Math.round(raw.sends / raw.wallSeconds),
      sends_per_cpu_second: Math.round(raw.sends / raw.cpuSeconds),
      sends_per_second_tdclient: Math.round(viaClient.sends / viaClient.wallSeconds),
      sends_per_cpu_second_tdclient: Math.round(viaClient.sends / viaClient.cpuSeconds),
      messages_per_round: args.messages,
      rounds: args.rounds,
      clients: args.clients,
      window: args.window,
      deliveries_logged: delivered,
      deliveries_expected: expected,
      pinned,
      ...load,
      node: process.version,
    };
    if (delivered !== expected)
      throw new Error(`delivery log has ${delivered} records, expected ${expected}`);
    if (!args.json) {
      console.log(
        `simulator: ${result.sends_per_second} sends/s (${result.sends_per_cpu_second} per CPU-second), backend driver`,
      );
      console.log(`simulator: ${result.sends_per_second_tdclient} sends/s through TdClient`);
      console.log(
        `pinned: ${pinned}; load average ${load.load_average_1m.toFixed(2)}; go build running: ${load.go_build_running}`,
      );
    }
    console.log(JSON.stringify(result));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
