/**
 * The simulated Telegram "server side": one directory that every simulator process (and the test side)
 * points at. The world file (world.yaml / world.yml / world.json) says who exists; everything that changes
 * at run time lives under `state/` as small files that are safe to share between processes:
 *
 *   state/overrides.json        test-side edits of the world (blocks, dead proxies, faults...), atomic rename
 *   state/deliveries.jsonl      every message that reached (or was swallowed for) a recipient, O_APPEND
 *   state/edits.jsonl           every edit of a delivered message (its new text), O_APPEND
 *   state/events.jsonl          logins, log-outs, killed sessions, O_APPEND
 *   state/sessions/<key>.json   server-side sessions (auth keys): owner, revocation
 *   state/live/<key>/<holder>   which client currently uses an auth key (duplicate detection)
 *   state/instances/<id>.json   heartbeat of every simulator process
 *   state/dblocks/<hash>.json   database-directory locks (TDLib's td.binlog lock)
 *   state/qr/<token>.json       QR login tokens and their confirmation
 *   state/accounts/<id>.json    per-account server counters (message ids, flood state)
 *
 * `World` is the test-side API ("act as the world"); the backend uses the same class for reading.
 */
import { isEditRecord } from './delivery-index.js';
import { appendFileSync, existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ensureDir, isErrno, isRecord, readJson, writeJsonAtomic } from './store/files.js';
import { JsonlReader } from './store/jsonl.js';
import { withFileMutex } from './store/locks.js';
import { AccountState, MESSAGE_ID_SHIFT } from './limits.js';
import type { Json } from './protocol.js';
import {
  normalizePhone,
  supergroupChatId,
  validateWorld,
  WorldConfigError,
  type UserRef,
  type WorldChat,
  type WorldConfig,
  type WorldFaults,
  type WorldLimits,
  type WorldUser,
} from './world-schema.js';

export const WORLD_FILE_NAMES = ['world.yaml', 'world.yml', 'world.json'] as const;

/**
 * A message as the world saw it; `status` says whether the recipient got it. `to` and `chat_id` are the
 * recipient user for a private chat, the chat identifier (negative) for a supergroup or channel.
 */
export interface Delivery {
  readonly at: number;
  readonly from: number;
  readonly to: number;
  readonly chat_id: number;
  readonly message_id: number;
  readonly text: string;
  readonly sender_kind: 'user' | 'bot';
  readonly status: 'delivered' | 'blocked';
  readonly auth_key: string;
  readonly pid: number;
  /** message.date (Unix seconds, the sender's clock); absent in logs written before it existed. */
  readonly date?: number;
  /** The message's random_id (int64 as a decimal string): Telegram dedupes sends by it. */
  readonly random_id?: string;
  /** The formattedText entities of the message, when it has any. */
  readonly entities?: readonly Json[];
}

/**
 * An edit of a message in the delivery log, in state/edits.jsonl. A sibling log rather than a new kind of
 * line in deliveries.jsonl: readers written before edits existed (other processes, tools, tests that count
 * deliveries) never see one. It deliberately has no `to`: even a reader pointed at the wrong file cannot
 * take it for a Delivery (every Delivery guard requires `to`).
 */
export interface EditRecord {
  /** When it was recorded (ms). */
  readonly at: number;
  /** The editor, who is always the message's sender. */
  readonly from: number;
  /** The Delivery's chat_id: the recipient user of a private chat. */
  readonly chat_id: number;
  readonly message_id: number;
  /** The new text and its entities (absent when it has none). */
  readonly text: string;
  readonly entities?: readonly Json[];
  /** message.edit_date (Unix seconds). */
  readonly edit_date: number;
  /** The original Delivery's status: a recipient who never got the message does not hear its edit. */
  readonly status: 'delivered' | 'blocked';
  /** The editing client's session and process ('' / the writer's pid for the World API). */
  readonly auth_key: string;
  readonly pid: number;
}

/** Appends one edit as one line in one O_APPEND write (never interleaved with other processes' lines). */
export function appendEdit(path: string, record: EditRecord): void {
  appendFileSync(path, JSON.stringify(record) + '\n');
}

export interface WorldEvent {
  readonly at: number;
  readonly type:
    | 'login'
    | 'logout'
    | 'session_revoked'
    | 'auth_key_duplicated'
    | 'qr_confirmed'
    | 'destroy'
    | 'authorization_lost'
    /** A send refused with 429 (a flood wait longer than TDLib waits out itself). */
    | 'flood_wait';
  readonly user_id?: number;
  /** flood_wait: the seconds Telegram asked the account to wait, and the chat the send went to. */
  readonly retry_after?: number;
  readonly chat_id?: number;
  readonly auth_key?: string;
  readonly detail?: string;
  readonly pid: number;
}

export interface SessionRecord {
  readonly auth_key: string;
  readonly user_id: number;
  readonly authorized_at: number;
  readonly revoked?: { readonly reason: string; readonly at: number };
}

export interface QrTokenRecord {
  readonly token: string;
  readonly created_at: number;
  readonly expires_at: number;
  readonly instance: string;
  readonly client_id: number;
  readonly confirmed_by?: number;
  readonly confirmed_at?: number;
}

interface UserOverride {
  blocked?: number[];
  contacts?: number[];
  started_bots?: number[];
  deactivated?: boolean;
  privacy?: Partial<WorldUser['privacy']>;
}

interface ChatOverride {
  members?: number[];
  admins?: number[];
}

interface Overrides {
  users?: Record<string, UserOverride>;
  chats?: Record<string, ChatOverride>;
  proxies?: Record<string, boolean>;
  faults?: Partial<WorldFaults>;
  limits?: Partial<WorldLimits>;
}

export interface UserView extends WorldUser {
  /** Digits only, '' when the user has no phone number. */
  readonly phone: string;
  readonly blockedIds: ReadonlySet<number>;
  readonly contactIds: ReadonlySet<number>;
  readonly startedBotIds: ReadonlySet<number>;
}

export interface ChatView extends WorldChat {
  /** The chat identifier TDLib uses: -(10^12 + id). */
  readonly chatId: number;
  /** Members, administrators included. */
  readonly memberIds: ReadonlySet<number>;
  readonly adminIds: ReadonlySet<number>;
}

export type ChatRole = 'admin' | 'member' | 'none';

/** The effective world (file + overrides) with the indexes the simulator looks things up by. */
export class WorldView {
  readonly users = new Map<number, UserView>();
  readonly byUsername = new Map<string, UserView>();
  /** Public supergroups and channels by chat identifier (negative), and by lower-cased username. */
  readonly chats = new Map<number, ChatView>();
  readonly chatByUsername = new Map<string, ChatView>();
  readonly byPhone = new Map<string, UserView>();
  readonly byToken = new Map<string, UserView>();
  private readonly deadProxies = new Set<string>();

  constructor(readonly config: WorldConfig) {
    const idOf = (ref: UserRef): number => {
      if (typeof ref === 'number') return ref;
      const key = ref.replace(/^@/, '').toLowerCase();
      return config.users.find((u) => u.username?.toLowerCase() === key)?.id ?? 0;
    };
    for (const user of config.users) {
      const view: UserView = {
        ...user,
        phone: user.phone_number === undefined ? '' : normalizePhone(user.phone_number),
        blockedIds: new Set(user.blocked.map(idOf)),
        contactIds: new Set(user.contacts.map(idOf)),
        startedBotIds: new Set(user.started_bots.map(idOf)),
      };
      this.users.set(user.id, view);
      if (user.username !== undefined) this.byUsername.set(user.username.toLowerCase(), view);
      if (view.phone !== '') this.byPhone.set(view.phone, view);
      if (user.bot !== undefined) this.byToken.set(user.bot.token, view);
    }
    for (const proxy of config.network.proxies) {
      if (proxy.dead) this.deadProxies.add(proxyKey(proxy.server, proxy.port));
    }
    for (const chat of config.chats) {
      const adminIds = new Set(chat.admins.map(idOf));
      const view: ChatView = {
        ...chat,
        chatId: supergroupChatId(chat.id),
        memberIds: new Set([...chat.members.map(idOf), ...adminIds]),
        adminIds,
      };
      this.chats.set(view.chatId, view);
      this.chatByUsername.set(chat.username.toLowerCase(), view);
    }
  }

  /** A chat by supergroup id, chat id (negative) or @username. */
  resolveChat(ref: number | string): ChatView | undefined {
    if (typeof ref === 'number') return ref < 0 ? this.chats.get(ref) : this.chats.get(supergroupChatId(ref));
    return this.chatByUsername.get(ref.replace(/^@/, '').toLowerCase());
  }

  /** Whether `userId` logs in to this world (a phone account or a bot): only accounts read history. */
  isAccount(userId: number): boolean {
    const user = this.users.get(userId);
    return user !== undefined && (user.login !== undefined || user.bot !== undefined);
  }

  resolve(ref: UserRef): UserView | undefined {
    if (typeof ref === 'number') return this.users.get(ref);
    if (/^\+?[0-9 ()-]+$/.test(ref) && !ref.startsWith('@')) return this.byPhone.get(normalizePhone(ref));
    return this.byUsername.get(ref.replace(/^@/, '').toLowerCase());
  }

  isProxyDead(server: string, port: number): boolean {
    return this.deadProxies.has(proxyKey(server, port));
  }

  /** Contacts in the world file and overrides; contacts an account imports are added by its session. */
  isContactOf(owner: number, other: number): boolean {
    return this.users.get(owner)?.contactIds.has(other) === true;
  }
}

export function proxyKey(server: string, port: number): string {
  return `${server.toLowerCase()}:${port}`;
}

function isDelivery(value: unknown): value is Delivery {
  return isRecord(value) && typeof value.from === 'number' && typeof value.to === 'number';
}

function isWorldEvent(value: unknown): value is WorldEvent {
  return isRecord(value) && typeof value.type === 'string' && typeof value.at === 'number';
}

export function isSessionRecord(value: unknown): value is SessionRecord {
  return isRecord(value) && typeof value.auth_key === 'string' && typeof value.user_id === 'number';
}

export function isQrTokenRecord(value: unknown): value is QrTokenRecord {
  return isRecord(value) && typeof value.token === 'string' && typeof value.expires_at === 'number';
}

/** Extracts the token from a tg://login?token=... link; a bare token is returned as is. */
export function qrTokenOf(linkOrToken: string): string {
  const match = /[?&]token=([^&]+)/.exec(linkOrToken);
  return match?.[1] ?? linkOrToken;
}

export function findWorldFile(dir: string): string | undefined {
  for (const name of WORLD_FILE_NAMES) {
    const path = join(dir, name);
    if (existsSync(path)) return path;
  }
  return undefined;
}

export function parseWorldText(text: string, source: string): unknown {
  try {
    return source.endsWith('.json') ? (JSON.parse(text) as unknown) : (parseYaml(text) as unknown);
  } catch (error) {
    throw new WorldConfigError(source, [
      `cannot parse: ${error instanceof Error ? error.message : String(error)}`,
    ]);
  }
}

/** Reads and validates a world file (YAML or JSON by extension). */
export function loadWorldFile(path: string): WorldConfig {
  return validateWorld(parseWorldText(readFileSync(path, 'utf8'), path), path);
}

function mergeOverrides(base: WorldConfig, overrides: Overrides): unknown {
  const users = base.users.map((user) => {
    const o = overrides.users?.[String(user.id)];
    if (o === undefined) return user;
    return {
      ...user,
      ...(o.blocked ? { blocked: o.blocked } : {}),
      ...(o.contacts ? { contacts: o.contacts } : {}),
      ...(o.started_bots ? { started_bots: o.started_bots } : {}),
      ...(o.deactivated !== undefined ? { deactivated: o.deactivated } : {}),
      privacy: { ...user.privacy, ...o.privacy },
    };
  });
  const proxies = base.network.proxies.map((proxy) => {
    const dead = overrides.proxies?.[proxyKey(proxy.server, proxy.port)];
    return dead === undefined ? proxy : { ...proxy, dead };
  });
  for (const [key, dead] of Object.entries(overrides.proxies ?? {})) {
    if (proxies.some((p) => proxyKey(p.server, p.port) === key)) continue;
    const colon = key.lastIndexOf(':');
    proxies.push({ server: key.slice(0, colon), port: Number(key.slice(colon + 1)), dead });
  }
  const chats = base.chats.map((chat) => {
    const o = overrides.chats?.[String(chat.id)];
    if (o === undefined) return chat;
    return {
      ...chat,
      ...(o.members ? { members: o.members } : {}),
      ...(o.admins ? { admins: o.admins } : {}),
    };
  });
  return {
    ...base,
    users,
    chats,
    network: { ...base.network, proxies },
    faults: { ...base.faults, ...overrides.faults },
    limits: { ...base.limits, ...overrides.limits },
  };
}

function statKey(path: string): string {
  try {
    const s = statSync(path);
    return `${s.mtimeMs}:${s.size}:${s.ino}`;
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return 'none';
    throw error;
  }
}

export interface WaitOptions {
  readonly timeoutMs?: number;
  readonly intervalMs?: number;
}

/**
 * A world directory. Opening one validates its world file; the view is reloaded when the file or the
 * overrides change (checked with stat, cheap enough to call on every tick).
 */
export class World {
  readonly dir: string;
  readonly stateDir: string;
  readonly configPath: string;
  private currentView: WorldView;
  private viewKey: string;
  private readonly deliveryReader: JsonlReader<Delivery>;
  private readonly deliveryCache: Delivery[] = [];
  private readonly editReader: JsonlReader<EditRecord>;
  private readonly editCache: EditRecord[] = [];

  private constructor(dir: string, configPath: string) {
    this.dir = resolve(dir);
    this.configPath = resolve(configPath);
    this.stateDir = join(this.dir, 'state');
    ensureDir(this.stateDir);
    this.viewKey = this.currentKey();
    this.currentView = this.load();
    this.deliveryReader = new JsonlReader(this.path('deliveries.jsonl'), isDelivery);
    this.editReader = new JsonlReader(this.path('edits.jsonl'), isEditRecord);
  }

  /** Opens the world in `dir` (its world.yaml/.yml/.json, or `configPath` when given). */
  static open(dir: string, configPath?: string): World {
    const path = configPath ?? findWorldFile(dir);
    if (path === undefined) {
      throw new WorldConfigError(dir, [`no ${WORLD_FILE_NAMES.join(' / ')} in the world directory`]);
    }
    return new World(dir, path);
  }

  /** Writes `config` (validated) as `dir`/world.json, clears any previous state and opens it. */
  static create(dir: string, config: unknown): World {
    validateWorld(config, join(dir, 'world.json'));
    ensureDir(dir);
    for (const name of WORLD_FILE_NAMES) rmSync(join(dir, name), { force: true });
    rmSync(join(dir, 'state'), { recursive: true, force: true });
    writeJsonAtomic(join(dir, 'world.json'), config);
    return World.open(dir);
  }

  path(...parts: string[]): string {
    return join(this.stateDir, ...parts);
  }

  private currentKey(): string {
    return `${statKey(this.configPath)}|${statKey(this.path('overrides.json'))}`;
  }

  private readOverrides(): Overrides {
    const value = readJson(this.path('overrides.json'));
    return isRecord(value) ? (value as Overrides) : {};
  }

  private load(): WorldView {
    const base = loadWorldFile(this.configPath);
    return new WorldView(validateWorld(mergeOverrides(base, this.readOverrides()), this.configPath));
  }

  /** The effective world; re-read when the world file or the overrides changed since the last call. */
  view(): WorldView {
    const key = this.currentKey();
    if (key !== this.viewKey) {
      this.viewKey = key;
      this.currentView = this.load();
    }
    return this.currentView;
  }

  // ---- test side: acting as the world -------------------------------------------------------------

  private edit(change: (overrides: Overrides, view: WorldView) => void): void {
    withFileMutex(this.path('overrides.lock'), () => {
      const overrides = this.readOverrides();
      change(overrides, this.view());
      // Validate the result before anyone else can read it.
      validateWorld(mergeOverrides(loadWorldFile(this.configPath), overrides), 'overrides');
      writeJsonAtomic(this.path('overrides.json'), overrides);
    });
    this.view();
  }

  private user(ref: UserRef, view: WorldView): UserView {
    const user = view.resolve(ref);
    if (user === undefined) throw new Error(`no user ${JSON.stringify(ref)} in the world`);
    return user;
  }

  private editUser(ref: UserRef, change: (o: UserOverride, user: UserView, view: WorldView) => void): void {
    this.edit((overrides, view) => {
      const user = this.user(ref, view);
      overrides.users ??= {};
      const o = (overrides.users[String(user.id)] ??= {});
      change(o, user, view);
    });
  }

  /** `blocker` blocks `target`: messages from target to blocker fail (USER_IS_BLOCKED). */
  blockUser(blocker: UserRef, target: UserRef): void {
    this.editUser(blocker, (o, user, view) => {
      o.blocked = [...new Set([...user.blockedIds, this.user(target, view).id])];
    });
  }

  unblockUser(blocker: UserRef, target: UserRef): void {
    this.editUser(blocker, (o, user, view) => {
      const id = this.user(target, view).id;
      o.blocked = [...user.blockedIds].filter((x) => x !== id);
    });
  }

  setDeactivated(ref: UserRef, deactivated = true): void {
    this.editUser(ref, (o) => {
      o.deactivated = deactivated;
    });
  }

  setPrivacy(ref: UserRef, privacy: Partial<WorldUser['privacy']>): void {
    this.editUser(ref, (o) => {
      o.privacy = { ...o.privacy, ...privacy };
    });
  }

  /** The user pressed Start in `bot`'s chat, so the bot may now message them. */
  startBot(ref: UserRef, bot: UserRef): void {
    this.editUser(ref, (o, user, view) => {
      o.started_bots = [...new Set([...user.startedBotIds, this.user(bot, view).id])];
    });
  }

  addContact(owner: UserRef, contact: UserRef): void {
    this.editUser(owner, (o, user, view) => {
      o.contacts = [...new Set([...user.contactIds, this.user(contact, view).id])];
    });
  }

  /**
   * Makes `user` an administrator, a plain member, or no member of a public chat (by supergroup id, chat
   * id or @username). Clients learn of the change when they look the chat up again or when a send fails.
   */
  setChatMember(chat: number | string, user: UserRef, role: ChatRole): void {
    this.edit((overrides, view) => {
      const target = view.resolveChat(chat);
      if (target === undefined) throw new Error(`no chat ${JSON.stringify(chat)} in the world`);
      const id = this.user(user, view).id;
      const members = new Set([...target.memberIds].filter((m) => !target.adminIds.has(m)));
      const admins = new Set(target.adminIds);
      members.delete(id);
      admins.delete(id);
      if (role === 'admin') admins.add(id);
      if (role === 'member') members.add(id);
      overrides.chats ??= {};
      overrides.chats[String(target.id)] = { members: [...members], admins: [...admins] };
    });
  }

  setProxyDead(server: string, port: number, dead = true): void {
    this.edit((overrides) => {
      overrides.proxies = { ...overrides.proxies, [proxyKey(server, port)]: dead };
    });
  }

  /** Replaces the given fault settings (top-level keys), e.g. { disconnected: true }. */
  setFaults(faults: Partial<WorldFaults>): void {
    this.edit((overrides) => {
      overrides.faults = { ...overrides.faults, ...faults };
    });
  }

  setLimits(limits: Partial<WorldLimits>): void {
    this.edit((overrides) => {
      overrides.limits = { ...overrides.limits, ...limits };
    });
  }

  /** Drops every test-side edit: the world is what its file says again. */
  resetOverrides(): void {
    withFileMutex(this.path('overrides.lock'), () => rmSync(this.path('overrides.json'), { force: true }));
    this.view();
  }

  /** QR logins waiting for another device (most recent first). */
  pendingQrLogins(now = Date.now()): QrTokenRecord[] {
    return this.qrTokens().filter((t) => t.confirmed_by === undefined && t.expires_at > now);
  }

  private qrTokens(): QrTokenRecord[] {
    const dir = this.path('qr');
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return [];
      throw error;
    }
    return names
      .map((name) => readJson(join(dir, name)))
      .filter(isQrTokenRecord)
      .sort((a, b) => b.created_at - a.created_at);
  }

  /**
   * Scans the QR code shown by a client (its tg://login link, or the token) on a device where `account`
   * is logged in. Throws if the link is unknown or expired, like the official apps refuse a stale code.
   */
  confirmQrLogin(linkOrToken: string, account: UserRef): void {
    const token = qrTokenOf(linkOrToken);
    const user = this.user(account, this.view());
    if (user.login === undefined)
      throw new Error(`user ${user.id} is not an account that can confirm a QR login`);
    const path = this.path('qr', `${token}.json`);
    withFileMutex(this.path('qr.lock'), () => {
      const record = readJson(path);
      if (!isQrTokenRecord(record)) throw new Error(`unknown QR login token ${token}`);
      if (record.expires_at <= Date.now()) throw new Error(`QR login token ${token} has expired`);
      writeJsonAtomic(path, { ...record, confirmed_by: user.id, confirmed_at: Date.now() });
    });
    this.appendEvent({ at: Date.now(), type: 'qr_confirmed', user_id: user.id, pid: process.pid });
  }

  /**
   * `from`, a user of the world who is not an account, sends `text` to `to`: recorded as delivered, so
   * the recipient's running client receives it (incoming.ts) and it is in the chat's history. Accounts
   * send through their clients instead (their message ids are counted by the process that runs them).
   */
  sendMessage(from: UserRef, to: UserRef, text: string): Delivery {
    const view = this.view();
    const sender = this.user(from, view);
    const recipient = this.user(to, view);
    if (view.isAccount(sender.id))
      throw new Error(`user ${sender.id} logs in to this world: send through its client instead`);
    const blocked = recipient.blockedIds.has(sender.id);
    ensureDir(this.path('accounts'));
    const delivery = withFileMutex(this.path('accounts', `${sender.id}.lock`), () => {
      const account = AccountState.load(this.stateDir, sender.id);
      const id = account.nextMessageId++ * MESSAGE_ID_SHIFT;
      account.dirty = true;
      account.save();
      const at = Date.now();
      const record: Delivery = {
        at,
        from: sender.id,
        to: recipient.id,
        chat_id: recipient.id,
        message_id: id,
        text,
        sender_kind: sender.bot === undefined ? 'user' : 'bot',
        status: blocked ? 'blocked' : 'delivered',
        auth_key: '',
        pid: process.pid,
        date: Math.floor(at / 1000),
      };
      // One line in one O_APPEND write: it never interleaves with other processes' batches.
      appendFileSync(this.path('deliveries.jsonl'), JSON.stringify(record) + '\n');
      return record;
    });
    return delivery;
  }

  /**
   * `from`, a user of the world who is not an account, edits message `messageId` it sent to `to` with
   * World.sendMessage: recorded like an account's edit, so the recipient's running client hears
   * updateMessageContent and updateMessageEdited, and history and getMessage show the new text. Throws, as
   * the server refuses it, for a message it did not send (MESSAGE_ID_INVALID) and for the same text again
   * (MESSAGE_NOT_MODIFIED).
   */
  editMessage(from: UserRef, to: UserRef, messageId: number, text: string): EditRecord {
    const view = this.view();
    const sender = this.user(from, view);
    const recipient = this.user(to, view);
    if (view.isAccount(sender.id))
      throw new Error(`user ${sender.id} logs in to this world: edit through its client instead`);
    const sent = this.deliveries(() => true).find(
      (d) => d.from === sender.id && d.to === recipient.id && d.message_id === messageId,
    );
    if (sent === undefined)
      throw new Error(
        `MESSAGE_ID_INVALID: user ${sender.id} sent no message ${messageId} to ${recipient.id}`,
      );
    if (text.trim() === '') throw new Error('MESSAGE_EMPTY: the new text is empty');
    const current = this.currentText(sent);
    if (current === text) throw new Error(`MESSAGE_NOT_MODIFIED: message ${messageId} already says that`);
    const at = Date.now();
    const record: EditRecord = {
      at,
      from: sender.id,
      chat_id: sent.chat_id,
      message_id: messageId,
      text,
      edit_date: Math.floor(at / 1000),
      status: sent.status,
      auth_key: '',
      pid: process.pid,
    };
    appendEdit(this.path('edits.jsonl'), record);
    return record;
  }

  /** The text of a delivered message after every edit recorded so far. */
  private currentText(d: Delivery): string {
    let text = d.text;
    for (const edit of this.edits()) {
      if (edit.from === d.from && edit.chat_id === d.chat_id && edit.message_id === d.message_id)
        text = edit.text;
    }
    return text;
  }

  /** Ends every session of `account` (or one auth key), as "Terminate session" on another device does. */
  terminateSessions(account: UserRef | { readonly authKey: string }, reason = 'SESSION_REVOKED'): number {
    const userId = typeof account === 'object' ? undefined : this.user(account, this.view()).id;
    let count = 0;
    for (const session of this.sessions()) {
      if (session.revoked !== undefined) continue;
      if (typeof account === 'object' ? session.auth_key !== account.authKey : session.user_id !== userId)
        continue;
      this.revokeSession(session.auth_key, reason);
      count++;
    }
    return count;
  }

  // ---- shared by both sides ---------------------------------------------------------------------

  /** Messages recorded by every process using this world, in the order they were written. */
  deliveries(filter: (d: Delivery) => boolean = (d) => d.status === 'delivered'): Delivery[] {
    for (const delivery of this.deliveryReader.read()) this.deliveryCache.push(delivery);
    return this.deliveryCache.filter(filter);
  }

  /** Polls the delivery log until `count` deliveries match or the deadline passes (then it throws). */
  async waitForDeliveries(
    count: number,
    filter: (d: Delivery) => boolean = (d) => d.status === 'delivered',
    options: WaitOptions = {},
  ): Promise<Delivery[]> {
    const deadline = Date.now() + (options.timeoutMs ?? 10_000);
    for (;;) {
      const found = this.deliveries(filter);
      if (found.length >= count) return found;
      if (Date.now() > deadline) {
        throw new Error(`expected ${count} deliveries, found ${found.length} before the deadline`);
      }
      await new Promise((r) => setTimeout(r, options.intervalMs ?? 20));
    }
  }

  /** Edits recorded by every process using this world, in the order they were written. */
  edits(): EditRecord[] {
    for (const edit of this.editReader.read()) this.editCache.push(edit);
    return [...this.editCache];
  }

  events(): WorldEvent[] {
    return new JsonlReader(this.path('events.jsonl'), isWorldEvent).read();
  }

  appendEvent(event: WorldEvent): void {
    // Events are rare (logins, kills); a synchronous O_APPEND write per event keeps them ordered.
    appendFileSync(this.path('events.jsonl'), JSON.stringify(event) + '\n');
  }

  sessions(): SessionRecord[] {
    const dir = this.path('sessions');
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return [];
      throw error;
    }
    return names.map((name) => readJson(join(dir, name))).filter(isSessionRecord);
  }

  session(authKey: string): SessionRecord | undefined {
    const value = readJson(this.path('sessions', `${authKey}.json`));
    return isSessionRecord(value) ? value : undefined;
  }

  saveSession(record: SessionRecord): void {
    ensureDir(this.path('sessions'));
    writeJsonAtomic(this.path('sessions', `${record.auth_key}.json`), record);
  }

  /** Marks a server-side session as ended; every client using that auth key loses its authorization. */
  revokeSession(authKey: string, reason: string): void {
    withFileMutex(this.path('sessions.lock'), () => {
      const current = this.session(authKey);
      if (current === undefined || current.revoked !== undefined) return;
      this.saveSession({ ...current, revoked: { reason, at: Date.now() } });
    });
    const record = this.session(authKey);
    this.appendEvent({
      at: Date.now(),
      type: reason === 'AUTH_KEY_DUPLICATED' ? 'auth_key_duplicated' : 'session_revoked',
      auth_key: authKey,
      detail: reason,
      pid: process.pid,
      ...(record ? { user_id: record.user_id } : {}),
    });
  }
}
