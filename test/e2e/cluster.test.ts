import * as k8s from '@kubernetes/client-node';
import { adminKubeConfig, createTestNamespace } from '../support/cluster.js';
import { waitFor } from '../cluster/wait.js';

function isReady(pod: k8s.V1Pod): boolean {
  return (pod.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
}

describe('the full control plane (controller-manager, scheduler, kwok fake nodes)', () => {
  const kc = adminKubeConfig();
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const apps = kc.makeApiClient(k8s.AppsV1Api);

  it('runs a 3-replica StatefulSet to 3 Ready pods on fake nodes and garbage-collects them on delete', async () => {
    const namespace = await createTestNamespace(kc, 'sts');
    const labels = { app: 'web' };
    await apps.createNamespacedStatefulSet({
      namespace,
      body: {
        metadata: { name: 'web' },
        spec: {
          replicas: 3,
          serviceName: 'web',
          selector: { matchLabels: labels },
          template: {
            metadata: { labels },
            spec: { containers: [{ name: 'web', image: 'registry.invalid/web:1' }] },
          },
        },
      },
    });

    const pods = await waitFor(
      '3 Ready pods of the StatefulSet',
      async () => {
        const list = await core.listNamespacedPod({ namespace, labelSelector: 'app=web' });
        const ready = list.items.filter(isReady);
        return ready.length === 3 ? ready : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    expect(pods.map((p) => p.metadata?.name).sort()).toEqual(['web-0', 'web-1', 'web-2']);
    expect(pods.every((p) => (p.spec?.nodeName ?? '').startsWith('kwok-node-'))).toBe(true);
    // The StatefulSet controller counts Ready pods after the kubelet (kwok) marks them, so its
    // status lags the pods by one sync: wait for it rather than read it once.
    await waitFor(
      'the StatefulSet to report 3 ready replicas',
      async () => {
        const sts = await apps.readNamespacedStatefulSet({ namespace, name: 'web' });
        return sts.status?.readyReplicas === 3 ? true : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 250 },
    );

    await apps.deleteNamespacedStatefulSet({
      namespace,
      name: 'web',
      body: { propagationPolicy: 'Background' },
    });
    await waitFor(
      'the garbage collector to delete the pods',
      async () => {
        const list = await core.listNamespacedPod({ namespace, labelSelector: 'app=web' });
        return list.items.length === 0 ? true : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 500 },
    );
  });
});
