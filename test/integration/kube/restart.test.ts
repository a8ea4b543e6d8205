/**
 * Restarting kube-apiserver mid-run (a private control plane, since restarting the shared one would
 * disturb other suites): every watch breaks, requests are refused for a while, and the new apiserver's
 * watch cache starts fresh. The informers and the controller on top must end in the converged state.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { RestClient } from '../../../operator/kube/client.js';
import { createRegistry, metricValue } from '../../../operator/kube/metrics.js';
import { Resources } from '../../../operator/kube/resource.js';
import { waitFor } from '../../cluster/wait.js';
import { converged, createMirror, source } from './mirror.js';
import { startPrivatePlane, testLogger, type PrivatePlane } from './support.js';

const logger = testLogger('restart-test');
let plane: PrivatePlane | undefined;
let rest: RestClient;
const namespace = 'restart';
const suite = 'restart';

beforeAll(async () => {
  plane = await startPrivatePlane('restart', []);
  rest = new RestClient(plane.kubeConfig, { registry: createRegistry(), logger });
  await rest.create(Resources.Namespace, { metadata: { name: namespace } });
}, 120_000);

afterAll(async () => {
  await rest?.close();
  await plane?.plane.stop();
}, 60_000);

describe('informers and controller across a kube-apiserver restart', () => {
  it('reconnect on their own and converge on the changes made after the restart', async () => {
    for (let i = 0; i < 10; i++)
      await rest.create(Resources.ConfigMap, source(namespace, suite, `${i}`, { v: '1' }));
    const registry = createRegistry();
    const mirror = createMirror({ rest, namespace, suite, logger, registry, workers: 2 });
    await mirror.start();
    try {
      await waitFor(
        'initial convergence',
        async () => ((await converged(rest, namespace, suite)) ? true : undefined),
        { timeoutMs: 20_000 },
      );
      const watchesBefore = await metricValue(registry, 'reflector_watches_total', {
        name: `${suite}-sources`,
      });

      await plane?.plane.restartApiServer();

      // Changes right after the restart, racing the informers' reconnect.
      await rest.delete(Resources.ConfigMap, namespace, 'src-0');
      await rest.mergePatch(Resources.ConfigMap, namespace, 'src-1', { data: { v: '2' } });
      await rest.create(Resources.ConfigMap, source(namespace, suite, 'after', { v: '1' }));

      await waitFor(
        'convergence after the restart',
        async () => ((await converged(rest, namespace, suite)) ? true : undefined),
        {
          timeoutMs: 60_000,
        },
      );
      await waitFor(
        'the caches to match the apiserver',
        async () => {
          const truth = await rest.listAll(Resources.ConfigMap, {
            namespace,
            labelSelector: `suite=${suite}`,
          });
          const cached = mirror.sources.list(namespace).length + mirror.mirrors.list(namespace).length;
          return cached === truth.items.length && mirror.mirrors.get(namespace, 'mirror-1')?.data?.v === '2'
            ? true
            : undefined;
        },
        { timeoutMs: 30_000 },
      );
      expect(mirror.mirrors.get(namespace, 'mirror-0')).toBeUndefined();
      expect(mirror.mirrors.get(namespace, 'mirror-after')?.data).toEqual({ v: '1' });
      // The watches really broke and were re-established.
      expect(
        await metricValue(registry, 'reflector_watches_total', { name: `${suite}-sources` }),
      ).toBeGreaterThan(watchesBefore);
      await waitFor(
        'watches re-established',
        () => (mirror.sources.isWatching() && mirror.mirrors.isWatching() ? true : undefined),
        {
          timeoutMs: 30_000,
        },
      );
    } finally {
      await mirror.stop();
    }
  }, 180_000);
});
