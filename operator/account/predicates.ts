import { ConditionType, RuntimeReason, findCondition, type TelegramAccount } from '../../crds/index.js';
import type { InformerEventType } from '../kube/reflector.js';

/**
 * Whether an account event can matter to the account loop (controller-runtime's predicates): it decides from
 * the spec (deletion policy), its identity (uid: whom the Secrets and Lease belong to), its finalizers and
 * deletion, the runtime's report of a missing session key (the loop may add one), and, only while it is
 * being deleted, the runtime's status (has the session been logged out?).
 * Every other status write (the pool's placements, the runtime's reports: several per account) would only
 * queue a reconcile that finds nothing to do.
 */
export function accountLoopRelevant(
  type: InformerEventType,
  current: TelegramAccount,
  old: TelegramAccount | undefined,
): boolean {
  if (type !== 'MODIFIED' || !old) return true;
  return (
    current.metadata.deletionTimestamp !== undefined ||
    old.metadata.deletionTimestamp !== current.metadata.deletionTimestamp ||
    old.metadata.generation !== current.metadata.generation ||
    old.metadata.uid !== current.metadata.uid ||
    (old.metadata.finalizers ?? []).join() !== (current.metadata.finalizers ?? []).join() ||
    (runtimeMissesKey(current) && !runtimeMissesKey(old))
  );
}

/** The runtime reports that it found no key for the account's session (it reads the key at each start). */
export function runtimeMissesKey(account: TelegramAccount): boolean {
  const authorized = findCondition(account.status?.conditions, ConditionType.Authorized);
  return authorized?.status === 'False' && authorized.reason === RuntimeReason.SessionKeyMissing;
}
