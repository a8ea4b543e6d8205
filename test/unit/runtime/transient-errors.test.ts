import { transientRetryAfterMs } from '../../../runtime/hosting/hosted-account.js';
import { TdError } from '../../../runtime/tdlib/errors.js';

describe('which login errors are retried with the same input', () => {
  it('retries flood waits after the time Telegram asks for, and server errors', () => {
    const flood = transientRetryAfterMs(
      new TdError(429, 'Too Many Requests: retry after 7', 'checkAuthenticationBotToken'),
    );
    expect(flood).toBeGreaterThanOrEqual(7000);
    expect(flood).toBeLessThan(8000);
    expect(
      transientRetryAfterMs(new TdError(420, 'FLOOD_WAIT_3', 'setAuthenticationPhoneNumber')),
    ).toBeGreaterThanOrEqual(3000);
    expect(transientRetryAfterMs(new TdError(500, 'Internal', 'checkAuthenticationCode'))).toBe(2000);
  });

  it('treats rejections of the input as final until the input changes', () => {
    expect(
      transientRetryAfterMs(new TdError(400, 'PHONE_CODE_INVALID', 'checkAuthenticationCode')),
    ).toBeUndefined();
    expect(
      transientRetryAfterMs(new TdError(401, 'ACCESS_TOKEN_INVALID', 'checkAuthenticationBotToken')),
    ).toBeUndefined();
  });
});
