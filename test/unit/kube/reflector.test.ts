/**
 * Reflector paths a real apiserver does not produce on demand: a watch request answered with HTTP 410 (the
 * status-code form; the in-stream form is covered by the integration suite), and a watch that closes
 * instantly without events (must back off, not spin). A local HTTP server plays the apiserver.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from '@jest/globals';
import { KubeConfig } from '@kubernetes/client-node';
import { RestClient } from '../../../operator/kube/client.js';
import { createLogger } from '../../../operator/kube/logging.js';
import { createRegistry, metricValue } from '../../../operator/kube/metrics.js';
import { Informer, type InformerEventType } from '../../../operator/kube/reflector.js';
import { Resources } from '../../../operator/kube/resource.js';
import { waitFor } from '../../cluster/wait.js';

interface Cm {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
}

const logger = createLogger({ name: 'reflector-test', level: process.env.LOG_LEVEL ?? 'silent' });
let server: Server | undefined;
let rest: RestClient | undefined;
let informer: Informer<Cm> | undefined;

function cm(name: string, resourceVersion: string): Cm {
  return { metadata: { name, namespace: 'ns', resourceVersion } };
}

/** One answer to a LIST: a page (with a continue token if more follow), or an expired continue token. */
type ListAnswer = { resourceVersion: string; items: Cm[]; continue?: string } | { expired: true };

async function fakeApiserver(
  onList: (n: number, continueToken: string | null) => ListAnswer,
  onWatch: (n: number, resourceVersion: string, res: ServerResponse) => void,
): Promise<{ rest: RestClient; lists: () => number; watches: () => number }> {
  let lists = 0;
  let watches = 0;
  server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.searchParams.get('watch') === 'true') {
      watches++;
      onWatch(watches, url.searchParams.get('resourceVersion') ?? '', res);
      return;
    }
    lists++;
    const page = onList(lists, url.searchParams.get('continue'));
    if ('expired' in page) {
      res.writeHead(410, { 'Content-Type': 'application/json' });
      res.end(
        JSON.stringify({ kind: 'Status', code: 410, reason: 'Expired', message: 'continue token expired' }),
      );
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(
      JSON.stringify({
        metadata: { resourceVersion: page.resourceVersion, continue: page.continue },
        items: page.items,
      }),
    );
  });
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [
      {
        name: 'fake',
        server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        skipTLSVerify: true,
      },
    ],
    users: [{ name: 'u' }],
    contexts: [{ name: 'c', cluster: 'fake', user: 'u' }],
    currentContext: 'c',
  });
  rest = new RestClient(kc, { registry: createRegistry() });
  return { rest, lists: () => lists, watches: () => watches };
}

afterEach(async () => {
  await informer?.dispose();
  informer = undefined;
  await rest?.close();
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

describe('Informer reflector', () => {
  it('relists when the watch request itself is answered 410 Gone, and diffs the new list', async () => {
    const watchedFrom: string[] = [];
    const fake = await fakeApiserver(
      (n) =>
        n === 1
          ? { resourceVersion: '10', items: [cm('a', '5'), cm('b', '6')] }
          : { resourceVersion: '20', items: [cm('b', '6'), cm('c', '15')] },
      (n, resourceVersion, res) => {
        watchedFrom.push(resourceVersion);
        if (n === 1) {
          res.writeHead(410, { 'Content-Type': 'application/json' });
          res.end(
            JSON.stringify({
              kind: 'Status',
              code: 410,
              reason: 'Gone',
              message: 'too old resource version',
            }),
          );
          return;
        }
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.write(`${JSON.stringify({ type: 'MODIFIED', object: cm('c', '21') })}\n`);
      },
    );
    const registry = createRegistry();
    informer = new Informer<Cm>(fake.rest, Resources.ConfigMap, {
      namespace: 'ns',
      logger,
      name: 'http410',
      registry,
    });
    const seen: string[] = [];
    informer.onEvent((type: InformerEventType, obj, _old, meta) =>
      seen.push(
        `${type} ${obj.metadata?.name ?? ''}${meta.initial ? ' initial' : ''}${meta.finalStateUnknown ? ' unknown' : ''}`,
      ),
    );
    informer.start();
    await waitFor(
      'the live event after the relist',
      () => (informer?.get('ns', 'c')?.metadata?.resourceVersion === '21' ? true : undefined),
      {
        timeoutMs: 10_000,
      },
    );
    expect(seen).toEqual([
      'ADDED a initial',
      'ADDED b initial',
      'ADDED c',
      'DELETED a unknown',
      'MODIFIED c',
    ]);
    expect(fake.lists()).toBe(2);
    expect(watchedFrom).toEqual(['10', '20']);
    expect(
      await metricValue(registry, 'reflector_relists_total', { name: 'http410', reason: 'expired' }),
    ).toBe(1);
    expect(informer.lastSyncResourceVersion()).toBe('21');
  });

  it('backs off instead of spinning when watches close at once without events', async () => {
    const fake = await fakeApiserver(
      () => ({ resourceVersion: '1', items: [] }),
      (_n, _rv, res) => {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end();
      },
    );
    informer = new Informer<Cm>(fake.rest, Resources.ConfigMap, {
      namespace: 'ns',
      logger,
      name: 'spin',
      registry: createRegistry(),
      backoff: { initialMs: 200, maxMs: 400 },
    });
    informer.start();
    await waitFor('a few watch attempts', () => (fake.watches() >= 3 ? true : undefined), {
      timeoutMs: 10_000,
    });
    const started = Date.now();
    const attempts = fake.watches();
    await waitFor('two more attempts', () => (fake.watches() >= attempts + 2 ? true : undefined), {
      timeoutMs: 10_000,
    });
    // Each empty watch costs a backoff of at least 200 ms: two take >= 400 ms, not a burst of requests.
    expect(Date.now() - started).toBeGreaterThanOrEqual(350);
    expect(fake.lists()).toBe(1); // a clean close resumes from the resourceVersion, no relist
  });

  it('drops what only the pages before an expired continue token held: the full list replaces them', async () => {
    // Page 1 holds a and b; the continue token then expires, and the unpaginated list that replaces the
    // pages (a later snapshot) no longer holds a. Pages are applied as they arrive, so a is in the store
    // for a while; it must not stay there.
    const fake = await fakeApiserver(
      (n, continueToken) => {
        if (n === 1) return { resourceVersion: '10', items: [cm('a', '5'), cm('b', '6')], continue: 'p2' };
        if (continueToken !== null) return { expired: true };
        return { resourceVersion: '30', items: [cm('b', '6'), cm('c', '25')] };
      },
      (_n, _rv, res) => {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.write(
          `${JSON.stringify({ type: 'BOOKMARK', object: { metadata: { resourceVersion: '31' } } })}\n`,
        );
      },
    );
    informer = new Informer<Cm>(fake.rest, Resources.ConfigMap, {
      namespace: 'ns',
      logger,
      name: 'expired-continue',
      registry: createRegistry(),
      pageSize: 2,
    });
    const seen: string[] = [];
    informer.onEvent((type: InformerEventType, obj, _old, meta) =>
      seen.push(`${type} ${obj.metadata?.name ?? ''}${meta.finalStateUnknown ? ' unknown' : ''}`),
    );
    informer.start();
    expect(await informer.waitForSync(10_000)).toBe(true);
    expect(
      informer
        .list('ns')
        .map((o) => o.metadata?.name)
        .sort(),
    ).toEqual(['b', 'c']);
    expect(seen).toEqual(['ADDED a', 'ADDED b', 'ADDED c', 'DELETED a unknown']);
    expect(fake.lists()).toBe(3);
    expect(informer.lastSyncResourceVersion()).toBe('30');
  });
});
