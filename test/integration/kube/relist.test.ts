/**
 * 410 Gone handling against a real apiserver. The apiserver's watch cache would serve a resumed watch from
 * its own event window long after etcd compacted, so this suite runs a private control plane with
 * --watch-cache=false: a watch from a compacted resourceVersion then gets etcd's compaction error, which
 * the apiserver sends inside the 200 response as an ERROR Status event with code 410.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { RestClient } from '../../../operator/kube/client.js';
import { createRegistry, metricValue } from '../../../operator/kube/metrics.js';
import {
  Informer,
  type InformerEventMeta,
  type InformerEventType,
} from '../../../operator/kube/reflector.js';
import { Resources } from '../../../operator/kube/resource.js';
import { waitFor } from '../../cluster/wait.js';
import { compactEtcd, etcdRevision, startPrivatePlane, testLogger, type PrivatePlane } from './support.js';

interface ConfigMap {
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string> };
  data?: Record<string, string>;
}

const logger = testLogger('relist-test');
let plane: PrivatePlane | undefined;
let rest: RestClient;
const namespace = 'relist';

beforeAll(async () => {
  plane = await startPrivatePlane('nocache', ['--watch-cache=false']);
  rest = new RestClient(plane.kubeConfig, { registry: createRegistry(), logger });
  await rest.create(Resources.Namespace, { metadata: { name: namespace } });
}, 120_000);

afterAll(async () => {
  await rest?.close();
  await plane?.plane.stop();
}, 60_000);

function cm(name: string, value: string): ConfigMap {
  return { metadata: { name, namespace, labels: { suite: 'gone' } }, data: { value } };
}

function contents(informer: Informer<ConfigMap>): string[] {
  return informer
    .list(namespace)
    .map((o) => `${o.metadata?.name ?? ''}=${o.data?.value ?? ''}`)
    .sort();
}

describe('Informer on 410 Gone', () => {
  it('relists after an in-stream 410 and synthesizes DELETED for objects that vanished meanwhile', async () => {
    for (const name of ['a', 'b', 'c']) await rest.create(Resources.ConfigMap, cm(name, '1'));
    const registry = createRegistry();
    const informer = new Informer<ConfigMap>(rest, Resources.ConfigMap, {
      namespace,
      labelSelector: 'suite=gone',
      logger,
      name: 'gone',
      registry,
    });
    const seen: Array<{ type: InformerEventType; name: string; meta: InformerEventMeta }> = [];
    informer.onEvent((type, obj, _old, meta) => seen.push({ type, name: obj.metadata?.name ?? '', meta }));
    informer.start();
    try {
      expect(await informer.waitForSync(10_000)).toBe(true);
      const resumeFrom = informer.lastSyncResourceVersion();
      await informer.stop();

      // While the informer is away: changes, then compaction of all history up to now.
      await rest.delete(Resources.ConfigMap, namespace, 'a');
      await rest.mergePatch(Resources.ConfigMap, namespace, 'b', { data: { value: '2' } });
      await rest.create(Resources.ConfigMap, cm('d', '1'));
      const etcdUrl = plane?.etcdUrl ?? '';
      const revision = await etcdRevision(etcdUrl);
      expect(revision).toBeGreaterThan(Number(resumeFrom));
      await compactEtcd(etcdUrl, revision);

      seen.length = 0;
      informer.start();
      await waitFor(
        'the informer to relist',
        () => (contents(informer).join() === 'b=2,c=1,d=1' ? true : undefined),
        {
          timeoutMs: 20_000,
          onTimeout: () => `informer holds ${contents(informer).join()}`,
        },
      );
      // The 410 arrived inside the stream (an ERROR event), and led to exactly one relist.
      expect(
        await metricValue(registry, 'reflector_watch_events_total', { name: 'gone', type: 'ERROR' }),
      ).toBeGreaterThanOrEqual(1);
      expect(
        await metricValue(registry, 'reflector_relists_total', { name: 'gone', reason: 'expired' }),
      ).toBe(1);
      expect(seen.map((s) => `${s.type} ${s.name} ${s.meta.finalStateUnknown === true}`).sort()).toEqual([
        'ADDED d false',
        'DELETED a true',
        'MODIFIED b false',
      ]);
      expect(seen.every((s) => !s.meta.initial)).toBe(true);
      expect(Number(informer.lastSyncResourceVersion())).toBeGreaterThanOrEqual(revision);

      // And it keeps watching from the new list's resourceVersion.
      await rest.mergePatch(Resources.ConfigMap, namespace, 'c', { data: { value: '3' } });
      await waitFor(
        'a live event after the relist',
        () => (informer.get(namespace, 'c')?.data?.value === '3' ? true : undefined),
        {
          timeoutMs: 10_000,
        },
      );
    } finally {
      await informer.dispose();
    }
  }, 60_000);
});
