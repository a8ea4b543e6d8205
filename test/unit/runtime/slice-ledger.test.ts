/**
 * One slice's ledger as a sender works it (runtime/sending/slice-ledger.ts): reserve (InFlight, the durable
 * intent), then the outcome of the send, or after a restart the resolution of a lost one. What the campaign
 * sender relies on: a recipient is handed out only while Pending and due; once InFlight it is never handed
 * out again until its outcome is known; what may have been delivered is never made Pending again.
 */
import {
  RecipientState,
  encodeRecipients,
  type CampaignSlice,
  type CampaignSliceStatus,
  type LedgerEntry,
  type RecipientStateValue,
} from '../../../crds/index.js';
import type { SendVerdict } from '../../../runtime/sending/classify.js';
import { IN_DOUBT_OTHER_SENDER, SliceLedger } from '../../../runtime/sending/slice-ledger.js';

const NOW = 1_800_000_000;

function sliceOf(count: number, status?: CampaignSliceStatus): CampaignSlice {
  return {
    apiVersion: 'telegram.tdlib-operator.dev/v1alpha1',
    kind: 'CampaignSlice',
    metadata: { name: 'spring-00000', namespace: 'n' },
    spec: {
      campaign: 'spring',
      index: 0,
      recipients: encodeRecipients(Array.from({ length: count }, (_, i) => `u:user_${i}`)),
      count,
      sender: 'alice',
      assignment: 1,
      messagesPerMinute: 20,
    },
    ...(status ? { status } : {}),
  };
}

/** The ledger as the next process (or another sender) reads it back from the slice status. */
function reload(ledger: SliceLedger, sender: string, count = ledger.ledger.size): SliceLedger {
  return new SliceLedger(sliceOf(count, ledger.statusFields()), sender);
}

const stateOf = (l: SliceLedger, i: number): RecipientStateValue => l.ledger.get(i).state;
const reasonOf = (l: SliceLedger, i: number): string | undefined => l.ledger.reasons[l.ledger.get(i).reason];
const senderOf = (l: SliceLedger, i: number): string | undefined => l.ledger.senders[l.ledger.get(i).sender];

describe('SliceLedger: sending', () => {
  it('reserves Pending recipients in order, as InFlight intents of this sender', () => {
    const l = new SliceLedger(sliceOf(5), 'alice');
    expect(l.pendingInfo(NOW)).toEqual({ ready: 5, waiting: 0, nextAt: undefined });
    expect(l.reserve(3, NOW)).toEqual([0, 1, 2]);
    for (const i of [0, 1, 2])
      expect(l.ledger.get(i)).toEqual({
        state: RecipientState.InFlight,
        reason: 0,
        attempts: 1,
        sender: l.me,
        at: NOW,
      });
    expect(senderOf(l, 0)).toBe('alice');
    expect(l.mineInFlight()).toEqual([0, 1, 2]);
    expect(l.pendingInfo(NOW)).toEqual({ ready: 2, waiting: 0, nextAt: undefined });
    expect(l.statusFields().counts).toEqual({ pending: 2, inFlight: 3, sent: 0, failed: 0, inDoubt: 0 });
    // Asking for more than is left hands out what is left, and then nothing.
    expect(l.reserve(10, NOW)).toEqual([3, 4]);
    expect(l.reserve(10, NOW)).toEqual([]);
  });

  it('never hands out an InFlight recipient again, in this process or after a restart, until resolved', () => {
    const l = new SliceLedger(sliceOf(4), 'alice');
    const first = l.reserve(2, NOW);
    const later = NOW + 3600;
    expect(l.reserve(10, later)).toEqual([2, 3]);
    expect(l.reserve(10, later)).toEqual([]);
    // The sends' outcomes were lost with the process: the next one sees them InFlight, its own, unresolved.
    const restarted = reload(l, 'alice');
    expect(restarted.mineInFlight()).toEqual([0, 1, 2, 3]);
    expect(restarted.reserve(10, later + 3600)).toEqual([]);
    expect(restarted.pendingInfo(later + 3600)).toEqual({ ready: 0, waiting: 0, nextAt: undefined });
    // Resolved as surely not delivered: Pending again, and only then handed out again.
    restarted.resolved(first[0] ?? -1, 'notSent', later + 3600);
    expect(restarted.reserve(10, later + 3600)).toEqual([0]);
  });

  it('skips the recipients the caller still has in flight', () => {
    const l = new SliceLedger(sliceOf(4), 'alice');
    expect(l.reserve(2, NOW, new Set([0, 2]))).toEqual([1, 3]);
  });

  it('records a delivery with its sender and time, and never hands the recipient out again', () => {
    const l = new SliceLedger(sliceOf(2), 'alice');
    l.reserve(1, NOW);
    l.sent(0, NOW + 2);
    expect(l.ledger.get(0)).toMatchObject({
      state: RecipientState.Sent,
      reason: 0,
      attempts: 1,
      at: NOW + 2,
    });
    expect(senderOf(l, 0)).toBe('alice');
    expect(l.mineInFlight()).toEqual([]);
    expect(l.reserve(10, NOW + 10)).toEqual([1]);
    expect(l.statusFields()).toMatchObject({
      counts: { pending: 0, inFlight: 1, sent: 1, failed: 0, inDoubt: 0 },
      sentBySender: { alice: 1 },
    });
    expect(l.statusFields().failures ?? {}).toEqual({});
  });

  it.each<
    [
      SendVerdict,
      Omit<Partial<LedgerEntry>, 'reason'> & { reason: string },
      handedOutAgainAt: number | undefined,
    ]
  >([
    // Transient: Pending again, due after the delay (rounded up to whole seconds), the attempt counted.
    [
      { kind: 'retry', reason: 'FloodWait', afterMs: 7000 },
      { state: RecipientState.Pending, attempts: 1, at: NOW + 7, reason: 'FloodWait' },
      NOW + 7,
    ],
    [
      { kind: 'retry', reason: 'Error400', afterMs: 1500 },
      { state: RecipientState.Pending, attempts: 1, at: NOW + 2, reason: 'Error400' },
      NOW + 2,
    ],
    // The sender's fault: the recipient goes back untouched, due now, its attempt not counted.
    [
      { kind: 'parkSender', reason: 'PeerFlood' },
      { state: RecipientState.Pending, attempts: 0, at: 0, reason: 'PeerFlood' },
      NOW,
    ],
    // Final, and may have been delivered: never handed out again.
    [
      { kind: 'failed', reason: 'UserDeleted' },
      { state: RecipientState.Failed, attempts: 1, at: NOW, reason: 'UserDeleted' },
      undefined,
    ],
    [
      { kind: 'failedForSender', reason: 'PrivacyRestricted' },
      { state: RecipientState.Failed, attempts: 1, at: NOW, reason: 'PrivacyRestricted' },
      undefined,
    ],
    [
      { kind: 'inDoubt', reason: 'NoAnswer' },
      { state: RecipientState.InDoubt, attempts: 1, at: NOW, reason: 'NoAnswer' },
      undefined,
    ],
  ])('applies the verdict %j', (verdict, expected, dueAt) => {
    const l = new SliceLedger(sliceOf(1), 'alice');
    l.reserve(1, NOW);
    expect(l.failed(0, verdict, NOW)).toBe(verdict);
    const { reason, ...rest } = expected;
    expect(l.ledger.get(0)).toMatchObject(rest);
    expect(reasonOf(l, 0)).toBe(reason);
    expect(l.mineInFlight()).toEqual([]);
    if (dueAt === undefined) {
      expect(l.reserve(1, NOW + 86_400)).toEqual([]);
      expect(l.pendingInfo(NOW + 86_400)).toEqual({ ready: 0, waiting: 0, nextAt: undefined });
    } else {
      if (dueAt > NOW) {
        expect(l.pendingInfo(dueAt - 1)).toEqual({ ready: 0, waiting: 1, nextAt: dueAt });
        expect(l.reserve(1, dueAt - 1)).toEqual([]);
      }
      expect(l.pendingInfo(dueAt)).toEqual({ ready: 1, waiting: 0, nextAt: undefined });
      expect(l.reserve(1, dueAt)).toEqual([0]);
    }
  });

  it('counts attempts across retries, so the retry budget runs out', () => {
    const l = new SliceLedger(sliceOf(1), 'alice');
    let now = NOW;
    for (let attempt = 1; attempt <= 3; attempt++) {
      expect(l.reserve(1, now)).toEqual([0]);
      expect(l.ledger.get(0).attempts).toBe(attempt);
      l.failed(0, { kind: 'retry', reason: 'Error400', afterMs: 30_000 }, now);
      now += 30;
    }
    // A parked sender's attempt does not count.
    l.reserve(1, now);
    l.failed(0, { kind: 'parkSender', reason: 'PeerFlood' }, now);
    expect(l.ledger.get(0).attempts).toBe(3);
  });

  it('puts an unwritten reservation back as it was, and touches nothing else', () => {
    const l = new SliceLedger(sliceOf(4), 'alice');
    l.reserve(1, NOW);
    l.sent(0, NOW);
    l.reserve(1, NOW);
    l.failed(1, { kind: 'inDoubt', reason: 'NoAnswer' }, NOW);
    const batch = l.reserve(2, NOW + 5);
    expect(batch).toEqual([2, 3]);
    l.unreserve([0, 1, ...batch]);
    expect(l.ledger.get(2)).toEqual({
      state: RecipientState.Pending,
      reason: 0,
      attempts: 0,
      sender: l.me,
      at: 0,
    });
    expect(l.ledger.get(3)).toEqual({
      state: RecipientState.Pending,
      reason: 0,
      attempts: 0,
      sender: l.me,
      at: 0,
    });
    expect(stateOf(l, 0)).toBe(RecipientState.Sent);
    expect(stateOf(l, 1)).toBe(RecipientState.InDoubt);
    expect(l.reserve(10, NOW + 5)).toEqual([2, 3]);
  });
});

describe('SliceLedger: lost outcomes and other senders', () => {
  it.each<
    [
      outcome: 'sent' | 'notSent' | 'inDoubt',
      reason: string | undefined,
      state: RecipientStateValue,
      label: string | undefined,
    ]
  >([
    ['sent', undefined, RecipientState.Sent, ''],
    ['notSent', undefined, RecipientState.Pending, ''],
    ['inDoubt', undefined, RecipientState.InDoubt, 'OutcomeLost'],
    ['inDoubt', 'BotCannotCheckHistory', RecipientState.InDoubt, 'BotCannotCheckHistory'],
  ])('resolves a lost send as %s (%s)', (outcome, reason, state, label) => {
    const before = new SliceLedger(sliceOf(2), 'alice');
    before.reserve(2, NOW);
    const l = reload(before, 'alice');
    expect(l.mineInFlight()).toEqual([0, 1]);
    l.resolved(0, outcome, NOW + 60, reason);
    expect(stateOf(l, 0)).toBe(state);
    expect(reasonOf(l, 0)).toBe(label);
    expect(l.mineInFlight()).toEqual([1]);
    // Only a recipient surely not delivered can be handed out again (the attempt that was lost still counts).
    expect(l.reserve(2, NOW + 60)).toEqual(outcome === 'notSent' ? [0] : []);
    if (outcome === 'notSent') expect(l.ledger.get(0).attempts).toBe(2);
    if (outcome === 'sent') expect(l.statusFields().sentBySender).toEqual({ alice: 1 });
  });

  it('never sends to what another sender left in flight: it is in doubt', () => {
    const bob = new SliceLedger(sliceOf(4), 'bob');
    bob.reserve(2, NOW);
    bob.sent(0, NOW + 1);
    const status = bob.statusFields();

    const alice = new SliceLedger(sliceOf(4, status), 'alice');
    expect(alice.mineInFlight()).toEqual([]);
    expect(stateOf(alice, 1)).toBe(RecipientState.InDoubt);
    expect(reasonOf(alice, 1)).toBe(IN_DOUBT_OTHER_SENDER);
    expect(senderOf(alice, 1)).toBe('bob');
    expect(stateOf(alice, 0)).toBe(RecipientState.Sent);
    expect(alice.reserve(10, NOW + 60)).toEqual([2, 3]);
    expect(alice.statusFields()).toMatchObject({
      counts: { pending: 0, inFlight: 2, sent: 1, failed: 0, inDoubt: 1 },
      senders: ['bob', 'alice'],
      sentBySender: { bob: 1 },
    });

    // Bob reading the same status still owns its InFlight recipient (alice was only reading).
    const bobAgain = new SliceLedger(sliceOf(4, status), 'bob');
    expect(bobAgain.mineInFlight()).toEqual([1]);
    // And once alice's writes are what bob reads, its old intent stays in doubt, alice's are alice's.
    const bobAfter = reload(alice, 'bob');
    expect(bobAfter.mineInFlight()).toEqual([]);
    expect(stateOf(bobAfter, 2)).toBe(RecipientState.InDoubt);
    expect(bobAfter.reserve(10, NOW + 120)).toEqual([]);
  });

  it('finds its own intents by name whatever its place in the sender table', () => {
    const l = new SliceLedger(sliceOf(3, { senders: ['carol', 'bob', 'alice'] }), 'alice');
    expect(l.me).toBe(2);
    l.reserve(1, NOW);
    const again = reload(l, 'alice');
    expect(again.ledger.senders).toEqual(['carol', 'bob', 'alice']);
    expect(again.mineInFlight()).toEqual([0]);
  });
});

describe('SliceLedger: status', () => {
  it('reports ready and waiting recipients, and when the earliest waiting one is due', () => {
    const l = new SliceLedger(sliceOf(6), 'alice');
    l.reserve(6, NOW);
    l.failed(0, { kind: 'retry', reason: 'FloodWait', afterMs: 30_000 }, NOW);
    l.failed(1, { kind: 'retry', reason: 'FloodWait', afterMs: 10_000 }, NOW);
    l.failed(2, { kind: 'parkSender', reason: 'PeerFlood' }, NOW);
    l.sent(3, NOW);
    l.failed(4, { kind: 'failed', reason: 'UserDeleted' }, NOW);
    // 5 stays InFlight: neither ready nor waiting.
    expect(l.pendingInfo(NOW)).toEqual({ ready: 1, waiting: 2, nextAt: NOW + 10 });
    expect(l.pendingInfo(NOW + 10)).toEqual({ ready: 2, waiting: 1, nextAt: NOW + 30 });
    expect(l.pendingInfo(NOW + 30)).toEqual({ ready: 3, waiting: 0, nextAt: undefined });
  });

  it('retries the failed ones with a fresh budget, leaving delivered and in-doubt ones alone', () => {
    const l = new SliceLedger(sliceOf(5), 'alice');
    l.reserve(5, NOW);
    l.failed(0, { kind: 'failed', reason: 'UserDeleted' }, NOW);
    l.failed(1, { kind: 'failedForSender', reason: 'PrivacyRestricted' }, NOW);
    l.sent(2, NOW);
    l.failed(3, { kind: 'inDoubt', reason: 'NoAnswer' }, NOW);
    expect(l.retryFailed()).toBe(2);
    expect(l.ledger.get(0)).toMatchObject({ state: RecipientState.Pending, attempts: 0, at: 0 });
    expect(l.ledger.get(1)).toMatchObject({ state: RecipientState.Pending, attempts: 0, at: 0 });
    expect(stateOf(l, 2)).toBe(RecipientState.Sent);
    expect(stateOf(l, 3)).toBe(RecipientState.InDoubt);
    expect(stateOf(l, 4)).toBe(RecipientState.InFlight);
    expect(l.reserve(10, NOW + 1)).toEqual([0, 1]);
    expect(l.retryFailed()).toBe(0);
  });

  it('writes a status another process reads back to the same ledger, with its totals', () => {
    const l = new SliceLedger(sliceOf(6), 'alice');
    l.reserve(5, NOW);
    l.sent(0, NOW + 1);
    l.sent(1, NOW + 1);
    l.failed(2, { kind: 'failed', reason: 'UserDeleted' }, NOW + 1);
    l.failed(3, { kind: 'failedForSender', reason: 'PrivacyRestricted' }, NOW + 1);
    l.failed(4, { kind: 'inDoubt', reason: 'NoAnswer' }, NOW + 1);
    const status = l.statusFields();
    expect(status).toMatchObject({
      counts: { pending: 1, inFlight: 0, sent: 2, failed: 2, inDoubt: 1 },
      failures: { UserDeleted: 1, PrivacyRestricted: 1 },
      sentBySender: { alice: 2 },
      senders: ['alice'],
    });
    expect(status.reasons?.[0]).toBe('');
    const back = new SliceLedger(sliceOf(6, status), 'alice');
    for (let i = 0; i < 6; i++) expect(back.ledger.get(i)).toEqual(l.ledger.get(i));
    expect(back.statusFields()).toEqual(status);
  });

  it('treats recipients added to the slice after its ledger was written as Pending', () => {
    const l = new SliceLedger(sliceOf(2), 'alice');
    l.reserve(2, NOW);
    l.sent(0, NOW);
    l.sent(1, NOW);
    const grown = new SliceLedger(sliceOf(4, l.statusFields()), 'alice');
    expect(grown.statusFields().counts).toEqual({ pending: 2, inFlight: 0, sent: 2, failed: 0, inDoubt: 0 });
    expect(grown.reserve(10, NOW)).toEqual([2, 3]);
  });
});

describe('SliceLedger: at most once', () => {
  /** Deterministic pseudo-random numbers. */
  function rng(seed: number): (n: number) => number {
    let s = seed;
    return (n) => {
      s = (s * 1103515245 + 12345) % 2 ** 31;
      return s % n;
    };
  }

  type Model = 'pending' | 'inFlight' | 'delivered' | 'failed' | 'inDoubt';

  it.each([1, 2, 3, 4, 5, 6, 7, 8])(
    'over random sends, failures, restarts and takeovers (seed %i), hands out nothing that may have been sent',
    (seed) => {
      const random = rng(seed);
      const count = 30;
      const senders = ['alice', 'bob', 'carol'];
      let who = 0;
      let l = new SliceLedger(sliceOf(count), senders[who] ?? '');
      const model: Model[] = Array.from({ length: count }, () => 'pending');
      const deliveries = new Array<number>(count).fill(0);
      /** What this process has in flight (lost on a restart). */
      let inFlight = new Set<number>();
      let now = NOW;

      const outcome = (i: number): void => {
        inFlight.delete(i);
        const verdicts: Array<SendVerdict | 'sent'> = [
          'sent',
          'sent',
          { kind: 'retry', reason: 'FloodWait', afterMs: random(5000) },
          { kind: 'parkSender', reason: 'PeerFlood' },
          { kind: 'failed', reason: 'UserDeleted' },
          { kind: 'failedForSender', reason: 'PrivacyRestricted' },
          { kind: 'inDoubt', reason: 'NoAnswer' },
        ];
        const v = verdicts[random(verdicts.length)] ?? 'sent';
        if (v === 'sent') {
          l.sent(i, now);
          model[i] = 'delivered';
          deliveries[i] = (deliveries[i] ?? 0) + 1;
          return;
        }
        l.failed(i, v, now);
        model[i] =
          v.kind === 'retry' || v.kind === 'parkSender'
            ? 'pending'
            : v.kind === 'inDoubt'
              ? 'inDoubt'
              : 'failed';
      };

      for (let step = 0; step < 400; step++) {
        now += random(3);
        const op = random(10);
        if (op < 4) {
          const batch = l.reserve(1 + random(4), now, inFlight);
          for (const i of batch) {
            expect(model[i]).toBe('pending');
            model[i] = 'inFlight';
            inFlight.add(i);
          }
        } else if (op < 8) {
          const i = [...inFlight][random(Math.max(1, inFlight.size))];
          if (i !== undefined) outcome(i);
        } else if (op < 9) {
          // The process restarts: what it had in flight is lost and resolved first.
          l = reload(l, senders[who] ?? '');
          inFlight = new Set();
          const lost = l.mineInFlight();
          expect(lost.sort((a, b) => a - b)).toEqual(model.flatMap((m, i) => (m === 'inFlight' ? [i] : [])));
          for (const i of lost) {
            const resolution = (['sent', 'notSent', 'inDoubt'] as const)[random(3)] ?? 'inDoubt';
            l.resolved(i, resolution, now);
            if (resolution === 'notSent') model[i] = 'pending';
            else if (resolution === 'inDoubt') model[i] = 'inDoubt';
            else {
              // History says it arrived: the one delivery, recorded now.
              model[i] = 'delivered';
              deliveries[i] = (deliveries[i] ?? 0) + 1;
            }
          }
        } else {
          // The sender is gone (deleted): the next one takes the slice over as it was last written.
          who = (who + 1) % senders.length;
          l = reload(l, senders[who] ?? '');
          inFlight = new Set();
          for (let i = 0; i < count; i++) if (model[i] === 'inFlight') model[i] = 'inDoubt';
          expect(l.mineInFlight()).toEqual([]);
        }
        const counts = l.statusFields().counts;
        expect(counts).toEqual({
          pending: model.filter((m) => m === 'pending').length,
          inFlight: model.filter((m) => m === 'inFlight').length,
          sent: model.filter((m) => m === 'delivered').length,
          failed: model.filter((m) => m === 'failed').length,
          inDoubt: model.filter((m) => m === 'inDoubt').length,
        });
      }
      expect(Math.max(...deliveries)).toBeLessThanOrEqual(1);
    },
  );
});
