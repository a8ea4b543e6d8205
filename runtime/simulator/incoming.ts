/**
 * Messages that reach an account while its client runs. TDLib hears them as updates: updateUser and
 * updateNewChat for a sender it did not know yet, then updateNewMessage. The simulator reads them from the
 * shared delivery log, so a message that any process (or the World API, acting as a user who is not an
 * account) recorded reaches the recipient's client wherever that client runs.
 *
 * Like Telegram after a gap too long for getDifference, a client hears only what arrived after it became
 * ready (TDLib 1.8 then sends no updates for the gap); what came before is in the chat's history, which is
 * where an application refills from. Private chats only: messages in supergroups and channels are not
 * pushed (a difference from Telegram).
 */
import { isDelivery } from './delivery-index.js';
import type { SimClient } from './client.js';
import { introduceChat } from './messaging.js';
import * as O from './objects.js';
import { JsonlReader } from './store/jsonl.js';
import type { Delivery, WorldView } from './world.js';

export class IncomingFeed {
  private readonly reader: JsonlReader<Delivery>;

  constructor(path: string) {
    this.reader = new JsonlReader(path, isDelivery);
    // Nothing of this process is ready yet: what the log holds now arrived before any of its clients.
    this.reader.skipExisting();
  }

  /** Pushes every message recorded since the previous call to the ready clients it is addressed to. */
  pump(clients: Iterable<SimClient>, view: WorldView): void {
    const deliveries = this.reader.read();
    if (deliveries.length === 0) return;
    const byUser = new Map<number, SimClient[]>();
    for (const client of clients) {
      const me = client.me;
      if (client.phase !== 'open' || !client.isReady || me === undefined) continue;
      const list = byUser.get(me.id);
      if (list === undefined) byUser.set(me.id, [client]);
      else list.push(client);
    }
    if (byUser.size === 0) return;
    for (const delivery of deliveries) {
      if (delivery.status !== 'delivered' || delivery.chat_id !== delivery.to) continue;
      const recipients = byUser.get(delivery.to);
      if (recipients === undefined || delivery.from === delivery.to) continue;
      const sender = view.users.get(delivery.from);
      if (sender === undefined) continue;
      for (const client of recipients) {
        if (delivery.at < client.readySince) continue;
        introduceChat(client, sender);
        client.update(O.updateNewMessage(receivedMessage(delivery)));
      }
    }
  }
}

/** The recipient's copy of a private message: in the chat with its sender, not outgoing. */
export function receivedMessage(delivery: Delivery): O.TdMessage {
  return O.message({
    id: delivery.message_id,
    sender_user_id: delivery.from,
    is_outgoing: false,
    chat_id: delivery.from,
    date: delivery.date ?? Math.floor(delivery.at / 1000),
    text: O.formattedText(
      delivery.text,
      delivery.entities === undefined
        ? []
        : (structuredClone(delivery.entities) as unknown as O.TdTextEntity[]),
    ),
  });
}
