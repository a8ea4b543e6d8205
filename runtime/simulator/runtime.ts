/**
 * What every simulated client of one backend shares: the world, the clock, the outbox, the scheduler, the
 * liveness machinery and the per-account counters. One SimRuntime per SimulatorBackend (per process, in
 * practice); the world directory is what several of them share.
 */
import type { Logger } from '../../operator/kube/logging.js';
import type { TdReceived } from '../tdlib/backend.js';
import { DeliveryIndex } from './delivery-index.js';
import { AccountState } from './limits.js';
import type { Json } from './protocol.js';
import { Scheduler } from './scheduler.js';
import { JsonlAppender } from './store/jsonl.js';
import { InstanceRegistry, LeaseDir } from './store/liveness.js';
import { DbLocks } from './store/locks.js';
import {
  appendEdit,
  type Delivery,
  type EditRecord,
  type World,
  type WorldEvent,
  type WorldView,
} from './world.js';

/** xorshift32: deterministic per world seed, so fault injection can be replayed. */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4294967296;
  };
}

export interface Clock {
  now(): number;
}

export class SimRuntime {
  readonly scheduler: Scheduler;
  readonly registry: InstanceRegistry;
  readonly leases: LeaseDir;
  readonly dbLocks: DbLocks;
  readonly random: () => number;
  private readonly deliveryLog: JsonlAppender;
  /** Every delivered message by conversation, read incrementally from the shared delivery log. */
  readonly deliveryIndex: DeliveryIndex;
  /** Writers with state to persist before the next batch of answers reaches the clients. */
  private readonly beforeEmit = new Set<{ persist(): void }>();
  private readonly accounts = new Map<number, AccountState>();
  private outbox: TdReceived[] = [];
  private flushScheduled = false;
  private listener: ((batch: readonly TdReceived[]) => void) | undefined;
  private cachedView: WorldView;
  private viewCheckedAt = 0;

  constructor(
    readonly world: World,
    readonly clock: Clock,
    readonly logger: Logger | undefined,
  ) {
    this.cachedView = world.view();
    const sim = this.cachedView.config.simulation;
    this.registry = new InstanceRegistry(world.stateDir, sim.lease_ttl_ms);
    this.leases = new LeaseDir(world.path('live'), this.registry);
    this.dbLocks = new DbLocks(world.stateDir, this.registry);
    this.deliveryLog = new JsonlAppender(world.path('deliveries.jsonl'));
    this.deliveryIndex = new DeliveryIndex(world.path('deliveries.jsonl'), (id) => this.view().isAccount(id));
    this.random = rng(this.cachedView.config.seed ^ process.pid);
    this.scheduler = new Scheduler(
      () => this.clock.now(),
      () => this.flush(),
    );
  }

  now(): number {
    return this.clock.now();
  }

  /**
   * The effective world. Re-checked at most once per poll interval: the hot path asks on every send and
   * a stat per call would dominate it.
   */
  view(): WorldView {
    const now = Date.now();
    if (now - this.viewCheckedAt >= this.cachedView.config.simulation.poll_interval_ms) {
      this.viewCheckedAt = now;
      try {
        this.cachedView = this.world.view();
      } catch (error) {
        // A world file edited into an invalid state keeps the last good view; say why once per change.
        this.logger?.error({ err: error }, 'simulator world became invalid; keeping the previous one');
      }
    }
    return this.cachedView;
  }

  refreshView(): WorldView {
    this.viewCheckedAt = 0;
    return this.view();
  }

  setListener(listener: (batch: readonly TdReceived[]) => void): void {
    this.listener = listener;
    if (this.outbox.length > 0) this.scheduleFlush();
  }

  emit(clientId: number, object: { readonly '@type': string }, extra?: Json): void {
    const out = object as TdReceived & { '@client_id': number; '@extra'?: Json };
    if (extra !== undefined) out['@extra'] = extra;
    out['@client_id'] = clientId;
    this.outbox.push(out);
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  /**
   * Deliveries reach the shared log before the updates announcing them reach the client, so whoever sees
   * updateMessageSendSucceeded can count the delivery from any process.
   */
  flush(): void {
    this.flushScheduled = false;
    this.deliveryLog.flush();
    // Pending sends (message database) are on disk before the client sees the temporary message.
    for (const writer of this.beforeEmit) writer.persist();
    this.beforeEmit.clear();
    if (this.outbox.length === 0 || this.listener === undefined) return;
    const batch = this.outbox;
    this.outbox = [];
    this.listener(batch);
  }

  /** Serialized by hand: one record per send, and a generic JSON.stringify was a visible share of a send. */
  recordDelivery(d: Delivery): void {
    this.deliveryLog.appendLine(
      `{"at":${d.at},"from":${d.from},"to":${d.to},"chat_id":${d.chat_id},"message_id":${d.message_id},` +
        `"text":${JSON.stringify(d.text)},"sender_kind":"${d.sender_kind}","status":"${d.status}",` +
        `"auth_key":${JSON.stringify(d.auth_key)},"pid":${d.pid}` +
        (d.date === undefined ? '' : `,"date":${d.date}`) +
        (d.random_id === undefined ? '' : `,"random_id":"${d.random_id}"`) +
        (d.entities === undefined || d.entities.length === 0
          ? ''
          : `,"entities":${JSON.stringify(d.entities)}`) +
        '}',
    );
  }

  /**
   * Edits are rare: each is written at once (one O_APPEND write), so it is in the shared log before the
   * edit's answer and updates reach the client, and any process that sees them can read the new text.
   */
  recordEdit(edit: EditRecord): void {
    appendEdit(this.world.path('edits.jsonl'), edit);
  }

  /** The delivery index, up to date with every process's deliveries (this one's unwritten lines first). */
  history(): DeliveryIndex {
    this.deliveryLog.flush();
    this.deliveryIndex.refresh();
    return this.deliveryIndex;
  }

  /** `writer.persist()` runs at the next flush, before the answers and updates of this turn go out. */
  persistBeforeEmit(writer: { persist(): void }): void {
    this.beforeEmit.add(writer);
    this.scheduleFlush();
  }

  event(event: Omit<WorldEvent, 'at' | 'pid'>): void {
    this.world.appendEvent({ at: Date.now(), pid: process.pid, ...event });
  }

  account(userId: number): AccountState {
    let state = this.accounts.get(userId);
    if (state === undefined) {
      state = AccountState.load(this.world.stateDir, userId);
      this.accounts.set(userId, state);
    }
    return state;
  }

  saveAccounts(): void {
    for (const state of this.accounts.values()) state.save();
  }

  close(): void {
    this.scheduler.close();
    this.saveAccounts();
    for (const writer of this.beforeEmit) writer.persist();
    this.beforeEmit.clear();
    this.flush();
    this.deliveryLog.close();
  }
}
