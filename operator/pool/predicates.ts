import type { TelegramAccount } from '../../crds/index.js';
import { readyInputs } from './account-status.js';

/**
 * Whether an account change can change its pool's placement or workload (controller-runtime's predicates):
 * a new spec, a moved placement, a deletion, a finalizer, and the runtime facts the account's Ready is
 * derived from (which pod reports it, Authorized, Connected). Other status writes (ours, connection
 * flickers, proxy messages) do not: letting them through made thousands of status writes re-run the pool.
 */
export function poolRelevantChange(
  old: TelegramAccount,
  current: TelegramAccount,
  options: { placement?: boolean } = {},
): boolean {
  return (
    old.metadata.generation !== current.metadata.generation ||
    old.metadata.deletionTimestamp !== current.metadata.deletionTimestamp ||
    (old.metadata.finalizers ?? []).join() !== (current.metadata.finalizers ?? []).join() ||
    // The operator's own placement: the runtimes act on it, and a lost write must be redone.
    (options.placement !== false && old.status?.placement?.pod !== current.status?.placement?.pod) ||
    readyInputs(old) !== readyInputs(current)
  );
}

/** Bursts of relevant changes (a thousand accounts created at once) cost one pool run per window. */
export const POOL_COALESCE_MS = 250;
