/**
 * Which Secrets an account needs and whether they are usable: a pure function of the spec and what the
 * Secret cache holds, shared by every loop that must agree on it (placement, status, RBAC).
 */
import {
  LABEL_ACCOUNT,
  LABEL_MANAGED_BY,
  LABEL_SECRET_OPT_IN,
  MANAGED_BY,
  SECRET_OPT_IN_VALUE,
  type TelegramAccount,
} from '../../crds/index.js';

export interface SecretKeyNeed {
  secret: string;
  keys: string[];
  /** The spec field that names the Secret, for messages a user can act on. */
  field: string;
  /**
   * The account runs without it (its absence is reported where it matters, e.g. UpdatesDelivering), so
   * it does not hold back placement; it is still granted to the runtime once opted in.
   */
  optional?: boolean;
}

export function secretNeeds(account: TelegramAccount): SecretKeyNeed[] {
  const spec = account.spec;
  const needs: SecretKeyNeed[] = [
    {
      secret: spec.apiCredentialsSecretRef.name,
      keys: [
        spec.apiCredentialsSecretRef.apiIdKey ?? 'api_id',
        spec.apiCredentialsSecretRef.apiHashKey ?? 'api_hash',
      ],
      field: 'spec.apiCredentialsSecretRef',
    },
  ];
  if (spec.botTokenSecretRef)
    needs.push({
      secret: spec.botTokenSecretRef.name,
      keys: [spec.botTokenSecretRef.key ?? 'token'],
      field: 'spec.botTokenSecretRef',
    });
  if (spec.passwordSecretRef)
    needs.push({
      secret: spec.passwordSecretRef.name,
      keys: [spec.passwordSecretRef.key ?? 'password'],
      field: 'spec.passwordSecretRef',
    });
  if (spec.proxy?.credentialsSecretRef)
    needs.push({
      secret: spec.proxy.credentialsSecretRef.name,
      keys: [],
      field: 'spec.proxy.credentialsSecretRef',
    });
  for (const [i, proxy] of (spec.proxy?.failover ?? []).entries())
    if (proxy.credentialsSecretRef)
      needs.push({
        secret: proxy.credentialsSecretRef.name,
        keys: [],
        field: `spec.proxy.failover[${i}].credentialsSecretRef`,
      });
  const auth = spec.updates?.auth;
  if (auth?.secretRef)
    needs.push({
      secret: auth.secretRef.name,
      keys: [auth.secretRef.key ?? 'token'],
      field: 'spec.updates.auth.secretRef',
      optional: true,
    });
  if (auth?.clientCertificateSecretRef)
    needs.push({
      secret: auth.clientCertificateSecretRef.name,
      keys: ['tls.crt', 'tls.key'],
      field: 'spec.updates.auth.clientCertificateSecretRef',
      optional: true,
    });
  return needs;
}

export type InputsCheck =
  | { ok: true }
  | {
      ok: false;
      reason: 'SecretNotFound' | 'SecretKeyMissing' | 'SecretNotOptedIn' | 'SecretNameTaken';
      message: string;
    };

/** What the Secret cache says of a Secret: its key names and labels (never its values). */
export interface SecretFacts {
  keys: readonly string[];
  labels?: Readonly<Record<string, string>>;
}

/**
 * Labelled by tdlib-operator for the account of this name. A session or key Secret that is not is never
 * used or granted: it could hold another account's key or session.
 */
export function madeForAccount(
  labels: Readonly<Record<string, string>> | undefined,
  account: string,
): boolean {
  return labels?.[LABEL_MANAGED_BY] === MANAGED_BY && labels[LABEL_ACCOUNT] === account;
}

export function optedIn(facts: SecretFacts | undefined): boolean {
  return facts?.labels?.[LABEL_SECRET_OPT_IN] === SECRET_OPT_IN_VALUE;
}

/** `lookup` returns what is known of a Secret in the account's namespace, or undefined if it does not exist. */
export function checkInputs(
  account: TelegramAccount,
  lookup: (secret: string) => SecretFacts | undefined,
): InputsCheck {
  const namespace = account.metadata.namespace ?? '';
  for (const need of secretNeeds(account)) {
    if (need.optional) continue;
    const facts = lookup(need.secret);
    const keys = facts?.keys;
    if (facts === undefined || keys === undefined) {
      const wanted =
        need.keys.length > 0 ? ` with key${need.keys.length > 1 ? 's' : ''} ${need.keys.join(' and ')}` : '';
      return {
        ok: false,
        reason: 'SecretNotFound',
        message: `Secret "${need.secret}" named by ${need.field} does not exist in namespace "${namespace}"; create it${wanted}`,
      };
    }
    if (!optedIn(facts))
      return {
        ok: false,
        reason: 'SecretNotOptedIn',
        message: `Secret "${need.secret}" named by ${need.field} is not labelled ${LABEL_SECRET_OPT_IN}=${SECRET_OPT_IN_VALUE}, so runtime pods may not read it; if it is meant for this account, label it: kubectl label secret ${need.secret} -n ${namespace} ${LABEL_SECRET_OPT_IN}=${SECRET_OPT_IN_VALUE}`,
      };
    const missing = need.keys.filter((k) => !keys.includes(k));
    if (missing.length > 0)
      return {
        ok: false,
        reason: 'SecretKeyMissing',
        message: `Secret "${need.secret}" named by ${need.field} has no key ${missing.join(' or ')}; add it or set the key name in ${need.field}`,
      };
  }
  return { ok: true };
}

/** Every Secret name an account references (for the Secret -> accounts index; the Role grants only opted-in ones). */
export function referencedSecrets(account: TelegramAccount): string[] {
  return [...new Set(secretNeeds(account).map((n) => n.secret))];
}
