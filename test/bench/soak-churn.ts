/**
 * The churn of the soak benchmark: a day of what users and the network do to a fleet of accounts, spread
 * evenly over the run. Each account lives in a fixed slot (name, bot token, deletion policy, proxy or not);
 * a slot's account is created, suspended and resumed, moved between the two runtime pools, deleted (with
 * deletionPolicy LogOut: logged out; with KeepSession: session kept, and the next create in that slot
 * restores it) and created again. Besides: small Campaigns from three sender slots that are never churned,
 * the primary proxy of the proxied accounts dying and coming back in the simulated world, and every
 * connection to the API server cut (watches included).
 *
 * Only accounts that reached Ready are suspended, moved or deleted: a change to an account still logging in
 * tests the start-up path, not the day.
 */
import {
  API_VERSION,
  type Campaign,
  type TelegramAccount,
  type TelegramAccountSpec,
} from '../../crds/index.js';
import { CampaignResource, TelegramAccountResource } from '../../crds/resources.js';
import type { RestClient } from '../../operator/kube/client.js';
import { isNotFound } from '../../operator/kube/errors.js';
import type { Informer } from '../../operator/kube/reflector.js';
import type { ApiObject } from '../../operator/kube/resource.js';
import type { World } from '../../runtime/simulator/world.js';
import type { ApiProxy } from '../support/api-proxy.js';

export type OpKind =
  | 'create'
  | 'suspend'
  | 'resume'
  | 'move'
  | 'logout'
  | 'delete'
  | 'campaign'
  | 'proxy_failover'
  | 'proxy_recover'
  | 'watch_cut';

/**
 * Operations per simulated day for 60 account slots (scaled linearly with the slot count, except the
 * fleet-wide ones: campaigns, proxy outages and watch cuts). Every account is deleted and created again about
 * 1.5 times a day, suspended once and moved once; one campaign and one proxy outage an hour; a watch cut
 * every half hour.
 */
export const DAY_PLAN_PER_60: Readonly<Record<OpKind, number>> = {
  create: 90,
  suspend: 60,
  resume: 60,
  move: 60,
  logout: 45,
  delete: 45,
  campaign: 24,
  proxy_failover: 24,
  proxy_recover: 24,
  watch_cut: 48,
};
const FLEET_WIDE = new Set<OpKind>(['campaign', 'proxy_failover', 'proxy_recover', 'watch_cut']);

/**
 * Network events are not compressed below the time the clients need to get over one, or the run would
 * measure a network that never works instead of a day with outages: a proxy outage and recovery take at
 * least a minute (health checks every 10 s, several failed pings before a switch), and watch cuts come at
 * least `minCutIntervalMs` apart (informers reset their retry backoff after two quiet minutes; cuts closer
 * together keep every watch in 30 s backoffs).
 */
export const MIN_PROXY_CYCLE_MS = 60_000;

export function dayPlan(slots: number, runMs: number, minCutIntervalMs: number): Record<OpKind, number> {
  const out = {} as Record<OpKind, number>;
  for (const [kind, n] of Object.entries(DAY_PLAN_PER_60) as Array<[OpKind, number]>)
    out[kind] = FLEET_WIDE.has(kind) ? n : Math.max(1, Math.round((n * slots) / 60));
  const cycles = Math.min(out.proxy_failover, Math.max(1, Math.floor(runMs / MIN_PROXY_CYCLE_MS)));
  out.proxy_failover = cycles;
  out.proxy_recover = cycles;
  out.watch_cut = Math.min(out.watch_cut, Math.floor(runMs / minCutIntervalMs));
  return out;
}

/**
 * How many operations of each kind are due by `fraction` (0..1) of the run: evenly spaced, each kind offset
 * by its own phase so that kinds do not all fire on the same tick (a recovery half a period after a failure).
 */
export function dueCounts(plan: Readonly<Record<OpKind, number>>, fraction: number): Record<OpKind, number> {
  const out = {} as Record<OpKind, number>;
  const kinds = Object.keys(plan) as OpKind[];
  kinds.forEach((kind, i) => {
    const phase =
      kind === 'proxy_recover' ? 0.5 : kind === 'proxy_failover' ? 0 : (i + 1) / (kinds.length + 1);
    out[kind] = Math.max(0, Math.min(plan[kind], Math.floor(plan[kind] * Math.min(1, fraction) + 1 - phase)));
  });
  return out;
}

export const SENDER_SLOTS = 3;
export const PRIMARY_PROXY = { server: 'px-a.soak.invalid', port: 1080 };
export const FAILOVER_PROXY = { server: 'px-b.soak.invalid', port: 1080 };
const POOLS = ['default', 'spare'] as const;

export interface Slot {
  readonly index: number;
  readonly name: string;
  readonly policy: 'LogOut' | 'KeepSession';
  readonly proxied: boolean;
  readonly sender: boolean;
  state: 'absent' | 'live' | 'deleting';
  /** The policy of the last deletion, while the slot is absent (KeepSession: its Lease and Secrets stay). */
  deletedWith?: 'LogOut' | 'KeepSession';
}

export function makeSlots(count: number): Slot[] {
  return Array.from({ length: count }, (_, index) => {
    const sender = index < SENDER_SLOTS;
    return {
      index,
      name: `soak-${String(index).padStart(3, '0')}`,
      // Senders log out at the end: they are the ones always there.
      policy: sender || index % 2 === 0 ? 'LogOut' : 'KeepSession',
      proxied: !sender && index % 3 === 0,
      sender,
      state: 'absent',
    };
  });
}

export const tokenSecretName = (slot: Slot): string => `${slot.name}-token`;

export interface ChurnDeps {
  rest: RestClient;
  namespace: string;
  accounts: Informer<TelegramAccount & ApiObject>;
  world: World;
  proxy: ApiProxy;
  /** Recipients (usernames) every sender may write to. */
  recipients: readonly string[];
  log: (line: string) => void;
}

const isReady = (a: TelegramAccount | undefined): boolean =>
  a?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

export class Churn {
  readonly done: Record<OpKind, number>;
  /** Operations that were due but found nothing to act on (e.g. no Ready account to suspend). */
  readonly skipped: Record<OpKind, number>;
  readonly errors: Record<OpKind, number>;
  campaignsCompleted = 0;
  campaignsFailed = 0;
  connectionsCut = 0;
  /** Times a proxied account's status showed it switched to the failover proxy, or back. */
  observedFailovers = 0;
  observedRecoveries = 0;
  private started: Record<OpKind, number>;
  private campaign?: string;
  private campaignSeq = 0;
  private primaryDead = false;
  private rng = 42;
  private readonly proxyInUse = new Map<string, string>();
  private readonly errorsLogged = new Set<string>();

  constructor(
    readonly slots: Slot[],
    private readonly plan: Readonly<Record<OpKind, number>>,
    private readonly deps: ChurnDeps,
  ) {
    const zero = (): Record<OpKind, number> =>
      Object.fromEntries(Object.keys(plan).map((k) => [k, 0])) as Record<OpKind, number>;
    this.done = zero();
    this.skipped = zero();
    this.errors = zero();
    this.started = zero();
  }

  /** Deterministic, so two runs of the same length make the same choices where the cluster allows. */
  private random(): number {
    this.rng = (this.rng * 1103515245 + 12345) % 2 ** 31;
    return this.rng / 2 ** 31;
  }

  private pick<T>(items: readonly T[]): T | undefined {
    return items.length === 0 ? undefined : items[Math.floor(this.random() * items.length)];
  }

  private account(slot: Slot): TelegramAccount | undefined {
    return this.deps.accounts.get(this.deps.namespace, slot.name);
  }

  spec(slot: Slot, pool: string): TelegramAccountSpec {
    return {
      type: 'Bot',
      botTokenSecretRef: { name: tokenSecretName(slot) },
      apiCredentialsSecretRef: { name: 'api' },
      deletionPolicy: slot.policy,
      runtimePool: pool,
      ...(slot.proxied
        ? {
            proxy: {
              type: 'Socks5',
              ...PRIMARY_PROXY,
              failover: [{ type: 'Socks5', ...FAILOVER_PROXY }],
              checkIntervalSeconds: 10,
            },
          }
        : {}),
    } as TelegramAccountSpec;
  }

  async create(slot: Slot): Promise<void> {
    const pool = slot.sender ? 'default' : (this.pick(POOLS) ?? 'default');
    await this.deps.rest.create(TelegramAccountResource, {
      apiVersion: API_VERSION,
      kind: 'TelegramAccount',
      metadata: { name: slot.name, namespace: this.deps.namespace },
      spec: this.spec(slot, pool),
    } as ApiObject);
    slot.state = 'live';
    slot.deletedWith = undefined;
  }

  /** Slots whose deletion finished (the account is gone from the cache) become absent. */
  private settle(): void {
    for (const slot of this.slots)
      if (slot.state === 'deleting' && !this.account(slot)) slot.state = 'absent';
  }

  /** Counts proxy switches the runtime reported, from the accounts' status.proxy.inUse. */
  private observeProxies(): void {
    const failover = `${FAILOVER_PROXY.server}:${FAILOVER_PROXY.port}`;
    const primary = `${PRIMARY_PROXY.server}:${PRIMARY_PROXY.port}`;
    for (const slot of this.slots) {
      if (!slot.proxied) continue;
      const inUse = this.account(slot)?.status?.proxy?.inUse;
      if (!inUse) continue;
      const before = this.proxyInUse.get(slot.name);
      if (before === primary && inUse === failover) this.observedFailovers++;
      if (before === failover && inUse === primary) this.observedRecoveries++;
      this.proxyInUse.set(slot.name, inUse);
    }
  }

  /** The next day of the plan: its operations are due again from the start (totals keep counting). */
  beginDay(): void {
    for (const kind of Object.keys(this.started) as OpKind[]) this.started[kind] = 0;
  }

  /** Runs every operation due by `fraction` of the run (one at a time: each is one or two API calls). */
  async tick(fraction: number): Promise<void> {
    this.settle();
    this.observeProxies();
    await this.checkCampaign();
    const due = dueCounts(this.plan, fraction);
    for (const kind of Object.keys(due) as OpKind[]) {
      while (this.started[kind] < due[kind]) {
        this.started[kind]++;
        try {
          if (await this.run(kind)) this.done[kind]++;
          else this.skipped[kind]++;
        } catch (error) {
          this.errors[kind]++;
          const message = error instanceof Error ? error.message : String(error);
          const key = `${kind}: ${message.slice(0, 80)}`;
          if (!this.errorsLogged.has(key)) {
            this.errorsLogged.add(key);
            this.deps.log(`  churn: ${kind} failed: ${message.slice(0, 300)}`);
          }
        }
      }
    }
  }

  /** One operation; false when nothing qualified. */
  private async run(kind: OpKind): Promise<boolean> {
    const { rest, namespace } = this.deps;
    const ready = (slot: Slot): boolean =>
      slot.state === 'live' &&
      !slot.sender &&
      isReady(this.account(slot)) &&
      !this.account(slot)?.spec.suspend;
    const patch = (slot: Slot, spec: Partial<TelegramAccountSpec>): Promise<unknown> =>
      rest.mergePatch(TelegramAccountResource, namespace, slot.name, { spec });
    switch (kind) {
      case 'create': {
        const slot = this.pick(this.slots.filter((s) => s.state === 'absent'));
        if (!slot) return false;
        await this.create(slot);
        return true;
      }
      case 'suspend': {
        const slot = this.pick(this.slots.filter(ready));
        if (!slot) return false;
        await patch(slot, { suspend: true });
        return true;
      }
      case 'resume': {
        const slot = this.pick(
          this.slots.filter((s) => s.state === 'live' && this.account(s)?.spec.suspend === true),
        );
        if (!slot) return false;
        await patch(slot, { suspend: false });
        return true;
      }
      case 'move': {
        const slot = this.pick(this.slots.filter(ready));
        if (!slot) return false;
        const current = this.account(slot)?.spec.runtimePool ?? 'default';
        await patch(slot, { runtimePool: current === 'default' ? 'spare' : 'default' });
        return true;
      }
      case 'logout':
      case 'delete': {
        const policy = kind === 'logout' ? 'LogOut' : 'KeepSession';
        const slot = this.pick(this.slots.filter((s) => ready(s) && s.policy === policy));
        if (!slot) return false;
        await this.deleteAccount(slot);
        return true;
      }
      case 'campaign':
        return this.startCampaign();
      case 'proxy_failover':
      case 'proxy_recover': {
        const dead = kind === 'proxy_failover';
        if (this.primaryDead === dead) return false;
        this.deps.world.setProxyDead(PRIMARY_PROXY.server, PRIMARY_PROXY.port, dead);
        this.primaryDead = dead;
        return true;
      }
      case 'watch_cut':
        this.connectionsCut += this.deps.proxy.dropConnections();
        return true;
    }
  }

  async deleteAccount(slot: Slot): Promise<void> {
    try {
      await this.deps.rest.delete(TelegramAccountResource, this.deps.namespace, slot.name);
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
    slot.state = 'deleting';
    slot.deletedWith = slot.policy;
  }

  private async startCampaign(): Promise<boolean> {
    if (this.campaign) return false;
    const senders = this.slots.filter((s) => s.sender && isReady(this.account(s))).map((s) => s.name);
    if (senders.length === 0) return false;
    const name = `soak-campaign-${++this.campaignSeq}`;
    await this.deps.rest.create(CampaignResource, {
      apiVersion: API_VERSION,
      kind: 'Campaign',
      metadata: { name, namespace: this.deps.namespace },
      spec: {
        senders: { names: senders },
        message: { text: `Soak campaign ${this.campaignSeq}` },
        recipients: { usernames: [...this.deps.recipients] },
        pace: { messagesPerMinute: 6000, perSenderMessagesPerMinute: 3000 },
      },
    } as ApiObject);
    this.campaign = name;
    return true;
  }

  /** Deletes the running campaign once it finished, so the next one may start. */
  private async checkCampaign(): Promise<void> {
    if (!this.campaign) return;
    let campaign: Campaign | undefined;
    try {
      campaign = await this.deps.rest.get<Campaign & ApiObject>(
        CampaignResource,
        this.deps.namespace,
        this.campaign,
      );
    } catch (error) {
      if (!isNotFound(error)) return;
    }
    const phase = campaign?.status?.phase;
    if (campaign && phase !== 'Completed' && phase !== 'Failed') return;
    if (phase === 'Completed') this.campaignsCompleted++;
    if (phase === 'Failed') this.campaignsFailed++;
    await this.deleteCampaign();
  }

  async deleteCampaign(): Promise<void> {
    if (!this.campaign) return;
    try {
      await this.deps.rest.delete(CampaignResource, this.deps.namespace, this.campaign);
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
    this.campaign = undefined;
  }

  /** Ends the churn: the campaign deleted, the primary proxy alive again. */
  async stop(): Promise<void> {
    await this.deleteCampaign();
    if (this.primaryDead) this.deps.world.setProxyDead(PRIMARY_PROXY.server, PRIMARY_PROXY.port, false);
    this.primaryDead = false;
  }

  /** Live accounts right now (from the cache). */
  liveAccounts(): number {
    return this.deps.accounts.list(this.deps.namespace).length;
  }
}
