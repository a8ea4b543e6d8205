/**
 * The send-error table (../shared/notes/campaigns.md §1.3): every error TDLib reports for a send, as it
 * reports it after its own remaps, and what the campaign sender does with it.
 */
import {
  PARK_FLOOD_WAIT_MS,
  classifySendError,
  retryAfterMs,
  type SendVerdict,
} from '../../../runtime/sending/classify.js';

const retry = { attempt: 1, maxAttempts: 3, backoffMs: (n: number) => 30_000 * 2 ** (n - 1) };

const table: Array<[code: number, message: string, verdict: SendVerdict]> = [
  // Flood waits: short ones delay the recipient, long ones park the sender.
  [429, 'Too Many Requests: retry after 7', { kind: 'retry', reason: 'FloodWait', afterMs: 7000 }],
  [
    429,
    'Too Many Requests: retry after 86400',
    { kind: 'parkSender', reason: 'FloodWait', untilMs: 86_400_000 },
  ],
  [420, 'FLOOD_WAIT_12', { kind: 'retry', reason: 'FloodWait', afterMs: 12_000 }],
  [420, 'SLOWMODE_WAIT_30', { kind: 'retry', reason: 'FloodWait', afterMs: 30_000 }],
  // The sender's fault: it stops, the recipient is untouched.
  [400, 'PEER_FLOOD', { kind: 'parkSender', reason: 'PeerFlood' }],
  [400, 'USER_BANNED_IN_CHANNEL', { kind: 'parkSender', reason: 'BannedInChannels' }],
  [406, 'FROZEN_METHOD_INVALID', { kind: 'parkSender', reason: 'Frozen' }],
  [401, 'Unauthorized', { kind: 'parkSender', reason: 'LoggedOut' }],
  [401, 'AUTH_KEY_UNREGISTERED', { kind: 'parkSender', reason: 'LoggedOut' }],
  // Final for the recipient, whoever sends.
  [403, 'User is deactivated', { kind: 'failed', reason: 'UserDeactivated' }],
  [403, 'USER_DELETED', { kind: 'failed', reason: 'UserDeleted' }],
  [400, 'ALLOW_PAYMENT_REQUIRED_10', { kind: 'failed', reason: 'PaymentRequired' }],
  [400, 'Message is too long', { kind: 'failed', reason: 'MessageTooLong' }],
  [400, 'Chat not found', { kind: 'failed', reason: 'ChatNotFound' }],
  [400, 'USERNAME_NOT_OCCUPIED', { kind: 'failed', reason: 'UsernameNotFound' }],
  [400, 'Message is too old to be re-sent automatically', { kind: 'failed', reason: 'TooOldToResend' }],
  [400, 'INVALID_RECIPIENT', { kind: 'failed', reason: 'InvalidRecipient' }],
  [400, 'The method is not available to bots', { kind: 'failedForSender', reason: 'BotCannotUsePhone' }],
  // Final for this sender; another may deliver.
  [403, 'USER_IS_BLOCKED', { kind: 'failedForSender', reason: 'BlockedBySender' }],
  [
    403,
    "Bot can't initiate conversation with a user",
    { kind: 'failedForSender', reason: 'BotCannotInitiate' },
  ],
  [403, "The bot can't send messages to the bot", { kind: 'failedForSender', reason: 'BotToBot' }],
  [400, 'USER_PRIVACY_RESTRICTED', { kind: 'failedForSender', reason: 'PrivacyRestricted' }],
  [400, 'Have no write access to the chat', { kind: 'failedForSender', reason: 'NoWriteAccess' }],
  [400, 'CHAT_WRITE_FORBIDDEN', { kind: 'failedForSender', reason: 'NoWriteAccess' }],
  [400, 'CHANNEL_PRIVATE', { kind: 'failedForSender', reason: 'ChannelPrivate' }],
  // May have reached Telegram: resolved before anything else happens to the recipient.
  [500, 'Request aborted', { kind: 'inDoubt', reason: 'Error500' }],
  [500, 'Internal Server Error: restart', { kind: 'inDoubt', reason: 'Error500' }],
  [0, 'no answer', { kind: 'inDoubt', reason: 'NoAnswer' }],
  // Unknown rejections: retried within the budget, with the campaign's backoff.
  [400, 'SOMETHING_NEW', { kind: 'retry', reason: 'SOMETHING_NEW', afterMs: 30_000 }],
  [400, 'Something odd happened', { kind: 'retry', reason: 'Error400', afterMs: 30_000 }],
];

describe('classifySendError', () => {
  it.each(table)('%i %s', (code, message, verdict) => {
    expect(classifySendError({ code, message }, retry)).toEqual(verdict);
  });

  it('gives up on an unknown rejection once the retry budget is spent, and backs off more each time', () => {
    expect(classifySendError({ code: 400, message: 'SOMETHING_NEW' }, { ...retry, attempt: 2 })).toEqual({
      kind: 'retry',
      reason: 'SOMETHING_NEW',
      afterMs: 60_000,
    });
    expect(classifySendError({ code: 400, message: 'SOMETHING_NEW' }, { ...retry, attempt: 3 })).toEqual({
      kind: 'failed',
      reason: 'SOMETHING_NEW',
    });
  });

  it('parks on a flood wait just over the threshold and retries just under it', () => {
    const seconds = PARK_FLOOD_WAIT_MS / 1000;
    expect(
      classifySendError({ code: 429, message: `Too Many Requests: retry after ${seconds}` }, retry).kind,
    ).toBe('retry');
    expect(
      classifySendError({ code: 429, message: `Too Many Requests: retry after ${seconds + 1}` }, retry).kind,
    ).toBe('parkSender');
  });

  it('reads retry_after from both forms TDLib uses', () => {
    expect(retryAfterMs('Too Many Requests: retry after 3')).toBe(3000);
    expect(retryAfterMs('FLOOD_WAIT_5')).toBe(5000);
    expect(retryAfterMs('PEER_FLOOD')).toBeUndefined();
  });
});
