/**
 * Public supergroups and channels as recipients. What a client knows of such a chat (its member status)
 * comes from the last time it looked it up (searchPublicChat, getChat) or from a refused send; TDLib's
 * local check on sendMessage uses that knowledge, the server's check uses the world as it is now:
 *
 *   not a member        locally 400 "Have no write access to the chat" (no write access to the peer);
 *                       on the server 403 CHAT_WRITE_FORBIDDEN
 *   channel, no admin   locally 400 "Need administrator rights in the channel chat";
 *                       on the server 403 CHAT_ADMIN_REQUIRED
 *
 * (TDLib's process_send_message_fail_error reports both server errors as 400.)
 *
 * Message ids in a supergroup or channel belong to the chat (one sequence for every sender, in every
 * process), not to the sender as in private chats: a counter in state/chats/<id>.json under a mutex.
 */
import { join } from 'node:path';
import type { SimClient } from './client.js';
import * as O from './objects.js';
import { ensureDir, isRecord, readJson, writeJsonAtomic } from './store/files.js';
import { withFileMutex } from './store/locks.js';
import type { ChatView, World } from './world.js';

export type MemberRole = O.SupergroupFacts['status'];

export function roleOf(chat: ChatView, userId: number): MemberRole {
  if (chat.adminIds.has(userId)) return 'admin';
  return chat.memberIds.has(userId) ? 'member' : 'left';
}

function facts(chat: ChatView, role: MemberRole): O.SupergroupFacts {
  return {
    id: chat.id,
    chat_id: chat.chatId,
    title: chat.title,
    username: chat.username,
    is_channel: chat.kind === 'channel',
    member_count: chat.memberIds.size,
    status: role,
  };
}

export function supergroupChatObject(chat: ChatView, role: MemberRole): O.TdChat {
  return O.supergroupChat(facts(chat, role));
}

/**
 * Tells the client about the chat as the world has it now: updateSupergroup when its status changed (or
 * the first time), then updateNewChat the first time, as TDLib does before any update naming the chat.
 */
export function introduceSupergroup(client: SimClient, chat: ChatView): MemberRole {
  const role = roleOf(chat, client.me?.id ?? 0);
  if (client.knownSupergroups.get(chat.chatId) !== role) {
    client.knownSupergroups.set(chat.chatId, role);
    client.update(O.updateSupergroup(O.supergroup(facts(chat, role))));
  }
  if (!client.knownChats.has(chat.chatId)) {
    client.knownChats.add(chat.chatId);
    client.update(O.updateNewChat(supergroupChatObject(chat, role)));
  }
  return role;
}

/** TDLib's can_send_message for a supergroup or channel, from what the client knows of its status. */
export function localWriteError(chat: ChatView, known: MemberRole | undefined): string | undefined {
  if (known === undefined || known === 'left') return 'Have no write access to the chat';
  if (chat.kind === 'channel' && known !== 'admin') return 'Need administrator rights in the channel chat';
  return undefined;
}

/** The server's verdict on a message to the chat from `userId` (as TDLib reports it after its remaps). */
export function serverWriteError(chat: ChatView, userId: number): string | undefined {
  const role = roleOf(chat, userId);
  if (role === 'left') return 'CHAT_WRITE_FORBIDDEN';
  if (chat.kind === 'channel' && role !== 'admin') return 'CHAT_ADMIN_REQUIRED';
  return undefined;
}

/** The next server message id of the chat (shared by every sender and process). */
export function nextGroupMessageId(world: World, chat: ChatView): number {
  const dir = world.path('chats');
  ensureDir(dir);
  const file = join(dir, `${chat.id}.json`);
  return withFileMutex(join(dir, `${chat.id}.lock`), () => {
    const current = readJson(file);
    const next =
      isRecord(current) && typeof current.next_message_id === 'number' ? current.next_message_id : 1;
    writeJsonAtomic(file, { next_message_id: next + 1 });
    return next;
  });
}
