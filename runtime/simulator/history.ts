/**
 * Reading what was sent: getChatHistory, searchChatMessages and getChatMessageByDate for user accounts,
 * answered from the server-side history (delivery-index.ts), so they work across restarts and processes.
 * Parameters are checked in TDLib's order and with its texts (Requests.cpp CHECK_IS_USER, then
 * MessagesManager::get_dialog_history / search_dialog_messages / get_dialog_message_by_date, and
 * MessageSender.cpp for sender_id); the answers are the server's, after a network round trip that is
 * flood-limited (limits.history).
 *
 * Differences from Telegram, on purpose: `query` matches as a case-insensitive substring of the text,
 * where Telegram's server search matches words (word prefixes, any order, with its own normalization);
 * pages are always full (TDLib may return fewer messages than `limit`, often one on a first getChatHistory
 * call, so callers must loop until an empty page anyway).
 */
import type { SimClient } from './client.js';
import { historyWindow, type HistoryEntry } from './delivery-index.js';
import { introduceChat, limitedCall, requireMe } from './messaging.js';
import * as O from './objects.js';
import { bool, int32, int53, object, str, TdApiError, type Json, type JsonObject } from './protocol.js';

export const HISTORY_METHODS: ReadonlySet<string> = new Set([
  'getChats',
  'getChatHistory',
  'searchChatMessages',
  'getChatMessageByDate',
]);

/** MessagesManager.h MAX_GET_HISTORY and MAX_SEARCH_MESSAGES. */
const MAX_GET_HISTORY = 100;
const MAX_SEARCH_MESSAGES = 100;
/** UserId::max(): identifiers above it are not users. */
const MAX_USER_ID = 2 ** 40 - 1;

const SEARCH_FILTERS = [
  'searchMessagesFilterEmpty',
  'searchMessagesFilterAnimation',
  'searchMessagesFilterAudio',
  'searchMessagesFilterDocument',
  'searchMessagesFilterPhoto',
  'searchMessagesFilterVideo',
  'searchMessagesFilterVoiceNote',
  'searchMessagesFilterPhotoAndVideo',
  'searchMessagesFilterUrl',
  'searchMessagesFilterChatPhoto',
  'searchMessagesFilterVideoNote',
  'searchMessagesFilterVoiceAndVideoNote',
  'searchMessagesFilterMention',
  'searchMessagesFilterUnreadMention',
  'searchMessagesFilterUnreadReaction',
  'searchMessagesFilterUnreadPollVote',
  'searchMessagesFilterFailedToSend',
  'searchMessagesFilterPinned',
];

export function handle(client: SimClient, type: string, request: JsonObject, extra: Json | undefined): void {
  // Requests.cpp: CHECK_IS_USER() comes before anything else.
  if (client.isBot) throw new TdApiError(400, 'The method is not available to bots');
  switch (type) {
    case 'getChats':
      return getChats(client, request, extra);
    case 'getChatHistory':
      return getChatHistory(client, request, extra);
    case 'searchChatMessages':
      return searchChatMessages(client, request, extra);
    case 'getChatMessageByDate':
      return getChatMessageByDate(client, request, extra);
  }
}

/** A stored message as `viewer` sees it in chat `chatId` (with its latest edit). */
export function messageFor(client: SimClient, chatId: number, entry: HistoryEntry): O.TdMessage {
  const viewer = client.me?.id ?? 0;
  const channel = chatId < 0 && client.rt.view().chats.get(chatId)?.kind === 'channel';
  const entities =
    entry.entities === undefined ? [] : (structuredClone(entry.entities) as unknown as O.TdTextEntity[]);
  return O.message({
    id: entry.id,
    sender_user_id: entry.from,
    is_channel_post: channel,
    is_outgoing: entry.from === viewer,
    chat_id: chatId,
    date: entry.date,
    edit_date: entry.editDate,
    text: O.formattedText(entry.text, entities),
  });
}

function conversation(client: SimClient, chatId: number): readonly HistoryEntry[] {
  return client.rt.history().conversation(requireMe(client).id, chatId);
}

function requireKnownChat(client: SimClient, chatId: number): void {
  if (!client.knownChats.has(chatId)) throw new TdApiError(400, 'Chat not found');
}

/** A server request of the history family: connection, latency, fault injection, flood control. */
function historyCall(
  client: SimClient,
  method: string,
  extra: Json | undefined,
  work: () => { readonly '@type': string },
): void {
  limitedCall(client, method, extra, client.rt.view().config.limits.history, work);
}

/**
 * The main chat list, newest first: private chats only (the simulator keeps no dialog list for
 * supergroups and channels). Chats the client did not know arrive first as updateUser/updateNewChat, as
 * TDLib announces every chat before it returns its id.
 */
function getChats(client: SimClient, request: JsonObject, extra: Json | undefined): void {
  const list = object(request, 'chat_list', ['chatListMain', 'chatListArchive', 'chatListFolder']);
  const limit = int32(request, 'limit');
  if (limit <= 0) throw new TdApiError(400, 'Parameter limit must be positive');
  historyCall(client, 'getChats', extra, () => {
    const ids =
      list === null || list['@type'] === 'chatListMain'
        ? client.rt.history().privateChatsOf(requireMe(client).id).slice(0, limit)
        : [];
    const view = client.rt.view();
    const known: number[] = [];
    for (const id of ids) {
      const user = view.users.get(id);
      if (user === undefined) continue;
      introduceChat(client, user);
      known.push(id);
    }
    return { '@type': 'chats', total_count: known.length, chat_ids: known };
  });
}

function getChatHistory(client: SimClient, request: JsonObject, extra: Json | undefined): void {
  const chatId = int53(request, 'chat_id');
  let fromMessageId = int53(request, 'from_message_id');
  const offset = int32(request, 'offset');
  let limit = int32(request, 'limit');
  const onlyLocal = bool(request, 'only_local');
  if (limit <= 0) throw new TdApiError(400, 'Parameter limit must be positive');
  if (limit > MAX_GET_HISTORY) limit = MAX_GET_HISTORY;
  if (offset > 0) throw new TdApiError(400, 'Parameter offset must be non-positive');
  if (offset <= -MAX_GET_HISTORY) throw new TdApiError(400, 'Parameter offset must be greater than -100');
  if (offset < -limit) throw new TdApiError(400, 'Parameter offset must be greater than or equal to -limit');
  if (fromMessageId < 0) throw new TdApiError(400, 'Invalid value of parameter from_message_id specified');
  if (fromMessageId > Number.MAX_SAFE_INTEGER) fromMessageId = 0;
  requireKnownChat(client, chatId);
  const page = (entries: readonly HistoryEntry[]): O.TdMessage[] =>
    historyWindow(entries, fromMessageId, offset, limit).page.map((e) => messageFor(client, chatId, e));
  if (onlyLocal) {
    // Without a message database TDLib has only what it handled since it started: this client's own
    // messages sent in this run.
    const key = client.session?.auth_key ?? '';
    const local = conversation(client, chatId).filter(
      (e) => e.authKey === key && e.pid === process.pid && e.at >= client.readySince,
    );
    return client.reply(extra, O.messages(page(local)));
  }
  historyCall(client, 'getChatHistory', extra, () => O.messages(page(conversation(client, chatId))));
}

type Matcher = (entry: HistoryEntry) => boolean;

/**
 * sender_id as the server filters by it. In a channel, posts are sent by the channel: a user sender finds
 * none of them, and the channel itself as sender means no filter at all (search_dialog_messages drops it).
 */
function senderMatcher(client: SimClient, request: JsonObject, chatId: number): Matcher | 'none' | undefined {
  const sender = object(request, 'sender_id', ['messageSenderUser', 'messageSenderChat']);
  if (sender === null) return undefined;
  const channel = chatId < 0 && client.rt.view().chats.get(chatId)?.kind === 'channel';
  // MessageSender.cpp get_message_sender_dialog_id(check_access = true, allow_empty = true).
  let senderId: number;
  if (sender['@type'] === 'messageSenderUser') {
    senderId = int53(sender, 'user_id');
    if (senderId === 0) return undefined;
    if (senderId < 0 || senderId > MAX_USER_ID)
      throw new TdApiError(400, 'Invalid user identifier specified');
    if (!client.knownUsers.has(senderId)) throw new TdApiError(400, 'Unknown user identifier specified');
  } else {
    senderId = int53(sender, 'chat_id');
    if (senderId === 0) return undefined;
    if (!client.knownChats.has(senderId) && !client.knownUsers.has(senderId))
      throw new TdApiError(400, 'Unknown chat identifier specified');
  }
  if (senderId === chatId && channel) return undefined;
  if (senderId < 0 || channel) return 'none';
  return (e) => e.from === senderId;
}

function filterMatcher(request: JsonObject): Matcher | 'none' | undefined {
  const filter = object(request, 'filter', SEARCH_FILTERS);
  switch (filter?.['@type']) {
    case undefined:
    case 'searchMessagesFilterEmpty':
      return undefined;
    case 'searchMessagesFilterUrl':
      return (e) =>
        e.entities?.some((x) => {
          const type = (x as { type?: { '@type'?: string } }).type?.['@type'];
          return type === 'textEntityTypeUrl' || type === 'textEntityTypeTextUrl';
        }) === true;
    default:
      // Text messages are no media; the simulator keeps no failed local messages, mentions, pins or reactions.
      return 'none';
  }
}

function searchChatMessages(client: SimClient, request: JsonObject, extra: Json | undefined): void {
  const chatId = int53(request, 'chat_id');
  if (object(request, 'topic_id') !== null) {
    throw new TdApiError(
      400,
      'searchChatMessages with a topic_id is not supported by the Telegram simulator',
    );
  }
  const query = str(request, 'query');
  let fromMessageId = int53(request, 'from_message_id');
  const offset = int32(request, 'offset');
  let limit = int32(request, 'limit');
  // MessagesManager::search_dialog_messages, in its order.
  if (limit <= 0) throw new TdApiError(400, 'Parameter limit must be positive');
  if (limit > MAX_SEARCH_MESSAGES) limit = MAX_SEARCH_MESSAGES;
  if (limit <= -offset) throw new TdApiError(400, 'Parameter limit must be greater than -offset');
  if (offset > 0) throw new TdApiError(400, 'Parameter offset must be non-positive');
  if (fromMessageId > Number.MAX_SAFE_INTEGER) fromMessageId = 0;
  if (fromMessageId < 0)
    throw new TdApiError(400, 'Parameter from_message_id must be identifier of a chat message or 0');
  requireKnownChat(client, chatId);
  const bySender = senderMatcher(client, request, chatId);
  const byFilter = filterMatcher(request);
  const needle = query.toLowerCase();
  historyCall(client, 'searchChatMessages', extra, () => {
    // messages.search refuses an empty query without a filter or sender (SEARCH_QUERY_EMPTY); TDLib's
    // SearchChatMessagesRequest turns that error into an empty result.
    if (byFilter === 'none' || bySender === 'none') return O.foundChatMessages(0, [], 0);
    if (query === '' && bySender === undefined && byFilter === undefined)
      return O.foundChatMessages(0, [], 0);
    const found = conversation(client, chatId).filter(
      (e) =>
        (bySender === undefined || bySender(e)) &&
        (byFilter === undefined || byFilter(e)) &&
        (needle === '' || e.text.toLowerCase().includes(needle)),
    );
    const { page, olderRemain } = historyWindow(found, fromMessageId, offset, limit);
    const last = page[page.length - 1];
    return O.foundChatMessages(
      found.length,
      page.map((e) => messageFor(client, chatId, e)),
      olderRemain && last !== undefined ? last.id : 0,
    );
  });
}

function getChatMessageByDate(client: SimClient, request: JsonObject, extra: Json | undefined): void {
  const chatId = int53(request, 'chat_id');
  let date = int32(request, 'date');
  requireKnownChat(client, chatId);
  if (date <= 0) date = 1;
  historyCall(client, 'getChatMessageByDate', extra, () => {
    const entries = conversation(client, chatId);
    for (let i = entries.length - 1; i >= 0; i--) {
      const entry = entries[i] as HistoryEntry;
      if (entry.date <= date) return messageFor(client, chatId, entry);
    }
    // Td::send_result turns a missing answer into 404 "Not Found".
    throw new TdApiError(404, 'Not Found');
  });
}
