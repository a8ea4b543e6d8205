import { place } from '../../../operator/placement.js';

const accounts = (n: number, pod?: (i: number) => number | undefined) =>
  Array.from({ length: n }, (_, i) => ({ key: `ns/a${String(i).padStart(5, '0')}`, pod: pod?.(i) }));

function loads(assignments: Map<string, number>): number[] {
  const out: number[] = [];
  for (const pod of assignments.values()) out[pod] = (out[pod] ?? 0) + 1;
  return out;
}

describe('place', () => {
  const pool = { accountsPerPod: 10, minReplicas: 1, maxReplicas: 100 };

  it('sizes the pool to demand and spreads new accounts evenly', () => {
    const result = place({ ...pool, accounts: accounts(25) });
    expect(result.replicas).toBe(3);
    expect(result.unplaced).toEqual([]);
    expect(loads(result.assignments)).toEqual([9, 8, 8]);
  });

  it('keeps placed accounts where they are (sticky) and fills the emptiest pod', () => {
    const existing = accounts(12, (i) => (i < 10 ? 0 : 1));
    const result = place({ ...pool, accounts: [...existing, { key: 'ns/new', pod: undefined }] });
    for (const a of existing) expect(result.assignments.get(a.key)).toBe(a.pod);
    expect(result.assignments.get('ns/new')).toBe(1);
    expect(result.replicas).toBe(2);
  });

  it('is stable: placing its own output again changes nothing', () => {
    const first = place({ ...pool, accounts: accounts(57) });
    const again = place({
      ...pool,
      accounts: accounts(57, (i) => first.assignments.get(`ns/a${String(i).padStart(5, '0')}`)),
    });
    expect(again.assignments).toEqual(first.assignments);
    expect(again.replicas).toBe(first.replicas);
  });

  it('never exceeds capacity: evicts the overflow of an over-full pod deterministically', () => {
    const result = place({ ...pool, accounts: accounts(15, () => 0) });
    expect(loads(result.assignments)).toEqual([10, 5]);
    expect(result.assignments.get('ns/a00000')).toBe(0);
    expect(result.assignments.get('ns/a00014')).toBe(1);
  });

  it('moves accounts off a draining pod and keeps the pool large enough', () => {
    const result = place({
      ...pool,
      accounts: accounts(10, (i) => (i < 5 ? 0 : 1)),
      drainingPods: new Set([1]),
    });
    expect([...result.assignments.values()].includes(1)).toBe(false);
    expect(result.replicas).toBeGreaterThanOrEqual(2);
  });

  it('does not shrink below a pod that still hosts accounts', () => {
    const result = place({ ...pool, accounts: accounts(3, () => 4) });
    expect(result.replicas).toBe(5);
    expect(loads(result.assignments)[4]).toBe(3);
  });

  it('reports accounts that do not fit when the pool is at maxReplicas', () => {
    const result = place({ accountsPerPod: 2, minReplicas: 0, maxReplicas: 2, accounts: accounts(5) });
    expect(result.replicas).toBe(2);
    expect(result.unplaced).toHaveLength(1);
  });

  it('keeps minReplicas pods with no accounts and zero when allowed', () => {
    expect(place({ ...pool, minReplicas: 2, accounts: [] }).replicas).toBe(2);
    expect(place({ ...pool, minReplicas: 0, accounts: [] }).replicas).toBe(0);
  });

  it('re-places accounts from a pod beyond maxReplicas', () => {
    const result = place({
      accountsPerPod: 10,
      minReplicas: 0,
      maxReplicas: 2,
      accounts: accounts(2, () => 7),
    });
    expect([...result.assignments.values()].every((p) => p < 2)).toBe(true);
  });
});
