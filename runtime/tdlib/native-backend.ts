/**
 * TdBackend over real TDLib: the native addon (native/) and libtdjson's multi-client interface.
 */
import {
  TdJson,
  type TdJsonReceiverOptions,
  type TdJsonReceiverStats,
  type TdJsonSenderStats,
} from '../../native/index.js';
import type { TdBackend, TdBatchListener, TdFencedBackend, TdFenceStats, TdReceived } from './backend.js';
import type { TdTaggedSender } from './client.js';
import type { TdLogHandler } from './td-log.js';

export interface NativeBackendOptions {
  /** libtdjson file; else TDLIB_LIBRARY_PATH / TDLIB_ADDON_PATH, else @prebuilt-tdlib/linux-x64-glibc. */
  readonly libraryPath?: string;
  /** The compiled addon (.node); else TDLIB_ADDON_PATH if it ends in .node, else native/build/Release. */
  readonly addonPath?: string;
  /** td_receive timeout in seconds (idle wait of the receive thread; stopping does not wait for it). */
  readonly receiveTimeoutSeconds?: number;
  /** Receive batching and backpressure; see TdJsonReceiverOptions. */
  readonly receiver?: Omit<TdJsonReceiverOptions, 'timeoutSeconds'>;
  /**
   * Requests per event-loop turn sent on the JS thread; the rest of the turn's requests go to the sender
   * thread, which pays td_send's JSON parsing. Default 1: a lone request (the latency path) skips the
   * thread hop, a burst (answers triggering new requests) does not hold the event loop. 0 queues all,
   * Infinity sends all directly.
   */
  readonly directSendsPerTurn?: number;
  /** TDLib's global log verbosity (0 fatal ... 5 verbose). Default 1 (errors). */
  readonly logVerbosity?: number;
  /**
   * Receives TDLib's log messages up to logVerbosity. When set, TDLib's own stderr stream is switched off
   * so each message is logged once; fatal messages are still written to stderr before TDLib aborts.
   */
  readonly onLog?: TdLogHandler;
  /**
   * Session fence: how long past its deadline a client may take to reach authorizationStateClosed
   * before the watchdog ends the process (exit code FENCE_WATCHDOG_EXIT_CODE). Default 3000. The
   * setting is process-global, like libtdjson: the last backend that sets it wins.
   */
  readonly fenceExitGraceMs?: number;
}

const DEFAULT_LOG_VERBOSITY = 1;
const DEFAULT_MAX_BATCH_OBJECTS = 256;

export class NativeBackend implements TdBackend, TdTaggedSender, TdFencedBackend {
  readonly kind = 'native';
  readonly libraryPath: string;
  private readonly td: TdJson;
  private listener: TdBatchListener | undefined;
  /** Clients created and not yet reported closed: while there are any, the receiver holds the process. */
  private readonly open = new Set<number>();
  private receiving = false;
  private referenced = false;
  private closing: Promise<void> | undefined;
  private readonly receiverOptions: TdJsonReceiverOptions;
  private readonly directSendsPerTurn: number;
  private sendsThisTurn = 0;
  private turnEndScheduled = false;

  constructor(private readonly options: NativeBackendOptions = {}) {
    this.td = TdJson.open({ libraryPath: options.libraryPath, addonPath: options.addonPath });
    this.libraryPath = this.td.libraryPath;
    this.receiverOptions = {
      maxBatchObjects: DEFAULT_MAX_BATCH_OBJECTS,
      ...options.receiver,
      timeoutSeconds: options.receiveTimeoutSeconds ?? 1,
    };
    this.directSendsPerTurn = options.directSendsPerTurn ?? 1;
    if (options.fenceExitGraceMs !== undefined) {
      this.td.configureFence({ exitGraceMs: options.fenceExitGraceMs });
    }
    const verbosity = options.logVerbosity ?? DEFAULT_LOG_VERBOSITY;
    this.executeChecked({ '@type': 'setLogVerbosityLevel', new_verbosity_level: verbosity });
    if (options.onLog) {
      const onLog = options.onLog;
      this.executeChecked({ '@type': 'setLogStream', log_stream: { '@type': 'logStreamEmpty' } });
      this.td.setLogCallback(verbosity, (level, message) => onLog(level, message));
    }
  }

  createClientId(): number {
    this.assertUsable();
    const id = this.td.createClientId();
    this.open.add(id);
    this.ensureReceiving();
    this.updateRef();
    return id;
  }

  send(clientId: number, requestJson: string): void {
    this.assertUsable();
    this.td.send(clientId, requestJson, this.nextSendIsDirect());
  }

  /** TdTaggedSender: TdClient's requests, with '@extra' added natively. */
  sendTagged(clientId: number, extra: number, requestJson: string): void {
    this.assertUsable();
    this.td.sendTagged(clientId, extra, requestJson, this.nextSendIsDirect());
  }

  private nextSendIsDirect(): boolean {
    if (!this.turnEndScheduled) {
      this.turnEndScheduled = true;
      setImmediate(this.newTurn);
    }
    return ++this.sendsThisTurn <= this.directSendsPerTurn;
  }

  execute(requestJson: string): string {
    return (
      this.td.execute(requestJson) ?? '{"@type":"error","code":500,"message":"td_execute returned nothing"}'
    );
  }

  onReceive(listener: TdBatchListener): void {
    this.listener = listener;
  }

  /** Clients created through this backend that TDLib has not reported closed yet. */
  get openClients(): number {
    return this.open.size;
  }

  receiverStats(): TdJsonReceiverStats | null {
    return this.td.receiverStats();
  }

  senderStats(): TdJsonSenderStats {
    return this.td.senderStats();
  }

  droppedLogMessages(): number {
    return this.td.droppedLogMessages();
  }

  /** TdFencedBackend: enforced in the addon, right before td_send, and by its watchdog thread. */
  setClientDeadline(clientId: number, remainingMs: number): void {
    this.td.setClientDeadline(clientId, remainingMs);
  }

  fenceStats(): TdFenceStats {
    return this.td.fenceStats();
  }

  /**
   * Sends what is still queued, stops the receive thread and detaches the log handler. Close every
   * client first: if the process exits with a client open, TDLib crashes it.
   */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = (async () => {
      this.td.stopSender();
      if (this.receiving) await this.td.stopReceiving();
      this.receiving = false;
      if (this.options.onLog) this.td.setLogCallback(0, null);
    })();
    return this.closing;
  }

  private readonly newTurn = (): void => {
    this.sendsThisTurn = 0;
    this.turnEndScheduled = false;
  };

  /**
   * One batch per event-loop turn: processing a batch (and the promise continuations it triggers) is the
   * longest the loop is held, so timers and I/O keep running during a burst of answers.
   */
  private readonly drain = (): void => {
    const taken = this.td.takeBatch();
    if (taken === null) return;
    if (taken[1]) setImmediate(this.drain);
    // Requests sent in reaction to this batch count as a new turn: in a request/answer ping-pong each
    // request is then the first of its turn and goes out directly, without the sender thread's hop.
    this.sendsThisTurn = 0;
    this.deliver(taken[0]);
  };

  private deliver(json: string): void {
    const batch = JSON.parse(json) as TdReceived[];
    const before = this.open.size;
    for (let i = 0; i < batch.length; i++) {
      const object = batch[i] as TdReceived;
      if (
        object['@type'] === 'updateAuthorizationState' &&
        (object.authorization_state as { '@type': string })['@type'] === 'authorizationStateClosed'
      ) {
        this.open.delete(object['@client_id']);
      }
    }
    if (this.listener) this.listener(batch);
    if (this.open.size !== before) this.updateRef();
  }

  private ensureReceiving(): void {
    if (this.receiving) return;
    this.td.startReceiving(this.drain, this.receiverOptions);
    this.receiving = true;
  }

  // Open clients keep the process alive (exiting with one open makes TDLib crash it); none, and it may exit.
  private updateRef(): void {
    const wanted = this.open.size > 0;
    if (wanted === this.referenced || !this.receiving) return;
    this.td.setReceiverRef(wanted);
    this.referenced = wanted;
  }

  private assertUsable(): void {
    if (this.closing) throw new Error('NativeBackend is closed');
  }

  private executeChecked(request: { readonly '@type': string; readonly [field: string]: unknown }): void {
    const answer = JSON.parse(this.execute(JSON.stringify(request))) as { '@type': string; message?: string };
    if (answer['@type'] === 'error') {
      throw new Error(`TDLib rejected ${request['@type']}: ${answer.message ?? 'no message'}`);
    }
  }
}
