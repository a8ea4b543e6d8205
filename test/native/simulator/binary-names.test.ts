/**
 * TDLib 1.8.67 cannot produce users, chats or messages offline, so their shapes are checked two ways: the
 * unit suites validate every object against tdlib-types (1.8.65), and this test checks that every '@type'
 * and field name the simulator emits in a full conversation exists in the real libtdjson 1.8.67 binary
 * (TDLib's JSON writer keeps them as NUL-terminated strings), which catches fields renamed since 1.8.65.
 */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { libtdjsonPath } from './support/reference-backend.js';
import {
  isAuthState,
  loginUser,
  makeWorld,
  params,
  Recorder,
  startSession,
  textMessage,
  outcomeOf,
  type Session,
  type WorldFixture,
  worldSynced,
} from '../../unit/simulator/support/harness.js';
import { namesIn } from '../../unit/simulator/support/td-schema.js';
import type { TdObject } from '../../../runtime/tdlib/backend.js';

jest.setTimeout(60_000);

describe('names the simulator emits exist in libtdjson 1.8.67', () => {
  let fx: WorldFixture;
  let session: Session;

  beforeAll(() => {
    fx = makeWorld({
      limits: { user: { chat: { per_second: 0.001, burst: 1 } }, tdlib_flood_wait_limit_seconds: 0 },
      chats: [
        { id: 1001, title: 'Group', username: 'names_group', kind: 'supergroup', members: [5550100001] },
        { id: 1002, title: 'Channel', username: 'names_channel', kind: 'channel', admins: [5550100001] },
      ],
    });
    session = startSession(fx.dir);
  });

  afterAll(async () => {
    await session.close();
    fx.cleanup();
  });

  it('covers a full conversation: logins, lookups, sends, failures, proxies, losing the session', async () => {
    const qr = session.manager.createClient();
    const qrRec = new Recorder(qr);
    await qr.invokeUnchecked(params(join(fx.dir, 'db-qr')));
    await qr.invokeUnchecked({ '@type': 'requestQrCodeAuthentication', other_user_ids: [] });
    const waiting = await qrRec.waitFor(isAuthState('authorizationStateWaitOtherDeviceConfirmation'));
    fx.world.confirmQrLogin(String((waiting.authorization_state as TdObject).link), 5550100001);
    await qrRec.waitFor(isAuthState('authorizationStateWaitPassword'));
    await qr.invokeUnchecked({
      '@type': 'addProxy',
      proxy: {
        '@type': 'proxy',
        server: 'p.example',
        port: 443,
        type: { '@type': 'proxyTypeMtproto', secret: 'dd00112233445566778899aabbccddeeff' },
      },
      enable: false,
      comment: '',
    });
    await qr.invokeUnchecked({ '@type': 'pingProxy', proxy: null });
    await qr.invokeUnchecked({ '@type': 'checkAuthenticationPassword', password: 'correct horse' });
    await qr.invokeUnchecked({ '@type': 'searchPublicChat', username: 'bob_demo' });
    await qr.invokeUnchecked({ '@type': 'searchPublicChat', username: 'alice_demo' });
    await qr.invokeUnchecked({
      '@type': 'importContacts',
      contacts: [
        { '@type': 'importedContact', phone_number: '+15550100103', first_name: 'C', last_name: '' },
      ],
    });
    for (const text of ['first', 'second']) {
      const pending = await qr.invokeUnchecked(textMessage(5550100102, text));
      await outcomeOf(qrRec, pending.id as number);
    }
    // Public chats (supergroup objects, statuses), channel posts, and the history family's answers.
    for (const username of ['names_group', 'names_channel']) {
      const chat = await qr.invokeUnchecked({ '@type': 'searchPublicChat', username });
      const pending = await qr.invokeUnchecked(textMessage(chat.id as number, 'to the chat'));
      await outcomeOf(qrRec, pending.id as number);
    }
    await qr.invokeUnchecked({
      '@type': 'getChatHistory',
      chat_id: 5550100102,
      from_message_id: 0,
      offset: 0,
      limit: 10,
      only_local: false,
    });
    await qr.invokeUnchecked({
      '@type': 'searchChatMessages',
      chat_id: -1_000_000_001_002,
      query: 'chat',
      from_message_id: 0,
      offset: 0,
      limit: 10,
    });
    await qr.invokeUnchecked({ '@type': 'getChatMessageByDate', chat_id: 5550100102, date: 2_000_000_000 });
    fx.world.setChatMember('names_channel', 5550100001, 'member');
    await worldSynced(session, fx);
    const refused = await qr.invokeUnchecked(textMessage(-1_000_000_001_002, 'not an admin any more'));
    await outcomeOf(qrRec, refused.id as number);
    fx.world.setDeactivated(5550100101);
    await worldSynced(session, fx);
    const toDeleted = await qr.invokeUnchecked(textMessage(5550100101, 'x'));
    await outcomeOf(qrRec, toDeleted.id as number);

    const bot = session.manager.createClient();
    const botRec = new Recorder(bot);
    await bot.invokeUnchecked(params(join(fx.dir, 'db-bot')));
    await bot.invokeUnchecked({ '@type': 'checkAuthenticationBotToken', token: '7000000001:AAHdemo' });
    await bot.invokeUnchecked({ '@type': 'getMe' });

    const user = session.manager.createClient();
    const userRec = new Recorder(user);
    await user.invokeUnchecked(params(join(fx.dir, 'db-user')));
    await loginUser(user, '+15550100002', '54321');
    fx.world.terminateSessions(5550100002, 'AUTH_KEY_DUPLICATED');
    await userRec.waitFor((u) => u['@type'] === 'updateServiceNotification');
    await userRec.waitFor(isAuthState('authorizationStateClosed'));
    expect(botRec.updates.length).toBeGreaterThan(0);

    const binary = readFileSync(libtdjsonPath());
    const names = new Set<string>();
    for (const object of session.checked.seen) namesIn(object, names);
    const missing = [...names].filter((name) => !binary.includes(Buffer.from(`${name}\0`)));
    expect(names.size).toBeGreaterThan(150);
    expect(missing).toEqual([]);
    expect(session.checked.problems).toEqual([]);
  });
});
