/**
 * One account's updates on this pod: TDLib's updates -> pump -> outbox (on this pod's volume) ->
 * deliverer -> the account's sink, plus what status and metrics say about it.
 *
 * Gaps: a user account refills from chat history when its client becomes ready (messages newer than each
 * chat's mark, or, for a chat without one, newer than the outbox itself), so messages that arrived while
 * no client ran (a SIGKILL, a move) are delivered too. A move carries the marks in the session backup
 * (state file, below) set back to what was delivered, so what was still pending on the old pod is
 * refilled on the new one. Bots cannot read history: what arrives while a bot's client is down is what
 * Telegram re-sends when it starts (TDLib asks for the difference; Telegram keeps a bot's updates 24 h).
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../../operator/kube/logging.js';
import { errorMessage } from '../../operator/kube/util.js';
import type { TdObject } from '../tdlib/backend.js';
import type { TdClient } from '../tdlib/client.js';
import { messageEvent, type UpdateEvent, type UpdateKind } from './cloudevents.js';
import { Deliverer, type Post, type SinkTarget } from './deliverer.js';
import { DEFAULT_POLICY, type DeliveryPolicy } from './delivery.js';
import { Outbox, type OutcomeCounts } from './outbox.js';
import { UpdatesPump } from './pump.js';
import type { UpdatesProblem } from './resolve.js';

/** In the database directory, so the session backup carries it to another pod. */
export const UPDATES_STATE_FILE = 'updates-state.json';
/** A refill reads at most this many chats (newest first) and this many messages per chat. */
export const REFILL_MAX_CHATS = 100;
export const REFILL_MAX_PER_CHAT = 1000;
const HISTORY_PAGE = 100;
/** Counters alone are reported at most this often (every change of health at once). */
const FIGURES_EVERY_MS = 10_000;

export interface UpdatesConfig {
  sink?: SinkTarget;
  deadLetter?: SinkTarget;
  sinkURI?: string;
  deadLetterSinkURI?: string;
  kinds: ReadonlySet<UpdateKind>;
  policy: DeliveryPolicy;
  problem?: UpdatesProblem;
}

/** What status.updates and the metrics show. */
export interface UpdatesFigures {
  sinkURI?: string;
  deadLetterSinkURI?: string;
  delivered: number;
  deadLettered: number;
  /** Expired or refused, without a dead-letter sink that took them. */
  dropped: number;
  pending: number;
  /** Events that failed at least once and wait for their next try. */
  retrying: number;
  oldestUndeliveredTime?: string;
  /**
   * Messages dated from here on may not have been delivered: a pod that starts the account without its
   * outbox (after a SIGKILL and a move) refills from here. The oldest pending new message's date, or
   * when nothing is pending, the newest taken in.
   */
  resumeFrom?: string;
  lastFailure?: { time: string; message: string };
  problem?: UpdatesProblem;
  /** Taken over from the previous host's status: this pod's outbox is not open yet. */
  inherited?: boolean;
}

/** The state file: marks set back to what was delivered, so a new pod refills what was pending here. */
interface CarriedState {
  /** When the pod that wrote it closed the outbox (ms). */
  closedAt: number;
  createdAt: number;
  marks: Record<string, number>;
  counts: OutcomeCounts;
}

export interface AccountUpdatesOptions {
  /** This pod's directory for the outbox. */
  dir: string;
  /** The account's database directory (the state file goes there, into the session backup). */
  databaseDir: string;
  source: string;
  isUser: boolean;
  logger: Logger;
  /** The figures changed in a way worth reporting (health at once, counters at most every 10 s). */
  onFigures: (figures: UpdatesFigures) => void;
  /** Delivery started failing, or recovered. */
  onHealth: (failing: boolean, message: string) => void;
  /** What the account's status already shows (a pod taking over an account without its outbox). */
  seedCounts?: Partial<OutcomeCounts>;
  statusResumeFrom?: string;
  post?: Post;
  now?: () => number;
}

export class AccountUpdates {
  private config: UpdatesConfig = { kinds: new Set(), policy: DEFAULT_POLICY };
  private client?: TdClient;
  private readonly retrying = new Set<string>();
  private lastFailure?: { time: string; message: string };
  private failing = false;
  private reportedAt = 0;
  private reportTimer?: NodeJS.Timeout;
  private closed = false;
  private readonly pump: UpdatesPump;
  private readonly deliverer: Deliverer;

  private constructor(
    private readonly outbox: Outbox,
    private readonly options: AccountUpdatesOptions,
  ) {
    const now = options.now ?? Date.now;
    this.deliverer = new Deliverer({
      outbox,
      source: options.source,
      sink: () => this.config.sink,
      deadLetterSink: () => this.config.deadLetter,
      policy: () => this.config.policy,
      ...(options.post ? { post: options.post } : {}),
      now,
      onOutcome: (event, outcome, detail) => this.outcome(event, outcome, detail),
    });
    this.pump = new UpdatesPump({
      outbox,
      kinds: () => this.config.kinds,
      getMessage: (chatId, messageId) => this.getMessage(chatId, messageId),
      delivered: () => {
        this.deliverer.kick();
        this.figuresChanged(false);
      },
      onError: (error) =>
        options.logger.warn({ err: errorMessage(error) }, 'updates: an update was not taken in'),
      now,
    });
  }

  static async open(options: AccountUpdatesOptions): Promise<AccountUpdates> {
    mkdirSync(options.dir, { recursive: true, mode: 0o700 });
    const outbox = await Outbox.open(options.dir, (options.now ?? Date.now)());
    const updates = new AccountUpdates(outbox, options);
    if (outbox.fresh) updates.adoptEarlierState(options.statusResumeFrom);
    if (options.seedCounts) outbox.seedCounts(options.seedCounts);
    return updates;
  }

  configure(config: UpdatesConfig): void {
    const before = JSON.stringify([this.config.sinkURI, this.config.problem]);
    this.config = config;
    this.deliverer.kick();
    this.figuresChanged(JSON.stringify([config.sinkURI, config.problem]) !== before);
  }

  /** The client whose updates come next (a new one after every restart of the account's client). */
  attach(client: TdClient): void {
    this.client = client;
  }

  /** One TDLib update of the attached client, in TDLib's order. */
  onUpdate(client: TdClient, update: TdObject): void {
    if (client !== this.client || this.closed) return;
    const state =
      update['@type'] === 'updateAuthorizationState' ? (update.authorization_state as TdObject) : undefined;
    if (state?.['@type'] === 'authorizationStateReady' && this.options.isUser)
      this.pump.run(() => this.refill(client));
    this.pump.onUpdate(update);
  }

  figures(): UpdatesFigures {
    const pending = this.outbox.list();
    const oldest = pending.reduce((min, p) => Math.min(min, p.enqueuedAt), Infinity);
    const counts = this.outbox.counts;
    const oldestNew = pending.reduce(
      (min, p) => (p.event.kind === 'MessageNew' ? Math.min(min, Date.parse(p.event.time)) : min),
      Infinity,
    );
    const resumeFrom = Number.isFinite(oldestNew) ? oldestNew : this.outbox.newest;
    return {
      ...(this.config.sinkURI ? { sinkURI: this.config.sinkURI } : {}),
      ...(this.config.deadLetterSinkURI ? { deadLetterSinkURI: this.config.deadLetterSinkURI } : {}),
      delivered: counts.delivered,
      deadLettered: counts.deadLettered,
      dropped: counts.expired + counts.rejected,
      pending: pending.length,
      retrying: this.retrying.size,
      ...(Number.isFinite(oldest) ? { oldestUndeliveredTime: new Date(oldest).toISOString() } : {}),
      ...(resumeFrom ? { resumeFrom: new Date(resumeFrom).toISOString() } : {}),
      ...(this.lastFailure ? { lastFailure: this.lastFailure } : {}),
      ...(this.config.problem ? { problem: this.config.problem } : {}),
    };
  }

  /**
   * Before the client closes on purpose: every update taken so far on disk, deliveries in flight settled,
   * and the state a new pod needs written next to the session (the backup runs after this).
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.reportTimer);
    await this.pump.drain();
    await this.deliverer.stop();
    this.writeCarriedState();
    await this.outbox.close();
  }

  // ---- delivery outcomes and reporting ----------------------------------------------------------------

  private outcome(event: UpdateEvent, outcome: string, detail: string): void {
    if (outcome === 'retrying') {
      this.retrying.add(event.id);
      this.lastFailure = { time: new Date().toISOString(), message: detail.slice(0, 256) };
    } else this.retrying.delete(event.id);
    const failing = this.retrying.size > 0;
    if (failing !== this.failing) {
      this.failing = failing;
      this.options.onHealth(
        failing,
        failing
          ? `delivery to ${this.config.sinkURI ?? 'the sink'} fails (${this.lastFailure?.message ?? detail}); events wait in the outbox and are retried`
          : `delivery to ${this.config.sinkURI ?? 'the sink'} recovered`,
      );
    }
    this.figuresChanged(failing !== this.retrying.size > 0 || outcome !== 'delivered');
  }

  private figuresChanged(now: boolean): void {
    if (this.closed) return;
    const due = this.reportedAt + FIGURES_EVERY_MS - Date.now();
    if (now || due <= 0) {
      clearTimeout(this.reportTimer);
      this.reportTimer = undefined;
      this.reportedAt = Date.now();
      this.options.onFigures(this.figures());
      return;
    }
    this.reportTimer ??= setTimeout(() => {
      this.reportTimer = undefined;
      this.figuresChanged(true);
    }, due);
    this.reportTimer.unref?.();
  }

  // ---- TDLib ----------------------------------------------------------------------------------------

  private async getMessage(chatId: number, messageId: number): Promise<TdObject | undefined> {
    const client = this.client;
    if (!client) return undefined;
    try {
      return await client.invokeUnchecked({ '@type': 'getMessage', chat_id: chatId, message_id: messageId });
    } catch {
      return undefined; // deleted since, or the client is closing: nothing to deliver
    }
  }

  /**
   * What arrived while no client ran: per chat (newest chats first), messages newer than the chat's mark,
   * or newer than the outbox when the chat has none; at most REFILL_MAX_PER_CHAT per chat.
   */
  private async refill(client: TdClient): Promise<void> {
    if (client !== this.client) return;
    const sinceSeconds = Math.floor((this.outbox.createdAt ?? Date.now()) / 1000);
    let refilled = 0;
    try {
      const chats = await client.invokeUnchecked({
        '@type': 'getChats',
        chat_list: { '@type': 'chatListMain' },
        limit: REFILL_MAX_CHATS,
      });
      const ids = Array.isArray(chats.chat_ids) ? chats.chat_ids.filter((id) => typeof id === 'number') : [];
      for (const chatId of ids as number[]) {
        const mark = this.outbox.mark(String(chatId));
        const found: TdObject[] = [];
        let from = 0;
        for (;;) {
          const page = await client.invokeUnchecked({
            '@type': 'getChatHistory',
            chat_id: chatId,
            from_message_id: from,
            offset: 0,
            limit: HISTORY_PAGE,
            only_local: false,
          });
          const messages = Array.isArray(page.messages) ? (page.messages as TdObject[]) : [];
          let older = false;
          for (const message of messages) {
            const id = Number(message.id);
            if (id <= mark || (mark === 0 && Number(message.date) < sinceSeconds)) {
              older = true;
              break;
            }
            found.push(message);
          }
          const last = messages[messages.length - 1];
          if (older || !last || found.length >= REFILL_MAX_PER_CHAT) break;
          from = Number(last.id);
        }
        const events = found
          .reverse()
          .map((message) => messageEvent(message, 'MessageNew'))
          .filter((event): event is UpdateEvent => event !== undefined);
        refilled += events.length;
        await this.pump.append(events);
      }
      if (refilled > 0) this.options.logger.info({ events: refilled }, 'updates: refilled from chat history');
    } catch (error) {
      this.options.logger.warn({ err: errorMessage(error) }, 'updates: refill from chat history failed');
    }
  }

  // ---- the state a move carries ------------------------------------------------------------------------

  private writeCarriedState(): void {
    const marks: Record<string, number> = {};
    for (const [chat, id] of this.outbox.marksSnapshot()) marks[chat] = id;
    // Set each chat back below its oldest undelivered new message: the new pod refills it from history.
    for (const pending of this.outbox.list()) {
      const id = pending.event.data.message_id;
      if (pending.event.kind !== 'MessageNew' || typeof id !== 'number') continue;
      const chat = pending.event.subject;
      marks[chat] = Math.min(marks[chat] ?? id, id - 1);
    }
    const state: CarriedState = {
      closedAt: Date.now(),
      createdAt: this.outbox.createdAt ?? Date.now(),
      marks,
      counts: { ...this.outbox.counts },
    };
    try {
      mkdirSync(this.options.databaseDir, { recursive: true, mode: 0o700 });
      const path = join(this.options.databaseDir, UPDATES_STATE_FILE);
      writeFileSync(`${path}.tmp`, JSON.stringify(state), { mode: 0o600 });
      renameSync(`${path}.tmp`, path);
    } catch (error) {
      this.options.logger.warn({ err: errorMessage(error) }, 'updates: state for a move not written');
    }
  }

  /**
   * A fresh outbox on this pod: go on from the last pod's state. Its carried marks (exact, per chat) when
   * it closed after the status' resumeFrom was written; otherwise (it was killed) the status' resumeFrom,
   * which redelivers at most what arrived between its last report and its end.
   */
  private adoptEarlierState(statusResumeFrom: string | undefined): void {
    const fromStatus = statusResumeFrom ? Date.parse(statusResumeFrom) : NaN;
    let carried: CarriedState | undefined;
    try {
      const parsed = JSON.parse(
        readFileSync(join(this.options.databaseDir, UPDATES_STATE_FILE), 'utf8'),
      ) as Partial<CarriedState>;
      if (typeof parsed.createdAt === 'number' && typeof parsed.closedAt === 'number')
        carried = parsed as CarriedState;
    } catch {
      carried = undefined; // none: the account never closed gracefully with updates on
    }
    if (carried && !(carried.closedAt < fromStatus))
      this.outbox.adopt(
        carried.createdAt,
        new Map(Object.entries(carried.marks ?? {})),
        carried.counts ?? {},
      );
    else if (Number.isFinite(fromStatus)) this.outbox.adopt(fromStatus, new Map(), {});
  }
}
