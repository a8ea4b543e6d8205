/**
 * One sender account working one campaign: its assigned slices, one at a time in index order, at its pace.
 * Each step: load what changed, resolve outcomes lost to a crash (before anything else), acknowledge pauses
 * and releases once nothing is in flight, then reserve the next recipients the token bucket allows, write
 * that intent to the slice (the durable ledger) and only then send. Outcomes are batched into the next
 * write, about one per second. A write happens only with a valid session fence, carries the slice's
 * resourceVersion and this sender's fencing epoch, and stops the slice for this process when a newer holder
 * of the account wrote it.
 */
import {
  RecipientState,
  decodeRecipients,
  parseRecipientKey,
  scheduleState,
  type Campaign,
  type CampaignSlice,
  type CampaignSliceStatus,
} from '../../crds/index.js';
import { isConflict } from '../../operator/kube/errors.js';
import type { Logger } from '../../operator/kube/logging.js';
import { errorMessage } from '../../operator/kube/util.js';
import type { TdObject } from '../tdlib/backend.js';
import type { TdClient } from '../tdlib/client.js';
import { TdError } from '../tdlib/errors.js';
import { classifySendError, type SendVerdict } from './classify.js';
import { DailyCounter, TokenBucket } from './rate.js';
import { SliceLedger } from './slice-ledger.js';
import { SendOutcomes, formattedText, resolveChat, sendMessageRequest, sentSince } from './telegram.js';

/** Outcomes are written at most this often (intents are written before every batch). */
const FLUSH_MS = 1000;
/** How long a slice asked back waits for its lost sends to be resolved before it is released unresolved. */
const RELEASE_UNRESOLVED_AFTER_MS = 60_000;
const CHAT_MEMO_SIZE = 10_000;

export interface CampaignSenderContext {
  account: string;
  logger: Logger;
  /** The account's client while it may send (logged in, fence valid), else undefined. */
  client(): TdClient | undefined;
  myUserId(): number | undefined;
  isBot(): boolean;
  fenceValid(): boolean;
  epoch(): number;
  execute(request: TdObject): TdObject;
  campaign(): Campaign | undefined;
  /** This sender's slices of the campaign (cache), any order. */
  slices(): CampaignSlice[];
  /** Writes a slice's status with its resourceVersion as precondition; throws the API error (409...). */
  writeStatus(slice: CampaignSlice, status: CampaignSliceStatus): Promise<CampaignSlice>;
  /** A fresh read of a slice (after a conflict). */
  readSlice(name: string): Promise<CampaignSlice | undefined>;
  onSend?(result: 'sent' | 'failed' | 'retry' | 'parked' | 'inDoubt', reason: string): void;
  /** Telegram made this account wait `seconds` more (overlapping waits counted once). */
  onFloodWait?(seconds: number): void;
  now?(): Date;
}

interface Worker {
  name: string;
  base: CampaignSlice;
  assignment: number;
  ledger: SliceLedger;
  keys: string[];
  inFlight: Set<number>;
  recovered: boolean;
  dirty: boolean;
  lastWrite: number;
  /** When this process took the slice up (performance.now()). */
  createdAt: number;
  sentTimes: number[];
}

export class CampaignSender {
  private readonly workers = new Map<string, Worker>();
  private bucket?: TokenBucket;
  private readonly daily: DailyCounter;
  private parked?: { reason: string; untilMs?: number };
  /** Why this sender is parked now (PeerFlood, FloodWait, LoggedOut...), if it is. */
  parkedReason(now = Date.now()): string | undefined {
    return this.parkedState(now)?.reason;
  }

  /** The park in force now (its reason, and when it ends if Telegram said so). */
  parkedState(now = Date.now()): { reason: string; untilMs?: number } | undefined {
    if (!this.parked) return undefined;
    return this.parked.untilMs === undefined || this.parked.untilMs > now ? { ...this.parked } : undefined;
  }

  /** Telegram asked this account to wait (a flood wait short enough to keep its slices): no send before. */
  private floodUntil = 0;
  private outcomes?: { client: TdClient; tracker: SendOutcomes };
  private text?: TdObject;
  private readonly chats = new Map<string, number>();
  private readonly now: () => Date;
  private stopped = false;
  /** A step is running (drain waits for it: it may be about to send). */
  private stepping = false;

  constructor(private readonly ctx: CampaignSenderContext) {
    this.now = ctx.now ?? (() => new Date());
    this.daily = new DailyCounter(ctx.campaign()?.spec.schedule?.window?.timeZone ?? 'UTC');
  }

  /** Recipients being sent right now. */
  get inFlight(): number {
    let n = 0;
    for (const w of this.workers.values()) n += w.inFlight.size;
    return n;
  }

  /**
   * Stops taking new recipients; waits (up to `timeoutMs`) for what is in flight, and writes the ledger
   * (before the account's client closes, so nothing it sent is left undecided).
   */
  async drain(timeoutMs: number): Promise<void> {
    this.stopped = true;
    const until = performance.now() + timeoutMs;
    // A step already past its check of `stopped` may still be about to send: wait for it as well.
    while ((this.inFlight > 0 || this.stepping) && performance.now() < until)
      await new Promise((r) => setTimeout(r, 50));
    for (const w of this.workers.values()) if (w.dirty) await this.write(w, {}).catch(() => undefined);
    this.outcomes?.tracker.close();
  }

  /** One step; returns how long until the next one is useful (ms). */
  async step(): Promise<number> {
    this.stepping = true;
    try {
      return await this.stepOnce();
    } finally {
      this.stepping = false;
    }
  }

  private async stepOnce(): Promise<number> {
    const campaign = this.ctx.campaign();
    const client = this.ctx.client();
    if (!campaign || this.stopped) return 5000;
    const nowDate = this.now();
    const now = nowDate.getTime();
    const nowSec = Math.floor(now / 1000);
    this.refreshWorkers();
    if (client && this.outcomes?.client !== client) {
      this.outcomes?.tracker.close();
      this.outcomes = { client, tracker: new SendOutcomes(client) };
      this.text = undefined;
    }

    let wait = FLUSH_MS;
    for (const w of [...this.workers.values()].sort((a, b) => a.base.spec.index - b.base.spec.index)) {
      const spec = w.base.spec;
      // Outcomes lost to a crash are resolved first: nothing else happens to those recipients until then.
      if (!w.recovered) {
        if (!client || !this.ctx.fenceValid()) continue;
        await this.recover(w, client, campaign, nowSec);
      }
      if ((spec.retryFailedRound ?? 0) > (w.base.status?.retryFailedRound ?? 0) && w.inFlight.size === 0) {
        const n = w.ledger.retryFailed();
        this.ctx.logger.info({ slice: w.name, recipients: n }, 'retrying the failed recipients');
        await this.write(w, { retryFailedRound: spec.retryFailedRound ?? 0 });
      }
    }

    const parked = this.parked && (this.parked.untilMs === undefined || this.parked.untilMs > now);
    if (!parked) this.parked = undefined;
    const floodWait = this.floodUntil > now;
    // The campaign's own word stops sends at once, before the operator's pause reaches the slices:
    // suspend, and the schedule's start, end and window (whether to start a late schedule at all is the
    // operator's decision, taken once).
    const schedule = campaign.spec.schedule
      ? { ...campaign.spec.schedule, maxLatenessSeconds: undefined }
      : undefined;
    const halted = campaign.spec.suspend === true || scheduleState(schedule, nowDate).state !== 'open';
    const ordered = [...this.workers.values()].sort((a, b) => a.base.spec.index - b.base.spec.index);
    for (const w of ordered) {
      const spec = w.base.spec;
      const holding = spec.paused || spec.releaseRequested || parked;
      if (!holding || w.inFlight.size > 0) continue;
      // Sends a crash left in flight are resolved before the slice is let go: whoever takes it next could
      // only call them in doubt. Unless this account's client stays away too long to ask.
      if (
        !w.recovered &&
        performance.now() - w.createdAt < RELEASE_UNRESOLVED_AFTER_MS &&
        w.ledger.mineInFlight().length > 0
      )
        continue;
      // Nothing in flight: acknowledge what the operator asked for.
      const ack: Partial<CampaignSliceStatus> = {};
      if (spec.paused && !w.base.status?.paused) ack.paused = true;
      if (spec.releaseRequested && !(w.base.status?.released && w.base.status.assignment === spec.assignment))
        ack.released = true;
      if (parked && this.parked && w.base.status?.parked?.reason !== this.parked.reason)
        ack.parked = {
          reason: this.parked.reason,
          ...(this.parked.untilMs
            ? { until: new Date(this.parked.untilMs).toISOString().replace(/\.\d{3}Z$/, 'Z') }
            : {}),
        };
      if (Object.keys(ack).length > 0 || w.dirty) await this.write(w, ack);
    }

    const active = ordered.find(
      (w) =>
        !halted &&
        w.recovered &&
        !w.base.spec.paused &&
        !w.base.spec.releaseRequested &&
        w.ledger.pendingInfo(nowSec).ready > 0,
    );
    if (client && active && !parked && !floodWait && !this.stopped && this.ctx.fenceValid()) {
      const spec = active.base.spec;
      this.bucket ??= new TokenBucket(spec.messagesPerMinute, now);
      this.bucket.setRate(spec.messagesPerMinute, now);
      const limit = campaign.spec.pace?.perSenderDailyLimit;
      const room =
        limit === undefined ? Number.POSITIVE_INFINITY : Math.max(0, limit - this.daily.used(nowDate));
      const want = Math.min(active.ledger.pendingInfo(nowSec).ready, room, 1000);
      const n = this.bucket.take(want, now);
      if (n > 0) await this.sendBatch(active, client, campaign, n, nowSec);
      wait = Math.min(wait, this.bucket.waitMs(now) || FLUSH_MS);
      if (room === 0) wait = Math.max(wait, 60_000);
    } else {
      const next = ordered
        .map((w) => w.ledger.pendingInfo(nowSec).nextAt)
        .filter((x): x is number => x !== undefined)
        .sort((a, b) => a - b)[0];
      if (next !== undefined) wait = Math.min(wait * 5, Math.max(100, (next - nowSec) * 1000));
    }

    for (const w of this.workers.values())
      if (w.dirty && performance.now() - w.lastWrite >= FLUSH_MS)
        await this.write(w, {}).catch(() => undefined);
    return Math.max(50, wait);
  }

  private refreshWorkers(): void {
    const mine = new Map(this.ctx.slices().map((s) => [s.metadata.name ?? '', s]));
    for (const [name, w] of this.workers) {
      const slice = mine.get(name);
      if (!slice || slice.spec.sender !== this.ctx.account || slice.spec.assignment !== w.assignment) {
        // Our assignment ended (released, or the slice is gone): nothing more of it is ours to write.
        if (w.inFlight.size === 0) this.workers.delete(name);
        continue;
      }
      if (Number(slice.metadata.resourceVersion) > Number(w.base.metadata.resourceVersion)) w.base = slice;
      // Released (and written): this assignment is over for us.
      if (
        w.base.status?.released &&
        w.base.status.assignment === w.assignment &&
        w.inFlight.size === 0 &&
        !w.dirty
      )
        this.workers.delete(name);
    }
    for (const [name, slice] of mine) {
      if (this.workers.has(name) || slice.spec.sender !== this.ctx.account) continue;
      // A newer holder of this account wrote it: this process must not.
      // (Epochs count one account's holders: another sender's epoch in the status says nothing about ours.)
      if (slice.status?.sender === this.ctx.account && (slice.status.epoch ?? 0) > this.ctx.epoch()) continue;
      if (slice.status?.released && slice.status.assignment === slice.spec.assignment) continue;
      this.workers.set(name, {
        name,
        base: slice,
        assignment: slice.spec.assignment,
        ledger: new SliceLedger(slice, this.ctx.account),
        keys: decodeRecipients(slice.spec.recipients),
        inFlight: new Set(),
        recovered: false,
        dirty: slice.status?.assignment !== slice.spec.assignment,
        lastWrite: 0,
        createdAt: performance.now(),
        sentTimes: [],
      });
    }
  }

  private async recover(w: Worker, client: TdClient, campaign: Campaign, nowSec: number): Promise<void> {
    // The cache may not show the previous holder's last writes yet (a handover drains and records its sends,
    // and may release the slice, just before it releases the session): start from what the API server holds.
    const fresh = await this.ctx.readSlice(w.name);
    if (
      !fresh ||
      fresh.spec.sender !== this.ctx.account ||
      fresh.spec.assignment !== w.assignment ||
      (fresh.status?.released === true && fresh.status.assignment === fresh.spec.assignment)
    ) {
      // Not ours to send any more (released, or given to another assignment): nothing is sent or written.
      this.workers.delete(w.name);
      return;
    }
    if (Number(fresh.metadata.resourceVersion) > Number(w.base.metadata.resourceVersion)) {
      w.base = fresh;
      w.ledger = new SliceLedger(fresh, this.ctx.account);
    }
    const lost = w.ledger.mineInFlight().filter((i) => !w.inFlight.has(i));
    if (lost.length > 0) {
      const bot = this.ctx.isBot();
      const policy = campaign.spec.inDoubtPolicy ?? 'Skip';
      const me = this.ctx.myUserId();
      const text = String(this.messageText(campaign).text ?? '');
      for (const i of lost) {
        const key = w.keys[i] ?? '';
        if (bot || me === undefined) {
          // Bots cannot read private-chat history: the campaign's policy decides.
          w.ledger.resolved(i, policy === 'Resend' ? 'notSent' : 'inDoubt', nowSec, 'BotCannotCheckHistory');
          if (policy !== 'Resend') this.ctx.onSend?.('inDoubt', 'BotCannotCheckHistory');
          continue;
        }
        const since = w.ledger.ledger.get(i).at;
        let outcome: 'sent' | 'notSent' | 'inDoubt' = 'inDoubt';
        try {
          const chatId = await this.chatOf(client, key);
          const found = await sentSince(client, chatId, me, text, since);
          outcome = found === undefined ? 'inDoubt' : found ? 'sent' : 'notSent';
        } catch (error) {
          // The recipient cannot even be resolved: a send to it cannot have gone through.
          if (error instanceof TdError && error.code === 400) outcome = 'notSent';
        }
        w.ledger.resolved(i, outcome, nowSec);
        if (outcome !== 'notSent') this.ctx.onSend?.(outcome, 'HistoryChecked');
        this.ctx.logger.info({ slice: w.name, index: i, outcome }, 'resolved a send whose outcome was lost');
      }
      w.dirty = true;
    }
    w.recovered = true;
    await this.write(w, {});
  }

  private messageText(campaign: Campaign): TdObject {
    this.text ??= formattedText(campaign.spec.message, (r) => this.ctx.execute(r));
    return this.text;
  }

  private async chatOf(client: TdClient, key: string): Promise<number> {
    const cached = this.chats.get(key);
    if (cached !== undefined) return cached;
    const id = await resolveChat(client, parseRecipientKey(key), this.ctx.isBot());
    // Only retries come back to a recipient (TDLib caches resolved usernames itself): a bounded memo, so a
    // campaign of a million recipients costs no memory per recipient here.
    if (this.chats.size >= CHAT_MEMO_SIZE) this.chats.delete(this.chats.keys().next().value as string);
    this.chats.set(key, id);
    return id;
  }

  private async sendBatch(
    w: Worker,
    client: TdClient,
    campaign: Campaign,
    n: number,
    nowSec: number,
  ): Promise<void> {
    const batch = w.ledger.reserve(n, nowSec, w.inFlight);
    if (batch.length === 0) return;
    // The intent is durable before a single message leaves.
    try {
      await this.write(w, {});
    } catch (error) {
      w.ledger.unreserve(batch);
      this.ctx.logger.warn(
        { slice: w.name, err: errorMessage(error) },
        'could not record the next sends; not sending them',
      );
      return;
    }
    if (!this.workers.has(w.name)) return;
    this.daily.add(this.now(), batch.length);
    const text = this.messageText(campaign);
    const maxAttempts = campaign.spec.retry?.maxAttempts ?? 3;
    const backoffSeconds = campaign.spec.retry?.backoffSeconds ?? 30;
    for (const i of batch) {
      w.inFlight.add(i);
      void this.sendOne(w, client, campaign, i, text).then(
        (verdict) => {
          w.inFlight.delete(i);
          const at = Math.floor(this.now().getTime() / 1000);
          if (verdict === 'sent') {
            w.ledger.sent(i, at);
            w.sentTimes.push(Date.now());
            this.ctx.onSend?.('sent', '');
          } else {
            const attempt = w.ledger.ledger.get(i).attempts;
            const v =
              'kind' in verdict
                ? verdict
                : classifySendError(verdict.error, {
                    attempt,
                    maxAttempts,
                    backoffMs: (k) => backoffSeconds * 1000 * 2 ** (k - 1),
                  });
            w.ledger.failed(i, v, at);
            this.onVerdict(v);
          }
          w.dirty = true;
        },
        () => w.inFlight.delete(i),
      );
    }
  }

  private async sendOne(
    w: Worker,
    client: TdClient,
    campaign: Campaign,
    i: number,
    text: TdObject,
  ): Promise<'sent' | SendVerdict | { error: { code: number; message: string } }> {
    const key = w.keys[i] ?? '';
    let chatId: number;
    try {
      chatId = await this.chatOf(client, key);
    } catch (error) {
      // Resolving is not sending: every failure here is surely "not delivered".
      const e =
        error instanceof TdError
          ? { code: error.code, message: error.message }
          : { code: 0, message: String(error) };
      if (e.code === 0) return { kind: 'retry', reason: 'ResolveFailed', afterMs: 5000 };
      return { error: e };
    }
    const outcomes = this.outcomes?.tracker;
    if (!outcomes) return { kind: 'retry', reason: 'NoClient', afterMs: 1000 };
    const result = await outcomes.send(client, sendMessageRequest(chatId, text, campaign.spec.message));
    return result.ok ? 'sent' : { error: result.error };
  }

  private onVerdict(v: SendVerdict): void {
    this.ctx.onSend?.(
      v.kind === 'failedForSender' ? 'failed' : v.kind === 'parkSender' ? 'parked' : v.kind,
      v.reason,
    );
    // A flood wait is the account's, not the chat's: nothing is sent until it ends (Telegram would refuse it).
    const now = Date.now();
    if (v.reason === 'FloodWait') {
      const until = now + (v.kind === 'retry' ? v.afterMs : v.kind === 'parkSender' ? (v.untilMs ?? 0) : 0);
      const added = until - Math.max(now, this.floodUntil);
      if (added > 0) this.ctx.onFloodWait?.(added / 1000);
      if (v.kind === 'retry') {
        this.floodUntil = Math.max(this.floodUntil, until);
        return;
      }
    }
    if (v.kind !== 'parkSender') return;
    const untilMs = v.untilMs ? now + v.untilMs : undefined;
    if (!this.parked || this.parked.reason !== v.reason) {
      this.parked = { reason: v.reason, untilMs };
      this.ctx.logger.warn(
        { reason: v.reason, untilMs },
        'sender parked: its recipients go to the other senders',
      );
    }
  }

  /** Writes the slice's status for this worker: ledger + `extra`; re-reads and retries once on a conflict. */
  private async write(w: Worker, extra: Partial<CampaignSliceStatus>): Promise<void> {
    for (let attempt = 0; attempt < 2; attempt++) {
      if (!this.ctx.fenceValid()) throw new Error('the session fence is not valid: nothing is written');
      const minuteAgo = Date.now() - 60_000;
      w.sentTimes = w.sentTimes.filter((t) => t > minuteAgo);
      const previous = w.base.status;
      const sameAssignment = previous?.assignment === w.assignment;
      const last = w.sentTimes[w.sentTimes.length - 1];
      const status: CampaignSliceStatus = {
        ...w.ledger.statusFields(),
        assignment: w.assignment,
        sender: this.ctx.account,
        epoch: this.ctx.epoch(),
        messagesPerMinute: w.sentTimes.length,
        ...(last !== undefined
          ? { lastSendTime: new Date(last).toISOString().replace(/\.\d{3}Z$/, 'Z') }
          : previous?.lastSendTime
            ? { lastSendTime: previous.lastSendTime }
            : {}),
        // Acknowledged only when true: nothing of this slice is in flight and spec says so.
        paused: w.base.spec.paused === true && w.inFlight.size === 0,
        released: extra.released ?? (sameAssignment && previous?.released === true),
        ...(extra.parked
          ? { parked: extra.parked }
          : this.parked && previous?.parked
            ? { parked: previous.parked }
            : {}),
        ...(this.floodUntil > Date.now()
          ? { floodWaitUntil: new Date(this.floodUntil).toISOString().replace(/\.\d{3}Z$/, 'Z') }
          : {}),
        ...(extra.retryFailedRound !== undefined
          ? { retryFailedRound: extra.retryFailedRound }
          : previous?.retryFailedRound !== undefined
            ? { retryFailedRound: previous.retryFailedRound }
            : {}),
      };
      try {
        w.base = await this.ctx.writeStatus(w.base, status);
        w.dirty = false;
        w.lastWrite = performance.now();
        return;
      } catch (error) {
        if (!isConflict(error) || attempt > 0) throw error;
        const fresh = await this.ctx.readSlice(w.name);
        if (
          !fresh ||
          fresh.spec.sender !== this.ctx.account ||
          fresh.spec.assignment !== w.assignment ||
          (fresh.status?.sender === this.ctx.account && (fresh.status.epoch ?? 0) > this.ctx.epoch())
        ) {
          // No longer ours (moved, released, or a newer holder of the account writes it).
          this.workers.delete(w.name);
          throw new Error(`slice ${w.name} is no longer this process's to write`);
        }
        mergeNewer(w.ledger, fresh, this.ctx.account);
        w.base = fresh;
      }
    }
  }
}

/**
 * After a conflict: the fresh status may hold states this process did not know (a stale holder of the same
 * account that still wrote): keep whichever is further along, so nothing sent is ever made pending again.
 */
function mergeNewer(mine: SliceLedger, fresh: CampaignSlice, account: string): void {
  const theirs = new SliceLedger(fresh, account);
  const rank = (s: number): number =>
    s === RecipientState.Pending ? 0 : s === RecipientState.InFlight ? 1 : 2;
  for (let i = 0; i < mine.ledger.size; i++) {
    const a = mine.ledger.get(i);
    const b = theirs.ledger.get(i);
    if (rank(b.state) > rank(a.state))
      mine.ledger.set(i, {
        ...b,
        reason: mine.ledger.reasonIndex(theirs.ledger.reasons[b.reason] ?? ''),
        sender: mine.ledger.senderIndex(theirs.ledger.senders[b.sender] ?? account),
      });
  }
}
