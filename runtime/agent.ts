/**
 * The runtime agent (CloudNativePG's instance manager is the model): watches the accounts placed on this pod
 * and makes the hosted TDLib clients match them, with one level-triggered reconcile per account key through
 * the same controller the operator uses (one worker per key, per-key exponential backoff on errors,
 * requeue-after for polling). TDLib updates and request completions enqueue the key too, so the login moves
 * on from TDLib's own events, never from our status write coming back through the watch.
 *
 * The pod's heartbeat Lease is the fence of every session here (see hosting/fence.ts). The operator reads
 * it to tell whether this pod is alive; a lapse closes every client at once, and a renewal after a lapse
 * brings them all back, each after re-taking its account Lease.
 */
import { setMaxListeners } from 'node:events';
import { join } from 'node:path';
import {
  ANNOTATION_METRICS_URL,
  ANNOTATION_SEND_URL,
  LABEL_MANAGED_BY,
  PLACED_POD_FIELD,
  LABEL_POOL,
  TelegramAccountResource,
  type TelegramAccount,
} from '../crds/index.js';
import type { RestClient } from '../operator/kube/client.js';
import {
  Controller,
  type ObjectKey,
  type ReconcileContext,
  type ReconcileResult,
  type Reconciler,
} from '../operator/kube/controller.js';
import type { EventRecorder } from '../operator/kube/events.js';
import { LeaseLock } from '../operator/kube/lease.js';
import type { Logger } from '../operator/kube/logging.js';
import type { Registry } from '../operator/kube/metrics.js';
import { ItemExponentialFailureRateLimiter } from '../operator/kube/rate-limiter.js';
import { Informer } from '../operator/kube/reflector.js';
import type { ApiObject } from '../operator/kube/resource.js';
import { Semaphore, errorMessage, sleep } from '../operator/kube/util.js';
import type { RuntimeConfig } from './config.js';
import { desireFor, type StopReason } from './hosting/desire.js';
import { HolderLiveness, PodFence, fenceTiming, incarnationIdentity } from './hosting/fence.js';
import { HostedAccount } from './hosting/hosted-account.js';
import { SecretInputs } from './hosting/secret-inputs.js';
import { SessionLossMetric } from './hosting/session-loss.js';
import { sweepSessionDirs } from './hosting/session-sweep.js';
import { StatusWriter } from './hosting/status-writer.js';
import { CampaignRunner } from './sending/runner.js';
import { fencedBackend } from './tdlib/backend.js';
import type { TdClientManager } from './tdlib/client.js';

type Account = TelegramAccount & ApiObject;

export interface AgentDeps {
  rest: RestClient;
  /** A separate client for Leases: the heartbeat must never wait behind bulk work (see main.ts). */
  leaseRest: RestClient;
  manager: TdClientManager;
  events: EventRecorder;
  logger: Logger;
  registry: Registry;
  config: RuntimeConfig & { POD_NAME: string; POD_NAMESPACE: string };
  applicationVersion: string;
}

const BACKUPS_AT_ONCE = 16;

export class RuntimeAgent implements Reconciler {
  readonly accounts: Informer<Account>;
  readonly hosted = new Map<string, HostedAccount>();
  /**
   * Accounts (key -> uid) logged out here: not hosted again while their deletion waits for the operator to
   * drop its finalizer (hosting one would restore the ended session from its backup and log it out again).
   */
  private readonly loggedOut = new Map<string, string>();
  readonly status: StatusWriter;
  /** Written with every heartbeat renewal (the Lease lock reads this object each time). */
  private readonly heartbeatAnnotations: Record<string, string> = {};
  readonly fence: PodFence;
  readonly campaigns: CampaignRunner;
  private readonly sessionsLost: SessionLossMetric;
  private readonly liveness: HolderLiveness;
  /**
   * Session backups at once: a thousand accounts logging in together each back up at once, and their
   * packing (read, encrypt) on the event loop in one burst stalled it for 281 ms (measured).
   */
  private readonly backups = new Semaphore(BACKUPS_AT_ONCE);
  /** One Secret reader per namespace, shared by its accounts (it keeps only reads in flight). */
  private readonly secretInputs = new Map<string, SecretInputs>();
  private readonly controller: Controller;
  private sweepTimer?: NodeJS.Timeout;
  private stopping = false;
  private started = false;
  private fenceWasValid = false;

  constructor(private readonly deps: AgentDeps) {
    const { config, rest, logger, registry } = deps;
    this.accounts = new Informer<Account>(rest, TelegramAccountResource, {
      name: 'hosted-accounts',
      namespace: config.POD_NAMESPACE,
      fieldSelector: `${PLACED_POD_FIELD}=${config.POD_NAME}`,
      logger,
      registry,
    });
    const timing = fenceTiming(config.RUNTIME_LEASE_SECONDS);
    this.fence = new PodFence({
      lock: new LeaseLock({
        rest: deps.leaseRest,
        namespace: config.POD_NAMESPACE,
        name: config.POD_NAME,
        identity: incarnationIdentity(config.POD_NAME, config.POD_UID),
        durationSeconds: config.RUNTIME_LEASE_SECONDS,
        // The operator creates each pod's heartbeat Lease; the runtime may only take and renew it.
        create: false,
        labels: { [LABEL_MANAGED_BY]: 'tdlib-runtime', [LABEL_POOL]: config.RUNTIME_POOL },
        annotations: this.heartbeatAnnotations,
      }),
      timing,
      logger,
    });
    this.sessionsLost = new SessionLossMetric(registry);
    this.liveness = new HolderLiveness(deps.leaseRest, config.POD_NAMESPACE, config.RUNTIME_LEASE_SECONDS);
    this.status = new StatusWriter({
      rest,
      logger,
      podName: config.POD_NAME,
      fenceValid: () => config.RUNTIME_UNSAFE_DISABLE_FENCE || this.fence.valid(),
      cached: (namespace, name) => this.accounts.get(namespace, name),
    });
    this.controller = new Controller({
      name: 'runtime-accounts',
      reconciler: this,
      workers: config.RUNTIME_WORKERS,
      logger,
      registry,
      // Per account: 0.5 s doubling to a minute; a start that fails for a missing Secret retries by itself.
      rateLimiter: new ItemExponentialFailureRateLimiter<string>(500, 60_000),
    }).for(this.accounts);
    this.fence.onValidityChange((valid) => this.onFenceChange(valid));
    this.campaigns = new CampaignRunner({
      rest,
      namespace: config.POD_NAMESPACE,
      logger,
      registry,
      accounts: () => this.hosted.values(),
      execute: (request) => deps.manager.executeUnchecked(request),
    });
  }

  /** Where the operator scrapes this runtime's /metrics (rollout analysis): on the heartbeat Lease. */
  advertiseMetrics(url: string): void {
    this.heartbeatAnnotations[ANNOTATION_METRICS_URL] = url;
  }

  /** Where the send API gateway reaches this runtime's send endpoint: on the heartbeat Lease. */
  advertiseSendApi(url: string): void {
    this.heartbeatAnnotations[ANNOTATION_SEND_URL] = url;
  }

  async start(): Promise<void> {
    // The heartbeat first: until this pod holds it, no account here may run (a previous incarnation might).
    if (!this.deps.config.RUNTIME_UNSAFE_DISABLE_FENCE) await this.fence.start();
    this.accounts.start();
    this.campaigns.start();
    await this.controller.start();
    this.started = true;
    const sweepSeconds = Math.min(3600, this.deps.config.TDLIB_SESSION_TTL_SECONDS);
    this.sweepTimer = setInterval(() => this.sweepStaleSessions(), sweepSeconds * 1000);
    this.sweepTimer.unref();
  }

  /** Caches synced and the fence valid: this pod can serve its accounts. */
  ready(): boolean {
    return (
      this.started &&
      this.accounts.hasSynced() &&
      !this.stopping &&
      (this.deps.config.RUNTIME_UNSAFE_DISABLE_FENCE || this.fence.valid())
    );
  }

  async reconcile(key: ObjectKey, context: ReconcileContext): Promise<ReconcileResult | void> {
    const id = `${key.namespace}/${key.name}`;
    const account = this.accounts.get(key.namespace, key.name);
    const desire = desireFor(account, this.deps.config.POD_NAME, {
      tdlibEnabled: this.deps.config.TDLIB_ENABLED,
      shuttingDown: this.stopping,
    });
    const uid = account?.metadata.uid ?? '';
    if (this.loggedOut.has(id) && this.loggedOut.get(id) !== uid) this.loggedOut.delete(id);
    let hosted = this.hosted.get(id);
    if (!hosted) {
      if (desire.kind === 'stop' || !account) return;
      // Its log-out is done (here, or by an earlier incarnation: the status says so): nothing left to run.
      if (
        desire.kind === 'logout' &&
        (this.loggedOut.has(id) || account.status?.authorizationState === 'LoggedOut')
      )
        return;
      hosted = this.host(id, account);
    }
    try {
      const result = await hosted.reconcile(account, desire, context.signal);
      // The account may have become able to send, or stopped being: the campaign side follows.
      this.campaigns.reconcileSoon();
      if (result.done) {
        this.hosted.delete(id);
        this.sessionsLost.forget(key.name);
        if (desire.kind === 'logout' && account) this.loggedOut.set(id, uid);
        if (!account || desire.kind === 'stop') this.status.forget(key.namespace, key.name);
      }
      return result.requeueAfterMs !== undefined ? { requeueAfterMs: result.requeueAfterMs } : undefined;
    } catch (error) {
      context.logger.warn(
        { account: id, err: errorMessage(error) },
        'reconcile failed; retrying with backoff',
      );
      throw error;
    }
  }

  private secretInputsOf(namespace: string): SecretInputs {
    let inputs = this.secretInputs.get(namespace);
    if (!inputs) {
      inputs = new SecretInputs(this.deps.rest, namespace);
      this.secretInputs.set(namespace, inputs);
    }
    return inputs;
  }

  private host(id: string, account: Account): HostedAccount {
    const namespace = account.metadata.namespace ?? '';
    const name = account.metadata.name ?? '';
    const hosted = new HostedAccount(account, {
      rest: this.deps.rest,
      leaseRest: this.deps.leaseRest,
      manager: this.deps.manager,
      fencedBackend: fencedBackend(this.deps.manager.backend),
      events: this.deps.events,
      logger: this.deps.logger,
      podFence: this.fence,
      liveness: this.liveness,
      backups: this.backups,
      secretInputs: this.secretInputsOf(namespace),
      dataDir: this.deps.config.TDLIB_DATA_DIR,
      applicationVersion: this.deps.applicationVersion,
      unsafeNoFence: this.deps.config.RUNTIME_UNSAFE_DISABLE_FENCE,
      closeTimeoutMs: 30_000,
      logOutTimeoutMs: 30_000,
      enqueue: (afterMs) => {
        if (!this.stopping) this.controller.enqueue(id, afterMs ? { afterMs } : {});
      },
      report: (view) => this.status.report(namespace, name, view),
      reportNow: async (view) => {
        this.status.report(namespace, name, view);
        await this.status.flush();
      },
      drainSends: () => this.campaigns.drainAccount(name, 30_000),
      onSessionLost: (reason) => this.sessionsLost.sessionLost(name, reason),
      updatesAllowLoopback: this.deps.config.UPDATES_ALLOW_LOOPBACK,
      ...(this.deps.config.RUNTIME_TEST_KILL_AFTER_SEND_ACCEPT
        ? { afterSendAccepted: () => process.kill(process.pid, 'SIGKILL') }
        : {}),
    });
    this.hosted.set(id, hosted);
    this.sessionsLost.hosted(name);
    return hosted;
  }

  private onFenceChange(valid: boolean): void {
    // Also called on every renewal (valid stays true) so the backends' deadlines follow it.
    const changed = valid !== this.fenceWasValid;
    this.fenceWasValid = valid;
    if (!valid) {
      // Synchronously: every client closes now, before anything else runs.
      for (const hosted of this.hosted.values()) hosted.fenceLapsed();
    }
    for (const hosted of this.hosted.values()) hosted.updateDeadline();
    if (valid) this.status.resume();
    // A lapse, or the fence back after one: every account takes its next step. A mere renewal is no reason to.
    if (!changed || !this.started || this.stopping) return;
    for (const id of this.hosted.keys()) this.controller.enqueue(id);
  }

  /** TDLIB_SESSION_TTL_SECONDS: drop local databases of accounts not in use here and unused for that long. */
  private sweepStaleSessions(): void {
    // Until the cache has synced, any directory may belong to an account placed here: decide nothing yet.
    if (this.stopping || !this.accounts.hasSynced()) return;
    const namespace = this.deps.config.POD_NAMESPACE;
    const inUse = (name: string): boolean =>
      this.hosted.has(`${namespace}/${name}`) || this.accounts.get(namespace, name) !== undefined;
    const removed = sweepSessionDirs(
      join(this.deps.config.TDLIB_DATA_DIR, namespace),
      inUse,
      Date.now(),
      this.deps.config.TDLIB_SESSION_TTL_SECONDS,
    );
    for (const name of removed) {
      this.deps.logger.info(
        { account: `${namespace}/${name}` },
        'removed local session data past TDLIB_SESSION_TTL_SECONDS',
      );
    }
  }

  /**
   * SIGTERM: stop taking work, then for every account close TDLib, back the session up and release its
   * Lease; the heartbeat goes last. Bounded by `budgetMs`; what did not finish keeps its Lease (it expires).
   */
  async shutdown(budgetMs: number): Promise<{ unfinished: number }> {
    this.stopping = true;
    clearInterval(this.sweepTimer);
    await this.controller.stop();
    await this.accounts.stop();
    // Campaign sends finish and are recorded while every client is still open.
    await this.campaigns.stop();
    const deadline = AbortSignal.timeout(Math.max(1000, Math.ceil(budgetMs)));
    // One deadline for every account's stop: each waits on it (and its requests do), so a pod with more than
    // ten accounts would otherwise warn of a listener leak at every shutdown.
    setMaxListeners(0, deadline);
    const results = await Promise.all(
      [...this.hosted.entries()].map(async ([id, hosted]) => {
        const done = await this.stopHosted(hosted, 'shutdown', deadline);
        if (done) this.hosted.delete(id);
        return done;
      }),
    );
    await this.status.flush();
    const unfinished = results.filter((done) => !done).length;
    // Our identity may still name account Leases we could not release: keep the heartbeat, they expire with it.
    if (unfinished === 0 && !this.deps.config.RUNTIME_UNSAFE_DISABLE_FENCE) await this.fence.release();
    else await this.fence.abandon();
    return { unfinished };
  }

  private async stopHosted(hosted: HostedAccount, reason: StopReason, signal: AbortSignal): Promise<boolean> {
    while (!signal.aborted) {
      try {
        const result = await hosted.reconcile(undefined, { kind: 'stop', reason }, signal);
        if (result.done) return true;
        await sleep(Math.min(200, result.requeueAfterMs ?? 200), signal).catch(() => undefined);
      } catch (error) {
        this.deps.logger.warn(
          { account: hosted.name, err: errorMessage(error) },
          'stopping an account failed; retrying',
        );
        await sleep(500, signal).catch(() => undefined);
      }
    }
    return false;
  }
}
