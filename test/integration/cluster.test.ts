import * as k8s from '@kubernetes/client-node';
import { adminKubeConfig, apiStatus, createTestNamespace, tokenKubeConfig } from '../support/cluster.js';
import { waitFor } from '../cluster/wait.js';

type WatchEvent = { phase: string; kind: string; name: string };

describe('the test control plane (etcd + kube-apiserver)', () => {
  const kc = adminKubeConfig();
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const coordination = kc.makeApiClient(k8s.CoordinationV1Api);
  let namespace = '';

  beforeAll(async () => {
    namespace = await createTestNamespace(kc, 'foundation');
  });

  it('streams watch events for ConfigMaps and Leases created through @kubernetes/client-node', async () => {
    const events: WatchEvent[] = [];
    const watch = new k8s.Watch(kc);
    const record = (kind: string) => (phase: string, object: k8s.KubernetesObject) =>
      events.push({ phase, kind, name: object.metadata?.name ?? '' });
    const done = (): void => undefined;
    const configMapWatch = await watch.watch(
      `/api/v1/namespaces/${namespace}/configmaps`,
      {},
      record('ConfigMap'),
      done,
    );
    const leaseWatch = await watch.watch(
      `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`,
      {},
      record('Lease'),
      done,
    );
    try {
      await core.createNamespacedConfigMap({
        namespace,
        body: { metadata: { name: 'settings' }, data: { greeting: 'hello' } },
      });
      await coordination.createNamespacedLease({
        namespace,
        body: {
          metadata: { name: 'runtime-0' },
          spec: { holderIdentity: 'runtime-0', leaseDurationSeconds: 15 },
        },
      });
      await core.patchNamespacedConfigMap(
        { namespace, name: 'settings', body: { data: { greeting: 'bye' } } },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      );
      await coordination.deleteNamespacedLease({ namespace, name: 'runtime-0' });

      await waitFor('all four watch events', () => (events.length >= 4 ? true : undefined), {
        timeoutMs: 10_000,
      });
      expect(events).toEqual(
        expect.arrayContaining([
          { phase: 'ADDED', kind: 'ConfigMap', name: 'settings' },
          { phase: 'MODIFIED', kind: 'ConfigMap', name: 'settings' },
          { phase: 'ADDED', kind: 'Lease', name: 'runtime-0' },
          { phase: 'DELETED', kind: 'Lease', name: 'runtime-0' },
        ]),
      );
    } finally {
      configMapWatch.abort();
      leaseWatch.abort();
    }
  });

  it('enforces RBAC: a ServiceAccount without rights gets 403 with its token, then 200 once bound to a Role', async () => {
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'nobody' } } });
    const tokenRequest = await core.createNamespacedServiceAccountToken({
      namespace,
      name: 'nobody',
      body: { spec: { audiences: ['https://kubernetes.default.svc.cluster.local'], expirationSeconds: 600 } },
    });
    const token = tokenRequest.status?.token;
    expect(token).toBeTruthy();
    const asNobody = tokenKubeConfig(kc, token ?? '').makeApiClient(k8s.CoreV1Api);

    const denied = await asNobody.listNamespacedConfigMap({ namespace }).then(
      () => 'allowed',
      (error: unknown) => apiStatus(error),
    );
    expect(denied).toBe(403);

    const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({
      namespace,
      body: {
        metadata: { name: 'read-configmaps' },
        rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['list'] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace,
      body: {
        metadata: { name: 'nobody-reads' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'read-configmaps' },
        subjects: [{ kind: 'ServiceAccount', name: 'nobody', namespace }],
      },
    });
    // RBAC bindings reach the authorizer's cache asynchronously.
    const list = await waitFor(
      'the RoleBinding to take effect',
      () => asNobody.listNamespacedConfigMap({ namespace }),
      {
        timeoutMs: 10_000,
      },
    );
    expect(Array.isArray(list.items)).toBe(true);
    // Listing is allowed, deleting is not: the Role grants exactly what it names.
    const deleteDenied = await asNobody.deleteNamespacedConfigMap({ namespace, name: 'settings' }).then(
      () => 'allowed',
      (error: unknown) => apiStatus(error),
    );
    expect(deleteDenied).toBe(403);
  });

  it('enforces RBAC under impersonation of a ServiceAccount', async () => {
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'impersonated' } } });
    const impersonating = adminKubeConfig();
    const user = impersonating.getCurrentUser();
    if (!user) throw new Error('no current user');
    impersonating.users = impersonating.users.map((u) =>
      u.name === user.name ? { ...u, impersonateUser: `system:serviceaccount:${namespace}:impersonated` } : u,
    );
    const asImpersonated = impersonating.makeApiClient(k8s.CoreV1Api);
    const status = await asImpersonated.listNamespacedSecret({ namespace }).then(
      () => 'allowed',
      (error: unknown) => apiStatus(error),
    );
    expect(status).toBe(403);
  });
});
