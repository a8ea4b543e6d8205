/**
 * Names and labels of everything derived from accounts and pools. They are API contract: the operator, the
 * runtime and the kubectl plugin must all find the same objects (labels, Lease and Secret names).
 */
import { GROUP } from './common.js';

export const MANAGED_BY = 'tdlib-operator';
export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
export const LABEL_NAME = 'app.kubernetes.io/name';
export const LABEL_COMPONENT = 'app.kubernetes.io/component';
/** On runtime workload objects and pods: which pool they belong to. */
export const LABEL_POOL = `${GROUP}/pool`;
/**
 * The runtime pod an account is placed on, as a field selector: each runtime watches its own value
 * (`kubectl get tga --field-selector status.placement.pod=<pod>`). A selectable field of the CRD.
 */
export const PLACED_POD_FIELD = 'status.placement.pod';
/**
 * The label that carried the placement before it moved to status (one write per account less). The
 * operator removes it from accounts that still have it; nothing reads it.
 */
export const LEGACY_LABEL_PLACED_POD = `${GROUP}/pod`;
/** On Secrets the operator or runtime create: which account they belong to. */
export const LABEL_ACCOUNT = `${GROUP}/account`;
export const FINALIZER = `${GROUP}/session`;
/** On CampaignSlices: the Campaign they belong to. */
export const LABEL_CAMPAIGN = `${GROUP}/campaign`;
/**
 * On a Secret a TelegramAccount names (API credentials, bot token, 2FA password, proxy credentials): the
 * owner's consent that runtime pods may read it. Without it a spec could make the runtime fetch any Secret
 * of the namespace and send it somewhere (a proxy's credentials go to that proxy in clear text).
 */
export const LABEL_SECRET_OPT_IN = `${GROUP}/usable-by-accounts`;
export const SECRET_OPT_IN_VALUE = 'true';

const MAX_NAME = 63;

/** StatefulSet, Service, ServiceAccount, Role, RoleBinding and PDB of a pool share this name. */
/** Runtime ServiceAccounts are named with it (the runtime Lease admission policy matches on it). */
export const RUNTIME_NAME_PREFIX = 'tdlib-runtime-';

export function runtimeName(pool: string): string {
  return `${RUNTIME_NAME_PREFIX}${pool}`.slice(0, MAX_NAME - 6);
}

export function runtimePodName(pool: string, ordinal: number): string {
  return `${runtimeName(pool)}-${ordinal}`;
}

/** Ordinal of a pod of the pool's StatefulSet, or undefined for any other name. */
export function podOrdinal(pool: string, podName: string): number | undefined {
  const prefix = `${runtimeName(pool)}-`;
  if (!podName.startsWith(prefix)) return undefined;
  const rest = podName.slice(prefix.length);
  return /^(0|[1-9][0-9]*)$/.test(rest) ? Number(rest) : undefined;
}

/**
 * During a rollout the new version runs in a second StatefulSet, `tdlib-canary-<pool>` (see
 * docs/architecture.md "Runtime rollouts"). Its name is no longer than the stable one's, so every pool name
 * that is valid today stays valid, and no pool's stable pods can be named like another pool's canary pods.
 */
export function canaryName(pool: string): string {
  return `tdlib-canary-${pool}`.slice(0, MAX_NAME - 6);
}

export function canaryPodName(pool: string, ordinal: number): string {
  return `${canaryName(pool)}-${ordinal}`;
}

/** Ordinal of a pod of the pool's canary StatefulSet, or undefined for any other name. */
export function canaryPodOrdinal(pool: string, podName: string): number | undefined {
  const prefix = `${canaryName(pool)}-`;
  if (!podName.startsWith(prefix)) return undefined;
  const rest = podName.slice(prefix.length);
  return /^(0|[1-9][0-9]*)$/.test(rest) ? Number(rest) : undefined;
}

/** On canary pods (and in the canary StatefulSet's selector): which of the pool's two StatefulSets. */
export const LABEL_POD_SET = `${GROUP}/pod-set`;
/** On a runtime StatefulSet: the revision (hash of the pod-shaping spec) its template runs. */
export const ANNOTATION_REVISION = `${GROUP}/revision`;
/** On a runtime StatefulSet: the pod-shaping spec of that revision (JSON), so it can be rebuilt as it was. */
export const ANNOTATION_TEMPLATE = `${GROUP}/template`;
/** On a runtime pod's heartbeat Lease: where the operator scrapes that runtime's /metrics for rollouts. */
export const ANNOTATION_METRICS_URL = `${GROUP}/metrics-url`;
/** On a runtime pod's heartbeat Lease: where the send API gateway reaches its send endpoint. */
export const ANNOTATION_SEND_URL = `${GROUP}/send-url`;

/**
 * The separate key Secret of accounts made before the key moved into the session Secret: still read (and
 * owned, and granted to the runtime) where it exists, never created.
 */
export function encryptionKeySecretName(account: string): string {
  return `${account}-tdlib-key`;
}

/** Bytes of the account's AES-256 database and backup key. */
export const SESSION_KEY_BYTES = 32;
/** The session Secret's data field holding the account's database key (base64). */
export const SESSION_SECRET_KEY_FIELD = 'key';
/** The session Secret's data field holding the encrypted session backup. */
export const SESSION_SECRET_BACKUP_FIELD = 'session';

export function sessionSecretName(account: string): string {
  return `${account}-tdlib-session`;
}

/**
 * What to do about a session backup whose key is gone, for the runtime's report (it finds out when it
 * reads the key) and the operator's event (it refuses to make a new key, which would orphan the backup).
 */
export function backupKeyMissingMessage(account: string): string {
  const session = sessionSecretName(account);
  return `Secret ${session} holds a session backup but its key is gone (no "${SESSION_SECRET_KEY_FIELD}" in it, and no Secret ${encryptionKeySecretName(account)}): a new key would make that session unreadable, so none is made. Restore the key from your backup into ${session} under "${SESSION_SECRET_KEY_FIELD}", or delete ${session} to start over with a new login`;
}

/**
 * The account whose session (or earlier key) Secret a Secret of this name would be, whoever made it: a
 * Secret under that name, ours or not, decides whether the account can be placed.
 */
export function accountOfSessionSecretName(secret: string): string | undefined {
  for (const suffix of ['-tdlib-session', '-tdlib-key'])
    if (secret.endsWith(suffix) && secret.length > suffix.length) return secret.slice(0, -suffix.length);
  return undefined;
}

/** The short-lived Secret through which `kubectl telegram login` hands a code to the runtime. */
export function loginCodeSecretName(account: string): string {
  return `${account}-login-code`;
}

/** The per-account Lease the hosting pod holds: the fence against two live clients for one session. */
export function accountLeaseName(account: string): string {
  return `tga-${account}`;
}

export function poolLabels(pool: string): Record<string, string> {
  return {
    [LABEL_MANAGED_BY]: MANAGED_BY,
    [LABEL_NAME]: 'tdlib-runtime',
    [LABEL_COMPONENT]: 'runtime',
    [LABEL_POOL]: pool,
  };
}

/**
 * Session fence holders are named `<pod>/<pod uid>/<nonce>`; the heartbeat Lease that vouches for one is
 * named after its pod (the first segment).
 */
export function heartbeatLeaseOf(holderIdentity: string): string {
  const slash = holderIdentity.indexOf('/');
  return slash < 0 ? holderIdentity : holderIdentity.slice(0, slash);
}
