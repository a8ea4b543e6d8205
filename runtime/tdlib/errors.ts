/**
 * Errors a TdClient request can end with. TdError carries TDLib's own error object verbatim (code and
 * message), so callers can branch on TDLib's documented codes; the other two are local outcomes TDLib
 * never produced, kept as separate classes so they cannot be mistaken for a TDLib answer.
 */

export class TdError extends Error {
  override readonly name = 'TdError';

  constructor(
    /** TDLib's error code (400 bad request, 401 unauthorized, 406 do-not-show, 420 flood wait, 500...). */
    readonly code: number,
    /** TDLib's message, unchanged. */
    message: string,
    /** The request's '@type', or 'execute:<type>' for synchronous calls. */
    readonly method: string,
    readonly clientId?: number,
  ) {
    super(message);
  }

  /** Builds a TdError from an object TDLib returned with '@type': 'error'. */
  static fromObject(
    object: { readonly [field: string]: unknown },
    method: string,
    clientId?: number,
  ): TdError {
    const code = typeof object.code === 'number' ? object.code : 0;
    const message = typeof object.message === 'string' ? object.message : 'TDLib error without a message';
    return new TdError(code, message, method, clientId);
  }
}

/** No answer arrived within the request's deadline. TDLib may still execute the request. */
export class TdTimeoutError extends Error {
  override readonly name = 'TdTimeoutError';

  constructor(
    readonly method: string,
    readonly timeoutMs: number,
    readonly clientId: number,
  ) {
    super(`TDLib request ${method} on client ${clientId} got no answer within ${timeoutMs} ms`);
  }
}

/** The client was closed (or is closing) before or while the request was in flight. */
export class TdClientClosedError extends Error {
  override readonly name = 'TdClientClosedError';

  constructor(
    readonly method: string,
    readonly clientId: number,
  ) {
    super(`TDLib client ${clientId} is closed; request ${method} was not answered`);
  }
}

/**
 * The session fence refused the request before it left the process: the client's session may be held
 * elsewhere now. Only `close` is ever let through a closed fence.
 */
export class TdFenceError extends Error {
  override readonly name = 'TdFenceError';

  constructor(
    readonly method: string,
    readonly clientId: number,
    reason: string,
  ) {
    super(`TDLib request ${method} on client ${clientId} refused by the session fence: ${reason}`);
  }
}

/**
 * A refusal that is Telegram's limit on the account rather than a failure of ours: a flood wait (TDLib's
 * 429 "Too Many Requests: retry after N" once it stopped waiting itself, or a raw FLOOD_WAIT_N /
 * SLOWMODE_WAIT_N / FLOOD_PREMIUM_WAIT_N) or PEER_FLOOD (400). Metrics label such errors so that an error
 * ratio meant to judge our version can leave them out.
 */
export type TelegramLimit = 'flood_wait' | 'peer_flood';

export function telegramLimitOf(code: number, message: string): TelegramLimit | undefined {
  if (/^PEER_FLOOD\b/.test(message)) return 'peer_flood';
  if (
    code === 429 ||
    code === 420 ||
    /retry after \d+|\b(?:FLOOD|SLOWMODE|FLOOD_PREMIUM)_WAIT_\d+/i.test(message)
  )
    return 'flood_wait';
  return undefined;
}

/** The label metrics use for a failed request: TDLib's code, or the local outcome. */
export function errorCodeLabel(error: unknown): string {
  if (error instanceof TdError) return String(error.code);
  if (error instanceof TdTimeoutError) return 'timeout';
  if (error instanceof TdClientClosedError) return 'closed';
  if (error instanceof TdFenceError) return 'fenced';
  return 'unknown';
}
