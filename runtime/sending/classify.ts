/**
 * What a failed send means, as a pure function of TDLib's error (after TDLib's own remaps, see
 * ../shared/notes/campaigns.md §1.2-1.3), so that every decision the sender takes on an error is in one table:
 *
 *   retry            transient for this recipient: try it again after `afterMs`, same sender
 *   failed           final for this recipient, whoever sends (deactivated, deleted, payment required...)
 *   failedForSender  final for this sender only (it is blocked, privacy, bot can't start a chat): another
 *                    sender may deliver it; nothing was delivered, so handing it over repeats nobody
 *   parkSender       the sender may not send for a while or at all (PEER_FLOOD, long flood wait, frozen,
 *                    logged out): the recipient was not delivered and goes back to the pool untouched
 *   inDoubt          the send may have reached Telegram (timeouts, internal errors, closing): it must be
 *                    resolved by the same sender before anything else happens to the recipient
 */

export interface TdSendError {
  readonly code: number;
  readonly message: string;
}

export type SendVerdict =
  | { kind: 'retry'; reason: string; afterMs: number }
  | { kind: 'failed'; reason: string }
  | { kind: 'failedForSender'; reason: string }
  | { kind: 'parkSender'; reason: string; untilMs?: number }
  | { kind: 'inDoubt'; reason: string };

/** A flood wait longer than this parks the sender instead of delaying one recipient. */
export const PARK_FLOOD_WAIT_MS = 300_000;

/** "Too Many Requests: retry after N" (TDLib's 429 after its own FLOOD_WAIT handling) in milliseconds. */
export function retryAfterMs(message: string): number | undefined {
  const match = /retry after (\d+)/i.exec(message) ?? /(?:FLOOD|SLOWMODE)_WAIT_(\d+)/.exec(message);
  return match ? Number(match[1]) * 1000 : undefined;
}

const FINAL_FOR_RECIPIENT: ReadonlyArray<[RegExp, string]> = [
  [/^User is deactivated$/i, 'UserDeactivated'],
  [/^USER_DELETED$/, 'UserDeleted'],
  [/^INPUT_USER_DEACTIVATED$/, 'UserDeactivated'],
  [/^ALLOW_PAYMENT_REQUIRED/, 'PaymentRequired'],
  [/^Message is too long$/i, 'MessageTooLong'],
  [/^MESSAGE_TOO_LONG$/, 'MessageTooLong'],
  [/^Chat not found$/i, 'ChatNotFound'],
  [/^USERNAME_NOT_OCCUPIED$/, 'UsernameNotFound'],
  [/^USERNAME_INVALID$/, 'UsernameInvalid'],
  [/^PHONE_NOT_REGISTERED$|^User not found$/i, 'NotOnTelegram'],
  [/^Message is too old to be re-sent automatically$/i, 'TooOldToResend'],
  [/^INVALID_RECIPIENT$/, 'InvalidRecipient'],
];

const FINAL_FOR_SENDER: ReadonlyArray<[RegExp, string]> = [
  [/^USER_IS_BLOCKED$/, 'BlockedBySender'],
  [/^Bot can't initiate conversation with a user$/i, 'BotCannotInitiate'],
  [/^The bot can't send messages to the bot$/i, 'BotToBot'],
  [/^PEER_ID_INVALID$/, 'PeerInvalid'],
  [/^USER_PRIVACY_RESTRICTED$/, 'PrivacyRestricted'],
  [/^PRIVACY_PREMIUM_REQUIRED$/, 'PremiumRequired'],
  [/^Have no write access to the chat$/i, 'NoWriteAccess'],
  [/^CHAT_WRITE_FORBIDDEN$/, 'NoWriteAccess'],
  [/^CHAT_RESTRICTED$/, 'ChatRestricted'],
  [/^CHAT_SEND_PLAIN_FORBIDDEN$/, 'PlainTextForbidden'],
  [/^CHANNEL_PRIVATE$/, 'ChannelPrivate'],
  [/^CHAT_ADMIN_REQUIRED$/, 'AdminRequired'],
  [/^CHANNEL_PUBLIC_GROUP_NA$/, 'ChannelUnavailable'],
  [/^The method is not available to bots$/i, 'BotCannotUsePhone'],
];

const SENDER_LEVEL: ReadonlyArray<[RegExp, string]> = [
  [/^PEER_FLOOD$/, 'PeerFlood'],
  [/^USER_BANNED_IN_CHANNEL$/, 'BannedInChannels'],
  [/^FROZEN_METHOD_INVALID$|^FROZEN_PARTICIPANT_MISSING$/, 'Frozen'],
  [/^USER_DEACTIVATED_BAN$/, 'Banned'],
  [/^AUTH_KEY_UNREGISTERED$|^SESSION_REVOKED$|^AUTH_KEY_DUPLICATED$|^Unauthorized$/, 'LoggedOut'],
];

function match(table: ReadonlyArray<[RegExp, string]>, message: string): string | undefined {
  return table.find(([pattern]) => pattern.test(message))?.[1];
}

/**
 * The verdict for a send that failed with `error`. `attempt` is the 1-based attempt of this recipient,
 * `backoffMs(attempt)` the campaign's retry delay, `maxAttempts` its retry budget for transient errors.
 */
export function classifySendError(
  error: TdSendError,
  retry: { attempt: number; maxAttempts: number; backoffMs: (attempt: number) => number },
): SendVerdict {
  const { code, message } = error;
  const wait = retryAfterMs(message);
  if (code === 429 || wait !== undefined) {
    const afterMs = wait ?? 1000;
    if (afterMs > PARK_FLOOD_WAIT_MS) return { kind: 'parkSender', reason: 'FloodWait', untilMs: afterMs };
    return { kind: 'retry', reason: 'FloodWait', afterMs };
  }
  const senderLevel = match(SENDER_LEVEL, message);
  if (senderLevel) return { kind: 'parkSender', reason: senderLevel };
  if (code === 401) return { kind: 'parkSender', reason: 'LoggedOut' };
  if (code === 406) return { kind: 'parkSender', reason: 'Frozen' };
  const forRecipient = match(FINAL_FOR_RECIPIENT, message);
  if (forRecipient) return { kind: 'failed', reason: forRecipient };
  const forSender = match(FINAL_FOR_SENDER, message);
  if (forSender) return { kind: 'failedForSender', reason: forSender };
  // Timeouts, internal errors, a client closing: Telegram may have the message. Never retried blindly.
  if (code >= 500 || code === 0) return { kind: 'inDoubt', reason: code === 0 ? 'NoAnswer' : `Error${code}` };
  if (code === 400 || code === 403) {
    // Unknown rejections are the recipient's (the request was refused before anything was delivered); a
    // few attempts cover rejections that are really passing states.
    if (retry.attempt < retry.maxAttempts)
      return { kind: 'retry', reason: reasonOf(error), afterMs: retry.backoffMs(retry.attempt) };
    return { kind: 'failed', reason: reasonOf(error) };
  }
  if (retry.attempt < retry.maxAttempts)
    return { kind: 'retry', reason: reasonOf(error), afterMs: retry.backoffMs(retry.attempt) };
  return { kind: 'failed', reason: reasonOf(error) };
}

/** A stable reason for an unknown error: TDLib's error word, else Error<code>. Never the recipient. */
export function reasonOf(error: TdSendError): string {
  return /^[A-Z][A-Z0-9_]{2,63}$/.test(error.message) ? error.message : `Error${error.code}`;
}
