/**
 * The send API's access checks against the real API server: ServiceAccount tokens made for the API's
 * audience are accepted, tokens for another audience are not; the cluster's RBAC on
 * `telegramaccounts/messages` decides who may send as which account, namespace by namespace.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import * as k8s from '@kubernetes/client-node';
import { GROUP } from '../../../crds/index.js';
import { RestClient } from '../../../operator/kube/client.js';
import { createRegistry } from '../../../operator/kube/metrics.js';
import { SEND_API_AUDIENCE, SendAuthorizer, TokenAuthenticator } from '../../../operator/gateway/access.js';
import { adminKubeConfig, createTestNamespace } from '../../support/cluster.js';
import { serviceAccountToken } from '../../support/runtime.js';
import { testLogger } from '../kube/support.js';

const kc = adminKubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
let rest: RestClient;
let teamA = '';
let teamB = '';

async function serviceAccount(namespace: string, name: string): Promise<void> {
  await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } });
}

const token = (namespace: string, name: string, audience: string): Promise<string> =>
  serviceAccountToken(kc, namespace, name, audience);

beforeAll(async () => {
  rest = new RestClient(kc, { registry: createRegistry(), logger: testLogger('gateway-access') });
  teamA = await createTestNamespace(kc, 'team-a');
  teamB = await createTestNamespace(kc, 'team-b');
  await serviceAccount(teamA, 'app');
  await serviceAccount(teamB, 'app');
  // The Role a user writes: create on the messages of one account, in its namespace.
  await rbac.createNamespacedRole({
    namespace: teamA,
    body: {
      metadata: { name: 'send-as-support' },
      rules: [
        {
          apiGroups: [GROUP],
          resources: ['telegramaccounts/messages'],
          resourceNames: ['support'],
          verbs: ['create'],
        },
      ],
    },
  });
  await rbac.createNamespacedRoleBinding({
    namespace: teamA,
    body: {
      metadata: { name: 'app-sends-as-support' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'send-as-support' },
      subjects: [{ kind: 'ServiceAccount', name: 'app', namespace: teamA }],
    },
  });
});

afterAll(async () => {
  await rest.close();
});

describe('send API access', () => {
  it('accepts a ServiceAccount token made for its audience and refuses one made for the API server', async () => {
    const authn = new TokenAuthenticator(rest);
    const caller = await authn.authenticate(await token(teamA, 'app', SEND_API_AUDIENCE));
    expect(caller?.user).toBe(`system:serviceaccount:${teamA}:app`);
    expect(caller?.groups).toContain(`system:serviceaccounts:${teamA}`);
    expect(
      await authn.authenticate(await token(teamA, 'app', 'https://kubernetes.default.svc')),
    ).toBeUndefined();
    expect(await authn.authenticate('not-a-token')).toBeUndefined();
  });

  it('lets RBAC decide: the bound ServiceAccount may send as its account, nobody else and nowhere else', async () => {
    const authn = new TokenAuthenticator(rest);
    const authz = new SendAuthorizer(rest);
    const appA = await authn.authenticate(await token(teamA, 'app', SEND_API_AUDIENCE));
    const appB = await authn.authenticate(await token(teamB, 'app', SEND_API_AUDIENCE));
    if (!appA || !appB) throw new Error('both tokens should authenticate');
    expect((await authz.maySend(appA, teamA, 'support')).allowed).toBe(true);
    expect((await authz.maySend(appA, teamA, 'sales')).allowed).toBe(false);
    expect((await authz.maySend(appB, teamA, 'support')).allowed).toBe(false);
    expect((await authz.maySend(appA, teamB, 'support')).allowed).toBe(false);
  });
});
