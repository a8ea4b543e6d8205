/**
 * Why the send API is not also registered as an aggregated API (`kubectl create --raw .../messages`), the
 * condition issue 16 set for that step: an unavailable aggregated API must not block namespace deletion or
 * discovery for the cluster. On our own control plane with the controller-manager running, it does both:
 * while an APIService's backend does not answer, every namespace being deleted stays Terminating with
 * NamespaceDeletionDiscoveryFailure, and discovery of that group answers 503 (so clients that list every
 * API, like the namespace controller and `kubectl api-resources`, fail), until the APIService is removed.
 * The send API therefore stays a plain HTTPS Service. This test re-checks the verdict with each
 * Kubernetes version we build: if it ever fails, the aggregated API is worth doing.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { RestClient, loadKubeConfig } from '../../operator/kube/client.js';
import { isNotFound } from '../../operator/kube/errors.js';
import { createLogger } from '../../operator/kube/logging.js';
import { createRegistry } from '../../operator/kube/metrics.js';
import { Resources, type ApiObject, type ResourceDescriptor } from '../../operator/kube/resource.js';
import { ControlPlane } from '../cluster/control-plane.js';
import { waitFor } from '../cluster/wait.js';

const APIService: ResourceDescriptor = {
  group: 'apiregistration.k8s.io',
  version: 'v1',
  plural: 'apiservices',
  kind: 'APIService',
  namespaced: false,
};
/** What the send API would register: its own group (the CRDs own telegram.tdlib-operator.dev). */
const GROUP = 'send.telegram.tdlib-operator.dev';
const VERSION = 'v1alpha1';
const NAME = `${VERSION}.${GROUP}`;

type Conditioned = ApiObject & {
  status?: { phase?: string; conditions?: Array<{ type: string; status: string; message?: string }> };
};

describe('an unavailable aggregated API (why the send API is not one)', () => {
  let dir = '';
  let plane: ControlPlane;
  let rest: RestClient;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'aggregated-api-'));
    // A control plane of its own: the shared one must never have namespace deletion blocked.
    plane = await ControlPlane.start({ dir, controllers: true });
    rest = new RestClient(loadKubeConfig(plane.info.kubeconfigPath), {
      registry: createRegistry(),
      logger: createLogger({ name: 'aggregated-api-test', level: 'warn' }),
    });
  }, 120_000);

  afterAll(async () => {
    await rest?.close();
    await plane?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('blocks the deletion of an unrelated namespace and answers discovery with 503 until the APIService is removed', async () => {
    for (const name of ['tdlib-operator-system', 'unrelated'])
      await rest.create(Resources.Namespace, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
    await rest.create(Resources.ConfigMap, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'something', namespace: 'unrelated' },
    });
    // The gateway's Service with no pod behind it: the gateway is down (a rollout, a crash, a bad node).
    await rest.create(Resources.Service, {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'tdlib-send-gateway', namespace: 'tdlib-operator-system' },
      spec: { selector: { app: 'tdlib-send-gateway' }, ports: [{ port: 443, targetPort: 8443 }] },
    } as ApiObject);
    await rest.create(APIService, {
      apiVersion: 'apiregistration.k8s.io/v1',
      kind: 'APIService',
      metadata: { name: NAME },
      spec: {
        group: GROUP,
        version: VERSION,
        service: { namespace: 'tdlib-operator-system', name: 'tdlib-send-gateway', port: 443 },
        insecureSkipTLSVerify: true,
        groupPriorityMinimum: 1000,
        versionPriority: 15,
      },
    } as ApiObject);
    const unavailable = await waitFor(
      'the APIService reported unavailable',
      async () => {
        const service = await rest.get<Conditioned>(APIService, undefined, NAME);
        const available = service.status?.conditions?.find((c) => c.type === 'Available');
        return available?.status === 'False' ? available : undefined;
      },
      { timeoutMs: 60_000 },
    );
    expect(unavailable.message ?? '').not.toBe('');

    // Discovery: the group is listed, and asking what it serves fails.
    const groups = await rest.request<{ groups?: Array<{ name: string }> }>({ method: 'GET', path: '/apis' });
    expect(groups.groups?.map((g) => g.name)).toContain(GROUP);
    await expect(rest.request({ method: 'GET', path: `/apis/${GROUP}/${VERSION}` })).rejects.toMatchObject({
      status: 503,
    });

    // A namespace that has nothing to do with the send API cannot be deleted.
    await rest.delete(Resources.Namespace, undefined, 'unrelated');
    const stuck = await waitFor(
      'the namespace controller to report NamespaceDeletionDiscoveryFailure',
      async () => {
        const ns = await rest.get<Conditioned>(Resources.Namespace, undefined, 'unrelated');
        return ns.status?.conditions?.find(
          (c) => c.type === 'NamespaceDeletionDiscoveryFailure' && c.status === 'True',
        )
          ? ns
          : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 500 },
    );
    expect(stuck.status?.phase).toBe('Terminating');
    expect(
      stuck.status?.conditions?.find((c) => c.type === 'NamespaceDeletionDiscoveryFailure')?.message,
    ).toContain(GROUP);

    // Removing the APIService is what unblocks it.
    await rest.delete(APIService, undefined, NAME);
    await waitFor(
      'the namespace gone once the APIService is removed',
      async () => {
        try {
          await rest.get(Resources.Namespace, undefined, 'unrelated');
          return undefined;
        } catch (error) {
          if (isNotFound(error)) return true;
          throw error;
        }
      },
      { timeoutMs: 120_000, intervalMs: 500 },
    );
  }, 360_000);
});
