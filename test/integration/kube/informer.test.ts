/**
 * The informer against the shared real kube-apiserver: events, managedFields stripping, paging, indexes,
 * and recovery from killed and silently dead watch connections (through a TCP proxy).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { KubeConfig } from '@kubernetes/client-node';
import { RestClient } from '../../../operator/kube/client.js';
import { createRegistry, metricValue } from '../../../operator/kube/metrics.js';
import {
  Informer,
  type InformerEventMeta,
  type InformerEventType,
} from '../../../operator/kube/reflector.js';
import { Resources } from '../../../operator/kube/resource.js';
import { waitFor } from '../../cluster/wait.js';
import { adminKubeConfig, createTestNamespace } from '../../support/cluster.js';
import { TcpProxy, kubeConfigWithServer, testLogger, turnCounter } from './support.js';

interface ConfigMap {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    managedFields?: unknown;
  };
  data?: Record<string, string>;
}

interface Seen {
  type: InformerEventType;
  name: string;
  value?: string;
  oldValue?: string;
  meta: InformerEventMeta;
  managedFields: boolean;
}

const logger = testLogger('informer-test');
let kc: KubeConfig;
let rest: RestClient;
let namespace: string;

function cm(name: string, value: string, labels: Record<string, string> = {}): ConfigMap {
  return { metadata: { name, namespace, labels }, data: { value } };
}

function recorder(informer: Informer<ConfigMap>): Seen[] {
  const seen: Seen[] = [];
  informer.onEvent((type, obj, old, meta) =>
    seen.push({
      type,
      name: obj.metadata?.name ?? '',
      value: obj.data?.value,
      oldValue: old?.data?.value,
      meta,
      managedFields: obj.metadata?.managedFields !== undefined,
    }),
  );
  return seen;
}

/** What the informer holds, as name=value pairs. */
function contents(informer: Informer<ConfigMap>, ns = namespace): string[] {
  return informer
    .list(ns)
    .map((o) => `${o.metadata?.name ?? ''}=${o.data?.value ?? ''}`)
    .sort();
}

/** What the apiserver holds for the same selection. */
async function truth(labelSelector: string): Promise<string[]> {
  const list = await rest.listAll<ConfigMap>(Resources.ConfigMap, { namespace, labelSelector });
  return list.items.map((o) => `${o.metadata?.name ?? ''}=${o.data?.value ?? ''}`).sort();
}

beforeAll(async () => {
  kc = adminKubeConfig();
  rest = new RestClient(kc, { registry: createRegistry(), logger });
  namespace = await createTestNamespace(kc, 'kube-informer');
});

afterAll(async () => {
  await rest.close();
});

describe('Informer', () => {
  it('delivers the first list as initial ADDED, then live ADDED/MODIFIED/DELETED, without managedFields', async () => {
    const registry = createRegistry();
    await rest.create(Resources.ConfigMap, cm('pre-1', 'a', { suite: 'events' }));
    await rest.create(Resources.ConfigMap, cm('pre-2', 'b', { suite: 'events' }));
    await rest.create(Resources.ConfigMap, cm('other', 'x', { suite: 'unrelated' }));
    const informer = new Informer<ConfigMap>(rest, Resources.ConfigMap, {
      namespace,
      labelSelector: 'suite=events',
      logger,
      name: 'events',
      registry,
    });
    const seen = recorder(informer);
    informer.start();
    try {
      expect(await informer.waitForSync(10_000)).toBe(true);
      expect(seen.map((s) => [s.type, s.name, s.meta.initial]).sort()).toEqual([
        ['ADDED', 'pre-1', true],
        ['ADDED', 'pre-2', true],
      ]);

      // Created through server-side apply, so the apiserver attaches managedFields that must not reach us.
      await rest.applyPatch(Resources.ConfigMap, cm('live', 'c', { suite: 'events' }), {
        fieldManager: 'informer-test',
      });
      await rest.mergePatch(Resources.ConfigMap, namespace, 'live', { data: { value: 'd' } });
      await rest.delete(Resources.ConfigMap, namespace, 'pre-1');
      await waitFor('live events', () => (seen.length >= 5 ? true : undefined), { timeoutMs: 10_000 });

      const live = seen.slice(2).map((s) => ({
        type: s.type,
        name: s.name,
        value: s.value,
        oldValue: s.oldValue,
        initial: s.meta.initial,
      }));
      expect(live).toEqual([
        { type: 'ADDED', name: 'live', value: 'c', oldValue: undefined, initial: false },
        { type: 'MODIFIED', name: 'live', value: 'd', oldValue: 'c', initial: false },
        { type: 'DELETED', name: 'pre-1', value: 'a', oldValue: 'a', initial: false },
      ]);
      expect(seen.some((s) => s.managedFields)).toBe(false);
      const raw = await rest.get<ConfigMap>(Resources.ConfigMap, namespace, 'live');
      expect(raw.metadata?.managedFields).toBeDefined(); // the server did send them
      expect(informer.get(namespace, 'live')?.metadata?.managedFields).toBeUndefined();
      expect(contents(informer)).toEqual(['live=d', 'pre-2=b']);
      expect(informer.get(namespace, 'other')).toBeUndefined(); // label selector honoured
      // Cached objects are shared and frozen.
      const cached = informer.get(namespace, 'live');
      expect(() => {
        if (cached?.data) cached.data.value = 'mutated';
      }).toThrow(TypeError);

      // A handler registered after the sync gets the cache replayed as initial ADDED events.
      const late = recorder(informer);
      expect(late.map((s) => [s.type, s.name, s.meta.initial]).sort()).toEqual([
        ['ADDED', 'live', true],
        ['ADDED', 'pre-2', true],
      ]);
      expect(await metricValue(registry, 'informer_cached_objects', { name: 'events' })).toBe(2);
    } finally {
      await informer.dispose();
    }
  }, 30_000);

  it('metadataOnly: lists and watches names, labels and annotations, never the content, and still sees content changes', async () => {
    const secret = (name: string, value: string) => ({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name, namespace, labels: { suite: 'metadata' }, annotations: { note: name } },
      data: { value: Buffer.from(value).toString('base64') },
    });
    // An empty selection: the apiserver answers a list of metadata with "items": null.
    const empty = new Informer<ConfigMap>(rest, Resources.Secret, {
      namespace,
      labelSelector: 'suite=none',
      logger,
      name: 'metadata-empty',
      metadataOnly: true,
    });
    empty.start();
    try {
      expect(await empty.waitForSync(10_000)).toBe(true);
      expect(empty.list(namespace)).toEqual([]);
    } finally {
      await empty.dispose();
    }
    // More than one page, so the paged list asks for metadata too.
    for (let i = 0; i < 3; i++) await rest.create(Resources.Secret, secret(`meta-${i}`, 'x'.repeat(4096)));
    type Meta = ConfigMap & { kind?: string };
    const informer = new Informer<Meta>(rest, Resources.Secret, {
      namespace,
      labelSelector: 'suite=metadata',
      logger,
      name: 'metadata',
      pageSize: 2,
      metadataOnly: true,
    });
    const seen: { type: InformerEventType; name: string; version: string; data: boolean }[] = [];
    informer.onEvent((type, obj) =>
      seen.push({
        type,
        name: obj.metadata?.name ?? '',
        version: obj.metadata?.resourceVersion ?? '',
        data: obj.data !== undefined,
      }),
    );
    informer.start();
    try {
      expect(await informer.waitForSync(10_000)).toBe(true);
      const listed = informer.get(namespace, 'meta-1');
      expect(listed?.kind).toBe('PartialObjectMetadata');
      expect(listed?.metadata?.labels).toEqual({ suite: 'metadata' });
      expect(listed?.metadata?.managedFields).toBeUndefined();
      expect(
        informer
          .list(namespace)
          .map((o) => o.metadata?.name)
          .sort(),
      ).toEqual(['meta-0', 'meta-1', 'meta-2']);

      // A change of the content alone still arrives, as a new version of the metadata.
      const before = listed?.metadata?.resourceVersion;
      const changed = await rest.mergePatch<Meta>(Resources.Secret, namespace, 'meta-1', {
        data: { value: Buffer.from('new').toString('base64') },
      });
      await rest.create(Resources.Secret, secret('meta-live', 'y'));
      await rest.delete(Resources.Secret, namespace, 'meta-0');
      await waitFor('live events', () => (seen.length >= 6 ? true : undefined), { timeoutMs: 10_000 });
      expect(seen.slice(3).map((s) => [s.type, s.name])).toEqual([
        ['MODIFIED', 'meta-1'],
        ['ADDED', 'meta-live'],
        ['DELETED', 'meta-0'],
      ]);
      expect(seen[3]?.version).toBe(changed.metadata?.resourceVersion);
      expect(seen[3]?.version).not.toBe(before);
      expect(informer.get(namespace, 'meta-live')?.metadata?.annotations).toEqual({ note: 'meta-live' });
      expect(seen.some((s) => s.data)).toBe(false);
    } finally {
      await informer.dispose();
    }
  }, 30_000);

  it('lists in pages and maintains indexes', async () => {
    const count = 23;
    for (let i = 0; i < count; i++) {
      await rest.create(Resources.ConfigMap, cm(`paged-${i}`, String(i % 3), { suite: 'paged' }));
    }
    const registry = createRegistry();
    const counted = new RestClient(kc, { registry, logger });
    const informer = new Informer<ConfigMap>(counted, Resources.ConfigMap, {
      namespace,
      labelSelector: 'suite=paged',
      pageSize: 5,
      logger,
      name: 'paged',
      registry,
    });
    informer.addIndex('value', (o) => [o.data?.value ?? '']);
    // In which event-loop turns the list's objects arrive.
    const turns = turnCounter();
    const listTurns = new Set<number>();
    informer.onEvent((_type, _obj, _old, meta) => {
      if (meta.initial) listTurns.add(turns.current());
    });
    informer.start();
    try {
      expect(await informer.waitForSync(10_000)).toBe(true);
      turns.stop();
      expect(informer.list(namespace)).toHaveLength(count);
      // Each page is applied when it arrives, not the whole list in one turn: a runtime listing 1,000
      // accounts must not hold its event loop for all of them at once.
      expect(listTurns.size).toBeGreaterThanOrEqual(5);
      // ceil(23 / 5) = 5 pages: at least 5 GETs for one list (an unpaged list plus the watch would be 2).
      expect(
        await metricValue(registry, 'rest_client_requests_total', { method: 'GET', code: '200' }),
      ).toBeGreaterThanOrEqual(5);
      expect(await metricValue(registry, 'reflector_lists_total', { name: 'paged' })).toBe(1);
      expect(informer.byIndex('value', '0')).toHaveLength(8);
      await rest.mergePatch(Resources.ConfigMap, namespace, 'paged-0', { data: { value: '2' } });
      await waitFor('index update', () => (informer.byIndex('value', '0').length === 7 ? true : undefined), {
        timeoutMs: 10_000,
      });
      expect(informer.byIndex('value', '2')).toHaveLength(8);
    } finally {
      turns.stop();
      await informer.dispose();
      await counted.close();
    }
  }, 60_000);

  it('resumes after stop(): changes made while stopped arrive, including deletions', async () => {
    await rest.create(Resources.ConfigMap, cm('keep', '1', { suite: 'resume' }));
    await rest.create(Resources.ConfigMap, cm('drop', '1', { suite: 'resume' }));
    const informer = new Informer<ConfigMap>(rest, Resources.ConfigMap, {
      namespace,
      labelSelector: 'suite=resume',
      logger,
      name: 'resume',
      registry: createRegistry(),
    });
    const seen = recorder(informer);
    informer.start();
    try {
      expect(await informer.waitForSync(10_000)).toBe(true);
      await informer.stop();
      await rest.delete(Resources.ConfigMap, namespace, 'drop');
      await rest.mergePatch(Resources.ConfigMap, namespace, 'keep', { data: { value: '2' } });
      await rest.create(Resources.ConfigMap, cm('new', '1', { suite: 'resume' }));
      expect(contents(informer)).toEqual(['drop=1', 'keep=1']); // stopped: nothing moved
      informer.start();
      await waitFor(
        'informer to catch up',
        async () =>
          JSON.stringify(contents(informer)) === JSON.stringify(await truth('suite=resume'))
            ? true
            : undefined,
        { timeoutMs: 15_000 },
      );
      expect(contents(informer)).toEqual(['keep=2', 'new=1']);
      expect(seen.filter((s) => s.type === 'DELETED').map((s) => s.name)).toEqual(['drop']);
    } finally {
      await informer.dispose();
    }
  }, 30_000);
});

describe('Informer behind a failing network', () => {
  let proxy: TcpProxy;
  let viaProxy: RestClient;

  beforeAll(async () => {
    const server = new URL(kc.getCurrentCluster()?.server ?? '');
    proxy = new TcpProxy(server.hostname, Number(server.port));
    await proxy.start();
    viaProxy = new RestClient(kubeConfigWithServer(kc, `https://127.0.0.1:${proxy.port}`), {
      registry: createRegistry(),
      logger,
    });
  });

  afterAll(async () => {
    await viaProxy.close();
    await proxy.stop();
  });

  it('recovers from killed connections with the right contents', async () => {
    const registry = createRegistry();
    for (let i = 0; i < 5; i++)
      await rest.create(Resources.ConfigMap, cm(`kill-${i}`, 'v1', { suite: 'kill' }));
    const informer = new Informer<ConfigMap>(viaProxy, Resources.ConfigMap, {
      namespace,
      labelSelector: 'suite=kill',
      logger,
      name: 'kill',
      registry,
      backoff: { initialMs: 100, maxMs: 1000 },
    });
    informer.start();
    try {
      expect(await informer.waitForSync(10_000)).toBe(true);
      for (let round = 0; round < 3; round++) {
        await waitFor('an open watch', () => (informer.isWatching() ? true : undefined), {
          timeoutMs: 10_000,
        });
        expect(proxy.killAll()).toBeGreaterThan(0);
        // Change things right away, while the informer is reconnecting.
        await rest.delete(Resources.ConfigMap, namespace, `kill-${round}`);
        await rest.mergePatch(Resources.ConfigMap, namespace, `kill-4`, { data: { value: `v${round + 2}` } });
        await rest.create(Resources.ConfigMap, cm(`kill-new-${round}`, 'n', { suite: 'kill' }));
      }
      const expected = await truth('suite=kill');
      await waitFor(
        'informer to converge',
        () => (JSON.stringify(contents(informer)) === JSON.stringify(expected) ? true : undefined),
        {
          timeoutMs: 20_000,
          onTimeout: () => `have ${JSON.stringify(contents(informer))}, want ${JSON.stringify(expected)}`,
        },
      );
      expect(expected).toEqual(['kill-3=v1', 'kill-4=v4', 'kill-new-0=n', 'kill-new-1=n', 'kill-new-2=n']);
      expect(
        await metricValue(registry, 'reflector_watch_ends_total', { name: 'kill', reason: 'error' }),
      ).toBeGreaterThanOrEqual(1);
    } finally {
      await informer.dispose();
    }
  }, 60_000);

  it('counts its contents as current only from the moment a watch is open again, not while it waits to reconnect', async () => {
    await rest.create(Resources.ConfigMap, cm('current', 'v', { suite: 'current' }));
    const informer = new Informer<ConfigMap>(viaProxy, Resources.ConfigMap, {
      namespace,
      labelSelector: 'suite=current',
      logger,
      name: 'current',
      registry: createRegistry(),
      // A long wait before reconnecting: the state a cut watch is in after a few failures in a row.
      backoff: { initialMs: 3000, maxMs: 3000 },
    });
    informer.start();
    try {
      expect(await informer.waitForSync(10_000)).toBe(true);
      await waitFor('an open watch', () => (informer.isWatching() ? true : undefined), { timeoutMs: 10_000 });
      const openedAt = informer.currentSince();
      expect(informer.currentSince()).toBe(openedAt);
      const cutAt = performance.now();
      expect(proxy.killAll()).toBeGreaterThan(0);
      await waitFor('the watch to end', () => (informer.isWatching() ? undefined : true), {
        timeoutMs: 5000,
      });
      // While it waits, nothing it holds is known to be current: "since" is always now.
      const during = informer.currentSince();
      expect(during).toBeGreaterThan(cutAt);
      await waitFor(
        'time to pass while it waits',
        () => (informer.currentSince() > during ? true : undefined),
        {
          timeoutMs: 2000,
        },
      );
      await waitFor('the watch reopened', () => (informer.isWatching() ? true : undefined), {
        timeoutMs: 10_000,
      });
      const reopenedAt = informer.currentSince();
      expect(reopenedAt).toBeGreaterThan(during);
      expect(informer.currentSince()).toBe(reopenedAt);
    } finally {
      await informer.dispose();
    }
  }, 30_000);

  it('restarts a watch that went silent (half-open connection) when the watchdog expires', async () => {
    const registry = createRegistry();
    await rest.create(Resources.ConfigMap, cm('quiet', 'before', { suite: 'silent' }));
    const informer = new Informer<ConfigMap>(viaProxy, Resources.ConfigMap, {
      namespace,
      labelSelector: 'suite=silent',
      logger,
      name: 'silent',
      registry,
      watchdogMs: 2000,
    });
    informer.start();
    try {
      expect(await informer.waitForSync(10_000)).toBe(true);
      await waitFor('an open watch', () => (informer.isWatching() ? true : undefined), { timeoutMs: 10_000 });
      expect(proxy.blackhole()).toBeGreaterThan(0);
      await rest.mergePatch(Resources.ConfigMap, namespace, 'quiet', { data: { value: 'after' } });
      // The change cannot arrive on the black-holed connection; only a new watch brings it.
      await waitFor(
        'the change through a new watch',
        () => (informer.get(namespace, 'quiet')?.data?.value === 'after' ? true : undefined),
        {
          timeoutMs: 15_000,
        },
      );
      expect(
        await metricValue(registry, 'reflector_watch_ends_total', { name: 'silent', reason: 'watchdog' }),
      ).toBeGreaterThanOrEqual(1);
    } finally {
      await informer.dispose();
    }
  }, 30_000);
});
