/**
 * Placement of accounts on the pods of one pool: a pure function of the accounts, where they are now and the
 * pool's capacity, so the decision is testable and identical on every reconcile (no flapping).
 *
 * Rules, in order:
 *  1. Sticky: an account stays on its pod while that pod is in the pool's range, not draining and not over
 *     capacity. Accounts are never moved just to rebalance (a move costs a drain handshake).
 *  2. Spread: an unplaced account goes to the pod with the fewest accounts (ties: lowest ordinal).
 *  3. Capacity: no pod gets more than `accountsPerPod`; the pool grows to ceil(accounts / capacity) pods.
 *  4. Scale down only from the top, and only pods left empty.
 */
export interface PlacementInput {
  /** Accounts of the pool, by key, with the pod they are placed on now (undefined = unplaced). */
  accounts: ReadonlyArray<{ key: string; pod?: number }>;
  accountsPerPod: number;
  minReplicas: number;
  maxReplicas: number;
  /** Ordinals that must not receive accounts and must be emptied (e.g. a pod being drained). */
  drainingPods?: ReadonlySet<number>;
}

export interface PlacementResult {
  replicas: number;
  /** Pod ordinal per account key; accounts that fit nowhere (maxReplicas reached) are in `unplaced`. */
  assignments: Map<string, number>;
  unplaced: string[];
}

export function place(input: PlacementInput): PlacementResult {
  const capacity = Math.max(1, input.accountsPerPod);
  const draining = input.drainingPods ?? new Set<number>();
  const accounts = [...input.accounts].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const needed = Math.ceil(accounts.length / capacity) + draining.size;
  let replicas = Math.min(input.maxReplicas, Math.max(input.minReplicas, needed));

  const load = new Map<number, number>();
  const assignments = new Map<string, number>();
  const pending: string[] = [];
  // Keep existing placements first (sticky), in key order so over-capacity eviction is deterministic.
  for (const account of accounts) {
    const pod = account.pod;
    const current = pod === undefined ? 0 : (load.get(pod) ?? 0);
    if (pod !== undefined && pod < input.maxReplicas && !draining.has(pod) && current < capacity) {
      assignments.set(account.key, pod);
      load.set(pod, current + 1);
    } else {
      pending.push(account.key);
    }
  }
  // Pods above the computed size that still hold accounts keep the pool from shrinking under them.
  const highestUsed = Math.max(-1, ...assignments.values());
  replicas = Math.min(input.maxReplicas, Math.max(replicas, highestUsed + 1));

  const unplaced: string[] = [];
  for (const key of pending) {
    let best = -1;
    let bestLoad = Number.POSITIVE_INFINITY;
    for (let ordinal = 0; ordinal < replicas; ordinal++) {
      if (draining.has(ordinal)) continue;
      const l = load.get(ordinal) ?? 0;
      if (l < capacity && l < bestLoad) {
        best = ordinal;
        bestLoad = l;
      }
    }
    if (best < 0 && replicas < input.maxReplicas) {
      best = replicas;
      replicas += 1;
    }
    if (best < 0) {
      unplaced.push(key);
      continue;
    }
    assignments.set(key, best);
    load.set(best, (load.get(best) ?? 0) + 1);
  }
  return { replicas, assignments, unplaced };
}
