import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { TdClientManager, type TdClient } from '../../runtime/tdlib/client.js';
import { TdClientClosedError, TdError, TdTimeoutError } from '../../runtime/tdlib/errors.js';
import { TdRequestStats } from '../../runtime/tdlib/metrics-hooks.js';
import { NativeBackend } from '../../runtime/tdlib/native-backend.js';

describe('round trips through real libtdjson', () => {
  let backend: NativeBackend;
  let manager: TdClientManager;
  let client: TdClient;
  const stats = new TdRequestStats();

  beforeAll(() => {
    backend = new NativeBackend({ logVerbosity: 0 });
    manager = new TdClientManager(backend, { hooks: stats, defaultTimeoutMs: 20_000 });
    client = manager.createClient();
  });

  afterAll(async () => {
    const result = await manager.shutdown({ timeoutMs: 20_000 });
    expect(result.notClosed).toEqual([]);
  });

  it('squares an int', async () => {
    const answer = await client.invoke({ '@type': 'testSquareInt', x: 12 });
    expect(answer).toMatchObject({ '@type': 'testInt', value: 144 });
  });

  it('echoes strings, vectors, bytes and empty calls', async () => {
    await expect(client.invoke({ '@type': 'testCallEmpty' })).resolves.toMatchObject({ '@type': 'ok' });
    await expect(
      client.invoke({ '@type': 'testCallVectorInt', x: [1, -2, 2147483647] }),
    ).resolves.toMatchObject({
      '@type': 'testVectorInt',
      value: [1, -2, 2147483647],
    });
    await expect(client.invoke({ '@type': 'testCallBytes', x: 'AAECAwT/' })).resolves.toMatchObject({
      '@type': 'testBytes',
      value: 'AAECAwT/',
    });
    await expect(
      client.invoke({ '@type': 'testCallVectorString', x: ['a', '', 'c'] }),
    ).resolves.toMatchObject({ value: ['a', '', 'c'] });
  });

  it('keeps non-ASCII text intact (Cyrillic, CJK, emoji, combining marks, NUL)', async () => {
    const text = 'Привет, 世界! 🎉👩‍👩‍👧 e\u0301 \u0000 "quotes" \\ back\nslash';
    const answer = await client.invoke({ '@type': 'testCallString', x: text });
    expect(answer.value).toBe(text);
  });

  it('carries a 1 MB string both ways', async () => {
    const big = 'Ж'.repeat(256 * 1024) + 'x'.repeat(512 * 1024);
    expect(Buffer.byteLength(big)).toBe(1024 * 1024);
    const answer = await client.invoke({ '@type': 'testCallString', x: big });
    expect(answer.value.length).toBe(big.length);
    expect(answer.value === big).toBe(true);
  });

  it('replaces lone surrogates instead of letting TDLib abort on them', async () => {
    const answer = await client.invoke({ '@type': 'testCallString', x: 'a\ud800b\udc00c' });
    expect(answer.value).toBe('a\ufffdb\ufffdc');
    const pair = await client.invoke({ '@type': 'testCallString', x: 'x\ud83c\udf89y' });
    expect(pair.value).toBe('x🎉y');
  });

  it('answers many interleaved requests to the right callers', async () => {
    const xs = Array.from({ length: 2000 }, (_, i) => i - 1000);
    const answers = await Promise.all(xs.map((x) => client.invoke({ '@type': 'testSquareInt', x })));
    expect(answers.map((a) => a.value)).toEqual(xs.map((x) => x * x));
  });

  it('rejects unknown methods with TDLib error 400', async () => {
    const failure = client.invokeUnchecked({ '@type': 'noSuchMethod' });
    await expect(failure).rejects.toBeInstanceOf(TdError);
    await expect(failure).rejects.toMatchObject({ code: 400, method: 'noSuchMethod', clientId: client.id });
    await expect(failure).rejects.toThrow(/Unknown class "noSuchMethod"/);
  });

  it('rejects wrong field types with TDLib error 400', async () => {
    await expect(
      client.invokeUnchecked({ '@type': 'testSquareInt', x: 'not a number' }),
    ).rejects.toMatchObject({
      name: 'TdError',
      code: 400,
      message: expect.stringContaining("Can't parse"),
    });
  });

  it('rejects malformed JSON with TDLib parse error', async () => {
    await expect(client.invokeJson('{"@type": "testSquareInt", "x": ')).rejects.toMatchObject({
      name: 'TdError',
      code: 400,
      message: expect.stringContaining('Failed to parse request as JSON object'),
    });
    await expect(client.invokeJson('[1, 2]')).rejects.toMatchObject({ code: 400 });
    await expect(client.invokeJson('{"@type":"testSquareInt","x":5}')).resolves.toMatchObject({ value: 25 });
  });

  it('surfaces testReturnError as a TdError with its code and message', async () => {
    await expect(
      client.invoke({
        '@type': 'testReturnError',
        error: { '@type': 'error', code: 429, message: 'FLOOD_WAIT_3' },
      }),
    ).rejects.toMatchObject({
      name: 'TdError',
      code: 429,
      message: 'FLOOD_WAIT_3',
      method: 'testReturnError',
    });
  });

  it('survives raw malformed JSON sent straight to the backend', async () => {
    const raw = manager.createClient();
    const errors: unknown[] = [];
    raw.subscribe((update) => {
      if ((update['@type'] as string) === 'error') errors.push(update);
    });
    backend.send(raw.id, '{this is not json');
    backend.send(raw.id, '');
    await expect(raw.invoke({ '@type': 'testSquareInt', x: 3 })).resolves.toMatchObject({ value: 9 });
    // Without a parsable '@extra' TDLib cannot say which request failed: the errors arrive as updates.
    expect(errors).toEqual([
      expect.objectContaining({ '@type': 'error', code: 400, message: expect.stringContaining('JSON') }),
      expect.objectContaining({ '@type': 'error', code: 400, message: expect.stringContaining('JSON') }),
    ]);
    await raw.close();
  });

  it('times out requests TDLib has not answered', async () => {
    const slow = client.invoke({ '@type': 'setAlarm', seconds: 2 }, { timeoutMs: 50 });
    await expect(slow).rejects.toBeInstanceOf(TdTimeoutError);
    await expect(slow).rejects.toMatchObject({ method: 'setAlarm', timeoutMs: 50 });
  });

  it('runs synchronous methods through td_execute', () => {
    expect(manager.execute({ '@type': 'getOption', name: 'version' })).toEqual({
      '@type': 'optionValueString',
      value: '1.8.67',
    });
    const entities = manager.execute({
      '@type': 'parseTextEntities',
      text: '<b>bold</b> and <i>наклон</i>',
      parse_mode: { '@type': 'textParseModeHTML' },
    });
    expect(entities.text).toBe('bold and наклон');
    expect(entities.entities.map((e) => [e.type['@type'], e.offset, e.length])).toEqual([
      ['textEntityTypeBold', 0, 4],
      ['textEntityTypeItalic', 9, 6],
    ]);
    expect(() => manager.execute({ '@type': 'getOption', name: '' })).toThrow(TdError);
    expect(() =>
      manager.execute({
        '@type': 'parseTextEntities',
        text: '<b>x',
        parse_mode: { '@type': 'textParseModeHTML' },
      }),
    ).toThrow(/Can't find end tag/);
  });

  it('counts requests, durations and errors by code', () => {
    expect(stats.total).toBeGreaterThan(2000);
    expect(stats.byMethod.get('testSquareInt')?.count).toBeGreaterThan(2000);
    // Unknown method and wrong field type; malformed JSON is refused before it becomes a request.
    expect(stats.errorsByCode.get('400')).toBe(2);
    expect(stats.errorsByCode.get('429')).toBe(1);
    expect(stats.errorsByCode.get('timeout')).toBe(1);
  });

  it('routes each update to the subscribers of its own client only', async () => {
    const first = manager.createClient();
    const second = manager.createClient();
    const seen = new Map<number, number[]>([
      [first.id, []],
      [second.id, []],
    ]);
    const record = (owner: number) => (update: { readonly '@type': string }) =>
      seen.get(owner)?.push((update as unknown as { '@client_id': number })['@client_id']);
    first.subscribe(record(first.id));
    const viaOn = record(second.id);
    second.on('update', viaOn);
    await Promise.all([
      first.invoke({ '@type': 'testCallEmpty' }),
      second.invoke({ '@type': 'testCallEmpty' }),
    ]);
    await Promise.all([
      first.waitForAuthorizationState('authorizationStateWaitTdlibParameters', { timeoutMs: 10_000 }),
      second.waitForAuthorizationState('authorizationStateWaitTdlibParameters', { timeoutMs: 10_000 }),
    ]);
    expect(seen.get(first.id)?.length).toBeGreaterThan(0);
    expect(seen.get(second.id)?.length).toBeGreaterThan(0);
    expect(seen.get(first.id)?.every((id) => id === first.id)).toBe(true);
    expect(seen.get(second.id)?.every((id) => id === second.id)).toBe(true);
    second.off('update', viaOn);
    const before = seen.get(second.id)?.length;
    await Promise.all([first.close(), second.close()]);
    expect(seen.get(second.id)?.length).toBe(before);
  });

  it('rejects requests on a closed client without sending them', async () => {
    const other = manager.createClient();
    await other.invoke({ '@type': 'testSquareInt', x: 2 });
    await other.close();
    expect(other.state).toBe('closed');
    await expect(other.invoke({ '@type': 'testSquareInt', x: 2 })).rejects.toBeInstanceOf(
      TdClientClosedError,
    );
    await expect(other.close()).resolves.toBeUndefined();
  });
});
