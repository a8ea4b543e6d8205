import { execFileSync } from 'node:child_process';
import * as k8s from '@kubernetes/client-node';
import { allCrds } from '../../crds/index.js';
import { waitFor } from '../cluster/wait.js';
import { testCluster } from './cluster.js';

/**
 * Installs (or updates) our CRDs and waits until the API server serves them. Not through client-node's
 * KubernetesObjectApi: it re-serializes plain objects through its typed models and silently drops fields
 * whose wire name differs from the model's (enum, x-kubernetes-validations), which would install a CRD
 * without its validation.
 */
export async function installCrds(
  kc: k8s.KubeConfig,
  kubeconfigPath = testCluster().kubeconfigPath,
): Promise<void> {
  const list = { apiVersion: 'v1', kind: 'List', items: allCrds() };
  execFileSync(
    'kubectl',
    [
      '--kubeconfig',
      kubeconfigPath,
      'apply',
      '--server-side',
      '--force-conflicts',
      '--field-manager=tdlib-operator-tests',
      '-f',
      '-',
    ],
    {
      input: JSON.stringify(list),
      stdio: ['pipe', 'ignore', 'pipe'],
    },
  );
  const api = kc.makeApiClient(k8s.ApiextensionsV1Api);
  for (const crd of allCrds()) {
    const name = (crd.metadata as { name: string }).name;
    await waitFor(
      `CRD ${name} Established`,
      async () => {
        const current = await api.readCustomResourceDefinition({ name });
        return (current.status?.conditions ?? []).some((c) => c.type === 'Established' && c.status === 'True')
          ? true
          : undefined;
      },
      { timeoutMs: 30_000 },
    );
  }
}
