/**
 * The operator's ClusterRole rules: the one source of config/rbac/role.yaml and the Helm chart's ClusterRole
 * template (both written by `make generate`, crds/generate.ts). The operator grants runtime pods a Role
 * (operator/pool/desired.ts desiredRole) and RBAC forbids granting more than one holds, so every permission
 * of that Role must be here too.
 */
import { CAMPAIGN_PLURAL } from './campaign.js';
import { CAMPAIGN_SLICE_PLURAL } from './campaign-slice.js';
import { GROUP } from './common.js';
import { TELEGRAM_ACCOUNT_PLURAL } from './telegram-account.js';
import { RUNTIME_POOL_PLURAL } from './runtime-pool.js';

export interface PolicyRule {
  apiGroups: readonly string[];
  resources: readonly string[];
  verbs: readonly string[];
}

const READ = ['get', 'list', 'watch'] as const;
const MANAGE = [...READ, 'create', 'update', 'patch', 'delete'] as const;

export const OPERATOR_CLUSTER_ROLE_RULES: readonly PolicyRule[] = [
  // Accounts and campaigns: users create them; the operator adds finalizers and labels (placement).
  {
    apiGroups: [GROUP],
    resources: [TELEGRAM_ACCOUNT_PLURAL, CAMPAIGN_PLURAL],
    verbs: [...READ, 'update', 'patch'],
  },
  // Runtime pools: users create them; the operator reads them and writes their status.
  { apiGroups: [GROUP], resources: [RUNTIME_POOL_PLURAL], verbs: READ },
  { apiGroups: [GROUP], resources: [CAMPAIGN_SLICE_PLURAL], verbs: MANAGE },
  {
    apiGroups: [GROUP],
    resources: [
      `${TELEGRAM_ACCOUNT_PLURAL}/status`,
      `${CAMPAIGN_PLURAL}/status`,
      `${CAMPAIGN_SLICE_PLURAL}/status`,
      `${RUNTIME_POOL_PLURAL}/status`,
    ],
    verbs: ['get', 'update', 'patch'],
  },
  {
    apiGroups: [GROUP],
    resources: [`${TELEGRAM_ACCOUNT_PLURAL}/finalizers`, `${CAMPAIGN_PLURAL}/finalizers`],
    verbs: ['update'],
  },
  // Session keys and backups, login codes, the inputs accounts name (read to check the opt-in label).
  { apiGroups: [''], resources: ['secrets'], verbs: MANAGE },
  // Campaign recipient lists.
  { apiGroups: [''], resources: ['configmaps'], verbs: READ },
  // The runtime pool's headless Service and ServiceAccount.
  { apiGroups: [''], resources: ['services', 'serviceaccounts'], verbs: MANAGE },
  { apiGroups: [''], resources: ['pods'], verbs: READ },
  { apiGroups: ['apps'], resources: ['statefulsets'], verbs: MANAGE },
  { apiGroups: ['policy'], resources: ['poddisruptionbudgets'], verbs: MANAGE },
  // Only the send API gateway may reach the runtime pods' send port.
  { apiGroups: ['networking.k8s.io'], resources: ['networkpolicies'], verbs: MANAGE },
  // The runtime pods' least-privilege Role and its binding.
  { apiGroups: ['rbac.authorization.k8s.io'], resources: ['roles', 'rolebindings'], verbs: MANAGE },
  // Leader election, account fences, runtime heartbeats.
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: MANAGE },
  { apiGroups: ['', 'events.k8s.io'], resources: ['events'], verbs: ['create', 'patch', 'update'] },
];
