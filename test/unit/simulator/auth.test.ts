import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { cpSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { TdObject } from '../../../runtime/tdlib/backend.js';
import {
  errorOf,
  isAuthState,
  loginUser,
  makeWorld,
  params,
  Recorder,
  startSession,
  type Session,
  type WorldFixture,
} from './support/harness.js';

jest.setTimeout(20_000);

describe('simulator authorization', () => {
  let fx: WorldFixture;
  let session: Session;

  beforeEach(() => {
    fx = makeWorld();
    session = startSession(fx.dir);
  });

  afterEach(async () => {
    await session.close();
    expect(session.checked.problems).toEqual([]);
    fx.cleanup();
  });

  it('starts like TDLib: version, commit_hash, WaitTdlibParameters on the first request', async () => {
    const client = session.manager.createClient();
    const rec = new Recorder(client);
    const version = await client.invokeUnchecked({ '@type': 'getOption', name: 'version' });
    expect(version).toMatchObject({ '@type': 'optionValueString', value: '1.8.67' });
    expect(rec.updates.slice(0, 3).map((u) => u['@type'] + ':' + String(u.name ?? ''))).toEqual([
      'updateOption:version',
      'updateOption:commit_hash',
      'updateAuthorizationState:',
    ]);
    expect(rec.authStates()).toEqual(['authorizationStateWaitTdlibParameters']);
    expect(await errorOf(client.invokeUnchecked({ '@type': 'getMe' }))).toEqual({
      code: 400,
      message: 'Initialization parameters are needed: call setTdlibParameters first',
    });
  });

  it('logs a user in with code and 2FA password, through every state in order', async () => {
    const client = session.manager.createClient();
    const rec = new Recorder(client);
    await client.invokeUnchecked(params(join(fx.dir, 'db-user')));
    await client.invokeUnchecked({
      '@type': 'setAuthenticationPhoneNumber',
      phone_number: '+1 555 010 0001',
    });
    const waitCode = await rec.waitFor(isAuthState('authorizationStateWaitCode'));
    expect((waitCode.authorization_state as TdObject).code_info).toMatchObject({
      '@type': 'authenticationCodeInfo',
      phone_number: '+15550100001',
      type: { '@type': 'authenticationCodeTypeSms', length: 5 },
    });
    expect(
      await errorOf(client.invokeUnchecked({ '@type': 'checkAuthenticationCode', code: '00000' })),
    ).toEqual({
      code: 400,
      message: 'PHONE_CODE_INVALID',
    });
    await client.invokeUnchecked({ '@type': 'checkAuthenticationCode', code: '12345' });
    const waitPassword = await rec.waitFor(isAuthState('authorizationStateWaitPassword'));
    expect(waitPassword.authorization_state).toMatchObject({
      password_hint: 'horse',
      has_recovery_email_address: false,
    });
    expect(
      await errorOf(client.invokeUnchecked({ '@type': 'checkAuthenticationPassword', password: 'wrong' })),
    ).toEqual({
      code: 400,
      message: 'PASSWORD_HASH_INVALID',
    });
    await client.invokeUnchecked({ '@type': 'checkAuthenticationPassword', password: 'correct horse' });
    await rec.waitFor(isAuthState('authorizationStateReady'));
    expect(rec.authStates()).toEqual([
      'authorizationStateWaitTdlibParameters',
      'authorizationStateWaitPhoneNumber',
      'authorizationStateWaitCode',
      'authorizationStateWaitPassword',
      'authorizationStateReady',
    ]);
    const me = await client.invokeUnchecked({ '@type': 'getMe' });
    expect(me).toMatchObject({
      '@type': 'user',
      id: 5550100001,
      phone_number: '15550100001',
      type: { '@type': 'userTypeRegular' },
    });
    expect(fx.world.events().map((e) => e.type)).toContain('login');
  });

  it('skips WaitPassword for accounts without 2FA', async () => {
    const client = session.manager.createClient();
    const rec = new Recorder(client);
    await client.invokeUnchecked(params(join(fx.dir, 'db-second')));
    await loginUser(client, '+15550100002', '54321');
    await rec.waitFor(isAuthState('authorizationStateReady'));
    expect(rec.authStates()).not.toContain('authorizationStateWaitPassword');
  });

  it('answers unknown and malformed phone numbers like Telegram, and unexpected calls like TDLib', async () => {
    const client = session.manager.createClient();
    await client.invokeUnchecked(params(join(fx.dir, 'db-x')));
    expect(
      await errorOf(client.invokeUnchecked({ '@type': 'setAuthenticationPhoneNumber', phone_number: '' })),
    ).toEqual({
      code: 400,
      message: 'Phone number must be non-empty',
    });
    for (const phone of ['+1999', '+19995550000']) {
      expect(
        await errorOf(
          client.invokeUnchecked({ '@type': 'setAuthenticationPhoneNumber', phone_number: phone }),
        ),
      ).toEqual({
        code: 400,
        message: 'PHONE_NUMBER_INVALID',
      });
    }
    expect(await errorOf(client.invokeUnchecked({ '@type': 'checkAuthenticationCode', code: '1' }))).toEqual({
      code: 400,
      message: 'Call to checkAuthenticationCode unexpected',
    });
    expect(
      await errorOf(client.invokeUnchecked({ '@type': 'checkAuthenticationPassword', password: '1' })),
    ).toEqual({
      code: 400,
      message: 'Call to checkAuthenticationPassword unexpected',
    });
    expect(await errorOf(client.invokeUnchecked({ '@type': 'sendMessage', chat_id: 1 }))).toEqual({
      code: 401,
      message: 'Unauthorized',
    });
  });

  it('runs one authorization query at a time, failing the older one like TDLib', async () => {
    await session.close();
    fx.cleanup();
    fx = makeWorld({ faults: { latency_ms: { default: 0, methods: { checkAuthenticationCode: 200 } } } });
    session = startSession(fx.dir);
    const client = session.manager.createClient();
    const rec = new Recorder(client);
    await client.invokeUnchecked(params(join(fx.dir, 'db-race')));
    await client.invokeUnchecked({ '@type': 'setAuthenticationPhoneNumber', phone_number: '+15550100002' });
    const first = errorOf(client.invokeUnchecked({ '@type': 'checkAuthenticationCode', code: '11111' }));
    const second = client.invokeUnchecked({ '@type': 'checkAuthenticationCode', code: '54321' });
    expect(await first).toEqual({ code: 400, message: 'Another authorization query has started' });
    await second;
    await rec.waitFor(isAuthState('authorizationStateReady'));
  });

  it('logs a bot in with its token and refuses a wrong one with ACCESS_TOKEN_INVALID', async () => {
    const client = session.manager.createClient();
    const rec = new Recorder(client);
    await client.invokeUnchecked(params(join(fx.dir, 'db-bot')));
    expect(
      await errorOf(
        client.invokeUnchecked({ '@type': 'checkAuthenticationBotToken', token: '7000000001:wrong' }),
      ),
    ).toEqual({
      code: 400,
      message: 'ACCESS_TOKEN_INVALID',
    });
    await client.invokeUnchecked({ '@type': 'checkAuthenticationBotToken', token: '7000000001:AAHdemo' });
    await rec.waitFor(isAuthState('authorizationStateReady'));
    const me = await client.invokeUnchecked({ '@type': 'getMe' });
    expect(me).toMatchObject({ id: 7000000001, type: { '@type': 'userTypeBot' } });
    expect(
      await errorOf(client.invokeUnchecked({ '@type': 'checkAuthenticationBotToken', token: 'x' })),
    ).toEqual({
      code: 400,
      message: 'Call to checkAuthenticationBotToken unexpected',
    });
  });

  it('logs in by QR code once the world confirms the link, then asks for the 2FA password', async () => {
    const client = session.manager.createClient();
    const rec = new Recorder(client);
    await client.invokeUnchecked(params(join(fx.dir, 'db-qr')));
    await client.invokeUnchecked({ '@type': 'requestQrCodeAuthentication', other_user_ids: [] });
    const waiting = await rec.waitFor(isAuthState('authorizationStateWaitOtherDeviceConfirmation'));
    const link = String((waiting.authorization_state as TdObject).link);
    expect(link).toMatch(/^tg:\/\/login\?token=[A-Za-z0-9_-]+$/);
    expect(fx.world.pendingQrLogins().map((t) => t.token)).toEqual([link.slice('tg://login?token='.length)]);
    expect(() => fx.world.confirmQrLogin('tg://login?token=unknown', '+15550100001')).toThrow(
      /unknown QR login token/,
    );
    fx.world.confirmQrLogin(link, '+15550100001');
    await rec.waitFor(isAuthState('authorizationStateWaitPassword'));
    await client.invokeUnchecked({ '@type': 'checkAuthenticationPassword', password: 'correct horse' });
    await rec.waitFor(isAuthState('authorizationStateReady'));
    expect(fx.world.pendingQrLogins()).toEqual([]);
  });

  it('shows a fresh QR link when the previous one expires', async () => {
    await session.close();
    fx.cleanup();
    fx = makeWorld({ simulation: { qr_link_ttl_seconds: 1 } });
    session = startSession(fx.dir);
    const client = session.manager.createClient();
    const rec = new Recorder(client);
    await client.invokeUnchecked(params(join(fx.dir, 'db-qr2')));
    await client.invokeUnchecked({ '@type': 'requestQrCodeAuthentication', other_user_ids: [] });
    const first = await rec.waitFor(isAuthState('authorizationStateWaitOtherDeviceConfirmation'));
    const second = await rec.waitFor(
      (u) =>
        isAuthState('authorizationStateWaitOtherDeviceConfirmation')(u) &&
        (u.authorization_state as TdObject).link !== (first.authorization_state as TdObject).link,
      4_000,
    );
    fx.world.confirmQrLogin(String((second.authorization_state as TdObject).link), 5550100002);
    await rec.waitFor(isAuthState('authorizationStateReady'));
  });

  it('resumes Ready after a restart without a new login, and refuses a wrong encryption key with 401', async () => {
    const db = join(fx.dir, 'db-resume');
    const key = Buffer.from('right key').toString('base64');
    const first = session.manager.createClient();
    await first.invokeUnchecked(params(db, key));
    await loginUser(first, '+15550100002', '54321');
    await first.close();
    await session.close();

    session = startSession(fx.dir);
    const wrong = session.manager.createClient();
    const rec = new Recorder(wrong);
    expect(
      await errorOf(wrong.invokeUnchecked(params(db, Buffer.from('other key').toString('base64')))),
    ).toEqual({
      code: 401,
      message: 'Wrong database encryption key',
    });
    expect(await errorOf(wrong.invokeUnchecked(params(db, '')))).toEqual({
      code: 401,
      message: 'Wrong database encryption key',
    });
    await wrong.invokeUnchecked(params(db, key));
    await rec.waitFor(isAuthState('authorizationStateReady'));
    expect(rec.authStates()).toEqual(['authorizationStateWaitTdlibParameters', 'authorizationStateReady']);
    expect(await wrong.invokeUnchecked({ '@type': 'getMe' })).toMatchObject({ id: 5550100002 });
  });

  it('treats an empty key as TDLib does ("cucumber") and rejects invalid base64 as a parse error', async () => {
    const db = join(fx.dir, 'db-cucumber');
    const a = session.manager.createClient();
    await a.invokeUnchecked(params(db, ''));
    await a.close();
    const b = session.manager.createClient();
    expect(await errorOf(b.invokeUnchecked(params(db, 'not base64!!')))).toEqual({
      code: 400,
      message: 'Failed to parse JSON object as TDLib request: Wrong character in the string',
    });
    await b.invokeUnchecked(params(db, Buffer.from('cucumber').toString('base64')));
  });

  it('keeps the login step across a restart (WaitCode is the first state after reopening)', async () => {
    const db = join(fx.dir, 'db-midway');
    const a = session.manager.createClient();
    await a.invokeUnchecked(params(db));
    await a.invokeUnchecked({ '@type': 'setAuthenticationPhoneNumber', phone_number: '+15550100001' });
    await a.close();
    const b = session.manager.createClient();
    const rec = new Recorder(b);
    await b.invokeUnchecked(params(db));
    expect(rec.authStates()).toEqual(['authorizationStateWaitTdlibParameters', 'authorizationStateWaitCode']);
    await b.invokeUnchecked({ '@type': 'checkAuthenticationCode', code: '12345' });
    await rec.waitFor(isAuthState('authorizationStateWaitPassword'));
  });

  it('locks the database directory like TDLib locks td.binlog', async () => {
    const db = join(fx.dir, 'db-locked');
    const a = session.manager.createClient();
    await a.invokeUnchecked(params(db));
    const b = session.manager.createClient();
    expect(await errorOf(b.invokeUnchecked(params(db)))).toEqual({
      code: 400,
      message: `Can't lock file "${db}/td.binlog", because it is already in use by current program`,
    });
    await a.close();
    await b.invokeUnchecked(params(db));
  });

  it('orders close as ok, Closing, Closed and answers later requests with 500', async () => {
    const client = session.manager.createClient();
    const rec = new Recorder(client);
    await client.invokeUnchecked(params(join(fx.dir, 'db-close')));
    const seenBefore = session.checked.seen.length;
    await client.close();
    const after = session.checked.seen
      .slice(seenBefore)
      .map((o) =>
        o['@type'] === 'updateAuthorizationState' ? (o.authorization_state as TdObject)['@type'] : o['@type'],
      );
    expect(after.filter((t) => t !== 'updateConnectionState')).toEqual([
      'ok',
      'authorizationStateClosing',
      'authorizationStateClosed',
    ]);
    expect(rec.authStates().slice(-2)).toEqual(['authorizationStateClosing', 'authorizationStateClosed']);
    // TdClient refuses requests to a closed client itself; TDLib's answer is visible on the raw backend.
    session.backend.send(client.id, '{"@type":"getMe","@extra":"late"}');
    await new Promise((r) => setImmediate(r));
    expect(session.checked.seen.find((o) => o['@extra'] === 'late')).toMatchObject({
      '@type': 'error',
      code: 500,
      message: 'Request aborted',
    });
  });

  it('logOut ends the server session and deletes the local one; destroy keeps the server session', async () => {
    const dbA = join(fx.dir, 'db-logout');
    const a = session.manager.createClient();
    const recA = new Recorder(a);
    await a.invokeUnchecked(params(dbA));
    await loginUser(a, '+15550100002', '54321');
    await a.invokeUnchecked({ '@type': 'logOut' });
    await recA.waitFor(isAuthState('authorizationStateClosed'));
    expect(recA.authStates().slice(-3)).toEqual([
      'authorizationStateReady',
      'authorizationStateLoggingOut',
      'authorizationStateClosed',
    ]);
    expect(existsSync(join(dbA, 'td.binlog'))).toBe(false);
    expect(fx.world.sessions().find((s) => s.user_id === 5550100002)?.revoked?.reason).toBe('LOG_OUT');

    const dbB = join(fx.dir, 'db-destroy');
    const b = session.manager.createClient();
    const recB = new Recorder(b);
    await b.invokeUnchecked(params(dbB));
    await b.invokeUnchecked({ '@type': 'checkAuthenticationBotToken', token: '7000000001:AAHdemo' });
    await b.invokeUnchecked({ '@type': 'destroy' });
    await recB.waitFor(isAuthState('authorizationStateClosed'));
    expect(existsSync(join(dbB, 'td.binlog'))).toBe(false);
    const botSession = fx.world.sessions().find((s) => s.user_id === 7000000001);
    expect(botSession?.revoked).toBeUndefined();
  });

  it('loses the authorization when the session is terminated from "another device"', async () => {
    const client = session.manager.createClient();
    const rec = new Recorder(client);
    await client.invokeUnchecked(params(join(fx.dir, 'db-term')));
    await loginUser(client, '+15550100002', '54321');
    await rec.waitFor(isAuthState('authorizationStateReady'));
    expect(fx.world.terminateSessions(5550100002)).toBe(1);
    await rec.waitFor(isAuthState('authorizationStateClosed'));
    expect(rec.authStates().slice(-2)).toEqual(['authorizationStateLoggingOut', 'authorizationStateClosed']);
    expect(
      fx.world.events().some((e) => e.type === 'authorization_lost' && e.detail === 'SESSION_REVOKED'),
    ).toBe(true);
  });

  it('kills both copies of a session used by two live clients (AUTH_KEY_DUPLICATED)', async () => {
    const original = join(fx.dir, 'db-orig');
    const a = session.manager.createClient();
    const recA = new Recorder(a);
    await a.invokeUnchecked(params(original));
    await loginUser(a, '+15550100002', '54321');
    await recA.waitFor(isAuthState('authorizationStateReady'));
    const copy = join(fx.dir, 'db-copy');
    cpSync(original, copy, { recursive: true });

    const other = startSession(fx.dir);
    try {
      const b = other.manager.createClient();
      const recB = new Recorder(b);
      await b.invokeUnchecked(params(copy));
      for (const rec of [recA, recB]) {
        const notice = await rec.waitFor((u) => u['@type'] === 'updateServiceNotification');
        expect(notice.type).toBe('AUTH_KEY_DROP_DUPLICATE');
        await rec.waitFor(isAuthState('authorizationStateClosed'));
        expect(rec.authStates().slice(-2)).toEqual([
          'authorizationStateLoggingOut',
          'authorizationStateClosed',
        ]);
      }
      expect(existsSync(join(original, 'td.binlog'))).toBe(false);
      expect(existsSync(join(copy, 'td.binlog'))).toBe(false);
      expect(fx.world.events().filter((e) => e.type === 'auth_key_duplicated')).toHaveLength(1);
    } finally {
      await other.close();
      expect(other.checked.problems).toEqual([]);
    }
  });
});
