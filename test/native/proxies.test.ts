import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { TdClientManager } from '../../runtime/tdlib/client.js';
import { TdError } from '../../runtime/tdlib/errors.js';
import { NativeBackend } from '../../runtime/tdlib/native-backend.js';
import { initializeClient, tempDir, type TempDir } from './helpers/tdlib.js';

// TDLib 1.8.61 changed the shapes: addProxy takes a `proxy` object (server, port, type) and answers with
// addedProxy; getProxies answers with addedProxies.
describe('proxies (TDLib 1.8.61+ shapes)', () => {
  let backend: NativeBackend;
  let manager: TdClientManager;
  let dir: TempDir;

  beforeAll(() => {
    dir = tempDir('tdlib-proxies');
    backend = new NativeBackend({ logVerbosity: 0 });
    manager = new TdClientManager(backend, { defaultTimeoutMs: 30_000 });
  });

  afterAll(async () => {
    await manager.shutdown();
    dir.remove();
  });

  it('adds, lists and removes proxies, and keeps them in the database across a restart', async () => {
    const client = manager.createClient();
    await initializeClient(client, dir.path);

    const socks = await client.invoke({
      '@type': 'addProxy',
      proxy: {
        '@type': 'proxy',
        server: '127.0.0.1',
        port: 1080,
        type: { '@type': 'proxyTypeSocks5', username: 'user', password: 'pass' },
      },
      enable: true,
      comment: 'office socks',
    });
    expect(socks).toMatchObject({
      '@type': 'addedProxy',
      is_enabled: true,
      comment: 'office socks',
      proxy: { '@type': 'proxy', server: '127.0.0.1', port: 1080, type: { '@type': 'proxyTypeSocks5' } },
    });
    const mtproto = await client.invoke({
      '@type': 'addProxy',
      proxy: {
        '@type': 'proxy',
        server: 'proxy.example.org',
        port: 443,
        type: { '@type': 'proxyTypeMtproto', secret: 'dd00112233445566778899aabbccddeeff' },
      },
      enable: false,
      comment: '',
    });
    const http = await client.invoke({
      '@type': 'addProxy',
      proxy: {
        '@type': 'proxy',
        server: '10.0.0.1',
        port: 3128,
        type: { '@type': 'proxyTypeHttp', username: '', password: '', http_only: false },
      },
      enable: false,
      comment: 'http',
    });
    expect(new Set([socks.id, mtproto.id, http.id]).size).toBe(3);

    const listed = await client.invoke({ '@type': 'getProxies' });
    expect(listed['@type']).toBe('addedProxies');
    expect(listed.proxies.map((p) => [p.id, p.proxy.server, p.proxy.type['@type'], p.is_enabled])).toEqual(
      expect.arrayContaining([
        [socks.id, '127.0.0.1', 'proxyTypeSocks5', true],
        [mtproto.id, 'proxy.example.org', 'proxyTypeMtproto', false],
        [http.id, '10.0.0.1', 'proxyTypeHttp', false],
      ]),
    );
    expect(listed.proxies).toHaveLength(3);

    await client.invoke({ '@type': 'removeProxy', proxy_id: http.id });
    await expect(
      client.invoke({
        '@type': 'addProxy',
        proxy: { '@type': 'proxy', server: '', port: 0, type: { '@type': 'proxyTypeSocks5' } },
        enable: false,
      }),
    ).rejects.toBeInstanceOf(TdError);
    await client.close();

    const reopened = manager.createClient();
    await initializeClient(reopened, dir.path);
    const after = await reopened.invoke({ '@type': 'getProxies' });
    expect(after.proxies.map((p) => p.id).sort()).toEqual([socks.id, mtproto.id].sort());
    await reopened.close();
  }, 60_000);
});
