/**
 * One slice's ledger as the sender works it: pure state transitions on the decoded ledger, no I/O. The rules
 * that make "exactly once" hold, as far as Telegram lets anyone tell:
 *  - a recipient is InFlight in the durable ledger before its message is sent (reserve, then write, then send);
 *  - an InFlight recipient of this sender found after a restart is resolved (asked of Telegram, or by the
 *    in-doubt policy) before anything else happens to it;
 *  - an InFlight recipient of another sender is never sent to by this one: it is InDoubt (Telegram dedupes
 *    per sender account only);
 *  - only a recipient that was surely not delivered goes back to Pending.
 */
import {
  Ledger,
  RecipientState,
  type CampaignSlice,
  type CampaignSliceStatus,
  type LedgerEntry,
} from '../../crds/index.js';
import type { SendVerdict } from './classify.js';

export const IN_DOUBT_OTHER_SENDER = 'OtherSenderInDoubt';

export class SliceLedger {
  readonly ledger: Ledger;
  readonly me: number;

  constructor(
    slice: CampaignSlice,
    readonly sender: string,
  ) {
    const status = slice.status;
    this.ledger = Ledger.decode(status?.ledger, slice.spec.count, status?.reasons, status?.senders);
    this.me = this.ledger.senderIndex(sender);
    // Whatever another sender left in flight stays undecided: never ours to send.
    for (let i = 0; i < this.ledger.size; i++) {
      const e = this.ledger.get(i);
      if (e.state === RecipientState.InFlight && e.sender !== this.me)
        this.ledger.set(i, {
          ...e,
          state: RecipientState.InDoubt,
          reason: this.ledger.reasonIndex(IN_DOUBT_OTHER_SENDER),
        });
    }
  }

  /** This sender's InFlight recipients (after a restart: their outcome was lost). */
  mineInFlight(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.ledger.size; i++) {
      const e = this.ledger.get(i);
      if (e.state === RecipientState.InFlight && e.sender === this.me) out.push(i);
    }
    return out;
  }

  /** Up to `n` Pending recipients that may be sent at `nowSec`, in order, marked InFlight (intent). */
  reserve(n: number, nowSec: number, skip: ReadonlySet<number> = new Set()): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.ledger.size && out.length < n; i++) {
      if (skip.has(i)) continue;
      const e = this.ledger.get(i);
      if (e.state !== RecipientState.Pending || e.at > nowSec) continue;
      this.ledger.set(i, {
        state: RecipientState.InFlight,
        reason: 0,
        attempts: e.attempts + 1,
        sender: this.me,
        at: nowSec,
      });
      out.push(i);
    }
    return out;
  }

  /** Back to Pending as it was: a reservation that was never written (so never sent). */
  unreserve(indices: readonly number[]): void {
    for (const i of indices) {
      const e = this.ledger.get(i);
      if (e.state === RecipientState.InFlight && e.sender === this.me)
        this.ledger.set(i, {
          ...e,
          state: RecipientState.Pending,
          attempts: Math.max(0, e.attempts - 1),
          at: 0,
        });
    }
  }

  sent(i: number, nowSec: number): void {
    this.ledger.set(i, {
      ...this.ledger.get(i),
      state: RecipientState.Sent,
      reason: 0,
      sender: this.me,
      at: nowSec,
    });
  }

  /**
   * Applies a failed send's verdict. parkSender: the recipient was not delivered and goes back to Pending
   * untouched (its attempt not counted). Returns the verdict for the caller's sender-level handling.
   */
  failed(i: number, verdict: SendVerdict, nowSec: number): SendVerdict {
    const e = this.ledger.get(i);
    const reason = this.ledger.reasonIndex(verdict.reason);
    switch (verdict.kind) {
      case 'retry':
        this.ledger.set(i, {
          ...e,
          state: RecipientState.Pending,
          reason,
          at: nowSec + Math.ceil(verdict.afterMs / 1000),
        });
        break;
      case 'parkSender':
        this.ledger.set(i, {
          ...e,
          state: RecipientState.Pending,
          reason,
          attempts: Math.max(0, e.attempts - 1),
          at: 0,
        });
        break;
      case 'failed':
      case 'failedForSender':
        this.ledger.set(i, { ...e, state: RecipientState.Failed, reason, at: nowSec });
        break;
      case 'inDoubt':
        this.ledger.set(i, { ...e, state: RecipientState.InDoubt, reason, at: nowSec });
        break;
    }
    return verdict;
  }

  /** A lost outcome resolved: delivered, surely not delivered (Pending again), or undecidable (InDoubt). */
  resolved(i: number, outcome: 'sent' | 'notSent' | 'inDoubt', nowSec: number, reason = 'OutcomeLost'): void {
    const e = this.ledger.get(i);
    if (outcome === 'sent') this.sent(i, nowSec);
    else if (outcome === 'notSent') this.ledger.set(i, { ...e, state: RecipientState.Pending, at: 0 });
    else
      this.ledger.set(i, {
        ...e,
        state: RecipientState.InDoubt,
        reason: this.ledger.reasonIndex(reason),
        at: nowSec,
      });
  }

  /** "Retry the failed ones": every Failed recipient is Pending again with a fresh attempt count. */
  retryFailed(): number {
    let n = 0;
    for (let i = 0; i < this.ledger.size; i++) {
      const e = this.ledger.get(i);
      if (e.state !== RecipientState.Failed) continue;
      this.ledger.set(i, { ...e, state: RecipientState.Pending, attempts: 0, at: 0 });
      n++;
    }
    return n;
  }

  /** Pending recipients that may be sent now or later, and when the earliest waiting one may (seconds). */
  pendingInfo(nowSec: number): { ready: number; waiting: number; nextAt?: number } {
    let ready = 0;
    let waiting = 0;
    let nextAt: number | undefined;
    for (let i = 0; i < this.ledger.size; i++) {
      const e: LedgerEntry = this.ledger.get(i);
      if (e.state !== RecipientState.Pending) continue;
      if (e.at <= nowSec) ready++;
      else {
        waiting++;
        nextAt = nextAt === undefined ? e.at : Math.min(nextAt, e.at);
      }
    }
    return { ready, waiting, nextAt };
  }

  /** The ledger part of a status write. */
  statusFields(): Pick<
    CampaignSliceStatus,
    'ledger' | 'reasons' | 'senders' | 'counts' | 'failures' | 'sentBySender'
  > {
    const { failures, sentBySender } = this.ledger.tallies();
    return {
      ledger: this.ledger.encode(),
      reasons: this.ledger.reasons,
      senders: this.ledger.senders,
      counts: this.ledger.counts(),
      // Empty maps are left out: server-side apply turns a map its manager emptied into null, which the
      // schema refuses (seen when "retry the failed ones" cleared every failure).
      ...(Object.keys(failures).length > 0 ? { failures } : {}),
      ...(Object.keys(sentBySender).length > 0 ? { sentBySender } : {}),
    };
  }
}
