/**
 * Desired state of a runtime pool in one namespace: pure builders, so reconcile = compare + apply and the
 * shape of every owned object is unit-testable.
 */
import type {
  V1PodDisruptionBudget,
  V1Role,
  V1RoleBinding,
  V1Service,
  V1ServiceAccount,
  V1StatefulSet,
} from '@kubernetes/client-node';
import { CAMPAIGN_PLURAL, CAMPAIGN_SLICE_PLURAL, GROUP, TELEGRAM_ACCOUNT_PLURAL } from '../../crds/index.js';
import {
  ANNOTATION_REVISION,
  ANNOTATION_TEMPLATE,
  LABEL_POD_SET,
  LABEL_POOL,
  canaryName,
  poolLabels,
  runtimeName,
} from '../../crds/naming.js';
import type { ApiObject } from '../kube/resource.js';
import type { PodTemplateSpec } from './rollout/template.js';

export interface PoolSettings {
  namespace: string;
  pool: string;
  /** Secrets the accounts name (API credentials, bot tokens, 2FA passwords, proxy credentials) that opted in. */
  inputSecretNames: readonly string[];
  /** The accounts' session key Secrets (read only). */
  keySecretNames: readonly string[];
  /** The short-lived login-code Secrets (read and deleted once used). */
  loginCodeSecretNames: readonly string[];
  /** Session backup Secrets the runtimes may update. */
  sessionSecretNames: readonly string[];
  /** The pool's TelegramAccounts (their status is what the runtimes write). */
  accountNames: readonly string[];
  /** The per-account Leases and the pods' heartbeat Leases the runtimes may hold. */
  leaseNames: readonly string[];
}

const DATA_VOLUME = 'tdlib-data';
const HTTP_PORT = 8080;
/** The send API's last hop: only the gateway may reach it (desiredNetworkPolicy). */
export const SEND_PORT = 8444;
/** The send API gateway's name: its ServiceAccount and its pods' app.kubernetes.io/name, in the operator's namespace. */
export const SEND_GATEWAY_NAME = 'tdlib-send-gateway';

/** The identity runtimes accept send requests from. */
export function sendGatewayIdentity(operatorNamespace: string): string {
  return `system:serviceaccount:${operatorNamespace}:${SEND_GATEWAY_NAME}`;
}

/**
 * Who may reach the runtime pods (raw JSON: client-node's model names `from` `_from`): anyone on the http port (probes, Prometheus, the operator's rollout
 * analysis), only the send API gateway's pods on the send port. The runtime also refuses any caller but
 * the gateway there (its token); this keeps everyone else from even trying.
 */
export function desiredNetworkPolicy(
  s: PoolSettings,
  operatorNamespace: string,
): ApiObject & { spec: Record<string, unknown> } {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: runtimeName(s.pool), namespace: s.namespace, labels: poolLabels(s.pool) },
    spec: {
      podSelector: { matchLabels: { [LABEL_POOL]: s.pool, 'app.kubernetes.io/name': 'tdlib-runtime' } },
      policyTypes: ['Ingress'],
      ingress: [
        { ports: [{ protocol: 'TCP', port: 'http' }] },
        {
          ports: [{ protocol: 'TCP', port: 'send' }],
          from: [
            {
              namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': operatorNamespace } },
              podSelector: { matchLabels: { 'app.kubernetes.io/name': SEND_GATEWAY_NAME } },
            },
          ],
        },
      ],
    },
  };
}

export function desiredServiceAccount(s: PoolSettings): V1ServiceAccount {
  return {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name: runtimeName(s.pool), namespace: s.namespace, labels: poolLabels(s.pool) },
  };
}

export function desiredService(s: PoolSettings): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: runtimeName(s.pool), namespace: s.namespace, labels: poolLabels(s.pool) },
    spec: {
      clusterIP: 'None',
      selector: { [LABEL_POOL]: s.pool, 'app.kubernetes.io/name': 'tdlib-runtime' },
      ports: [{ name: 'http', port: HTTP_PORT, targetPort: 'http' }],
      publishNotReadyAddresses: true,
    },
  };
}

/** Sorted and deduplicated, so the same accounts always yield the same Role and no spurious write. */
const names = (list: readonly string[]): string[] => [...new Set(list)].sort();

/**
 * Least privilege, by name wherever Kubernetes allows it:
 * - TelegramAccounts: list and watch in the namespace (a label-selected watch cannot be limited by name, so
 *   other pools' accounts are visible to it), get and status writes only for the pool's accounts;
 * - Secrets: read only the Secrets the pool's accounts name *and* whose owners opted in, their key and
 *   login-code Secrets; update only session backups; delete only consumed login codes;
 * - Leases: read any (a contender judges another pod's heartbeat, possibly of another pool), update only the
 *   pool's account and heartbeat Leases. Create, which RBAC cannot limit to names: the runtime makes an
 *   account's Lease when it first takes it, and the admission policy crds/runtime-lease-policy.ts lets it
 *   create only a Lease this Role names for update, so it cannot squat one its pool does not host;
 * - Campaigns: read them and their slices; write slice status (the ledger). Slices are created per campaign
 *   and change sender as accounts come and go, so this is not limited by name: the sender's own fence and
 *   the slice's assignment keep a runtime from writing a slice that is not its senders' (it would only
 *   corrupt progress records; it cannot send for accounts it does not host);
 * - Events: create.
 * - Services: get, to resolve an account's update sink (spec.updates.sink.ref) to its address and port.
 */
export function desiredRole(s: PoolSettings): V1Role {
  const rules: NonNullable<V1Role['rules']> = [
    { apiGroups: [GROUP], resources: [TELEGRAM_ACCOUNT_PLURAL], verbs: ['list', 'watch'] },
    { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'create'] },
    { apiGroups: ['', 'events.k8s.io'], resources: ['events'], verbs: ['create', 'patch'] },
    {
      apiGroups: [GROUP],
      resources: [CAMPAIGN_PLURAL, CAMPAIGN_SLICE_PLURAL],
      verbs: ['get', 'list', 'watch'],
    },
    { apiGroups: [GROUP], resources: [`${CAMPAIGN_SLICE_PLURAL}/status`], verbs: ['get', 'update', 'patch'] },
    { apiGroups: [''], resources: ['services'], verbs: ['get'] },
  ];
  if (s.accountNames.length > 0) {
    rules.push(
      {
        apiGroups: [GROUP],
        resources: [TELEGRAM_ACCOUNT_PLURAL],
        resourceNames: names(s.accountNames),
        verbs: ['get'],
      },
      {
        apiGroups: [GROUP],
        resources: [`${TELEGRAM_ACCOUNT_PLURAL}/status`],
        resourceNames: names(s.accountNames),
        verbs: ['get', 'patch'],
      },
    );
  }
  const readable = names([...s.inputSecretNames, ...s.keySecretNames]);
  if (readable.length > 0)
    rules.push({ apiGroups: [''], resources: ['secrets'], resourceNames: readable, verbs: ['get'] });
  if (s.loginCodeSecretNames.length > 0)
    rules.push({
      apiGroups: [''],
      resources: ['secrets'],
      resourceNames: names(s.loginCodeSecretNames),
      verbs: ['get', 'delete'],
    });
  if (s.sessionSecretNames.length > 0)
    rules.push({
      apiGroups: [''],
      resources: ['secrets'],
      resourceNames: names(s.sessionSecretNames),
      verbs: ['get', 'update'],
    });
  if (s.leaseNames.length > 0)
    rules.push({
      apiGroups: ['coordination.k8s.io'],
      resources: ['leases'],
      resourceNames: names(s.leaseNames),
      verbs: ['update'],
    });
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: { name: runtimeName(s.pool), namespace: s.namespace, labels: poolLabels(s.pool) },
    rules,
  };
}

export function desiredRoleBinding(s: PoolSettings): V1RoleBinding {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name: runtimeName(s.pool), namespace: s.namespace, labels: poolLabels(s.pool) },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: runtimeName(s.pool) },
    subjects: [{ kind: 'ServiceAccount', name: runtimeName(s.pool), namespace: s.namespace }],
  };
}

/** One pod of a pool may be down at a time: its accounts move, the others keep running. */
export function desiredPodDisruptionBudget(s: PoolSettings): V1PodDisruptionBudget {
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: { name: runtimeName(s.pool), namespace: s.namespace, labels: poolLabels(s.pool) },
    spec: {
      maxUnavailable: 1,
      selector: { matchLabels: { [LABEL_POOL]: s.pool, 'app.kubernetes.io/name': 'tdlib-runtime' } },
    },
  };
}

/** Which of the pool's two StatefulSets: the stable one, or the canary one during a rollout. */
export type PodSet = 'stable' | 'canary';

export interface StatefulSetSettings {
  namespace: string;
  pool: string;
  set: PodSet;
  replicas: number;
  template: PodTemplateSpec;
  revision: string;
  /** The namespace the send API gateway runs in (the operator's). */
  operatorNamespace: string;
}

export function statefulSetName(pool: string, set: PodSet): string {
  return set === 'stable' ? runtimeName(pool) : canaryName(pool);
}

export function desiredStatefulSet(s: StatefulSetSettings): V1StatefulSet {
  const t = s.template;
  // The stable selector predates canaries and is immutable; canary pods match it too, but a StatefulSet only
  // adopts pods no other controller owns, so each keeps its own.
  const selector: Record<string, string> = {
    [LABEL_POOL]: s.pool,
    'app.kubernetes.io/name': 'tdlib-runtime',
  };
  if (s.set === 'canary') selector[LABEL_POD_SET] = 'canary';
  const labels = { ...poolLabels(s.pool), ...(s.set === 'canary' ? { [LABEL_POD_SET]: 'canary' } : {}) };
  const emptyDir = t.storageSize === 'emptyDir';
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: {
      name: statefulSetName(s.pool, s.set),
      namespace: s.namespace,
      labels,
      annotations: { [ANNOTATION_REVISION]: s.revision, [ANNOTATION_TEMPLATE]: JSON.stringify(t) },
    },
    spec: {
      replicas: s.replicas,
      serviceName: runtimeName(s.pool),
      // Pods are independent hosts; waiting for pod-0 before pod-1 would only slow recovery.
      podManagementPolicy: 'Parallel',
      selector: { matchLabels: selector },
      persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Delete', whenScaled: 'Delete' },
      template: {
        metadata: { labels },
        spec: {
          serviceAccountName: runtimeName(s.pool),
          // Long enough to back up sessions and close every TDLib client on SIGTERM.
          terminationGracePeriodSeconds: 60,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: 65532,
            fsGroup: 65532,
            seccompProfile: { type: 'RuntimeDefault' },
          },
          nodeSelector: t.nodeSelector,
          tolerations: t.tolerations as V1StatefulSetTolerations,
          affinity: t.affinity as V1StatefulSetAffinity,
          priorityClassName: t.priorityClassName,
          containers: [
            {
              name: 'runtime',
              image: t.image,
              args: ['runtime'],
              env: [
                { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
                // The session fence names the process incarnation: a recreated pod is a different holder.
                { name: 'POD_UID', valueFrom: { fieldRef: { fieldPath: 'metadata.uid' } } },
                // Where the operator scrapes this runtime's /metrics during rollouts (see the heartbeat Lease).
                { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
                // The memory gate's denominator where the cgroup does not tell (cgroup v1 hierarchies, sandboxes).
                {
                  name: 'RUNTIME_MEMORY_LIMIT_BYTES',
                  valueFrom: { resourceFieldRef: { containerName: 'runtime', resource: 'limits.memory' } },
                },
                { name: 'RUNTIME_POOL', value: s.pool },
                { name: 'TDLIB_BACKEND', value: t.backend },
                { name: 'TDLIB_DATA_DIR', value: '/var/lib/tdlib' },
                { name: 'SEND_PORT', value: String(SEND_PORT) },
                { name: 'SEND_GATEWAY_SERVICE_ACCOUNT', value: sendGatewayIdentity(s.operatorNamespace) },
                ...((t.extraEnv ?? []) as unknown as V1EnvVars),
              ],
              ports: [
                { name: 'http', containerPort: HTTP_PORT },
                { name: 'send', containerPort: SEND_PORT },
              ],
              readinessProbe: { httpGet: { path: '/readyz', port: 'http' }, periodSeconds: 5 },
              livenessProbe: {
                httpGet: { path: '/healthz', port: 'http' },
                periodSeconds: 10,
                failureThreshold: 6,
              },
              resources: t.resources as V1StatefulSetResources,
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ['ALL'] },
              },
              volumeMounts: [
                { name: DATA_VOLUME, mountPath: '/var/lib/tdlib' },
                ...((t.extraVolumeMounts ?? []) as unknown as V1VolumeMounts),
              ],
            },
          ],
          volumes: podVolumes(emptyDir, (t.extraVolumes ?? []) as unknown as V1Volumes),
        },
      },
      volumeClaimTemplates: emptyDir
        ? undefined
        : [
            {
              apiVersion: 'v1',
              kind: 'PersistentVolumeClaim',
              metadata: { name: DATA_VOLUME },
              spec: {
                accessModes: ['ReadWriteOnce'],
                resources: { requests: { storage: t.storageSize } },
                storageClassName: t.storageClass === '' ? undefined : t.storageClass,
              },
            },
          ],
    },
  };
}

function podVolumes(emptyDir: boolean, extra: V1Volumes): V1Volumes | undefined {
  const volumes: V1Volumes = [...(emptyDir ? [{ name: DATA_VOLUME, emptyDir: {} }] : []), ...extra];
  return volumes.length > 0 ? volumes : undefined;
}

type PodSpecOf = NonNullable<NonNullable<V1StatefulSet['spec']>['template']['spec']>;
type V1StatefulSetTolerations = PodSpecOf['tolerations'];
type V1StatefulSetAffinity = PodSpecOf['affinity'];
type V1StatefulSetResources = PodSpecOf['containers'][number]['resources'];
type V1EnvVars = NonNullable<PodSpecOf['containers'][number]['env']>;
type V1VolumeMounts = NonNullable<PodSpecOf['containers'][number]['volumeMounts']>;
type V1Volumes = NonNullable<PodSpecOf['volumes']>;
