/**
 * Editing one's own text messages (editMessageText) and reading one message back (getMessage), for user and
 * bot accounts, answered from the server-side history (delivery-index.ts) so every process sees an edit.
 *
 * editMessageText follows MessagesManager::edit_message_text: the content type first, then the chat, the
 * message, can_edit_message, the new text (process_input_message_text, the same checks and texts as
 * sendMessage); then the server request (latency, fault injection and a flood bucket of its own, like the
 * other request-answer methods). On the server an identical text is MESSAGE_NOT_MODIFIED, which TDLib's
 * EditMessageQuery::on_error turns into a success for users (the answer is the message as it is) and passes
 * on to bots. A successful edit is written to state/edits.jsonl, then the editing client hears
 * updateMessageContent and updateMessageEdited (what TDLib sends when the server's updateEditMessage comes
 * back) before the answer, the edited message; other clients hear them through the IncomingFeed.
 *
 * Differences from Telegram, on purpose: private chats only (an edit in a supergroup or channel answers a
 * clear 400); the client is taken to know every message of the server's history, where TDLib without a
 * message database knows only what it loaded since it started; reply_markup is ignored (users cannot set it,
 * inline keyboards of bots are not simulated).
 */
import type { SimClient } from './client.js';
import type { HistoryEntry } from './delivery-index.js';
import { messageFor } from './history.js';
import { limitedCall, readLinkPreviewOptions, readText, requireMe } from './messaging.js';
import * as O from './objects.js';
import { int53, object, TdApiError, type Json, type JsonObject } from './protocol.js';
import type { EditRecord, UserView } from './world.js';

export const EDIT_METHODS: ReadonlySet<string> = new Set(['editMessageText', 'getMessage']);

/** TDLib's default of the edit_time_limit option (MessagesManager::can_edit_message): 2 days. */
export const EDIT_TIME_LIMIT_SECONDS = 2 * 86400;
/** can_edit_message(is_editing = true) gives a request already on its way 5 more minutes. */
const EDITING_GRACE_SECONDS = 300;

export interface EditFacts {
  readonly isBot: boolean;
  readonly myId: number;
  /** The private chat: the other user's id (my own id in Saved Messages). */
  readonly chatId: number;
  /** Who sent the message, and when (Unix seconds). */
  readonly from: number;
  readonly date: number;
  readonly now: number;
}

/** Whether the edit time limit applies: not to a bot's own messages, not in Saved Messages. */
function hasEditTimeLimit(f: EditFacts): boolean {
  return !f.isBot && f.chatId !== f.myId;
}

/**
 * MessagesManager::can_edit_message for a server text message in a private chat: only one's own outgoing
 * messages (in Saved Messages, every message), and a user's only within the edit time limit.
 */
export function canEditMessage(f: EditFacts): boolean {
  if (f.from !== f.myId && f.chatId !== f.myId) return false;
  if (hasEditTimeLimit(f) && f.now - f.date - EDITING_GRACE_SECONDS >= EDIT_TIME_LIMIT_SECONDS) return false;
  return true;
}

/** The server's own refusal of an edit TDLib let through (its grace minutes are TDLib's, not the server's). */
export function serverEditError(f: EditFacts): string | undefined {
  if (f.from !== f.myId) return 'MESSAGE_AUTHOR_REQUIRED';
  if (hasEditTimeLimit(f) && f.now - f.date >= EDIT_TIME_LIMIT_SECONDS) return 'MESSAGE_EDIT_TIME_EXPIRED';
  return undefined;
}

/** Whether the new text is what the message says already (text and entities): MESSAGE_NOT_MODIFIED. */
export function sameText(entry: HistoryEntry, text: O.TdFormattedText): boolean {
  return entry.text === text.text && JSON.stringify(entry.entities ?? []) === JSON.stringify(text.entities);
}

export function handle(client: SimClient, type: string, request: JsonObject, extra: Json | undefined): void {
  switch (type) {
    case 'editMessageText':
      return editMessageText(client, request, extra);
    case 'getMessage':
      return getMessage(client, request, extra);
  }
}

function factsOf(client: SimClient, me: UserView, chatId: number, entry: HistoryEntry): EditFacts {
  return {
    isBot: client.isBot,
    myId: me.id,
    chatId,
    from: entry.from,
    date: entry.date,
    now: Math.floor(client.rt.now() / 1000),
  };
}

function editMessageText(client: SimClient, request: JsonObject, extra: Json | undefined): void {
  const me = requireMe(client);
  const chatId = int53(request, 'chat_id');
  const messageId = int53(request, 'message_id');
  const content = object(request, 'input_message_content');
  if (content === null) throw new TdApiError(400, "Can't edit message without new content");
  if (content['@type'] !== 'inputMessageText')
    throw new TdApiError(400, 'Input message content type must be InputMessageText');
  if (!client.knownChats.has(chatId)) throw new TdApiError(400, 'Chat not found');
  if (chatId < 0) throw new TdApiError(400, 'The Telegram simulator edits messages in private chats only');
  const entry = client.rt.history().message(me.id, chatId, messageId);
  if (entry === undefined) {
    // A message still being sent (or failed) is in TDLib's chat under its yet-unsent id: it exists, but
    // can_edit_message refuses it.
    if (client.unsentIds.has(messageId)) throw new TdApiError(400, "Message can't be edited");
    throw new TdApiError(400, 'Message not found');
  }
  if (!canEditMessage(factsOf(client, me, chatId, entry)))
    throw new TdApiError(400, "Message can't be edited");
  const text = readText(content);
  readLinkPreviewOptions(content);
  const limits = client.rt.view().config.limits;
  const limit = client.isBot ? limits.bot.account : limits.user.account;
  limitedCall(client, 'editMessageText', extra, limit, () => serverEdit(client, me, chatId, messageId, text));
}

/** messages.editMessage on the server, then what TDLib makes of the answer. */
function serverEdit(
  client: SimClient,
  me: UserView,
  chatId: number,
  messageId: number,
  text: O.TdFormattedText,
): O.TdMessage {
  const history = client.rt.history();
  const entry = history.message(me.id, chatId, messageId);
  if (entry === undefined) throw new TdApiError(400, 'MESSAGE_ID_INVALID');
  const refusal = serverEditError(factsOf(client, me, chatId, entry));
  if (refusal !== undefined) throw new TdApiError(400, refusal);
  if (sameText(entry, text)) {
    if (client.isBot) throw new TdApiError(400, 'MESSAGE_NOT_MODIFIED');
    return messageFor(client, chatId, entry);
  }
  // The recipient hears the edit only if it got the message (a block may have swallowed it).
  const reached =
    chatId === me.id ||
    !client.rt.view().isAccount(chatId) ||
    history.message(chatId, me.id, messageId) !== undefined;
  const edit: EditRecord = {
    at: Date.now(),
    from: me.id,
    chat_id: chatId,
    message_id: messageId,
    text: text.text,
    ...(text.entities.length === 0 ? {} : { entities: text.entities as unknown as Json[] }),
    edit_date: Math.floor(client.rt.now() / 1000),
    status: reached ? 'delivered' : 'blocked',
    auth_key: client.session?.auth_key ?? '',
    pid: process.pid,
  };
  client.rt.recordEdit(edit);
  const edited = client.rt.history().message(me.id, chatId, messageId) ?? entry;
  client.update(O.updateMessageContent(chatId, messageId, textContentOf(edited)));
  client.update(O.updateMessageEdited(chatId, messageId, edit.edit_date));
  return messageFor(client, chatId, edited);
}

/** A stored message's content (a fresh object: the client owns what it receives). */
export function textContentOf(entry: HistoryEntry): ReturnType<typeof O.messageTextContent> {
  const entities =
    entry.entities === undefined ? [] : (structuredClone(entry.entities) as unknown as O.TdTextEntity[]);
  return O.messageTextContent(O.formattedText(entry.text, entities));
}

/**
 * TDLib's getMessage (users and bots alike): the message from this account's view of the chat, after a
 * server round trip that shares the history requests' flood bucket; a message it does not have is
 * Td::send_result's 404 "Not Found" (get_message answers nothing).
 */
function getMessage(client: SimClient, request: JsonObject, extra: Json | undefined): void {
  const me = requireMe(client);
  const chatId = int53(request, 'chat_id');
  const messageId = int53(request, 'message_id');
  if (!client.knownChats.has(chatId)) throw new TdApiError(400, 'Chat not found');
  limitedCall(client, 'getMessage', extra, client.rt.view().config.limits.history, () => {
    const entry = client.rt.history().message(me.id, chatId, messageId);
    if (entry === undefined) throw new TdApiError(404, 'Not Found');
    return messageFor(client, chatId, entry);
  });
}
