/**
 * The deliverer against a real HTTP receiver on loopback: what a receiver sees when it fails for a while,
 * slows one chat, asks for a pause or refuses an event.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../../cluster/wait.js';
import type { UpdateEvent } from '../../../runtime/updates/cloudevents.js';
import { DEFAULT_POLICY, type DeliveryPolicy } from '../../../runtime/updates/delivery.js';
import { Deliverer, type DelivererOptions } from '../../../runtime/updates/deliverer.js';
import { Outbox } from '../../../runtime/updates/outbox.js';
import { httpPost } from '../../../runtime/updates/http-post.js';

interface Received {
  id: string;
  chat: string;
  n: number;
  at: number;
  answered: number;
  token: string | undefined;
}

/** A receiver whose answer per request is decided by `answer` (status and headers). */
async function receiver(
  answer: (event: { id: string; chat: string }) => { status: number; headers?: Record<string, string> },
): Promise<{ url: string; log: Received[]; close: () => Promise<void> }> {
  const log: Received[] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const id = String(req.headers['ce-id']);
      const chat = String(req.headers['ce-subject']);
      const { status, headers } = answer({ id, chat });
      log.push({
        id,
        chat,
        n: Number((JSON.parse(body) as { n: number }).n),
        at: Date.now(),
        answered: status,
        token: req.headers['x-tdlib-operator-token'] as string | undefined,
      });
      res.writeHead(status, headers).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const close = (): Promise<void> => new Promise((resolve) => server.close(() => resolve()));
  cleanups.push(close);
  return { url: `http://127.0.0.1:${port}/`, log, close };
}

/** Run after each test, last first: deliverers stop before their receivers close. */
const cleanups: Array<() => Promise<void>> = [];

const fast: DeliveryPolicy = {
  ...DEFAULT_POLICY,
  initialBackoffMs: 10,
  maxBackoffMs: 80,
  maxParallelChats: 3,
};
/** The receivers listen on loopback, which only local development may post to. */
const post = httpPost({ allowLoopback: true });
const event = (chat: string, n: number): UpdateEvent => ({
  kind: 'MessageNew',
  id: `${chat}:${n}:new`,
  subject: chat,
  time: new Date().toISOString(),
  data: { n },
});

describe('Deliverer', () => {
  /** A deliverer of this test's outbox to `url`, stopped after the test. */
  const deliverTo = (url: string, extra: Partial<DelivererOptions> = {}): Deliverer => {
    const deliverer = new Deliverer({
      outbox,
      source: 's',
      sink: () => ({ url }),
      policy: fast,
      post,
      ...extra,
    });
    cleanups.push(() => deliverer.stop());
    return deliverer;
  };
  let dir: string;
  let outbox: Outbox;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'deliverer-'));
    outbox = await Outbox.open(dir);
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    await outbox.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('after a receiver outage under steady load, delivers every event once, each chat in order', async () => {
    let failing = true;
    const sink = await receiver(() => (failing ? { status: 503 } : { status: 202 }));
    const deliverer = deliverTo(sink.url, { source: '/namespaces/a/telegramaccounts/b' });
    const chats = ['10', '20', '30', '40', '50'];
    for (let n = 1; n <= 200; n++) {
      await outbox.add([event(chats[n % chats.length] ?? '10', n)], Date.now());
      deliverer.kick();
    }
    await waitFor(
      'the outage to be felt',
      () => (sink.log.filter((r) => r.answered === 503).length >= 50 ? true : undefined),
      {
        timeoutMs: 20_000,
      },
    );
    failing = false;
    await waitFor('the outbox to drain', () => (outbox.size === 0 ? true : undefined), {
      timeoutMs: 30_000,
    });
    const accepted = sink.log.filter((r) => r.answered === 202);
    expect(new Set(accepted.map((r) => r.id)).size).toBe(200);
    // A 503 is not an acceptance: nothing accepted came twice.
    expect(accepted).toHaveLength(200);
    for (const chat of chats) {
      const order = accepted.filter((r) => r.chat === chat).map((r) => r.n);
      expect(order).toEqual([...order].sort((a, b) => a - b));
    }
  });

  it('keeps one failing chat from holding back the others', async () => {
    const sink = await receiver(({ chat }) => (chat === 'slow' ? { status: 500 } : { status: 200 }));
    const deliverer = deliverTo(sink.url);
    await outbox.add(
      [
        ...Array.from({ length: 20 }, (_, i) => event('slow', i)),
        ...Array.from({ length: 30 }, (_, i) => event(String(i % 6), 100 + i)),
      ],
      Date.now(),
    );
    deliverer.kick();
    await waitFor(
      'every other chat delivered',
      () => (outbox.list().every((p) => p.event.subject === 'slow') ? true : undefined),
      {
        timeoutMs: 20_000,
      },
    );
    expect(outbox.size).toBe(20);
    // The failing chat's head is retried; nothing behind it in that chat was tried.
    expect(new Set(sink.log.filter((r) => r.chat === 'slow').map((r) => r.id))).toEqual(
      new Set(['slow:0:new']),
    );
  });

  it('waits as long as Retry-After asks before trying again', async () => {
    let first = true;
    const sink = await receiver(() => {
      if (!first) return { status: 200 };
      first = false;
      return { status: 429, headers: { 'retry-after': '1' } };
    });
    const deliverer = deliverTo(sink.url);
    await outbox.add([event('1', 1)], Date.now());
    deliverer.kick();
    await waitFor('delivery', () => (outbox.size === 0 ? true : undefined), { timeoutMs: 10_000 });
    const [refused, accepted] = sink.log;
    expect(refused?.answered).toBe(429);
    expect(accepted?.answered).toBe(200);
    expect((accepted?.at ?? 0) - (refused?.at ?? 0)).toBeGreaterThanOrEqual(950);
  });

  it('sends an event the receiver refuses to the dead-letter sink, and goes on with its chat', async () => {
    const sink = await receiver(({ id }) => (id === '1:1:new' ? { status: 400 } : { status: 200 }));
    const dead = await receiver(() => ({ status: 200 }));
    const outcomes: string[] = [];
    const deliverer = deliverTo(sink.url, {
      deadLetterSink: () => ({ url: dead.url }),
      onOutcome: (e, outcome) => outcomes.push(`${e.id} ${outcome}`),
    });
    await outbox.add([event('1', 1), event('1', 2)], Date.now());
    deliverer.kick();
    await waitFor('both settled', () => (outbox.size === 0 ? true : undefined), { timeoutMs: 10_000 });
    expect(dead.log.map((r) => r.id)).toEqual(['1:1:new']);
    expect(outcomes).toEqual(['1:1:new deadLettered', '1:2:new delivered']);
    expect(sink.log.filter((r) => r.id === '1:1:new')).toHaveLength(1);
  });

  it('sends the secret header with every event', async () => {
    const server = await receiver(() => ({ status: 200 }));
    const deliverer = deliverTo(server.url, {
      sink: () => ({ url: server.url, headers: { 'x-tdlib-operator-token': 'hunter2' } }),
    });
    await outbox.add([event('1', 1), event('2', 2)], Date.now());
    deliverer.kick();
    await waitFor('delivery', () => (outbox.size === 0 ? true : undefined), { timeoutMs: 10_000 });
    expect(server.log.map((r) => r.token)).toEqual(['hunter2', 'hunter2']);
  });
});
