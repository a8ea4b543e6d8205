/**
 * The operator's campaign decisions, as pure functions: who the recipients are (normalized, deduplicated,
 * sliced), which sender sends which slice as senders come and go, and what the status says.
 */
import {
  Ledger,
  RecipientState,
  encodeRecipients,
  type Campaign,
  type CampaignSlice,
} from '../../../crds/index.js';
import { assignSlices, type SenderView, type SliceView } from '../../../operator/campaign/assign.js';
import { newSlices, planRecipients, sliceName, sliceSizeFor } from '../../../operator/campaign/plan.js';
import { campaignProgress, recentFailureRatio } from '../../../operator/campaign/progress.js';

describe('planRecipients', () => {
  it('normalizes every list into one set, counts duplicates across lists, and reports unreadable ConfigMaps', () => {
    const plan = planRecipients(
      {
        usernames: ['@Alice_1', 'bob_2222'],
        phoneNumbers: ['+15550100001'],
        userIds: [42],
        chats: ['@News_Channel'],
        configMapRefs: [{ name: 'list' }, { name: 'gone', key: 'r' }],
      },
      (name, key) =>
        name === 'list' && key === 'recipients'
          ? [
              'alice_1',
              '# a comment',
              '',
              '+15550100001',
              '42',
              'chat:@news_channel',
              'carol_33',
              'not a recipient!',
            ].join('\n')
          : undefined,
    );
    expect(plan.keys).toEqual([
      'u:alice_1',
      'u:bob_2222',
      'p:+15550100001',
      'i:42',
      'c:news_channel',
      'u:carol_33',
      'x:not a recipient!',
    ]);
    expect(plan.duplicates).toBe(4);
    expect(plan.missing).toEqual(['gone/r']);
  });

  it('slices new recipients only, after the existing slices, in slice-size pieces', () => {
    const keys = Array.from({ length: 2500 }, (_, i) => `u:user_${i}`);
    const first = newSlices(keys.slice(0, 1500), new Set(), 0, 1000);
    expect(first.map((s) => [s.index, s.keys.length])).toEqual([
      [0, 1000],
      [1, 500],
    ]);
    const sliced = new Set(first.flatMap((s) => s.keys));
    const added = newSlices(keys, sliced, 2, 1000);
    expect(added.map((s) => [s.index, s.keys.length, s.keys[0]])).toEqual([[2, 1000, 'u:user_1500']]);
    expect(sliceName('spring-sale', 7)).toBe('spring-sale-00007');
  });

  it('cuts slices small enough that every sender gets several, and never larger than 1,000', () => {
    expect(sliceSizeFor(1000, 3)).toBe(84);
    expect(sliceSizeFor(1_000_000, 10)).toBe(1000);
    expect(sliceSizeFor(10, 3)).toBe(50);
  });
});

describe('assignSlices', () => {
  const slice = (name: string, index: number, over: Partial<SliceView> = {}): SliceView => ({
    name,
    index,
    assignment: 0,
    releaseRequested: false,
    released: false,
    remaining: 100,
    ...over,
  });
  const sender = (name: string, eligible = true, exists = true): SenderView => ({ name, eligible, exists });

  it('spreads unassigned slices over the eligible senders by remaining work', () => {
    const out = assignSlices([slice('s0', 0), slice('s1', 1), slice('s2', 2)], [sender('a'), sender('b')]);
    expect(out.map((o) => [o.name, o.sender, o.assignment])).toEqual([
      ['s0', 'a', 1],
      ['s1', 'b', 1],
      ['s2', 'a', 1],
    ]);
  });

  it('asks a sender that cannot send to release its slice, and moves it only once it did', () => {
    const held = slice('s0', 0, { sender: 'a', assignment: 3 });
    const asked = assignSlices([held], [sender('a', false), sender('b')]);
    expect(asked[0]).toEqual({ name: 's0', sender: 'a', assignment: 3, releaseRequested: true });
    const released = assignSlices(
      [{ ...held, releaseRequested: true, released: true }],
      [sender('a', false), sender('b')],
    );
    expect(released[0]).toEqual({ name: 's0', sender: 'b', assignment: 4, releaseRequested: false });
  });

  it('moves the slices of a deleted sender without waiting for a release it can never give', () => {
    const out = assignSlices(
      [slice('s0', 0, { sender: 'gone', assignment: 1 })],
      [sender('gone', false, false), sender('b')],
    );
    expect(out[0]).toMatchObject({ sender: 'b', assignment: 2 });
  });

  it('keeps a done slice where it is, and leaves work unassigned when nobody can send', () => {
    const out = assignSlices(
      [slice('done', 0, { sender: 'a', assignment: 1, remaining: 0 }), slice('todo', 1)],
      [sender('a', false)],
    );
    expect(out).toEqual([
      { name: 'done', sender: 'a', assignment: 1, releaseRequested: false },
      { name: 'todo', sender: undefined, assignment: 0, releaseRequested: false },
    ]);
  });

  it('lets a sender that became Ready take a share: the busiest sender releases one slice', () => {
    const out = assignSlices(
      [slice('s0', 0, { sender: 'a', assignment: 1 }), slice('s1', 1, { sender: 'a', assignment: 1 })],
      [sender('a'), sender('b')],
    );
    expect(out.map((o) => [o.name, o.sender, o.releaseRequested])).toEqual([
      ['s0', 'a', false],
      ['s1', 'a', true],
    ]);
  });
});

describe('campaignProgress', () => {
  const campaign = (
    status: Campaign['status'] = undefined,
    spec: Partial<Campaign['spec']> = {},
  ): Campaign => ({
    apiVersion: 'telegram.tdlib-operator.dev/v1alpha1',
    kind: 'Campaign',
    metadata: { name: 'c', namespace: 'n', generation: 1 },
    spec: {
      senders: { names: ['a'] },
      message: { text: 'hi' },
      recipients: { usernames: ['alice_1'] },
      ...spec,
    },
    status,
  });
  const slice = (
    count: number,
    states: number[],
    over: Partial<CampaignSlice['status']> = {},
  ): CampaignSlice => {
    const ledger = Ledger.empty(count);
    states.forEach((state, i) =>
      ledger.set(i, { state: state as 0, reason: 0, attempts: 1, sender: 0, at: 1 }),
    );
    return {
      apiVersion: 'telegram.tdlib-operator.dev/v1alpha1',
      kind: 'CampaignSlice',
      metadata: { name: 's' },
      spec: {
        campaign: 'c',
        index: 0,
        recipients: encodeRecipients([]),
        count,
        assignment: 1,
        messagesPerMinute: 10,
        sender: 'a',
      },
      status: { counts: ledger.counts(), messagesPerMinute: 10, ...over },
    };
  };
  const now = new Date('2026-11-28T12:00:00Z');
  const base = {
    duplicates: 2,
    planning: false,
    hold: undefined,
    senders: [{ name: 'a', sent: 0, state: 'Sending' as const }],
    now,
  };

  it('counts from the slices and estimates completion from the rate', () => {
    const s = slice(
      10,
      [RecipientState.Sent, RecipientState.Sent, RecipientState.Failed, RecipientState.InFlight],
      {
        sentBySender: { a: 2 },
        failures: { UserDeactivated: 1 },
      },
    );
    const status = campaignProgress({ ...base, campaign: campaign(), slices: [s] });
    expect(status).toMatchObject({
      phase: 'Running',
      total: 10,
      duplicates: 2,
      sent: 2,
      failed: 1,
      inFlight: 1,
      pending: 6,
      failures: { UserDeactivated: 1 },
      senders: [{ name: 'a', sent: 2, state: 'Sending' }],
      messagesPerMinute: 10,
      estimatedCompletionTime: '2026-11-28T12:00:36Z',
      startedAt: '2026-11-28T12:00:00Z',
    });
    expect(status.conditions?.find((c) => c.type === 'Progressing')?.status).toBe('True');
  });

  it('says Paused only once nothing is in flight and every slice acknowledged the pause', () => {
    const hold = { reason: 'Suspended' as const, message: 'spec.suspend is true' };
    const busy = slice(3, [RecipientState.Sent, RecipientState.InFlight]);
    expect(campaignProgress({ ...base, campaign: campaign(), slices: [busy], hold }).phase).toBe('Running');
    const quiet = slice(3, [RecipientState.Sent], { paused: true });
    const paused = campaignProgress({ ...base, campaign: campaign(), slices: [quiet], hold });
    expect(paused.phase).toBe('Paused');
    expect(paused.conditions?.find((c) => c.type === 'Paused')).toMatchObject({
      status: 'True',
      reason: 'Suspended',
    });
  });

  it('completes when every recipient is final, and keeps the first completion time', () => {
    const done = slice(3, [RecipientState.Sent, RecipientState.Failed, RecipientState.InDoubt]);
    const first = campaignProgress({ ...base, campaign: campaign(), slices: [done] });
    expect(first).toMatchObject({ phase: 'Completed', completedAt: '2026-11-28T12:00:00Z', inDoubt: 1 });
    const later = campaignProgress({
      ...base,
      now: new Date('2026-11-28T13:00:00Z'),
      campaign: campaign(first),
      slices: [done],
    });
    expect(later.completedAt).toBe('2026-11-28T12:00:00Z');
    expect(later.conditions?.find((c) => c.type === 'Completed')?.status).toBe('True');
  });

  it('fails a schedule that could only start too late, and is Scheduled before its window', () => {
    const fresh = slice(2, []);
    expect(
      campaignProgress({
        ...base,
        campaign: campaign(),
        slices: [fresh],
        ended: { reason: 'TooLate', message: 'late' },
      }).phase,
    ).toBe('Failed');
    expect(
      campaignProgress({
        ...base,
        campaign: campaign(),
        slices: [fresh],
        hold: { reason: 'OutsideWindow', message: 'opens at 09:00' },
      }).phase,
    ).toBe('Scheduled');
  });
});

describe('recentFailureRatio', () => {
  it('takes the ratio over at least the window of latest outcomes, and says nothing before that many', () => {
    expect(
      recentFailureRatio(
        [
          { sent: 0, failed: 0 },
          { sent: 5, failed: 0 },
        ],
        10,
      ),
    ).toBeUndefined();
    const history = [
      { sent: 0, failed: 0 },
      { sent: 90, failed: 0 },
      { sent: 95, failed: 5 },
      { sent: 96, failed: 14 },
    ];
    // The last 10+ outcomes: from the sample with 100 outcomes: 1 sent, 9 failed.
    expect(recentFailureRatio(history, 10)).toBeCloseTo(0.9);
    expect(recentFailureRatio(history, 100)).toBeCloseTo(14 / 110);
  });
});
