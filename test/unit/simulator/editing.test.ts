import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { main as cli } from '../../../runtime/simulator/cli.js';
import { DeliveryIndex, isDelivery } from '../../../runtime/simulator/delivery-index.js';
import {
  canEditMessage,
  EDIT_TIME_LIMIT_SECONDS,
  serverEditError,
} from '../../../runtime/simulator/editing.js';
import { MESSAGE_ID_SHIFT } from '../../../runtime/simulator/limits.js';
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
  worldSynced,
  type Session,
  type WorldFixture,
} from './support/harness.js';

jest.setTimeout(20_000);

const ME = 5550100001;
const SECOND = 5550100002;
const BOT = 7000000001;
const ALICE = 5550100101;
const UNLIMITED = { per_second: 1e6, burst: 1e6 };

const textOf = (message: TdObject): string => ((message.content as TdObject).text as TdObject).text as string;

function edit(chatId: number, messageId: number, text: string): TdObject {
  return {
    '@type': 'editMessageText',
    chat_id: chatId,
    message_id: messageId,
    input_message_content: {
      '@type': 'inputMessageText',
      text: { '@type': 'formattedText', text, entities: [] },
    },
  };
}

const isEditOf =
  (type: 'updateMessageContent' | 'updateMessageEdited', chatId: number, messageId: number) =>
  (u: TdObject): boolean =>
    u['@type'] === type && u.chat_id === chatId && u.message_id === messageId;

describe('editing messages and reading one back (simulator)', () => {
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

  async function login(db: string, phone: string, code: string, password?: string) {
    const client = session.manager.createClient();
    const rec = new Recorder(client);
    await client.invokeUnchecked(params(join(fx.dir, db)));
    await loginUser(client, phone, code, password);
    return { client, rec };
  }

  const loginMe = () => login('db-me', '+15550100001', '12345', 'correct horse');
  const loginSecond = () => login('db-second', '+15550100002', '54321');

  async function loginBot() {
    const client = session.manager.createClient();
    const rec = new Recorder(client);
    await client.invokeUnchecked(params(join(fx.dir, 'db-bot')));
    await rec.waitFor(isAuthState('authorizationStateWaitPhoneNumber'));
    await client.invokeUnchecked({ '@type': 'checkAuthenticationBotToken', token: '7000000001:AAHdemo' });
    await rec.waitFor(isAuthState('authorizationStateReady'));
    return { client, rec };
  }

  async function send(client: TdClient, rec: Recorder, chatId: number, text: string): Promise<number> {
    const pending = await client.invokeUnchecked(textMessage(chatId, text));
    const outcome = await outcomeOf(rec, pending.id as number);
    expect(outcome['@type']).toBe('updateMessageSendSucceeded');
    return (outcome.message as TdObject).id as number;
  }

  const history = (client: TdClient, chatId: number) =>
    client
      .invokeUnchecked({
        '@type': 'getChatHistory',
        chat_id: chatId,
        from_message_id: 0,
        offset: 0,
        limit: 10,
        only_local: false,
      })
      .then((answer) => answer.messages as TdObject[]);

  it('an account edits its message: answer, its own updates, the recipient’s updates, history and getMessage', async () => {
    const me = await loginMe();
    const second = await loginSecond();
    await me.client.invokeUnchecked({ '@type': 'searchPublicChat', username: 'second_user' });
    const id = await send(me.client, me.rec, SECOND, 'first draft');
    await second.rec.waitFor((u) => u['@type'] === 'updateNewMessage' && (u.message as TdObject).id === id);

    const answer = await me.client.invokeUnchecked(edit(SECOND, id, 'final text'));
    expect(answer).toMatchObject({ '@type': 'message', id, chat_id: SECOND, is_outgoing: true });
    expect(textOf(answer)).toBe('final text');
    expect(answer.edit_date).toBeGreaterThan(0);
    expect(answer.edit_date).toBeGreaterThanOrEqual(answer.date as number);

    // The editor hears the edit too, content first, before its answer.
    const own = me.rec.updates;
    const ownContent = own.findIndex(isEditOf('updateMessageContent', SECOND, id));
    const ownEdited = own.findIndex(isEditOf('updateMessageEdited', SECOND, id));
    expect(ownContent).toBeGreaterThanOrEqual(0);
    expect(ownEdited).toBeGreaterThan(ownContent);
    expect(own[ownEdited]?.edit_date).toBe(answer.edit_date);

    // The recipient: updateMessageContent with the new text, then updateMessageEdited, in the chat with ME.
    const edited = await second.rec.waitFor(isEditOf('updateMessageEdited', ME, id));
    expect(edited.edit_date).toBe(answer.edit_date);
    const content = second.rec.updates.findIndex(isEditOf('updateMessageContent', ME, id));
    expect(content).toBeGreaterThanOrEqual(0);
    expect(content).toBeLessThan(second.rec.updates.indexOf(edited));
    const newContent = second.rec.updates[content]?.new_content as TdObject;
    expect((newContent.text as TdObject).text).toBe('final text');

    const fetched = await second.client.invokeUnchecked({
      '@type': 'getMessage',
      chat_id: ME,
      message_id: id,
    });
    expect(fetched).toMatchObject({ id, chat_id: ME, is_outgoing: false, edit_date: answer.edit_date });
    expect(textOf(fetched)).toBe('final text');

    for (const [client, chatId] of [
      [me.client, SECOND],
      [second.client, ME],
    ] as const) {
      const [latest] = await history(client, chatId);
      expect(latest).toMatchObject({ id, edit_date: answer.edit_date });
      expect(textOf(latest as TdObject)).toBe('final text');
    }
    const found = await me.client.invokeUnchecked({
      '@type': 'searchChatMessages',
      chat_id: SECOND,
      query: 'draft',
      from_message_id: 0,
      offset: 0,
      limit: 10,
    });
    expect(found.total_count).toBe(0);
    const byDate = await me.client.invokeUnchecked({
      '@type': 'getChatMessageByDate',
      chat_id: SECOND,
      date: (answer.date as number) + 1,
    });
    expect(textOf(byDate)).toBe('final text');

    // An edit is no new message: the delivery log still has one, readers of it see the original line.
    expect(fx.world.deliveries().map((d) => d.text)).toEqual(['first draft']);
    expect(fx.world.edits()).toMatchObject([
      { from: ME, chat_id: SECOND, message_id: id, text: 'final text' },
    ]);
  });

  it('refuses what TDLib refuses, with its errors, before anything is sent', async () => {
    const me = await loginMe();
    await me.client.invokeUnchecked({ '@type': 'searchPublicChat', username: 'second_user' });
    const id = await send(me.client, me.rec, SECOND, 'mine');
    const theirs = fx.world.sendMessage('@alice_demo', ME, 'not yours').message_id;
    await me.rec.waitFor((u) => u['@type'] === 'updateNewMessage' && (u.message as TdObject).id === theirs);

    expect(await errorOf(me.client.invokeUnchecked(edit(ALICE, theirs, 'hijack')))).toEqual({
      code: 400,
      message: "Message can't be edited",
    });
    expect(await errorOf(me.client.invokeUnchecked(edit(SECOND, id + 999 * MESSAGE_ID_SHIFT, 'x')))).toEqual({
      code: 400,
      message: 'Message not found',
    });
    expect(await errorOf(me.client.invokeUnchecked(edit(SECOND, id, '   ')))).toEqual({
      code: 400,
      message: 'Text must be non-empty',
    });
    expect(await errorOf(me.client.invokeUnchecked(edit(BOT, id, 'x')))).toEqual({
      code: 400,
      message: 'Chat not found',
    });
    const noContent = { '@type': 'editMessageText', chat_id: SECOND, message_id: id };
    expect(await errorOf(me.client.invokeUnchecked(noContent))).toEqual({
      code: 400,
      message: "Can't edit message without new content",
    });
    const photo = { ...noContent, input_message_content: { '@type': 'inputMessagePhoto' } };
    expect(await errorOf(me.client.invokeUnchecked(photo))).toEqual({
      code: 400,
      message: 'Input message content type must be InputMessageText',
    });
    const fetched = await me.client.invokeUnchecked({
      '@type': 'getMessage',
      chat_id: SECOND,
      message_id: id,
    });
    expect(fetched).toMatchObject({ id, edit_date: 0 });
    expect(textOf(fetched)).toBe('mine');
    expect(fx.world.edits()).toEqual([]);
  });

  it('the same text again: a user gets the message unchanged (TDLib swallows MESSAGE_NOT_MODIFIED), a bot the error', async () => {
    const me = await loginMe();
    await me.client.invokeUnchecked({ '@type': 'searchPublicChat', username: 'second_user' });
    const id = await send(me.client, me.rec, SECOND, 'same');
    const answer = await me.client.invokeUnchecked(edit(SECOND, id, 'same'));
    expect(answer).toMatchObject({ id, edit_date: 0 });
    expect(textOf(answer)).toBe('same');
    expect(me.rec.updates.some((u) => u['@type'] === 'updateMessageEdited')).toBe(false);

    const bot = await loginBot();
    await bot.client.invokeUnchecked({ '@type': 'searchPublicChat', username: 'alice_demo' });
    const botId = await send(bot.client, bot.rec, ALICE, 'from the bot');
    expect(await errorOf(bot.client.invokeUnchecked(edit(ALICE, botId, 'from the bot')))).toEqual({
      code: 400,
      message: 'MESSAGE_NOT_MODIFIED',
    });
    const botEdit = await bot.client.invokeUnchecked(edit(ALICE, botId, 'from the bot, edited'));
    expect(botEdit.edit_date).toBeGreaterThan(0);
    // Bots may read a message they know (getMessage is no CHECK_IS_USER method).
    const fetched = await bot.client.invokeUnchecked({
      '@type': 'getMessage',
      chat_id: ALICE,
      message_id: botId,
    });
    expect(textOf(fetched)).toBe('from the bot, edited');
    expect(
      await errorOf(bot.client.invokeUnchecked({ '@type': 'getMessage', chat_id: ALICE, message_id: 1 })),
    ).toEqual({ code: 404, message: 'Not Found' });
    expect(fx.world.edits().map((e) => e.text)).toEqual(['from the bot, edited']);
  });

  it('a message still being sent cannot be edited yet (its yet-unsent id is TDLib’s local message)', async () => {
    const me = await loginMe();
    await me.client.invokeUnchecked({ '@type': 'searchPublicChat', username: 'second_user' });
    fx.world.setFaults({ disconnected: true });
    await worldSynced(session, fx);
    const pending = await me.client.invokeUnchecked(textMessage(SECOND, 'on its way'));
    expect(await errorOf(me.client.invokeUnchecked(edit(SECOND, pending.id as number, 'changed')))).toEqual({
      code: 400,
      message: "Message can't be edited",
    });
  });

  it('World.editMessage: the ready recipient hears it; a client ready after an edit is not pushed it', async () => {
    const early = fx.world.sendMessage('@alice_demo', ME, 'before you came');
    fx.world.editMessage('@alice_demo', ME, early.message_id, 'before you came (edited)');
    const me = await loginMe();
    // History already has the edit, though it was never pushed to this client.
    await me.client.invokeUnchecked({
      '@type': 'getChats',
      chat_list: { '@type': 'chatListMain' },
      limit: 10,
    });
    const [old] = await history(me.client, ALICE);
    expect(textOf(old as TdObject)).toBe('before you came (edited)');
    expect((old as TdObject).edit_date).toBeGreaterThan(0);

    const live = fx.world.sendMessage('@alice_demo', ME, 'hello');
    await me.rec.waitFor(
      (u) => u['@type'] === 'updateNewMessage' && (u.message as TdObject).id === live.message_id,
    );
    const record = fx.world.editMessage('@alice_demo', ME, live.message_id, 'hello again');
    const edited = await me.rec.waitFor(isEditOf('updateMessageEdited', ALICE, live.message_id));
    expect(edited.edit_date).toBe(record.edit_date);
    const content = me.rec.updates.find(isEditOf('updateMessageContent', ALICE, live.message_id));
    expect(((content?.new_content as TdObject).text as TdObject).text).toBe('hello again');
    // The feed pushes in log order: the later edit arrived, so the earlier one would have by now.
    expect(me.rec.updates.some(isEditOf('updateMessageEdited', ALICE, early.message_id))).toBe(false);
    expect(me.rec.updates.some(isEditOf('updateMessageContent', ALICE, early.message_id))).toBe(false);
    const fetched = await me.client.invokeUnchecked({
      '@type': 'getMessage',
      chat_id: ALICE,
      message_id: live.message_id,
    });
    expect(fetched).toMatchObject({ is_outgoing: false, edit_date: record.edit_date });
    expect(textOf(fetched)).toBe('hello again');
  });

  it('World.editMessage refuses what the server refuses', () => {
    const sent = fx.world.sendMessage('@alice_demo', ME, 'hi');
    expect(() => fx.world.editMessage(ME, '@alice_demo', 1, 'x')).toThrow(/edit through its client/);
    expect(() => fx.world.editMessage('@alice_demo', ME, sent.message_id, 'hi')).toThrow(
      /MESSAGE_NOT_MODIFIED/,
    );
    expect(() => fx.world.editMessage('@bob_demo', ME, sent.message_id, 'x')).toThrow(/MESSAGE_ID_INVALID/);
    expect(fx.world.edits()).toEqual([]);
  });

  it('the CLI edits like World.editMessage', () => {
    const sent = fx.world.sendMessage('@alice_demo', ME, 'typo');
    const quiet = { ...process.env, TDLIB_SIMULATOR_WORLD: fx.dir };
    const stdout = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const stderr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(cli(['edit', 'alice_demo', String(ME), String(sent.message_id), 'no', 'typo'], quiet)).toBe(0);
      expect(cli(['edit', 'alice_demo', String(ME), 'abc', 'x'], quiet)).toBe(2);
    } finally {
      stdout.mockRestore();
      stderr.mockRestore();
    }
    expect(fx.world.edits().map((e) => e.text)).toEqual(['no typo']);
  });
});

describe('edit records in the shared logs', () => {
  let fx: WorldFixture;

  beforeEach(() => {
    fx = makeWorld();
  });

  afterEach(() => fx.cleanup());

  it('live beside the delivery log, and no delivery reader takes one for a message', () => {
    const sent = fx.world.sendMessage('@alice_demo', ME, 'one');
    fx.world.editMessage('@alice_demo', ME, sent.message_id, 'two');
    const lines = readFileSync(join(fx.world.stateDir, 'edits.jsonl'), 'utf8').trim().split('\n');
    expect(lines).toHaveLength(1);
    const record: unknown = JSON.parse(lines[0] ?? '');
    expect(isDelivery(record)).toBe(false);
    expect(readFileSync(join(fx.world.stateDir, 'deliveries.jsonl'), 'utf8').trim().split('\n')).toHaveLength(
      1,
    );
  });

  it('the index applies edits of the sender only, to both sides, the latest last', () => {
    const index = new DeliveryIndex(join(fx.world.stateDir, 'deliveries.jsonl'), (id) => id === ME);
    const sent = fx.world.sendMessage('@alice_demo', ME, 'v1');
    index.refresh();
    fx.world.editMessage('@alice_demo', ME, sent.message_id, 'v2');
    fx.world.editMessage('@alice_demo', ME, sent.message_id, 'v3');
    // A line naming the message with another sender (hand-written: the APIs refuse it) changes nothing.
    const forged = { ...fx.world.edits()[0], from: ME, text: 'forged' };
    appendFileSync(join(fx.world.stateDir, 'edits.jsonl'), JSON.stringify(forged) + '\n');
    index.refresh();
    expect(index.message(ME, ALICE, sent.message_id)).toMatchObject({ text: 'v3', from: ALICE });
    expect(index.message(ALICE, ME, sent.message_id)?.text).toBe('v3');
    expect(index.message(ME, ALICE, sent.message_id)?.editDate).toBeGreaterThan(0);
    expect(index.size).toBe(1);
  });
});

describe('can_edit_message and the server’s edit checks', () => {
  const base = { isBot: false, myId: 1, chatId: 2, from: 1, date: 1_000_000, now: 1_000_000 };
  const late = base.date + EDIT_TIME_LIMIT_SECONDS;

  it('only one’s own messages, a user’s within 48 h (TDLib adds 5 minutes), a bot’s and Saved Messages always', () => {
    expect(canEditMessage(base)).toBe(true);
    expect(canEditMessage({ ...base, from: 2 })).toBe(false);
    expect(canEditMessage({ ...base, now: late + 299 })).toBe(true);
    expect(canEditMessage({ ...base, now: late + 300 })).toBe(false);
    expect(canEditMessage({ ...base, isBot: true, now: late + 10_000 })).toBe(true);
    expect(canEditMessage({ ...base, chatId: 1, now: late + 10_000 })).toBe(true);
    expect(serverEditError({ ...base, now: late - 1 })).toBeUndefined();
    expect(serverEditError({ ...base, now: late })).toBe('MESSAGE_EDIT_TIME_EXPIRED');
    expect(serverEditError({ ...base, from: 2 })).toBe('MESSAGE_AUTHOR_REQUIRED');
  });
});
