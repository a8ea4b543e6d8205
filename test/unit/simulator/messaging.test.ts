import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { join } from 'node:path';
import type { TdObject } from '../../../runtime/tdlib/backend.js';
import type { TdClient } from '../../../runtime/tdlib/client.js';
import {
  errorOf,
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

describe('simulator recipients and sending', () => {
  let fx: WorldFixture;
  let session: Session;

  async function userClient(
    worldOverrides?: Record<string, unknown>,
  ): Promise<{ client: TdClient; rec: Recorder }> {
    if (worldOverrides !== undefined) {
      await session.close();
      fx.cleanup();
      fx = makeWorld(worldOverrides);
      session = startSession(fx.dir);
    }
    const client = session.manager.createClient();
    const rec = new Recorder(client);
    await client.invokeUnchecked(params(join(fx.dir, `db-user-${client.id}`)));
    await loginUser(client, '+15550100001', '12345', 'correct horse');
    return { client, rec };
  }

  async function botClient(): Promise<{ client: TdClient; rec: Recorder }> {
    const client = session.manager.createClient();
    const rec = new Recorder(client);
    await client.invokeUnchecked(params(join(fx.dir, `db-bot-${client.id}`)));
    await client.invokeUnchecked({ '@type': 'checkAuthenticationBotToken', token: '7000000001:AAHdemo' });
    return { client, rec };
  }

  async function send(client: TdClient, rec: Recorder, chatId: number, text = 'hello'): Promise<TdObject> {
    const pending = await client.invokeUnchecked(textMessage(chatId, text, 7));
    expect(pending).toMatchObject({
      '@type': 'message',
      chat_id: chatId,
      is_outgoing: true,
      sending_state: { '@type': 'messageSendingStatePending', sending_id: 7 },
    });
    return outcomeOf(rec, pending.id as number);
  }

  beforeEach(() => {
    fx = makeWorld();
    session = startSession(fx.dir);
  });

  afterEach(async () => {
    await session.close();
    expect(session.checked.problems).toEqual([]);
    fx.cleanup();
  });

  it('finds recipients by username and phone, with TDLib errors for the rest', async () => {
    const { client, rec } = await userClient();
    const chat = await client.invokeUnchecked({ '@type': 'searchPublicChat', username: '@alice_demo' });
    expect(chat).toMatchObject({
      '@type': 'chat',
      id: ALICE,
      type: { '@type': 'chatTypePrivate', user_id: ALICE },
      title: 'Alice',
    });
    expect(rec.updates.some((u) => u['@type'] === 'updateNewChat' && (u.chat as TdObject).id === ALICE)).toBe(
      true,
    );
    expect(
      await errorOf(client.invokeUnchecked({ '@type': 'searchPublicChat', username: 'nobody_here' })),
    ).toEqual({
      code: 400,
      message: 'USERNAME_NOT_OCCUPIED',
    });
    expect(
      await errorOf(client.invokeUnchecked({ '@type': 'searchPublicChat', username: 'bad name!' })),
    ).toEqual({
      code: 400,
      message: 'USERNAME_INVALID',
    });
    const bob = await client.invokeUnchecked({
      '@type': 'searchUserByPhoneNumber',
      phone_number: '+1 (555) 010-0102',
      only_local: false,
    });
    expect(bob).toMatchObject({ '@type': 'user', id: BOB });
    expect(
      await errorOf(
        client.invokeUnchecked({
          '@type': 'searchUserByPhoneNumber',
          phone_number: '+19990000000',
          only_local: false,
        }),
      ),
    ).toEqual({ code: 404, message: 'Not Found' });
    expect(
      await errorOf(client.invokeUnchecked({ '@type': 'createPrivateChat', user_id: CAROL, force: false })),
    ).toEqual({
      code: 400,
      message: 'User not found',
    });
    expect(
      await client.invokeUnchecked({ '@type': 'createPrivateChat', user_id: BOB, force: false }),
    ).toMatchObject({ id: BOB });
    expect(await errorOf(client.invokeUnchecked(textMessage(CAROL, 'x')))).toEqual({
      code: 400,
      message: 'Chat not found',
    });
  });

  it('imports contacts by phone number, honouring "find me by my number: my contacts"', async () => {
    const { client } = await userClient();
    fx.world.setPrivacy(CAROL, { find_by_phone_number: 'contacts' });
    await worldSynced(session, fx);
    const result = await client.invokeUnchecked({
      '@type': 'importContacts',
      contacts: [
        { '@type': 'importedContact', phone_number: '+15550100102', first_name: 'Bob', last_name: '' },
        { '@type': 'importedContact', phone_number: '+15550100103', first_name: 'Carol', last_name: '' },
        { '@type': 'importedContact', phone_number: '+15550109999', first_name: 'Nobody', last_name: '' },
      ],
    });
    expect(result).toMatchObject({
      '@type': 'importedContacts',
      user_ids: [BOB, 0, 0],
      importer_count: [0, 0, 0],
    });
    const bob = await client.invokeUnchecked({ '@type': 'createPrivateChat', user_id: BOB, force: false });
    expect(bob.id).toBe(BOB);
  });

  it('refuses phone lookups and contact imports for bots', async () => {
    const { client } = await botClient();
    for (const request of [
      { '@type': 'searchUserByPhoneNumber', phone_number: '+15550100102', only_local: false },
      { '@type': 'importContacts', contacts: [] },
    ]) {
      expect(await errorOf(client.invokeUnchecked(request))).toEqual({
        code: 400,
        message: 'The method is not available to bots',
      });
    }
  });

  it('sends: pending message first, then updateMessageSendSucceeded, and a delivery in the world log', async () => {
    const { client, rec } = await userClient();
    await client.invokeUnchecked({ '@type': 'searchPublicChat', username: 'alice_demo' });
    const outcome = await send(client, rec, ALICE, 'Hello https://example.com');
    expect(outcome['@type']).toBe('updateMessageSendSucceeded');
    const message = outcome.message as TdObject;
    expect(message.sending_state).toBeUndefined();
    expect(message.id).toBeGreaterThan(0);
    expect(message.id as number).toBe(Math.floor((message.id as number) / 1048576) * 1048576);
    expect((message.content as TdObject).text).toMatchObject({
      text: 'Hello https://example.com',
      entities: [{ '@type': 'textEntity', offset: 6, length: 19, type: { '@type': 'textEntityTypeUrl' } }],
    });
    expect(fx.world.deliveries()).toEqual([
      expect.objectContaining({
        from: 5550100001,
        to: ALICE,
        text: 'Hello https://example.com',
        status: 'delivered',
        message_id: message.id,
      }),
    ]);
    const types = rec.updates.map((u) => u['@type']);
    expect(types).toEqual(
      expect.arrayContaining(['updateNewMessage', 'updateChatLastMessage', 'updateMessageSendSucceeded']),
    );
  });

  it('validates message content like TDLib', async () => {
    const { client } = await userClient();
    await client.invokeUnchecked({ '@type': 'searchPublicChat', username: 'alice_demo' });
    expect(await errorOf(client.invokeUnchecked(textMessage(ALICE, '   ')))).toEqual({
      code: 400,
      message: 'Text must be non-empty',
    });
    expect(await errorOf(client.invokeUnchecked(textMessage(ALICE, 'x'.repeat(4097))))).toEqual({
      code: 400,
      message: 'Message is too long',
    });
    expect(await errorOf(client.invokeUnchecked({ '@type': 'sendMessage', chat_id: ALICE }))).toEqual({
      code: 400,
      message: 'Input message content must be non-empty',
    });
  });

  it('answers flood control with 429 "Too Many Requests: retry after N" once the wait exceeds TDLib\'s limit', async () => {
    const { client, rec } = await userClient({
      limits: { user: { chat: { per_second: 0.01, burst: 2 } }, tdlib_flood_wait_limit_seconds: 0 },
    });
    await client.invokeUnchecked({ '@type': 'searchPublicChat', username: 'alice_demo' });
    expect((await send(client, rec, ALICE, 'one'))['@type']).toBe('updateMessageSendSucceeded');
    expect((await send(client, rec, ALICE, 'two'))['@type']).toBe('updateMessageSendSucceeded');
    const third = await send(client, rec, ALICE, 'three');
    expect(third['@type']).toBe('updateMessageSendFailed');
    expect(third.error).toEqual({
      '@type': 'error',
      code: 429,
      message: 'Too Many Requests: retry after 100',
    });
    expect((third.message as TdObject).sending_state).toMatchObject({
      '@type': 'messageSendingStateFailed',
      error: { code: 429 },
      can_retry: true,
      retry_after: 100,
    });
    // The ones behind it in that chat fail the same way (TDLib's same-chat cascade).
    const behind = await Promise.all(['four', 'five'].map((t) => send(client, rec, ALICE, t)));
    expect(behind.map((o) => (o.error as TdObject).code)).toEqual([429, 429]);
    expect(fx.world.deliveries().map((d) => d.text)).toEqual(['one', 'two']);
    // Each refusal is logged, so another process can check that the app waited before sending again.
    const refusals = fx.world.events().filter((e) => e.type === 'flood_wait');
    expect(refusals.map((e) => [e.user_id, e.retry_after, e.chat_id])).toEqual(
      Array(3).fill([5550100001, 100, ALICE]),
    );
  });

  it("keeps the order of one account's sends within a chat, through absorbed flood waits", async () => {
    const { client, rec } = await userClient({
      limits: {
        user: { account: { per_second: 1e6, burst: 1e6 }, chat: { per_second: 40, burst: 2 } },
        tdlib_flood_wait_limit_seconds: 60,
      },
      faults: { latency_ms: { default: 0, methods: { sendMessage: 5 } } },
    });
    await client.invokeUnchecked({ '@type': 'searchPublicChat', username: 'alice_demo' });
    await client.invokeUnchecked({ '@type': 'searchPublicChat', username: 'bob_demo' });
    const texts = Array.from({ length: 12 }, (_, i) => `in order ${i}`);
    const pendings = await Promise.all(
      texts.flatMap((text) => [
        client.invokeUnchecked(textMessage(ALICE, text)),
        client.invokeUnchecked(textMessage(BOB, text)),
      ]),
    );
    const outcomes = await Promise.all(pendings.map((p) => outcomeOf(rec, p.id as number)));
    expect(outcomes.every((o) => o['@type'] === 'updateMessageSendSucceeded')).toBe(true);
    for (const chat of [ALICE, BOB]) {
      const delivered = fx.world.deliveries((d) => d.to === chat);
      expect(delivered.map((d) => d.text)).toEqual(texts);
      const ids = delivered.map((d) => d.message_id);
      expect(ids).toEqual([...ids].sort((a, b) => a - b));
      // The outcomes reach the client in the same order.
      const seen = rec.updates
        .filter(
          (u) => u['@type'] === 'updateMessageSendSucceeded' && (u.message as TdObject).chat_id === chat,
        )
        .map((u) => (((u.message as TdObject).content as TdObject).text as TdObject).text);
      expect(seen).toEqual(texts);
    }
  });

  it('waits out short flood waits silently, as TDLib retries them itself', async () => {
    const { client, rec } = await userClient({
      limits: { user: { chat: { per_second: 5, burst: 1 } }, tdlib_flood_wait_limit_seconds: 60 },
    });
    await client.invokeUnchecked({ '@type': 'searchPublicChat', username: 'alice_demo' });
    const started = Date.now();
    const outcomes = await Promise.all(['a', 'b', 'c'].map((t) => send(client, rec, ALICE, t)));
    expect(outcomes.map((o) => o['@type'])).toEqual(Array(3).fill('updateMessageSendSucceeded'));
    // Three messages at 5/s with a burst of 1: the last one leaves about 0.4 s after the first.
    expect(Date.now() - started).toBeGreaterThanOrEqual(350);
  });

  it('flood-limits username lookups', async () => {
    const { client } = await userClient({
      limits: { search_public_chat: { per_second: 0.001, burst: 1 }, tdlib_flood_wait_limit_seconds: 0 },
    });
    await client.invokeUnchecked({ '@type': 'searchPublicChat', username: 'alice_demo' });
    expect(
      await errorOf(client.invokeUnchecked({ '@type': 'searchPublicChat', username: 'bob_demo' })),
    ).toEqual({
      code: 429,
      message: 'Too Many Requests: retry after 1000',
    });
  });

  it('answers PEER_FLOOD after too many messages to strangers, but not to mutual contacts', async () => {
    const { client, rec } = await userClient({
      limits: { peer_flood: { max_new_strangers: 1, window_seconds: 3600 } },
    });
    for (const name of ['alice_demo', 'bob_demo', 'carol_demo'])
      await client.invokeUnchecked({ '@type': 'searchPublicChat', username: name });
    expect((await send(client, rec, BOB, 'to a stranger'))['@type']).toBe('updateMessageSendSucceeded');
    const flooded = await send(client, rec, CAROL, 'to another stranger');
    expect(flooded.error).toEqual({ '@type': 'error', code: 400, message: 'PEER_FLOOD' });
    // Alice and the demo user have each other as contacts: mutual contacts are not strangers.
    expect((await send(client, rec, ALICE, 'to a friend'))['@type']).toBe('updateMessageSendSucceeded');
    expect((await send(client, rec, BOB, 'again to the first stranger'))['@type']).toBe(
      'updateMessageSendSucceeded',
    );
  });

  it('fails messages to users who blocked the sender, and lets the world unblock them', async () => {
    const { client, rec } = await userClient();
    await client.invokeUnchecked({ '@type': 'searchPublicChat', username: 'bob_demo' });
    fx.world.blockUser(BOB, 5550100001);
    await worldSynced(session, fx);
    const blocked = await send(client, rec, BOB);
    expect(blocked.error).toEqual({ '@type': 'error', code: 403, message: 'USER_IS_BLOCKED' });
    fx.world.unblockUser(BOB, 5550100001);
    await worldSynced(session, fx);
    expect((await send(client, rec, BOB))['@type']).toBe('updateMessageSendSucceeded');
  });

  it('can hide blocks from user senders like Telegram does (blocked_sender_sees: success)', async () => {
    const { client, rec } = await userClient({ simulation: { blocked_sender_sees: 'success' } });
    await client.invokeUnchecked({ '@type': 'searchPublicChat', username: 'bob_demo' });
    fx.world.blockUser(BOB, 5550100001);
    await worldSynced(session, fx);
    expect((await send(client, rec, BOB))['@type']).toBe('updateMessageSendSucceeded');
    expect(fx.world.deliveries()).toEqual([]);
    expect(fx.world.deliveries((d) => d.status === 'blocked')).toHaveLength(1);
  });

  it('reports deactivated users: 403 "User is deactivated", then "Have no write access" locally', async () => {
    const { client, rec } = await userClient();
    await client.invokeUnchecked({ '@type': 'searchPublicChat', username: 'bob_demo' });
    fx.world.setDeactivated(BOB);
    await worldSynced(session, fx);
    const failed = await send(client, rec, BOB);
    expect(failed.error).toEqual({ '@type': 'error', code: 403, message: 'User is deactivated' });
    const update = await rec.waitFor(
      (u) =>
        u['@type'] === 'updateUser' &&
        (u.user as TdObject).id === BOB &&
        ((u.user as TdObject).type as TdObject)['@type'] === 'userTypeDeleted',
    );
    expect((update.user as TdObject).first_name).toBe('');
    expect(await errorOf(client.invokeUnchecked(textMessage(BOB, 'again')))).toEqual({
      code: 400,
      message: 'Have no write access to the chat',
    });
    expect(
      await errorOf(client.invokeUnchecked({ '@type': 'searchPublicChat', username: 'bob_demo' })),
    ).toEqual({
      code: 400,
      message: 'USERNAME_NOT_OCCUPIED',
    });
  });

  it('lets bots write only to users who started them', async () => {
    const { client, rec } = await botClient();
    await client.invokeUnchecked({ '@type': 'searchPublicChat', username: 'alice_demo' });
    await client.invokeUnchecked({ '@type': 'searchPublicChat', username: 'carol_demo' });
    expect((await send(client, rec, ALICE))['@type']).toBe('updateMessageSendSucceeded');
    const refused = await send(client, rec, CAROL);
    expect(refused.error).toEqual({
      '@type': 'error',
      code: 403,
      message: "Bot can't initiate conversation with a user",
    });
    fx.world.startBot(CAROL, 'demo_campaign_bot');
    await worldSynced(session, fx);
    expect((await send(client, rec, CAROL))['@type']).toBe('updateMessageSendSucceeded');
    expect(fx.world.deliveries().map((d) => [d.to, d.sender_kind])).toEqual([
      [ALICE, 'bot'],
      [CAROL, 'bot'],
    ]);
  });

  it('applies "new chats from contacts and Premium users only" privacy', async () => {
    const { client, rec } = await userClient();
    await client.invokeUnchecked({ '@type': 'searchPublicChat', username: 'carol_demo' });
    fx.world.setPrivacy(CAROL, { new_chats: 'contacts_and_premium' });
    await worldSynced(session, fx);
    expect((await send(client, rec, CAROL)).error).toEqual({
      '@type': 'error',
      code: 400,
      message: 'PRIVACY_PREMIUM_REQUIRED',
    });
  });

  it('drops pending sends silently when the client closes (no stray answers)', async () => {
    const { client } = await userClient({
      faults: { latency_ms: { default: 0, methods: { sendMessage: 60_000 } } },
    });
    await client.invokeUnchecked({ '@type': 'searchPublicChat', username: 'alice_demo' });
    await client.invokeUnchecked(textMessage(ALICE, 'never delivered'));
    await client.close();
    const strays = session.checked.seen.filter((o) => o['@type'] === 'error' && o['@extra'] === undefined);
    expect(strays).toEqual([]);
    expect(fx.world.deliveries()).toEqual([]);
  });

  it('injects errors at the configured rate, deterministically per seed', async () => {
    const { client, rec } = await userClient({
      faults: { error_rate: { methods: { sendMessage: 1 } }, error: { code: 500, message: 'RPC_CALL_FAIL' } },
    });
    await client.invokeUnchecked({ '@type': 'searchPublicChat', username: 'alice_demo' });
    const failed = await send(client, rec, ALICE);
    expect(failed.error).toEqual({
      '@type': 'error',
      code: 500,
      message: 'RPC_CALL_FAIL',
    });
    // TDLib's can_resend_message: only 429 and "too old to be re-sent" leave a message resendMessages takes.
    expect((failed.message as TdObject).sending_state).toMatchObject({ can_retry: false });
    fx.world.setFaults({
      error_rate: { default: 1, methods: {} },
      error: { code: 503, message: 'SERVICE_DOWN' },
    });
    await worldSynced(session, fx);
    expect(
      await errorOf(client.invokeUnchecked({ '@type': 'searchPublicChat', username: 'bob_demo' })),
    ).toEqual({
      code: 503,
      message: 'SERVICE_DOWN',
    });
  });
});
