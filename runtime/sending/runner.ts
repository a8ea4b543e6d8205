/**
 * The runtime's campaign side: for every account hosted here and every campaign that assigned it slices, a
 * CampaignSender stepping on its own timer. Campaigns and slices come from caches (watched in the pod's
 * namespace); a sender starts when its account can send and has work, and stops (draining what is in flight)
 * when its account stops being hosted here or the campaign goes away.
 */
import {
  API_VERSION,
  CAMPAIGN_SLICE_KIND,
  CampaignResource,
  CampaignSliceResource,
  LABEL_CAMPAIGN,
  type Campaign,
  type CampaignSlice,
  type CampaignSliceStatus,
} from '../../crds/index.js';
import type { RestClient } from '../../operator/kube/client.js';
import { isNotFound } from '../../operator/kube/errors.js';
import type { Logger } from '../../operator/kube/logging.js';
import type { Registry } from '../../operator/kube/metrics.js';
import { counter, gauge } from '../../operator/kube/metrics.js';
import { Informer } from '../../operator/kube/reflector.js';
import type { ApiObject } from '../../operator/kube/resource.js';
import { errorMessage } from '../../operator/kube/util.js';
import type { TdObject } from '../tdlib/backend.js';
import type { TdClient } from '../tdlib/client.js';
import { CampaignSender } from './campaign-sender.js';

export const SLICE_STATUS_FIELD_MANAGER = 'tdlib-runtime';

/** What the runner needs of a hosted account. */
export interface SendingAccount {
  name: string;
  /** Its client while it may send (logged in, connected enough to try, fence valid), else undefined. */
  sendingClient(): TdClient | undefined;
  myUserId(): number | undefined;
  isBot(): boolean;
  fenceValid(): boolean;
  epoch(): number;
  /** Its client is about to close (move, suspend, shutdown, log-out): no sender may start for it any more. */
  stoppingSends(): boolean;
}

type Slice = CampaignSlice & ApiObject;

export class CampaignRunner {
  readonly campaigns: Informer<Campaign & ApiObject>;
  readonly slices: Informer<Slice>;
  private readonly senders = new Map<
    string,
    { sender: CampaignSender; timer?: NodeJS.Timeout; running: boolean }
  >();
  /** Drains under way, by account: a second stop of the same account waits for them. */
  private readonly draining = new Map<Promise<void>, string>();
  private readonly sends;
  private readonly floodWait;
  private readonly stoppedWhileParked = new Map<string, { reason: string; untilMs?: number }>();
  private stopped = false;

  constructor(
    private readonly deps: {
      rest: RestClient;
      namespace: string;
      logger: Logger;
      registry: Registry;
      accounts: () => Iterable<SendingAccount>;
      execute: (request: TdObject) => TdObject;
    },
  ) {
    this.campaigns = new Informer<Campaign & ApiObject>(deps.rest, CampaignResource, {
      name: 'campaigns',
      namespace: deps.namespace,
      logger: deps.logger,
      registry: deps.registry,
    });
    this.slices = new Informer<Slice>(deps.rest, CampaignSliceResource, {
      name: 'campaignslices',
      namespace: deps.namespace,
      labelSelector: LABEL_CAMPAIGN,
      logger: deps.logger,
      registry: deps.registry,
    });
    this.slices.addIndex('sender', (s) => (s.spec.sender ? [s.spec.sender] : []));
    // Labels stay bounded: a campaign's name (series removed with the campaign) and a fixed set of results.
    this.sends = counter(deps.registry, {
      name: 'tdlib_campaign_sends_total',
      help: 'Campaign send attempts by campaign and result (sent, failed, retry, parked, inDoubt).',
      labelNames: ['campaign', 'result'],
    });
    this.floodWait = counter(deps.registry, {
      name: 'tdlib_campaign_flood_wait_seconds_total',
      help: 'Seconds Telegram made campaign senders wait (flood waits), by campaign.',
      labelNames: ['campaign'],
    });
    const parkedNow = (): Map<string, string> => this.parkedSenders();
    gauge(deps.registry, {
      name: 'tdlib_campaign_parked_senders',
      help: 'Campaign senders in this runtime that Telegram stopped (PEER_FLOOD, long flood wait, frozen...), by campaign and reason.',
      labelNames: ['campaign', 'reason'],
      collect() {
        this.reset();
        for (const [key, reason] of parkedNow())
          this.inc({ campaign: key.slice(key.indexOf('/') + 1), reason });
      },
    });
    this.slices.onEvent(() => this.reconcileSoon());
    this.campaigns.onEvent(() => this.reconcileSoon());
  }

  start(): void {
    this.campaigns.start();
    this.slices.start();
  }

  private pending?: NodeJS.Timeout;

  /** Accounts or caches changed: start and stop senders (coalesced). */
  reconcileSoon(): void {
    if (this.pending || this.stopped) return;
    this.pending = setTimeout(() => {
      this.pending = undefined;
      this.reconcile();
    }, 100);
  }

  private reconcile(): void {
    if (this.stopped || !this.slices.hasSynced() || !this.campaigns.hasSynced()) return;
    const wanted = new Set<string>();
    for (const account of this.deps.accounts()) {
      // Drained for a stop: a sender started now would send on a client about to close, unrecorded.
      if (account.stoppingSends()) continue;
      const campaigns = new Set(this.slices.byIndex('sender', account.name).map((s) => s.spec.campaign));
      for (const campaign of campaigns) {
        const key = `${account.name}/${campaign}`;
        wanted.add(key);
        if (!this.senders.has(key)) this.startSender(key, account, campaign);
        else this.wake(key);
      }
    }
    for (const key of [...this.senders.keys()]) if (!wanted.has(key)) void this.stopSender(key);
  }

  private startSender(key: string, account: SendingAccount, campaignName: string): void {
    const logger = this.deps.logger.child({
      account: `${this.deps.namespace}/${account.name}`,
      campaign: campaignName,
    });
    const sender = new CampaignSender({
      account: account.name,
      logger,
      client: () => account.sendingClient(),
      myUserId: () => account.myUserId(),
      isBot: () => account.isBot(),
      fenceValid: () => account.fenceValid(),
      epoch: () => account.epoch(),
      execute: this.deps.execute,
      campaign: () => this.campaigns.get(this.deps.namespace, campaignName),
      slices: () =>
        this.slices.byIndex('sender', account.name).filter((s) => s.spec.campaign === campaignName),
      writeStatus: (slice, status) => this.writeStatus(slice, status),
      readSlice: (name) => this.readSlice(name),
      onSend: (result) => this.sends.inc({ campaign: campaignName, result }),
      onFloodWait: (seconds) => this.floodWait.inc({ campaign: campaignName }, seconds),
    });
    this.senders.set(key, { sender, running: false });
    this.stoppedWhileParked.delete(key);
    this.wake(key);
  }

  /** Runs the sender's next step now (unless one is running), then on the delay it asks for. */
  private wake(key: string): void {
    const entry = this.senders.get(key);
    if (!entry || entry.running || this.stopped) return;
    clearTimeout(entry.timer);
    entry.running = true;
    void entry.sender
      .step()
      .catch((error: unknown) => {
        this.deps.logger.warn({ sender: key, err: errorMessage(error) }, 'campaign step failed; retrying');
        return 2000;
      })
      .then((delay) => {
        entry.running = false;
        if (!this.senders.has(key) || this.stopped) return;
        entry.timer = setTimeout(() => this.wake(key), delay);
      });
  }

  private async stopSender(key: string): Promise<void> {
    const entry = this.senders.get(key);
    if (!entry) return;
    this.senders.delete(key);
    clearTimeout(entry.timer);
    await entry.sender.drain(30_000);
    const park = entry.sender.parkedState();
    if (park) this.stoppedWhileParked.set(key, park);
    const campaign = key.slice(key.indexOf('/') + 1);
    if (!this.campaigns.get(this.deps.namespace, campaign) && !this.hasSenderFor(campaign)) {
      for (const result of ['sent', 'failed', 'retry', 'parked', 'inDoubt'])
        this.sends.remove({ campaign, result });
      this.floodWait.remove({ campaign });
    }
  }

  /**
   * Parked senders by key, with their reason. A parked sender's slices move to other senders, which stops it
   * here; it stays parked (and counted) until its park ends, its campaign goes, or its account leaves.
   */
  private parkedSenders(now = Date.now()): Map<string, string> {
    const out = new Map<string, string>();
    for (const [key, { sender }] of this.senders) {
      const reason = sender.parkedReason(now);
      if (reason) out.set(key, reason);
    }
    const hosted = new Set([...this.deps.accounts()].map((a) => a.name));
    for (const [key, park] of this.stoppedWhileParked) {
      const campaign = key.slice(key.indexOf('/') + 1);
      const over = park.untilMs !== undefined && park.untilMs <= now;
      if (
        over ||
        !hosted.has(key.slice(0, key.indexOf('/'))) ||
        !this.campaigns.get(this.deps.namespace, campaign)
      )
        this.stoppedWhileParked.delete(key);
      else if (!out.has(key)) out.set(key, park.reason);
    }
    return out;
  }

  private hasSenderFor(campaign: string): boolean {
    return [...this.senders.keys()].some((k) => k.slice(k.indexOf('/') + 1) === campaign);
  }

  /** Before an account's client closes (move, suspend, shutdown): finish its sends and record them. */
  async drainAccount(account: string, timeoutMs: number): Promise<void> {
    const started = [...this.senders.keys()]
      .filter((k) => k.startsWith(`${account}/`))
      .map((key) => {
        const entry = this.senders.get(key);
        this.senders.delete(key);
        if (!entry) return Promise.resolve();
        clearTimeout(entry.timer);
        const drained = entry.sender.drain(timeoutMs).finally(() => this.draining.delete(drained));
        this.draining.set(drained, account);
        return drained;
      });
    // A drain an interrupted stop began (a move cut short by SIGTERM) is waited for too: the client must not
    // close under sends it has not recorded.
    const earlier = [...this.draining].filter(([, a]) => a === account).map(([p]) => p);
    await Promise.all([...started, ...earlier]);
  }

  /**
   * What a killed process leaves behind, for tests that play a crash in process: no timer and no watch goes on,
   * and nothing is drained or written.
   */
  async abandon(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.pending);
    for (const entry of this.senders.values()) clearTimeout(entry.timer);
    this.senders.clear();
    await this.campaigns.stop();
    await this.slices.stop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.pending);
    await Promise.all([...this.senders.keys()].map((k) => this.stopSender(k)));
    // Drains of accounts that were moving when the process was told to stop write their sends too.
    await Promise.all([...this.draining.keys()]);
    await this.campaigns.stop();
    await this.slices.stop();
  }

  private async writeStatus(slice: CampaignSlice, status: CampaignSliceStatus): Promise<CampaignSlice> {
    return this.deps.rest.applyStatus<Slice>(
      CampaignSliceResource,
      {
        apiVersion: API_VERSION,
        kind: CAMPAIGN_SLICE_KIND,
        metadata: {
          name: slice.metadata.name,
          namespace: slice.metadata.namespace,
          resourceVersion: slice.metadata.resourceVersion,
        },
        status,
      } as ApiObject,
      { fieldManager: SLICE_STATUS_FIELD_MANAGER, force: true },
    );
  }

  private async readSlice(name: string): Promise<CampaignSlice | undefined> {
    try {
      return await this.deps.rest.get<Slice>(CampaignSliceResource, this.deps.namespace, name);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }
}
