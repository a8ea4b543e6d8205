/**
 * Updates benchmark: how fast what an account receives reaches its sink, next to a plain HTTP round trip to
 * the same receiver measured in the same run.
 *
 *   npm run bench:updates -- [--json] [--messages N] [--chats C] [--rate R] [--sends N] [--send-parallel P]
 *
 * One process: the simulator backend with one logged-in user account, the runtime's updates pipeline for it
 * (pump, fdatasync'ed outbox, deliverer; allowed to post to loopback, the only difference from a pod), and
 * a loopback HTTP receiver. Two phases, users of the world writing round robin over C chats:
 * - steady: N messages at R per second; latency is from a message's record in the delivery log to its 2xx
 *   at the receiver. It includes the simulator's poll of the delivery log (every poll_interval_ms, 100 ms),
 *   which stands in for Telegram's push;
 * - backlog: N messages recorded at once (the sink was away), then drained: delivered events per second.
 * The reference is the same receiver answering plain POSTs of the same size, with the same number in flight
 * (maxParallelChats, 10). With --json the last line is one JSON object.
 *
 * Then, unless --sends 0, the send API (send-gateway-phase.ts): N sends with P in flight through the
 * gateway, the same to the runtime's own send endpoint, and plain HTTPS round trips to a server with the
 * gateway's certificate, all in this run.
 */
import { createServer, request, type Agent, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent as HttpAgent } from 'node:http';
import { pino } from 'pino';
import { SimulatorBackend, World, type Delivery } from '../../runtime/simulator/index.js';
import type { TdObject } from '../../runtime/tdlib/backend.js';
import { TdClientManager } from '../../runtime/tdlib/client.js';
import { AccountUpdates } from '../../runtime/updates/account-updates.js';
import { DEFAULT_POLICY } from '../../runtime/updates/delivery.js';
import { httpPost } from '../../runtime/updates/http-post.js';
import { measureSends } from './send-gateway-phase.js';
import { waitFor } from '../cluster/wait.js';
import {
  SENDER_CODE,
  USER_SENDER_BASE_ID,
  recipientName,
  userSenderPhone,
  writeCampaignWorld,
} from '../support/campaign-world.js';

interface Args {
  json: boolean;
  messages: number;
  chats: number;
  rate: number;
  /** Sends through the send API gateway (0: none, and no control plane). */
  sends: number;
  sendParallel: number;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { json: false, messages: 3000, chats: 50, rate: 200, sends: 1000, sendParallel: 10 };
  const whole = (name: string, v: string | undefined, min: number): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`${name} takes a whole number >= ${min}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--json') args.json = true;
    else if (a === '--messages') args.messages = whole(a, argv[++i], 1);
    else if (a === '--chats') args.chats = whole(a, argv[++i], 1);
    else if (a === '--rate') args.rate = whole(a, argv[++i], 1);
    else if (a === '--sends') args.sends = whole(a, argv[++i], 0);
    else if (a === '--send-parallel') args.sendParallel = whole(a, argv[++i], 1);
    else
      throw new Error(
        `unknown argument ${a}; expected --json, --messages N, --chats C, --rate R, --sends N, --send-parallel P`,
      );
  }
  return args;
}

const log = (line: string): void => void process.stderr.write(`${line}\n`);

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

const round = (n: number, digits = 1): number => Number(n.toFixed(digits));

/** A receiver that answers 204 and records when each event id arrived. */
async function receiver(): Promise<{ url: string; acceptedAt: Map<string, number>; server: Server }> {
  const acceptedAt = new Map<string, number>();
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const id = req.headers['ce-id'];
      if (typeof id === 'string' && !acceptedAt.has(id))
        acceptedAt.set(decodeURIComponent(id), performance.now());
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, acceptedAt, server };
}

/** Plain POSTs of `body` to `url`, `parallel` in flight, `count` in all: latencies (ms) and the rate. */
async function plainRoundTrips(
  url: string,
  body: string,
  count: number,
  parallel: number,
): Promise<{ latencies: number[]; perSecond: number }> {
  const agent: Agent = new HttpAgent({ keepAlive: true });
  const latencies: number[] = [];
  let next = 0;
  const one = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const started = performance.now();
      const req = request(
        url,
        { method: 'POST', agent, headers: { 'content-type': 'application/json', 'ce-id': `plain-${next}` } },
        (res) => {
          res.resume();
          res.on('end', () => {
            latencies.push(performance.now() - started);
            resolve();
          });
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  const started = performance.now();
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < count) {
        next++;
        await one();
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  agent.destroy();
  return { latencies: latencies.sort((a, b) => a - b), perSecond: count / seconds };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const worldDir = writeCampaignWorld({ recipients: args.chats, userSenders: 1, bot: false });
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-updates-'));
  const backend = new SimulatorBackend({ worldDir });
  const manager = new TdClientManager(backend, { defaultTimeoutMs: 30_000, closeTimeoutMs: 30_000 });
  const world = World.open(worldDir);
  const sink = await receiver();
  try {
    const updates = await AccountUpdates.open({
      dir: join(dataDir, 'updates'),
      databaseDir: join(dataDir, 'db'),
      source: '/namespaces/bench/telegramaccounts/inbox',
      isUser: true,
      logger: pino({ level: 'silent' }),
      onFigures: () => undefined,
      onHealth: () => undefined,
    });
    updates.configure({
      sink: { url: sink.url, post: httpPost({ allowLoopback: true }) },
      sinkURI: sink.url,
      kinds: new Set(['MessageNew']),
      policy: DEFAULT_POLICY,
    });
    const client = manager.createClient();
    updates.attach(client);
    client.subscribe((update) => updates.onUpdate(client, update as unknown as TdObject));
    await client.invokeUnchecked({
      '@type': 'setTdlibParameters',
      database_directory: join(dataDir, 'db'),
      api_id: 94575,
      api_hash: '0123456789abcdef0123456789abcdef',
      system_language_code: 'en',
      device_model: 'bench',
      application_version: '1.0',
    });
    await client.invokeUnchecked({
      '@type': 'setAuthenticationPhoneNumber',
      phone_number: userSenderPhone(0),
    });
    await client.invokeUnchecked({ '@type': 'checkAuthenticationCode', code: SENDER_CODE });
    await waitFor(
      'the account ready',
      () => (client.authorizationState?.['@type'] === 'authorizationStateReady' ? true : undefined),
      {
        timeoutMs: 30_000,
      },
    );

    // The reference first, on a quiet process: the same receiver, bodies of an event's size.
    const body = JSON.stringify({
      chat_id: 6_000_000_000,
      message_id: 1_048_576,
      date: 1_800_000_000,
      sender: { user_id: 6_000_000_000 },
      content: {
        '@type': 'messageText',
        text: { '@type': 'formattedText', text: 'message 0', entities: [] },
      },
    });
    const plain = await plainRoundTrips(sink.url, body, args.messages, DEFAULT_POLICY.maxParallelChats);
    log(
      `plain HTTP round trip: ${round(plain.perSecond, 0)} req/s, p50 ${round(quantile(plain.latencies, 0.5), 2)} ms, p99 ${round(quantile(plain.latencies, 0.99), 2)} ms`,
    );

    const idOf = (d: Delivery): string => `${d.from}:${d.message_id}:new`;
    const allAccepted = (sent: readonly Delivery[]) =>
      waitFor(
        `${sent.length} events at the receiver`,
        () => (sent.every((d) => sink.acceptedAt.has(idOf(d))) ? true : undefined),
        { timeoutMs: 600_000, intervalMs: 20 },
      );
    let n = 0;
    const write = (): Delivery =>
      world.sendMessage(`@${recipientName(n % args.chats)}`, USER_SENDER_BASE_ID, `message ${n++}`);

    // Steady: paced against the start, yielding between messages so the pipeline runs alongside.
    const recordedAt = new Map<string, number>();
    const steady: Delivery[] = [];
    const steadyStarted = performance.now();
    for (let i = 0; i < args.messages; i++) {
      const wait = steadyStarted + (i * 1000) / args.rate - performance.now();
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, wait)));
      const d = write();
      recordedAt.set(idOf(d), performance.now());
      steady.push(d);
    }
    await allAccepted(steady);
    const latencies = [...recordedAt]
      .map(([id, at]) => (sink.acceptedAt.get(id) ?? NaN) - at)
      .sort((a, b) => a - b);

    // Backlog: everything recorded first, then drained.
    const backlog: Delivery[] = [];
    for (let i = 0; i < args.messages; i++) backlog.push(write());
    const drainStarted = performance.now();
    await allAccepted(backlog);
    const lastAccepted = Math.max(...backlog.map((d) => sink.acceptedAt.get(idOf(d)) ?? 0));
    const deliveredPerSecond = args.messages / ((lastAccepted - drainStarted) / 1000);
    const result = {
      messages: args.messages,
      chats: args.chats,
      steady_rate_per_second: args.rate,
      delivered_events_per_second: round(deliveredPerSecond, 0),
      delivery_latency_p50_ms: round(quantile(latencies, 0.5), 1),
      delivery_latency_p99_ms: round(quantile(latencies, 0.99), 1),
      plain_http_per_second: round(plain.perSecond, 0),
      plain_http_p50_ms: round(quantile(plain.latencies, 0.5), 2),
      plain_http_p99_ms: round(quantile(plain.latencies, 0.99), 2),
      figures: updates.figures(),
    };
    log(
      `updates: at ${args.rate} messages/s, delivery latency p50 ${result.delivery_latency_p50_ms} ms, p99 ${result.delivery_latency_p99_ms} ms; a backlog of ${args.messages} drained at ${result.delivered_events_per_second} events/s`,
    );
    await updates.close();

    let sends: Record<string, unknown> = {};
    if (args.sends > 0) {
      const measured = await measureSends({
        client,
        execute: (request) => manager.executeUnchecked(request),
        myUserId: USER_SENDER_BASE_ID,
        recipient: (i) => `@${recipientName(i % args.chats)}`,
        count: args.sends,
        parallel: args.sendParallel,
        log,
      });
      sends = {
        sends: args.sends,
        sends_in_flight: args.sendParallel,
        sends_per_second: round(measured.gateway.perSecond, 0),
        send_p50_ms: round(quantile(measured.gateway.latencies, 0.5), 2),
        send_p99_ms: round(quantile(measured.gateway.latencies, 0.99), 2),
        runtime_direct_sends_per_second: round(measured.runtimeDirect.perSecond, 0),
        runtime_direct_p50_ms: round(quantile(measured.runtimeDirect.latencies, 0.5), 2),
        runtime_direct_p99_ms: round(quantile(measured.runtimeDirect.latencies, 0.99), 2),
        plain_https_per_second: round(measured.plainHttps.perSecond, 0),
        plain_https_p50_ms: round(quantile(measured.plainHttps.latencies, 0.5), 2),
        plain_https_p99_ms: round(quantile(measured.plainHttps.latencies, 0.99), 2),
        sends_refused_by_status: measured.refused,
      };
      log(
        `send API, ${args.sendParallel} in flight: through the gateway ${String(sends.sends_per_second)} sends/s, p50 ${String(sends.send_p50_ms)} ms, p99 ${String(sends.send_p99_ms)} ms; the runtime's endpoint directly p99 ${String(sends.runtime_direct_p99_ms)} ms; plain HTTPS round trip p99 ${String(sends.plain_https_p99_ms)} ms`,
      );
    }
    await client.close();
    if (args.json) process.stdout.write(`${JSON.stringify({ ...result, ...sends })}\n`);
  } finally {
    await manager.shutdown({ timeoutMs: 10_000 });
    await backend.close();
    sink.server.close();
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(worldDir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
