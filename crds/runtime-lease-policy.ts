/**
 * The admission policy that lets a runtime pod create an account's fence Lease only where its pool's Role
 * already names that Lease for `update`. RBAC cannot limit `create` to names (a create request has no name
 * when it is authorized), so the runtime's Role grants `create` on Leases without names, and this policy,
 * evaluated by the API server itself, narrows it back: a runtime cannot make a Lease its pool does not host
 * (another pool's account, a controller's leader-election Lease) any more than it could update one.
 *
 * The one source of config/rbac/runtime-lease-policy.yaml and the chart's template (crds/manifests.ts).
 * ValidatingAdmissionPolicy is GA since Kubernetes 1.30.
 */
import { RUNTIME_NAME_PREFIX } from './naming.js';

export const RUNTIME_LEASE_POLICY_NAME = 'tdlib-runtime-lease-creates';

/** The ServiceAccounts runtime pods run as: `tdlib-runtime-<pool>` in any namespace. */
const byRuntime = `request.userInfo.username.matches('^system:serviceaccount:[^:]+:${RUNTIME_NAME_PREFIX}[^:]+$')`;

const namedForUpdate =
  "authorizer.group('coordination.k8s.io').resource('leases').namespace(request.namespace)" +
  ".name(object.metadata.name).check('update').allowed()";

export function runtimeLeasePolicy(name = RUNTIME_LEASE_POLICY_NAME): Record<string, unknown> {
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingAdmissionPolicy',
    metadata: { name },
    spec: {
      failurePolicy: 'Fail',
      // Written as the API server defaults them: the rules are an atomic list, so a value without its
      // defaults would conflict with the live one when a second field manager (kubectl, then Helm or
      // Argo CD) applies the same policy.
      matchConstraints: {
        matchPolicy: 'Equivalent',
        namespaceSelector: {},
        objectSelector: {},
        resourceRules: [
          {
            apiGroups: ['coordination.k8s.io'],
            apiVersions: ['v1'],
            operations: ['CREATE'],
            resources: ['leases'],
            scope: '*',
          },
        ],
      },
      matchConditions: [{ name: 'by-a-runtime-pod', expression: byRuntime }],
      validations: [
        {
          expression: namedForUpdate,
          reason: 'Forbidden',
          messageExpression:
            '"a runtime pod may create only the Leases its pool Role names for update, and " + object.metadata.name + " is not one of them: the operator names an account Lease once it places the account on the pool"',
        },
      ],
    },
  };
}

export function runtimeLeasePolicyBinding(name = RUNTIME_LEASE_POLICY_NAME): Record<string, unknown> {
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingAdmissionPolicyBinding',
    metadata: { name },
    spec: { policyName: name, validationActions: ['Deny'] },
  };
}
