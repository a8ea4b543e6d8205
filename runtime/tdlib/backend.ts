/**
 * The TDLib boundary. Two implementations: the native addon over libtdjson (real TDLib) and the simulator
 * (a Telegram network stand-in). Everything above it (TdClient, the auth driver, the sender, metrics) is
 * shared, so both must speak TDLib's JSON interface exactly: same requests in, same objects out.
 */

/** A TDLib object as it crosses the JSON interface: always tagged with '@type'. */
export interface TdObject {
  readonly '@type': string;
  readonly [field: string]: unknown;
}

/** What a backend delivers: a response (carrying the request's '@extra') or an update, for one client. */
export interface TdReceived extends TdObject {
  readonly '@client_id': number;
  readonly '@extra'?: unknown;
}

/**
 * Receives everything that became ready since the last call, in arrival order, in one hop per batch
 * (never one callback per object: the per-hop cost dominates at 100k+ objects/s).
 */
export type TdBatchListener = (batch: readonly TdReceived[]) => void;

export interface TdBackend {
  /** 'native' or 'simulator': for logs and metrics labels. */
  readonly kind: string;
  /** td_create_client_id: reserves an id; the client starts when the first request is sent to it. */
  createClientId(): number;
  /** td_send: queues a request (JSON text with '@type' and usually '@extra'); never throws for bad JSON. */
  send(clientId: number, requestJson: string): void;
  /** td_execute: synchronous methods only (parseTextEntities, getOption version, log settings...). */
  execute(requestJson: string): string;
  /** Registers the single consumer of received objects. Calling it again replaces the listener. */
  onReceive(listener: TdBatchListener): void;
  /**
   * Releases the backend (stops the receive loop). Callers close every client first and wait for
   * authorizationStateClosed; TDLib aborts the process if a client is still open at exit.
   */
  close(): Promise<void>;
}

export interface TdFenceStats {
  /** Clients with a deadline that have not reached authorizationStateClosed. */
  readonly fencedClients: number;
  /** Requests dropped because their client's deadline had passed. */
  readonly blockedRequests: number;
  /** Overdue clients the backend closed itself. */
  readonly watchdogCloses: number;
}

/** A session fence enforced by the backend itself, below the caller's own checks. */
export interface TdFencedBackend {
  /**
   * After `remainingMs` (Infinity: never) the backend forwards nothing but `close` for this client,
   * closes it itself, and (native) ends the process if it has not closed exitGraceMs later. A deadline
   * that has passed is final: later calls for that client, even with a fresh Lease, change nothing.
   */
  setClientDeadline(clientId: number, remainingMs: number): void;
  fenceStats(): TdFenceStats;
}

/** The backend's session fence, if it has one. */
export function fencedBackend(backend: TdBackend): TdFencedBackend | undefined {
  const candidate = backend as TdBackend & Partial<TdFencedBackend>;
  return typeof candidate.setClientDeadline === 'function' && typeof candidate.fenceStats === 'function'
    ? (candidate as TdFencedBackend)
    : undefined;
}
