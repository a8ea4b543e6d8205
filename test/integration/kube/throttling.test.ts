/**
 * 429 Too Many Requests from a real apiserver. A private control plane runs the classic max-in-flight
 * limiter (priority and fairness off) with room for one request at a time; system:masters is exempt from
 * it, so the requests come from an ordinary user bound to cluster-admin.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { KubeConfig } from '@kubernetes/client-node';
import { ApiError, RestClient } from '../../../operator/kube/client.js';
import { createRegistry, metricValue } from '../../../operator/kube/metrics.js';
import { Resources, type ApiObject } from '../../../operator/kube/resource.js';
import { issueClientCert } from '../../cluster/pki.js';
import { waitFor } from '../../cluster/wait.js';
import { startPrivatePlane, testLogger, type PrivatePlane } from './support.js';

const logger = testLogger('throttling-test');
let plane: PrivatePlane | undefined;
let admin: RestClient;
let userConfig: KubeConfig;
const namespace = 'throttled';
const clients: RestClient[] = [];

beforeAll(async () => {
  plane = await startPrivatePlane('throttle', [
    '--enable-priority-and-fairness=false',
    '--max-requests-inflight=1',
    '--max-mutating-requests-inflight=1',
  ]);
  admin = new RestClient(plane.kubeConfig, { registry: createRegistry(), logger });
  await admin.create(Resources.Namespace, { metadata: { name: namespace } });
  await admin.create(Resources.ConfigMap, {
    metadata: { name: 'target', namespace },
    data: { a: 'b' },
  } as ApiObject);
  await admin.create(
    {
      group: 'rbac.authorization.k8s.io',
      version: 'v1',
      plural: 'clusterrolebindings',
      kind: 'ClusterRoleBinding',
      namespaced: false,
    },
    {
      metadata: { name: 'throttled-admin' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'throttled-user' }],
    } as ApiObject,
  );
  const { cert, key } = issueClientCert(plane.plane.info.pki, 'throttled-user', ['throttled-users']);
  const cluster = plane.kubeConfig.getCurrentCluster();
  if (!cluster) throw new Error('no cluster');
  userConfig = new KubeConfig();
  userConfig.loadFromOptions({
    clusters: [cluster],
    users: [{ name: 'throttled-user', certFile: cert, keyFile: key }],
    contexts: [{ name: 'throttled', cluster: cluster.name, user: 'throttled-user' }],
    currentContext: 'throttled',
  });
  // RBAC bindings reach the authorizer asynchronously.
  const probe = new RestClient(userConfig, { registry: createRegistry() });
  clients.push(probe);
  await waitFor('the binding to take effect', () => probe.get(Resources.ConfigMap, namespace, 'target'), {
    timeoutMs: 20_000,
  });
}, 120_000);

afterAll(async () => {
  for (const client of clients) await client.close();
  await admin?.close();
  await plane?.plane.stop();
}, 60_000);

function burst(client: RestClient, n: number): Promise<unknown[]> {
  return Promise.all(
    Array.from({ length: n }, () =>
      client.get(Resources.ConfigMap, namespace, 'target').catch((error: unknown) => error),
    ),
  );
}

describe('RestClient under apiserver throttling', () => {
  it('surfaces 429 with Retry-After as a typed error when retries are off', async () => {
    const client = new RestClient(userConfig, { registry: createRegistry(), maxRetries: 0 });
    clients.push(client);
    const results = await burst(client, 60);
    const throttled = results.filter((r): r is ApiError => r instanceof ApiError && r.status === 429);
    expect(throttled.length).toBeGreaterThan(0);
    expect(throttled[0]?.retryAfterSeconds).toBeGreaterThanOrEqual(1);
  }, 60_000);

  it('honours Retry-After and completes every request when retries are on', async () => {
    const registry = createRegistry();
    const client = new RestClient(userConfig, { registry, maxRetries: 10 });
    clients.push(client);
    const throttledSoFar = () =>
      metricValue(registry, 'rest_client_requests_total', { code: '429', method: 'GET' });
    // One slot in flight: a burst is throttled only when two of its requests overlap there, which a fast
    // apiserver does not always let happen. Burst until it did (the deadline fails the test otherwise).
    let bursts = 0;
    let throttledBurstMs = 0;
    await waitFor(
      'a burst the apiserver throttled',
      async () => {
        const before = await throttledSoFar();
        const started = Date.now();
        const results = await burst(client, 60);
        bursts += 1;
        expect(results.filter((r) => r instanceof Error)).toEqual([]);
        if ((await throttledSoFar()) === before) return undefined;
        throttledBurstMs = Date.now() - started;
        return true;
      },
      { timeoutMs: 60_000 },
    );
    const throttled = await throttledSoFar();
    expect(throttled).toBeGreaterThan(0);
    expect(await metricValue(registry, 'rest_client_requests_total', { code: '200', method: 'GET' })).toBe(
      60 * bursts,
    );
    expect(await metricValue(registry, 'rest_client_request_retries_total', { code: '429' })).toBe(throttled);
    // Throttled requests waited at least the 1 s the apiserver asked for.
    expect(throttledBurstMs).toBeGreaterThanOrEqual(1000);
  }, 120_000);
});
