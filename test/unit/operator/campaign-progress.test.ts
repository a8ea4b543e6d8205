/**
 * A Campaign's status as a pure function of its slices and the operator's decisions
 * (operator/campaign/progress.ts): the counters summed from the slices, the phase, the rate and the ETA,
 * the conditions (kstatus and Argo CD read them), and the sliding failure ratio behind autoPause.
 */
import {
  encodeRecipients,
  type Campaign,
  type CampaignSlice,
  type CampaignSliceStatus,
  type Condition,
} from '../../../crds/index.js';
import {
  campaignProgress,
  recentFailureRatio,
  sumSlices,
  type Hold,
  type Phase,
  type ProgressInput,
} from '../../../operator/campaign/progress.js';

type Counts = NonNullable<CampaignSliceStatus['counts']>;

const campaign = (
  status?: Campaign['status'],
  spec: Partial<Campaign['spec']> = {},
  generation = 3,
): Campaign => ({
  apiVersion: 'telegram.tdlib-operator.dev/v1alpha1',
  kind: 'Campaign',
  metadata: { name: 'spring', namespace: 'n', generation },
  spec: {
    senders: { names: ['alice', 'bob'] },
    message: { text: 'hi' },
    recipients: { usernames: ['alice_1'] },
    ...spec,
  },
  ...(status ? { status } : {}),
});

let sliceIndex = 0;
/** A slice of `count` recipients; `counts` lists the non-pending ones (pending is what is left). */
const slice = (
  count: number,
  counts?: Partial<Counts>,
  over: Partial<CampaignSliceStatus> = {},
  sender: string | undefined = 'alice',
): CampaignSlice => {
  const index = sliceIndex++;
  const c = { inFlight: 0, sent: 0, failed: 0, inDoubt: 0, ...counts };
  return {
    apiVersion: 'telegram.tdlib-operator.dev/v1alpha1',
    kind: 'CampaignSlice',
    metadata: { name: `spring-${index}` },
    spec: {
      campaign: 'spring',
      index,
      recipients: encodeRecipients([]),
      count,
      assignment: 1,
      messagesPerMinute: 20,
      ...(sender ? { sender } : {}),
    },
    ...(counts
      ? {
          status: {
            counts: { pending: count - c.inFlight - c.sent - c.failed - c.inDoubt, ...c },
            ...over,
          },
        }
      : {}),
  };
};

const NOW = new Date('2026-11-28T12:00:00Z');
const input = (over: Partial<ProgressInput> = {}): ProgressInput => ({
  campaign: campaign(),
  slices: [],
  duplicates: 0,
  planning: false,
  hold: undefined,
  senders: [],
  now: NOW,
  ...over,
});
const condition = (status: { conditions?: Condition[] }, type: string): Condition | undefined =>
  status.conditions?.find((c) => c.type === type);

const suspended: Hold = { reason: 'Suspended', message: 'spec.suspend is true' };
const outsideWindow: Hold = { reason: 'OutsideWindow', message: 'the sending window opens at 09:00' };

describe('sumSlices', () => {
  it('adds up the slices, reasons and senders, and counts what no ledger covers yet as pending', () => {
    const totals = sumSlices([
      slice(
        10,
        { sent: 4, failed: 2, inFlight: 1 },
        {
          failures: { UserDeleted: 1, PrivacyRestricted: 1 },
          sentBySender: { alice: 4 },
          messagesPerMinute: 12,
        },
      ),
      slice(5, { sent: 1, inDoubt: 1 }, { sentBySender: { bob: 1 }, messagesPerMinute: 3 }),
      // Written before 4 more recipients were added to it: its counts say 2 pending, there are 6.
      {
        ...slice(8, { failed: 2 }, { failures: { UserDeleted: 2 } }),
        status: {
          counts: { pending: 2, inFlight: 0, sent: 0, failed: 2, inDoubt: 0 },
          failures: { UserDeleted: 2 },
        },
      },
      // Not written at all yet.
      slice(7),
    ]);
    expect(totals).toEqual({
      total: 30,
      sent: 5,
      failed: 4,
      pending: 3 + 3 + 6 + 7,
      inFlight: 1,
      inDoubt: 1,
      failures: { UserDeleted: 3, PrivacyRestricted: 1 },
      sentBySender: { alice: 4, bob: 1 },
      messagesPerMinute: 15,
    });
    expect(totals.sent + totals.failed + totals.pending + totals.inFlight + totals.inDoubt).toBe(
      totals.total,
    );
  });

  it('is all zeros for no slices', () => {
    expect(sumSlices([])).toEqual({
      total: 0,
      sent: 0,
      failed: 0,
      pending: 0,
      inFlight: 0,
      inDoubt: 0,
      failures: {},
      sentBySender: {},
      messagesPerMinute: 0,
    });
  });
});

describe('campaignProgress: phase', () => {
  const fresh = (): CampaignSlice[] => [slice(10, {})];
  const sending = (): CampaignSlice[] => [slice(10, { sent: 3, inFlight: 2 })];
  const between = (): CampaignSlice[] => [slice(10, { sent: 3 })];
  const done = (): CampaignSlice[] => [slice(6, { sent: 3, failed: 2, inDoubt: 1 }), slice(2, { sent: 2 })];
  const started = campaign({ startedAt: '2026-11-28T10:00:00Z' });

  it.each<[string, Partial<ProgressInput>, Phase]>([
    ['still planning', { planning: true, slices: [] }, 'Pending'],
    ['planning, whatever the slices say', { planning: true, slices: done() }, 'Pending'],
    ['nothing held', { slices: fresh() }, 'Running'],
    ['sending', { slices: sending() }, 'Running'],
    ['every recipient final', { slices: done() }, 'Completed'],
    ['every recipient final, though suspended', { slices: done(), hold: suspended }, 'Completed'],
    [
      'every recipient final, past its end',
      { slices: done(), ended: { reason: 'PastEndTime', message: 'ended' } },
      'Completed',
    ],
    ['before its start', { slices: fresh(), hold: { reason: 'BeforeStart', message: 'at 9' } }, 'Scheduled'],
    ['outside its window, never sent', { slices: fresh(), hold: outsideWindow }, 'Scheduled'],
    ['outside its window after it sent', { slices: between(), hold: outsideWindow }, 'Paused'],
    [
      'outside its window after it started',
      { campaign: started, slices: fresh(), hold: outsideWindow },
      'Paused',
    ],
    ['outside its window, sends still in flight', { slices: sending(), hold: outsideWindow }, 'Running'],
    ['suspended, nothing in flight', { slices: between(), hold: suspended }, 'Paused'],
    ['suspended, sends in flight', { slices: sending(), hold: suspended }, 'Running'],
    ['auto-paused', { slices: between(), hold: { reason: 'AutoPaused', message: 'm' } }, 'Paused'],
    ['without a sender', { slices: fresh(), hold: { reason: 'NoSender', message: 'm' } }, 'Paused'],
    ['missing its lists', { slices: fresh(), hold: { reason: 'RecipientsMissing', message: 'm' } }, 'Paused'],
    ['too late to start', { slices: fresh(), ended: { reason: 'TooLate', message: 'late' } }, 'Failed'],
    [
      'past its end with recipients left',
      { slices: between(), ended: { reason: 'PastEndTime', message: 'ended' } },
      'Failed',
    ],
    [
      'past its end, last sends in flight',
      { slices: sending(), ended: { reason: 'PastEndTime', message: 'ended' } },
      'Running',
    ],
    [
      '"too late" once it has started: it ran, then ended',
      { campaign: started, slices: sending(), ended: { reason: 'TooLate', message: 'late' } },
      'Running',
    ],
    ['with no slices and no recipients anywhere', { slices: [], noRecipients: true }, 'Completed'],
  ])('is %s', (_, over, phase) => {
    expect(campaignProgress(input(over)).phase).toBe(phase);
  });

  it('says there is nobody to send to, and how to start, when every list is empty', () => {
    const status = campaignProgress(input({ slices: [], noRecipients: true }));
    const completed = status.conditions?.find((c) => c.type === 'Completed');
    expect(completed).toMatchObject({ status: 'True', reason: 'NoRecipients' });
    expect(completed?.message).toContain('add recipients');
    expect(status.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ reason: 'NoRecipients' });
  });
});

describe('campaignProgress: counters, rate and times', () => {
  it('reports the totals, the duplicates, the failures, and what each listed sender delivered', () => {
    const status = campaignProgress(
      input({
        duplicates: 7,
        slices: [
          slice(
            10,
            { sent: 4, failed: 1, inFlight: 1 },
            {
              failures: { UserDeleted: 1 },
              sentBySender: { alice: 3, carol: 1 },
              messagesPerMinute: 6,
            },
          ),
          slice(10, { sent: 2, inDoubt: 1 }, { sentBySender: { alice: 2 }, messagesPerMinute: 4 }),
        ],
        senders: [
          { name: 'alice', sent: 0, state: 'Sending' },
          { name: 'bob', sent: 0, state: 'NotReady', reason: 'WaitCode' },
        ],
      }),
    );
    expect(status).toMatchObject({
      observedGeneration: 3,
      phase: 'Running',
      total: 20,
      duplicates: 7,
      sent: 6,
      failed: 1,
      pending: 11,
      inFlight: 1,
      inDoubt: 1,
      failures: { UserDeleted: 1 },
      messagesPerMinute: 10,
      senders: [
        { name: 'alice', sent: 5, state: 'Sending' },
        { name: 'bob', sent: 0, state: 'NotReady', reason: 'WaitCode' },
      ],
    });
  });

  it.each<[string, Partial<ProgressInput>, string | undefined]>([
    // 90 pending at 60 a minute: a minute and a half.
    [
      'at the current rate',
      { slices: [slice(100, { sent: 10 }, { messagesPerMinute: 60 })] },
      '2026-11-28T12:01:30Z',
    ],
    // 1 pending at 7 a minute: 8.57 s, in whole seconds.
    [
      'in whole seconds',
      { slices: [slice(2, { sent: 1 }, { messagesPerMinute: 7 })] },
      '2026-11-28T12:00:08Z',
    ],
    ['not at a standstill', { slices: [slice(100, { sent: 10 }, { messagesPerMinute: 0 })] }, undefined],
    [
      'not while paused',
      { slices: [slice(100, { sent: 10 }, { messagesPerMinute: 60 })], hold: suspended },
      undefined,
    ],
    [
      'not when only sends in flight are left',
      { slices: [slice(10, { sent: 8, inFlight: 2 }, { messagesPerMinute: 60 })] },
      undefined,
    ],
    ['not once completed', { slices: [slice(10, { sent: 10 }, { messagesPerMinute: 60 })] }, undefined],
  ])('estimates the completion %s', (_, over, eta) => {
    expect(campaignProgress(input(over)).estimatedCompletionTime).toBe(eta);
  });

  it('starts the clock at the first send, and keeps the first start', () => {
    expect(campaignProgress(input({ slices: [slice(5, {})] })).startedAt).toBeUndefined();
    expect(campaignProgress(input({ slices: [slice(5)] })).startedAt).toBeUndefined();
    // The first intent is a start: a send may be on its way.
    expect(campaignProgress(input({ slices: [slice(5, { inFlight: 1 })] })).startedAt).toBe(
      '2026-11-28T12:00:00Z',
    );
    const later = campaignProgress(
      input({
        campaign: campaign({ startedAt: '2026-11-27T08:00:00Z' }),
        slices: [slice(5, { sent: 3 })],
        now: new Date('2026-11-28T13:00:00.750Z'),
      }),
    );
    expect(later.startedAt).toBe('2026-11-27T08:00:00Z');
  });

  it('keeps the first completion time, and drops it when failed recipients are retried', () => {
    const first = campaignProgress(input({ slices: [slice(3, { sent: 2, failed: 1 })] }));
    expect(first.completedAt).toBe('2026-11-28T12:00:00Z');
    const again = campaignProgress(
      input({
        campaign: campaign(first),
        slices: [slice(3, { sent: 2, failed: 1 })],
        now: new Date('2026-11-29T12:00:00Z'),
      }),
    );
    expect(again.completedAt).toBe('2026-11-28T12:00:00Z');
    // retryFailedRound raised: the failed one is pending again.
    const retrying = campaignProgress(
      input({
        campaign: campaign(first, { retry: { retryFailedRound: 1 } }),
        slices: [slice(3, { sent: 2 })],
        now: new Date('2026-11-29T12:00:00Z'),
      }),
    );
    expect(retrying).toMatchObject({ phase: 'Running', retryFailedRound: 1, startedAt: first.startedAt });
    expect(retrying.completedAt).toBeUndefined();
  });

  it('carries the auto-pause generation and the retry round only when there are some', () => {
    const plain = campaignProgress(input({ slices: [slice(3, {})] }));
    expect(plain).not.toHaveProperty('autoPausedGeneration');
    expect(plain).not.toHaveProperty('retryFailedRound');
    const paused = campaignProgress(
      input({
        campaign: campaign(undefined, { retry: { retryFailedRound: 0 } }),
        slices: [slice(3, {})],
        hold: { reason: 'AutoPaused', message: 'm' },
        autoPausedGeneration: 3,
      }),
    );
    expect(paused).toMatchObject({ autoPausedGeneration: 3, retryFailedRound: 0 });
  });
});

describe('campaignProgress: conditions', () => {
  type Row = [string, Partial<ProgressInput>, Record<string, [status: string, reason: string]>];
  it.each<Row>([
    [
      'Running',
      { slices: [slice(10, { sent: 3 }, { messagesPerMinute: 5 })] },
      {
        Ready: ['True', 'Running'],
        Progressing: ['True', 'Sending'],
        Completed: ['False', 'Outstanding'],
        Paused: ['False', 'NotPaused'],
      },
    ],
    [
      'Pending',
      { planning: true },
      {
        Ready: ['True', 'Pending'],
        Progressing: ['False', 'Pending'],
        Completed: ['False', 'Outstanding'],
        Paused: ['False', 'NotPaused'],
      },
    ],
    [
      'Scheduled',
      { slices: [slice(10, {})], hold: outsideWindow },
      {
        Ready: ['True', 'OutsideWindow'],
        Progressing: ['False', 'OutsideWindow'],
        Completed: ['False', 'Outstanding'],
        Paused: ['False', 'NotPaused'],
      },
    ],
    [
      'Paused',
      { slices: [slice(10, { sent: 3 })], hold: suspended },
      {
        Ready: ['False', 'Suspended'],
        Progressing: ['False', 'Suspended'],
        Completed: ['False', 'Outstanding'],
        Paused: ['True', 'Suspended'],
      },
    ],
    [
      'Running while a pause takes effect',
      { slices: [slice(10, { inFlight: 2 })], hold: suspended },
      {
        Ready: ['False', 'Suspended'],
        Progressing: ['False', 'Suspended'],
        Completed: ['False', 'Outstanding'],
        Paused: ['False', 'NotPaused'],
      },
    ],
    [
      'Completed',
      { slices: [slice(3, { sent: 1, failed: 1, inDoubt: 1 })], hold: suspended },
      {
        Ready: ['True', 'Completed'],
        Progressing: ['False', 'Suspended'],
        Completed: ['True', 'AllFinal'],
        Paused: ['False', 'NotPaused'],
      },
    ],
    [
      'Failed (too late)',
      { slices: [slice(10, {})], ended: { reason: 'TooLate', message: 'late' } },
      {
        Ready: ['False', 'TooLate'],
        Progressing: ['False', 'TooLate'],
        Completed: ['False', 'Outstanding'],
        Paused: ['False', 'NotPaused'],
      },
    ],
  ])('%s', (_, over, expected) => {
    const status = campaignProgress(input(over));
    const got = Object.fromEntries(
      (status.conditions ?? []).map((c) => [c.type, [c.status, c.reason]] as const),
    );
    expect(got).toEqual(expected);
    for (const c of status.conditions ?? []) {
      expect(c.observedGeneration).toBe(3);
      expect(c.lastTransitionTime).toBe('2026-11-28T12:00:00Z');
    }
  });

  it('says why in the messages: the hold, the counts, the end', () => {
    const paused = campaignProgress(input({ slices: [slice(10, { sent: 3 })], hold: suspended }));
    expect(condition(paused, 'Ready')?.message).toBe('spec.suspend is true');
    expect(condition(paused, 'Paused')?.message).toBe('spec.suspend is true');
    expect(condition(paused, 'Completed')?.message).toBe('7 recipients outstanding');
    const running = campaignProgress(input({ slices: [slice(10, { sent: 3 }, { messagesPerMinute: 5 })] }));
    expect(condition(running, 'Ready')?.message).toBe('running: 3 of 10 sent');
    expect(condition(running, 'Progressing')?.message).toBe('7 pending, 5 messages per minute');
    const done = campaignProgress(input({ slices: [slice(4, { sent: 2, failed: 1, inDoubt: 1 })] }));
    expect(condition(done, 'Ready')?.message).toBe('every recipient is final: 2 sent, 1 failed, 1 in doubt');
    const ended = campaignProgress(
      input({
        slices: [slice(10, { sent: 3 })],
        ended: { reason: 'PastEndTime', message: 'schedule.endTime passed' },
      }),
    );
    expect(ended.phase).toBe('Failed');
    expect(condition(ended, 'Ready')).toMatchObject({ status: 'False', message: 'schedule.endTime passed' });
  });

  it('moves lastTransitionTime only when a condition changes status', () => {
    const slices = [slice(10, { sent: 3 }, { messagesPerMinute: 5 })];
    const first = campaignProgress(input({ slices }));
    const later = new Date('2026-11-28T12:05:00Z');
    const same = campaignProgress(input({ campaign: campaign(first), slices, now: later }));
    expect(same.conditions?.map((c) => c.lastTransitionTime)).toEqual(
      first.conditions?.map((c) => c.lastTransitionTime),
    );
    const paused = campaignProgress(
      input({ campaign: campaign(first), slices, now: later, hold: suspended }),
    );
    expect(condition(paused, 'Paused')?.lastTransitionTime).toBe('2026-11-28T12:05:00Z');
    expect(condition(paused, 'Ready')?.lastTransitionTime).toBe('2026-11-28T12:05:00Z');
    // Completed stayed False: its time stays.
    expect(condition(paused, 'Completed')?.lastTransitionTime).toBe('2026-11-28T12:00:00Z');
  });
});

describe('recentFailureRatio', () => {
  const history = [
    { sent: 0, failed: 0 },
    { sent: 90, failed: 0 },
    { sent: 95, failed: 5 },
    { sent: 96, failed: 14 },
  ];
  it.each<[string, Array<{ sent: number; failed: number }>, number, number | undefined]>([
    ['no history', [], 10, undefined],
    ['one sample', [{ sent: 50, failed: 50 }], 10, undefined],
    ['fewer outcomes than the window', history.slice(0, 2).map((h) => ({ ...h, sent: 5 })), 10, undefined],
    // The latest sample back to the nearest one at least 10 outcomes earlier: 1 sent, 9 failed.
    ['the nearest window that is full', history, 10, 0.9],
    ['exactly the window', history, 110, 14 / 110],
    ['more than the history holds', history, 111, undefined],
    [
      'a clean run',
      [
        { sent: 0, failed: 0 },
        { sent: 100, failed: 0 },
      ],
      100,
      0,
    ],
  ])('%s', (_, h, window, ratio) => {
    const got = recentFailureRatio(h, window);
    if (ratio === undefined) expect(got).toBeUndefined();
    else expect(got).toBeCloseTo(ratio);
  });

  it('forgets failures older than the window', () => {
    // 50 failures long ago, then 200 clean sends.
    const h = [
      { sent: 0, failed: 0 },
      { sent: 0, failed: 50 },
      { sent: 100, failed: 50 },
      { sent: 200, failed: 50 },
    ];
    expect(recentFailureRatio(h, 100)).toBe(0);
    expect(recentFailureRatio(h, 200)).toBe(0);
    expect(recentFailureRatio(h, 250)).toBeCloseTo(50 / 250);
  });
});
