/**
 * The server side of chat history: every message the world delivered, indexed by conversation, built from
 * the shared delivery log (state/deliveries.jsonl) that every simulator process appends to. The index is
 * per process and incremental: the first use reads the log once, every later use reads only the lines
 * appended since (one fstat and a read of the new bytes), so a history call costs the same with 100 or
 * 100,000 lines in the log. Because it is built from the log, history survives restarts and moves: a client
 * in another process, or a restarted one, sees what every process delivered.
 *
 * Views: a private chat has one view per side (the sender's, with every message it sent, and the
 * recipient's, with the messages it received, for recipients that are accounts of the world); a supergroup
 * or channel has one view shared by everybody. Each view is kept sorted by message id.
 *
 * Edits live in a sibling log (state/edits.jsonl, see EditRecord): each one replaces the entry of the message
 * it edits in every view, so history, search and getMessage show the new text and edit_date.
 */
import { dirname, join } from 'node:path';
import { JsonlReader } from './store/jsonl.js';
import { isRecord } from './store/files.js';
import type { Json } from './protocol.js';
import type { Delivery, EditRecord } from './world.js';

export interface HistoryEntry {
  readonly id: number;
  /** message.date, Unix seconds. */
  readonly date: number;
  readonly from: number;
  readonly text: string;
  readonly entities: readonly Json[] | undefined;
  /** The client that sent it: its auth key, its process and when (ms), for only_local answers. */
  readonly authKey: string;
  readonly pid: number;
  /** When it was recorded (ms). */
  readonly at: number;
  readonly randomId: string | undefined;
  /** message.edit_date: 0 for a message never edited. */
  readonly editDate: number;
}

const NONE: readonly HistoryEntry[] = [];

export function isDelivery(value: unknown): value is Delivery {
  return (
    isRecord(value) &&
    typeof value.from === 'number' &&
    typeof value.to === 'number' &&
    typeof value.chat_id === 'number' &&
    typeof value.message_id === 'number' &&
    typeof value.text === 'string'
  );
}

export function isEditRecord(value: unknown): value is EditRecord {
  return (
    isRecord(value) &&
    typeof value.at === 'number' &&
    typeof value.from === 'number' &&
    typeof value.chat_id === 'number' &&
    typeof value.message_id === 'number' &&
    typeof value.edit_date === 'number' &&
    typeof value.text === 'string'
  );
}

/** The edit log next to a delivery log. */
export function editsLogBeside(deliveriesPath: string): string {
  return join(dirname(deliveriesPath), 'edits.jsonl');
}

/** The entry a message becomes once `edit` applies to it (the sender, id and date stay). */
export function editedEntry(entry: HistoryEntry, edit: EditRecord, text: string): HistoryEntry {
  return {
    ...entry,
    text,
    entities: Array.isArray(edit.entities) && edit.entities.length > 0 ? edit.entities : undefined,
    editDate: edit.edit_date,
  };
}

/**
 * Where an edit applies: the views that hold the message, as [viewer, chat] pairs (the sender's and the
 * recipient's for a private chat, the shared one for a supergroup or channel).
 */
export function viewsOfEdit(edit: EditRecord): readonly (readonly [number, number])[] {
  if (edit.chat_id < 0) return [[0, edit.chat_id]];
  return [
    [edit.from, edit.chat_id],
    [edit.chat_id, edit.from],
  ];
}

/** Index of the first entry whose id is >= `id` (entries sorted by id, ascending). */
export function lowerBound(entries: readonly HistoryEntry[], id: number): number {
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((entries[mid] as HistoryEntry).id < id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class DeliveryIndex {
  private readonly reader: JsonlReader<Delivery>;
  private readonly editReader: JsonlReader<EditRecord>;
  /** viewer -> chat -> messages; supergroups and channels are one view under viewer 0. */
  private readonly views = new Map<number, Map<number, HistoryEntry[]>>();
  /** sender -> random_id -> message (numeric outer keys: no key string per line). */
  private readonly byRandomId = new Map<number, Map<string, HistoryEntry>>();
  /** Campaign texts repeat: one string per distinct text, however many lines carry it. */
  private readonly strings = new Map<string, string>();
  private count = 0;
  /** viewer -> chat -> position in the log of the chat's latest record (the dialog list's order). */
  private readonly lastRecorded = new Map<number, Map<number, number>>();

  constructor(
    path: string,
    /** Whether a recipient logs in (only accounts read their incoming messages). */
    private readonly isAccount: (userId: number) => boolean,
    /** The edit log; default: edits.jsonl beside the delivery log. */
    editsPath: string = editsLogBeside(path),
  ) {
    this.reader = new JsonlReader(path, isDelivery);
    this.editReader = new JsonlReader(editsPath, isEditRecord);
  }

  /** Records indexed so far. */
  get size(): number {
    return this.count;
  }

  /** Bytes of the delivery log read so far (the log is never read twice). */
  get bytesRead(): number {
    return this.reader.position;
  }

  /** Takes in whatever every process appended to the log since the previous call. */
  refresh(): void {
    // Edits first: an edit is written only after its message is in the delivery log, so reading the edits
    // before the deliveries never yields an edit whose message has not been read yet.
    const edits = this.editReader.read();
    for (const delivery of this.reader.read()) this.add(delivery);
    for (const edit of edits) this.applyEdit(edit);
  }

  /** The message `messageId` of one conversation as `viewer` sees it (see conversation()). */
  message(viewer: number, chatId: number, messageId: number): HistoryEntry | undefined {
    const entries = this.conversation(viewer, chatId);
    const entry = entries[lowerBound(entries, messageId)];
    return entry?.id === messageId ? entry : undefined;
  }

  /**
   * The messages of one conversation as `viewer` sees it, ascending by id: a private chat with user
   * `chatId`, or the supergroup/channel `chatId` (negative). Shared: callers must not modify it.
   */
  conversation(viewer: number, chatId: number): readonly HistoryEntry[] {
    return this.views.get(chatId < 0 ? 0 : viewer)?.get(chatId) ?? NONE;
  }

  /**
   * The private chats `viewer` has messages in, with their newest message first (the server's dialog
   * list; supergroups and channels are not in it). Ids of the other side of each chat.
   */
  privateChatsOf(viewer: number): number[] {
    const touched = this.lastRecorded.get(viewer);
    if (touched === undefined || viewer === 0) return [];
    return [...touched.entries()].sort(([, a], [, b]) => b - a).map(([chatId]) => chatId);
  }

  /** The message `from` sent with `randomId`, if the server has it (Telegram's random_id dedupe). */
  sentWithRandomId(from: number, randomId: string): HistoryEntry | undefined {
    return this.byRandomId.get(from)?.get(randomId);
  }

  private intern(value: string): string {
    const known = this.strings.get(value);
    if (known !== undefined) return known;
    this.strings.set(value, value);
    return value;
  }

  private add(d: Delivery): void {
    const group = d.chat_id < 0 ? d.chat_id : 0;
    const entry: HistoryEntry = {
      id: d.message_id,
      date: typeof d.date === 'number' ? d.date : Math.floor(d.at / 1000),
      from: d.from,
      text: this.intern(d.text),
      entities: Array.isArray(d.entities) && d.entities.length > 0 ? d.entities : undefined,
      authKey: this.intern(typeof d.auth_key === 'string' ? d.auth_key : ''),
      pid: typeof d.pid === 'number' ? d.pid : 0,
      at: typeof d.at === 'number' ? d.at : 0,
      randomId: typeof d.random_id === 'string' ? d.random_id : undefined,
      editDate: 0,
    };
    this.count++;
    if (group !== 0) {
      this.insert(0, group, entry);
    } else {
      // The sender always has its message; the recipient only if it got it (not swallowed by a block).
      this.insert(d.from, d.to, entry);
      if (d.status !== 'blocked' && d.to !== d.from && this.isAccount(d.to)) this.insert(d.to, d.from, entry);
    }
    if (entry.randomId !== undefined) {
      let sent = this.byRandomId.get(d.from);
      if (sent === undefined) this.byRandomId.set(d.from, (sent = new Map()));
      sent.set(entry.randomId, entry);
    }
  }

  /** Replaces the edited message in every view that holds it (one shared entry, as add() made it). */
  private applyEdit(edit: EditRecord): void {
    let edited: HistoryEntry | undefined;
    for (const [viewer, chatId] of viewsOfEdit(edit)) {
      const list = this.views.get(viewer)?.get(chatId);
      if (list === undefined) continue;
      const at = lowerBound(list, edit.message_id);
      const entry = list[at];
      // Only the sender edits: a line naming someone else's message changes nothing.
      if (entry === undefined || entry.id !== edit.message_id || entry.from !== edit.from) continue;
      edited ??= editedEntry(entry, edit, this.intern(edit.text));
      list[at] = edited;
    }
    if (edited?.randomId !== undefined) this.byRandomId.get(edit.from)?.set(edited.randomId, edited);
  }

  private insert(viewer: number, chatId: number, entry: HistoryEntry): void {
    let touched = this.lastRecorded.get(viewer);
    if (touched === undefined) this.lastRecorded.set(viewer, (touched = new Map()));
    touched.set(chatId, this.count);
    let chats = this.views.get(viewer);
    if (chats === undefined) this.views.set(viewer, (chats = new Map()));
    const list = chats.get(chatId);
    if (list === undefined) {
      chats.set(chatId, [entry]);
      return;
    }
    const last = list[list.length - 1] as HistoryEntry;
    // Lines mostly arrive in id order; processes sharing a counter (supergroups) may append out of order.
    if (last.id <= entry.id) list.push(entry);
    else list.splice(lowerBound(list, entry.id), 0, entry);
  }
}

/**
 * TDLib's window over a conversation (MessagesManager::get_dialog_history, and the server's messages.search
 * with offset_id/add_offset): starting at the first message older than `fromMessageId` (0: the newest),
 * `-offset` newer messages first (offset is 0 or negative), at most `limit` in all, newest first.
 */
export function historyWindow(
  entries: readonly HistoryEntry[],
  fromMessageId: number,
  offset: number,
  limit: number,
): { readonly page: HistoryEntry[]; readonly olderRemain: boolean } {
  const n = entries.length;
  const newer = fromMessageId === 0 ? 0 : n - lowerBound(entries, fromMessageId);
  const start = newer + offset;
  const end = Math.min(n, start + limit);
  const page: HistoryEntry[] = [];
  for (let i = Math.max(0, start); i < end; i++) page.push(entries[n - 1 - i] as HistoryEntry);
  return { page, olderRemain: end < n };
}
