import { kindOfAudited, mixCeiling, type KindRates } from '../../bench/api-ceiling.js';

const rates: KindRates = {
  'account-create': 400,
  'account-labels': 360,
  'account-status': 300,
  'secret-create': 800,
  'secret-update': 700,
  'lease-create': 800,
  'lease-update': 900,
};

describe('the API ceiling of a write mix', () => {
  it('is the rate of one kind for a mix of that kind alone', () => {
    expect(mixCeiling({ 'account-status': 10 }, rates)).toBeCloseTo(300);
  });

  it('weighs each kind by its share: two status writes and two Secret creates run at 436/s', () => {
    // 1 / (0.5/300 + 0.5/800) = 436.4; with a label apply too: 1 / (1/3 * (1/300 + 1/800 + 1/360)) = 407.5.
    expect(mixCeiling({ 'account-status': 2, 'secret-create': 2 }, rates)).toBeCloseTo(436.36, 1);
    expect(mixCeiling({ 'account-status': 1, 'secret-create': 1, 'account-labels': 1 }, rates)).toBeCloseTo(
      407.55,
      1,
    );
  });

  it('is 0 for no writes', () => {
    expect(mixCeiling({}, rates)).toBe(0);
  });

  it('maps audited writes to the kinds measured, and nothing else', () => {
    expect(kindOfAudited('patch', 'telegramaccounts/status')).toBe('account-status');
    expect(kindOfAudited('patch', 'telegramaccounts')).toBe('account-labels');
    expect(kindOfAudited('create', 'secrets')).toBe('secret-create');
    expect(kindOfAudited('create', 'leases')).toBe('lease-create');
    expect(kindOfAudited('patch', 'statefulsets')).toBeUndefined();
    expect(kindOfAudited('update', 'leases')).toBe('lease-update');
    expect(kindOfAudited('update', 'secrets')).toBe('secret-update');
    expect(kindOfAudited('delete', 'secrets')).toBeUndefined();
  });
});
