/**
 * A Campaign's status as a pure function of its slices and what the operator decided: counters summed from
 * the slices' ledger totals, per-sender summaries, the rate and the ETA, the phase and the conditions.
 * And the sliding failure ratio behind autoPause, over a history of the counters.
 */
import {
  nextCondition,
  type Campaign,
  type CampaignSlice,
  type CampaignStatus,
  type Condition,
  type ConditionInput,
} from '../../crds/index.js';

export type Phase = NonNullable<CampaignStatus['phase']>;
type SenderSummary = NonNullable<CampaignStatus['senders']>[number];

export interface Totals {
  total: number;
  sent: number;
  failed: number;
  pending: number;
  inFlight: number;
  inDoubt: number;
  failures: Record<string, number>;
  sentBySender: Record<string, number>;
  messagesPerMinute: number;
}

export function sumSlices(slices: readonly CampaignSlice[]): Totals {
  const totals: Totals = {
    total: 0,
    sent: 0,
    failed: 0,
    pending: 0,
    inFlight: 0,
    inDoubt: 0,
    failures: {},
    sentBySender: {},
    messagesPerMinute: 0,
  };
  for (const slice of slices) {
    const count = slice.spec.count;
    totals.total += count;
    const c = slice.status?.counts;
    if (!c) {
      totals.pending += count;
      continue;
    }
    totals.sent += c.sent;
    totals.failed += c.failed;
    totals.inFlight += c.inFlight;
    totals.inDoubt += c.inDoubt;
    // Recipients added to a slice's count but not in its ledger yet are pending too.
    totals.pending += Math.max(0, count - c.sent - c.failed - c.inFlight - c.inDoubt);
    for (const [reason, n] of Object.entries(slice.status?.failures ?? {}))
      totals.failures[reason] = (totals.failures[reason] ?? 0) + n;
    for (const [sender, n] of Object.entries(slice.status?.sentBySender ?? {}))
      totals.sentBySender[sender] = (totals.sentBySender[sender] ?? 0) + n;
    totals.messagesPerMinute += slice.status?.messagesPerMinute ?? 0;
  }
  return totals;
}

/** Why the campaign is not sending now, or undefined when it may. */
export type Hold =
  | {
      reason: 'Suspended' | 'AutoPaused' | 'OutsideWindow' | 'BeforeStart' | 'NoSender' | 'RecipientsMissing';
      message: string;
    }
  | undefined;

export interface ProgressInput {
  campaign: Campaign;
  slices: readonly CampaignSlice[];
  duplicates: number;
  /** Planning is not finished (slices still being created). */
  planning: boolean;
  /** Every list was read and none names anyone: there is nothing to send. */
  noRecipients?: boolean;
  hold: Hold;
  /** The schedule ended before every recipient was sent to, or was started too late. */
  ended?: { reason: 'PastEndTime' | 'TooLate'; message: string };
  senders: SenderSummary[];
  now: Date;
  autoPausedGeneration?: number;
}

const NO_RECIPIENTS =
  'no recipients: spec.recipients and its ConfigMaps name nobody; add recipients and it starts sending';

const time = (d: Date): string => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

export function campaignProgress(input: ProgressInput): CampaignStatus & { autoPausedGeneration?: number } {
  const { campaign, now } = input;
  const totals = sumSlices(input.slices);
  const previous = campaign.status;
  const generation = campaign.metadata.generation;
  const outstanding = totals.pending + totals.inFlight;
  const everSent = totals.sent + totals.failed + totals.inDoubt > 0 || previous?.startedAt !== undefined;
  const pausedAcked = input.slices.every(
    (s) => s.status?.paused || !s.spec.sender || (s.status?.counts?.inFlight ?? 0) === 0,
  );

  let phase: Phase;
  if (input.planning) phase = 'Pending';
  else if ((totals.total > 0 || input.noRecipients) && outstanding === 0) phase = 'Completed';
  else if (input.ended?.reason === 'TooLate' && !everSent) phase = 'Failed';
  else if (input.ended) phase = outstanding > 0 && totals.inFlight === 0 ? 'Failed' : 'Running';
  else if (
    input.hold &&
    (input.hold.reason === 'BeforeStart' || input.hold.reason === 'OutsideWindow') &&
    !everSent
  )
    phase = 'Scheduled';
  else if (input.hold) phase = totals.inFlight === 0 && pausedAcked ? 'Paused' : 'Running';
  else phase = 'Running';

  const startedAt =
    previous?.startedAt ??
    (totals.sent + totals.failed + totals.inDoubt + totals.inFlight > 0 ? time(now) : undefined);
  const completedAt = phase === 'Completed' ? (previous?.completedAt ?? time(now)) : undefined;
  const rate = totals.messagesPerMinute;
  const eta =
    phase === 'Running' && rate > 0 && totals.pending > 0
      ? time(new Date(now.getTime() + (totals.pending / rate) * 60_000))
      : undefined;

  const existing = previous?.conditions;
  const cond = (c: ConditionInput): Condition =>
    nextCondition(existing, { ...c, observedGeneration: generation }, now);
  const progressing = phase === 'Running' && !input.hold;
  const holdReason = input.ended?.reason ?? input.hold?.reason;
  const holdMessage = input.ended?.message ?? input.hold?.message ?? '';
  const empty = phase === 'Completed' && totals.total === 0;
  const conditions: Condition[] = [
    cond({
      type: 'Ready',
      status:
        phase === 'Failed' || (input.hold && phase !== 'Completed' && phase !== 'Scheduled')
          ? 'False'
          : 'True',
      reason:
        phase === 'Completed'
          ? empty
            ? 'NoRecipients'
            : 'Completed'
          : (holdReason ?? (phase === 'Failed' ? 'Failed' : phase)),
      message:
        phase === 'Completed'
          ? empty
            ? NO_RECIPIENTS
            : `every recipient is final: ${totals.sent} sent, ${totals.failed} failed, ${totals.inDoubt} in doubt`
          : holdReason
            ? holdMessage
            : `${phase.toLowerCase()}: ${totals.sent} of ${totals.total} sent`,
    }),
    cond({
      type: 'Progressing',
      status: progressing ? 'True' : 'False',
      reason: progressing ? 'Sending' : (holdReason ?? phase),
      message: progressing
        ? `${totals.pending} pending, ${rate} messages per minute`
        : holdReason
          ? holdMessage
          : `${phase.toLowerCase()}`,
    }),
    cond({
      type: 'Completed',
      status: phase === 'Completed' ? 'True' : 'False',
      reason: phase === 'Completed' ? (empty ? 'NoRecipients' : 'AllFinal') : 'Outstanding',
      message:
        phase === 'Completed'
          ? empty
            ? NO_RECIPIENTS
            : 'every recipient was sent to, failed, or is in doubt'
          : `${outstanding} recipients outstanding`,
    }),
    cond({
      type: 'Paused',
      status: phase === 'Paused' ? 'True' : 'False',
      reason: phase === 'Paused' ? (input.hold?.reason ?? 'Paused') : 'NotPaused',
      message: phase === 'Paused' ? holdMessage : 'not paused',
    }),
  ];
  return {
    observedGeneration: generation,
    phase,
    total: totals.total,
    duplicates: input.duplicates,
    sent: totals.sent,
    failed: totals.failed,
    pending: totals.pending,
    inFlight: totals.inFlight,
    inDoubt: totals.inDoubt,
    // Left out when empty: server-side apply turns a map its manager emptied into null (schema refuses it).
    ...(Object.keys(totals.failures).length > 0 ? { failures: totals.failures } : {}),
    senders: input.senders.map((s) => ({ ...s, sent: totals.sentBySender[s.name] ?? 0 })),
    messagesPerMinute: rate,
    ...(eta ? { estimatedCompletionTime: eta } : {}),
    ...(startedAt ? { startedAt } : {}),
    ...(completedAt ? { completedAt } : {}),
    ...(campaign.spec.retry?.retryFailedRound !== undefined
      ? { retryFailedRound: campaign.spec.retry.retryFailedRound }
      : {}),
    ...(input.autoPausedGeneration !== undefined ? { autoPausedGeneration: input.autoPausedGeneration } : {}),
    conditions,
  };
}

/** One observation of a campaign's outcome counters. */
export interface OutcomeSample {
  sent: number;
  failed: number;
}

/**
 * The failure ratio over the latest `window` outcomes, from a history of cumulative counters (oldest
 * first; the last is now). Undefined until `window` outcomes were seen since the first sample.
 */
export function recentFailureRatio(history: readonly OutcomeSample[], window: number): number | undefined {
  const latest = history[history.length - 1];
  if (!latest) return undefined;
  for (let i = history.length - 2; i >= 0; i--) {
    const earlier = history[i] as OutcomeSample;
    const outcomes = latest.sent + latest.failed - (earlier.sent + earlier.failed);
    if (outcomes >= window) return (latest.failed - earlier.failed) / outcomes;
  }
  return undefined;
}
