import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { join } from 'node:path';
import type { TdObject } from '../../../runtime/tdlib/backend.js';
import {
  loginUser,
  makeWorld,
  params,
  Recorder,
  startSession,
  type Session,
  type WorldFixture,
} from './support/harness.js';

jest.setTimeout(20_000);

const ME = 5550100001;
const ALICE = 5550100101;
const BOB = 5550100102;
const BOT_TOKEN = '7000000001:AAHdemo';
const BOT = 7000000001;

const textOf = (message: TdObject): string => ((message.content as TdObject).text as TdObject).text as string;

describe('messages that reach a running account (simulator)', () => {
  let fx: WorldFixture;
  let session: Session;

  beforeEach(() => {
    fx = makeWorld();
    session = startSession(fx.dir);
  });

  afterEach(async () => {
    await session.close();
    expect(session.checked.problems).toEqual([]);
    fx.cleanup();
  });

  async function loginMe() {
    const client = session.manager.createClient();
    const rec = new Recorder(client);
    await client.invokeUnchecked(params(join(fx.dir, 'db-me')));
    await loginUser(client, '+15550100001', '12345', 'correct horse');
    return { client, rec };
  }

  it('a user who is not an account writes: the client hears the sender, the chat, then the message', async () => {
    const { rec } = await loginMe();
    const sent = fx.world.sendMessage('@alice_demo', ME, 'hello there');
    expect(sent.status).toBe('delivered');
    const update = await rec.waitFor(
      (u) => u['@type'] === 'updateNewMessage' && (u.message as TdObject).chat_id === ALICE,
    );
    const message = update.message as TdObject;
    expect(message.id).toBe(sent.message_id);
    expect(message.is_outgoing).toBe(false);
    expect(textOf(message)).toBe('hello there');
    expect((message.sender_id as TdObject).user_id).toBe(ALICE);
    const types = rec.updates.map((u) => u['@type']);
    const chat = rec.updates.findIndex(
      (u) => u['@type'] === 'updateNewChat' && (u.chat as TdObject).id === ALICE,
    );
    expect(chat).toBeGreaterThanOrEqual(0);
    expect(chat).toBeLessThan(types.indexOf('updateNewMessage'));
  });

  it('messages of one sender arrive in order, each once; messages to others do not arrive', async () => {
    const { rec } = await loginMe();
    for (let i = 0; i < 20; i++) fx.world.sendMessage(i % 2 === 0 ? '@alice_demo' : '@bob_demo', ME, `m${i}`);
    fx.world.sendMessage('@alice_demo', '+15550100002', 'not for me');
    await rec.waitFor((u) => u['@type'] === 'updateNewMessage' && textOf(u.message as TdObject) === 'm19');
    const received = rec.updates
      .filter((u) => u['@type'] === 'updateNewMessage')
      .map((u) => u.message as TdObject);
    expect(received.map(textOf)).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`));
    const fromAlice = received.filter((m) => m.chat_id === ALICE).map((m) => m.id as number);
    expect(fromAlice).toEqual([...fromAlice].sort((a, b) => a - b));
  });

  it('what arrived before the client was ready is not pushed, but is in getChats and the history', async () => {
    fx.world.sendMessage('@bob_demo', ME, 'while you were away');
    fx.world.sendMessage('@alice_demo', ME, 'newest');
    const { client, rec } = await loginMe();
    const chats = await client.invokeUnchecked({
      '@type': 'getChats',
      chat_list: { '@type': 'chatListMain' },
      limit: 10,
    });
    expect(chats.chat_ids).toEqual([ALICE, BOB]);
    const history = await client.invokeUnchecked({
      '@type': 'getChatHistory',
      chat_id: BOB,
      from_message_id: 0,
      offset: 0,
      limit: 10,
      only_local: false,
    });
    expect((history.messages as TdObject[]).map(textOf)).toEqual(['while you were away']);
    expect(rec.updates.some((u) => u['@type'] === 'updateNewMessage')).toBe(false);
  });

  it('a bot hears users who write to it; a blocked sender is not delivered', async () => {
    const client = session.manager.createClient();
    const rec = new Recorder(client);
    await client.invokeUnchecked(params(join(fx.dir, 'db-bot')));
    await rec.waitFor(
      (u) =>
        u['@type'] === 'updateAuthorizationState' &&
        (u.authorization_state as TdObject)['@type'] === 'authorizationStateWaitPhoneNumber',
    );
    await client.invokeUnchecked({ '@type': 'checkAuthenticationBotToken', token: BOT_TOKEN });
    fx.world.blockUser(BOT, '@bob_demo');
    await rec.waitFor(
      (u) =>
        u['@type'] === 'updateAuthorizationState' &&
        (u.authorization_state as TdObject)['@type'] === 'authorizationStateReady',
    );
    expect(fx.world.sendMessage('@bob_demo', BOT, 'blocked').status).toBe('blocked');
    fx.world.sendMessage('@alice_demo', BOT, '/start');
    const update = await rec.waitFor((u) => u['@type'] === 'updateNewMessage');
    expect(textOf(update.message as TdObject)).toBe('/start');
    expect(rec.updates.filter((u) => u['@type'] === 'updateNewMessage')).toHaveLength(1);
  });

  it('accounts send through their clients, not through the world', () => {
    expect(() => fx.world.sendMessage(ME, '@alice_demo', 'x')).toThrow(/send through its client/);
  });
});
