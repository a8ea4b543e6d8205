/**
 * Where an account's database key lives, and what the account loop does about it. The key is a field of
 * the session Secret, so an account costs one Secret create; an account made by an earlier version keeps
 * its separate key Secret, which is used as long as the session Secret carries no key of its own.
 */
import {
  SESSION_SECRET_BACKUP_FIELD,
  SESSION_SECRET_KEY_FIELD,
  backupKeyMissingMessage,
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
 * `legacyKey` and `session` are what is known of the account's two Secrets, undefined when absent (or, for
 * `legacyKey`, not ours: a foreign Secret of that name is never used). The session Secret's key names come
 * from a read of it: the operator's cache holds its metadata only.
 */
export function planSessionKey(
  account: string,
  legacyKey: SecretFacts | undefined,
  session: SecretFacts | undefined,
): SessionKeyPlan {
  if (!session) return { action: 'create', withKey: !legacyKey };
  if (session.keys.includes(SESSION_SECRET_KEY_FIELD) || legacyKey) return { action: 'none' };
  if (session.keys.includes(SESSION_SECRET_BACKUP_FIELD))
    return { action: 'keyMissing', message: backupKeyMissingMessage(account) };
  return { action: 'addKey' };
}
