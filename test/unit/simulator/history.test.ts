import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import {
  DeliveryIndex,
  historyWindow,
  type HistoryEntry,
} from '../../../runtime/simulator/delivery-index.js';
import { SimRuntime } from '../../../runtime/simulator/runtime.js';
import type { TdObject } from '../../../runtime/tdlib/backend.js';
import type { TdClient } from '../../../runtime/tdlib/client.js';
import {
  errorOf,
  isAuthState,
  loginUser,
  makeWorld,
  outcomeOf,
  params,
  Recorder,
  startSession,
  textMessage,
  type Session,
  type WorldFixture,
} from './support/harness.js';

jest.setTimeout(20_000);

const ME = 5550100001;
const SECOND = 5550100002;
const ALICE = 5550100101;
const BOB = 5550100102;
const UNLIMITED = { per_second: 1e6, burst: 1e6 };

/** An object as TDLib sends it, without the envelope fields ('@client_id', '@extra'). */
function bare(object: TdObject | undefined): Record<string, unknown> {
  const { '@client_id': _client, '@extra': _extra, ...rest } = (object ?? {}) as Record<string, unknown>;
  return rest;
}

const texts = (answer: TdObject): string[] =>
  (answer.messages as TdObject[]).map((m) => ((m.content as TdObject).text as TdObject).text as string);

describe('server-side chat history', () => {
  let fx: WorldFixture;
  let session: Session;

  beforeEach(() => {
    fx = makeWorld({ limits: { user: { account: UNLIMITED, chat: UNLIMITED } } });
    session = startSession(fx.dir);
  });

  afterEach(async () => {
    await session.close();
    expect(session.checked.problems).toEqual([]);
    fx.cleanup();
  });

  async function login(db = 'db-me', phone = '+15550100001', code = '12345', password?: string) {
    const client = session.manager.createClient();
    const rec = new Recorder(client);
    await client.invokeUnchecked(params(join(fx.dir, db)));
    await loginUser(client, phone, code, phone === '+15550100001' ? (password ?? 'correct horse') : password);
    return { client, rec };
  }

  async function sendAll(
    client: TdClient,
    rec: Recorder,
    chatId: number,
    list: string[],
  ): Promise<TdObject[]> {
    const sent: TdObject[] = [];
    for (const text of list) {
      const pending = await client.invokeUnchecked(textMessage(chatId, text));
      const outcome = await outcomeOf(rec, pending.id as number);
      expect(outcome['@type']).toBe('updateMessageSendSucceeded');
      sent.push(outcome.message as TdObject);
    }
    return sent;
  }

  it('returns the messages sent in a chat, newest first, windowed by from_message_id and offset like TDLib', async () => {
    const { client, rec } = await login();
    await client.invokeUnchecked({ '@type': 'searchPublicChat', username: 'alice_demo' });
    const sent = await sendAll(client, rec, ALICE, [
      'one',
      'two https://example.com',
      'three',
      'four',
      'five',
    ]);
    const ids = sent.map((m) => m.id as number);
    const history = (from: number, offset: number, limit: number) =>
      client.invokeUnchecked({
        '@type': 'getChatHistory',
        chat_id: ALICE,
        from_message_id: from,
        offset,
        limit,
        only_local: false,
      });

    const all = await history(0, 0, 100);
    expect(all).toMatchObject({ '@type': 'messages', total_count: 5 });
    expect(texts(all)).toEqual(['five', 'four', 'three', 'two https://example.com', 'one']);
    const newest = (all.messages as TdObject[])[0] as TdObject;
    // The same object the sender got in updateMessageSendSucceeded.
    expect(bare(newest)).toEqual(bare(sent[4]));
    expect(newest).toMatchObject({
      id: ids[4],
      sender_id: { '@type': 'messageSenderUser', user_id: ME },
      chat_id: ALICE,
      is_outgoing: true,
      content: { '@type': 'messageText', text: { '@type': 'formattedText', text: 'five', entities: [] } },
    });
    expect((all.messages as TdObject[])[3]).toMatchObject({
      content: { text: { entities: [{ type: { '@type': 'textEntityTypeUrl' } }] } },
    });
    // from_message_id itself is left out with offset 0 (MessagesManager::get_dialog_history)...
    expect(texts(await history(ids[3] ?? 0, 0, 2))).toEqual(['three', 'two https://example.com']);
    // ...and comes first with offset -1; a negative offset adds newer messages.
    expect(texts(await history(ids[3] ?? 0, -1, 2))).toEqual(['four', 'three']);
    expect(texts(await history(ids[2] ?? 0, -2, 3))).toEqual(['four', 'three', 'two https://example.com']);
    // From the newest message, a negative offset only shortens the page (limit += offset).
    expect(texts(await history(0, -2, 3))).toEqual(['five']);
    expect(texts(await history(ids[0] ?? 0, 0, 10))).toEqual([]);
    expect(texts(await history(0, 0, 1000))).toHaveLength(5);
  });

  it('checks getChatHistory parameters in TDLib order and with its texts', async () => {
    const { client } = await login();
    await client.invokeUnchecked({ '@type': 'searchPublicChat', username: 'alice_demo' });
    const call = (fields: Record<string, unknown>) =>
      errorOf(
        client.invokeUnchecked({
          '@type': 'getChatHistory',
          chat_id: ALICE,
          from_message_id: 0,
          offset: 0,
          limit: 10,
          only_local: false,
          ...fields,
        }),
      );
    expect(await call({ limit: 0 })).toEqual({ code: 400, message: 'Parameter limit must be positive' });
    expect(await call({ offset: 1 })).toEqual({
      code: 400,
      message: 'Parameter offset must be non-positive',
    });
    expect(await call({ offset: -100, limit: 100 })).toEqual({
      code: 400,
      message: 'Parameter offset must be greater than -100',
    });
    expect(await call({ offset: -11 })).toEqual({
      code: 400,
      message: 'Parameter offset must be greater than or equal to -limit',
    });
    expect(await call({ from_message_id: -5 })).toEqual({
      code: 400,
      message: 'Invalid value of parameter from_message_id specified',
    });
    expect(await call({ chat_id: BOB })).toEqual({ code: 400, message: 'Chat not found' });
    // The limit is checked before the chat.
    expect(await call({ chat_id: BOB, limit: -1 })).toEqual({
      code: 400,
      message: 'Parameter limit must be positive',
    });
  });

  it('searches the chat on the server: substring query, sender, filter, paging with next_from_message_id', async () => {
    const { client, rec } = await login();
    await client.invokeUnchecked({ '@type': 'searchPublicChat', username: 'alice_demo' });
    const sent = await sendAll(client, rec, ALICE, [
      'Spring SALE starts now',
      'unrelated',
      'the spring sale, second reminder',
      'visit https://shop.example',
      'last spring sale call',
    ]);
    const search = (fields: Record<string, unknown>) =>
      client.invokeUnchecked({
        '@type': 'searchChatMessages',
        chat_id: ALICE,
        topic_id: null,
        query: 'spring sale',
        sender_id: null,
        from_message_id: 0,
        offset: 0,
        limit: 100,
        filter: null,
        ...fields,
      });
    const found = await search({});
    expect(found).toMatchObject({ '@type': 'foundChatMessages', total_count: 3, next_from_message_id: 0 });
    expect(texts(found)).toEqual([
      'last spring sale call',
      'the spring sale, second reminder',
      'Spring SALE starts now',
    ]);
    const mine = await search({ sender_id: { '@type': 'messageSenderUser', user_id: ME } });
    expect(texts(mine)).toHaveLength(3);
    expect(await search({ sender_id: { '@type': 'messageSenderUser', user_id: ALICE } })).toMatchObject({
      total_count: 0,
      messages: [],
    });
    // Paging: next_from_message_id is the last message of the page while older results remain.
    const first = await search({ limit: 2 });
    expect(texts(first)).toEqual(['last spring sale call', 'the spring sale, second reminder']);
    expect(first.next_from_message_id).toBe((first.messages as TdObject[])[1]?.id);
    const second = await search({ limit: 2, from_message_id: first.next_from_message_id });
    expect(texts(second)).toEqual(['Spring SALE starts now']);
    expect(second.next_from_message_id).toBe(0);
    expect(
      texts(await search({ limit: 2, offset: -1, from_message_id: first.next_from_message_id })),
    ).toEqual(['the spring sale, second reminder', 'Spring SALE starts now']);
    // An empty query needs a sender or a filter (SEARCH_QUERY_EMPTY becomes an empty result in TDLib).
    expect(await search({ query: '' })).toEqual(
      expect.objectContaining({ total_count: 0, messages: [], next_from_message_id: 0 }),
    );
    expect(
      texts(await search({ query: '', sender_id: { '@type': 'messageSenderUser', user_id: ME } })),
    ).toHaveLength(5);
    expect(texts(await search({ query: '', filter: { '@type': 'searchMessagesFilterUrl' } }))).toEqual([
      'visit https://shop.example',
    ]);
    expect(await search({ query: '', filter: { '@type': 'searchMessagesFilterPhoto' } })).toMatchObject({
      total_count: 0,
    });
    expect(sent).toHaveLength(5);
  });

  it('checks searchChatMessages parameters in TDLib order and with its texts', async () => {
    const { client } = await login();
    await client.invokeUnchecked({ '@type': 'searchPublicChat', username: 'alice_demo' });
    const call = (fields: Record<string, unknown>) =>
      errorOf(
        client.invokeUnchecked({
          '@type': 'searchChatMessages',
          chat_id: ALICE,
          query: 'x',
          from_message_id: 0,
          offset: 0,
          limit: 10,
          ...fields,
        }),
      );
    expect(await call({ limit: 0 })).toEqual({ code: 400, message: 'Parameter limit must be positive' });
    expect(await call({ offset: -10 })).toEqual({
      code: 400,
      message: 'Parameter limit must be greater than -offset',
    });
    expect(await call({ offset: 1 })).toEqual({
      code: 400,
      message: 'Parameter offset must be non-positive',
    });
    expect(await call({ from_message_id: -1 })).toEqual({
      code: 400,
      message: 'Parameter from_message_id must be identifier of a chat message or 0',
    });
    expect(await call({ chat_id: BOB })).toEqual({ code: 400, message: 'Chat not found' });
    expect(await call({ sender_id: { '@type': 'messageSenderUser', user_id: BOB } })).toEqual({
      code: 400,
      message: 'Unknown user identifier specified',
    });
    expect(await call({ sender_id: { '@type': 'messageSenderUser', user_id: -3 } })).toEqual({
      code: 400,
      message: 'Invalid user identifier specified',
    });
  });

  it('finds the last message at or before a date, or answers 404 "Not Found"', async () => {
    const { client, rec } = await login();
    await client.invokeUnchecked({ '@type': 'searchPublicChat', username: 'alice_demo' });
    const [first, second] = await sendAll(client, rec, ALICE, ['first', 'second']);
    const byDate = (date: number) =>
      client.invokeUnchecked({ '@type': 'getChatMessageByDate', chat_id: ALICE, date });
    expect(await byDate((second?.date as number) + 3600)).toMatchObject({
      '@type': 'message',
      id: second?.id,
    });
    expect(await errorOf(byDate((first?.date as number) - 1))).toEqual({ code: 404, message: 'Not Found' });
    expect(await errorOf(byDate(0))).toEqual({ code: 404, message: 'Not Found' });
    expect(
      await errorOf(client.invokeUnchecked({ '@type': 'getChatMessageByDate', chat_id: BOB, date: 1 })),
    ).toEqual({ code: 400, message: 'Chat not found' });
  });

  it("refuses the three methods to bots with TDLib's CHECK_IS_USER error", async () => {
    const bot = session.manager.createClient();
    await bot.invokeUnchecked(params(join(fx.dir, 'db-bot')));
    await bot.invokeUnchecked({ '@type': 'checkAuthenticationBotToken', token: '7000000001:AAHdemo' });
    for (const request of [
      { '@type': 'getChatHistory', chat_id: ALICE, from_message_id: 0, offset: 0, limit: 0 },
      { '@type': 'searchChatMessages', chat_id: ALICE, query: 'x', limit: 0 },
      { '@type': 'getChatMessageByDate', chat_id: ALICE, date: 1 },
    ]) {
      expect(await errorOf(bot.invokeUnchecked(request))).toEqual({
        code: 400,
        message: 'The method is not available to bots',
      });
    }
  });

  it('keeps history across restarts and processes, and shows received messages to a receiving account', async () => {
    const first = await login('db-me');
    await first.client.invokeUnchecked({ '@type': 'searchPublicChat', username: 'second_user' });
    await sendAll(first.client, first.rec, SECOND, ['hello second']);
    const other = await login('db-second', '+15550100002', '54321');
    await other.client.invokeUnchecked({ '@type': 'searchPublicChat', username: 'demo_user' });
    await sendAll(other.client, other.rec, ME, ['hello back']);
    await session.close();

    // A new backend (a restarted process) with a fresh index, resuming the session from its database.
    session = startSession(fx.dir);
    const again = session.manager.createClient();
    const rec = new Recorder(again);
    await again.invokeUnchecked(params(join(fx.dir, 'db-me')));
    await rec.waitFor(isAuthState('authorizationStateReady'));
    await again.invokeUnchecked({ '@type': 'searchPublicChat', username: 'second_user' });
    const history = await again.invokeUnchecked({
      '@type': 'getChatHistory',
      chat_id: SECOND,
      from_message_id: 0,
      offset: 0,
      limit: 10,
      only_local: false,
    });
    expect(texts(history)).toEqual(['hello back', 'hello second']);
    expect(
      (history.messages as TdObject[]).map((m) => [m.is_outgoing, (m.sender_id as TdObject).user_id]),
    ).toEqual([
      [false, SECOND],
      [true, ME],
    ]);
    // only_local: without a message database TDLib knows only what this run handled.
    const local = await again.invokeUnchecked({
      '@type': 'getChatHistory',
      chat_id: SECOND,
      from_message_id: 0,
      offset: 0,
      limit: 10,
      only_local: true,
    });
    expect(local).toMatchObject({ total_count: 0, messages: [] });
    await sendAll(again, rec, SECOND, ['sent in this run']);
    const localAfter = await again.invokeUnchecked({
      '@type': 'getChatHistory',
      chat_id: SECOND,
      from_message_id: 0,
      offset: 0,
      limit: 10,
      only_local: true,
    });
    expect(texts(localAfter)).toEqual(['sent in this run']);
  });

  it('flood-limits history calls (limits.history), waiting short waits out like TDLib', async () => {
    await session.close();
    fx.cleanup();
    fx = makeWorld({
      limits: { history: { per_second: 0.001, burst: 1 }, tdlib_flood_wait_limit_seconds: 0 },
    });
    session = startSession(fx.dir);
    const { client } = await login();
    await client.invokeUnchecked({ '@type': 'searchPublicChat', username: 'alice_demo' });
    const request = { '@type': 'getChatMessageByDate', chat_id: ALICE, date: 1 };
    expect(await errorOf(client.invokeUnchecked(request))).toEqual({ code: 404, message: 'Not Found' });
    expect(await errorOf(client.invokeUnchecked(request))).toEqual({
      code: 429,
      message: 'Too Many Requests: retry after 1000',
    });
  });
});

describe('the delivery index', () => {
  it('reads the shared log once, then only what was appended, and answers by conversation', () => {
    const fx = makeWorld();
    try {
      const rt = new SimRuntime(fx.world, { now: () => 0 }, undefined);
      const base = { sender_kind: 'user' as const, status: 'delivered' as const, auth_key: 'k', pid: 1 };
      for (let i = 1; i <= 1000; i++)
        rt.recordDelivery({
          ...base,
          at: i,
          from: ME,
          to: 6_000_000_000 + (i % 100),
          chat_id: 6_000_000_000 + (i % 100),
          message_id: i * 1048576,
          text: `campaign text ${i % 3}`,
          date: 1000 + i,
          random_id: String(i),
        });
      const log = join(fx.world.stateDir, 'deliveries.jsonl');
      const index = rt.history();
      expect(index.size).toBe(1000);
      expect(index.bytesRead).toBe(statSync(log).size);
      expect(index.conversation(ME, 6_000_000_007).map((e) => e.id / 1048576)).toEqual([
        7, 107, 207, 307, 407, 507, 607, 707, 807, 907,
      ]);
      // Identical texts are one string, however many lines carry them.
      const texts = new Set(
        [...Array(100).keys()].flatMap((k) => index.conversation(ME, 6_000_000_000 + k).map((e) => e.text)),
      );
      expect(texts.size).toBe(3);
      expect(index.sentWithRandomId(ME, '500')?.id).toBe(500 * 1048576);
      expect(index.sentWithRandomId(SECOND, '500')).toBeUndefined();

      const before = index.bytesRead;
      rt.history();
      expect(index.bytesRead).toBe(before);
      rt.recordDelivery({
        ...base,
        at: 2000,
        from: ME,
        to: 6_000_000_007,
        chat_id: 6_000_000_007,
        message_id: 5 * 1048576 + 1,
        text: 'late line with a smaller id',
      });
      rt.history();
      expect(index.bytesRead).toBe(statSync(log).size);
      expect(index.bytesRead - before).toBeLessThan(300);
      // Kept sorted by id even when a line arrives out of order (a date falls back to the record time).
      const conversation = index.conversation(ME, 6_000_000_007);
      expect(conversation.map((e) => e.id)).toEqual([...conversation.map((e) => e.id)].sort((a, b) => a - b));
      expect(conversation[0]).toMatchObject({ text: 'late line with a smaller id', date: 2 });
      rt.close();
    } finally {
      fx.cleanup();
    }
  });

  it('windows like TDLib: exclusive anchor, negative offset adds newer messages, clipped at the newest', () => {
    const entries = [1, 2, 3, 4, 5].map((id) => ({ id }) as HistoryEntry);
    const ids = (from: number, offset: number, limit: number) =>
      historyWindow(entries, from, offset, limit).page.map((e) => e.id);
    expect(ids(0, 0, 2)).toEqual([5, 4]);
    expect(ids(4, 0, 2)).toEqual([3, 2]);
    expect(ids(4, -1, 2)).toEqual([4, 3]);
    expect(ids(4, -3, 3)).toEqual([5, 4]);
    expect(ids(0, -1, 3)).toEqual([5, 4]);
    expect(ids(1, 0, 5)).toEqual([]);
    expect(historyWindow(entries, 4, 0, 2).olderRemain).toBe(true);
    expect(historyWindow(entries, 3, 0, 2).olderRemain).toBe(false);
    expect(new DeliveryIndex('/nonexistent/deliveries.jsonl', () => false).conversation(1, 2)).toEqual([]);
  });
});
