import {
  isTdlibErrorReason,
  nextCondition,
  sameCondition,
  tdlibErrorReason,
} from '../../../crds/conditions.js';

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

  it('tells TDLib error reasons from our own CamelCase ones', () => {
    for (const r of ['PHONE_CODE_INVALID', 'PASSWORD_HASH_INVALID', 'ACCESS_TOKEN_INVALID', 'Error400'])
      expect(isTdlibErrorReason(r)).toBe(true);
    for (const r of ['WaitCode', 'PasswordRejected', 'Ready', undefined, 'A', 'Error'])
      expect(isTdlibErrorReason(r)).toBe(false);
    expect(tdlibErrorReason(400, 'PHONE_CODE_INVALID')).toBe('PHONE_CODE_INVALID');
    expect(tdlibErrorReason(401, 'Unauthorized')).toBe('Error401');
    expect(tdlibErrorReason(429, 'Too Many Requests: retry after 10')).toBe('Error429');
  });
});
