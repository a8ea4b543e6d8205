/**
 * The rows of `kubectl telegram campaign report`: CSV quoting (RFC 4180), and a decoded ledger turned into
 * rows (recipient as written, sender only once attempted, outcome names, x: lines as Invalid, empty times).
 */
import {
  API_VERSION,
  Ledger,
  RecipientState,
  encodeRecipients,
  type CampaignSlice,
  type LedgerEntry,
} from '../../../crds/index.js';
import {
  CSV_HEADER,
  csvField,
  decodeSlice,
  formatRow,
  recipientText,
  rfc3339,
  sliceRows,
  type ReportRow,
} from '../../../tools/kubectl-telegram/report-format.js';

const entry = (partial: Partial<LedgerEntry>): LedgerEntry => ({
  state: RecipientState.Pending,
  reason: 0,
  attempts: 0,
  sender: 0,
  at: 0,
  ...partial,
});

describe('csvField (RFC 4180)', () => {
  it.each([
    ['@alice', '@alice'],
    ['+12025550123', '+12025550123'],
    ['', ''],
    ['a,b', '"a,b"'],
    ['say "hi"', '"say ""hi"""'],
    ['"', '""""'],
    ['line\nbreak', '"line\nbreak"'],
    ['carriage\rreturn', '"carriage\rreturn"'],
    ["it's; fine\ttab", "it's; fine\ttab"],
  ])('%j -> %j', (value, expected) => {
    expect(csvField(value)).toBe(expected);
  });

  it('quotes every field of a row that needs it, and only those', () => {
    const row: ReportRow = {
      recipient: 'not, a "recipient"',
      sender: 'sender-a',
      outcome: 'Invalid',
      reason: '',
      time: '',
    };
    expect(formatRow(row, 'csv')).toBe('"not, a ""recipient""",sender-a,Invalid,,\n');
    expect(CSV_HEADER).toBe('recipient,sender,outcome,reason,time\n');
  });

  it('writes one JSON object per line with the same fields, in the same order', () => {
    const row: ReportRow = {
      recipient: 'x,"y"\n',
      sender: '',
      outcome: 'Sent',
      reason: '',
      time: '2024-05-01T12:00:00Z',
    };
    const line = formatRow(row, 'json');
    expect(line.endsWith('\n')).toBe(true);
    expect(line.slice(0, -1)).not.toContain('\n');
    expect(Object.keys(JSON.parse(line) as object)).toEqual([
      'recipient',
      'sender',
      'outcome',
      'reason',
      'time',
    ]);
    expect(JSON.parse(line)).toEqual(row);
  });
});

describe('recipientText and rfc3339', () => {
  it.each([
    ['u:alice_example', '@alice_example', true],
    ['p:+12025550123', '+12025550123', true],
    ['i:424242', '424242', true],
    ['c:news_channel', 'chat:@news_channel', true],
    ['x:not a recipient, really', 'not a recipient, really', false],
    ['q:unknown prefix', 'q:unknown prefix', false],
  ])('%s -> %s', (key, text, valid) => {
    expect(recipientText(key)).toEqual({ text, valid });
  });

  it('prints seconds as RFC 3339 UTC without fractions, and 0 as empty', () => {
    expect(rfc3339(0)).toBe('');
    expect(rfc3339(1_714_564_800)).toBe('2024-05-01T12:00:00Z');
    expect(rfc3339(1)).toBe('1970-01-01T00:00:01Z');
    expect(rfc3339(0xffffffff)).toBe('2106-02-07T06:28:15Z');
  });
});

describe('sliceRows (decoded ledger -> rows)', () => {
  const keys = [
    'u:alice_example',
    'p:+12025550123',
    'i:424242',
    'c:news_channel',
    'x:hello, "world"',
    'u:bob_example',
    'u:carol_example',
  ];
  const ledger = Ledger.empty(keys.length);
  const peerFlood = ledger.reasonIndex('PeerFlood');
  const privacy = ledger.reasonIndex('UserPrivacyRestricted');
  const first = ledger.senderIndex('sender-a'); // index 0, also what a fresh entry holds
  const second = ledger.senderIndex('sender-b');
  ledger.set(0, entry({ state: RecipientState.Sent, attempts: 1, sender: first, at: 1_714_564_800 }));
  ledger.set(
    1,
    entry({ state: RecipientState.Failed, reason: privacy, attempts: 1, sender: second, at: 1_714_564_801 }),
  );
  ledger.set(2, entry({ state: RecipientState.InFlight, attempts: 2, sender: second, at: 1_714_564_802 }));
  ledger.set(3, entry({ state: RecipientState.InDoubt, attempts: 1, sender: first, at: 1_714_564_803 }));
  // x: line: whatever the runtime wrote, it is reported as Invalid.
  ledger.set(4, entry({ state: RecipientState.Failed, reason: 0, attempts: 0, at: 0 }));
  // Never attempted: sender index 0 (= sender-a in the table) must not be reported as its sender.
  ledger.set(5, entry({ state: RecipientState.Pending }));
  // A retry after PeerFlood, not before a time: attempted once by sender-b.
  ledger.set(
    6,
    entry({
      state: RecipientState.Pending,
      reason: peerFlood,
      attempts: 1,
      sender: second,
      at: 1_714_568_400,
    }),
  );

  it('gives one row per recipient, in order, with every field', () => {
    expect([...sliceRows(keys, ledger)]).toEqual([
      {
        recipient: '@alice_example',
        sender: 'sender-a',
        outcome: 'Sent',
        reason: '',
        time: '2024-05-01T12:00:00Z',
      },
      {
        recipient: '+12025550123',
        sender: 'sender-b',
        outcome: 'Failed',
        reason: 'UserPrivacyRestricted',
        time: '2024-05-01T12:00:01Z',
      },
      {
        recipient: '424242',
        sender: 'sender-b',
        outcome: 'InFlight',
        reason: '',
        time: '2024-05-01T12:00:02Z',
      },
      {
        recipient: 'chat:@news_channel',
        sender: 'sender-a',
        outcome: 'InDoubt',
        reason: '',
        time: '2024-05-01T12:00:03Z',
      },
      { recipient: 'hello, "world"', sender: '', outcome: 'Invalid', reason: '', time: '' },
      { recipient: '@bob_example', sender: '', outcome: 'Pending', reason: '', time: '' },
      {
        recipient: '@carol_example',
        sender: 'sender-b',
        outcome: 'Pending',
        reason: 'PeerFlood',
        time: '2024-05-01T13:00:00Z',
      },
    ]);
  });

  it('formats those rows as CSV lines with the x: line quoted', () => {
    const lines = [...sliceRows(keys, ledger)].map((row) => formatRow(row, 'csv'));
    expect(lines[4]).toBe('"hello, ""world""",,Invalid,,\n');
    expect(lines[5]).toBe('@bob_example,,Pending,,\n');
  });

  it('decodes a slice as the operator and the runtime wrote it; a missing ledger is all Pending', () => {
    const slice = (status: CampaignSlice['status']): CampaignSlice => ({
      apiVersion: API_VERSION,
      kind: 'CampaignSlice',
      metadata: { name: 's-00000' },
      spec: {
        campaign: 's',
        index: 0,
        recipients: encodeRecipients(keys),
        count: keys.length,
        assignment: 1,
        messagesPerMinute: 20,
      },
      status,
    });
    const written = decodeSlice(
      slice({ ledger: ledger.encode(), reasons: ledger.reasons, senders: ledger.senders }),
    );
    expect([...sliceRows(written.keys, written.ledger)]).toEqual([...sliceRows(keys, ledger)]);

    const fresh = decodeSlice(slice(undefined));
    const rows = [...sliceRows(fresh.keys, fresh.ledger)];
    expect(rows.map((r) => r.outcome)).toEqual([
      'Pending',
      'Pending',
      'Pending',
      'Pending',
      'Invalid',
      'Pending',
      'Pending',
    ]);
    expect(rows.every((r) => r.sender === '' && r.reason === '' && r.time === '')).toBe(true);
  });
});
