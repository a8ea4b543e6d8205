/**
 * Which accounts the canary pods host during a rollout: sticky, new accounts first, stable accounts from the
 * highest pods, never more than maxInMotion handovers at once, and on the way back the unsettled ones first.
 */
import { describe, expect, it } from '@jest/globals';
import { chooseCanaryAccounts, type SplitAccount } from '../../../operator/pool/rollout/split.js';

const key = (i: number) => `ns/a${String(i).padStart(3, '0')}`;

/** `n` settled accounts on the stable pods, 10 per pod (ordinal = i / 10). */
const stable = (n: number, from = 0): SplitAccount[] =>
  Array.from({ length: n }, (_, i) => ({
    key: key(from + i),
    set: 'stable' as const,
    ordinal: Math.floor((from + i) / 10),
    settled: true,
  }));

const sorted = (chosen: Set<string>) => [...chosen].sort();

/**
 * Applies a choice as the controller does: accounts whose set changes are being handed over (unsettled)
 * until `settle` runs. Returns how many handovers this round started.
 */
function apply(accounts: SplitAccount[], chosen: Set<string>): number {
  let started = 0;
  for (const a of accounts) {
    const want = chosen.has(a.key) ? 'canary' : 'stable';
    if (a.set === want) continue;
    if (a.set !== undefined && a.settled) started += 1;
    a.set = want;
    a.ordinal = 0;
    a.settled = false;
  }
  return started;
}

const inMotion = (accounts: readonly SplitAccount[]) =>
  accounts.filter((a) => a.set !== undefined && !a.settled).length;

describe('chooseCanaryAccounts', () => {
  it('is sticky: the canary keeps its accounts while the target allows', () => {
    const accounts: SplitAccount[] = [
      ...stable(8),
      { key: 'ns/z1', set: 'canary', ordinal: 0, settled: true },
      { key: 'ns/z2', set: 'canary', ordinal: 0, settled: true },
    ];
    const chosen = chooseCanaryAccounts({ accounts, target: 2, moveToCanary: true, maxInMotion: 10 });
    expect(sorted(chosen)).toEqual(['ns/z1', 'ns/z2']);
    const more = chooseCanaryAccounts({ accounts, target: 4, moveToCanary: true, maxInMotion: 10 });
    expect(more.has('ns/z1') && more.has('ns/z2')).toBe(true);
    expect(more.size).toBe(4);
  });

  it('fills the share with new accounts first, which cost no handover', () => {
    const accounts: SplitAccount[] = [
      ...stable(10),
      { key: 'ns/new2', settled: false },
      { key: 'ns/new1', settled: false },
    ];
    const chosen = chooseCanaryAccounts({ accounts, target: 3, moveToCanary: true, maxInMotion: 1 });
    expect(chosen.has('ns/new1') && chosen.has('ns/new2')).toBe(true);
    expect(chosen.size).toBe(3);
    // Only one stable account moves: the budget is 1.
    expect([...chosen].filter((k) => k.startsWith('ns/a'))).toHaveLength(1);
  });

  it('takes stable accounts from the highest pods first, so those empty', () => {
    const accounts = stable(30);
    const chosen = chooseCanaryAccounts({ accounts, target: 3, moveToCanary: true, maxInMotion: 10 });
    expect(sorted(chosen)).toEqual([key(20), key(21), key(22)]);
  });

  it('never starts more than maxInMotion handovers, counting those already under way', () => {
    const accounts = stable(30);
    expect(chooseCanaryAccounts({ accounts, target: 10, moveToCanary: true, maxInMotion: 4 }).size).toBe(4);

    // Two accounts are still being handed over (one to the canary, one between stable pods).
    accounts[0] = { ...accounts[0]!, set: 'canary', settled: false };
    accounts[1] = { ...accounts[1]!, settled: false };
    const chosen = chooseCanaryAccounts({ accounts, target: 10, moveToCanary: true, maxInMotion: 4 });
    expect(chosen.has(key(0))).toBe(true);
    expect(chosen.size).toBe(3);

    // A full budget in motion: nothing more moves.
    for (const i of [2, 3]) accounts[i] = { ...accounts[i]!, settled: false };
    expect(
      sorted(chooseCanaryAccounts({ accounts, target: 10, moveToCanary: true, maxInMotion: 4 })),
    ).toEqual([key(0)]);
  });

  it('reaches any target within the motion limit, round after round', () => {
    const accounts = stable(50);
    const maxInMotion = 3;
    const targets = [5, 13, 25, 50, 0];
    for (const target of targets) {
      for (let round = 0; round < 100; round += 1) {
        const before = inMotion(accounts);
        const chosen = chooseCanaryAccounts({ accounts, target, moveToCanary: true, maxInMotion });
        const started = apply(accounts, chosen);
        expect(before + started).toBeLessThanOrEqual(maxInMotion);
        expect(inMotion(accounts)).toBeLessThanOrEqual(maxInMotion);
        // Half of what is in motion settles per round (at least one).
        const moving = accounts.filter((a) => !a.settled);
        for (const a of moving.slice(0, Math.max(1, Math.floor(moving.length / 2)))) a.settled = true;
        const onCanary = accounts.filter((a) => a.set === 'canary');
        if (onCanary.length === target && inMotion(accounts) === 0) break;
      }
      expect(accounts.filter((a) => a.set === 'canary')).toHaveLength(target);
      expect(inMotion(accounts)).toBe(0);
    }
  });

  it('moves accounts back when the target decreases: unsettled first, then from the end', () => {
    const accounts: SplitAccount[] = [
      ...stable(5),
      { key: 'ns/c1', set: 'canary', ordinal: 0, settled: true },
      { key: 'ns/c2', set: 'canary', ordinal: 0, settled: true },
      { key: 'ns/c3', set: 'canary', ordinal: 0, settled: true },
      { key: 'ns/c4', set: 'canary', ordinal: 0, settled: false },
      { key: 'ns/c0', set: 'canary', ordinal: 0, settled: true },
    ];
    expect(
      sorted(chooseCanaryAccounts({ accounts, target: 4, moveToCanary: true, maxInMotion: 10 })),
    ).toEqual(['ns/c0', 'ns/c1', 'ns/c2', 'ns/c3']);
    expect(
      sorted(chooseCanaryAccounts({ accounts, target: 2, moveToCanary: true, maxInMotion: 10 })),
    ).toEqual(['ns/c0', 'ns/c1']);
  });

  it('bounds moves back too; an unsettled account leaves without using the budget', () => {
    const accounts: SplitAccount[] = [
      { key: 'ns/c1', set: 'canary', ordinal: 0, settled: true },
      { key: 'ns/c2', set: 'canary', ordinal: 0, settled: true },
      { key: 'ns/c3', set: 'canary', ordinal: 0, settled: true },
      { key: 'ns/c4', set: 'canary', ordinal: 0, settled: false },
    ];
    // Budget 2, one already in motion: the unsettled one and one settled one leave.
    expect(sorted(chooseCanaryAccounts({ accounts, target: 0, moveToCanary: true, maxInMotion: 2 }))).toEqual(
      ['ns/c1', 'ns/c2'],
    );
    // No budget left: only the unsettled one leaves.
    expect(sorted(chooseCanaryAccounts({ accounts, target: 0, moveToCanary: true, maxInMotion: 1 }))).toEqual(
      ['ns/c1', 'ns/c2', 'ns/c3'],
    );
  });

  it('moveToCanary=false keeps the canary as it is: no new moves, new accounts stay off it', () => {
    const accounts: SplitAccount[] = [
      ...stable(10),
      { key: 'ns/new', settled: false },
      { key: 'ns/c1', set: 'canary', ordinal: 0, settled: true },
    ];
    expect(
      sorted(chooseCanaryAccounts({ accounts, target: 5, moveToCanary: false, maxInMotion: 10 })),
    ).toEqual(['ns/c1']);
  });

  it('moveToCanary=false still moves accounts back above the target', () => {
    const accounts: SplitAccount[] = [
      { key: 'ns/c1', set: 'canary', ordinal: 0, settled: true },
      { key: 'ns/c2', set: 'canary', ordinal: 0, settled: true },
    ];
    expect(
      sorted(chooseCanaryAccounts({ accounts, target: 1, moveToCanary: false, maxInMotion: 10 })),
    ).toEqual(['ns/c1']);
  });

  it('treats a negative target as zero and a target above the pool as every account', () => {
    const accounts: SplitAccount[] = [...stable(3), { key: 'ns/c1', set: 'canary', settled: true }];
    expect(chooseCanaryAccounts({ accounts, target: -1, moveToCanary: true, maxInMotion: 10 }).size).toBe(0);
    expect(chooseCanaryAccounts({ accounts, target: 99, moveToCanary: true, maxInMotion: 10 }).size).toBe(4);
  });

  it('does not depend on the order accounts are listed in', () => {
    const accounts: SplitAccount[] = [
      ...stable(25),
      { key: 'ns/new1', settled: false },
      { key: 'ns/c1', set: 'canary', ordinal: 0, settled: true },
    ];
    const input = { target: 6, moveToCanary: true, maxInMotion: 3 };
    expect(sorted(chooseCanaryAccounts({ ...input, accounts: [...accounts].reverse() }))).toEqual(
      sorted(chooseCanaryAccounts({ ...input, accounts })),
    );
  });
});
