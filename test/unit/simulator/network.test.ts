import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { join } from 'node:path';
import type { TdObject } from '../../../runtime/tdlib/backend.js';
import {
  errorOf,
  isConnectionState,
  loginUser,
  makeWorld,
  params,
  Recorder,
  startSession,
  type Session,
  type WorldFixture,
} from './support/harness.js';

jest.setTimeout(20_000);

const SOCKS = (server: string, port: number): TdObject => ({
  '@type': 'proxy',
  server,
  port,
  type: { '@type': 'proxyTypeSocks5', username: '', password: '' },
});

describe('simulator network and proxies', () => {
  let fx: WorldFixture;
  let session: Session;

  beforeEach(() => {
    fx = makeWorld({
      network: { connect_delay_ms: 0, proxies: [{ server: '10.0.0.66', port: 1080, dead: true }] },
    });
    session = startSession(fx.dir);
  });

  afterEach(async () => {
    await session.close();
    expect(session.checked.problems).toEqual([]);
    fx.cleanup();
  });

  it('goes Connecting -> Ready directly, and Updating first when authorized', async () => {
    const client = session.manager.createClient();
    const rec = new Recorder(client);
    await client.invokeUnchecked(params(join(fx.dir, 'db-conn')));
    await rec.waitFor(isConnectionState('connectionStateReady'));
    expect(rec.connectionStates()).toEqual(['connectionStateConnecting', 'connectionStateReady']);
    await loginUser(client, '+15550100002', '54321');
    await client.close();
    const again = session.manager.createClient();
    const rec2 = new Recorder(again);
    await again.invokeUnchecked(params(join(fx.dir, 'db-conn')));
    await rec2.waitFor(isConnectionState('connectionStateReady'));
    expect(rec2.connectionStates()).toEqual([
      'connectionStateConnecting',
      'connectionStateUpdating',
      'connectionStateReady',
    ]);
  });

  it("implements the 1.8.61+ proxy API with TDLib's ids and validation errors", async () => {
    const client = session.manager.createClient();
    const early = client.invokeUnchecked({
      '@type': 'addProxy',
      proxy: SOCKS('127.0.0.1', 1080),
      enable: false,
      comment: 'early',
    });
    await client.invokeUnchecked(params(join(fx.dir, 'db-proxy')));
    expect(await early).toMatchObject({
      '@type': 'addedProxy',
      id: 2,
      is_enabled: false,
      comment: 'early',
      last_used_date: 0,
    });
    const http = await client.invokeUnchecked({
      '@type': 'addProxy',
      proxy: {
        '@type': 'proxy',
        server: '10.0.0.1',
        port: 8080,
        type: { '@type': 'proxyTypeHttp', username: 'u', password: 'p', http_only: false },
      },
      enable: false,
      comment: '',
    });
    expect(http.id).toBe(3);
    const cases: [TdObject | null, string][] = [
      [null, 'Proxy must be non-empty'],
      [SOCKS('', 1), 'Server name must be non-empty'],
      [SOCKS('x', 0), 'Wrong port number'],
      [{ '@type': 'proxy', server: 'x', port: 1, type: null }, 'Proxy type must be non-empty'],
      [
        { '@type': 'proxy', server: 'x', port: 1, type: { '@type': 'proxyTypeMtproto', secret: 'zz' } },
        'Wrong proxy secret',
      ],
    ];
    for (const [proxy, message] of cases) {
      expect(
        await errorOf(client.invokeUnchecked({ '@type': 'addProxy', proxy, enable: false, comment: '' })),
      ).toEqual({ code: 400, message });
    }
    expect(await errorOf(client.invokeUnchecked({ '@type': 'enableProxy', proxy_id: 999 }))).toEqual({
      code: 400,
      message: 'Unknown proxy identifier',
    });
    expect(await errorOf(client.invokeUnchecked({ '@type': 'removeProxy', proxy_id: 999 }))).toEqual({
      code: 400,
      message: 'Unknown proxy identifier',
    });
    await client.invokeUnchecked({ '@type': 'removeProxy', proxy_id: 2 });
    const list = await client.invokeUnchecked({ '@type': 'getProxies' });
    expect((list.proxies as TdObject[]).map((p) => p.id)).toEqual([3]);
  });

  it('stays ConnectingToProxy behind a dead proxy, holding network requests until the proxy comes back', async () => {
    const client = session.manager.createClient();
    const rec = new Recorder(client);
    await client.invokeUnchecked(params(join(fx.dir, 'db-dead')));
    await rec.waitFor(isConnectionState('connectionStateReady'));
    const added = await client.invokeUnchecked({
      '@type': 'addProxy',
      proxy: SOCKS('10.0.0.66', 1080),
      enable: true,
      comment: '',
    });
    await rec.waitFor(isConnectionState('connectionStateConnectingToProxy'));
    expect(
      await errorOf(client.invokeUnchecked({ '@type': 'pingProxy', proxy: SOCKS('10.0.0.66', 1080) })),
    ).toEqual({
      code: 400,
      message: 'Connection refused',
    });
    const ping = await client.invokeUnchecked({ '@type': 'pingProxy', proxy: null });
    expect(ping).toMatchObject({ '@type': 'seconds' });
    let answered = false;
    const login = client
      .invokeUnchecked({ '@type': 'setAuthenticationPhoneNumber', phone_number: '+15550100002' })
      .finally(() => (answered = true));
    await new Promise((r) => setTimeout(r, 200));
    expect(answered).toBe(false);
    expect(rec.connectionStates().at(-1)).toBe('connectionStateConnectingToProxy');
    fx.world.setProxyDead('10.0.0.66', 1080, false);
    await login;
    expect(rec.connectionStates().slice(-2)).toEqual([
      'connectionStateConnectingToProxy',
      'connectionStateReady',
    ]);
    const proxies = await client.invokeUnchecked({ '@type': 'getProxies' });
    expect((proxies.proxies as TdObject[])[0]).toMatchObject({ id: added.id, is_enabled: true });
    expect(((proxies.proxies as TdObject[])[0] as TdObject).last_used_date).toBeGreaterThan(0);
  });

  it('drops every client to Connecting when the world is disconnected, and back', async () => {
    const client = session.manager.createClient();
    const rec = new Recorder(client);
    await client.invokeUnchecked(params(join(fx.dir, 'db-flap')));
    await rec.waitFor(isConnectionState('connectionStateReady'));
    fx.world.setFaults({ disconnected: true });
    await rec.waitFor(isConnectionState('connectionStateConnecting'), 2_000, rec.updates.length);
    fx.world.setFaults({ disconnected: false });
    const since = rec.updates.length;
    await rec.waitFor(isConnectionState('connectionStateReady'), 2_000, since);
  });

  it('reports WaitingForNetwork for networkTypeNone', async () => {
    const client = session.manager.createClient();
    const rec = new Recorder(client);
    await client.invokeUnchecked(params(join(fx.dir, 'db-nonet')));
    await client.invokeUnchecked({ '@type': 'setNetworkType', type: { '@type': 'networkTypeNone' } });
    await rec.waitFor(isConnectionState('connectionStateWaitingForNetwork'));
    await client.invokeUnchecked({ '@type': 'setNetworkType', type: { '@type': 'networkTypeWiFi' } });
    await rec.waitFor(isConnectionState('connectionStateReady'), 2_000, rec.updates.length - 1);
  });

  it('adds the configured latency to network requests', async () => {
    await session.close();
    fx.cleanup();
    fx = makeWorld({
      network: { connect_delay_ms: 0 },
      faults: { latency_ms: { default: 0, methods: { searchPublicChat: 150 } } },
    });
    session = startSession(fx.dir);
    const client = session.manager.createClient();
    await client.invokeUnchecked(params(join(fx.dir, 'db-lat')));
    await loginUser(client, '+15550100002', '54321');
    const started = Date.now();
    await client.invokeUnchecked({ '@type': 'searchPublicChat', username: 'alice_demo' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
  });
});
