/**
 * Which accounts the canary pods should host: pure, sticky and bounded. Accounts already on the canary stay
 * there while the target allows; others move one handover budget at a time (each move closes a session,
 * backs it up and restores it elsewhere, so never more than `maxInMotion` at once). New accounts fill the
 * canary's share first: they cost no move.
 */
export interface SplitAccount {
  key: string;
  /** Where it is placed now. */
  set?: 'stable' | 'canary';
  ordinal?: number;
  /** Hosted where it is placed (not being handed over). */
  settled: boolean;
}

export interface SplitInput {
  accounts: readonly SplitAccount[];
  target: number;
  /** False holds the canary's current accounts (no new moves onto it); moves back still happen. */
  moveToCanary: boolean;
  maxInMotion: number;
}

const byKey = (a: SplitAccount, b: SplitAccount): number => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

export function chooseCanaryAccounts(input: SplitInput): Set<string> {
  const onCanary = input.accounts.filter((a) => a.set === 'canary').sort(byKey);
  let budget = Math.max(0, input.maxInMotion - input.accounts.filter((a) => a.set && !a.settled).length);
  const chosen = new Set(onCanary.map((a) => a.key));
  const target = Math.max(0, input.target);

  if (chosen.size > target) {
    // Back to stable: the ones not yet settled first (nothing runs there to stop), then from the end.
    const leaving = [...onCanary].sort((a, b) => Number(a.settled) - Number(b.settled) || byKey(b, a));
    for (const account of leaving) {
      if (chosen.size <= target) break;
      if (account.settled) {
        if (budget <= 0) break;
        budget -= 1;
      }
      chosen.delete(account.key);
    }
    return chosen;
  }
  if (!input.moveToCanary) return chosen;
  // New accounts first (no handover), then stable ones from the highest pods, so those empty and go away.
  for (const account of input.accounts.filter((a) => a.set === undefined).sort(byKey)) {
    if (chosen.size >= target) return chosen;
    chosen.add(account.key);
  }
  const movable = input.accounts
    .filter((a) => a.set === 'stable' && a.settled)
    .sort((a, b) => (b.ordinal ?? 0) - (a.ordinal ?? 0) || byKey(a, b));
  for (const account of movable) {
    if (chosen.size >= target || budget <= 0) break;
    chosen.add(account.key);
    budget -= 1;
  }
  return chosen;
}
