/**
 * Builders for the TDLib objects the simulator emits. Each is typed against TDLib's schema (tdlib-types,
 * 1.8.65) so the compiler checks every field; where 1.8.67 differs, the difference is spelled out here and
 * checked against the real libtdjson by the conformance suite. Objects are built fresh on every call:
 * consumers own what they receive, exactly as with objects parsed from libtdjson's JSON.
 */
import type { Td, Wire } from '../tdlib/types.js';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

export type TdUser = Wire<Td.user>;
export type TdChat = Wire<Td.chat>;
export type TdFormattedText = Wire<Td.formattedText>;
export type TdTextEntity = Wire<Td.textEntity>;
export type TdError = Wire<Td.error>;
export type TdAuthorizationState = Wire<Td.AuthorizationState>;
export type TdConnectionState = Wire<Td.ConnectionState>;
export type TdLinkPreviewOptions = Wire<Td.linkPreviewOptions>;
export type TdAddedProxy = Wire<Td.addedProxy>;
export type TdProxy = Wire<Td.proxy>;
export type TdOptionValue = Wire<Td.OptionValue>;

/** 1.8.67 renamed message.is_paid_ton_suggested_post (1.8.65) to is_paid_gram_suggested_post. */
export type TdMessage = Omit<Wire<Td.message>, 'is_paid_ton_suggested_post'> & {
  readonly is_paid_gram_suggested_post: boolean;
};
export type TdMessageSendingState = Wire<Td.messageSendingStatePending> | Wire<Td.messageSendingStateFailed>;

export const TDLIB_VERSION = '1.8.67';
/** What getOption("commit_hash") answers; the prebuilt library says GITDIR-NOTFOUND, we say who we are. */
export const SIMULATOR_COMMIT_HASH = 'simulator';

export function error(code: number, message: string): TdError {
  return { '@type': 'error', code, message };
}

export function ok(): Wire<Td.ok> {
  return { '@type': 'ok' };
}

export function optionString(value: string): Wire<Td.optionValueString> {
  return { '@type': 'optionValueString', value };
}

/** int64 option values travel as strings in TDLib's JSON. */
export function optionInteger(value: number): Wire<Td.optionValueInteger> {
  return { '@type': 'optionValueInteger', value: String(value) };
}

export function optionBoolean(value: boolean): Wire<Td.optionValueBoolean> {
  return { '@type': 'optionValueBoolean', value };
}

export function optionEmpty(): Wire<Td.optionValueEmpty> {
  return { '@type': 'optionValueEmpty' };
}

export function updateOption(name: string, value: TdOptionValue): Wire<Td.updateOption> {
  return { '@type': 'updateOption', name, value };
}

export function updateAuthorizationState(state: TdAuthorizationState): Wire<Td.updateAuthorizationState> {
  return { '@type': 'updateAuthorizationState', authorization_state: state };
}

export function updateConnectionState(state: TdConnectionState['@type']): Wire<Td.updateConnectionState> {
  return { '@type': 'updateConnectionState', state: { '@type': state } };
}

export function waitCodeState(phoneNumber: string, codeLength: number): Wire<Td.authorizationStateWaitCode> {
  return {
    '@type': 'authorizationStateWaitCode',
    code_info: {
      '@type': 'authenticationCodeInfo',
      phone_number: phoneNumber,
      type: { '@type': 'authenticationCodeTypeSms', length: codeLength },
      next_type: { '@type': 'authenticationCodeTypeCall', length: codeLength },
      timeout: 120,
    },
  };
}

export function waitPasswordState(
  hint: string,
  hasRecoveryEmail: boolean,
): Wire<Td.authorizationStateWaitPassword> {
  return {
    '@type': 'authorizationStateWaitPassword',
    password_hint: hint,
    has_recovery_email_address: hasRecoveryEmail,
    has_passport_data: false,
    recovery_email_address_pattern: '',
  };
}

export function formattedText(text: string, entities: TdTextEntity[]): TdFormattedText {
  return { '@type': 'formattedText', text, entities };
}

export interface UserFacts {
  readonly id: number;
  readonly first_name: string;
  readonly last_name: string;
  readonly username?: string;
  /** Digits only; '' when the viewer may not see it. */
  readonly phone: string;
  readonly is_bot: boolean;
  readonly deleted: boolean;
  readonly premium: boolean;
  readonly is_contact: boolean;
  readonly is_mutual_contact: boolean;
  readonly restricts_new_chats: boolean;
}

export function user(f: UserFacts): TdUser {
  const deleted = f.deleted;
  return {
    '@type': 'user',
    id: f.id,
    first_name: deleted ? '' : f.first_name,
    last_name: deleted ? '' : f.last_name,
    ...(f.username !== undefined && !deleted
      ? {
          usernames: {
            '@type': 'usernames',
            active_usernames: [f.username],
            disabled_usernames: [],
            editable_username: f.username,
            collectible_usernames: [],
          },
        }
      : {}),
    phone_number: deleted ? '' : f.phone,
    status:
      f.is_bot || deleted
        ? { '@type': 'userStatusEmpty' }
        : { '@type': 'userStatusRecently', by_my_privacy_settings: false },
    accent_color_id: f.id % 7,
    background_custom_emoji_id: '0',
    profile_accent_color_id: -1,
    profile_background_custom_emoji_id: '0',
    is_contact: f.is_contact,
    is_mutual_contact: f.is_mutual_contact,
    is_close_friend: false,
    is_premium: f.premium,
    is_support: false,
    restricts_new_chats: f.restricts_new_chats,
    paid_message_star_count: 0,
    have_access: !deleted,
    type: deleted
      ? { '@type': 'userTypeDeleted' }
      : f.is_bot
        ? {
            '@type': 'userTypeBot',
            can_be_edited: false,
            can_join_groups: true,
            can_read_all_group_messages: false,
            has_main_web_app: false,
            has_topics: false,
            allows_users_to_create_topics: false,
            can_manage_bots: false,
            is_inline: false,
            inline_query_placeholder: '',
            supports_guest_queries: false,
            is_guard: false,
            need_location: false,
            can_connect_to_business: false,
            can_be_added_to_attachment_menu: false,
            active_user_count: 0,
          }
        : { '@type': 'userTypeRegular' },
    language_code: '',
    added_to_attachment_menu: false,
  };
}

export function updateUser(u: TdUser): Wire<Td.updateUser> {
  return { '@type': 'updateUser', user: u };
}

/** TDLib orders chats by an int64 built from the last message's date and id. */
export function chatOrder(date: number, messageId: number): string {
  return (BigInt(date) * 4294967296n + BigInt(messageId % 4294967296)).toString();
}

export function chatPositions(order: string | undefined): Wire<Td.chatPosition>[] {
  if (order === undefined) return [];
  return [{ '@type': 'chatPosition', list: { '@type': 'chatListMain' }, order, is_pinned: false }];
}

export interface ChatFacts {
  readonly user_id: number;
  readonly title: string;
  readonly is_bot: boolean;
  readonly blocked_by_me: boolean;
  readonly order?: string;
}

export function privateChat(f: ChatFacts): TdChat {
  return chat({
    id: f.user_id,
    type: { '@type': 'chatTypePrivate', user_id: f.user_id },
    title: f.title,
    can: true,
    order: f.order,
    blocked_by_me: f.blocked_by_me,
    can_be_deleted_for_all_users: !f.is_bot,
    can_be_reported: f.is_bot,
  });
}

export type TdSupergroup = Wire<Td.supergroup>;
export type TdChatMemberStatus = Wire<Td.ChatMemberStatus>;

export interface SupergroupFacts {
  readonly id: number;
  readonly chat_id: number;
  readonly title: string;
  readonly username: string;
  readonly is_channel: boolean;
  readonly member_count: number;
  readonly status: 'admin' | 'member' | 'left';
}

function memberStatus(status: SupergroupFacts['status'], isChannel: boolean): TdChatMemberStatus {
  if (status === 'member') return { '@type': 'chatMemberStatusMember', member_until_date: 0 };
  if (status === 'left') return { '@type': 'chatMemberStatusLeft' };
  return {
    '@type': 'chatMemberStatusAdministrator',
    can_be_edited: false,
    rights: {
      '@type': 'chatAdministratorRights',
      can_manage_chat: true,
      can_change_info: false,
      can_post_messages: isChannel,
      can_edit_messages: isChannel,
      can_delete_messages: false,
      can_invite_users: true,
      can_restrict_members: false,
      can_pin_messages: !isChannel,
      can_manage_topics: false,
      can_promote_members: false,
      can_manage_video_chats: false,
      can_post_stories: false,
      can_edit_stories: false,
      can_delete_stories: false,
      can_manage_direct_messages: false,
      can_manage_tags: false,
      is_anonymous: false,
    },
  };
}

/** The supergroup object (updateSupergroup) of a public supergroup or channel, as one user sees it. */
export function supergroup(f: SupergroupFacts): TdSupergroup {
  return {
    '@type': 'supergroup',
    id: f.id,
    usernames: {
      '@type': 'usernames',
      active_usernames: [f.username],
      disabled_usernames: [],
      editable_username: f.username,
      collectible_usernames: [],
    },
    date: 1_600_000_000,
    status: memberStatus(f.status, f.is_channel),
    member_count: f.member_count,
    boost_level: 0,
    has_automatic_translation: false,
    has_linked_chat: false,
    has_location: false,
    sign_messages: false,
    show_message_sender: false,
    // Only discussion groups may let non-members write; a plain public supergroup needs joining.
    join_to_send_messages: true,
    join_by_request: false,
    is_slow_mode_enabled: false,
    is_channel: f.is_channel,
    is_broadcast_group: false,
    is_forum: false,
    is_direct_messages_group: false,
    is_administered_direct_messages_group: false,
    has_direct_messages_group: false,
    has_forum_tabs: false,
    paid_message_star_count: 0,
  };
}

export function updateSupergroup(s: TdSupergroup): Wire<Td.updateSupergroup> {
  return { '@type': 'updateSupergroup', supergroup: s };
}

/** The chat object of a public supergroup or channel. */
export function supergroupChat(f: SupergroupFacts & { readonly order?: string }): TdChat {
  return chat({
    id: f.chat_id,
    type: { '@type': 'chatTypeSupergroup', supergroup_id: f.id, is_channel: f.is_channel },
    title: f.title,
    // chat.permissions are what non-administrator members may do: nothing in a channel.
    can: !f.is_channel,
    order: f.order,
    blocked_by_me: false,
    can_be_deleted_for_all_users: false,
    can_be_reported: f.status !== 'admin',
  });
}

interface AnyChatFacts {
  readonly id: number;
  readonly type: TdChat['type'];
  readonly title: string;
  readonly can: boolean;
  readonly order: string | undefined;
  readonly blocked_by_me: boolean;
  readonly can_be_deleted_for_all_users: boolean;
  readonly can_be_reported: boolean;
}

function chat(f: AnyChatFacts): TdChat {
  const can = f.can;
  return {
    '@type': 'chat',
    id: f.id,
    type: f.type,
    title: f.title,
    accent_color_id: Math.abs(f.id) % 7,
    background_custom_emoji_id: '0',
    profile_accent_color_id: -1,
    profile_background_custom_emoji_id: '0',
    permissions: {
      '@type': 'chatPermissions',
      can_send_basic_messages: can,
      can_send_audios: can,
      can_send_documents: can,
      can_send_photos: can,
      can_send_videos: can,
      can_send_video_notes: can,
      can_send_voice_notes: can,
      can_send_polls: can,
      can_send_other_messages: can,
      can_add_link_previews: can,
      can_react_to_messages: can,
      can_edit_tag: false,
      can_change_info: false,
      can_invite_users: false,
      can_pin_messages: can,
      can_create_topics: false,
    },
    positions: chatPositions(f.order),
    chat_lists: f.order === undefined ? [] : [{ '@type': 'chatListMain' }],
    ...(f.blocked_by_me ? { block_list: { '@type': 'blockListMain' } } : {}),
    has_protected_content: false,
    is_translatable: false,
    is_marked_as_unread: false,
    view_as_topics: false,
    has_scheduled_messages: false,
    can_be_deleted_only_for_self: true,
    can_be_deleted_for_all_users: f.can_be_deleted_for_all_users,
    can_be_reported: f.can_be_reported,
    default_disable_notification: false,
    unread_count: 0,
    last_read_inbox_message_id: 0,
    last_read_outbox_message_id: 0,
    unread_mention_count: 0,
    unread_reaction_count: 0,
    unread_poll_vote_count: 0,
    notification_settings: {
      '@type': 'chatNotificationSettings',
      use_default_mute_for: true,
      mute_for: 0,
      use_default_sound: true,
      sound_id: '0',
      use_default_show_preview: true,
      show_preview: false,
      use_default_mute_stories: true,
      mute_stories: false,
      use_default_story_sound: true,
      story_sound_id: '0',
      use_default_show_story_poster: true,
      show_story_poster: false,
      use_default_disable_pinned_message_notifications: true,
      disable_pinned_message_notifications: false,
      use_default_disable_mention_notifications: true,
      disable_mention_notifications: false,
    },
    available_reactions: { '@type': 'chatAvailableReactionsAll', max_reaction_count: 11 },
    message_auto_delete_time: 0,
    video_chat: { '@type': 'videoChat', group_call_id: 0, has_participants: false },
    reply_markup_message_id: 0,
    client_data: '',
  };
}

export function updateNewChat(chat: TdChat): Wire<Td.updateNewChat> {
  return { '@type': 'updateNewChat', chat };
}

export interface MessageFacts {
  readonly id: number;
  readonly sender_user_id: number;
  /** A channel post is sent on behalf of the channel: sender_id is messageSenderChat(chat_id). */
  readonly is_channel_post?: boolean;
  /** Default true: the simulator's clients mostly see their own messages. */
  readonly is_outgoing?: boolean;
  readonly chat_id: number;
  readonly date: number;
  /** When the message was last edited (Unix seconds); 0 or absent: never. */
  readonly edit_date?: number;
  readonly text: TdFormattedText;
  readonly link_preview_options?: TdLinkPreviewOptions;
  readonly sending_state?: TdMessageSendingState;
}

/** Hot path (several per send): one fixed-shape literal, optional fields added after, no spreads. */
export function message(f: MessageFacts): TdMessage {
  const content: Mutable<Wire<Td.messageText>> = { '@type': 'messageText', text: f.text };
  if (f.link_preview_options !== undefined) content.link_preview_options = f.link_preview_options;
  const m: Mutable<TdMessage> = {
    '@type': 'message',
    id: f.id,
    sender_id:
      f.is_channel_post === true
        ? { '@type': 'messageSenderChat', chat_id: f.chat_id }
        : { '@type': 'messageSenderUser', user_id: f.sender_user_id },
    chat_id: f.chat_id,
    is_outgoing: f.is_outgoing ?? true,
    is_pinned: false,
    is_from_offline: false,
    can_be_saved: true,
    has_timestamped_media: true,
    is_channel_post: f.is_channel_post === true,
    is_paid_star_suggested_post: false,
    is_paid_gram_suggested_post: false,
    contains_unread_mention: false,
    contains_unread_poll_votes: false,
    date: f.date,
    edit_date: f.edit_date ?? 0,
    unread_reactions: [],
    self_destruct_in: 0,
    auto_delete_in: 0,
    via_bot_user_id: 0,
    sender_business_bot_user_id: 0,
    sender_boost_count: 0,
    sender_tag: '',
    paid_message_star_count: 0,
    author_signature: '',
    media_album_id: '0',
    effect_id: '0',
    summary_language_code: '',
    content,
  };
  if (f.sending_state !== undefined) m.sending_state = f.sending_state;
  return m;
}

export function pendingState(sendingId: number): Wire<Td.messageSendingStatePending> {
  return { '@type': 'messageSendingStatePending', sending_id: sendingId };
}

export function failedState(
  err: TdError,
  retryAfter: number,
  canRetry: boolean,
): Wire<Td.messageSendingStateFailed> {
  return {
    '@type': 'messageSendingStateFailed',
    error: err,
    can_retry: canRetry,
    need_another_sender: false,
    need_another_reply_quote: false,
    need_drop_reply: false,
    required_paid_message_star_count: 0,
    retry_after: retryAfter,
  };
}

export function messages(list: TdMessage[]): {
  readonly '@type': 'messages';
  readonly total_count: number;
  readonly messages: TdMessage[];
} {
  // TDLib's getChatHistory answers get_messages_object(-1, ...): total_count is the number returned.
  return { '@type': 'messages', total_count: list.length, messages: list };
}

export function foundChatMessages(
  totalCount: number,
  list: TdMessage[],
  nextFromMessageId: number,
): {
  readonly '@type': 'foundChatMessages';
  readonly total_count: number;
  readonly messages: TdMessage[];
  readonly next_from_message_id: number;
} {
  return {
    '@type': 'foundChatMessages',
    total_count: totalCount,
    messages: list,
    next_from_message_id: nextFromMessageId,
  };
}

export function updateNewMessage(m: TdMessage): {
  readonly '@type': 'updateNewMessage';
  readonly message: TdMessage;
} {
  return { '@type': 'updateNewMessage', message: m };
}

export function updateChatLastMessage(
  chatId: number,
  m: TdMessage,
  order: string,
): {
  '@type': 'updateChatLastMessage';
  chat_id: number;
  last_message: TdMessage;
  positions: Wire<Td.chatPosition>[];
} {
  return {
    '@type': 'updateChatLastMessage',
    chat_id: chatId,
    last_message: m,
    positions: chatPositions(order),
  };
}

export function updateMessageSendSucceeded(
  m: TdMessage,
  oldMessageId: number,
): { '@type': 'updateMessageSendSucceeded'; message: TdMessage; old_message_id: number } {
  return { '@type': 'updateMessageSendSucceeded', message: m, old_message_id: oldMessageId };
}

export function updateMessageSendFailed(
  m: TdMessage,
  oldMessageId: number,
  err: TdError,
): { '@type': 'updateMessageSendFailed'; message: TdMessage; old_message_id: number; error: TdError } {
  return { '@type': 'updateMessageSendFailed', message: m, old_message_id: oldMessageId, error: err };
}

/** The content of a text message (what updateMessageContent carries after an edit). */
export function messageTextContent(text: TdFormattedText): Wire<Td.messageText> {
  return { '@type': 'messageText', text };
}

export function updateMessageContent(
  chatId: number,
  messageId: number,
  content: Wire<Td.messageText>,
): Wire<Td.updateMessageContent> {
  return { '@type': 'updateMessageContent', chat_id: chatId, message_id: messageId, new_content: content };
}

/** reply_markup is left out: TDLib's JSON omits a null object field, and simulated messages have none. */
export function updateMessageEdited(
  chatId: number,
  messageId: number,
  editDate: number,
): Wire<Td.updateMessageEdited> {
  return { '@type': 'updateMessageEdited', chat_id: chatId, message_id: messageId, edit_date: editDate };
}

export function updateServiceNotification(type: string, text: string): Wire<Td.updateServiceNotification> {
  return {
    '@type': 'updateServiceNotification',
    type,
    content: { '@type': 'messageText', text: formattedText(text, []) },
  };
}

export function addedProxy(
  id: number,
  proxy: TdProxy,
  enabled: boolean,
  lastUsedDate: number,
  comment: string,
): TdAddedProxy {
  return { '@type': 'addedProxy', id, last_used_date: lastUsedDate, is_enabled: enabled, comment, proxy };
}
