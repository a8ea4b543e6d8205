/**
 * The network as a client sees it: updateConnectionState transitions, proxies (1.8.61+ API: addProxy takes
 * a `proxy` object and answers addedProxy), pings, options, and the world's fault knobs (per-method
 * latency, error rate, "disconnected"). A proxy the world lists as dead never connects: the client stays
 * in connectionStateConnectingToProxy and its network requests wait, as with real TDLib behind a dead proxy.
 */
import type { ConnectionType, SimClient } from './client.js';
import { errorFires } from './faults.js';
import * as O from './objects.js';
import { bool, int32, int53, object, str, TdApiError, type Json, type JsonObject } from './protocol.js';
import { writeSession, type StoredProxy } from './session-db.js';
import { onConnectedReady } from './session.js';

export function latencyOf(client: SimClient, method: string): number {
  const latency = client.rt.view().config.faults.latency_ms;
  return latency.methods[method] ?? latency.default;
}

/** An error answer chosen by the world's error_rate for this method, or undefined. */
export function injectedError(client: SimClient, method: string): O.TdError | undefined {
  const faults = client.rt.view().config.faults;
  const rate = faults.error_rate.methods[method] ?? faults.error_rate.default;
  if (!errorFires(client.rt, rate)) return undefined;
  return O.error(faults.error.code, faults.error.message);
}

function enabledProxy(client: SimClient): StoredProxy | undefined {
  return client.session?.proxies.find((p) => p.enabled);
}

function desiredConnection(client: SimClient): ConnectionType {
  if (client.networkDown) return 'connectionStateWaitingForNetwork';
  const view = client.rt.view();
  const proxy = enabledProxy(client);
  if (view.config.faults.disconnected)
    return proxy ? 'connectionStateConnectingToProxy' : 'connectionStateConnecting';
  if (proxy !== undefined && view.isProxyDead(proxy.server, proxy.port))
    return 'connectionStateConnectingToProxy';
  return 'connectionStateReady';
}

function setConnection(client: SimClient, state: ConnectionType): void {
  if (client.connection === state) return;
  client.connection = state;
  client.update(O.updateConnectionState(state));
}

export function startConnection(client: SimClient): void {
  const desired = desiredConnection(client);
  setConnection(
    client,
    desired === 'connectionStateReady'
      ? enabledProxy(client)
        ? 'connectionStateConnectingToProxy'
        : 'connectionStateConnecting'
      : desired,
  );
  updateConnection(client);
}

/** Moves the connection toward what the world allows now; called on every tick and on proxy changes. */
export function updateConnection(client: SimClient): void {
  if (client.phase !== 'open' || !client.initialized) return;
  const desired = desiredConnection(client);
  if (desired !== 'connectionStateReady') {
    setConnection(client, desired);
    return;
  }
  if (client.connection === 'connectionStateReady' || client.connecting) return;
  client.connecting = true;
  client.rt.scheduler.after(client.rt.view().config.network.connect_delay_ms, () => {
    client.connecting = false;
    if (client.phase !== 'open') return;
    if (desiredConnection(client) !== 'connectionStateReady') {
      updateConnection(client);
      return;
    }
    const proxy = enabledProxy(client);
    if (proxy !== undefined) touchProxy(client, proxy.id);
    if (client.isReady) setConnection(client, 'connectionStateUpdating');
    setConnection(client, 'connectionStateReady');
    onConnectedReady(client);
    for (const attempt of client.waitingForNetwork.splice(0)) attempt();
  });
}

/** A proxy change drops the current connection and starts over (TDLib reconnects through the new route). */
function reconnect(client: SimClient): void {
  const desired = desiredConnection(client);
  const connectingState = enabledProxy(client)
    ? 'connectionStateConnectingToProxy'
    : 'connectionStateConnecting';
  setConnection(client, desired === 'connectionStateReady' ? connectingState : desired);
  updateConnection(client);
}

function saveProxies(client: SimClient, proxies: StoredProxy[], nextId?: number): void {
  const session = client.session;
  if (session === undefined) return;
  client.session = { ...session, proxies, next_proxy_id: nextId ?? session.next_proxy_id };
  writeSession(client.databaseDirectory, client.databaseKey, client.session);
}

function touchProxy(client: SimClient, id: number): void {
  const now = Math.floor(client.rt.now() / 1000);
  saveProxies(
    client,
    (client.session?.proxies ?? []).map((p) => (p.id === id ? { ...p, last_used_date: now } : p)),
  );
}

function addedProxyObject(p: StoredProxy): O.TdAddedProxy {
  const proxy = { '@type': 'proxy', server: p.server, port: p.port, type: p.type } as unknown as O.TdProxy;
  return O.addedProxy(p.id, proxy, p.enabled, p.last_used_date, p.comment);
}

/** MTProto secrets: hex, or base64/base64url; 16 bytes, 17 starting with 0xdd, 18+ starting with 0xee. */
function checkSecret(secret: string): void {
  let raw: Buffer | undefined;
  if (/^[0-9a-fA-F]+$/.test(secret) && secret.length % 2 === 0) raw = Buffer.from(secret, 'hex');
  else if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(secret))
    raw = Buffer.from(secret.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  if (raw === undefined || raw.length < 16) throw new TdApiError(400, 'Wrong proxy secret');
  const first = raw[0];
  const ok =
    raw.length === 16 || (raw.length === 17 && first === 0xdd) || (raw.length >= 18 && first === 0xee);
  if (!ok) throw new TdApiError(400, 'Unsupported proxy secret');
}

interface ProxyArg {
  readonly server: string;
  readonly port: number;
  readonly type: Json;
}

function readProxy(request: JsonObject, field: string): ProxyArg | null {
  const proxy = object(request, field, ['proxy']);
  if (proxy === null) return null;
  const server = str(proxy, 'server');
  const port = int32(proxy, 'port');
  const type = object(proxy, 'type', ['proxyTypeSocks5', 'proxyTypeHttp', 'proxyTypeMtproto']);
  if (server === '') throw new TdApiError(400, 'Server name must be non-empty');
  if (Buffer.byteLength(server) > 255) throw new TdApiError(400, 'Server name is too long');
  if (port <= 0 || port >= 65536) throw new TdApiError(400, 'Wrong port number');
  if (type === null) throw new TdApiError(400, 'Proxy type must be non-empty');
  let normalized: Json;
  switch (type['@type']) {
    case 'proxyTypeSocks5':
      normalized = {
        '@type': 'proxyTypeSocks5',
        username: str(type, 'username'),
        password: str(type, 'password'),
      };
      break;
    case 'proxyTypeHttp':
      normalized = {
        '@type': 'proxyTypeHttp',
        username: str(type, 'username'),
        password: str(type, 'password'),
        http_only: bool(type, 'http_only'),
      };
      break;
    default: {
      const secret = str(type, 'secret');
      checkSecret(secret);
      normalized = { '@type': 'proxyTypeMtproto', secret };
    }
  }
  return { server, port, type: normalized };
}

function proxyIndex(client: SimClient, id: number): number {
  const index = (client.session?.proxies ?? []).findIndex((p) => p.id === id);
  if (index < 0) throw new TdApiError(400, 'Unknown proxy identifier');
  return index;
}

/** Whether a connection through `proxy` (or directly, when null) could be made right now. */
function reachable(client: SimClient, proxy: ProxyArg | null): boolean {
  const view = client.rt.view();
  if (client.networkDown || view.config.faults.disconnected) return false;
  return proxy === null || !view.isProxyDead(proxy.server, proxy.port);
}

function ping(
  client: SimClient,
  proxy: ProxyArg | null,
  extra: Json | undefined,
  answer: () => { readonly '@type': string },
): void {
  const view = client.rt.view();
  const ok = reachable(client, proxy);
  client.rt.scheduler.after(ok ? view.config.network.ping_ms : view.config.network.connect_delay_ms, () => {
    if (client.phase !== 'open') return;
    if (ok) client.reply(extra, answer());
    else client.replyError(extra, 400, view.config.network.dead_proxy_error);
  });
}

export function testProxy(client: SimClient, request: JsonObject, extra: Json | undefined): void {
  const proxy = readProxy(request, 'proxy');
  if (proxy === null) throw new TdApiError(400, 'Proxy must be non-empty');
  ping(client, proxy, extra, () => O.ok());
}

export function handle(client: SimClient, type: string, request: JsonObject, extra: Json | undefined): void {
  const session = client.session;
  if (session === undefined) throw new TdApiError(500, 'Request aborted');
  const proxies = [...session.proxies];
  switch (type) {
    case 'addProxy':
    case 'editProxy': {
      const index = type === 'editProxy' ? proxyIndex(client, int32(request, 'proxy_id')) : -1;
      const proxy = readProxy(request, 'proxy');
      if (proxy === null) throw new TdApiError(400, 'Proxy must be non-empty');
      const enable = bool(request, 'enable');
      const id = index >= 0 ? (proxies[index] as StoredProxy).id : session.next_proxy_id;
      const stored: StoredProxy = {
        id,
        ...proxy,
        enabled: enable || (index >= 0 && (proxies[index] as StoredProxy).enabled),
        last_used_date: index >= 0 ? (proxies[index] as StoredProxy).last_used_date : 0,
        comment: str(request, 'comment'),
      };
      const next = proxies.map((p) => (enable ? { ...p, enabled: false } : p));
      if (index >= 0) next[index] = stored;
      else next.push(stored);
      saveProxies(client, next, index >= 0 ? session.next_proxy_id : session.next_proxy_id + 1);
      client.reply(extra, addedProxyObject(stored));
      if (enable || stored.enabled) reconnect(client);
      return;
    }
    case 'enableProxy': {
      const index = proxyIndex(client, int32(request, 'proxy_id'));
      saveProxies(
        client,
        proxies.map((p, i) => ({ ...p, enabled: i === index })),
      );
      client.reply(extra, O.ok());
      reconnect(client);
      return;
    }
    case 'disableProxy': {
      const had = proxies.some((p) => p.enabled);
      saveProxies(
        client,
        proxies.map((p) => ({ ...p, enabled: false })),
      );
      client.reply(extra, O.ok());
      if (had) reconnect(client);
      return;
    }
    case 'removeProxy': {
      const index = proxyIndex(client, int32(request, 'proxy_id'));
      const wasEnabled = (proxies[index] as StoredProxy).enabled;
      proxies.splice(index, 1);
      saveProxies(client, proxies);
      client.reply(extra, O.ok());
      if (wasEnabled) reconnect(client);
      return;
    }
    case 'getProxies':
      client.reply(extra, { '@type': 'addedProxies', proxies: proxies.map(addedProxyObject) } as {
        readonly '@type': string;
      });
      return;
    case 'pingProxy': {
      const proxy = readProxy(request, 'proxy');
      ping(
        client,
        proxy,
        extra,
        () =>
          ({ '@type': 'seconds', seconds: client.rt.view().config.network.ping_ms / 1000 }) as {
            readonly '@type': string;
          },
      );
      return;
    }
    case 'testNetwork':
      client.networkCall('testNetwork', extra, () => O.ok());
      return;
    case 'setNetworkType': {
      const networkType = object(request, 'type');
      client.networkDown = networkType?.['@type'] === 'networkTypeNone';
      client.reply(extra, O.ok());
      reconnect(client);
      return;
    }
  }
}

export function getOption(client: SimClient, name: string): O.TdOptionValue {
  switch (name) {
    case 'version':
      return O.optionString(O.TDLIB_VERSION);
    case 'commit_hash':
      return O.optionString(O.SIMULATOR_COMMIT_HASH);
    case 'unix_time':
      return O.optionInteger(Math.floor(client.rt.now() / 1000));
    default:
      return structuredClone(client.options.get(name)) ?? O.optionEmpty();
  }
}

export function setOption(client: SimClient, request: JsonObject, extra: Json | undefined): void {
  const name = str(request, 'name');
  const value = object(request, 'value', [
    'optionValueBoolean',
    'optionValueEmpty',
    'optionValueInteger',
    'optionValueString',
  ]);
  if (value === null || value['@type'] === 'optionValueEmpty') client.options.delete(name);
  else if (value['@type'] === 'optionValueInteger')
    client.options.set(name, O.optionInteger(int53(value, 'value')));
  else client.options.set(name, structuredClone(value) as unknown as O.TdOptionValue);
  client.reply(extra, O.ok());
}
