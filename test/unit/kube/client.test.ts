/**
 * The REST client's retry policy against a local HTTP server that plays the apiserver's throttling answers
 * (the real apiserver exempts system:masters from throttling, so 429 cannot be provoked there reliably).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from '@jest/globals';
import { KubeConfig } from '@kubernetes/client-node';
import { ApiError, RestClient, parseRetryAfter } from '../../../operator/kube/client.js';
import { apiErrorFrom } from '../../../operator/kube/errors.js';
import { createRegistry, metricValue } from '../../../operator/kube/metrics.js';
import { Resources } from '../../../operator/kube/resource.js';

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

let server: Server | undefined;
let client: RestClient | undefined;

async function serve(handler: Handler): Promise<{
  kc: KubeConfig;
  hits: Array<{ method: string; url: string; at: number; body: string; type?: string }>;
}> {
  const hits: Array<{ method: string; url: string; at: number; body: string; type?: string }> = [];
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      hits.push({
        method: req.method ?? '',
        url: req.url ?? '',
        at: Date.now(),
        body,
        type: req.headers['content-type'],
      });
      handler(req, res, body);
    });
  });
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'local', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
    users: [{ name: 'u', token: 'test-token' }],
    contexts: [{ name: 'c', cluster: 'local', user: 'u' }],
    currentContext: 'c',
  });
  return { kc, hits };
}

function json(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

const configMap = { metadata: { name: 'cm', namespace: 'ns', resourceVersion: '7' }, data: { a: 'b' } };
const throttled = {
  kind: 'Status',
  status: 'Failure',
  reason: 'TooManyRequests',
  code: 429,
  message: 'slow down',
};

afterEach(async () => {
  await client?.close();
  client = undefined;
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

describe('RestClient', () => {
  it('waits the Retry-After the server sent on 429, then succeeds, counting each attempt by code', async () => {
    let calls = 0;
    const { kc, hits } = await serve((_req, res) => {
      calls++;
      if (calls === 1) json(res, 429, throttled, { 'Retry-After': '1' });
      else json(res, 200, configMap);
    });
    const registry = createRegistry();
    client = new RestClient(kc, { registry });
    const started = Date.now();
    const got = await client.get(Resources.ConfigMap, 'ns', 'cm');
    expect(got.metadata?.name).toBe('cm');
    expect(hits).toHaveLength(2);
    expect((hits[1]?.at ?? 0) - (hits[0]?.at ?? 0)).toBeGreaterThanOrEqual(950);
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(await metricValue(registry, 'rest_client_requests_total', { code: '429', method: 'GET' })).toBe(1);
    expect(await metricValue(registry, 'rest_client_requests_total', { code: '200', method: 'GET' })).toBe(1);
    expect(client.writeCount()).toBe(0);
  });

  it('gives up after maxRetries and throws a typed ApiError carrying retryAfterSeconds', async () => {
    const { kc, hits } = await serve((_req, res) => json(res, 429, throttled, { 'Retry-After': '0' }));
    client = new RestClient(kc, { registry: createRegistry(), maxRetries: 2 });
    const error = await client.get(Resources.ConfigMap, 'ns', 'cm').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 429, reason: 'TooManyRequests', retryAfterSeconds: 0 });
    expect(hits).toHaveLength(3);
  });

  it('retries a 5xx only when the server sent Retry-After (a write may have been applied otherwise)', async () => {
    let calls = 0;
    const { kc, hits } = await serve((req, res) => {
      calls++;
      if (req.url?.includes('with-hint') && calls === 1)
        json(res, 503, { code: 503, message: 'busy' }, { 'Retry-After': '0' });
      else if (req.url?.includes('with-hint')) json(res, 200, configMap);
      else json(res, 500, { kind: 'Status', code: 500, reason: 'InternalError', message: 'boom' });
    });
    client = new RestClient(kc, { registry: createRegistry() });
    await expect(client.get(Resources.ConfigMap, 'ns', 'with-hint')).resolves.toMatchObject({
      data: { a: 'b' },
    });
    expect(hits).toHaveLength(2);
    await expect(
      client.mergePatch(Resources.ConfigMap, 'ns', 'no-hint', { data: { a: 'c' } }),
    ).rejects.toMatchObject({ status: 500, reason: 'InternalError' });
    expect(hits).toHaveLength(3);
    expect(client.writeCount()).toBe(1);
  });

  it('sends server-side apply as apply-patch+yaml with fieldManager and force, filling apiVersion/kind', async () => {
    const { kc, hits } = await serve((_req, res) => json(res, 200, configMap));
    client = new RestClient(kc, { registry: createRegistry() });
    await client.applyPatch(
      Resources.ConfigMap,
      { metadata: { name: 'cm', namespace: 'ns' }, data: { a: 'b' } } as never,
      {
        fieldManager: 'tdlib-operator/placement',
      },
    );
    await client.applyStatus(
      Resources.Pod,
      { metadata: { name: 'p', namespace: 'ns' }, status: {} } as never,
      {
        fieldManager: 'runtime',
        force: false,
      },
    );
    expect(hits[0]).toMatchObject({
      method: 'PATCH',
      url: '/api/v1/namespaces/ns/configmaps/cm?fieldManager=tdlib-operator%2Fplacement&force=true',
      type: 'application/apply-patch+yaml',
    });
    expect(JSON.parse(hits[0]?.body ?? '{}')).toMatchObject({ apiVersion: 'v1', kind: 'ConfigMap' });
    expect(hits[1]?.url).toBe('/api/v1/namespaces/ns/pods/p/status?fieldManager=runtime&force=false');
    expect(client.writeCount()).toBe(2);
  });

  it('pages a list with limit and continue', async () => {
    const { kc, hits } = await serve((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const token = url.searchParams.get('continue');
      if (!token) json(res, 200, { metadata: { continue: 'p2', resourceVersion: '10' }, items: [configMap] });
      else
        json(res, 200, {
          metadata: { resourceVersion: '10' },
          items: [{ ...configMap, metadata: { ...configMap.metadata, name: 'cm2' } }],
        });
    });
    client = new RestClient(kc, { registry: createRegistry() });
    const list = await client.listAll(Resources.ConfigMap, { namespace: 'ns', limit: 1 });
    expect(list.items.map((i) => i.metadata?.name)).toEqual(['cm', 'cm2']);
    expect(list.resourceVersion).toBe('10');
    expect(hits.map((h) => h.url)).toEqual([
      '/api/v1/namespaces/ns/configmaps?limit=1',
      '/api/v1/namespaces/ns/configmaps?limit=1&continue=p2',
    ]);
  });
});

describe('Retry-After and Status parsing', () => {
  it('parses delta-seconds and HTTP-dates, rejects garbage', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('3', now)).toBe(3000);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:05 GMT', now)).toBe(5000);
    expect(parseRetryAfter('Wed, 31 Dec 2025 23:59:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter('-1', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });

  it('builds ApiError from a Status body, a non-JSON body, and an in-stream ERROR object', () => {
    const gone = apiErrorFrom(200, {
      kind: 'Status',
      code: 410,
      reason: 'Expired',
      message: 'too old resource version: 1 (5)',
    });
    expect(gone).toMatchObject({ status: 410, reason: 'Expired' });
    const text = apiErrorFrom(502, '<html>bad gateway</html>', 'GET /api');
    expect(text).toMatchObject({ status: 502, reason: 'Unknown' });
    expect(text.message).toContain('bad gateway');
    const details = apiErrorFrom(429, JSON.stringify({ code: 429, details: { retryAfterSeconds: 4 } }));
    expect(details).toMatchObject({ status: 429, reason: 'TooManyRequests', retryAfterSeconds: 4 });
  });
});
