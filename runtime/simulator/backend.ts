/**
 * SimulatorBackend: the TdBackend that talks to the simulated Telegram of a world directory instead of
 * libtdjson. Same JSON requests in, same objects out, delivered in batches like the native addon's
 * receive thread does. Any number of backends, in any number of processes, can share one world.
 */
import { IncomingFeed } from './incoming.js';
import type { Logger } from '../../operator/kube/logging.js';
import type { TdBackend, TdBatchListener, TdFencedBackend, TdFenceStats } from '../tdlib/backend.js';
import type { SimClient } from './client.js';
import { executeRequest } from './execute.js';
import { SessionFence } from './fence.js';
import * as O from './objects.js';
import { parseRequest, TdApiError } from './protocol.js';
import { SimRuntime, type Clock } from './runtime.js';
import * as router from './router.js';
import { writeSession } from './session-db.js';
import { finishClose } from './session.js';
import { World, type WorldView } from './world.js';

export interface SimulatorBackendOptions {
  /** The world directory shared by every simulator process of a test or demo. */
  readonly worldDir: string;
  /** A world file outside the directory; default: world.yaml/.yml/.json inside it. */
  readonly worldFile?: string;
  readonly logger?: Logger;
  /** For tests that need to control time; default Date.now. */
  readonly clock?: Clock;
}

/** A function, not an inline test: a request's handling changes the phase behind the compiler's narrowing. */
const isClosed = (client: SimClient): boolean => client.phase === 'closed';

export class SimulatorBackend implements TdBackend, TdFencedBackend {
  readonly kind = 'simulator';
  readonly world: World;
  private readonly rt: SimRuntime;
  private readonly clients = new Map<number, SimClient>();
  /** Ids of clients that reached authorizationStateClosed; their objects are dropped. */
  private readonly closedIds = new Set<number>();
  private readonly fence = new SessionFence();
  private nextClientId = 1;
  private ticker: NodeJS.Timeout | undefined;
  private lastHeartbeat = 0;
  private lastSave = 0;
  private closed = false;
  private readonly incoming: IncomingFeed;

  constructor(options: SimulatorBackendOptions) {
    this.world = World.open(options.worldDir, options.worldFile);
    this.rt = new SimRuntime(this.world, options.clock ?? { now: () => Date.now() }, options.logger);
    this.rt.registry.register();
    this.incoming = new IncomingFeed(this.world.path('deliveries.jsonl'));
    options.logger?.info(
      { worldDir: this.world.dir, instance: this.rt.registry.own.instance },
      'Telegram simulator backend started',
    );
    const interval = this.world.view().config.simulation.poll_interval_ms;
    this.ticker = setInterval(() => this.tick(), interval);
    // Like libtdjson, open clients keep the process alive; a backend without them does not.
    this.ticker.unref();
  }

  createClientId(): number {
    if (this.closed) throw new Error('SimulatorBackend is closed');
    const id = this.nextClientId++;
    this.clients.set(id, router.createClient(this.rt, id));
    this.updateRef();
    return id;
  }

  send(clientId: number, requestJson: string): void {
    if (this.closed) return;
    if (!this.fence.allows(clientId, requestJson)) return;
    const client = this.clients.get(clientId);
    if (client === undefined && this.closedIds.has(clientId)) {
      this.abort(clientId, requestJson);
      return;
    }
    if (client === undefined) {
      // td_send to an id td_create_client_id never returned: TDLib answers with an error for that id.
      const parsed = parseRequest(requestJson);
      this.rt.emit(clientId, O.error(400, 'Invalid TDLib instance specified'), parsed.extra);
      return;
    }
    // td_send only queues the request: TDLib handles it on its own threads. The stand-in handles it in its
    // scheduler's bounded turns, in order, so a thousand clients started in one turn do not run their
    // session-file writes inside the caller's turn.
    this.rt.scheduler.after(0, () => {
      if (this.closed) return;
      if (isClosed(client)) {
        this.abort(clientId, requestJson);
        return;
      }
      router.receive(client, requestJson);
      if (isClosed(client)) this.updateRef();
    });
  }

  /** A request to a client that has closed: TDLib answers it with this error. */
  private abort(clientId: number, requestJson: string): void {
    this.rt.emit(clientId, O.error(500, 'Request aborted'), parseRequest(requestJson).extra);
  }

  execute(requestJson: string): string {
    const parsed = parseRequest(requestJson);
    let answer: { readonly '@type': string };
    if (!parsed.ok) {
      answer = O.error(parsed.error.code, parsed.error.message);
    } else {
      try {
        answer = executeRequest(parsed.type, parsed.request);
      } catch (error) {
        if (!(error instanceof TdApiError)) throw error;
        answer = O.error(error.code, error.message);
      }
    }
    return JSON.stringify(parsed.extra === undefined ? answer : { ...answer, '@extra': parsed.extra });
  }

  onReceive(listener: TdBatchListener): void {
    this.rt.setListener(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ticker !== undefined) clearInterval(this.ticker);
    this.ticker = undefined;
    for (const client of this.clients.values()) {
      // Clients still open at this point are a caller bug (TDLib would abort); keep their sessions intact.
      if (client.phase === 'open' && client.session !== undefined) {
        writeSession(client.databaseDirectory, client.databaseKey, client.session);
      }
      if (client.phase !== 'closed') finishClose(client);
    }
    this.rt.flush();
    this.rt.close();
    this.rt.registry.unregister();
  }

  /**
   * TdFencedBackend. Ids this backend did not create, or that have closed, are ignored: there is nothing
   * to fence. A close is synchronous here (the client's marks in the world go at once), so unlike the
   * native watchdog this fence never needs to end the process.
   */
  setClientDeadline(clientId: number, remainingMs: number): void {
    if (!this.clients.has(clientId)) {
      if (Number.isNaN(remainingMs)) throw new TypeError('remainingMs must not be NaN');
      return;
    }
    this.fence.setDeadline(clientId, remainingMs);
  }

  fenceStats(): TdFenceStats {
    let fencedClients = 0;
    for (const clientId of this.fence.clientIds()) {
      if (this.clients.get(clientId)?.phase === 'closed') this.fence.forget(clientId);
      else fencedClients++;
    }
    return {
      fencedClients,
      blockedRequests: this.fence.blockedRequests,
      watchdogCloses: this.fence.watchdogCloses,
    };
  }

  /** The world as this backend sees it now (re-read at most once per poll interval). */
  worldView(): WorldView {
    return this.rt.view();
  }

  /** Live clients (not yet closed), for metrics and tests. */
  get openClients(): number {
    let n = 0;
    for (const client of this.clients.values()) if (client.phase !== 'closed') n++;
    return n;
  }

  private updateRef(): void {
    if (this.ticker === undefined) return;
    let open = false;
    for (const client of this.clients.values()) {
      if (client.phase === 'closed') {
        this.clients.delete(client.id);
        this.closedIds.add(client.id);
        this.fence.forget(client.id);
        continue;
      }
      if (client.started) open = true;
    }
    if (open) this.ticker.ref();
    else this.ticker.unref();
  }

  /**
   * Closes every client past its deadline, through the path a `close` request takes, so its live mark on
   * the session is gone before anything else happens.
   */
  private enforceFence(): void {
    for (const clientId of this.fence.takeOverdue()) {
      const client = this.clients.get(clientId);
      // Already closing by another path (lost authorization): its marks are gone.
      if (client === undefined || client.phase !== 'open') continue;
      this.fence.watchdogCloses++;
      router.receive(client, '{"@type":"close"}');
    }
  }

  private tick(): void {
    // First, before the heartbeat and the clients' own checks: a process resuming from a pause past a
    // deadline would otherwise renew its instance, and with it the liveness of its stale session marks,
    // while another process may already hold that session: both would then count as live holders
    // (AUTH_KEY_DUPLICATED).
    this.enforceFence();
    const now = Date.now();
    const sim = this.rt.refreshView().config.simulation;
    if (now - this.lastHeartbeat >= sim.heartbeat_interval_ms) {
      this.lastHeartbeat = now;
      this.rt.registry.heartbeat();
    }
    for (const client of this.clients.values()) router.tick(client, now);
    this.incoming.pump(this.clients.values(), this.rt.view());
    if (now - this.lastSave >= 1000) {
      this.lastSave = now;
      this.rt.saveAccounts();
    }
    this.updateRef();
    this.rt.flush();
  }
}
