/**
 * Recipients and sending. sendMessage answers at once with the temporary message
 * (messageSendingStatePending); the server's verdict arrives later as updateMessageSendSucceeded or
 * updateMessageSendFailed. Server-side rules, in the order they are checked: a re-send whose random_id the
 * server already has succeeds with the message it has; for a private chat the recipient exists and is
 * active, bots only write to users who started them, blocks, privacy, PEER_FLOOD for users writing to
 * strangers; for a supergroup or channel membership and admin rights (groups.ts); then flood control (per
 * account, per chat). Flood waits up to TDLib's own limit (60 s by default) are waited out silently, as
 * TDLib does; longer ones fail with 429 "Too Many Requests: retry after N". Error codes and texts are
 * TDLib's after its remapping (MessagesManager's process_send_message_fail_error): e.g.
 * INPUT_USER_DEACTIVATED becomes 403 "User is deactivated". With the message database, unfinished sends are
 * remembered (pending.ts) and re-sent by the next client on the directory (resumePendingSends).
 */
import { randomBytes } from 'node:crypto';
import type { SimClient } from './client.js';
import type { HistoryEntry } from './delivery-index.js';
import { withAutoEntities } from './entities.js';
import {
  introduceSupergroup,
  localWriteError as groupWriteError,
  nextGroupMessageId,
  roleOf,
  serverWriteError,
  supergroupChatObject,
} from './groups.js';
import { errorFires } from './faults.js';
import { MESSAGE_ID_SHIFT, checkPeerFlood, copyBucket, takeToken, type Bucket } from './limits.js';
import * as O from './objects.js';
import {
  array,
  bool,
  int32,
  int53,
  isJsonObject,
  isWellFormed,
  object,
  str,
  TdApiError,
  type Json,
  type JsonObject,
} from './protocol.js';
import type { PendingSend } from './session-db.js';
import { normalizePhone, type RateLimit } from './world-schema.js';
import type { ChatView, UserView } from './world.js';

export { MESSAGE_ID_SHIFT } from './limits.js';
/** MessagesManager.h MAX_RESEND_DELAY: a send pending longer than this is not re-sent after a restart. */
const MAX_RESEND_DELAY_SECONDS = 86400;
export const TOO_OLD_TO_RESEND = 'Message is too old to be re-sent automatically';
// Scratch buckets: a send may be refused, so limits are tried on copies first (no allocation per send).
const PROBE_ACCOUNT: Bucket = { tokens: 0, at: 0 };
const PROBE_CHAT: Bucket = { tokens: 0, at: 0 };

// ---- what a client sees of users and chats --------------------------------------------------------

function isContact(client: SimClient, other: UserView): boolean {
  const me = client.me;
  if (me === undefined) return false;
  return me.contactIds.has(other.id) || client.account?.importedContacts.has(other.id) === true;
}

export function userObject(client: SimClient, user: UserView): O.TdUser {
  const me = client.me;
  const self = me?.id === user.id;
  const contact = isContact(client, user);
  const theyHaveMe = me !== undefined && user.contactIds.has(me.id);
  const phoneVisible =
    self ||
    user.privacy.show_phone_number === 'everybody' ||
    (user.privacy.show_phone_number === 'contacts' && theyHaveMe);
  return O.user({
    id: user.id,
    first_name: user.first_name,
    last_name: user.last_name,
    ...(user.username === undefined ? {} : { username: user.username }),
    phone: phoneVisible ? user.phone : '',
    is_bot: user.bot !== undefined,
    deleted: user.deactivated,
    premium: user.premium,
    is_contact: contact,
    is_mutual_contact: contact && theyHaveMe,
    restricts_new_chats: user.privacy.new_chats === 'contacts_and_premium',
  });
}

function chatTitle(user: UserView): string {
  if (user.deactivated) return 'Deleted Account';
  return `${user.first_name} ${user.last_name}`.trim();
}

function chatObject(client: SimClient, user: UserView): O.TdChat {
  return O.privateChat({
    user_id: user.id,
    title: chatTitle(user),
    is_bot: user.bot !== undefined,
    blocked_by_me: client.me?.blockedIds.has(user.id) === true,
  });
}

/** Sends updateUser the first time (or when the user changed as far as the client can tell). */
export function introduceUser(client: SimClient, user: UserView): void {
  const seenDeleted = client.knownUsers.get(user.id);
  if (seenDeleted === user.deactivated) return;
  client.knownUsers.set(user.id, user.deactivated);
  client.update(O.updateUser(userObject(client, user)));
}

export function introduceChat(client: SimClient, user: UserView): void {
  introduceUser(client, user);
  if (client.knownChats.has(user.id)) return;
  client.knownChats.add(user.id);
  client.update(O.updateNewChat(chatObject(client, user)));
}

function lookupLimit(client: SimClient, key: string, limit: RateLimit): number {
  const account = client.account;
  if (account === undefined) return 0;
  const now = client.rt.now();
  return takeToken(account.bucket(key, limit, now), limit, now, false);
}

export function floodError(seconds: number): TdApiError {
  return new TdApiError(429, `Too Many Requests: retry after ${Math.max(1, Math.ceil(seconds))}`);
}

/**
 * A flood-limited lookup: short waits are absorbed (the answer comes later, like TDLib's automatic retry),
 * long ones are reported.
 */
export function limitedCall(
  client: SimClient,
  method: string,
  extra: Json | undefined,
  limit: RateLimit,
  work: () => { readonly '@type': string },
): void {
  client.networkCall(method, extra, () => {
    const wait = lookupLimit(client, method, limit);
    if (wait === 0) return work();
    const tdlibLimit = client.rt.view().config.limits.tdlib_flood_wait_limit_seconds;
    if (wait > tdlibLimit) throw floodError(wait);
    client.rt.scheduler.after(wait * 1000, () => {
      if (client.phase !== 'open') return;
      try {
        client.reply(extra, work());
      } catch (error) {
        if (!(error instanceof TdApiError)) throw error;
        client.replyError(extra, error.code, error.message);
      }
    });
    return undefined;
  });
}

export function requireMe(client: SimClient): UserView {
  const me = client.me;
  if (me === undefined) throw new TdApiError(401, 'Unauthorized');
  return me;
}

function currentView(client: SimClient, id: number): UserView | undefined {
  return client.rt.view().users.get(id);
}

// ---- requests ---------------------------------------------------------------------------------------

export function handle(client: SimClient, type: string, request: JsonObject, extra: Json | undefined): void {
  switch (type) {
    case 'getMe': {
      const me = currentView(client, requireMe(client).id) ?? requireMe(client);
      return client.reply(extra, userObject(client, me));
    }
    case 'getUser': {
      const id = int53(request, 'user_id');
      const user = currentView(client, id);
      if (!client.knownUsers.has(id) || user === undefined) throw new TdApiError(400, 'User not found');
      return client.reply(extra, userObject(client, user));
    }
    case 'getChat': {
      const id = int53(request, 'chat_id');
      if (!client.knownChats.has(id)) throw new TdApiError(400, 'Chat not found');
      const group = client.rt.view().chats.get(id);
      if (group !== undefined) {
        // TDLib answers from what it knows; the status it knows is the one it last received.
        const role = client.knownSupergroups.get(id) ?? roleOf(group, client.me?.id ?? 0);
        return client.reply(extra, supergroupChatObject(group, role));
      }
      const user = currentView(client, id);
      if (user === undefined) throw new TdApiError(400, 'Chat not found');
      return client.reply(extra, chatObject(client, user));
    }
    case 'createPrivateChat': {
      const id = int53(request, 'user_id');
      bool(request, 'force');
      const user = currentView(client, id);
      if (!client.knownUsers.has(id) || user === undefined) throw new TdApiError(400, 'User not found');
      introduceChat(client, user);
      return client.reply(extra, chatObject(client, user));
    }
    case 'searchPublicChat':
      return searchPublicChat(client, str(request, 'username'), extra);
    case 'searchUserByPhoneNumber':
      return searchUserByPhoneNumber(
        client,
        str(request, 'phone_number'),
        bool(request, 'only_local'),
        extra,
      );
    case 'importContacts':
      return importContacts(client, array(request, 'contacts'), extra);
    case 'sendMessage':
      return sendMessage(client, request, extra);
    default:
      throw new TdApiError(400, `Method "${type}" is not supported by the Telegram simulator`);
  }
}

function searchPublicChat(client: SimClient, username: string, extra: Json | undefined): void {
  let name = username.trim();
  if (name.startsWith('@')) name = name.slice(1);
  if (name === '') throw new TdApiError(400, 'Username is invalid');
  const limits = client.rt.view().config.limits;
  limitedCall(client, 'searchPublicChat', extra, limits.search_public_chat, () => {
    if (!/^[A-Za-z0-9_]{1,32}$/.test(name)) throw new TdApiError(400, 'USERNAME_INVALID');
    const group = client.rt.view().chatByUsername.get(name.toLowerCase());
    if (group !== undefined) {
      const role = introduceSupergroup(client, group);
      return supergroupChatObject(group, role);
    }
    const user = client.rt.view().byUsername.get(name.toLowerCase());
    if (user === undefined || user.deactivated) throw new TdApiError(400, 'USERNAME_NOT_OCCUPIED');
    introduceChat(client, user);
    return chatObject(client, user);
  });
}

/** Whether `user` lets the current account find them by phone number. */
function findableByPhone(client: SimClient, user: UserView): boolean {
  const me = client.me;
  if (user.deactivated || me === undefined) return false;
  return user.privacy.find_by_phone_number === 'everybody' || user.contactIds.has(me.id) || user.id === me.id;
}

function searchUserByPhoneNumber(
  client: SimClient,
  phone: string,
  onlyLocal: boolean,
  extra: Json | undefined,
): void {
  if (client.isBot) throw new TdApiError(400, 'The method is not available to bots');
  const digits = normalizePhone(phone);
  if (digits === '') throw new TdApiError(400, 'Phone number is invalid');
  if (onlyLocal) {
    const user = client.rt.view().byPhone.get(digits);
    if (user === undefined || !client.knownUsers.has(user.id) || !findableByPhone(client, user)) {
      throw new TdApiError(404, 'Not Found');
    }
    return client.reply(extra, userObject(client, user));
  }
  const limits = client.rt.view().config.limits;
  limitedCall(client, 'searchUserByPhoneNumber', extra, limits.search_user_by_phone_number, () => {
    const user = client.rt.view().byPhone.get(digits);
    if (user === undefined || !findableByPhone(client, user)) throw new TdApiError(404, 'Not Found');
    introduceUser(client, user);
    return userObject(client, user);
  });
}

function importContacts(client: SimClient, contacts: Json[], extra: Json | undefined): void {
  if (client.isBot) throw new TdApiError(400, 'The method is not available to bots');
  const phones = contacts.map((c) => {
    if (!isJsonObject(c)) throw new TdApiError(400, 'Contact must be non-empty');
    return normalizePhone(str(c, 'phone_number'));
  });
  const limit = client.rt.view().config.limits.import_contacts;
  client.networkCall('importContacts', extra, () => {
    const account = client.account;
    const now = client.rt.now();
    // Telegram rejects the whole batch when the account is over its import quota.
    let wait = 0;
    if (account !== undefined) {
      const bucket = account.bucket('importContacts', limit, now);
      const probe = { ...bucket };
      for (let i = 0; i < phones.length; i++) wait = Math.max(wait, takeToken(probe, limit, now, false));
      if (wait > 0) throw floodError(wait);
      bucket.tokens = probe.tokens;
      bucket.at = probe.at;
    }
    const userIds: number[] = [];
    for (const digits of phones) {
      const user = client.rt.view().byPhone.get(digits);
      if (user === undefined || !findableByPhone(client, user)) {
        userIds.push(0);
        continue;
      }
      account?.importedContacts.add(user.id);
      if (account !== undefined) account.dirty = true;
      client.knownUsers.delete(user.id);
      introduceUser(client, user);
      userIds.push(user.id);
    }
    return {
      '@type': 'importedContacts',
      user_ids: userIds,
      importer_count: userIds.map(() => 0),
    } as { readonly '@type': string };
  });
}

// ---- sending ------------------------------------------------------------------------------------------

export function readText(content: JsonObject): O.TdFormattedText {
  const text = object(content, 'text', ['formattedText']);
  if (text === null) throw new TdApiError(400, 'Text must be non-empty');
  const value = str(text, 'text');
  if (!isWellFormed(value)) throw new TdApiError(400, 'Strings must be encoded in UTF-8');
  if (value.trim() === '') throw new TdApiError(400, 'Text must be non-empty');
  if (value.length > 4096) throw new TdApiError(400, 'Message is too long');
  const entities: O.TdTextEntity[] = [];
  for (const e of array(text, 'entities')) {
    if (!isJsonObject(e)) continue;
    const offset = int32(e, 'offset');
    const length = int32(e, 'length');
    const type = object(e, 'type');
    if (type === null || length <= 0 || offset < 0 || offset + length > value.length) continue;
    entities.push({
      '@type': 'textEntity',
      offset,
      length,
      type: structuredClone(type) as unknown as O.TdTextEntity['type'],
    });
  }
  return O.formattedText(value, withAutoEntities(value, entities));
}

export function readLinkPreviewOptions(content: JsonObject): O.TdLinkPreviewOptions | undefined {
  const options = object(content, 'link_preview_options', ['linkPreviewOptions']);
  if (options === null) return undefined;
  return {
    '@type': 'linkPreviewOptions',
    is_disabled: bool(options, 'is_disabled'),
    url: str(options, 'url'),
    force_small_media: bool(options, 'force_small_media'),
    force_large_media: bool(options, 'force_large_media'),
    show_above_text: bool(options, 'show_above_text'),
  };
}

interface Outgoing {
  readonly chatId: number;
  readonly pendingId: number;
  readonly sendingId: number;
  readonly date: number;
  readonly text: O.TdFormattedText;
  readonly linkPreview: O.TdLinkPreviewOptions | undefined;
  /** int64 as a decimal string, kept across a resend: the server dedupes by (sender, random_id). */
  readonly randomId: string;
  /** A re-send after a restart (message database): the server may already have it. */
  readonly resent: boolean;
  /** A post in a channel: sent on behalf of the channel. */
  readonly channelPost: boolean;
}

function messageOf(
  client: SimClient,
  out: Outgoing,
  id: number,
  state?: O.TdMessageSendingState,
  date = out.date,
): O.TdMessage {
  return O.message({
    id,
    sender_user_id: client.me?.id ?? 0,
    is_channel_post: out.channelPost,
    chat_id: out.chatId,
    date,
    text: out.text,
    ...(out.linkPreview === undefined ? {} : { link_preview_options: out.linkPreview }),
    ...(state === undefined ? {} : { sending_state: state }),
  });
}

/** TDLib's random_id: a secure random non-zero int64 (MessagesManager::generate_new_random_id). */
function newRandomId(): string {
  for (;;) {
    const value = randomBytes(8).readBigInt64LE();
    if (value !== 0n) return value.toString();
  }
}

/**
 * TDLib's can_send_message, which runs before the content is looked at: no write access to a deleted user
 * it knows of, or to a supergroup/channel it is not allowed to write to as far as it knows.
 */
function localWriteError(client: SimClient, chatId: number): string | undefined {
  const group = chatId < 0 ? client.rt.view().chats.get(chatId) : undefined;
  if (group !== undefined) return groupWriteError(group, client.knownSupergroups.get(chatId));
  if (client.knownUsers.get(chatId) === true) return 'Have no write access to the chat';
  return undefined;
}

function sendMessage(client: SimClient, request: JsonObject, extra: Json | undefined): void {
  const me = requireMe(client);
  const chatId = int53(request, 'chat_id');
  if (!client.knownChats.has(chatId)) throw new TdApiError(400, 'Chat not found');
  const writeError = localWriteError(client, chatId);
  if (writeError !== undefined) throw new TdApiError(400, writeError);
  const content = object(request, 'input_message_content');
  if (content === null) throw new TdApiError(400, 'Input message content must be non-empty');
  if (content['@type'] !== 'inputMessageText') {
    throw new TdApiError(
      400,
      `The Telegram simulator sends only inputMessageText, not ${String(content['@type'])}`,
    );
  }
  const text = readText(content);
  const options = object(request, 'options', ['messageSendOptions']);
  const sendingId = options === null ? 0 : int32(options, 'sending_id');
  const group = chatId < 0 ? client.rt.view().chats.get(chatId) : undefined;
  const out: Outgoing = {
    chatId,
    pendingId: nextPendingId(client, me),
    sendingId,
    date: Math.floor(client.rt.now() / 1000),
    text,
    linkPreview: readLinkPreviewOptions(content),
    randomId: newRandomId(),
    resent: false,
    channelPost: group?.kind === 'channel',
  };
  // With the message database, TDLib's binlog remembers the send (sending_id is not part of it).
  client.pendingSends?.add(pendingRecord(out, out.date));
  client.unsentIds.add(out.pendingId);
  announce(client, out);
  client.reply(extra, messageOf(client, out, out.pendingId, O.pendingState(sendingId)));
  // The answer was the pending message already; deliver() reports the outcome (and injects send faults).
  client.networkCall(
    'sendMessage',
    undefined,
    () => {
      deliver(client, out);
      return undefined;
    },
    true,
  );
}

/** A yet-unsent message id: above the last server id of the account, unique within the client. */
function nextPendingId(client: SimClient, me: UserView): number {
  const account = client.rt.account(me.id);
  const seq = (client.localSeq = (client.localSeq % (MESSAGE_ID_SHIFT - 1)) + 1);
  return account.nextMessageId * MESSAGE_ID_SHIFT + seq;
}

function pendingRecord(out: Outgoing, sendDate: number): PendingSend {
  return {
    random_id: out.randomId,
    chat_id: out.chatId,
    text: { text: out.text.text, entities: structuredClone(out.text.entities) as unknown as Json[] },
    ...(out.linkPreview === undefined
      ? {}
      : { link_preview_options: structuredClone(out.linkPreview) as unknown as Json }),
    send_date: sendDate,
  };
}

/** updateNewMessage and updateChatLastMessage of a message being sent (with simulation.chat_updates). */
function announce(client: SimClient, out: Outgoing): void {
  if (!client.rt.view().config.simulation.chat_updates) return;
  const pending = O.pendingState(out.sendingId);
  client.update(O.updateNewMessage(messageOf(client, out, out.pendingId, pending)));
  client.update(
    O.updateChatLastMessage(
      out.chatId,
      messageOf(client, out, out.pendingId, O.pendingState(out.sendingId)),
      O.chatOrder(out.date, out.pendingId),
    ),
  );
}

/**
 * What TDLib does with the SendMessage events of its binlog once the client is up again
 * (MessagesManager::continue_send_message): each message gets a new yet-unsent id and date = now, is
 * announced with updateNewMessage (always, as TDLib adds it to the chat anew), then either fails at once
 * (no write access any more, or first sent more than 24 h ago: 400 "Message is too old to be re-sent
 * automatically") or goes to the server again with the same random_id. A message whose chat is gone is
 * dropped silently. sending_id is not persistent: the re-sent message has none.
 */
export function resumePendingSends(client: SimClient): void {
  const store = client.pendingSends;
  const me = client.me;
  if (store === undefined || me === undefined || client.phase !== 'open' || !client.isReady) return;
  const view = client.rt.view();
  const now = Math.floor(client.rt.now() / 1000);
  for (const pending of store.list()) {
    const group = pending.chat_id < 0 ? view.chats.get(pending.chat_id) : undefined;
    const user = pending.chat_id > 0 ? view.users.get(pending.chat_id) : undefined;
    if (group === undefined && user === undefined) {
      store.remove(pending.random_id);
      continue;
    }
    // The message database has the chat: TDLib announces it before any update that names it.
    if (group !== undefined) introduceSupergroup(client, group);
    else if (user !== undefined) introduceChat(client, user);
    const entities = structuredClone(pending.text.entities) as unknown as O.TdTextEntity[];
    const out: Outgoing = {
      chatId: pending.chat_id,
      pendingId: nextPendingId(client, me),
      sendingId: 0,
      date: now,
      text: O.formattedText(pending.text.text, entities),
      linkPreview: pending.link_preview_options as O.TdLinkPreviewOptions | undefined,
      randomId: pending.random_id,
      resent: true,
      channelPost: group?.kind === 'channel',
    };
    const pendingState = O.pendingState(0);
    client.unsentIds.add(out.pendingId);
    client.update(O.updateNewMessage(messageOf(client, out, out.pendingId, pendingState)));
    if (view.config.simulation.chat_updates) {
      client.update(
        O.updateChatLastMessage(
          out.chatId,
          messageOf(client, out, out.pendingId, O.pendingState(0)),
          O.chatOrder(out.date, out.pendingId),
        ),
      );
    }
    let error = localWriteError(client, out.chatId);
    if (
      error === undefined &&
      pending.send_date < now - MAX_RESEND_DELAY_SECONDS &&
      pending.chat_id !== me.id
    )
      error = TOO_OLD_TO_RESEND;
    if (error !== undefined) {
      fail(client, out, 400, error, 0);
      continue;
    }
    client.networkCall(
      'sendMessage',
      undefined,
      () => {
        deliver(client, out);
        return undefined;
      },
      true,
    );
  }
}

/** The server's verdict on one message, applied after the network latency. */
function deliver(client: SimClient, out: Outgoing): void {
  if (client.phase !== 'open') return;
  const view = client.rt.view();
  const me = view.users.get(client.me?.id ?? 0);
  if (me === undefined) return fail(client, out, 400, 'Chat not found', 0);
  if (out.resent) {
    // Telegram keeps every random_id it was sent: the same one again returns the message it already has.
    const sent = client.rt.history().sentWithRandomId(me.id, out.randomId);
    if (sent !== undefined) return succeedAsBefore(client, out, sent);
  }
  if (out.chatId < 0) {
    const group = view.chats.get(out.chatId);
    if (group === undefined) return fail(client, out, 400, 'Chat not found', 0);
    return deliverToGroup(client, out, me, group);
  }
  const target = view.users.get(out.chatId);
  if (target === undefined) return fail(client, out, 400, 'Chat not found', 0);
  const isBot = me.bot !== undefined;
  if (target.deactivated) {
    // The client learns that the user is gone, and its next send is refused locally.
    introduceUser(client, target);
    return fail(client, out, 403, 'User is deactivated', 0);
  }
  if (isBot && (target.bot !== undefined || !target.startedBotIds.has(me.id))) {
    return fail(client, out, 403, "Bot can't initiate conversation with a user", 0);
  }
  if (me.blockedIds.has(target.id)) return fail(client, out, 400, 'YOU_BLOCKED_USER', 0);
  let status: 'delivered' | 'blocked' = 'delivered';
  if (target.blockedIds.has(me.id)) {
    if (isBot || view.config.simulation.blocked_sender_sees === 'error') {
      return fail(client, out, 403, 'USER_IS_BLOCKED', 0);
    }
    status = 'blocked';
  }
  // Writing to oneself (Saved Messages) or to a mutual contact is never "writing to a stranger".
  const mutual =
    target.id === me.id ||
    (target.contactIds.has(me.id) &&
      (me.contactIds.has(target.id) || client.account?.importedContacts.has(target.id) === true));
  if (
    !isBot &&
    target.privacy.new_chats === 'contacts_and_premium' &&
    !target.contactIds.has(me.id) &&
    !me.premium
  ) {
    return fail(client, out, 400, 'PRIVACY_PREMIUM_REQUIRED', 0);
  }
  const account = client.rt.account(me.id);
  const now = client.rt.now();
  if (!isBot && !mutual) {
    const peerFlood = view.config.limits.peer_flood;
    if (
      checkPeerFlood(account, target.id, peerFlood.max_new_strangers, peerFlood.window_seconds, now) ===
      'peer_flood'
    ) {
      return fail(client, out, 400, 'PEER_FLOOD', 0);
    }
  }
  floodControlled(client, out, me, target.id, () => succeed(client, out, status));
}

/** A message to a supergroup or channel: membership (and admin rights in a channel), then flood control. */
function deliverToGroup(client: SimClient, out: Outgoing, me: UserView, group: ChatView): void {
  const error = serverWriteError(group, me.id);
  if (error !== undefined) {
    // TDLib reloads the chat after such an error: the client learns its real status.
    introduceSupergroup(client, group);
    return fail(client, out, 400, error, 0);
  }
  floodControlled(client, out, me, group.chatId, () => succeed(client, out, 'delivered', group));
}

/**
 * The account's and the chat's send buckets. A wait up to TDLib's limit is waited out (the message leaves
 * then, and the next one queues behind it), a longer one fails with 429.
 */
function floodControlled(
  client: SimClient,
  out: Outgoing,
  me: UserView,
  chatKey: number,
  send: () => void,
): void {
  const view = client.rt.view();
  const account = client.rt.account(me.id);
  const now = client.rt.now();
  const limits = me.bot !== undefined ? view.config.limits.bot : view.config.limits.user;
  const accountBucket = account.bucket('send', limits.account, now);
  const chatBucket = account.chatBucket(chatKey, limits.chat, now);
  const probeAccount = copyBucket(accountBucket, PROBE_ACCOUNT);
  const probeChat = copyBucket(chatBucket, PROBE_CHAT);
  const wait = Math.max(
    takeToken(probeAccount, limits.account, now, true),
    takeToken(probeChat, limits.chat, now, true),
  );
  if (wait > view.config.limits.tdlib_flood_wait_limit_seconds) {
    const seconds = Math.max(1, Math.ceil(wait));
    // Logged so a test can check, from another process, that the app waited before sending again.
    client.rt.event({ type: 'flood_wait', user_id: me.id, retry_after: seconds, chat_id: chatKey });
    return fail(client, out, 429, `Too Many Requests: retry after ${seconds}`, seconds);
  }
  copyBucket(probeAccount, accountBucket);
  copyBucket(probeChat, chatBucket);
  const injected = injectedSendError(client, view.config.faults);
  if (injected !== undefined) return fail(client, out, injected.code, injected.message, 0);
  if (wait === 0) return send();
  client.rt.scheduler.after(wait * 1000, send);
}

function injectedSendError(
  client: SimClient,
  faults: {
    readonly error_rate: { readonly default: number; readonly methods: Readonly<Record<string, number>> };
    readonly error: { readonly code: number; readonly message: string };
  },
): { code: number; message: string } | undefined {
  const rate = faults.error_rate.methods['sendMessage'] ?? faults.error_rate.default;
  if (!errorFires(client.rt, rate)) return undefined;
  return faults.error;
}

function succeed(client: SimClient, out: Outgoing, status: 'delivered' | 'blocked', group?: ChatView): void {
  if (client.phase !== 'open') return;
  const me = client.me;
  if (me === undefined) return;
  let id: number;
  if (group !== undefined) {
    id = nextGroupMessageId(client.rt.world, group) * MESSAGE_ID_SHIFT;
  } else {
    const account = client.rt.account(me.id);
    id = account.nextMessageId++ * MESSAGE_ID_SHIFT;
    account.dirty = true;
  }
  client.rt.recordDelivery({
    at: Date.now(),
    from: me.id,
    to: out.chatId,
    chat_id: out.chatId,
    message_id: id,
    text: out.text.text,
    sender_kind: me.bot === undefined ? 'user' : 'bot',
    status,
    auth_key: client.session?.auth_key ?? '',
    pid: process.pid,
    date: out.date,
    random_id: out.randomId,
    entities: out.text.entities as unknown as Json[],
  });
  finishSucceeded(client, out, id, out.date);
}

/** A re-sent message the server already had: success with the message it has, nothing delivered again. */
function succeedAsBefore(client: SimClient, out: Outgoing, sent: HistoryEntry): void {
  finishSucceeded(client, out, sent.id, sent.date);
}

function finishSucceeded(client: SimClient, out: Outgoing, id: number, date: number): void {
  client.pendingSends?.remove(out.randomId);
  client.unsentIds.delete(out.pendingId);
  client.update(O.updateMessageSendSucceeded(messageOf(client, out, id, undefined, date), out.pendingId));
  if (client.rt.view().config.simulation.chat_updates) {
    client.update(
      O.updateChatLastMessage(out.chatId, messageOf(client, out, id, undefined, date), O.chatOrder(date, id)),
    );
  }
}

/**
 * TDLib's can_resend_message: only a flood wait (429) and a message too old to be re-sent automatically
 * (of the errors the simulator produces) leave a failed message that resendMessages accepts.
 */
function canRetry(code: number, message: string): boolean {
  return code === 429 || message === TOO_OLD_TO_RESEND;
}

function fail(client: SimClient, out: Outgoing, code: number, message: string, retryAfter: number): void {
  client.pendingSends?.remove(out.randomId);
  const err = O.error(code, message);
  const retry = canRetry(code, message);
  const failed = messageOf(
    client,
    out,
    out.pendingId,
    O.failedState(O.error(code, message), retryAfter, retry),
  );
  client.update(O.updateMessageSendFailed(failed, out.pendingId, err));
  if (client.rt.view().config.simulation.chat_updates) {
    const again = messageOf(
      client,
      out,
      out.pendingId,
      O.failedState(O.error(code, message), retryAfter, retry),
    );
    client.update(O.updateChatLastMessage(out.chatId, again, O.chatOrder(out.date, out.pendingId)));
  }
}
