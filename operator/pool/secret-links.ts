/**
 * Which accounts a Secret is an input of: a change of the Secret re-runs their pool, and the pool loop
 * derives again what it had concluded from their Secrets.
 */
import { LABEL_ACCOUNT, accountOfSessionSecretName } from '../../crds/index.js';

/** Index of accounts by "namespace/secret" for every Secret their spec references. */
export const SECRET_INDEX = 'secret';

export interface SecretIdentity {
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string> };
}

/**
 * Names of the accounts (in the Secret's namespace) whose placement, status or runtime grants can depend on
 * this Secret: the accounts whose spec names it, the account it is labelled for, and the account whose
 * session or earlier key Secret its name is (a foreign Secret under that name blocks placement).
 */
export function accountsOfSecret(
  secret: SecretIdentity,
  referencing: (namespacedSecret: string) => readonly string[],
): string[] {
  const name = secret.metadata?.name ?? '';
  const names = new Set(referencing(`${secret.metadata?.namespace ?? ''}/${name}`));
  const owner = secret.metadata?.labels?.[LABEL_ACCOUNT];
  if (owner) names.add(owner);
  const byName = accountOfSessionSecretName(name);
  if (byName) names.add(byName);
  return [...names];
}
