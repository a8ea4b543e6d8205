/**
 * Authorization, as TDLib sequences it: WaitTdlibParameters -> WaitPhoneNumber -> WaitCode ->
 * (WaitPassword) -> Ready, bot tokens, QR login confirmed from "another device" (the test side), logOut
 * and destroy (session.ts has close and losing the session). Orders of updates and answers follow what
 * libtdjson 1.8.67 does offline: state update before `ok` for setTdlibParameters and logOut, `ok` first
 * for close and destroy.
 */
import { randomBytes } from 'node:crypto';
import { resolve } from 'node:path';
import type { SimClient } from './client.js';
import { resumePendingSends, userObject } from './messaging.js';
import { PendingStore } from './pending.js';
import * as network from './network.js';
import { dropQrToken, finishClose, onConnectedReady, qrTokenPath } from './session.js';
import * as O from './objects.js';
import { bool, bytes, int32, str, TdApiError, type Json, type JsonObject } from './protocol.js';
import {
  deletePendingSends,
  deleteSession,
  newSession,
  readSession,
  writeSession,
  WrongKeyError,
  type AuthProgress,
  type SessionData,
} from './session-db.js';
import { ensureDir, writeJsonAtomic, readJson, isErrno } from './store/files.js';
import { isQrTokenRecord, type UserView } from './world.js';
import { normalizePhone } from './world-schema.js';

const LOCK_IN_USE_HERE = 'because it is already in use by current program';
const LOCK_IN_USE_ELSEWHERE = 'because it is already in use; check for another program instance running';

function saveSession(
  client: SimClient,
  change: Partial<SessionData> & { auth?: AuthProgress | undefined },
): void {
  const current = client.session;
  if (current === undefined) return;
  const next: SessionData = { ...current, ...change };
  if (change.auth === undefined && 'auth' in change) delete (next as { auth?: AuthProgress }).auth;
  client.session = next;
  writeSession(client.databaseDirectory, client.databaseKey, next);
}

export function setTdlibParameters(client: SimClient, request: JsonObject, extra: Json | undefined): void {
  const key = bytes(request, 'database_encryption_key');
  if (int32(request, 'api_id') <= 0) {
    throw new TdApiError(400, 'Valid api_id must be provided. Can be obtained at https://my.telegram.org');
  }
  if (str(request, 'api_hash') === '') {
    throw new TdApiError(400, 'Valid api_hash must be provided. Can be obtained at https://my.telegram.org');
  }
  if (str(request, 'system_language_code') === '')
    throw new TdApiError(400, 'System language code must be non-empty');
  if (str(request, 'device_model') === '') throw new TdApiError(400, 'Device model must be non-empty');
  if (str(request, 'application_version') === '')
    throw new TdApiError(400, 'Application version must be non-empty');
  bool(request, 'use_test_dc');
  const messageDatabase = bool(request, 'use_message_database');
  const directory = resolve(str(request, 'database_directory') || '.');
  const rt = client.rt;

  const lock = rt.dbLocks.acquire(directory, client.holder);
  if (!lock.ok) {
    const here = lock.holder.instance === rt.registry.own.instance;
    throw new TdApiError(
      400,
      `Can't lock file "${directory}/td.binlog", ${here ? LOCK_IN_USE_HERE : LOCK_IN_USE_ELSEWHERE}`,
    );
  }
  let session: SessionData | undefined;
  try {
    ensureDir(directory);
    session = readSession(directory, key);
    if (session === undefined) {
      session = newSession();
      writeSession(directory, key, session);
    }
  } catch (error) {
    rt.dbLocks.release(directory, client.holder);
    if (error instanceof WrongKeyError) throw new TdApiError(401, 'Wrong database encryption key');
    throw error;
  }
  client.dbLocked = true;
  client.databaseDirectory = directory;
  client.databaseKey = key;
  client.session = session;
  client.initialized = true;
  client.messageDatabase = messageDatabase;
  // Without the message database TDLib keeps no SendMessage events: whatever an earlier run left is erased.
  if (messageDatabase) client.pendingSends = PendingStore.open(rt, directory, key);
  else deletePendingSends(directory);

  const now = Math.floor(rt.now() / 1000);
  for (const [name, value] of [
    ['unix_time', O.optionInteger(now)],
    ['utc_time_offset', O.optionInteger(0)],
    ['telegram_service_notifications_chat_id', O.optionInteger(777000)],
    ['replies_bot_chat_id', O.optionInteger(1271266957)],
    ['verification_codes_bot_chat_id', O.optionInteger(489000)],
    ['message_caption_length_max', O.optionInteger(1024)],
    ['message_text_length_max', O.optionInteger(4096)],
  ] as const) {
    client.options.set(name, value);
    client.update(O.updateOption(name, value));
  }
  resumeAuthorization(client);
  client.reply(extra, O.ok());
  client.drainPreInit();
  network.startConnection(client);
}

/** The first state after the database opens: whatever the persisted login progress says. */
function resumeAuthorization(client: SimClient): void {
  const progress = client.session?.auth;
  const view = client.rt.view();
  const user = progress === undefined ? undefined : view.users.get(progress.user_id);
  if (progress === undefined || user === undefined) {
    client.setAuthState({ '@type': 'authorizationStateWaitPhoneNumber' });
    return;
  }
  switch (progress.step) {
    case 'wait_code':
      client.me = user;
      client.setAuthState(O.waitCodeState(`+${progress.phone}`, view.config.simulation.code_length));
      return;
    case 'wait_password':
      client.me = user;
      client.setAuthState(
        O.waitPasswordState(user.login?.password_hint ?? '', user.login?.has_recovery_email_address ?? false),
      );
      return;
    case 'ready':
      becomeReady(client, user);
      return;
  }
}

/**
 * Sends an authorization query. TDLib runs one at a time: a new one fails the previous with
 * "Another authorization query has started".
 */
function authQuery(
  client: SimClient,
  method: string,
  extra: Json | undefined,
  work: () => { readonly '@type': string },
): void {
  if (client.authQuery !== undefined) {
    client.cancelNetwork(client.authQuery, 400, 'Another authorization query has started');
  }
  const token = client.networkCall(method, extra, () => {
    if (client.authQuery === token) client.authQuery = undefined;
    return work();
  });
  client.authQuery = token;
}

export function handle(client: SimClient, type: string, request: JsonObject, extra: Json | undefined): void {
  const state = client.authState['@type'];
  switch (type) {
    case 'setAuthenticationPhoneNumber': {
      if (
        state !== 'authorizationStateWaitPhoneNumber' &&
        state !== 'authorizationStateWaitCode' &&
        state !== 'authorizationStateWaitPassword' &&
        state !== 'authorizationStateWaitOtherDeviceConfirmation'
      ) {
        throw new TdApiError(400, 'Call to setAuthenticationPhoneNumber unexpected');
      }
      const phone = str(request, 'phone_number');
      if (phone === '') throw new TdApiError(400, 'Phone number must be non-empty');
      return authQuery(client, 'setAuthenticationPhoneNumber', extra, () => sendCode(client, phone));
    }
    case 'resendAuthenticationCode': {
      if (state !== 'authorizationStateWaitCode')
        throw new TdApiError(400, 'Call to resendAuthenticationCode unexpected');
      return authQuery(client, 'resendAuthenticationCode', extra, () => {
        client.setAuthState(structuredClone(client.authState));
        return O.ok();
      });
    }
    case 'checkAuthenticationCode': {
      if (state !== 'authorizationStateWaitCode')
        throw new TdApiError(400, 'Call to checkAuthenticationCode unexpected');
      const code = str(request, 'code');
      return authQuery(client, 'checkAuthenticationCode', extra, () => checkCode(client, code));
    }
    case 'checkAuthenticationPassword': {
      if (state !== 'authorizationStateWaitPassword') {
        throw new TdApiError(400, 'Call to checkAuthenticationPassword unexpected');
      }
      const password = str(request, 'password');
      return authQuery(client, 'checkAuthenticationPassword', extra, () => checkPassword(client, password));
    }
    case 'checkAuthenticationBotToken': {
      if (state !== 'authorizationStateWaitPhoneNumber') {
        throw new TdApiError(400, 'Call to checkAuthenticationBotToken unexpected');
      }
      const token = str(request, 'token');
      return authQuery(client, 'checkAuthenticationBotToken', extra, () => checkBotToken(client, token));
    }
    case 'requestQrCodeAuthentication': {
      if (
        state !== 'authorizationStateWaitPhoneNumber' &&
        state !== 'authorizationStateWaitCode' &&
        state !== 'authorizationStateWaitPassword' &&
        state !== 'authorizationStateWaitOtherDeviceConfirmation'
      ) {
        throw new TdApiError(400, 'Call to requestQrCodeAuthentication unexpected');
      }
      return authQuery(client, 'requestQrCodeAuthentication', extra, () => {
        newQrToken(client);
        return O.ok();
      });
    }
    case 'logOut':
      return logOut(client, extra);
    case 'destroy':
      return destroy(client, extra);
  }
}

function sendCode(client: SimClient, phone: string): { readonly '@type': string } {
  const digits = normalizePhone(phone);
  const view = client.rt.view();
  const user = view.byPhone.get(digits);
  // Numbers that are not accounts of this world have no sign-up flow here: Telegram's answer for numbers
  // it will not send a code to is PHONE_NUMBER_INVALID.
  if (!/^[0-9]{5,15}$/.test(digits) || user === undefined || user.login === undefined) {
    throw new TdApiError(400, 'PHONE_NUMBER_INVALID');
  }
  if (user.deactivated) throw new TdApiError(400, 'PHONE_NUMBER_BANNED');
  dropQrToken(client);
  client.me = user;
  saveSession(client, { auth: { step: 'wait_code', user_id: user.id, phone: digits } });
  client.setAuthState(O.waitCodeState(`+${digits}`, view.config.simulation.code_length));
  return O.ok();
}

function currentUser(client: SimClient): UserView {
  const id = client.session?.auth?.user_id;
  const user = id === undefined ? undefined : client.rt.view().users.get(id);
  if (user === undefined) throw new TdApiError(400, 'PHONE_NUMBER_INVALID');
  return user;
}

function checkCode(client: SimClient, code: string): { readonly '@type': string } {
  const user = currentUser(client);
  if (code === '') throw new TdApiError(400, 'PHONE_CODE_EMPTY');
  if (user.login === undefined || code !== user.login.code) throw new TdApiError(400, 'PHONE_CODE_INVALID');
  afterFirstFactor(client, user);
  return O.ok();
}

function afterFirstFactor(client: SimClient, user: UserView): void {
  if (user.login?.password !== undefined) {
    client.me = user;
    saveSession(client, { auth: { step: 'wait_password', user_id: user.id } });
    client.setAuthState(O.waitPasswordState(user.login.password_hint, user.login.has_recovery_email_address));
    return;
  }
  authorize(client, user, false);
}

function checkPassword(client: SimClient, password: string): { readonly '@type': string } {
  const user = currentUser(client);
  if (password !== user.login?.password) throw new TdApiError(400, 'PASSWORD_HASH_INVALID');
  authorize(client, user, false);
  return O.ok();
}

function checkBotToken(client: SimClient, token: string): { readonly '@type': string } {
  const user = client.rt.view().byToken.get(token);
  if (user === undefined) throw new TdApiError(400, 'ACCESS_TOKEN_INVALID');
  if (user.deactivated) throw new TdApiError(401, 'ACCESS_TOKEN_EXPIRED');
  authorize(client, user, true);
  return O.ok();
}

/** The server accepted the login: the auth key becomes a session of the account. */
function authorize(client: SimClient, user: UserView, isBot: boolean): void {
  const session = client.session;
  if (session === undefined) return;
  dropQrToken(client);
  saveSession(client, { auth: { step: 'ready', user_id: user.id, is_bot: isBot } });
  client.rt.world.saveSession({ auth_key: session.auth_key, user_id: user.id, authorized_at: Date.now() });
  client.rt.event({ type: 'login', user_id: user.id, auth_key: session.auth_key });
  becomeReady(client, user);
}

function becomeReady(client: SimClient, user: UserView): void {
  client.me = user;
  client.account = client.rt.account(user.id);
  const myId = O.optionInteger(user.id);
  client.options.set('my_id', myId);
  client.update(O.updateOption('my_id', myId));
  client.update(O.updateOption('authorization_date', O.optionInteger(Math.floor(client.rt.now() / 1000))));
  client.knownUsers.set(user.id, user.deactivated);
  client.update(O.updateUser(userObject(client, user)));
  client.setAuthState({ '@type': 'authorizationStateReady' });
  client.readySince = Date.now();
  if (client.connection === 'connectionStateReady') onConnectedReady(client);
  // TDLib goes through its binlog's SendMessage events once the client is up: after this answer's turn.
  if ((client.pendingSends?.size ?? 0) > 0) client.rt.scheduler.after(0, () => resumePendingSends(client));
}

function logOut(client: SimClient, extra: Json | undefined): void {
  if (client.authState['@type'] === 'authorizationStateLoggingOut')
    throw new TdApiError(400, 'Already logging out');
  const session = client.session;
  const known = session !== undefined && client.rt.world.session(session.auth_key) !== undefined;
  client.setAuthState({ '@type': 'authorizationStateLoggingOut' });
  client.reply(extra, O.ok());
  client.abortInFlight(500, 'Request aborted');
  if (session === undefined || !known) {
    // Nothing the server knows of: TDLib destroys its keys at once.
    finishLogOut(client);
    return;
  }
  // auth.logOut is a network request: it waits for the connection and takes its latency (TDLib answers `ok`
  // at once and stays LoggingOut until the server answered). A close meanwhile leaves the session as it was.
  client.networkCall(
    'logOut',
    undefined,
    () => {
      client.rt.world.revokeSession(session.auth_key, 'LOG_OUT');
      client.rt.event({
        type: 'logout',
        auth_key: session.auth_key,
        ...(client.me ? { user_id: client.me.id } : {}),
      });
      finishLogOut(client);
      return undefined;
    },
    true,
  );
}

function finishLogOut(client: SimClient): void {
  client.phase = 'closing';
  dropQrToken(client);
  client.dropPendingSends();
  deleteSession(client.databaseDirectory);
  client.session = undefined;
  finishClose(client);
}

/** Drops local data without telling the server: the session stays in the account's session list. */
function destroy(client: SimClient, extra: Json | undefined): void {
  client.reply(extra, O.ok());
  client.phase = 'closing';
  client.setAuthState({ '@type': 'authorizationStateLoggingOut' });
  client.abortInFlight(500, 'Request aborted');
  const session = client.session;
  if (session !== undefined) client.rt.event({ type: 'destroy', auth_key: session.auth_key });
  dropQrToken(client);
  client.dropPendingSends();
  deleteSession(client.databaseDirectory);
  client.session = undefined;
  finishClose(client);
}

// ---- QR login -------------------------------------------------------------------------------------

function newQrToken(client: SimClient): void {
  dropQrToken(client);
  const rt = client.rt;
  const ttl = rt.view().config.simulation.qr_link_ttl_seconds * 1000;
  const token = randomBytes(24).toString('base64url');
  const now = Date.now();
  ensureDir(rt.world.path('qr'));
  writeJsonAtomic(qrTokenPath(client, token), {
    token,
    created_at: now,
    expires_at: now + ttl,
    instance: rt.registry.own.instance,
    client_id: client.id,
  });
  client.qr = { token, expiresAt: now + ttl };
  client.setAuthState({
    '@type': 'authorizationStateWaitOtherDeviceConfirmation',
    link: `tg://login?token=${token}`,
  });
}

/** Polled: another device confirmed the link (login continues), or the link expired (a new one is shown). */
export function checkQrLogin(client: SimClient): void {
  const qr = client.qr;
  if (qr === undefined || client.authState['@type'] !== 'authorizationStateWaitOtherDeviceConfirmation')
    return;
  let record: unknown;
  try {
    record = readJson(qrTokenPath(client, qr.token));
  } catch (error) {
    if (!isErrno(error, 'ENOENT')) throw error;
  }
  if (isQrTokenRecord(record) && record.confirmed_by !== undefined) {
    const user = client.rt.view().users.get(record.confirmed_by);
    dropQrToken(client);
    if (user === undefined) return;
    afterFirstFactor(client, user);
    return;
  }
  if (Date.now() >= qr.expiresAt && client.connection === 'connectionStateReady') newQrToken(client);
}
