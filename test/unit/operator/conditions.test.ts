import { nextCondition, sameCondition } from '../../../operator/conditions.js';

describe('conditions', () => {
  const t0 = new Date('2026-11-28T10:00:00.123Z');
  const t1 = new Date('2026-11-28T11:00:00Z');
  const scheduled = {
    type: 'Scheduled',
    status: 'True' as const,
    reason: 'Placed',
    message: 'on pod-0',
    observedGeneration: 1,
  };

  it('keeps lastTransitionTime while the status stays the same, so a re-apply is a no-op', () => {
    const first = nextCondition(undefined, scheduled, t0);
    expect(first.lastTransitionTime).toBe('2026-11-28T10:00:00Z');
    const again = nextCondition([first], { ...scheduled, message: 'still on pod-0' }, t1);
    expect(again.lastTransitionTime).toBe(first.lastTransitionTime);
    expect(sameCondition([first], nextCondition([first], scheduled, t1))).toBe(true);
  });

  it('moves lastTransitionTime when the status flips and reports the change', () => {
    const first = nextCondition(undefined, scheduled, t0);
    const flipped = nextCondition([first], { ...scheduled, status: 'False', reason: 'SecretNotFound' }, t1);
    expect(flipped.lastTransitionTime).toBe('2026-11-28T11:00:00Z');
    expect(sameCondition([first], flipped)).toBe(false);
  });
});
