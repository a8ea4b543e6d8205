/**
 * Condition types and reasons of our kinds, and the one helper that sets a condition. They are API contract:
 * the operator, the runtime and the kubectl plugin read each other's reasons, so they are constants here,
 * never strings matched by a pattern in one process and written in another.
 *
 * Who writes which TelegramAccount condition (server-side apply field managers):
 *   Scheduled   the operator
 *   Authorized, Connected   the runtime pod that hosts the account (status.hostedBy names it)
 *   Ready   derived by one function (account-ready.ts) from the runtime's conditions, the placement and pod
 *           health: the hosting pod writes it with its report, the operator where it knows more (a pod
 *           declared dead, an account moving or not reported yet). Where both know the same, they write the
 *           same value, which server-side apply lets them share.
 */
import type { Condition } from './schema.js';

export const ConditionType = {
  Scheduled: 'Scheduled',
  Authorized: 'Authorized',
  Connected: 'Connected',
  Ready: 'Ready',
  /** Only with spec.updates: the account's updates reach its sink (written by the runtime). */
  UpdatesDelivering: 'UpdatesDelivering',
} as const;
export type ConditionTypeName = (typeof ConditionType)[keyof typeof ConditionType];

/** Reasons the operator writes (Scheduled and Ready). */
export const OperatorReason = {
  Placed: 'Placed',
  PoolFull: 'PoolFull',
  SecretNotFound: 'SecretNotFound',
  SecretKeyMissing: 'SecretKeyMissing',
  /** A Secret the spec names does not carry the opt-in label, so the runtime is not given access to it. */
  SecretNotOptedIn: 'SecretNotOptedIn',
  /** A Secret with the name of the account's key Secret exists that the operator did not make for it. */
  SecretNameTaken: 'SecretNameTaken',
  /** The session key Secret is gone while a session backup exists: a new key would orphan the session. */
  SessionKeyMissing: 'SessionKeyMissing',
  /** The runtime pod hosting the account stopped heartbeating: its state is unknown (like a lost node). */
  RuntimeLost: 'RuntimeLost',
  /** Placed on a pod that has not reported this account yet. */
  WaitingForRuntime: 'WaitingForRuntime',
  Suspended: 'Suspended',
  Deleting: 'Deleting',
  Ready: 'Ready',
} as const;

/** Reasons the runtime writes (Authorized and Connected), besides the auth driver's and TDLib's own. */
export const RuntimeReason = {
  Authorized: 'Authorized',
  /** UpdatesDelivering: the sink accepts what arrives. */
  Delivering: 'Delivering',
  /** UpdatesDelivering: the sink fails (no answer, 5xx, 429...): events wait in the outbox for a retry. */
  SinkFailing: 'SinkFailing',
  /** Another process still holds the account's Lease (the session fence). */
  WaitingForLease: 'WaitingForLease',
  /** The pod's own heartbeat Lease is not valid: every client here is closed until it is renewed. */
  FenceLost: 'FenceLost',
  Starting: 'Starting',
  /** A start step failed (API error, missing Secret...); retried with backoff. */
  StartFailed: 'StartFailed',
  /** The session backup could not be read with the account's key (corrupt, or a different key). */
  BackupUnreadable: 'BackupUnreadable',
  /** The account's key Secret is missing or malformed. */
  SessionKeyMissing: 'SessionKeyMissing',
  /** The API credentials Secret holds no usable api_id/api_hash, or TDLib rejected them. */
  ApiCredentialsInvalid: 'ApiCredentialsInvalid',
  /** spec.proxy cannot be used (bad link, missing credentials): the client stays offline rather than direct. */
  ProxyInvalid: 'ProxyInvalid',
  /** TDLib has been asked to close and has not confirmed yet; the Lease is kept until it does. */
  Closing: 'Closing',
  Suspended: 'Suspended',
  LoggedOut: 'LoggedOut',
  LogOutFailed: 'LogOutFailed',
  /** The logged-in user does not match spec (phone number or bot id): the session belongs to someone else. */
  SessionMismatch: 'SessionMismatch',
  Unknown: 'Unknown',
} as const;

/** Why a login waits (Authorized=False), from the auth driver. */
export const AuthReason = {
  BotTokenMissing: 'BotTokenMissing',
  BotTokenRejected: 'BotTokenRejected',
  QrRequested: 'QrRequested',
  PhoneNumberMissing: 'PhoneNumberMissing',
  PhoneNumberRejected: 'PhoneNumberRejected',
  WaitCode: 'WaitCode',
  PasswordRequired: 'PasswordRequired',
  PasswordRejected: 'PasswordRejected',
  WaitQrConfirmation: 'WaitQrConfirmation',
  RegistrationRequired: 'RegistrationRequired',
  EmailRequired: 'EmailRequired',
} as const;
export type AuthReasonName = (typeof AuthReason)[keyof typeof AuthReason];

/**
 * TDLib's and Telegram's own errors become reasons as they are (PHONE_CODE_INVALID, PASSWORD_HASH_INVALID,
 * ACCESS_TOKEN_INVALID...): all capitals, digits and underscores; an error without such a word is Error<code>.
 * Our own reasons are CamelCase.
 */
export function isTdlibErrorReason(reason: string | undefined): boolean {
  if (reason === undefined) return false;
  return /^Error\d{3}$/.test(reason) || (/^[A-Z][A-Z0-9_]*$/.test(reason) && /[A-Z]{2}/.test(reason));
}

/** The reason for a TDLib error message: its first word when it is an error code, else Error<code>. */
export function tdlibErrorReason(code: number, message: string): string {
  const word = /^[A-Z][A-Z0-9_]{2,63}/.exec(message)?.[0];
  return word ?? `Error${code}`;
}

export function findCondition(
  conditions: readonly Condition[] | undefined,
  type: string,
): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

/** Condition time as the API stores it: RFC 3339 in whole seconds. */
export function conditionTime(now: Date): string {
  return now.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export type ConditionInput = Omit<Condition, 'lastTransitionTime'>;

/**
 * The condition to write: lastTransitionTime moves only when the status changes (API conventions), so
 * re-applying the same observation yields an equal condition and costs no write.
 */
export function nextCondition(
  existing: readonly Condition[] | undefined,
  input: ConditionInput,
  now: Date,
): Condition {
  const previous = findCondition(existing, input.type);
  const lastTransitionTime =
    previous && previous.status === input.status ? previous.lastTransitionTime : conditionTime(now);
  return { ...input, lastTransitionTime };
}

/** True when `next` would change nothing a reader sees of the same condition in `existing`. */
export function sameCondition(existing: readonly Condition[] | undefined, next: ConditionInput): boolean {
  const previous = findCondition(existing, next.type);
  return (
    previous !== undefined &&
    previous.status === next.status &&
    previous.reason === next.reason &&
    previous.message === next.message &&
    previous.observedGeneration === next.observedGeneration
  );
}

/** A rejected 2FA password: the driver's PasswordRejected, or TDLib's error (PASSWORD_HASH_INVALID...). */
export function isPasswordFailureReason(reason: string): boolean {
  return (
    reason === AuthReason.PasswordRejected || (isTdlibErrorReason(reason) && reason.includes('PASSWORD'))
  );
}
