/**
 * A kubeconfig for a ServiceAccount that may do only what `rules` allow in one namespace (the default
 * namespace of its context), for tests that prove a command needs no more than that. Returns once the grant
 * is in effect: RBAC is evaluated from an informer cache, so `probe` is retried until it is allowed.
 */
import type * as k8s from '@kubernetes/client-node';
import { readFileSync, writeFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { RestClient, loadKubeConfig } from '../../operator/kube/client.js';
import { createRegistry } from '../../operator/kube/metrics.js';
import { Resources, type ApiObject } from '../../operator/kube/resource.js';
import { waitFor } from '../cluster/wait.js';
import { serviceAccountKubeconfig } from './runtime.js';

export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

export async function restrictedKubeconfig(options: {
  admin: k8s.KubeConfig;
  rest: RestClient;
  namespace: string;
  name: string;
  rules: PolicyRule[];
  /** A request the grant allows (and nothing less would). */
  probe: (client: RestClient) => Promise<unknown>;
}): Promise<string> {
  const { rest, namespace, name } = options;
  await rest.create(Resources.ServiceAccount, { metadata: { name, namespace } });
  await rest.create(Resources.Role, { metadata: { name, namespace }, rules: options.rules } as ApiObject);
  await rest.create(Resources.RoleBinding, {
    metadata: { name, namespace },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
    subjects: [{ kind: 'ServiceAccount', name, namespace }],
  } as ApiObject);
  const path = await serviceAccountKubeconfig(options.admin, namespace, name);
  // Commands run without -n use the context's namespace, as a user's kubeconfig would set it.
  const config = parse(readFileSync(path, 'utf8')) as {
    contexts: Array<{ context: Record<string, string> }>;
  };
  for (const c of config.contexts) c.context.namespace = namespace;
  writeFileSync(path, stringify(config), { mode: 0o600 });
  const probe = new RestClient(loadKubeConfig(path), { registry: createRegistry() });
  try {
    await waitFor(
      `ServiceAccount ${name} to be authorized`,
      async () => {
        await options.probe(probe);
        return true;
      },
      { timeoutMs: 10_000 },
    );
  } finally {
    await probe.close();
  }
  return path;
}
