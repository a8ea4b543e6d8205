/**
 * TdClient and TdClientManager: the shared layer above a TdBackend (native addon or simulator).
 *
 * One manager per backend owns the backend's single receive listener, correlates answers to requests by a
 * numeric '@extra', routes updates to the client they belong to, enforces deadlines and closes clients.
 * Everything here is backend-agnostic: it only sees TDLib's JSON objects.
 */
import type { TdBackend, TdObject, TdReceived } from './backend.js';
import { DeadlineQueue, type Expirable } from './deadlines.js';
import {
  TdClientClosedError,
  TdError,
  TdFenceError,
  TdTimeoutError,
  telegramLimitOf,
  type TelegramLimit,
} from './errors.js';
import type { TdRequestHooks } from './metrics-hooks.js';
import type {
  TdAuthorizationState,
  TdAuthorizationStateType,
  TdMethod,
  TdRequest,
  TdResponse,
  TdSyncMethod,
  TdUpdate,
} from './types.js';

export interface InvokeOptions {
  /** Rejects with TdTimeoutError when no answer arrived in time; defaults to the manager's default. */
  readonly timeoutMs?: number;
}

export interface TdClientManagerOptions {
  /** Deadline for invoke() when the call does not pass one. Default 60 s. */
  readonly defaultTimeoutMs?: number;
  /** Deadline for close() and closeAll() when the call does not pass one. Default 30 s. */
  readonly closeTimeoutMs?: number;
  /** Per-request metrics (duration by method, totals, errors by code). */
  readonly hooks?: TdRequestHooks;
  /** An update listener threw. The error never reaches TDLib's dispatch loop; default: console.error. */
  readonly onListenerError?: (error: unknown, clientId: number) => void;
  /** Objects that match no client or pending request (late answers after a timeout, unknown clients). */
  readonly onUnroutable?: (object: TdReceived) => void;
}

export type TdUpdateListener = (update: TdUpdate) => void;

/**
 * Asked synchronously before every request except `close`: undefined lets it through, a text refuses it
 * (with TdFenceError) and says why. The session fence of the account the client runs.
 */
export type TdClientGate = () => string | undefined;

export interface CreateClientOptions {
  readonly gate?: TdClientGate;
}
export type TdClientState = 'open' | 'closing' | 'closed';

/** A request whose method is checked against TDLib's schema; '@type' selects the method. */
export type TdTypedRequest<M extends TdMethod> = TdRequest<M> & { readonly '@type': M };

export interface CloseAllResult {
  /** Clients that reached authorizationStateClosed (including ones already closed). */
  readonly closed: number;
  /** Clients still not closed at the deadline. Exiting with a client open makes TDLib crash the process. */
  readonly notClosed: readonly number[];
}

/**
 * An optional fast path a backend may offer besides TdBackend.send: send `requestJson` (JSON.stringify
 * of a request object) with '@extra' set to `extra`. It spares building a second string per request in
 * JS; backends without it get the spliced text through send(). NativeBackend implements it.
 */
export interface TdTaggedSender {
  sendTagged(clientId: number, extra: number, requestJson: string): void;
}

function taggedSender(backend: TdBackend): TdTaggedSender | undefined {
  const candidate = backend as TdBackend & Partial<TdTaggedSender>;
  return typeof candidate.sendTagged === 'function' ? (candidate as TdTaggedSender) : undefined;
}

const DEFAULT_TIMEOUT_MS = 60_000;
const DEFAULT_CLOSE_TIMEOUT_MS = 30_000;

class PendingRequest implements Expirable {
  settled = false;
  resolve!: (value: TdObject) => void;
  reject!: (error: Error) => void;

  constructor(
    readonly extra: number,
    readonly client: TdClient,
    readonly method: string,
    readonly timeoutMs: number,
    readonly start: number,
    readonly deadline: number,
  ) {}
}

/** State shared by a manager and its clients; not exported so that only TdClient can use it. */
class Dispatcher {
  readonly clients = new Map<number, TdClient>();
  readonly pending = new Map<number, PendingRequest>();
  readonly deadlines: DeadlineQueue<PendingRequest>;
  readonly defaultTimeoutMs: number;
  readonly closeTimeoutMs: number;
  private nextExtra = 1;
  private readonly tagged: TdTaggedSender | undefined;

  constructor(
    readonly backend: TdBackend,
    private readonly options: TdClientManagerOptions,
  ) {
    this.defaultTimeoutMs = options.defaultTimeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.closeTimeoutMs = options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
    this.deadlines = new DeadlineQueue((request) => this.expire(request));
    this.tagged = taggedSender(backend);
  }

  /** Sends `json` (a serialized request object) with a fresh '@extra' and returns the answer. */
  request(client: TdClient, method: string, json: string, timeoutMs: number): Promise<TdObject> {
    const extra = this.nextExtra++;
    const now = performance.now();
    const pending = new PendingRequest(extra, client, method, timeoutMs, now, now + timeoutMs);
    const promise = new Promise<TdObject>((resolve, reject) => {
      pending.resolve = resolve;
      pending.reject = reject;
    });
    this.pending.set(extra, pending);
    client.pendingCount++;
    this.deadlines.add(pending, timeoutMs);
    try {
      // The tag goes into the text, not the caller's object (which would then have to be copied).
      if (this.tagged) this.tagged.sendTagged(client.id, extra, json);
      else this.backend.send(client.id, '{"@extra":' + extra + ',' + json.slice(1));
    } catch (error) {
      this.settle(pending);
      this.deadlines.settled(timeoutMs);
      this.finish(pending, error instanceof Error ? error : new Error(String(error)), 'send_failed');
    }
    return promise;
  }

  dispatch(batch: readonly TdReceived[]): void {
    for (let i = 0; i < batch.length; i++) {
      const object = batch[i] as TdReceived;
      const extra = object['@extra'];
      if (extra !== undefined) {
        const pending = typeof extra === 'number' ? this.pending.get(extra) : undefined;
        if (pending === undefined) this.options.onUnroutable?.(object);
        else this.answer(pending, object);
        continue;
      }
      const client = this.clients.get(object['@client_id']);
      if (client === undefined) this.options.onUnroutable?.(object);
      else client.deliver(object as unknown as TdUpdate);
    }
  }

  listenerError(error: unknown, clientId: number): void {
    if (this.options.onListenerError) this.options.onListenerError(error, clientId);
    else console.error(`TDLib update listener for client ${clientId} threw`, error);
  }

  /** Rejects every pending request (the backend is going away) and stops the deadline timer. */
  abandonAll(): void {
    for (const pending of this.pending.values()) {
      this.settle(pending);
      this.finish(pending, new TdClientClosedError(pending.method, pending.client.id), 'closed');
    }
    this.deadlines.clear();
  }

  /** Rejects every request still waiting on a client that has closed. */
  rejectAllOf(client: TdClient): void {
    if (client.pendingCount === 0) return;
    for (const pending of this.pending.values()) {
      if (pending.client !== client) continue;
      this.settle(pending);
      this.deadlines.settled(pending.timeoutMs);
      this.finish(pending, new TdClientClosedError(pending.method, client.id), 'closed');
    }
  }

  private answer(pending: PendingRequest, object: TdReceived): void {
    this.settle(pending);
    this.deadlines.settled(pending.timeoutMs);
    if (object['@type'] === 'error') {
      const error = TdError.fromObject(object, pending.method, pending.client.id);
      this.finish(pending, error, String(error.code), telegramLimitOf(error.code, error.message));
    } else {
      this.finish(pending, object, 'ok');
    }
  }

  private expire(pending: PendingRequest): void {
    this.settle(pending);
    this.finish(pending, new TdTimeoutError(pending.method, pending.timeoutMs, pending.client.id), 'timeout');
  }

  private settle(pending: PendingRequest): void {
    pending.settled = true;
    this.pending.delete(pending.extra);
    pending.client.pendingCount--;
  }

  private finish(
    pending: PendingRequest,
    outcome: TdObject | Error,
    label: string,
    telegramLimit?: TelegramLimit,
  ): void {
    const hooks = this.options.hooks;
    if (hooks !== undefined) {
      hooks.requestDone(pending.method, (performance.now() - pending.start) / 1000, label, telegramLimit);
    }
    if (outcome instanceof Error) pending.reject(outcome);
    else pending.resolve(outcome);
  }
}

/** One TDLib client (one td_create_client_id). Created by TdClientManager.createClient(). */
export class TdClient {
  /** Requests of this client still waiting for an answer. */
  pendingCount = 0;
  private currentState: TdClientState = 'open';
  private authState: TdAuthorizationState | undefined;
  private readonly listeners = new Set<TdUpdateListener>();
  private readonly closedSignal: { promise: Promise<void>; resolve: () => void };

  /** @internal Use TdClientManager.createClient(). */
  constructor(
    private readonly dispatcher: Dispatcher,
    readonly id: number,
    private readonly gate?: TdClientGate,
  ) {
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    this.closedSignal = { promise, resolve };
  }

  get state(): TdClientState {
    return this.currentState;
  }

  /** The last authorization state TDLib reported (undefined before the first one arrives). */
  get authorizationState(): TdAuthorizationState | undefined {
    return this.authState;
  }

  /** Resolves once TDLib reported authorizationStateClosed for this client. */
  get closed(): Promise<void> {
    return this.closedSignal.promise;
  }

  /**
   * Sends a request and resolves with TDLib's answer. Rejects with TdError when TDLib answers with an
   * error (unknown method, wrong field types...), TdTimeoutError after the deadline, TdClientClosedError
   * when the client is closing or closed.
   */
  invoke<M extends TdMethod>(request: TdTypedRequest<M>, options?: InvokeOptions): Promise<TdResponse<M>> {
    return this.invokeUnchecked(request, options) as Promise<TdResponse<M>>;
  }

  /** invoke() for requests built at run time (no schema check); the answer is TDLib's object as is. */
  invokeUnchecked(request: TdObject, options?: InvokeOptions): Promise<TdObject> {
    const method = request['@type'];
    if (this.currentState !== 'open') return Promise.reject(new TdClientClosedError(method, this.id));
    if (this.gate !== undefined && method !== 'close') {
      const refused = this.gate();
      if (refused !== undefined) return Promise.reject(new TdFenceError(method, this.id, refused));
    }
    const timeoutMs = options?.timeoutMs ?? this.dispatcher.defaultTimeoutMs;
    return this.dispatcher.request(this, method, JSON.stringify(request), timeoutMs);
  }

  /**
   * invoke() for request text from outside (a CLI, a test). Text that is not a JSON object is answered
   * with TDLib's own error for it (td_execute parses it the way td_send would), never sent to the client.
   */
  invokeJson(requestJson: string, options?: InvokeOptions): Promise<TdObject> {
    let parsed: unknown;
    try {
      parsed = JSON.parse(requestJson);
    } catch {
      parsed = undefined;
    }
    if (!isTdObject(parsed)) {
      const answer = parseObject(this.dispatcher.backend.execute(requestJson));
      const error =
        answer?.['@type'] === 'error' ? answer : { code: 400, message: 'Request is not an object' };
      return Promise.reject(TdError.fromObject(error, 'invalid', this.id));
    }
    return this.invokeUnchecked(parsed, options);
  }

  /** Calls `listener` for every update of this client, in TDLib's order. Returns the unsubscribe function. */
  subscribe(listener: TdUpdateListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** EventEmitter-style alias of subscribe(). */
  on(event: 'update', listener: TdUpdateListener): this {
    if (event === 'update') this.listeners.add(listener);
    return this;
  }

  off(event: 'update', listener: TdUpdateListener): this {
    if (event === 'update') this.listeners.delete(listener);
    return this;
  }

  /** Resolves when TDLib reports the given authorization state (immediately if it is the current one). */
  waitForAuthorizationState(
    type: TdAuthorizationStateType,
    options?: { readonly timeoutMs?: number },
  ): Promise<TdAuthorizationState> {
    if (this.authState?.['@type'] === type) return Promise.resolve(this.authState);
    const timeoutMs = options?.timeoutMs ?? this.dispatcher.defaultTimeoutMs;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        unsubscribe();
        reject(new TdTimeoutError(`waitForAuthorizationState(${type})`, timeoutMs, this.id));
      }, timeoutMs);
      // Like request deadlines: open clients keep the process alive, a pending wait alone does not.
      timer.unref();
      const unsubscribe = this.subscribe((update) => {
        if (update['@type'] !== 'updateAuthorizationState') return;
        const state = update.authorization_state;
        if (state['@type'] === type) {
          clearTimeout(timer);
          unsubscribe();
          resolve(state);
        } else if (state['@type'] === 'authorizationStateClosed') {
          clearTimeout(timer);
          unsubscribe();
          reject(new TdClientClosedError(`waitForAuthorizationState(${type})`, this.id));
        }
      });
    });
  }

  /**
   * Asks TDLib to close the client and waits for authorizationStateClosed. Idempotent. Rejects with
   * TdTimeoutError if TDLib has not closed it by the deadline (the client then stays 'closing').
   */
  close(options?: { readonly timeoutMs?: number }): Promise<void> {
    if (this.currentState === 'closed') return Promise.resolve();
    if (this.currentState === 'open') {
      // The answer to `close` may arrive after authorizationStateClosed, whose handling rejects it.
      this.dispatcher
        .request(this, 'close', '{"@type":"close"}', options?.timeoutMs ?? this.dispatcher.closeTimeoutMs)
        .catch(() => undefined);
      this.currentState = 'closing';
    }
    const timeoutMs = options?.timeoutMs ?? this.dispatcher.closeTimeoutMs;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new TdTimeoutError('close', timeoutMs, this.id)), timeoutMs);
      timer.unref();
      void this.closedSignal.promise.then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** @internal Called by the dispatcher for every object of this client that is not an answer. */
  deliver(update: TdUpdate): void {
    let closedNow = false;
    if (update['@type'] === 'updateAuthorizationState') {
      this.authState = update.authorization_state;
      closedNow = this.authState['@type'] === 'authorizationStateClosed';
    }
    for (const listener of this.listeners) {
      try {
        listener(update);
      } catch (error) {
        this.dispatcher.listenerError(error, this.id);
      }
    }
    if (closedNow) this.markClosed();
  }

  private markClosed(): void {
    this.currentState = 'closed';
    this.dispatcher.clients.delete(this.id);
    this.dispatcher.rejectAllOf(this);
    this.closedSignal.resolve();
  }
}

const managers = new WeakMap<TdBackend, TdClientManager>();

/** Owns a backend's receive stream; creates, tracks and closes its clients. One per backend. */
export class TdClientManager {
  private readonly dispatcher: Dispatcher;

  constructor(
    readonly backend: TdBackend,
    options: TdClientManagerOptions = {},
  ) {
    if (managers.has(backend)) throw new Error('this TdBackend already has a TdClientManager');
    this.dispatcher = new Dispatcher(backend, options);
    backend.onReceive((batch) => this.dispatcher.dispatch(batch));
    managers.set(backend, this);
  }

  /** The manager created for `backend`, if any. */
  static of(backend: TdBackend): TdClientManager | undefined {
    return managers.get(backend);
  }

  /** Reserves a TDLib client id; TDLib starts the client with its first request. */
  createClient(options: CreateClientOptions = {}): TdClient {
    const id = this.backend.createClientId();
    const client = new TdClient(this.dispatcher, id, options.gate);
    this.dispatcher.clients.set(id, client);
    this.clientsCreated++;
    return client;
  }

  /** Clients created over this manager's life (tdlib_sessions_total). */
  clientsCreated = 0;

  /** Clients not yet closed (open or closing). */
  get size(): number {
    return this.dispatcher.clients.size;
  }

  /** Requests still waiting for an answer, over all clients. */
  get pendingRequests(): number {
    return this.dispatcher.pending.size;
  }

  getClient(id: number): TdClient | undefined {
    return this.dispatcher.clients.get(id);
  }

  clients(): IterableIterator<TdClient> {
    return this.dispatcher.clients.values();
  }

  /** td_execute: synchronous methods only. Throws TdError when TDLib answers with an error. */
  execute<M extends TdSyncMethod & TdMethod>(request: TdTypedRequest<M>): TdResponse<M> {
    const method = request['@type'];
    const answer = parseObject(this.backend.execute(JSON.stringify(request)));
    if (answer === undefined) throw new TdError(500, 'td_execute returned no object', `execute:${method}`);
    if (answer['@type'] === 'error') throw TdError.fromObject(answer, `execute:${method}`);
    return answer as unknown as TdResponse<M>;
  }

  /** td_execute for requests built at run time: TDLib's answer as is, an error object included. */
  executeUnchecked(request: TdObject): TdObject {
    return (
      parseObject(this.backend.execute(JSON.stringify(request))) ?? {
        '@type': 'error',
        code: 500,
        message: 'td_execute returned no object',
      }
    );
  }

  /**
   * Closes every client and waits for each authorizationStateClosed until the deadline. Never rejects:
   * the result says which clients did not close, so the caller can log them before exiting.
   */
  async closeAll(options?: { readonly timeoutMs?: number }): Promise<CloseAllResult> {
    const clients = [...this.dispatcher.clients.values()];
    const timeoutMs = options?.timeoutMs ?? this.dispatcher.closeTimeoutMs;
    const results = await Promise.allSettled(clients.map((client) => client.close({ timeoutMs })));
    const notClosed: number[] = [];
    results.forEach((result, index) => {
      const client = clients[index];
      if (result.status === 'rejected' && client !== undefined) notClosed.push(client.id);
    });
    return { closed: clients.length - notClosed.length, notClosed };
  }

  /**
   * closeAll(), then releases the backend (its receive loop). Requests still pending on clients that
   * did not close in time are rejected, since no answer can arrive any more.
   */
  async shutdown(options?: { readonly timeoutMs?: number }): Promise<CloseAllResult> {
    const result = await this.closeAll(options);
    await this.backend.close();
    this.dispatcher.abandonAll();
    return result;
  }
}

/** Closes every client created through `backend`'s manager; resolves at once if there is none. */
export function closeAll(
  backend: TdBackend,
  options?: { readonly timeoutMs?: number },
): Promise<CloseAllResult> {
  const manager = managers.get(backend);
  return manager ? manager.closeAll(options) : Promise.resolve({ closed: 0, notClosed: [] });
}

function isTdObject(value: unknown): value is TdObject {
  return (
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    typeof (value as { '@type'?: unknown })['@type'] === 'string'
  );
}

function parseObject(text: string | null | undefined): TdObject | undefined {
  if (text === null || text === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    return isTdObject(value) ? value : undefined;
  } catch {
    return undefined;
  }
}
