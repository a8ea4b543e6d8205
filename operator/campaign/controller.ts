/**
 * Campaign reconciler (key: "namespace/campaign"): the operator plans and aggregates, the runtimes send.
 *  - plan: recipients from the spec and its ConfigMaps, deduplicated, cut into CampaignSlices (owned by the
 *    Campaign; new recipients become new slices);
 *  - decide: which sender sends which slice (assign.ts), at what pace, and whether anything may be sent now
 *    (suspend, schedule, auto-pause, no sender);
 *  - aggregate: the Campaign's status from the slices' ledgers (progress.ts).
 * It writes slice specs (field manager tdlib-operator-campaign) and Campaign status (tdlib-operator); the
 * runtime hosting a slice's sender writes the slice's status.
 */
import {
  API_VERSION,
  CAMPAIGN_SLICE_KIND,
  ConditionType,
  LABEL_CAMPAIGN,
  LABEL_MANAGED_BY,
  MANAGED_BY,
  CampaignResource,
  CampaignSliceResource,
  decodeRecipients,
  encodeRecipients,
  findCondition,
  isValidTimeZone,
  scheduleState,
  type Campaign,
  type CampaignSlice,
  type CampaignStatus,
  type TelegramAccount,
} from '../../crds/index.js';
import type { RestClient } from '../kube/client.js';
import type { ObjectKey, ReconcileContext, ReconcileResult, Reconciler } from '../kube/controller.js';
import { isAlreadyExists, isNotFound } from '../kube/errors.js';
import type { EventRecorder } from '../kube/events.js';
import type { Logger } from '../kube/logging.js';
import type { Informer } from '../kube/reflector.js';
import { Resources, type ApiObject } from '../kube/resource.js';
import { forEachLimited } from '../kube/util.js';
import { assignSlices, type SenderView, type SliceView } from './assign.js';
import { newSlices, planRecipients, sliceName, sliceSizeFor } from './plan.js';
import { campaignProgress, recentFailureRatio, type Hold, type OutcomeSample } from './progress.js';

export const CAMPAIGN_SLICE_INDEX = 'campaign';
export const SLICE_FIELD_MANAGER = 'tdlib-operator-campaign';
const PLAN_FIELD_MANAGER = 'tdlib-operator-campaign-plan';
const STATUS_FIELD_MANAGER = 'tdlib-operator';
/** A sender must have been Ready this long before it gets work (an account moving pods is not "gone"). */
const READY_GRACE_MS = 5_000;
/** While running, status is refreshed this often (rate, ETA). */
const RUNNING_REFRESH_MS = 5_000;

type Account = TelegramAccount & ApiObject;
type Slice = CampaignSlice & ApiObject;
type CampaignObject = Campaign & ApiObject;
type ConfigMapObject = ApiObject & { data?: Record<string, string> };

export interface CampaignReconcilerDeps {
  rest: RestClient;
  campaigns: Informer<CampaignObject>;
  slices: Informer<Slice>;
  accounts: Informer<Account>;
  events: EventRecorder;
  logger?: Logger;
  now?: () => Date;
}

const selectorMatches = (
  labels: Record<string, string> | undefined,
  selector: NonNullable<Campaign['spec']['senders']['selector']>,
): boolean => {
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels?.[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = labels !== undefined && e.key in labels;
    const value = labels?.[e.key];
    if (e.operator === 'Exists' && !has) return false;
    if (e.operator === 'DoesNotExist' && has) return false;
    if (e.operator === 'In' && !(value !== undefined && (e.values ?? []).includes(value))) return false;
    if (e.operator === 'NotIn' && value !== undefined && (e.values ?? []).includes(value)) return false;
  }
  return true;
};

/** The accounts a campaign names or selects (existing ones, for `selector`). */
export function selectedSenders(campaign: Campaign, accounts: readonly TelegramAccount[]): string[] {
  const senders = campaign.spec.senders;
  if (senders.names) return [...senders.names].sort();
  if (!senders.selector) return [];
  const selector = senders.selector;
  return accounts
    .filter((a) => selectorMatches(a.metadata.labels, selector))
    .map((a) => a.metadata.name ?? '')
    .sort();
}

export class CampaignReconciler implements Reconciler {
  private readonly now: () => Date;
  /** Decoded recipients per slice (by uid): planning must know what is already sliced. */
  private readonly slicedKeys = new Map<string, { resourceVersion: string; keys: string[] }>();
  /** Outcome counters over time, per campaign: the sliding window behind autoPause. */
  private readonly history = new Map<string, OutcomeSample[]>();
  /** When each account was first seen Ready (continuously), on our clock. */
  private readonly readySince = new Map<string, number>();
  private readonly lastPhase = new Map<string, string>();

  constructor(private readonly deps: CampaignReconcilerDeps) {
    this.now = deps.now ?? (() => new Date());
  }

  async reconcile(key: ObjectKey, context: ReconcileContext): Promise<ReconcileResult | void> {
    const id = `${key.namespace}/${key.name}`;
    const campaign = this.deps.campaigns.get(key.namespace, key.name);
    if (!campaign || campaign.metadata.deletionTimestamp) {
      this.history.delete(id);
      this.lastPhase.delete(id);
      return undefined;
    }
    const now = this.now();
    const slices = this.deps.slices
      .byIndex(CAMPAIGN_SLICE_INDEX, id)
      .sort((a, b) => a.spec.index - b.spec.index);

    // 1. Plan: the recipients, and slices for the ones not sliced yet.
    const plan = await this.plan(campaign, slices, context.signal);
    if (plan.created > 0) return { requeueAfterMs: 500 };

    // 2. Senders, and whether anything may be sent now.
    const accounts = this.deps.accounts.list(key.namespace);
    const selected = new Set(selectedSenders(campaign, accounts));
    const senderViews = this.senderViews(campaign, selected, slices, accounts, now);
    const schedule = this.schedule(campaign, now);
    const generation = campaign.metadata.generation ?? 0;
    let autoPausedGeneration = campaign.status?.autoPausedGeneration;
    if (autoPausedGeneration !== undefined && generation > autoPausedGeneration)
      autoPausedGeneration = undefined;
    const totalsNow = this.sample(id, slices);
    if (autoPausedGeneration === undefined && campaign.spec.autoPause) {
      const ratio = recentFailureRatio(this.history.get(id) ?? [], campaign.spec.autoPause.window ?? 100);
      if (ratio !== undefined && ratio * 100 > campaign.spec.autoPause.failureRatioPercent) {
        autoPausedGeneration = generation;
        this.deps.events.event(
          campaign,
          'Warning',
          'AutoPaused',
          `${Math.round(ratio * 100)}% of the latest sends failed (autoPause.failureRatioPercent ${campaign.spec.autoPause.failureRatioPercent}): paused; change the spec (e.g. suspend: true, then false) to resume`,
        );
      }
    }
    const eligible = senderViews.views.filter((s) => s.eligible);
    let hold: Hold;
    if (plan.missing.length > 0)
      hold = {
        reason: 'RecipientsMissing',
        message: `recipient ConfigMaps not found: ${plan.missing.join(', ')}; create them (nothing is sent until every list can be read)`,
      };
    else if (campaign.spec.suspend) hold = { reason: 'Suspended', message: 'spec.suspend is true' };
    else if (autoPausedGeneration !== undefined)
      hold = {
        reason: 'AutoPaused',
        message: `more than ${campaign.spec.autoPause?.failureRatioPercent}% of the latest sends failed; change the spec to resume`,
      };
    else if (schedule.state === 'notYet')
      hold = {
        reason: schedule.reason,
        message: `${schedule.reason === 'BeforeStart' ? 'starts' : 'the sending window opens'} at ${schedule.opensAt.toISOString()}`,
      };
    else if (eligible.length === 0 && totalsNow.outstanding > 0)
      hold = {
        reason: 'NoSender',
        message: `none of the senders can send: ${senderViews.why.join('; ') || 'no TelegramAccount selected'}`,
      };

    // 3. Assignment and pace, into the slice specs.
    const views: SliceView[] = slices.map((s) => ({
      name: s.metadata.name ?? '',
      index: s.spec.index,
      sender: s.spec.sender || undefined,
      assignment: s.spec.assignment,
      releaseRequested: s.spec.releaseRequested ?? false,
      released: s.status?.released === true && s.status.assignment === s.spec.assignment,
      remaining: remainingOf(s),
    }));
    const assignments = assignSlices(views, senderViews.views);
    const active = new Set(
      assignments.filter((a, i) => a.sender && (views[i]?.remaining ?? 0) > 0).map((a) => a.sender),
    );
    const pace = campaign.spec.pace ?? {};
    const perSender = Math.max(
      1,
      Math.min(
        pace.perSenderMessagesPerMinute ?? 20,
        Math.floor((pace.messagesPerMinute ?? 60) / Math.max(1, active.size)),
      ),
    );
    const paused = hold !== undefined || schedule.state === 'ended';
    const wanted = slices.map((slice, i) => ({ slice, a: assignments[i] }));
    await forEachLimited(wanted, 16, async ({ slice, a }) => {
      if (!a) return;
      await this.applySliceSpec(
        slice,
        {
          sender: a.sender ?? '',
          assignment: a.assignment,
          releaseRequested: a.releaseRequested,
          paused,
          messagesPerMinute: perSender,
          retryFailedRound: campaign.spec.retry?.retryFailedRound ?? 0,
        },
        context.signal,
      );
    });

    // 4. Status.
    const status = campaignProgress({
      campaign,
      slices,
      duplicates: plan.duplicates,
      planning: slices.length === 0 && plan.missing.length === 0 && plan.total > 0,
      noRecipients: slices.length === 0 && plan.missing.length === 0 && plan.total === 0,
      hold,
      ended:
        schedule.state === 'ended'
          ? {
              reason: schedule.reason,
              message:
                schedule.reason === 'TooLate'
                  ? `could first start more than schedule.maxLatenessSeconds after schedule.startTime: not started`
                  : 'schedule.endTime passed (or no window opens before it): recipients not reached stay pending',
            }
          : undefined,
      senders: senderViews.summaries,
      now,
      autoPausedGeneration,
    });
    await this.applyStatus(campaign, status, context.signal);
    this.announce(campaign, status);

    if (status.phase === 'Completed' || status.phase === 'Failed') return undefined;
    if (schedule.state === 'notYet')
      return { requeueAfterMs: Math.max(1000, schedule.opensAt.getTime() - now.getTime() + 500) };
    if (schedule.state === 'open' && schedule.closesAt)
      return {
        requeueAfterMs: Math.min(
          RUNNING_REFRESH_MS,
          Math.max(1000, schedule.closesAt.getTime() - now.getTime() + 500),
        ),
      };
    return { requeueAfterMs: RUNNING_REFRESH_MS };
  }

  private schedule(campaign: Campaign, now: Date): ReturnType<typeof scheduleState> {
    const spec = campaign.spec.schedule;
    if (spec?.window && !isValidTimeZone(spec.window.timeZone))
      return { state: 'ended', reason: 'PastEndTime' };
    const firstRunnable = campaign.status?.startedAt
      ? new Date(campaign.status.startedAt)
      : campaign.metadata.creationTimestamp
        ? new Date(campaign.metadata.creationTimestamp)
        : now;
    return scheduleState(spec, now, campaign.status?.startedAt ? undefined : firstRunnable);
  }

  private sample(id: string, slices: readonly Slice[]): { outstanding: number } {
    let sent = 0;
    let failed = 0;
    let outstanding = 0;
    for (const s of slices) {
      sent += s.status?.counts?.sent ?? 0;
      failed += s.status?.counts?.failed ?? 0;
      outstanding += remainingOf(s) + (s.status?.counts?.inFlight ?? 0);
    }
    const history = this.history.get(id) ?? [];
    const last = history[history.length - 1];
    if (!last || last.sent !== sent || last.failed !== failed) history.push({ sent, failed });
    if (history.length > 10_000) history.splice(0, history.length - 10_000);
    this.history.set(id, history);
    return { outstanding };
  }

  private senderViews(
    campaign: Campaign,
    selected: ReadonlySet<string>,
    slices: readonly Slice[],
    accounts: readonly Account[],
    now: Date,
  ): { views: SenderView[]; summaries: NonNullable<CampaignStatus['senders']>; why: string[] } {
    const byName = new Map(accounts.map((a) => [a.metadata.name ?? '', a]));
    const names = new Set([...selected, ...slices.map((s) => s.spec.sender).filter((s): s is string => !!s)]);
    const views: SenderView[] = [];
    const summaries: NonNullable<CampaignStatus['senders']> = [];
    const why: string[] = [];
    const nowMs = performance.now();
    for (const name of [...names].sort()) {
      const account = byName.get(name);
      const readyCondition = findCondition(account?.status?.conditions, ConditionType.Ready);
      const ready = readyCondition?.status === 'True';
      const key = `${campaign.metadata.namespace}/${name}`;
      if (ready) {
        if (!this.readySince.has(key)) this.readySince.set(key, nowMs);
      } else this.readySince.delete(key);
      // Ready for a while: by the condition's own transition time (written by this operator, so one clock,
      // and it survives an operator restart), or since this process first saw it Ready when it has none.
      const readySinceMs = Date.parse(readyCondition?.lastTransitionTime ?? '');
      const settled =
        ready &&
        (Number.isNaN(readySinceMs)
          ? nowMs - (this.readySince.get(key) ?? nowMs) >= READY_GRACE_MS
          : now.getTime() - readySinceMs >= READY_GRACE_MS);
      // A sender's runtime says it is parked in the slices it writes.
      const reported = slices
        .map((s) => (s.status?.sender === name ? s.status.parked : undefined))
        .find((p) => p !== undefined && (!p.until || Date.parse(p.until) > now.getTime()));
      // Once its slices have moved on, no slice says the sender is parked any more; the campaign's status
      // remembers it, so the sender does not get new slices and hit the same wall again. A park ends when its
      // time is up, or when the account goes through NotReady (logged in again, for example).
      const previous = campaign.status?.senders?.find((p) => p.name === name);
      const remembered =
        ready &&
        previous?.state === 'Parked' &&
        (!previous.until || Date.parse(previous.until) > now.getTime())
          ? { reason: previous.reason ?? 'Parked', ...(previous.until ? { until: previous.until } : {}) }
          : undefined;
      const parked = reported ?? remembered;
      const eligible = selected.has(name) && !!account && settled && !parked && !account.spec.suspend;
      // A short flood wait keeps the sender's slices: it is shown, not acted on.
      const floodUntil = slices
        .map((s) => (s.status?.sender === name ? s.status.floodWaitUntil : undefined))
        .find((u) => u !== undefined && Date.parse(u) > now.getTime());
      views.push({ name, eligible, exists: !!account });
      if (!selected.has(name)) continue;
      let state: 'Sending' | 'Idle' | 'FloodWait' | 'Parked' | 'NotReady' = 'Idle';
      let reason: string | undefined;
      if (!account) {
        state = 'NotReady';
        reason = 'the TelegramAccount does not exist';
      } else if (!ready) {
        state = 'NotReady';
        reason = findCondition(account.status?.conditions, ConditionType.Ready)?.reason ?? 'NotReady';
      } else if (parked) {
        // A flood wait long enough to park the sender is shown as Parked too: its slices go to the others.
        state = 'Parked';
        reason = parked.reason;
        if (previous?.state !== 'Parked')
          this.deps.events.event(
            campaign,
            'Warning',
            'SenderParked',
            `sender ${name} stopped by Telegram (${parked.reason}${parked.until ? ` until ${parked.until}` : ''}): its recipients go to the other senders`,
          );
      } else if (floodUntil) {
        state = 'FloodWait';
        reason = 'FloodWait';
      } else if (slices.some((s) => s.spec.sender === name && remainingOf(s) > 0)) state = 'Sending';
      if (!eligible) why.push(`${name}: ${reason ?? (settled ? 'not selected' : 'just became Ready')}`);
      summaries.push({
        name,
        sent: 0,
        state,
        ...(reason ? { reason } : {}),
        ...(parked?.until ? { until: parked.until } : floodUntil ? { until: floodUntil } : {}),
      });
    }
    return { views, summaries, why };
  }

  private async plan(
    campaign: CampaignObject,
    slices: readonly Slice[],
    signal: AbortSignal,
  ): Promise<{ created: number; duplicates: number; missing: string[]; total: number }> {
    const generation = campaign.metadata.generation ?? 0;
    const planned = campaign.status?.observedGeneration === generation && slices.length > 0;
    if (planned)
      return {
        created: 0,
        duplicates: campaign.status?.duplicates ?? 0,
        missing: [],
        total: campaign.status?.total ?? 0,
      };
    const namespace = campaign.metadata.namespace ?? '';
    const configMaps = new Map<string, ConfigMapObject | null>();
    for (const ref of campaign.spec.recipients.configMapRefs ?? []) {
      if (configMaps.has(ref.name)) continue;
      try {
        configMaps.set(
          ref.name,
          await this.deps.rest.get<ConfigMapObject>(Resources.ConfigMap, namespace, ref.name, { signal }),
        );
      } catch (error) {
        if (!isNotFound(error)) throw error;
        configMaps.set(ref.name, null);
      }
    }
    const plan = planRecipients(campaign.spec.recipients, (name, key) => configMaps.get(name)?.data?.[key]);
    if (plan.missing.length > 0)
      return { created: 0, duplicates: plan.duplicates, missing: plan.missing, total: 0 };
    const sliced = new Set<string>();
    for (const slice of slices) for (const k of this.recipientsOf(slice)) sliced.add(k);
    const nextIndex = slices.reduce((max, s) => Math.max(max, s.spec.index + 1), 0);
    const senders = selectedSenders(campaign, this.deps.accounts.list(namespace)).length;
    const fresh = newSlices(plan.keys, sliced, nextIndex, sliceSizeFor(plan.keys.length, senders));
    await forEachLimited(fresh, 8, async ({ index, keys }) => {
      try {
        await this.deps.rest.create(
          CampaignSliceResource,
          {
            apiVersion: API_VERSION,
            kind: CAMPAIGN_SLICE_KIND,
            metadata: {
              name: sliceName(campaign.metadata.name ?? '', index),
              namespace,
              labels: { [LABEL_CAMPAIGN]: campaign.metadata.name ?? '', [LABEL_MANAGED_BY]: MANAGED_BY },
              ownerReferences: [
                {
                  apiVersion: API_VERSION,
                  kind: 'Campaign',
                  name: campaign.metadata.name ?? '',
                  uid: campaign.metadata.uid ?? '',
                  controller: true,
                  blockOwnerDeletion: true,
                },
              ],
            },
            spec: {
              campaign: campaign.metadata.name ?? '',
              index,
              recipients: encodeRecipients(keys),
              count: keys.length,
              assignment: 0,
              messagesPerMinute: 1,
              paused: true,
            },
          } as ApiObject,
          { signal, fieldManager: PLAN_FIELD_MANAGER },
        );
      } catch (error) {
        if (!isAlreadyExists(error)) throw error;
      }
    });
    if (fresh.length > 0)
      this.deps.logger?.info(
        {
          campaign: `${namespace}/${campaign.metadata.name}`,
          slices: fresh.length,
          recipients: plan.keys.length,
        },
        'planned campaign slices',
      );
    return { created: fresh.length, duplicates: plan.duplicates, missing: [], total: plan.keys.length };
  }

  private recipientsOf(slice: Slice): string[] {
    const uid = slice.metadata.uid ?? slice.metadata.name ?? '';
    const cached = this.slicedKeys.get(uid);
    // A slice's recipients never change once written; the resourceVersion check is belt and braces.
    if (cached) return cached.keys;
    const keys = decodeRecipients(slice.spec.recipients);
    this.slicedKeys.set(uid, { resourceVersion: slice.metadata.resourceVersion ?? '', keys });
    return keys;
  }

  private async applySliceSpec(
    slice: Slice,
    want: {
      sender: string;
      assignment: number;
      releaseRequested: boolean;
      paused: boolean;
      messagesPerMinute: number;
      retryFailedRound: number;
    },
    signal: AbortSignal,
  ): Promise<void> {
    const spec = slice.spec;
    if (
      (spec.sender ?? '') === want.sender &&
      spec.assignment === want.assignment &&
      (spec.releaseRequested ?? false) === want.releaseRequested &&
      (spec.paused ?? false) === want.paused &&
      spec.messagesPerMinute === want.messagesPerMinute &&
      (spec.retryFailedRound ?? 0) === want.retryFailedRound
    )
      return;
    await this.deps.rest.applyPatch(
      CampaignSliceResource,
      {
        apiVersion: API_VERSION,
        kind: CAMPAIGN_SLICE_KIND,
        metadata: { name: slice.metadata.name, namespace: slice.metadata.namespace },
        spec: want,
      } as ApiObject,
      { fieldManager: SLICE_FIELD_MANAGER, force: true, signal },
    );
  }

  private async applyStatus(
    campaign: CampaignObject,
    status: CampaignStatus,
    signal: AbortSignal,
  ): Promise<void> {
    if (sameStatus(campaign.status, status)) return;
    await this.deps.rest.applyStatus(
      CampaignResource,
      {
        apiVersion: API_VERSION,
        kind: 'Campaign',
        metadata: { name: campaign.metadata.name, namespace: campaign.metadata.namespace },
        status,
      } as ApiObject,
      { fieldManager: STATUS_FIELD_MANAGER, force: true, signal },
    );
  }

  /** Events a user acts on: started, paused, completed, failed. */
  private announce(campaign: CampaignObject, status: CampaignStatus): void {
    const id = `${campaign.metadata.namespace}/${campaign.metadata.name}`;
    const before = this.lastPhase.get(id) ?? campaign.status?.phase;
    const phase = status.phase ?? 'Pending';
    this.lastPhase.set(id, phase);
    if (before === phase) return;
    const ready = findCondition(status.conditions, 'Ready');
    if (phase === 'Running' && (before === undefined || before === 'Pending' || before === 'Scheduled'))
      this.deps.events.event(campaign, 'Normal', 'Started', `sending to ${status.total} recipients`);
    else if (phase === 'Paused')
      this.deps.events.event(campaign, 'Normal', 'Paused', ready?.message ?? 'paused');
    else if (phase === 'Completed')
      this.deps.events.event(
        campaign,
        'Normal',
        'Completed',
        `${status.sent} sent, ${status.failed} failed, ${status.inDoubt} in doubt of ${status.total}`,
      );
    else if (phase === 'Failed')
      this.deps.events.event(campaign, 'Warning', 'Failed', ready?.message ?? 'failed');
  }
}

/** Recipients of a slice still to send (pending; in-flight ones are the sender's). */
function remainingOf(slice: CampaignSlice): number {
  const c = slice.status?.counts;
  if (!c) return slice.spec.count;
  return Math.max(0, slice.spec.count - c.sent - c.failed - c.inFlight - c.inDoubt);
}

function sameStatus(a: CampaignStatus | undefined, b: CampaignStatus): boolean {
  if (!a) return false;
  const strip = (s: CampaignStatus): unknown => ({
    ...s,
    conditions: (s.conditions ?? []).map(({ lastTransitionTime: _t, ...c }) => c),
    estimatedCompletionTime: undefined,
  });
  // The ETA moves every pass; it alone is not worth a write.
  return JSON.stringify(strip(a)) === JSON.stringify(strip(b));
}
