/** What every benchmark's control plane needs before the operator starts: our CRDs, served, and namespaces. */
import { allCrds } from '../../crds/index.js';
import { CampaignResource } from '../../crds/resources.js';
import type { RestClient } from '../../operator/kube/client.js';
import { Resources, type ApiObject } from '../../operator/kube/resource.js';
import { waitFor } from '../cluster/wait.js';

/** Applies the CRDs, waits until the API serves them, and creates `namespace` and the operator's namespace. */
export async function installBenchApi(client: RestClient, namespace: string): Promise<void> {
  for (const crd of allCrds())
    await client.applyPatch(Resources.CustomResourceDefinition, crd as ApiObject, { fieldManager: 'bench' });
  await waitFor('CRDs served', () => client.list(CampaignResource, { limit: 1 }).then(() => true), {
    timeoutMs: 30_000,
  });
  for (const ns of [namespace, 'tdlib-operator-system'])
    await client.create(Resources.Namespace, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
}

/** The opted-in API credentials Secret `api` every benchmark account names (the simulator accepts any). */
export async function createApiCredentials(client: RestClient, namespace: string): Promise<void> {
  await client.create(Resources.Secret, {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: 'api',
      namespace,
      labels: { 'telegram.tdlib-operator.dev/usable-by-accounts': 'true' },
    },
    stringData: { api_id: '94575', api_hash: 'a3406de8d171bb422bb6ddf3bbd800e2' },
  } as ApiObject);
}
