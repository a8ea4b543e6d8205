import type { TelegramAccount } from '../../crds/index.js';
import type { InformerEventType } from '../kube/reflector.js';

/**
 * Whether an account event can matter to the account loop (controller-runtime's predicates): it decides from
 * the spec (deletion policy), its identity (uid: whom the Secrets and Lease belong to), its finalizers and
 * deletion, and, only while it is being deleted, the runtime's status (has the session been logged out?).
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
    (old.metadata.finalizers ?? []).join() !== (current.metadata.finalizers ?? []).join()
  );
}
