/**
 * The compact encodings a CampaignSlice carries (crds/campaign-ledger.ts): the ledger (8 bytes per recipient,
 * gzip, base64) with its reason and sender tables, and the recipient list. The operator, the runtime and the
 * kubectl plugin all decode what another process encoded, so the round trip is the contract.
 */
import { gunzipSync } from 'node:zlib';
import {
  Ledger,
  RECIPIENT_STATE_NAMES,
  RecipientState,
  campaignSliceStatus,
  decodeRecipients,
  encodeRecipients,
  parseRecipientKey,
  parseRecipientLine,
  recipientKey,
  type LedgerEntry,
  type Recipient,
} from '../../../crds/index.js';

const entry = (over: Partial<LedgerEntry> = {}): LedgerEntry => ({
  state: RecipientState.Pending,
  reason: 0,
  attempts: 0,
  sender: 0,
  at: 0,
  ...over,
});

const entries = (ledger: Ledger): LedgerEntry[] =>
  Array.from({ length: ledger.size }, (_, i) => ledger.get(i));

/** The raw bytes an encoded ledger holds. */
const rawBytes = (text: string): Buffer => gunzipSync(Buffer.from(text, 'base64'));

// One entry of every state, with every field away from its zero value (and at the top of its range).
const varied: LedgerEntry[] = [
  entry(),
  entry({ state: RecipientState.Pending, reason: 1, attempts: 2, sender: 0, at: 1_800_000_030 }),
  entry({ state: RecipientState.InFlight, attempts: 1, sender: 1, at: 1_800_000_000 }),
  entry({ state: RecipientState.Sent, attempts: 3, sender: 2, at: 1_800_000_100 }),
  entry({ state: RecipientState.Failed, reason: 2, attempts: 255, sender: 1, at: 0xffffffff }),
  entry({ state: RecipientState.InDoubt, reason: 3, attempts: 1, sender: 254, at: 1 }),
];

describe('Ledger encode and decode', () => {
  it('round-trips every field of every entry, and the tables, through the status text', () => {
    const ledger = Ledger.decode(
      undefined,
      varied.length,
      ['', 'FloodWait', 'UserDeleted', 'NoAnswer'],
      ['alice', 'bob', 'carol'],
    );
    varied.forEach((e, i) => ledger.set(i, e));
    const status = { ledger: ledger.encode(), reasons: ledger.reasons, senders: ledger.senders };

    const back = Ledger.decode(status.ledger, varied.length, status.reasons, status.senders);
    expect(entries(back)).toEqual(varied);
    expect(back.reasons).toEqual(['', 'FloodWait', 'UserDeleted', 'NoAnswer']);
    expect(back.senders).toEqual(['alice', 'bob', 'carol']);
    expect(back.encode()).toBe(status.ledger);
    varied.forEach((e, i) => expect(back.state(i)).toBe(e.state));
    // The report names a state by its value.
    RECIPIENT_STATE_NAMES.forEach((name, value) => expect(RecipientState[name]).toBe(value));
  });

  it('lays out 8 bytes per recipient: state, reason, attempts, sender, time (big-endian Unix seconds)', () => {
    const ledger = Ledger.empty(2);
    ledger.set(1, entry({ state: RecipientState.Failed, reason: 7, attempts: 2, sender: 5, at: 0x01020304 }));
    expect([...rawBytes(ledger.encode())]).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 3, 7, 2, 5, 1, 2, 3, 4]);
  });

  it.each([
    ['no ledger yet', undefined],
    ['an empty string', ''],
  ])('decodes %s as every recipient Pending, with an empty reason table', (_, text) => {
    const ledger = Ledger.decode(text, 4);
    expect(ledger.size).toBe(4);
    expect(entries(ledger)).toEqual(Array.from({ length: 4 }, () => entry()));
    expect(ledger.reasons).toEqual(['']);
    expect(ledger.senders).toEqual([]);
    expect(ledger.counts()).toEqual({ pending: 4, inFlight: 0, sent: 0, failed: 0, inDoubt: 0 });
  });

  it('pads a ledger written for fewer recipients with Pending ones, keeping what was recorded', () => {
    const before = Ledger.empty(3);
    before.set(0, entry({ state: RecipientState.Sent, attempts: 1, at: 100 }));
    before.set(2, entry({ state: RecipientState.InDoubt, reason: 0, attempts: 1, at: 200 }));
    const grown = Ledger.decode(before.encode(), 5);
    expect(grown.size).toBe(5);
    expect(entries(grown).slice(0, 3)).toEqual(entries(before));
    expect(entries(grown).slice(3)).toEqual([entry(), entry()]);
    expect(grown.counts()).toEqual({ pending: 3, inFlight: 0, sent: 1, failed: 0, inDoubt: 1 });
    expect(rawBytes(grown.encode())).toHaveLength(5 * 8);
  });

  it('keeps only the first `count` entries of a longer ledger', () => {
    const long = Ledger.empty(4);
    for (let i = 0; i < 4; i++) long.set(i, entry({ state: RecipientState.Sent, sender: i, at: i }));
    const short = Ledger.decode(long.encode(), 2);
    expect(short.size).toBe(2);
    expect(entries(short)).toEqual(entries(long).slice(0, 2));
  });

  it.each([0, 1, 1000])('sizes the ledger of %i recipients at 8 bytes each', (count) => {
    expect(Ledger.empty(count).size).toBe(count);
    expect(rawBytes(Ledger.empty(count).encode())).toHaveLength(count * 8);
    expect(Ledger.decode(undefined, count).size).toBe(count);
  });

  it('fits the largest slice, with incompressible entries, in the status field limit', () => {
    const maxLength = campaignSliceStatus.properties.ledger.maxLength ?? 0;
    expect(maxLength).toBeGreaterThan(0);
    // Slices hold at most 1,000 recipients (operator/campaign/plan.ts); pseudo-random entries defeat gzip.
    const ledger = Ledger.empty(1000);
    let seed = 12345;
    const next = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
    for (let i = 0; i < ledger.size; i++)
      ledger.set(i, {
        state: (next() % 5) as LedgerEntry['state'],
        reason: next() % 256,
        attempts: next() % 256,
        sender: next() % 256,
        at: next(),
      });
    const text = ledger.encode();
    expect(text.length).toBeLessThan(maxLength);
    expect(entries(Ledger.decode(text, 1000))).toEqual(entries(ledger));
  });

  it('does not share its tables with the status it was decoded from', () => {
    const reasons = ['', 'FloodWait'];
    const senders = ['alice'];
    const ledger = Ledger.decode(undefined, 1, reasons, senders);
    ledger.reasonIndex('UserDeleted');
    ledger.senderIndex('bob');
    expect(reasons).toEqual(['', 'FloodWait']);
    expect(senders).toEqual(['alice']);
    expect(Ledger.decode(undefined, 1, []).reasons).toEqual(['']);
  });
});

describe('Ledger entries', () => {
  it.each<[string, Partial<LedgerEntry>, Partial<LedgerEntry>]>([
    ['attempts above 255 stay at 255', { attempts: 300 }, { attempts: 255 }],
    ['a negative time is 0', { at: -5 }, { at: 0 }],
    ['a time past 2106 is the largest one', { at: 2 ** 33 }, { at: 0xffffffff }],
    ['a fractional time is whole seconds', { at: 1_800_000_000.9 }, { at: 1_800_000_000 }],
  ])('clamps what does not fit: %s', (_, written, read) => {
    const ledger = Ledger.empty(3);
    ledger.set(1, entry({ state: RecipientState.Sent, ...written }));
    expect(ledger.get(1)).toEqual(entry({ state: RecipientState.Sent, ...read }));
    // The neighbours are untouched.
    expect(ledger.get(0)).toEqual(entry());
    expect(ledger.get(2)).toEqual(entry());
  });

  it('indexes reasons and senders once each, adding new ones at the end', () => {
    const ledger = Ledger.decode(undefined, 1, ['', 'FloodWait'], ['alice']);
    expect(ledger.reasonIndex('')).toBe(0);
    expect(ledger.reasonIndex('FloodWait')).toBe(1);
    expect(ledger.reasonIndex('UserDeleted')).toBe(2);
    expect(ledger.reasonIndex('UserDeleted')).toBe(2);
    expect(ledger.reasons).toEqual(['', 'FloodWait', 'UserDeleted']);
    expect(ledger.senderIndex('alice')).toBe(0);
    expect(ledger.senderIndex('bob')).toBe(1);
    expect(ledger.senderIndex('bob')).toBe(1);
    expect(ledger.senders).toEqual(['alice', 'bob']);
  });

  it('files new reasons under Other once the reason table is full (255 entries)', () => {
    const full = ['', 'Other', ...Array.from({ length: 253 }, (_, i) => `R${i}`)];
    const ledger = Ledger.decode(undefined, 1, full);
    expect(ledger.reasonIndex('SomethingNew')).toBe(1);
    expect(ledger.reasons).toHaveLength(255);
    expect(ledger.reasonIndex('R7')).toBe(9);
  });

  it('keeps the last slot for Other, so a table filled by odd reasons still files new ones', () => {
    const ledger = Ledger.decode(undefined, 1, ['']);
    for (let r = 0; r < 300; r++) ledger.reasonIndex(`R${r}`);
    expect(ledger.reasons).toHaveLength(255);
    expect(ledger.reasons[254]).toBe('Other');
    expect(ledger.reasonIndex('SomethingNew')).toBe(254);
    expect(ledger.reasonIndex('R10')).toBe(11);
  });

  it('files a new reason as no reason when an older full table has no Other', () => {
    const full = ['', ...Array.from({ length: 254 }, (_, i) => `R${i}`)];
    const ledger = Ledger.decode(undefined, 1, full);
    expect(ledger.reasonIndex('SomethingNew')).toBe(0);
    expect(ledger.reasons).toHaveLength(255);
  });

  it('counts states and tallies failures by reason and deliveries by sender name', () => {
    const ledger = Ledger.decode(undefined, 8, ['', 'UserDeleted', 'PrivacyRestricted'], ['alice', 'bob']);
    const states: Array<Partial<LedgerEntry>> = [
      { state: RecipientState.Sent, sender: 0 },
      { state: RecipientState.Sent, sender: 1 },
      { state: RecipientState.Sent, sender: 1 },
      { state: RecipientState.Sent, sender: 9 }, // not in the table
      { state: RecipientState.Failed, reason: 1 },
      { state: RecipientState.Failed, reason: 2 },
      { state: RecipientState.Failed, reason: 0 }, // no reason recorded
      { state: RecipientState.InFlight, sender: 0 },
    ];
    states.forEach((s, i) => ledger.set(i, entry(s)));
    expect(ledger.counts()).toEqual({ pending: 0, inFlight: 1, sent: 4, failed: 3, inDoubt: 0 });
    expect(ledger.tallies()).toEqual({
      failures: { UserDeleted: 1, PrivacyRestricted: 1, Unknown: 1 },
      sentBySender: { alice: 1, bob: 2, unknown: 1 },
    });
  });
});

describe('recipients', () => {
  it('round-trips a recipient list, the empty one included', () => {
    const keys = ['u:alice_1', 'p:+15550100001', 'i:42', 'c:news', 'x:not a recipient!', 'u:ünïcode'];
    expect(decodeRecipients(encodeRecipients(keys))).toEqual(keys);
    expect(decodeRecipients(encodeRecipients([]))).toEqual([]);
    expect(decodeRecipients('')).toEqual([]);
  });

  it.each<[string, Recipient | undefined]>([
    ['@Alice_1', { kind: 'username', value: 'alice_1' }],
    ['  bob_2222  ', { kind: 'username', value: 'bob_2222' }],
    ['+15550100001', { kind: 'phone', value: '+15550100001' }],
    ['42', { kind: 'userId', value: '42' }],
    ['chat:@News_Channel', { kind: 'chat', value: 'news_channel' }],
    ['CHAT: news_channel', { kind: 'chat', value: 'news_channel' }],
    ['chat:@no', { kind: 'invalid', value: 'chat:@no' }],
    ['abc', { kind: 'invalid', value: 'abc' }],
    ['+0123456789', { kind: 'invalid', value: '+0123456789' }],
    ['0042', { kind: 'invalid', value: '0042' }],
    ['', undefined],
    ['   ', undefined],
    ['# a comment', undefined],
  ])('reads the line %j', (line, recipient) => {
    expect(parseRecipientLine(line)).toEqual(recipient);
  });

  it('keeps an unreadable line short, and its key round-trips', () => {
    const long = parseRecipientLine(`!${'x'.repeat(500)}`);
    expect(long?.kind).toBe('invalid');
    expect(long?.value).toHaveLength(128);
    const recipients: Recipient[] = [
      { kind: 'username', value: 'alice_1' },
      { kind: 'phone', value: '+15550100001' },
      { kind: 'userId', value: '42' },
      { kind: 'chat', value: 'news' },
      { kind: 'invalid', value: 'a:b:c' },
    ];
    for (const r of recipients) expect(parseRecipientKey(recipientKey(r))).toEqual(r);
    expect(parseRecipientKey('q:what')).toEqual({ kind: 'invalid', value: 'q:what' });
    expect(parseRecipientKey('u')).toEqual({ kind: 'invalid', value: 'u' });
  });
});
