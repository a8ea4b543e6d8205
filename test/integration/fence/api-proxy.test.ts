/**
 * The test ApiProxy (test/support/api-proxy.ts) itself, since the fence and end-to-end tests rely on it:
 * TLS and credentials pass through to the real apiserver, pause() holds requests until resume(), and
 * delay() holds client -> server traffic.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { KubeConfig } from '@kubernetes/client-node';
import { RestClient } from '../../../operator/kube/client.js';
import { createRegistry } from '../../../operator/kube/metrics.js';
import { Resources, type ApiObject } from '../../../operator/kube/resource.js';
import { waitFor } from '../../cluster/wait.js';
import { ApiProxy, kubeConfigVia, writeKubeconfigVia } from '../../support/api-proxy.js';
import { adminKubeConfig, createTestNamespace } from '../../support/cluster.js';
import { testLogger } from '../kube/support.js';

const logger = testLogger('fence-api-proxy');
let proxy: ApiProxy;
let rest: RestClient;
let namespace: string;

beforeAll(async () => {
  const kc = adminKubeConfig();
  namespace = await createTestNamespace(kc, 'fence-proxy');
  proxy = await ApiProxy.start(kc.getCurrentCluster()?.server ?? '');
  rest = new RestClient(kubeConfigVia(kc, proxy), { registry: createRegistry(), logger });
});

afterAll(async () => {
  await rest.close();
  await proxy.close();
});

describe('ApiProxy', () => {
  it('passes TLS through: a kubeconfig file naming the proxy authenticates as the original user', async () => {
    const path = writeKubeconfigVia(adminKubeConfig(), proxy);
    const kc = new KubeConfig();
    kc.loadFromFile(path);
    expect(kc.getCurrentCluster()?.server).toBe(`https://127.0.0.1:${proxy.port}`);
    const viaFile = new RestClient(kc, { registry: createRegistry(), logger });
    try {
      const ns = await viaFile.get<ApiObject>(Resources.Namespace, undefined, namespace);
      expect(ns.metadata?.name).toBe(namespace);
      expect(proxy.lastClientDataAt).toBeDefined();
    } finally {
      await viaFile.close();
    }
  });

  it('pause() holds a request in the proxy until resume(), which delivers it', async () => {
    await rest.get(Resources.Namespace, undefined, namespace); // a warm connection
    proxy.pause();
    let settled = false;
    const request = rest.get<ApiObject>(Resources.Namespace, undefined, namespace).finally(() => {
      settled = true;
    });
    await waitFor('the request to be held in the proxy', () => (proxy.bufferedBytes > 0 ? true : undefined), {
      timeoutMs: 5_000,
    });
    expect(settled).toBe(false);
    proxy.resume();
    expect((await request).metadata?.name).toBe(namespace);
    expect(proxy.bufferedBytes).toBe(0);
  });

  it('delay() holds client -> server traffic that long, and delay(0) ends it', async () => {
    await rest.get(Resources.Namespace, undefined, namespace);
    proxy.delay(400);
    const startedAt = performance.now();
    await rest.get(Resources.Namespace, undefined, namespace);
    expect(performance.now() - startedAt).toBeGreaterThanOrEqual(400);

    proxy.delay(60_000);
    const held = rest.get<ApiObject>(Resources.Namespace, undefined, namespace);
    await waitFor('the request to be held in the proxy', () => (proxy.bufferedBytes > 0 ? true : undefined), {
      timeoutMs: 5_000,
    });
    proxy.delay(0);
    expect((await held).metadata?.name).toBe(namespace);
  });
});
