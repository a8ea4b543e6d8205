/**
 * The compact encodings a CampaignSlice carries, shared by the operator (plans, aggregates), the runtime
 * (sends, records) and the kubectl plugin (reports):
 *
 * - recipients: one normalized recipient per line, gzip, base64.  u:<username>  p:+<digits>  i:<user id>
 *   c:<public chat username>  x:<line that is not a recipient> (kept so it is reported, never sent to)
 * - ledger: 8 bytes per recipient, in the order of the recipients, gzip, base64:
 *     state (1) | reason index (1) | attempts (1) | sender index (1) | time, Unix seconds (4, big-endian)
 *   time is: Pending, not before (a retry's delay; 0 = now) | InFlight, when the send was recorded as
 *   intended | Sent, Failed, InDoubt, when that became known. Reason and sender index the status tables.
 */
import { gunzipSync, gzipSync } from 'node:zlib';

export const RecipientState = { Pending: 0, InFlight: 1, Sent: 2, Failed: 3, InDoubt: 4 } as const;
export type RecipientStateValue = (typeof RecipientState)[keyof typeof RecipientState];
export const RECIPIENT_STATE_NAMES = ['Pending', 'InFlight', 'Sent', 'Failed', 'InDoubt'] as const;

export type RecipientKind = 'username' | 'phone' | 'userId' | 'chat' | 'invalid';

export interface Recipient {
  kind: RecipientKind;
  /** What the kind needs: a username without @, +digits, digits. */
  value: string;
}

const KIND_PREFIX: Record<RecipientKind, string> = {
  username: 'u',
  phone: 'p',
  userId: 'i',
  chat: 'c',
  invalid: 'x',
};
const PREFIX_KIND = Object.fromEntries(Object.entries(KIND_PREFIX).map(([k, p]) => [p, k])) as Record<
  string,
  RecipientKind
>;

const USERNAME = /^@?([a-zA-Z][a-zA-Z0-9_]{3,31})$/;
const PHONE = /^\+[1-9][0-9]{6,14}$/;
const USER_ID = /^[1-9][0-9]{0,18}$/;

export function recipientKey(r: Recipient): string {
  return `${KIND_PREFIX[r.kind]}:${r.value}`;
}

export function parseRecipientKey(key: string): Recipient {
  const kind = PREFIX_KIND[key.slice(0, 1)];
  if (!kind || key[1] !== ':') return { kind: 'invalid', value: key };
  return { kind, value: key.slice(2) };
}

/** One line of a recipient list: @username, +phone, a user id, or chat:@name. Blank lines and #comments: none. */
export function parseRecipientLine(line: string): Recipient | undefined {
  const text = line.trim();
  if (text === '' || text.startsWith('#')) return undefined;
  const chat = /^chat:(.*)$/i.exec(text);
  if (chat) {
    const name = USERNAME.exec((chat[1] ?? '').trim());
    return name ? { kind: 'chat', value: (name[1] ?? '').toLowerCase() } : { kind: 'invalid', value: text };
  }
  if (PHONE.test(text)) return { kind: 'phone', value: text };
  if (USER_ID.test(text)) return { kind: 'userId', value: text };
  const username = USERNAME.exec(text);
  if (username) return { kind: 'username', value: (username[1] ?? '').toLowerCase() };
  return { kind: 'invalid', value: text.slice(0, 128) };
}

export function username(value: string): Recipient {
  return { kind: 'username', value: value.replace(/^@/, '').toLowerCase() };
}

export function chat(value: string): Recipient {
  return { kind: 'chat', value: value.replace(/^@/, '').toLowerCase() };
}

export function encodeRecipients(keys: readonly string[]): string {
  return gzipSync(Buffer.from(keys.join('\n'), 'utf8')).toString('base64');
}

export function decodeRecipients(text: string): string[] {
  if (!text) return [];
  const raw = gunzipSync(Buffer.from(text, 'base64')).toString('utf8');
  return raw === '' ? [] : raw.split('\n');
}

export interface LedgerEntry {
  state: RecipientStateValue;
  reason: number;
  attempts: number;
  sender: number;
  /** Unix seconds (see the module comment for what it means per state). */
  at: number;
}

const ENTRY = 8;

export interface LedgerCounts {
  pending: number;
  inFlight: number;
  sent: number;
  failed: number;
  inDoubt: number;
}

/** A slice's ledger: mutable, with the tables its indexes refer to. */
export class Ledger {
  private constructor(
    private readonly bytes: Buffer,
    readonly reasons: string[],
    readonly senders: string[],
  ) {}

  static empty(count: number): Ledger {
    return new Ledger(Buffer.alloc(count * ENTRY), [''], []);
  }

  /**
   * From a slice status; a missing or shorter ledger (recipients added later) is padded with Pending. The
   * reason table always starts with '' (no reason).
   */
  static decode(
    text: string | undefined,
    count: number,
    reasons: readonly string[] = [''],
    senders: readonly string[] = [],
  ): Ledger {
    const bytes = Buffer.alloc(count * ENTRY);
    if (text) gunzipSync(Buffer.from(text, 'base64')).copy(bytes, 0, 0, count * ENTRY);
    return new Ledger(bytes, reasons.length > 0 ? [...reasons] : [''], [...senders]);
  }

  get size(): number {
    return this.bytes.length / ENTRY;
  }

  encode(): string {
    return gzipSync(this.bytes).toString('base64');
  }

  get(i: number): LedgerEntry {
    const o = i * ENTRY;
    return {
      state: (this.bytes[o] ?? 0) as RecipientStateValue,
      reason: this.bytes[o + 1] ?? 0,
      attempts: this.bytes[o + 2] ?? 0,
      sender: this.bytes[o + 3] ?? 0,
      at: this.bytes.readUInt32BE(o + 4),
    };
  }

  state(i: number): RecipientStateValue {
    return (this.bytes[i * ENTRY] ?? 0) as RecipientStateValue;
  }

  set(i: number, entry: LedgerEntry): void {
    const o = i * ENTRY;
    this.bytes[o] = entry.state;
    this.bytes[o + 1] = entry.reason;
    this.bytes[o + 2] = Math.min(255, entry.attempts);
    this.bytes[o + 3] = entry.sender;
    this.bytes.writeUInt32BE(Math.max(0, Math.min(0xffffffff, Math.floor(entry.at))), o + 4);
  }

  /** The index of a reason, added to the table if new (the table holds at most 255). */
  reasonIndex(reason: string): number {
    let i = this.reasons.indexOf(reason);
    if (i < 0) {
      // The table's last slot is kept for "Other", so a table full of odd reasons still records one.
      if (reason !== 'Other' && this.reasons.length >= 254) return this.reasonIndex('Other');
      // A full table without "Other" (written before the slot was kept): no reason rather than a wrong one.
      if (this.reasons.length >= 255) return 0;
      this.reasons.push(reason);
      i = this.reasons.length - 1;
    }
    return i;
  }

  senderIndex(sender: string): number {
    let i = this.senders.indexOf(sender);
    if (i < 0) {
      this.senders.push(sender);
      i = this.senders.length - 1;
    }
    return i;
  }

  counts(): LedgerCounts {
    const counts: LedgerCounts = { pending: 0, inFlight: 0, sent: 0, failed: 0, inDoubt: 0 };
    for (let i = 0; i < this.size; i++) {
      switch (this.state(i)) {
        case RecipientState.Pending:
          counts.pending++;
          break;
        case RecipientState.InFlight:
          counts.inFlight++;
          break;
        case RecipientState.Sent:
          counts.sent++;
          break;
        case RecipientState.Failed:
          counts.failed++;
          break;
        case RecipientState.InDoubt:
          counts.inDoubt++;
          break;
      }
    }
    return counts;
  }

  /** Failed recipients by reason, and delivered ones by sender. */
  tallies(): { failures: Record<string, number>; sentBySender: Record<string, number> } {
    const failures: Record<string, number> = {};
    const sentBySender: Record<string, number> = {};
    for (let i = 0; i < this.size; i++) {
      const e = this.get(i);
      if (e.state === RecipientState.Failed) {
        const reason = this.reasons[e.reason] || 'Unknown';
        failures[reason] = (failures[reason] ?? 0) + 1;
      } else if (e.state === RecipientState.Sent) {
        const sender = this.senders[e.sender] ?? 'unknown';
        sentBySender[sender] = (sentBySender[sender] ?? 0) + 1;
      }
    }
    return { failures, sentBySender };
  }
}
