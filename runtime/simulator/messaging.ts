/**
 * Recipients and sending. sendMessage answers at once with the temporary message
 * (messageSendingStatePending); the server's verdict arrives later as updateMessageSendSucceeded or
 * updateMessageSendFailed. Server-side rules, in the order they are checked: the recipient exists and is
 * active, bots only write to users who started them, blocks, privacy, PEER_FLOOD for users writing to
 * strangers, then flood control (per account, per chat). Flood waits up to TDLib's own limit (60 s by
 * default) are waited out silently, as TDLib does; longer ones fail with 429 "Too Many Requests: retry
 * after N". Error codes and texts are TDLib's after its remapping (MessagesManager's
 * process_send_message_fail_error): e.g. INPUT_USER_DEACTIVATED becomes 403 "User is deactivated".
 */
import type { SimClient } from './client.js';
import { withAutoEntities } from './entities.js';
import { checkPeerFlood, copyBucket, takeToken, type Bucket } from './limits.js';
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
import { normalizePhone, type RateLimit } from './world-schema.js';
import type { UserView } from './world.js';

const MESSAGE_ID_SHIFT = 1048576;
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
function introduceUser(client: SimClient, user: UserView): void {
  const seenDeleted = client.knownUsers.get(user.id);
  if (seenDeleted === user.deactivated) return;
  client.knownUsers.set(user.id, user.deactivated);
  client.update(O.updateUser(userObject(client, user)));
}

function introduceChat(client: SimClient, user: UserView): void {
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

function floodError(seconds: number): TdApiError {
  return new TdApiError(429, `Too Many Requests: retry after ${Math.max(1, Math.ceil(seconds))}`);
}

/**
 * A flood-limited lookup: short waits are absorbed (the answer comes later, like TDLib's automatic retry),
 * long ones are reported.
 */
function limitedCall(
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

function requireMe(client: SimClient): UserView {
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
      const user = currentView(client, id);
      if (!client.knownChats.has(id) || user === undefined) throw new TdApiError(400, 'Chat not found');
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

function readText(content: JsonObject): O.TdFormattedText {
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

function readLinkPreviewOptions(content: JsonObject): O.TdLinkPreviewOptions | undefined {
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
}

function messageOf(
  client: SimClient,
  out: Outgoing,
  id: number,
  state?: O.TdMessageSendingState,
): O.TdMessage {
  return O.message({
    id,
    sender_user_id: client.me?.id ?? 0,
    chat_id: out.chatId,
    date: out.date,
    text: out.text,
    ...(out.linkPreview === undefined ? {} : { link_preview_options: out.linkPreview }),
    ...(state === undefined ? {} : { sending_state: state }),
  });
}

function sendMessage(client: SimClient, request: JsonObject, extra: Json | undefined): void {
  const me = requireMe(client);
  const chatId = int53(request, 'chat_id');
  if (!client.knownChats.has(chatId)) throw new TdApiError(400, 'Chat not found');
  const content = object(request, 'input_message_content');
  if (content === null) throw new TdApiError(400, 'Input message content must be non-empty');
  if (content['@type'] !== 'inputMessageText') {
    throw new TdApiError(
      400,
      `The Telegram simulator sends only inputMessageText, not ${String(content['@type'])}`,
    );
  }
  const text = readText(content);
  if (client.knownUsers.get(chatId) === true) throw new TdApiError(400, 'Have no write access to the chat');
  const options = object(request, 'options', ['messageSendOptions']);
  const sendingId = options === null ? 0 : int32(options, 'sending_id');
  const account = client.rt.account(me.id);
  const seq = (client.localSeq = (client.localSeq % (MESSAGE_ID_SHIFT - 1)) + 1);
  const out: Outgoing = {
    chatId,
    pendingId: account.nextMessageId * MESSAGE_ID_SHIFT + seq,
    sendingId,
    date: Math.floor(client.rt.now() / 1000),
    text,
    linkPreview: readLinkPreviewOptions(content),
  };
  const chatUpdates = client.rt.view().config.simulation.chat_updates;
  if (chatUpdates) {
    client.update(O.updateNewMessage(messageOf(client, out, out.pendingId, O.pendingState(sendingId))));
    client.update(
      O.updateChatLastMessage(
        chatId,
        messageOf(client, out, out.pendingId, O.pendingState(sendingId)),
        O.chatOrder(out.date, out.pendingId),
      ),
    );
  }
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

/** The server's verdict on one message, applied after the network latency. */
function deliver(client: SimClient, out: Outgoing): void {
  if (client.phase !== 'open') return;
  const view = client.rt.view();
  const me = view.users.get(client.me?.id ?? 0);
  const target = view.users.get(out.chatId);
  if (me === undefined || target === undefined) return fail(client, out, 400, 'Chat not found', 0);
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
  const limits = isBot ? view.config.limits.bot : view.config.limits.user;
  const accountBucket = account.bucket('send', limits.account, now);
  const chatBucket = account.chatBucket(target.id, limits.chat, now);
  const probeAccount = copyBucket(accountBucket, PROBE_ACCOUNT);
  const probeChat = copyBucket(chatBucket, PROBE_CHAT);
  const wait = Math.max(
    takeToken(probeAccount, limits.account, now, true),
    takeToken(probeChat, limits.chat, now, true),
  );
  if (wait > view.config.limits.tdlib_flood_wait_limit_seconds) {
    const seconds = Math.max(1, Math.ceil(wait));
    return fail(client, out, 429, `Too Many Requests: retry after ${seconds}`, seconds);
  }
  copyBucket(probeAccount, accountBucket);
  copyBucket(probeChat, chatBucket);
  const injected = injectedSendError(client, view.config.faults);
  if (injected !== undefined) return fail(client, out, injected.code, injected.message, 0);
  if (wait === 0) return succeed(client, out, status);
  client.rt.scheduler.after(wait * 1000, () => succeed(client, out, status));
}

function injectedSendError(
  client: SimClient,
  faults: {
    readonly error_rate: { readonly default: number; readonly methods: Readonly<Record<string, number>> };
    readonly error: { readonly code: number; readonly message: string };
  },
): { code: number; message: string } | undefined {
  const rate = faults.error_rate.methods['sendMessage'] ?? faults.error_rate.default;
  if (rate <= 0 || client.rt.random() >= rate) return undefined;
  return faults.error;
}

function succeed(client: SimClient, out: Outgoing, status: 'delivered' | 'blocked'): void {
  if (client.phase !== 'open') return;
  const me = client.me;
  if (me === undefined) return;
  const account = client.rt.account(me.id);
  const serverId = account.nextMessageId++;
  account.dirty = true;
  const id = serverId * MESSAGE_ID_SHIFT;
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
  });
  client.update(O.updateMessageSendSucceeded(messageOf(client, out, id), out.pendingId));
  if (client.rt.view().config.simulation.chat_updates) {
    client.update(O.updateChatLastMessage(out.chatId, messageOf(client, out, id), O.chatOrder(out.date, id)));
  }
}

function fail(client: SimClient, out: Outgoing, code: number, message: string, retryAfter: number): void {
  const err = O.error(code, message);
  const canRetry = code === 429 || code >= 500;
  const failed = messageOf(
    client,
    out,
    out.pendingId,
    O.failedState(O.error(code, message), retryAfter, canRetry),
  );
  client.update(O.updateMessageSendFailed(failed, out.pendingId, err));
  if (client.rt.view().config.simulation.chat_updates) {
    const again = messageOf(
      client,
      out,
      out.pendingId,
      O.failedState(O.error(code, message), retryAfter, canRetry),
    );
    client.update(O.updateChatLastMessage(out.chatId, again, O.chatOrder(out.date, out.pendingId)));
  }
}
