/**
 * One account's updates with a real (simulated) TDLib client and a real HTTP receiver: live messages, then
 * the gaps a restart, a move with the session backup's marks, and a move after a kill leave, refilled
 * from chat history.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import type { TdObject } from '../../../runtime/tdlib/backend.js';
import type { TdClient } from '../../../runtime/tdlib/client.js';
import { AccountUpdates, UPDATES_STATE_FILE } from '../../../runtime/updates/account-updates.js';
import type { UpdateKind } from '../../../runtime/updates/cloudevents.js';
import { DEFAULT_POLICY } from '../../../runtime/updates/delivery.js';
import { httpPost } from '../../../runtime/updates/http-post.js';
import { waitFor } from '../../cluster/wait.js';
import {
  loginUser,
  makeWorld,
  params,
  Recorder,
  startSession,
  type Session,
  type WorldFixture,
} from '../simulator/support/harness.js';

const ME = 5550100001;
const SENDERS = ['@alice_demo', '@bob_demo', '@carol_demo'];

describe('AccountUpdates: what an account receives, delivered across restarts and moves', () => {
  let fx: WorldFixture;
  let session: Session;
  let server: Server;
  let url = '';
  let accepted: string[] = [];
  /** Every accepted event by id: its CloudEvents type and its data. */
  let received = new Map<string, { type: string; data: TdObject }>();
  let tmp = '';
  const open: AccountUpdates[] = [];

  beforeEach(async () => {
    fx = makeWorld();
    session = startSession(fx.dir);
    tmp = mkdtempSync(join(tmpdir(), 'account-updates-'));
    accepted = [];
    received = new Map();
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const id = decodeURIComponent(String(req.headers['ce-id']));
        accepted.push(id);
        const data = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as TdObject;
        received.set(id, { type: String(req.headers['ce-type']), data });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });

  afterEach(async () => {
    for (const updates of open.splice(0)) await updates.close();
    await session.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(tmp, { recursive: true, force: true });
    fx.cleanup();
  });

  async function start(
    outboxDir: string,
    statusResumeFrom?: string,
    kinds: ReadonlySet<UpdateKind> = new Set(['MessageNew']),
  ): Promise<{ updates: AccountUpdates; client: TdClient }> {
    const updates = await AccountUpdates.open({
      dir: join(tmp, outboxDir),
      databaseDir: join(tmp, 'db'),
      source: '/namespaces/test/telegramaccounts/me',
      isUser: true,
      logger: pino({ level: 'silent' }),
      onFigures: () => undefined,
      onHealth: () => undefined,
      ...(statusResumeFrom ? { statusResumeFrom } : {}),
    });
    open.push(updates);
    updates.configure({
      sink: { url, post: httpPost({ allowLoopback: true }) },
      sinkURI: url,
      kinds,
      policy: DEFAULT_POLICY,
    });
    const client = session.manager.createClient();
    updates.attach(client);
    client.subscribe((update) => updates.onUpdate(client, update as unknown as TdObject));
    const rec = new Recorder(client);
    await client.invokeUnchecked(params(join(tmp, 'db')));
    if (!rec.authStates().includes('authorizationStateReady'))
      await loginUser(client, '+15550100001', '12345', 'correct horse').catch(() => undefined);
    await rec.waitFor(
      (u) =>
        u['@type'] === 'updateAuthorizationState' &&
        (u.authorization_state as TdObject)['@type'] === 'authorizationStateReady',
    );
    return { updates, client };
  }

  async function stop(updates: AccountUpdates, client: TdClient): Promise<void> {
    open.splice(open.indexOf(updates), 1);
    await updates.close();
    await client.close();
  }

  const send = (n: number, from = 0): string[] =>
    Array.from({ length: n }, (_, i) => {
      const sent = fx.world.sendMessage(SENDERS[(from + i) % SENDERS.length] ?? '', ME, `m${from + i}`);
      return `${sent.from}:${sent.message_id}:new`;
    });

  const allAccepted = (ids: readonly string[]) =>
    waitFor(
      `${ids.length} events accepted`,
      () => (ids.every((id) => accepted.includes(id)) ? true : undefined),
      {
        timeoutMs: 10_000,
        onTimeout: () => `accepted: ${accepted.join(', ')}`,
      },
    );

  /** Telegram dates messages in whole seconds: the next pod starts in a later second than the gap. */
  const nextSecond = () => {
    const now = Math.floor(Date.now() / 1000);
    return waitFor('the next second', () => (Math.floor(Date.now() / 1000) > now ? true : undefined), {
      timeoutMs: 2000,
    });
  };

  const duplicates = (): number => accepted.length - new Set(accepted).size;

  it('delivers live messages, then after a restart on the same volume refills the gap exactly', async () => {
    const first = await start('outbox');
    const live = send(6);
    await allAccepted(live);
    await stop(first.updates, first.client);
    const gap = send(6, 6);
    const again = await start('outbox');
    const after = send(3, 12);
    await allAccepted([...gap, ...after]);
    expect(duplicates()).toBe(0);
    expect(again.updates.figures()).toMatchObject({ delivered: 15, pending: 0, dropped: 0 });
  });

  it('on a new pod with the backup’s marks: the gap once, nothing twice', async () => {
    const first = await start('pod-a');
    await allAccepted(send(6));
    await stop(first.updates, first.client);
    const gap = send(5, 6);
    await nextSecond();
    // Another pod: no outbox of its own, the database directory restored (with the state file).
    await start('pod-b');
    await allAccepted(gap);
    expect(duplicates()).toBe(0);
  });

  it('on a new pod without the marks (the old one was killed): from status.updates.resumeFrom', async () => {
    const first = await start('pod-a');
    const before = send(6);
    await allAccepted(before);
    const resumeFrom = first.updates.figures().resumeFrom;
    expect(resumeFrom).toBeDefined();
    await stop(first.updates, first.client);
    rmSync(join(tmp, 'db', UPDATES_STATE_FILE));
    const gap = send(4, 6);
    await nextSecond();
    await start('pod-b', resumeFrom);
    await allAccepted(gap);
    // The bound: only messages dated in resumeFrom's second can come twice.
    expect(duplicates()).toBeLessThanOrEqual(before.length);
  });

  it('an edit by another user becomes a message.edited event with the new text (getMessage on the simulator)', async () => {
    await start('outbox', undefined, new Set(['MessageNew', 'MessageEdited']));
    const sent = fx.world.sendMessage('@alice_demo', ME, 'first version');
    await allAccepted([`${sent.from}:${sent.message_id}:new`]);
    const edit = fx.world.editMessage('@alice_demo', ME, sent.message_id, 'second version');
    const id = `${sent.from}:${sent.message_id}:edit:${edit.edit_date}`;
    await allAccepted([id]);
    const event = received.get(id);
    expect(event?.type).toBe('dev.tdlib-operator.telegram.message.edited');
    expect(event?.data).toMatchObject({
      chat_id: sent.from,
      message_id: sent.message_id,
      edit_date: edit.edit_date,
      sender: { user_id: sent.from },
      content: { '@type': 'messageText', text: { text: 'second version' } },
    });
    expect(duplicates()).toBe(0);
  });
});
