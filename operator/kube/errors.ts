/** The error every non-2xx API response becomes, built from the metav1.Status the apiserver returns. */
export class ApiError extends Error {
  override readonly name = 'ApiError';

  constructor(
    /** HTTP status code (404, 409, 410, 422, 429, ...). */
    readonly status: number,
    /** metav1.Status reason: NotFound, AlreadyExists, Conflict, Expired, Gone, Invalid, TooManyRequests, ... */
    readonly reason: string,
    message: string,
    readonly details?: unknown,
    /** From the Retry-After header or Status details.retryAfterSeconds, when the server sent one. */
    readonly retryAfterSeconds?: number,
    /** "GET /api/v1/..." for log lines. */
    readonly request?: string,
  ) {
    super(message);
  }
}

interface StatusBody {
  kind?: string;
  message?: string;
  reason?: string;
  code?: number;
  details?: { retryAfterSeconds?: number };
}

/** Builds an ApiError from a response (or in-stream ERROR event) body; tolerates non-JSON bodies. */
export function apiErrorFrom(
  status: number,
  body: unknown,
  request?: string,
  retryAfterSeconds?: number,
): ApiError {
  let parsed: StatusBody | undefined;
  if (typeof body === 'string') {
    try {
      parsed = JSON.parse(body) as StatusBody;
    } catch {
      parsed = undefined;
    }
  } else if (body && typeof body === 'object') {
    parsed = body as StatusBody;
  }
  const code = parsed?.code && parsed.code > 0 ? parsed.code : status;
  const reason = parsed?.reason ?? reasonForStatus(code);
  const message =
    parsed?.message ?? (typeof body === 'string' && body.length > 0 ? body.slice(0, 500) : `HTTP ${code}`);
  return new ApiError(
    code,
    reason,
    request ? `${request}: ${message}` : message,
    parsed?.details,
    retryAfterSeconds ?? parsed?.details?.retryAfterSeconds,
    request,
  );
}

function reasonForStatus(status: number): string {
  switch (status) {
    case 400:
      return 'BadRequest';
    case 401:
      return 'Unauthorized';
    case 403:
      return 'Forbidden';
    case 404:
      return 'NotFound';
    case 405:
      return 'MethodNotAllowed';
    case 409:
      return 'Conflict';
    case 410:
      return 'Gone';
    case 422:
      return 'Invalid';
    case 429:
      return 'TooManyRequests';
    case 500:
      return 'InternalError';
    case 503:
      return 'ServiceUnavailable';
    case 504:
      return 'Timeout';
    default:
      return 'Unknown';
  }
}

export function isApiError(error: unknown, status?: number): error is ApiError {
  return error instanceof ApiError && (status === undefined || error.status === status);
}

export const isNotFound = (error: unknown): boolean => isApiError(error, 404);
export const isConflict = (error: unknown): boolean => isApiError(error, 409);
/** 410: a watch or list continue token whose resourceVersion was compacted away: relist. */
export const isGone = (error: unknown): boolean => isApiError(error, 410);
export const isTooManyRequests = (error: unknown): boolean => isApiError(error, 429);
/** 409 AlreadyExists (create) as opposed to a resourceVersion Conflict (update). */
export const isAlreadyExists = (error: unknown): boolean =>
  isApiError(error, 409) && (error as ApiError).reason === 'AlreadyExists';

/** Swallows 404, rethrows anything else: `await rest.delete(...).catch(ignoreNotFound)`. */
export function ignoreNotFound(error: unknown): undefined {
  if (isNotFound(error)) return undefined;
  throw error;
}

/**
 * Parses a Retry-After header: delta-seconds or an HTTP-date (RFC 9110 10.2.3). Returns milliseconds,
 * undefined when absent or unparseable. Negative or past dates mean "now" (0).
 */
export function parseRetryAfter(
  value: string | undefined | null,
  now: number = Date.now(),
): number | undefined {
  if (value === undefined || value === null) return undefined;
  const trimmed = value.trim();
  if (trimmed === '') return undefined;
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  // An HTTP-date always names the day and month ("Wed, 21 Oct 2015 07:28:00 GMT"); without letters,
  // Date.parse would read "-1" as a year.
  if (!/[a-z]/i.test(trimmed)) return undefined;
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}
