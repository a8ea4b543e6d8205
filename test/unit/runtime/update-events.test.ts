import {
  binaryRequest,
  eventSource,
  eventsOf,
  headerValue,
  messageEvent,
} from '../../../runtime/updates/cloudevents.js';

const now = new Date('2026-11-29T12:00:00Z');
const incoming = (extra: Record<string, unknown> = {}) => ({
  '@type': 'message',
  id: 4096,
  chat_id: 777,
  date: 1_795_000_000,
  is_outgoing: false,
  sender_id: { '@type': 'messageSenderUser', user_id: 42 },
  content: { '@type': 'messageText', text: { '@type': 'formattedText', text: 'hi', entities: [] } },
  ...extra,
});

describe('eventsOf: which TDLib updates become events, with ids a receiver can dedupe on', () => {
  it('turns a received message into one MessageNew event named by chat and message', () => {
    const [event, ...rest] = eventsOf({ '@type': 'updateNewMessage', message: incoming() }, now);
    expect(rest).toEqual([]);
    expect(event).toMatchObject({
      kind: 'MessageNew',
      id: '777:4096:new',
      subject: '777',
      time: new Date(1_795_000_000 * 1000).toISOString(),
      data: { chat_id: 777, message_id: 4096, sender: { user_id: 42 } },
    });
  });

  it('gives the same id to the same message however often TDLib announces it', () => {
    const a = eventsOf({ '@type': 'updateNewMessage', message: incoming() }, now);
    const b = eventsOf({ '@type': 'updateNewMessage', message: incoming() }, new Date(0));
    expect(a[0]?.id).toBe(b[0]?.id);
  });

  it("skips the account's own messages and messages still being sent", () => {
    expect(eventsOf({ '@type': 'updateNewMessage', message: incoming({ is_outgoing: true }) }, now)).toEqual(
      [],
    );
    const pending = incoming({ sending_state: { '@type': 'messageSendingStatePending' } });
    expect(eventsOf({ '@type': 'updateNewMessage', message: pending }, now)).toEqual([]);
  });

  it('names an edit by its edit date, so each edit is its own event and a replay of it is not', () => {
    const first = messageEvent(incoming({ edit_date: 1_795_000_100 }), 'MessageEdited');
    const second = messageEvent(incoming({ edit_date: 1_795_000_200 }), 'MessageEdited');
    expect(first?.id).toBe('777:4096:edit:1795000100');
    expect(second?.id).toBe('777:4096:edit:1795000200');
    expect(messageEvent(incoming(), 'MessageEdited')).toBeUndefined();
  });

  it('makes one event per permanently deleted message, none for messages TDLib only dropped from its cache', () => {
    const deleted = eventsOf(
      {
        '@type': 'updateDeleteMessages',
        chat_id: 777,
        message_ids: [1, 2],
        is_permanent: true,
        from_cache: false,
      },
      now,
    );
    expect(deleted.map((e) => e.id)).toEqual(['777:1:deleted', '777:2:deleted']);
    expect(
      eventsOf(
        {
          '@type': 'updateDeleteMessages',
          chat_id: 777,
          message_ids: [1],
          is_permanent: true,
          from_cache: true,
        },
        now,
      ),
    ).toEqual([]);
    expect(
      eventsOf(
        {
          '@type': 'updateDeleteMessages',
          chat_id: 777,
          message_ids: [1],
          is_permanent: false,
          from_cache: false,
        },
        now,
      ),
    ).toEqual([]);
  });

  it('names a callback query by its query id and a member change by chat, member and date', () => {
    const [query] = eventsOf(
      {
        '@type': 'updateNewCallbackQuery',
        id: '9001',
        chat_id: 777,
        message_id: 5,
        sender_user_id: 42,
        payload: {},
      },
      now,
    );
    expect(query).toMatchObject({ kind: 'CallbackQuery', id: 'callback:9001', subject: '777' });
    const [member] = eventsOf(
      {
        '@type': 'updateChatMember',
        chat_id: -100,
        date: 1_795_000_000,
        performer_id: { '@type': 'messageSenderUser', user_id: 1 },
        old_chat_member: {
          member_id: { '@type': 'messageSenderUser', user_id: 42 },
          status: { '@type': 'chatMemberStatusLeft' },
        },
        new_chat_member: {
          member_id: { '@type': 'messageSenderUser', user_id: 42 },
          status: { '@type': 'chatMemberStatusMember' },
        },
      },
      now,
    );
    expect(member).toMatchObject({
      kind: 'ChatMember',
      id: '-100:member:user:42:1795000000',
      subject: '-100',
    });
  });

  it('ignores updates it does not deliver and updates missing their identity', () => {
    expect(eventsOf({ '@type': 'updateUserStatus', user_id: 1 }, now)).toEqual([]);
    expect(eventsOf({ '@type': 'updateNewMessage', message: incoming({ chat_id: 'x' }) }, now)).toEqual([]);
  });
});

describe('binaryRequest: one event in CloudEvents HTTP binary mode', () => {
  it('carries the attributes as ce- headers and the data as the JSON body', () => {
    const [event] = eventsOf({ '@type': 'updateNewMessage', message: incoming() }, now);
    if (!event) throw new Error('no event');
    const { headers, body } = binaryRequest(event, eventSource('team-a', 'support-bot'));
    expect(headers).toMatchObject({
      'content-type': 'application/json',
      'ce-specversion': '1.0',
      'ce-id': '777:4096:new',
      'ce-source': '/namespaces/team-a/telegramaccounts/support-bot',
      'ce-type': 'dev.tdlib-operator.telegram.message.new',
      'ce-subject': '777',
      'ce-partitionkey': '777',
    });
    expect(JSON.parse(body)).toMatchObject({ chat_id: 777, message_id: 4096 });
  });

  it('percent-encodes what a header may not carry', () => {
    expect(headerValue('a b"c%d')).toBe('a%20b%22c%25d');
    expect(headerValue('é')).toBe('%C3%A9');
    expect(headerValue('-100:1:new')).toBe('-100:1:new');
  });
});
