/**
 * The TDLib side of sending one campaign message: resolve a recipient to a chat, send the message, wait for
 * TDLib's final word on it (updateMessageSendSucceeded / updateMessageSendFailed), and, after a crash, ask
 * Telegram whether a send whose outcome was lost went through (users only: bots cannot read history).
 */
import type { Campaign, Recipient } from '../../crds/index.js';
import type { TdObject } from '../tdlib/backend.js';
import type { TdClient } from '../tdlib/client.js';
import { TdError } from '../tdlib/errors.js';
import type { TdSendError } from './classify.js';

export type SendResult = { ok: true; messageId: number } | { ok: false; error: TdSendError };

/** The formatted text of a campaign's message, parsed by TDLib itself (td_execute parseTextEntities). */
export function formattedText(
  message: Campaign['spec']['message'],
  execute: (request: TdObject) => TdObject,
): TdObject {
  const mode = message.parseMode ?? 'Plain';
  if (mode === 'Plain') return { '@type': 'formattedText', text: message.text, entities: [] };
  const parsed = execute({
    '@type': 'parseTextEntities',
    text: message.text,
    parse_mode:
      mode === 'HTML' ? { '@type': 'textParseModeHTML' } : { '@type': 'textParseModeMarkdown', version: 2 },
  });
  if (parsed['@type'] === 'error')
    throw new Error(`spec.message.text cannot be parsed as ${mode}: ${String(parsed.message ?? '')}`);
  return parsed;
}

export function sendMessageRequest(
  chatId: number,
  text: TdObject,
  message: Campaign['spec']['message'],
): TdObject {
  return {
    '@type': 'sendMessage',
    chat_id: chatId,
    input_message_content: {
      '@type': 'inputMessageText',
      text,
      link_preview_options: {
        '@type': 'linkPreviewOptions',
        is_disabled: message.disableLinkPreview ?? false,
      },
      clear_draft: false,
    },
    options: {
      '@type': 'messageSendOptions',
      disable_notification: message.silent ?? false,
      protect_content: message.protectContent ?? false,
    },
  };
}

export function editMessageTextRequest(
  chatId: number,
  messageId: number,
  text: TdObject,
  disableLinkPreview: boolean,
): TdObject {
  return {
    '@type': 'editMessageText',
    chat_id: chatId,
    message_id: messageId,
    input_message_content: {
      '@type': 'inputMessageText',
      text,
      link_preview_options: { '@type': 'linkPreviewOptions', is_disabled: disableLinkPreview },
      clear_draft: false,
    },
  };
}

/**
 * What an editMessageText refusal means for the request: 'unchanged' (the message already says exactly
 * this: done), a final outcome (no such message, or not one this account may edit), or undefined (the
 * send rules decide: flood waits, a client that closed, ...).
 */
export function editRefusal(
  error: TdSendError,
): 'unchanged' | { ok: false; code: number; message: string } | undefined {
  if (/MESSAGE_NOT_MODIFIED/i.test(error.message)) return 'unchanged';
  if (/message not found|MESSAGE_ID_INVALID/i.test(error.message))
    return { ok: false, code: 404, message: `MessageNotFound: ${error.message}` };
  if (/can't be edited|MESSAGE_AUTHOR_REQUIRED|MESSAGE_EDIT_TIME_EXPIRED/i.test(error.message))
    return { ok: false, code: 403, message: `MessageNotEditable: ${error.message}` };
  return undefined;
}

const errorOf = (error: unknown): TdSendError =>
  error instanceof TdError
    ? { code: error.code, message: error.message }
    : { code: 0, message: String(error) };

/**
 * Waits for the outcome of the sends of one client: TDLib answers sendMessage with a temporary message,
 * then reports the final one under its old id. An outcome can come before the answer is processed here, so
 * outcomes for unknown ids wait in `early` for a while.
 */
export class SendOutcomes {
  private readonly waiting = new Map<number, (result: SendResult) => void>();
  private readonly early = new Map<number, SendResult>();
  private readonly unsubscribe: () => void;

  constructor(client: TdClient) {
    this.unsubscribe = client.subscribe((update) => this.onUpdate(update as unknown as TdObject));
  }

  close(): void {
    this.unsubscribe();
    for (const resolve of this.waiting.values())
      resolve({ ok: false, error: { code: 0, message: 'client closed' } });
    this.waiting.clear();
  }

  get pending(): number {
    return this.waiting.size;
  }

  private onUpdate(update: TdObject): void {
    const type = update['@type'];
    if (type !== 'updateMessageSendSucceeded' && type !== 'updateMessageSendFailed') return;
    const oldId = Number(update.old_message_id);
    const message = update.message as { id?: number } | undefined;
    const result: SendResult =
      type === 'updateMessageSendSucceeded'
        ? { ok: true, messageId: Number(message?.id ?? 0) }
        : {
            ok: false,
            error: errorOf(
              new TdError(
                Number((update.error as { code?: number })?.code ?? 0),
                String((update.error as { message?: string })?.message ?? ''),
                'sendMessage',
              ),
            ),
          };
    const resolve = this.waiting.get(oldId);
    if (resolve) {
      this.waiting.delete(oldId);
      resolve(result);
    } else {
      this.early.set(oldId, result);
      if (this.early.size > 10_000) this.early.delete(this.early.keys().next().value as number);
    }
  }

  /** Sends and resolves with the final outcome (never rejects; errors are outcomes). */
  async send(client: TdClient, request: TdObject): Promise<SendResult> {
    let temporary: TdObject;
    try {
      temporary = await client.invokeUnchecked(request, { timeoutMs: 120_000 });
    } catch (error) {
      return { ok: false, error: errorOf(error) };
    }
    const id = Number(temporary.id);
    const known = this.early.get(id);
    if (known) {
      this.early.delete(id);
      return known;
    }
    return new Promise<SendResult>((resolve) => this.waiting.set(id, resolve));
  }
}

/** The chat a recipient is reached in, for this sender (lookups are flood-limited: cached by the caller). */
export async function resolveChat(client: TdClient, recipient: Recipient, isBot: boolean): Promise<number> {
  switch (recipient.kind) {
    case 'username':
    case 'chat': {
      const chat = await client.invokeUnchecked({ '@type': 'searchPublicChat', username: recipient.value });
      return Number(chat.id);
    }
    case 'phone': {
      if (isBot) throw new TdError(400, 'The method is not available to bots', 'importContacts');
      const imported = await client.invokeUnchecked({
        '@type': 'importContacts',
        contacts: [
          {
            '@type': 'importedContact',
            phone_number: recipient.value,
            first_name: recipient.value,
            last_name: '',
          },
        ],
      });
      const userId = Number((imported.user_ids as number[] | undefined)?.[0] ?? 0);
      if (!userId) throw new TdError(400, 'PHONE_NOT_REGISTERED', 'importContacts');
      const chat = await client.invokeUnchecked({
        '@type': 'createPrivateChat',
        user_id: userId,
        force: false,
      });
      return Number(chat.id);
    }
    case 'userId': {
      const chat = await client.invokeUnchecked({
        '@type': 'createPrivateChat',
        user_id: Number(recipient.value),
        force: false,
      });
      return Number(chat.id);
    }
    case 'invalid':
      throw new TdError(400, 'INVALID_RECIPIENT', 'resolve');
  }
}

/**
 * Whether this user account's message with `text` is in `chatId` since `since` (Unix seconds): the check
 * that resolves a send whose outcome was lost. Undefined when the history cannot tell (an error).
 */
export async function sentSince(
  client: TdClient,
  chatId: number,
  myUserId: number,
  text: string,
  since: number,
): Promise<boolean | undefined> {
  const found = await sentMessageSince(client, chatId, myUserId, text, since);
  return found === undefined ? undefined : found !== false;
}

/** As sentSince, with the message's id when it is there (false when it is not). */
export async function sentMessageSince(
  client: TdClient,
  chatId: number,
  myUserId: number,
  text: string,
  since: number,
): Promise<number | false | undefined> {
  try {
    // A channel's posts come from the channel itself, not from the admin who wrote them.
    const chat = await client.invokeUnchecked({ '@type': 'getChat', chat_id: chatId });
    const type = chat.type as { '@type'?: string; is_channel?: boolean } | undefined;
    const channel = type?.['@type'] === 'chatTypeSupergroup' && type.is_channel === true;
    const found = await client.invokeUnchecked({
      '@type': 'searchChatMessages',
      chat_id: chatId,
      query: searchQueryOf(text),
      sender_id: channel
        ? { '@type': 'messageSenderChat', chat_id: chatId }
        : { '@type': 'messageSenderUser', user_id: myUserId },
      from_message_id: 0,
      offset: 0,
      limit: 20,
      filter: null,
    });
    const messages =
      (found.messages as
        Array<{ id?: number; date?: number; content?: { text?: { text?: string } } }> | undefined) ?? [];
    const match = messages.find((m) => (m.date ?? 0) >= since - 5 && (m.content?.text?.text ?? '') === text);
    return match ? Number(match.id) : false;
  } catch {
    return undefined;
  }
}

/**
 * The start of a text as a history search query: whole words only, since Telegram's search matches words
 * and word prefixes and a word cut at an arbitrary character may match nothing.
 */
export function searchQueryOf(text: string, maxChars = 64): string {
  if (text.length <= maxChars) return text;
  const cut = text.slice(0, maxChars);
  const lastSpace = cut.search(/\s\S*$/);
  return lastSpace > 0 ? cut.slice(0, lastSpace) : cut;
}
