/**
 * From a TDLib client's updates to the account's outbox, in TDLib's order: each update becomes its events
 * (an edit first fetches the edited message: updateMessageEdited carries no content), filtered by the kinds
 * the account asked for, and goes into the outbox; the deliverer is woken once they are on disk. The next
 * update waits only for the previous one's events to be appended, not for the disk.
 */
import type { TdObject } from '../tdlib/backend.js';
import { eventsOf, messageEvent, type UpdateEvent, type UpdateKind } from './cloudevents.js';
import type { Outbox } from './outbox.js';

export interface PumpOptions {
  outbox: Outbox;
  kinds: () => ReadonlySet<UpdateKind>;
  /** getMessage through the account's client; undefined when the message is gone. */
  getMessage: (chatId: number, messageId: number) => Promise<TdObject | undefined>;
  /** Wakes the deliverer: new events are on disk. */
  delivered: () => void;
  onError: (error: unknown) => void;
  now?: () => number;
}

export class UpdatesPump {
  private tail: Promise<void> = Promise.resolve();
  private readonly writes = new Set<Promise<unknown>>();

  constructor(private readonly options: PumpOptions) {}

  /** Takes one update, synchronously, in the order TDLib delivered it. */
  onUpdate(update: TdObject): void {
    this.tail = this.tail
      .then(async () => {
        const wanted = this.options.kinds();
        const events = (await this.eventsFor(update)).filter((event) => wanted.has(event.kind));
        if (events.length === 0) return;
        const write = this.options.outbox.add(events, (this.options.now ?? Date.now)());
        this.writes.add(write);
        void write
          .then(() => this.options.delivered(), this.options.onError)
          .finally(() => this.writes.delete(write));
      })
      .catch(this.options.onError);
  }

  /**
   * Runs `job` in the updates' order: after everything taken so far, before anything taken later (a
   * refill from history goes before the live updates that follow the client's start).
   */
  run(job: () => Promise<void>): void {
    this.tail = this.tail.then(job).catch(this.options.onError);
  }

  /** Adds events found outside updates (a refill) in the same way: filtered, appended, deliverer woken. */
  async append(events: UpdateEvent[]): Promise<void> {
    const wanted = this.options.kinds();
    const kept = events.filter((event) => wanted.has(event.kind));
    if (kept.length === 0) return;
    await this.options.outbox.add(kept, (this.options.now ?? Date.now)());
    this.options.delivered();
  }

  /** Resolves once every update taken so far is in the outbox and on disk. */
  async drain(): Promise<void> {
    await this.tail;
    await Promise.allSettled([...this.writes]);
  }

  private async eventsFor(update: TdObject): Promise<UpdateEvent[]> {
    if (update['@type'] !== 'updateMessageEdited') return eventsOf(update, new Date());
    const chatId = update.chat_id;
    const messageId = update.message_id;
    if (typeof chatId !== 'number' || typeof messageId !== 'number') return [];
    const message = await this.options.getMessage(chatId, messageId);
    const event = message ? messageEvent(message, 'MessageEdited') : undefined;
    return event ? [event] : [];
  }
}
