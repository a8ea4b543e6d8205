/**
 * The sends a client with use_message_database remembers in its database directory (TDLib writes each
 * outgoing message to its binlog and erases it once the server answered), so the next client started on the
 * directory re-sends them with the same random_id. Changes are written once per turn, before the answers of
 * that turn reach the application: whoever saw a temporary message can rely on it being remembered.
 */
import type { SimRuntime } from './runtime.js';
import { readPendingSends, writePendingSends, type PendingSend } from './session-db.js';

export class PendingStore {
  private readonly sends = new Map<string, PendingSend>();
  private discarded = false;

  private constructor(
    private readonly rt: SimRuntime,
    private readonly directory: string,
    private readonly key: Buffer,
  ) {}

  static open(rt: SimRuntime, directory: string, key: Buffer): PendingStore {
    const store = new PendingStore(rt, directory, key);
    for (const send of readPendingSends(directory, key)) store.sends.set(send.random_id, send);
    return store;
  }

  list(): PendingSend[] {
    return [...this.sends.values()];
  }

  get size(): number {
    return this.sends.size;
  }

  add(send: PendingSend): void {
    this.sends.set(send.random_id, send);
    this.rt.persistBeforeEmit(this);
  }

  /** The send is over (the server answered, or it was given up): TDLib erases its binlog event. */
  remove(randomId: string): void {
    if (!this.sends.delete(randomId)) return;
    this.rt.persistBeforeEmit(this);
  }

  /** The database is gone (logOut, destroy, lost authorization): nothing more is written. */
  discard(): void {
    this.discarded = true;
    this.sends.clear();
  }

  persist(): void {
    if (this.discarded) return;
    writePendingSends(this.directory, this.key, [...this.sends.values()]);
  }
}
