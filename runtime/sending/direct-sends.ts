/**
 * One message sent on demand through an account (the send API), exactly once per Idempotency-Key:
 * - a new key is written down (fdatasync) before TDLib is asked to send, and its outcome after;
 * - a retried request gets the first one's answer and never a second message; the same key with another
 *   request is refused;
 * - a key found accepted without an outcome (the process died in between) is resolved first: a user
 *   account reads the chat's history (is our message with this text there since?) and sends only if it is
 *   not; a bot, which cannot read history, answers that the outcome is in doubt and never sends again;
 * - failures that say "not now" (flood wait, the account not ready, parked) release the key, so the same
 *   request can be retried later; final ones (blocked, no such user) are the key's answer for a day.
 */
import { createHash } from 'node:crypto';
import { parseRecipientLine } from '../../crds/index.js';
import type { TdObject } from '../tdlib/backend.js';
import type { TdClient } from '../tdlib/client.js';
import { TdError } from '../tdlib/errors.js';
import { classifySendError } from './classify.js';
import type { SendBody } from './send-body.js';
import type { SendLedger, KeyRecord, SendOutcome } from './send-ledger.js';
import {
  SendOutcomes,
  editMessageTextRequest,
  editRefusal,
  formattedText,
  resolveChat,
  sendMessageRequest,
  sentMessageSince,
} from './telegram.js';

/** A send API request: the body (send-body.ts) and the caller's Idempotency-Key. */
export interface DirectSend extends SendBody {
  key: string;
}

export type DirectSendAnswer =
  | { status: 200; chatId: number; messageId: number; replayed: boolean }
  | { status: number; reason: string; message: string; retryAfterSeconds?: number };

export interface DirectSendsOptions {
  ledger: SendLedger;
  /** The client while the account may send (logged in, fence valid), else undefined. */
  client: () => TdClient | undefined;
  myUserId: () => number | undefined;
  isBot: boolean;
  /** td_execute, for parsing HTML and Markdown. */
  execute: (request: TdObject) => TdObject;
  /** TESTS ONLY: called once a new key is on disk, before TDLib is asked (to kill the process there). */
  afterAccept?: () => void;
  now?: () => number;
}

const NOT_FOUND = new Set(['ChatNotFound', 'UsernameNotFound', 'NotOnTelegram', 'UserDeleted']);
const BAD_REQUEST = new Set(['MessageTooLong', 'InvalidRecipient', 'UsernameInvalid']);

export function digestOf(request: DirectSend): string {
  const { key: _key, ...rest } = request;
  return createHash('sha256')
    .update(JSON.stringify(rest, Object.keys(rest).sort()))
    .digest('hex');
}

function answerOf(outcome: SendOutcome, replayed: boolean): DirectSendAnswer {
  if (outcome.ok) return { status: 200, chatId: outcome.chatId, messageId: outcome.messageId, replayed };
  return {
    status: outcome.code,
    reason: outcome.message.split(':')[0] ?? 'Failed',
    message: outcome.message,
    ...(outcome.retryAfterSeconds ? { retryAfterSeconds: outcome.retryAfterSeconds } : {}),
  };
}

export class DirectSends {
  private readonly inFlight = new Map<string, Promise<DirectSendAnswer>>();
  private outcomes?: { client: TdClient; outcomes: SendOutcomes };

  constructor(private readonly options: DirectSendsOptions) {}

  /** Waits for sends in flight, then closes the ledger. */
  async close(): Promise<void> {
    await Promise.allSettled([...this.inFlight.values()]);
    this.outcomes?.outcomes.close();
    await this.options.ledger.close();
  }

  async send(request: DirectSend): Promise<DirectSendAnswer> {
    const running = this.inFlight.get(request.key);
    if (running) return running;
    const started = this.handle(request).finally(() => this.inFlight.delete(request.key));
    this.inFlight.set(request.key, started);
    return started;
  }

  private async handle(request: DirectSend): Promise<DirectSendAnswer> {
    const digest = digestOf(request);
    const known = this.options.ledger.get(request.key);
    if (known && known.digest !== digest)
      return {
        status: 422,
        reason: 'IdempotencyKeyReused',
        message: `Idempotency-Key ${request.key} was used for another request at ${new Date(known.at).toISOString()}; use a new key for a new message`,
      };
    if (known?.outcome) return answerOf(known.outcome, true);
    const client = this.options.client();
    if (!client)
      return {
        status: 503,
        reason: 'AccountNotReady',
        message:
          'the account is not logged in and connected on this pod right now; retry with the same Idempotency-Key',
        retryAfterSeconds: 5,
      };
    // An edit is idempotent (the same text again changes nothing): one in doubt is simply done again.
    if (known && request.editMessageId !== undefined) return this.deliver(client, request, known);
    if (known) return this.resolveInDoubt(client, request, known);
    const record: KeyRecord = {
      key: request.key,
      digest,
      at: (this.options.now ?? Date.now)(),
      text: request.text,
    };
    await this.options.ledger.write(record);
    this.options.afterAccept?.();
    return this.deliver(client, request, record);
  }

  /** Accepted earlier, outcome lost: was it sent? */
  private async resolveInDoubt(
    client: TdClient,
    request: DirectSend,
    record: KeyRecord,
  ): Promise<DirectSendAnswer> {
    const me = this.options.myUserId();
    if (this.options.isBot || me === undefined)
      return {
        status: 409,
        reason: 'InDoubt',
        message: `Idempotency-Key ${request.key} was accepted at ${new Date(record.at).toISOString()} and the runtime stopped before its outcome was recorded; a bot cannot read the chat to tell whether it was sent, so it is not sent again`,
      };
    if (record.chatId === undefined) return this.deliver(client, request, record); // stopped before it had a chat
    const found = await sentMessageSince(
      client,
      record.chatId,
      me,
      record.text,
      Math.floor(record.at / 1000),
    );
    if (found === undefined)
      return {
        status: 503,
        reason: 'InDoubt',
        message:
          'the chat history could not be read to tell whether the message was sent; retry with the same Idempotency-Key',
        retryAfterSeconds: 5,
      };
    if (found === false) return this.deliver(client, request, record);
    const outcome: SendOutcome = { ok: true, chatId: record.chatId, messageId: found };
    await this.options.ledger.write({ ...record, outcome });
    return answerOf(outcome, true);
  }

  private outcomesOf(client: TdClient): SendOutcomes {
    if (this.outcomes?.client !== client) {
      this.outcomes?.outcomes.close();
      this.outcomes = { client, outcomes: new SendOutcomes(client) };
    }
    return this.outcomes.outcomes;
  }

  private async deliver(client: TdClient, request: DirectSend, record: KeyRecord): Promise<DirectSendAnswer> {
    const recipient = parseRecipientLine(request.to);
    if (!recipient || recipient.kind === 'invalid')
      return this.finish(record, {
        ok: false,
        code: 400,
        message: `InvalidRecipient: "to" must be @username, +phone, a user id or a t.me link`,
      });
    let chatId = record.chatId;
    try {
      chatId ??= await resolveChat(client, recipient, this.options.isBot);
    } catch (error) {
      return this.failed(record, error instanceof TdError ? error : new TdError(0, String(error), 'resolve'));
    }
    if (record.chatId === undefined) {
      record = { ...record, chatId };
      // The chat goes on disk before the send: a send whose outcome is lost is looked for in it.
      await this.options.ledger.write(record);
    }
    const message = {
      text: request.text,
      parseMode: request.parseMode ?? 'Plain',
      disableLinkPreview: request.disableLinkPreview ?? false,
      silent: request.silent ?? false,
    };
    let text: TdObject;
    try {
      text = formattedText(message, this.options.execute);
    } catch (error) {
      return this.finish(record, {
        ok: false,
        code: 400,
        message: `TextInvalid: ${String((error as Error).message)}`,
      });
    }
    if (request.editMessageId !== undefined)
      return this.edit(client, record, chatId, request.editMessageId, text, message.disableLinkPreview);
    const plain = sendMessageRequest(chatId, text, message);
    const send: TdObject =
      request.replyToMessageId === undefined
        ? plain
        : {
            ...plain,
            reply_to: { '@type': 'inputMessageReplyToMessage', message_id: request.replyToMessageId },
          };
    const result = await this.outcomesOf(client).send(client, send);
    if (result.ok) return this.finish(record, { ok: true, chatId, messageId: result.messageId });
    return this.failed(record, new TdError(result.error.code, result.error.message, 'sendMessage'));
  }

  /**
   * Edits the account's own message. TDLib answers editMessageText with the edited message (no temporary
   * one). Telegram refuses an unchanged text (MESSAGE_NOT_MODIFIED): for a request that asks for exactly
   * that text, it is done.
   */
  private async edit(
    client: TdClient,
    record: KeyRecord,
    chatId: number,
    messageId: number,
    text: TdObject,
    disableLinkPreview: boolean,
  ): Promise<DirectSendAnswer> {
    try {
      await client.invokeUnchecked(editMessageTextRequest(chatId, messageId, text, disableLinkPreview), {
        timeoutMs: 120_000,
      });
    } catch (error) {
      const refused = error instanceof TdError ? error : new TdError(0, String(error), 'editMessageText');
      const verdict = editRefusal(refused);
      if (verdict === 'unchanged') return this.finish(record, { ok: true, chatId, messageId });
      if (verdict) return this.finish(record, verdict);
      return this.failed(record, refused);
    }
    return this.finish(record, { ok: true, chatId, messageId });
  }

  /** A failed send: final ones are the key's answer; "not now" ones release it for a retry. */
  private async failed(record: KeyRecord, error: TdError): Promise<DirectSendAnswer> {
    const verdict = classifySendError(error, { attempt: 1, maxAttempts: 1, backoffMs: () => 0 });
    switch (verdict.kind) {
      case 'retry':
      case 'parkSender': {
        const afterMs = verdict.kind === 'retry' ? verdict.afterMs : (verdict.untilMs ?? 60_000);
        await this.release(record);
        return {
          status: verdict.reason === 'FloodWait' ? 429 : 503,
          reason: verdict.reason,
          message: `${verdict.reason}: Telegram refused for now (${error.message}); nothing was sent, retry with the same Idempotency-Key after the wait`,
          retryAfterSeconds: Math.max(1, Math.ceil(afterMs / 1000)),
        };
      }
      case 'inDoubt':
        // Telegram may have it: the key stays accepted, and a retry resolves it first.
        return {
          status: 503,
          reason: 'InDoubt',
          message: `the send may have reached Telegram (${error.message}); retry with the same Idempotency-Key to learn its outcome`,
          retryAfterSeconds: 5,
        };
      case 'failed':
      case 'failedForSender': {
        const code = NOT_FOUND.has(verdict.reason) ? 404 : BAD_REQUEST.has(verdict.reason) ? 400 : 403;
        return this.finish(record, { ok: false, code, message: `${verdict.reason}: ${error.message}` });
      }
    }
  }

  private async finish(record: KeyRecord, outcome: SendOutcome): Promise<DirectSendAnswer> {
    await this.options.ledger.write({ ...record, outcome });
    return answerOf(outcome, false);
  }

  /** Nothing was sent: the key is free for the same request again (a new acceptance). */
  private async release(record: KeyRecord): Promise<void> {
    await this.options.ledger.forget(record.key);
  }
}
