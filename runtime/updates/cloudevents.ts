/**
 * What an account receives, as CloudEvents 1.0 for its sink: which TDLib updates become events, their
 * deterministic ids, and the HTTP binary-mode request that carries one. Pure functions only.
 *
 * Ids come from Telegram's identity of the thing (chat, message, edit date), never from a counter, so an
 * update TDLib re-emits after a restart, a history refill after a move and an outbox redelivery all carry
 * the id the receiver already saw: CloudEvents lets a consumer treat equal source + id as duplicates.
 */
import { UPDATE_KIND_VALUES } from '../../crds/index.js';
import type { TdObject } from '../tdlib/backend.js';

/** The kinds a user can select in spec.updates.kinds. */
export type UpdateKind = (typeof UPDATE_KIND_VALUES)[number];

/** CloudEvents `type` per kind: reverse-DNS of the API group, then what happened. */
export const EVENT_TYPES: Readonly<Record<UpdateKind, string>> = {
  MessageNew: 'dev.tdlib-operator.telegram.message.new',
  MessageEdited: 'dev.tdlib-operator.telegram.message.edited',
  MessageDeleted: 'dev.tdlib-operator.telegram.message.deleted',
  CallbackQuery: 'dev.tdlib-operator.telegram.callback_query',
  ChatMember: 'dev.tdlib-operator.telegram.chat_member',
};

export interface UpdateEvent {
  kind: UpdateKind;
  /** Unique per distinct event within `source`; the same for every redelivery of it. */
  id: string;
  /** The chat: events of one chat are delivered in order, chats in parallel. */
  subject: string;
  /** When it happened at Telegram (RFC 3339). */
  time: string;
  data: Record<string, unknown>;
}

/** CloudEvents `source` of an account: a URI-reference naming it. */
export function eventSource(namespace: string, account: string): string {
  return `/namespaces/${namespace}/telegramaccounts/${account}`;
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const rfc3339 = (unixSeconds: number): string => new Date(unixSeconds * 1000).toISOString();

/** Chat and message ids are int53 in TDLib's JSON; anything else is not an update we can name. */
const int = (value: unknown): number | undefined =>
  typeof value === 'number' && Number.isSafeInteger(value) ? value : undefined;

/** Who sent it, as TDLib's MessageSender: a user or a chat. */
function senderOf(value: unknown): Record<string, unknown> | undefined {
  if (!isRecord(value)) return undefined;
  if (value['@type'] === 'messageSenderUser') return { user_id: value.user_id };
  if (value['@type'] === 'messageSenderChat') return { chat_id: value.chat_id };
  return undefined;
}

/**
 * The event a received message makes, or undefined for messages this account sent itself (a receiver
 * would otherwise hear its own replies) and for messages still being sent.
 */
export function messageEvent(
  message: TdObject,
  kind: 'MessageNew' | 'MessageEdited',
): UpdateEvent | undefined {
  const chatId = int(message.chat_id);
  const messageId = int(message.id);
  const date = int(message.date);
  if (chatId === undefined || messageId === undefined || date === undefined) return undefined;
  if (message.is_outgoing === true || message.sending_state !== undefined) return undefined;
  const editDate = int(message.edit_date) ?? 0;
  if (kind === 'MessageEdited' && editDate === 0) return undefined;
  const data: Record<string, unknown> = {
    chat_id: chatId,
    message_id: messageId,
    date,
    sender: senderOf(message.sender_id),
    content: message.content,
  };
  if (editDate > 0) data.edit_date = editDate;
  if (int(message.message_thread_id)) data.message_thread_id = message.message_thread_id;
  if (isRecord(message.reply_to)) data.reply_to = message.reply_to;
  return {
    kind,
    id: kind === 'MessageNew' ? `${chatId}:${messageId}:new` : `${chatId}:${messageId}:edit:${editDate}`,
    subject: String(chatId),
    time: rfc3339(kind === 'MessageNew' ? date : editDate),
    data,
  };
}

/**
 * The events a TDLib update makes (several for a deletion of several messages). `now` dates events whose
 * update carries no date (deletions). Edits arrive as updateMessageEdited without the new content: the
 * caller fetches the message (getMessage) and calls messageEvent(message, 'MessageEdited').
 */
export function eventsOf(update: TdObject, now: Date): UpdateEvent[] {
  switch (update['@type']) {
    case 'updateNewMessage': {
      const event = isRecord(update.message)
        ? messageEvent(update.message as TdObject, 'MessageNew')
        : undefined;
      return event ? [event] : [];
    }
    case 'updateDeleteMessages': {
      // from_cache: TDLib forgot them locally, nobody deleted anything; not permanent: moved, not gone.
      if (update.is_permanent !== true || update.from_cache === true) return [];
      const chatId = int(update.chat_id);
      const ids = Array.isArray(update.message_ids) ? update.message_ids.map(int) : [];
      if (chatId === undefined) return [];
      return ids.flatMap((messageId) =>
        messageId === undefined
          ? []
          : [
              {
                kind: 'MessageDeleted' as const,
                id: `${chatId}:${messageId}:deleted`,
                subject: String(chatId),
                time: now.toISOString(),
                data: { chat_id: chatId, message_id: messageId },
              },
            ],
      );
    }
    case 'updateNewCallbackQuery': {
      const queryId = update.id;
      const chatId = int(update.chat_id);
      if ((typeof queryId !== 'string' && typeof queryId !== 'number') || chatId === undefined) return [];
      return [
        {
          kind: 'CallbackQuery',
          // Telegram's query id is unique per bot; it is an int64, which TDLib's JSON gives as a string.
          id: `callback:${String(queryId)}`,
          subject: String(chatId),
          time: now.toISOString(),
          data: {
            callback_query_id: String(queryId),
            chat_id: chatId,
            message_id: update.message_id,
            sender_user_id: update.sender_user_id,
            chat_instance: update.chat_instance,
            payload: update.payload,
          },
        },
      ];
    }
    case 'updateChatMember': {
      const chatId = int(update.chat_id);
      const date = int(update.date);
      const after = isRecord(update.new_chat_member) ? update.new_chat_member : undefined;
      const member = senderOf(after?.member_id);
      if (chatId === undefined || date === undefined || !member) return [];
      const memberKey =
        member.user_id !== undefined ? `user:${String(member.user_id)}` : `chat:${String(member.chat_id)}`;
      return [
        {
          kind: 'ChatMember',
          id: `${chatId}:member:${memberKey}:${date}`,
          subject: String(chatId),
          time: rfc3339(date),
          data: {
            chat_id: chatId,
            date,
            performer: senderOf(update.performer_id),
            member,
            old_status: isRecord(update.old_chat_member) ? update.old_chat_member.status : undefined,
            new_status: after?.status,
          },
        },
      ];
    }
    default:
      return [];
  }
}

/**
 * A CloudEvents attribute value as an HTTP header value (HTTP protocol binding 3.1.3.2): printable ASCII
 * other than space, '"' and '%' stays, everything else is percent-encoded as UTF-8.
 */
export function headerValue(value: string): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    const printable = byte > 0x20 && byte < 0x7f && byte !== 0x22 && byte !== 0x25;
    out += printable ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** The headers and body of one event in HTTP binary mode. */
export function binaryRequest(
  event: UpdateEvent,
  source: string,
): { headers: Record<string, string>; body: string } {
  return {
    headers: {
      'content-type': 'application/json',
      'ce-specversion': '1.0',
      'ce-id': headerValue(event.id),
      'ce-source': headerValue(source),
      'ce-type': EVENT_TYPES[event.kind],
      'ce-subject': headerValue(event.subject),
      'ce-time': event.time,
      // The partitioning extension: brokers that order by key keep one chat in order too.
      'ce-partitionkey': headerValue(event.subject),
    },
    body: JSON.stringify(event.data),
  };
}
