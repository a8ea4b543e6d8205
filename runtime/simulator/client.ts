/**
 * One simulated TDLib client (one td_create_client_id): what TDLib keeps per client (the authorization
 * state, the opened database, the connection state, what it has learnt about users and chats) and the
 * plumbing every handler uses (answers, updates, requests that need the network). The rules live in
 * auth.ts, session.ts, network.ts and messaging.ts; router.ts decides which one handles a request.
 */
import { injectedError, latencyOf } from './faults.js';
import type { MemberRole } from './groups.js';
import type { AccountState } from './limits.js';
import * as O from './objects.js';
import { TdApiError, type Json, type JsonObject } from './protocol.js';
import type { PendingStore } from './pending.js';
import type { SimRuntime } from './runtime.js';
import type { SessionData } from './session-db.js';
import type { UserView } from './world.js';

export type ConnectionType = O.TdConnectionState['@type'];

export type Dispatch = (
  client: SimClient,
  type: string,
  request: JsonObject,
  extra: Json | undefined,
) => void;

interface Queued {
  readonly type: string;
  readonly request: JsonObject;
  readonly extra: Json | undefined;
}

export class SimClient {
  started = false;
  phase: 'open' | 'closing' | 'closed' = 'open';
  authState: O.TdAuthorizationState = { '@type': 'authorizationStateWaitTdlibParameters' };
  initialized = false;
  databaseDirectory = '';
  databaseKey: Buffer = Buffer.alloc(0);
  session: SessionData | undefined;
  me: UserView | undefined;
  account: AccountState | undefined;
  connection: ConnectionType | undefined;
  connecting = false;
  networkDown = false;
  /** The auth key this client holds a live lease on (kept after the session file is deleted). */
  leaseKey: string | undefined;
  dbLocked = false;
  qr: { token: string; expiresAt: number } | undefined;
  readonly preInit: Queued[] = [];
  readonly waitingForNetwork: (() => void)[] = [];
  /**
   * Network work not finished yet, by token. Requests (`answers`) get an error if the client goes away;
   * a message's delivery just stops, like a pending send in TDLib without a message database.
   */
  readonly inFlight = new Map<number, { readonly extra: Json | undefined; readonly answers: boolean }>();
  nextToken = 1;
  /** Users this client has received (updateUser); the value says whether it saw them deleted. */
  readonly knownUsers = new Map<number, boolean>();
  readonly knownChats = new Set<number>();
  /** Supergroups and channels this client looked up, with its member status as it last learnt it. */
  readonly knownSupergroups = new Map<number, MemberRole>();
  /** setTdlibParameters.use_message_database: unfinished sends survive a restart and are re-sent. */
  messageDatabase = false;
  pendingSends: PendingStore | undefined;
  /** When this client became Ready (ms): only_local history is what it sent since then. */
  readySince = 0;
  readonly options = new Map<string, O.TdOptionValue>();
  localSeq = 0;
  /**
   * Yet-unsent ids of this client's messages still pending or failed (TDLib keeps both in the chat): an
   * edit of one is "Message can't be edited", of anything else the server does not have "Message not found".
   */
  readonly unsentIds = new Set<number>();
  lastHealthCheck = 0;
  /** When a slow `close` started (faults.latency_ms.methods.close); router.tick finishes it. */
  closeStartedAt: number | undefined;
  /** The authorization request on the wire; TDLib allows one at a time. */
  authQuery: number | undefined;

  constructor(
    readonly rt: SimRuntime,
    readonly id: number,
    /** The request router (router.ts), passed in so this module does not depend on the handlers. */
    private readonly dispatch: Dispatch,
  ) {}

  get holder(): { readonly instance: string; readonly client_id: number } {
    return { instance: this.rt.registry.own.instance, client_id: this.id };
  }

  get isReady(): boolean {
    return this.authState['@type'] === 'authorizationStateReady';
  }

  get isBot(): boolean {
    return this.me?.bot !== undefined;
  }

  /** The database is deleted (logOut, destroy, lost authorization): so are the remembered sends. */
  dropPendingSends(): void {
    this.pendingSends?.discard();
    this.pendingSends = undefined;
  }

  // ---- output ---------------------------------------------------------------------------------------

  reply(extra: Json | undefined, object: { readonly '@type': string }): void {
    this.rt.emit(this.id, object, extra);
  }

  replyError(extra: Json | undefined, code: number, message: string): void {
    this.rt.emit(this.id, O.error(code, message), extra);
  }

  update(object: { readonly '@type': string }): void {
    this.rt.emit(this.id, object);
  }

  setAuthState(state: O.TdAuthorizationState): void {
    this.authState = state;
    this.update(O.updateAuthorizationState(state));
  }

  // ---- input ----------------------------------------------------------------------------------------

  /** Runs one request through the router; handlers throw TdApiError for error answers. */
  run(type: string, request: JsonObject, extra: Json | undefined): void {
    try {
      this.dispatch(this, type, request, extra);
    } catch (error) {
      if (!(error instanceof TdApiError)) throw error;
      this.replyError(extra, error.code, error.message);
    }
  }

  /** Re-runs the requests that arrived before setTdlibParameters, in arrival order. */
  drainPreInit(): void {
    const queued = this.preInit.splice(0);
    for (const q of queued) this.run(q.type, q.request, q.extra);
  }

  // ---- the simulated network ----------------------------------------------------------------------

  /**
   * Work that needs Telegram's servers: it waits for the connection, takes the method's latency, may fail
   * by fault injection, and then runs `work`, whose result (if any) is the answer to the request.
   * `background` work (a message's delivery) answers nothing and injects its own faults.
   */
  networkCall(
    method: string,
    extra: Json | undefined,
    work: () => { readonly '@type': string } | undefined,
    background = false,
  ): number {
    const token = this.nextToken++;
    this.inFlight.set(token, { extra, answers: !background });
    const attempt = (): void => {
      if (!this.inFlight.has(token)) return;
      if (this.connection !== 'connectionStateReady') {
        this.waitingForNetwork.push(attempt);
        return;
      }
      this.rt.scheduler.after(latencyOf(this.rt, method), () => {
        if (!this.inFlight.has(token)) return;
        if (this.connection !== 'connectionStateReady') {
          this.waitingForNetwork.push(attempt);
          return;
        }
        this.inFlight.delete(token);
        const injected = background ? undefined : injectedError(this.rt, method);
        if (injected !== undefined) return this.reply(extra, injected);
        try {
          const result = work();
          if (result !== undefined) this.reply(extra, result);
        } catch (error) {
          if (!(error instanceof TdApiError)) throw error;
          this.replyError(extra, error.code, error.message);
        }
      });
    };
    attempt();
    return token;
  }

  /** Abandons one network request, answering it with the given error. */
  cancelNetwork(token: number, code: number, message: string): void {
    const work = this.inFlight.get(token);
    if (work === undefined) return;
    this.inFlight.delete(token);
    if (work.answers) this.replyError(work.extra, code, message);
  }

  /** Answers every request still waiting for the network with the given error. */
  abortInFlight(code: number, message: string): void {
    for (const work of this.inFlight.values()) if (work.answers) this.replyError(work.extra, code, message);
    this.inFlight.clear();
    this.waitingForNetwork.length = 0;
    for (const q of this.preInit.splice(0)) this.replyError(q.extra, code, message);
  }
}
