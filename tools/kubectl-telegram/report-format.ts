/**
 * The rows of `kubectl telegram campaign report`, as pure functions: a slice's decoded recipients and ledger
 * become one row per recipient (recipient, sender, outcome, reason, time), printed as CSV (RFC 4180 quoting)
 * or as one JSON object per line.
 *
 * The report exists to show recipients, phone numbers included; nothing here is ever used for an error
 * message or a log line.
 */
import {
  Ledger,
  RECIPIENT_STATE_NAMES,
  decodeRecipients,
  parseRecipientKey,
  type CampaignSlice,
} from '../../crds/index.js';
import type { OutputFormat } from './args.js';

export type { OutputFormat } from './args.js';

export interface ReportRow {
  /** As the user wrote it: @username, +phone, a user id, chat:@name; the text of a line that was no recipient. */
  recipient: string;
  /** The sender that last tried this recipient; '' when it was never attempted. */
  sender: string;
  /** Pending, InFlight, Sent, Failed, InDoubt; Invalid for a line that was not a recipient. */
  outcome: string;
  /** '' for none. */
  reason: string;
  /** RFC 3339 UTC of the ledger entry's time; '' when it has none (0). */
  time: string;
}

export const REPORT_FIELDS = ['recipient', 'sender', 'outcome', 'reason', 'time'] as const;
export const INVALID_OUTCOME = 'Invalid';

/** A recipient key (u:, p:, i:, c:, x:) as a person would have written it, and whether it is a recipient. */
export function recipientText(key: string): { text: string; valid: boolean } {
  const r = parseRecipientKey(key);
  switch (r.kind) {
    case 'username':
      return { text: `@${r.value}`, valid: true };
    case 'chat':
      return { text: `chat:@${r.value}`, valid: true };
    case 'phone':
    case 'userId':
      return { text: r.value, valid: true };
    case 'invalid':
      return { text: r.value, valid: false };
  }
}

/** Unix seconds as RFC 3339 UTC without fractions ("2024-05-01T12:00:00Z"); '' for 0 (no time). */
export function rfc3339(seconds: number): string {
  if (!(seconds > 0)) return '';
  return new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** The rows of one slice: `keys` are its decoded recipients, `ledger` their entries, in the same order. */
export function* sliceRows(keys: readonly string[], ledger: Ledger): Generator<ReportRow> {
  for (let i = 0; i < keys.length; i++) {
    const { text, valid } = recipientText(keys[i] ?? '');
    const e = ledger.get(i);
    yield {
      recipient: text,
      // The sender index is 0 in a fresh entry, and 0 is also the first sender of the table: only an
      // attempt makes it mean someone.
      sender: e.attempts > 0 ? (ledger.senders[e.sender] ?? '') : '',
      outcome: valid ? (RECIPIENT_STATE_NAMES[e.state] ?? `Unknown(${e.state})`) : INVALID_OUTCOME,
      reason: ledger.reasons[e.reason] ?? '',
      time: rfc3339(e.at),
    };
  }
}

/** Decodes a slice (spec.recipients, status.ledger and its tables); a shorter or missing ledger is Pending. */
export function decodeSlice(slice: CampaignSlice): { keys: string[]; ledger: Ledger } {
  const keys = decodeRecipients(slice.spec.recipients);
  const status = slice.status ?? {};
  const ledger = Ledger.decode(status.ledger, keys.length, status.reasons ?? [''], status.senders ?? []);
  return { keys, ledger };
}

/** One CSV field, quoted as RFC 4180 says when it holds a comma, a double quote, CR or LF. */
export function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

export const CSV_HEADER = `${REPORT_FIELDS.join(',')}\n`;

/** One output line, newline included. */
export function formatRow(row: ReportRow, format: OutputFormat): string {
  if (format === 'json') {
    const { recipient, sender, outcome, reason, time } = row;
    return `${JSON.stringify({ recipient, sender, outcome, reason, time })}\n`;
  }
  return `${REPORT_FIELDS.map((field) => csvField(row[field])).join(',')}\n`;
}

/** What comes before the first row: the CSV header, nothing for JSON lines. */
export function header(format: OutputFormat): string {
  return format === 'csv' ? CSV_HEADER : '';
}
