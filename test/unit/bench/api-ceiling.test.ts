import {
  kindOfAudited,
  median,
  medianByKind,
  mixCeiling,
  mixCeilingByRound,
  mixCpuMsPerAccount,
  operatorStatusApply,
  roundsReport,
  type KindRates,
} from '../../bench/api-ceiling.js';

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

describe("what a write mix costs the API server per account, at the ceiling's cost per write", () => {
  const cost = { 'account-status': 3.3, 'secret-create': 1.0, 'lease-create': 0.9 };

  it('adds each kind by its writes per account: 1 status, 1 Secret and 1.01 Lease creates', () => {
    // (1000 * 3.3 + 1000 * 1.0 + 1010 * 0.9) / 1000 = 5.209
    expect(
      mixCpuMsPerAccount({ 'account-status': 1000, 'secret-create': 1000, 'lease-create': 1010 }, cost, 1000),
    ).toBeCloseTo(5.209, 3);
  });

  it('leaves out kinds whose cost was not measured, and is 0 without accounts', () => {
    expect(mixCpuMsPerAccount({ 'account-status': 10, 'lease-update': 10 }, cost, 10)).toBeCloseTo(3.3);
    expect(mixCpuMsPerAccount({ 'account-status': 10 }, cost, 0)).toBe(0);
  });
});

describe('a ceiling measured in rounds', () => {
  it("takes each kind's median, not its mean: one slow round does not pull it down", () => {
    expect(median([498, 554, 387])).toBe(498);
    expect(median([400, 300])).toBe(350);
    expect(median([])).toBeNaN();
    expect(
      medianByKind([
        { 'account-status': 498, 'lease-create': 1999 },
        { 'account-status': 554, 'lease-create': 2081 },
        { 'account-status': 100, 'lease-create': 2097 },
      ]),
    ).toEqual({ 'account-status': 498, 'lease-create': 2081 });
  });

  it("gives the mix's ceiling at each round's rates, in the order measured", () => {
    const slower: KindRates = { ...rates, 'account-status': 150, 'secret-create': 400 };
    const [first, second] = mixCeilingByRound({ 'account-status': 2, 'secret-create': 2 }, [rates, slower]);
    expect(first).toBeCloseTo(436.36, 1);
    // Every rate halved: the ceiling halves.
    expect(second).toBeCloseTo(218.18, 1);
  });
});

describe("a workload's rate against each round's ceiling", () => {
  it('prints and reports each round: the ceiling and the ratio against it', () => {
    const report = roundsReport(500, [1000, 625]);
    expect(report.text).toBe('1000 (0.50), 625 (0.80)');
    expect(report.figures).toEqual({
      api_ceiling_rounds: 2,
      api_ceiling_writes_per_s_by_round: [1000, 625],
      ceiling_ratio_by_round: [0.5, 0.8],
    });
  });
});

describe("the ceiling's status apply", () => {
  it('is the one the operator sends for a placed account its pod has not reported: placement, Scheduled and Ready', () => {
    const call = operatorStatusApply('ceiling-1-000001', 'bench-ceiling', new Date('2026-12-03T10:00:00Z'));
    expect(call.method).toBe('PATCH');
    expect(call.path).toMatch(
      /\/namespaces\/bench-ceiling\/telegramaccounts\/ceiling-1-000001\/status\?fieldManager=api-ceiling&force=true$/,
    );
    const status = (call.body as { status: Record<string, unknown> }).status;
    expect(status.placement).toEqual({ pool: 'alpha', pod: 'tdlib-runtime-alpha-0' });
    expect(status.observedGeneration).toBe(1);
    expect(status.conditions).toEqual([
      expect.objectContaining({ type: 'Scheduled', status: 'True', reason: 'Placed' }),
      expect.objectContaining({ type: 'Ready', status: 'Unknown', reason: 'WaitingForRuntime' }),
    ]);
  });
});
