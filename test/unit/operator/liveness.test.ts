import { PodLiveness, judgePod } from '../../../operator/pool/liveness.js';

const held = { holderIdentity: 'tdlib-runtime-default-0/uid/nonce', leaseDurationSeconds: 10 };
const base = {
  record: held,
  unchangedForMs: 0,
  hasAccounts: true,
  graceFactor: 1,
  startTimeoutMs: 120_000,
  defaultDurationSeconds: 15,
};

describe('judgePod', () => {
  it('a held heartbeat is alive until its record stayed unchanged for longer than duration x grace', () => {
    expect(judgePod({ ...base, unchangedForMs: 10_000 })).toEqual({ state: 'alive' });
    expect(judgePod({ ...base, unchangedForMs: 10_001 })).toEqual({
      state: 'dead',
      why: 'its heartbeat Lease was not renewed for 10 s',
    });
    expect(judgePod({ ...base, unchangedForMs: 15_000, graceFactor: 2 }).state).toBe('alive');
    expect(judgePod({ ...base, unchangedForMs: 20_001, graceFactor: 2 }).state).toBe('dead');
    // Without leaseDurationSeconds the default duration applies.
    const noDuration = { holderIdentity: held.holderIdentity };
    expect(judgePod({ ...base, record: noDuration, unchangedForMs: 14_000 }).state).toBe('alive');
    expect(judgePod({ ...base, record: noDuration, unchangedForMs: 15_001 }).state).toBe('dead');
    // Whether it has accounts does not matter to a holder that stopped.
    expect(judgePod({ ...base, unchangedForMs: 60_000, hasAccounts: false }).state).toBe('dead');
  });

  it('a heartbeat nobody took is starting, and dead only with accounts placed on it past the start timeout', () => {
    for (const record of [undefined, {}, { holderIdentity: '' }, { holderIdentity: null }]) {
      expect(judgePod({ ...base, record, unchangedForMs: 120_000 })).toEqual({ state: 'starting' });
      expect(judgePod({ ...base, record, unchangedForMs: 120_001 })).toEqual({
        state: 'dead',
        why: 'no runtime process has held its heartbeat Lease for 120 s',
      });
      expect(judgePod({ ...base, record, unchangedForMs: 10_000_000, hasAccounts: false })).toEqual({
        state: 'starting',
      });
    }
  });
});

describe('PodLiveness', () => {
  const setup = (startTimeoutMs = 5_000) => {
    let now = 1_000_000;
    let troubleEndedAt = 0;
    const liveness = new PodLiveness({
      graceFactor: 1,
      startTimeoutMs,
      apiTroubleEndedAt: () => troubleEndedAt,
      now: () => now,
    });
    return {
      liveness,
      advance: (ms: number) => (now += ms),
      troubleEnds: () => (troubleEndedAt = now),
    };
  };

  it('judges a held heartbeat by how long the operator saw its record unchanged, and says when to look again', () => {
    const { liveness, advance } = setup();
    const record = { ...held, leaseDurationSeconds: 2, renewTime: 't1' };
    expect(liveness.judge('n/p-0', record, true)).toEqual({ health: { state: 'alive' }, recheckMs: 2_250 });
    advance(1_500);
    // Renewed: the clock restarts.
    expect(liveness.judge('n/p-0', { ...record, renewTime: 't2' }, true).health.state).toBe('alive');
    advance(1_900);
    expect(liveness.judge('n/p-0', { ...record, renewTime: 't2' }, true)).toEqual({
      health: { state: 'alive' },
      recheckMs: 350,
    });
    advance(200);
    expect(liveness.judge('n/p-0', { ...record, renewTime: 't2' }, true).health.state).toBe('dead');
  });

  it('does not count time during which the operator itself could not reach the API', () => {
    const { liveness, advance, troubleEnds } = setup();
    const record = { ...held, leaseDurationSeconds: 2 };
    liveness.judge('n/p-0', record, true);
    advance(5_000);
    troubleEnds(); // e.g. the apiserver was paused: no watch events could arrive
    expect(liveness.judge('n/p-0', record, true).health.state).toBe('alive');
    advance(2_100);
    expect(liveness.judge('n/p-0', record, true).health.state).toBe('dead');
  });

  it('gives a pod that never took its heartbeat the whole start timeout from when accounts were placed on it', () => {
    const { liveness, advance } = setup(5_000);
    const free = { leaseTransitions: 0, leaseDurationSeconds: 15 };
    // The Lease has been free for a long time, without accounts: starting, nothing to look again for.
    expect(liveness.judge('n/p-1', free, false)).toEqual({ health: { state: 'starting' } });
    advance(60_000);
    expect(liveness.judge('n/p-1', free, false)).toEqual({ health: { state: 'starting' } });
    // Accounts arrive: five seconds from now, not from when the Lease last changed.
    expect(liveness.judge('n/p-1', free, true)).toEqual({ health: { state: 'starting' }, recheckMs: 5_250 });
    advance(4_000);
    expect(liveness.judge('n/p-1', free, true).health.state).toBe('starting');
    advance(1_001);
    expect(liveness.judge('n/p-1', free, true).health).toEqual({
      state: 'dead',
      why: 'no runtime process has held its heartbeat Lease for 5 s',
    });
    // Emptied (its accounts moved), then given accounts again: a fresh five seconds.
    expect(liveness.judge('n/p-1', free, false).health.state).toBe('starting');
    advance(30_000);
    expect(liveness.judge('n/p-1', free, true).health.state).toBe('starting');
    advance(5_001);
    expect(liveness.judge('n/p-1', free, true).health.state).toBe('dead');
  });

  it('counts a released heartbeat (holder cleared) from the release, even with accounts placed long before', () => {
    const { liveness, advance } = setup(5_000);
    liveness.judge('n/p-0', { ...held, renewTime: 't1' }, true);
    advance(60_000 - 1);
    liveness.judge('n/p-0', { ...held, renewTime: 't59' }, true);
    advance(1);
    const released = { holderIdentity: null, leaseDurationSeconds: 10, renewTime: 't60' };
    expect(liveness.judge('n/p-0', released, true).health.state).toBe('starting');
    advance(5_001);
    expect(liveness.judge('n/p-0', released, true).health.state).toBe('dead');
  });
});
