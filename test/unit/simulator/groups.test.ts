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

const ME = 5550100001;
const SECOND = 5550100002;
const GROUP = -1_000_000_000_000 - 1001;
const CHANNEL = -1_000_000_000_000 - 1002;
const CLOSED = -1_000_000_000_000 - 1003;
const UNLIMITED = { per_second: 1e6, burst: 1e6 };

const CHATS = [
  {
    id: 1001,
    title: 'Sim Group',
    username: 'sim_group',
    kind: 'supergroup',
    members: ['demo_user', 'second_user'],
  },
  {
    id: 1002,
    title: 'Sim Channel',
    username: 'sim_channel',
    kind: 'channel',
    admins: [ME],
    members: [SECOND],
  },
  { id: 1003, title: 'Closed Group', username: 'closed_group', kind: 'supergroup', members: ['alice_demo'] },
];

describe('public supergroups and channels as recipients', () => {
  let fx: WorldFixture;
  let session: Session;

  beforeEach(() => {
    fx = makeWorld({ chats: CHATS, limits: { user: { account: UNLIMITED, chat: UNLIMITED } } });
    session = startSession(fx.dir);
  });

  afterEach(async () => {
    await session.close();
    expect(session.checked.problems).toEqual([]);
    fx.cleanup();
  });

  async function login(second = false): Promise<{ client: TdClient; rec: Recorder }> {
    const client = session.manager.createClient();
    const rec = new Recorder(client);
    await client.invokeUnchecked(params(join(fx.dir, second ? 'db-second' : 'db-me')));
    if (second) await loginUser(client, '+15550100002', '54321');
    else await loginUser(client, '+15550100001', '12345', 'correct horse');
    return { client, rec };
  }

  async function send(client: TdClient, rec: Recorder, chatId: number, text: string): Promise<TdObject> {
    const pending = await client.invokeUnchecked(textMessage(chatId, text));
    return outcomeOf(rec, pending.id as number);
  }

  it('finds them by username: updateSupergroup, then updateNewChat, then a supergroup chat', async () => {
    const { client, rec } = await login();
    const group = await client.invokeUnchecked({ '@type': 'searchPublicChat', username: '@Sim_Group' });
    expect(group).toMatchObject({
      '@type': 'chat',
      id: GROUP,
      title: 'Sim Group',
      type: { '@type': 'chatTypeSupergroup', supergroup_id: 1001, is_channel: false },
      permissions: { can_send_basic_messages: true },
    });
    const channel = await client.invokeUnchecked({ '@type': 'searchPublicChat', username: 'sim_channel' });
    expect(channel).toMatchObject({
      id: CHANNEL,
      type: { '@type': 'chatTypeSupergroup', supergroup_id: 1002, is_channel: true },
      permissions: { can_send_basic_messages: false },
    });
    const types = rec.updates
      .filter((u) => u['@type'] === 'updateSupergroup' || u['@type'] === 'updateNewChat')
      .map((u) => u['@type']);
    expect(types).toEqual(['updateSupergroup', 'updateNewChat', 'updateSupergroup', 'updateNewChat']);
    const statuses = rec.updates
      .filter((u) => u['@type'] === 'updateSupergroup')
      .map((u) => (u.supergroup as TdObject).status as TdObject);
    expect(statuses[0]).toEqual({ '@type': 'chatMemberStatusMember', member_until_date: 0 });
    expect(statuses[1]).toMatchObject({
      '@type': 'chatMemberStatusAdministrator',
      rights: { can_post_messages: true },
    });
    expect(await client.invokeUnchecked({ '@type': 'getChat', chat_id: GROUP })).toMatchObject({ id: GROUP });
    expect(
      await errorOf(client.invokeUnchecked({ '@type': 'searchPublicChat', username: 'no_such_group' })),
    ).toEqual({ code: 400, message: 'USERNAME_NOT_OCCUPIED' });
  });

  it("delivers a member's message to a supergroup and an admin's post to a channel", async () => {
    const { client, rec } = await login();
    await client.invokeUnchecked({ '@type': 'searchPublicChat', username: 'sim_group' });
    await client.invokeUnchecked({ '@type': 'searchPublicChat', username: 'sim_channel' });
    const inGroup = await send(client, rec, GROUP, 'hello group');
    expect(inGroup['@type']).toBe('updateMessageSendSucceeded');
    expect(inGroup.message).toMatchObject({
      chat_id: GROUP,
      sender_id: { '@type': 'messageSenderUser', user_id: ME },
      is_channel_post: false,
    });
    const inChannel = await send(client, rec, CHANNEL, 'hello channel');
    expect(inChannel.message).toMatchObject({
      chat_id: CHANNEL,
      sender_id: { '@type': 'messageSenderChat', chat_id: CHANNEL },
      is_channel_post: true,
      is_outgoing: true,
    });
    expect(fx.world.deliveries().map((d) => [d.to, d.chat_id, d.text])).toEqual([
      [GROUP, GROUP, 'hello group'],
      [CHANNEL, CHANNEL, 'hello channel'],
    ]);
    // Message ids belong to the chat: the second member's message continues the group's sequence.
    const other = await login(true);
    await other.client.invokeUnchecked({ '@type': 'searchPublicChat', username: 'sim_group' });
    const fromOther = await send(other.client, other.rec, GROUP, 'hello from second');
    expect((fromOther.message as TdObject).id).toBe(2 * 1048576);
    expect((inGroup.message as TdObject).id).toBe(1048576);
    // Both members read the group's history, each seeing whose messages are outgoing.
    const history = await other.client.invokeUnchecked({
      '@type': 'getChatHistory',
      chat_id: GROUP,
      from_message_id: 0,
      offset: 0,
      limit: 10,
      only_local: false,
    });
    expect(
      (history.messages as TdObject[]).map((m) => [(m.sender_id as TdObject).user_id, m.is_outgoing]),
    ).toEqual([
      [SECOND, true],
      [ME, false],
    ]);
  });

  it('refuses locally what TDLib knows it may not send: not a member, or not a channel admin', async () => {
    const { client } = await login();
    await client.invokeUnchecked({ '@type': 'searchPublicChat', username: 'closed_group' });
    expect(await errorOf(client.invokeUnchecked(textMessage(CLOSED, 'x')))).toEqual({
      code: 400,
      message: 'Have no write access to the chat',
    });
    const other = await login(true);
    await other.client.invokeUnchecked({ '@type': 'searchPublicChat', username: 'sim_channel' });
    expect(await errorOf(other.client.invokeUnchecked(textMessage(CHANNEL, 'x')))).toEqual({
      code: 400,
      message: 'Need administrator rights in the channel chat',
    });
    // The write-access check comes before the content check, as in TDLib's send_message.
    expect(await errorOf(other.client.invokeUnchecked(textMessage(CHANNEL, '   ')))).toEqual({
      code: 400,
      message: 'Need administrator rights in the channel chat',
    });
    expect(fx.world.deliveries()).toEqual([]);
  });

  it('fails on the server after the membership changed: CHAT_WRITE_FORBIDDEN, CHAT_ADMIN_REQUIRED', async () => {
    const { client, rec } = await login();
    await client.invokeUnchecked({ '@type': 'searchPublicChat', username: 'sim_group' });
    await client.invokeUnchecked({ '@type': 'searchPublicChat', username: 'sim_channel' });
    fx.world.setChatMember('sim_group', 'demo_user', 'none');
    fx.world.setChatMember(1002, ME, 'member');
    await worldSynced(session, fx);
    const kicked = await send(client, rec, GROUP, 'after the kick');
    expect(kicked.error).toEqual({ '@type': 'error', code: 400, message: 'CHAT_WRITE_FORBIDDEN' });
    expect((kicked.message as TdObject).sending_state).toMatchObject({ can_retry: false });
    const demoted = await send(client, rec, CHANNEL, 'after the demotion');
    expect(demoted.error).toEqual({ '@type': 'error', code: 400, message: 'CHAT_ADMIN_REQUIRED' });
    // TDLib reloads the chat after such an error: the client now knows, and refuses locally.
    expect(
      rec.updates
        .filter((u) => u['@type'] === 'updateSupergroup')
        .map((u) => ((u.supergroup as TdObject).status as TdObject)['@type']),
    ).toEqual([
      'chatMemberStatusMember',
      'chatMemberStatusAdministrator',
      'chatMemberStatusLeft',
      'chatMemberStatusMember',
    ]);
    expect(await errorOf(client.invokeUnchecked(textMessage(GROUP, 'again')))).toEqual({
      code: 400,
      message: 'Have no write access to the chat',
    });
    fx.world.setChatMember(CLOSED, ME, 'admin');
    await worldSynced(session, fx);
    await client.invokeUnchecked({ '@type': 'searchPublicChat', username: 'closed_group' });
    expect((await send(client, rec, CLOSED, 'now an admin'))['@type']).toBe('updateMessageSendSucceeded');
    expect(fx.world.deliveries().map((d) => d.text)).toEqual(['now an admin']);
  });
});
