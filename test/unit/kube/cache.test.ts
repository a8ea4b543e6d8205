import { Readable } from 'node:stream';
import { describe, expect, it } from '@jest/globals';
import { Store, pruneForCache } from '../../../operator/kube/cache.js';
import { collectionPath, objectPath, Resources } from '../../../operator/kube/resource.js';
import { watchEvents, type WatchEvent } from '../../../operator/kube/watch.js';

interface Obj {
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    managedFields?: unknown;
    annotations?: Record<string, string>;
  };
  spec?: { node?: string };
}

function obj(namespace: string, name: string, node?: string): Obj {
  return { metadata: { name, namespace }, spec: { node } };
}

describe('Store', () => {
  it('lists by namespace and keeps named indexes current through updates and removals', () => {
    const store = new Store<Obj>();
    store.addIndex('node', (o) => (o.spec?.node ? [o.spec.node] : []));
    store.upsert(obj('a', 'x', 'n1'));
    store.upsert(obj('a', 'y', 'n1'));
    store.upsert(obj('b', 'x', 'n2'));
    expect(
      store
        .list('a')
        .map((o) => o.metadata.name)
        .sort(),
    ).toEqual(['x', 'y']);
    expect(store.list('c')).toEqual([]);
    expect(store.byIndex('node', 'n1')).toHaveLength(2);
    store.upsert(obj('a', 'y', 'n2'));
    expect(store.byIndex('node', 'n1').map((o) => o.metadata.name)).toEqual(['x']);
    expect(store.byIndex('node', 'n2')).toHaveLength(2);
    store.remove('b/x');
    expect(store.byIndex('node', 'n2').map((o) => `${o.metadata.namespace}/${o.metadata.name}`)).toEqual([
      'a/y',
    ]);
    expect(store.list('b')).toEqual([]);
    // An index added later covers existing objects.
    store.addIndex('ns', (o) => [o.metadata.namespace ?? '']);
    expect(store.byIndex('ns', 'a')).toHaveLength(2);
  });

  it('freezes stored objects so a reader cannot mutate the shared cache', () => {
    const store = new Store<Obj>();
    store.upsert({ metadata: { name: 'x', namespace: 'a', labels: { k: 'v' } } });
    const cached = store.get('a/x');
    expect(() => {
      (cached as Obj).metadata.labels = {};
    }).toThrow(TypeError);
    expect(() => {
      ((cached as Obj).metadata.labels as Record<string, string>).k = 'w';
    }).toThrow(TypeError);
  });

  it('prunes managedFields and the last-applied annotation', () => {
    const pruned = pruneForCache<Obj>({
      metadata: {
        name: 'x',
        managedFields: [{ manager: 'kubectl' }],
        annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}', keep: 'me' },
      },
    });
    expect(pruned.metadata).toEqual({ name: 'x', annotations: { keep: 'me' } });
  });
});

describe('watchEvents', () => {
  it('splits line-delimited JSON across arbitrary chunk boundaries and drops a trailing fragment', async () => {
    const lines = [
      { type: 'ADDED', object: { metadata: { name: 'a', resourceVersion: '1' } } },
      { type: 'BOOKMARK', object: { metadata: { resourceVersion: '2' } } },
      { type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired' } },
    ];
    const text = lines.map((l) => JSON.stringify(l)).join('\n') + '\n{"type":"MODIF';
    const chunks: string[] = [];
    for (let i = 0; i < text.length; i += 7) chunks.push(text.slice(i, i + 7));
    const events: WatchEvent[] = [];
    for await (const event of watchEvents(Readable.from(chunks.map((c) => Buffer.from(c)))))
      events.push(event);
    expect(events).toEqual(lines);
  });
});

describe('resource paths', () => {
  it('builds core, grouped, namespaced and cluster-scoped paths', () => {
    expect(collectionPath(Resources.Secret, 'ns')).toBe('/api/v1/namespaces/ns/secrets');
    expect(collectionPath(Resources.Secret)).toBe('/api/v1/secrets');
    expect(objectPath(Resources.StatefulSet, 'ns', 'rt')).toBe('/apis/apps/v1/namespaces/ns/statefulsets/rt');
    expect(objectPath(Resources.Pod, 'ns', 'p', 'status')).toBe('/api/v1/namespaces/ns/pods/p/status');
    expect(objectPath(Resources.Node, undefined, 'n1')).toBe('/api/v1/nodes/n1');
    expect(() => objectPath(Resources.Lease, undefined, 'l')).toThrow(/namespaced/);
  });
});
