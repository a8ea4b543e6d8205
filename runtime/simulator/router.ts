/**
 * Which handler answers a request, following Td::run_request: offline test and synchronous methods always
 * answer, pre-authentication requests wait for setTdlibParameters, everything else needs parameters first
 * and then an authorized session. Also the per-client side of the backend's periodic tick.
 */
import * as auth from './auth.js';
import { SimClient } from './client.js';
import { executeSync, executeTest, SYNC_METHODS, TEST_METHODS } from './execute.js';
import * as editing from './editing.js';
import * as history from './history.js';
import * as messaging from './messaging.js';
import * as network from './network.js';
import * as O from './objects.js';
import { parseRequest, str, TdApiError, type Json, type JsonObject } from './protocol.js';
import type { SimRuntime } from './runtime.js';
import * as session from './session.js';

/** Requests TDLib queues until the database is open instead of refusing them (Td::is_preauthentication_request). */
const PRE_AUTHENTICATION = new Set([
  'addProxy',
  'editProxy',
  'enableProxy',
  'disableProxy',
  'removeProxy',
  'getProxies',
  'getProxyLink',
  'pingProxy',
  'testNetwork',
  'getOption',
  'setOption',
  'setNetworkType',
  'getNetworkStatistics',
  'addNetworkStatistics',
  'resetNetworkStatistics',
  'getCountries',
  'getCountryCode',
  'getPhoneNumberInfo',
  'getDeepLinkInfo',
  'getApplicationConfig',
  'saveApplicationLogEvent',
  'getLocalizationTargetInfo',
]);

function isSyncOption(request: JsonObject): boolean {
  const name = request.name;
  return name === 'version' || name === 'commit_hash';
}

function route(client: SimClient, type: string, request: JsonObject, extra: Json | undefined): void {
  if (client.phase !== 'open') {
    client.replyError(extra, 500, 'Request aborted');
    return;
  }
  if (type === 'getAuthorizationState') return client.reply(extra, structuredClone(client.authState));
  if (type === 'close') return session.close(client, extra);
  if (TEST_METHODS.has(type)) return client.reply(extra, executeTest(type, request));
  if (type === 'testReturnError') return client.reply(extra, executeSync(type, request));
  if (SYNC_METHODS.has(type) && !(type === 'getOption' && !isSyncOption(request))) {
    return client.reply(extra, executeSync(type, request));
  }
  if (type === 'testProxy') return network.testProxy(client, request, extra);
  if (!client.initialized) {
    if (type === 'setTdlibParameters') return auth.setTdlibParameters(client, request, extra);
    if (PRE_AUTHENTICATION.has(type)) {
      client.preInit.push({ type, request, extra });
      return;
    }
    throw new TdApiError(400, 'Initialization parameters are needed: call setTdlibParameters first');
  }
  switch (type) {
    case 'setTdlibParameters':
      throw new TdApiError(400, 'Unexpected setTdlibParameters');
    case 'getOption':
      return client.reply(extra, network.getOption(client, str(request, 'name')));
    case 'setOption':
      return network.setOption(client, request, extra);
    case 'addProxy':
    case 'editProxy':
    case 'enableProxy':
    case 'disableProxy':
    case 'removeProxy':
    case 'getProxies':
    case 'pingProxy':
    case 'testNetwork':
    case 'setNetworkType':
      return network.handle(client, type, request, extra);
    case 'setAuthenticationPhoneNumber':
    case 'checkAuthenticationCode':
    case 'checkAuthenticationPassword':
    case 'checkAuthenticationBotToken':
    case 'requestQrCodeAuthentication':
    case 'resendAuthenticationCode':
    case 'logOut':
    case 'destroy':
      return auth.handle(client, type, request, extra);
    default:
      break;
  }
  if (!client.isReady) throw new TdApiError(401, 'Unauthorized');
  if (history.HISTORY_METHODS.has(type)) return history.handle(client, type, request, extra);
  if (editing.EDIT_METHODS.has(type)) return editing.handle(client, type, request, extra);
  messaging.handle(client, type, request, extra);
}

export function createClient(rt: SimRuntime, id: number): SimClient {
  return new SimClient(rt, id, route);
}

/** td_send for one client: the first request starts it, like TDLib (version, commit_hash, first state). */
export function receive(client: SimClient, text: string): void {
  const parsed = parseRequest(text);
  if (!client.started) {
    client.started = true;
    client.update(O.updateOption('version', O.optionString(O.TDLIB_VERSION)));
    client.update(O.updateOption('commit_hash', O.optionString(O.SIMULATOR_COMMIT_HASH)));
    client.update(O.updateAuthorizationState(client.authState));
  }
  if (!parsed.ok) {
    client.reply(parsed.extra, O.error(parsed.error.code, parsed.error.message));
    return;
  }
  client.run(parsed.type, parsed.request, parsed.extra);
}

/** Periodic work for one client: connection health, QR confirmations, duplicate sessions. */
export function tick(client: SimClient, now: number): void {
  if (client.phase === 'closing') session.tickClose(client, now);
  if (client.phase !== 'open' || !client.initialized) return;
  network.updateConnection(client);
  if (client.qr !== undefined) auth.checkQrLogin(client);
  if (
    client.leaseKey !== undefined &&
    now - client.lastHealthCheck >= client.rt.view().config.simulation.heartbeat_interval_ms
  ) {
    client.lastHealthCheck = now;
    session.checkSessionHealth(client);
  }
}
