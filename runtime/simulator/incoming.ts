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
 *
 * Edits (state/edits.jsonl) reach the recipient's ready clients, and the sender's clients other than the one
 * that edited (which heard them with its answer), as TDLib reports an edit: updateMessageContent, then
 * updateMessageEdited. Again only what was edited after the client became ready, private chats only.
 */
import { editsLogBeside, isDelivery, isEditRecord } from './delivery-index.js';
import type { SimClient } from './client.js';
import { introduceChat } from './messaging.js';
import * as O from './objects.js';
import { JsonlReader } from './store/jsonl.js';
import type { Delivery, EditRecord, WorldView } from './world.js';

/** One ready client that an edit reaches, and the chat (the other user) it sees the message in. */
export interface EditAudience {
  readonly client: SimClient;
  readonly chatId: number;
}

/**
 * Who hears an edit of a private message: the recipient's clients if the message reached it, and the
 * sender's clients except the editing one (same session in the same process), each after it became ready.
 */
export function editAudience(
  edit: EditRecord,
  byUser: ReadonlyMap<number, readonly SimClient[]>,
): EditAudience[] {
  const audience: EditAudience[] = [];
  if (edit.chat_id <= 0) return audience;
  const heard = (client: SimClient): boolean => edit.at >= client.readySince;
  if (edit.status !== 'blocked' && edit.chat_id !== edit.from) {
    for (const client of byUser.get(edit.chat_id) ?? []) {
      if (heard(client)) audience.push({ client, chatId: edit.from });
    }
  }
  for (const client of byUser.get(edit.from) ?? []) {
    const editor = client.session?.auth_key === edit.auth_key && edit.pid === process.pid;
    if (!editor && heard(client)) audience.push({ client, chatId: edit.chat_id });
  }
  return audience;
}

export class IncomingFeed {
  private readonly reader: JsonlReader<Delivery>;
  private readonly editReader: JsonlReader<EditRecord>;

  constructor(path: string, editsPath: string = editsLogBeside(path)) {
    this.reader = new JsonlReader(path, isDelivery);
    this.editReader = new JsonlReader(editsPath, isEditRecord);
    // Nothing of this process is ready yet: what the logs hold now arrived before any of its clients.
    this.reader.skipExisting();
    this.editReader.skipExisting();
  }

  /**
   * Pushes every message and edit recorded since the previous call to the ready clients they concern. Edits
   * are read before messages (an edit is written only after its message), and pushed after them.
   */
  pump(clients: Iterable<SimClient>, view: WorldView): void {
    const edits = this.editReader.read();
    const deliveries = this.reader.read();
    if (deliveries.length === 0 && edits.length === 0) return;
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
    for (const edit of edits) pushEdit(edit, byUser, view);
  }
}

function pushEdit(
  edit: EditRecord,
  byUser: ReadonlyMap<number, readonly SimClient[]>,
  view: WorldView,
): void {
  const content = (): ReturnType<typeof O.messageTextContent> =>
    O.messageTextContent(
      O.formattedText(
        edit.text,
        edit.entities === undefined ? [] : (structuredClone(edit.entities) as unknown as O.TdTextEntity[]),
      ),
    );
  for (const { client, chatId } of editAudience(edit, byUser)) {
    const other = view.users.get(chatId);
    if (other === undefined) continue;
    introduceChat(client, other);
    client.update(O.updateMessageContent(chatId, edit.message_id, content()));
    client.update(O.updateMessageEdited(chatId, edit.message_id, edit.edit_date));
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
