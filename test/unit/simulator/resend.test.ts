import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TdObject } from '../../../runtime/tdlib/backend.js';
import type { TdClient } from '../../../runtime/tdlib/client.js';
import {
  isAuthState,
  isConnectionState,
  loginUser,
  makeWorld,
  outcomeOf,
  params,
  Recorder,
  startSession,
  textMessage,
  type Session,
  type WorldFixture,
  worldSynced,
} from './support/harness.js';

jest.setTimeout(20_000);

const ALICE = 5550100101;
const BOB = 5550100102;
const CAROL = 5550100103;
const DAY_MS = 86_400_000;
const SLOW_SENDS = { latency_ms: { default: 0, methods: { sendMessage: 60_000 } } };

describe('re-sending after a restart with the message database (TDLib binlog)', () => {
  let fx: WorldFixture;
  let session: Session;

  beforeEach(() => {
    fx = makeWorld({ faults: SLOW_SENDS });
    session = startSession(fx.dir);
  });

  afterEach(async () => {
    await session.close();
    expect(session.checked.problems).toEqual([]);
    fx.cleanup();
  });

  const db = (): string => join(fx.dir, 'db-me');
  const pendingFile = (): string => join(db(), 'td.pending');
  const withMessageDb = (on: boolean): TdObject => ({ ...params(db()), use_message_database: on });

  async function firstRun(messageDb: boolean): Promise<{ client: TdClient; rec: Recorder }> {
    const client = session.manager.createClient();
    const rec = new Recorder(client);
    await client.invokeUnchecked(withMessageDb(messageDb));
    await loginUser(client, '+15550100001', '12345', 'correct horse');
    await client.invokeUnchecked({ '@type': 'searchPublicChat', username: 'alice_demo' });
    return { client, rec };
  }

  /** A new process on the same world and database directory. */
  async function restart(messageDb: boolean, clock?: { now(): number }): Promise<Recorder> {
    await session.close();
    session = startSession(fx.dir, clock === undefined ? {} : { clock });
    const client = session.manager.createClient();
    const rec = new Recorder(client);
    await client.invokeUnchecked(withMessageDb(messageDb));
    await rec.waitFor(isAuthState('authorizationStateReady'));
    return rec;
  }

  async function fastSends(): Promise<void> {
    fx.world.setFaults({ latency_ms: { default: 0, methods: {} } });
    await worldSynced(session, fx);
  }

  it('re-sends what was pending at close: updateNewMessage (no sending_id), then updateMessageSendSucceeded', async () => {
    const { client } = await firstRun(true);
    await client.invokeUnchecked(textMessage(ALICE, 'survives a restart', 42));
    await client.close();
    expect(existsSync(pendingFile())).toBe(true);
    expect(fx.world.deliveries()).toEqual([]);

    await fastSends();
    const rec = await restart(true);
    const announced = await rec.waitFor((u) => u['@type'] === 'updateNewMessage');
    const message = announced.message as TdObject;
    expect(message).toMatchObject({
      chat_id: ALICE,
      sending_state: { '@type': 'messageSendingStatePending', sending_id: 0 },
      content: { '@type': 'messageText', text: { text: 'survives a restart' } },
    });
    // The message database knows the chat: it is announced before the message that names it.
    const newChat = rec.updates.findIndex(
      (u) => u['@type'] === 'updateNewChat' && (u.chat as TdObject).id === ALICE,
    );
    expect(newChat).toBeGreaterThanOrEqual(0);
    expect(newChat).toBeLessThan(rec.updates.indexOf(announced));
    const succeeded = await outcomeOf(rec, message.id as number);
    expect(succeeded['@type']).toBe('updateMessageSendSucceeded');
    const deliveries = fx.world.deliveries();
    expect(deliveries).toHaveLength(1);
    expect(deliveries[0]).toMatchObject({
      text: 'survives a restart',
      message_id: (succeeded.message as TdObject).id,
    });
    expect(deliveries[0]?.random_id).toMatch(/^-?[0-9]+$/);
    expect(existsSync(pendingFile())).toBe(false);
  });

  it('does not deliver twice: a re-send the server already has (same random_id) just succeeds', async () => {
    const { client, rec } = await firstRun(true);
    fx.world.setFaults({ latency_ms: { default: 0, methods: {} }, disconnected: true });
    await worldSynced(session, fx);
    await rec.waitFor(isConnectionState('connectionStateConnecting'));
    const pending = await client.invokeUnchecked(textMessage(ALICE, 'delivered once'));
    // The state of the directory when the process died right after the server took the message but
    // before TDLib noted the success: the send is still in the binlog.
    copyFileSync(pendingFile(), join(fx.dir, 'pending.backup'));
    fx.world.setFaults({ disconnected: false });
    const first = await outcomeOf(rec, pending.id as number);
    expect(first['@type']).toBe('updateMessageSendSucceeded');
    await client.close();
    expect(existsSync(pendingFile())).toBe(false);
    copyFileSync(join(fx.dir, 'pending.backup'), pendingFile());

    const again = await restart(true);
    const announced = await again.waitFor((u) => u['@type'] === 'updateNewMessage');
    const resent = await outcomeOf(again, (announced.message as TdObject).id as number);
    expect(resent['@type']).toBe('updateMessageSendSucceeded');
    expect((resent.message as TdObject).id).toBe((first.message as TdObject).id);
    expect((resent.message as TdObject).date).toBe((first.message as TdObject).date);
    expect(fx.world.deliveries().map((d) => d.text)).toEqual(['delivered once']);
    expect(existsSync(pendingFile())).toBe(false);
  });

  it('fails a send pending for more than 24 hours: 400 "Message is too old to be re-sent automatically"', async () => {
    await session.close();
    session = startSession(fx.dir, { clock: { now: () => Date.now() - DAY_MS - 60_000 } });
    const { client } = await firstRun(true);
    await client.invokeUnchecked(textMessage(ALICE, 'a day late'));
    await client.close();

    await fastSends();
    const rec = await restart(true);
    const announced = await rec.waitFor((u) => u['@type'] === 'updateNewMessage');
    const failed = await outcomeOf(rec, (announced.message as TdObject).id as number);
    expect(failed.error).toEqual({
      '@type': 'error',
      code: 400,
      message: 'Message is too old to be re-sent automatically',
    });
    expect((failed.message as TdObject).sending_state).toMatchObject({
      '@type': 'messageSendingStateFailed',
      can_retry: true,
      retry_after: 0,
    });
    expect(fx.world.deliveries()).toEqual([]);
    expect(existsSync(pendingFile())).toBe(false);
  });

  it('forgets pending sends without the message database, as TDLib does', async () => {
    const { client } = await firstRun(false);
    await client.invokeUnchecked(textMessage(ALICE, 'gone at close'));
    await client.close();
    expect(existsSync(pendingFile())).toBe(false);

    // Remembered with the database on, then started with it off: erased, never re-sent.
    await session.close();
    session = startSession(fx.dir);
    const second = session.manager.createClient();
    const secondRec = new Recorder(second);
    await second.invokeUnchecked(withMessageDb(true));
    await secondRec.waitFor(isAuthState('authorizationStateReady'));
    await second.invokeUnchecked({ '@type': 'searchPublicChat', username: 'alice_demo' });
    await second.invokeUnchecked(textMessage(ALICE, 'remembered, then erased'));
    await second.close();
    expect(existsSync(pendingFile())).toBe(true);

    await fastSends();
    const rec = await restart(false);
    await new Promise((r) => setTimeout(r, 200));
    expect(rec.updates.some((u) => u['@type'] === 'updateNewMessage')).toBe(false);
    expect(fx.world.deliveries()).toEqual([]);
    expect(existsSync(pendingFile())).toBe(false);
  });

  it('fails a re-send TDLib may no longer make, and drops one whose chat is gone, silently', async () => {
    const { client } = await firstRun(true);
    for (const username of ['bob_demo', 'carol_demo'])
      await client.invokeUnchecked({ '@type': 'searchPublicChat', username });
    await client.invokeUnchecked(textMessage(BOB, 'to a user deleted meanwhile'));
    await client.invokeUnchecked(textMessage(CAROL, 'to a user gone from the world'));
    await client.close();
    fx.world.setDeactivated(BOB);
    const file = join(fx.dir, 'world.json');
    const world = JSON.parse(readFileSync(file, 'utf8')) as { users: { id: number }[] };
    writeFileSync(file, JSON.stringify({ ...world, users: world.users.filter((u) => u.id !== CAROL) }));

    await fastSends();
    const rec = await restart(true);
    const announced = await rec.waitFor((u) => u['@type'] === 'updateNewMessage');
    expect((announced.message as TdObject).chat_id).toBe(BOB);
    const failed = await outcomeOf(rec, (announced.message as TdObject).id as number);
    // The database knows the user is deleted now: TDLib's can_send_message refuses before the network.
    expect(failed.error).toEqual({
      '@type': 'error',
      code: 400,
      message: 'Have no write access to the chat',
    });
    expect((failed.message as TdObject).sending_state).toMatchObject({ can_retry: false });
    await new Promise((r) => setTimeout(r, 100));
    expect(rec.updates.filter((u) => u['@type'] === 'updateNewMessage')).toHaveLength(1);
    expect(fx.world.deliveries()).toEqual([]);
    expect(existsSync(pendingFile())).toBe(false);
  });

  it('drops remembered sends with the database on logOut', async () => {
    const { client } = await firstRun(true);
    await client.invokeUnchecked(textMessage(ALICE, 'logged out before it left'));
    expect(existsSync(pendingFile())).toBe(true);
    await client.invokeUnchecked({ '@type': 'logOut' });
    await new Promise((r) => setTimeout(r, 100));
    expect(existsSync(pendingFile())).toBe(false);
    expect(existsSync(join(db(), 'td.binlog'))).toBe(false);
  });
});
