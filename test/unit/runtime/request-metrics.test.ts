/**
 * tdlib_errors_total marks Telegram's limits on the account (flood waits, PEER_FLOOD) with telegram_limit,
 * so the error-ratio alert can leave them out; every other error keeps the labels it always had.
 */
import { describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import type { TdBackend, TdBatchListener, TdReceived } from '../../../runtime/tdlib/backend.js';
import { TdClientManager } from '../../../runtime/tdlib/client.js';
import { TdError, telegramLimitOf } from '../../../runtime/tdlib/errors.js';
import { promRequestHooks, registerTdRequestMetrics } from '../../../runtime/tdlib/metrics-hooks.js';

describe('telegramLimitOf', () => {
  it.each([
    [429, 'Too Many Requests: retry after 7', 'flood_wait'],
    [420, 'FLOOD_WAIT_12', 'flood_wait'],
    [420, 'SLOWMODE_WAIT_30', 'flood_wait'],
    [420, 'FLOOD_PREMIUM_WAIT_5', 'flood_wait'],
    [400, 'PEER_FLOOD', 'peer_flood'],
  ] as const)('%d %s is %s', (code, message, limit) => {
    expect(telegramLimitOf(code, message)).toBe(limit);
  });

  it.each([
    [400, 'Chat not found'],
    [400, 'USERNAME_NOT_OCCUPIED'],
    [401, 'Unauthorized'],
    [406, 'AUTH_KEY_DUPLICATED'],
    [500, 'Internal Server Error'],
    [400, 'Failed to parse JSON object as TDLib request: Unknown class "x"'],
  ])('%d %s is ours to count', (code, message) => {
    expect(telegramLimitOf(code, message)).toBeUndefined();
  });
});

/** Answers every request with the error its '@type' names in `errors`, or ok. */
class ErrorBackend implements TdBackend {
  readonly kind = 'test';
  private listener?: TdBatchListener;
  constructor(private readonly errors: Record<string, { code: number; message: string }>) {}
  createClientId(): number {
    return 1;
  }
  send(clientId: number, requestJson: string): void {
    const request = JSON.parse(requestJson) as { '@type': string; '@extra': number };
    const error = this.errors[request['@type']];
    const answer = (error ? { '@type': 'error', ...error } : { '@type': 'ok' }) as unknown as TdReceived;
    setImmediate(() => this.listener?.([{ ...answer, '@extra': request['@extra'], '@client_id': clientId }]));
  }
  execute(): string {
    return '{"@type":"ok"}';
  }
  onReceive(listener: TdBatchListener): void {
    this.listener = listener;
  }
  async close(): Promise<void> {}
}

describe('tdlib_errors_total through TdClientManager', () => {
  it('labels flood waits and PEER_FLOOD with telegram_limit, and nothing else', async () => {
    const registry = new Registry();
    const manager = new TdClientManager(
      new ErrorBackend({
        searchPublicChat: { code: 429, message: 'Too Many Requests: retry after 30' },
        importContacts: { code: 400, message: 'PEER_FLOOD' },
        getChat: { code: 400, message: 'Chat not found' },
        getMe: { code: 500, message: 'Internal Server Error' },
      }),
      { hooks: promRequestHooks(registerTdRequestMetrics(registry)) },
    );
    const client = manager.createClient();
    for (const method of ['searchPublicChat', 'importContacts', 'getChat', 'getMe', 'getOption']) {
      const answer = client.invokeUnchecked({ '@type': method });
      if (method === 'getOption') await answer;
      else await expect(answer).rejects.toBeInstanceOf(TdError);
    }
    const text = await registry.getSingleMetricAsString('tdlib_errors_total');
    const samples = text.split('\n').filter((line) => line.startsWith('tdlib_errors_total{'));
    expect(samples.sort()).toEqual(
      [
        'tdlib_errors_total{method="searchPublicChat",code="429",telegram_limit="flood_wait"} 1',
        'tdlib_errors_total{method="importContacts",code="400",telegram_limit="peer_flood"} 1',
        'tdlib_errors_total{method="getChat",code="400"} 1',
        'tdlib_errors_total{method="getMe",code="500"} 1',
      ].sort(),
    );
    const requests = await registry.getSingleMetricAsString('tdlib_requests_total');
    expect(requests).toContain('tdlib_requests_total{method="searchPublicChat",outcome="error"} 1');
    expect(requests).toContain('tdlib_requests_total{method="getOption",outcome="ok"} 1');
  });
});
