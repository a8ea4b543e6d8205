/**
 * Where an account's database key lives, and what the account loop does about it. The key is a field of
 * the session Secret, so an account costs one Secret create; an account made by an earlier version keeps
 * its separate key Secret, which is used as long as the session Secret carries no key of its own.
 */
import {
  SESSION_SECRET_BACKUP_FIELD,
  SESSION_SECRET_KEY_FIELD,
  encryptionKeySecretName,
  sessionSecretName,
} from '../../crds/index.js';
import type { SecretFacts } from './inputs.js';

export type SessionKeyPlan =
  /** No session Secret: create it, with a new key unless the earlier key Secret holds one. */
  | { action: 'create'; withKey: boolean }
  /** A session Secret with neither key nor backup, and no earlier key Secret: add a new key. */
  | { action: 'addKey' }
  /** A backup exists but its key is gone: a new key would make it unreadable, so none is made. */
  | { action: 'keyMissing'; message: string }
  | { action: 'none' };

/**
 * `legacyKey` and `session` are what the cache knows of the account's two Secrets, undefined when absent
 * (or, for `legacyKey`, not ours: a foreign Secret of that name is never used).
 */
export function planSessionKey(
  account: string,
  legacyKey: SecretFacts | undefined,
  session: SecretFacts | undefined,
): SessionKeyPlan {
  if (!session) return { action: 'create', withKey: !legacyKey };
  if (session.keys.includes(SESSION_SECRET_KEY_FIELD) || legacyKey) return { action: 'none' };
  if (session.keys.includes(SESSION_SECRET_BACKUP_FIELD))
    return { action: 'keyMissing', message: keyMissingMessage(account) };
  return { action: 'addKey' };
}

/** The Ready message while a backup has no key (undefined: the key is there, or there is no backup). */
export function sessionKeyMissing(
  account: string,
  legacyKey: SecretFacts | undefined,
  session: SecretFacts | undefined,
): string | undefined {
  const plan = planSessionKey(account, legacyKey, session);
  return plan.action === 'keyMissing' ? plan.message : undefined;
}

function keyMissingMessage(account: string): string {
  const session = sessionSecretName(account);
  return `Secret ${session} holds a session backup but its key is gone (no "${SESSION_SECRET_KEY_FIELD}" in it, and no Secret ${encryptionKeySecretName(account)}): a new key would make that session unreadable, so none is made. Restore the key from your backup into ${session} under "${SESSION_SECRET_KEY_FIELD}", or delete ${session} to start over with a new login`;
}
