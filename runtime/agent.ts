/**
 * The runtime agent (CloudNativePG's instance manager is the model): watches the accounts placed on this pod
 * and makes the hosted TDLib clients match them, one level-triggered reconcile per account.
 */
import { join } from 'node:path';
import type { TelegramAccount } from '../crds/index.js';
import type { RestClient } from '../operator/kube/client.js';
import { Controller, type ObjectKey, type Reconciler } from '../operator/kube/controller.js';
import type { EventRecorder } from '../operator/kube/events.js';
import type { Logger } from '../operator/kube/logging.js';
import type { Registry } from '../operator/kube/metrics.js';
import { Informer } from '../operator/kube/reflector.js';
import type { ApiObject } from '../operator/kube/resource.js';
import { LABEL_MANAGED_BY, LABEL_PLACED_POD, LABEL_POOL } from '../crds/naming.js';
import { TelegramAccountResource } from '../crds/resources.js';
import type { RuntimeConfig } from './config.js';
import { HostedAccount } from './hosting/hosted-account.js';
import { LeaseFence } from './hosting/lease.js';
import { sweepSessionDirs } from './hosting/session-sweep.js';
import { StatusWriter } from './hosting/status-writer.js';
import type { TdClientManager } from './tdlib/client.js';

type Account = TelegramAccount & ApiObject;

export interface AgentDeps {
  rest: RestClient;
  /** A separate client for Lease renewals (see main.ts). */
  leaseRest: RestClient;
  manager: TdClientManager;
  events: EventRecorder;
  logger: Logger;
  registry: Registry;
  config: RuntimeConfig & { POD_NAME: string; POD_NAMESPACE: string };
  applicationVersion: string;
}

export class RuntimeAgent implements Reconciler {
  readonly accounts: Informer<Account>;
  readonly hosted = new Map<string, HostedAccount>();
  readonly status: StatusWriter;
  private readonly controller: Controller;
  private readonly heartbeat: LeaseFence;
  private sweepTimer?: NodeJS.Timeout;
  private stopping = false;

  constructor(private readonly deps: AgentDeps) {
    const { config, rest, logger, registry } = deps;
    this.accounts = new Informer<Account>(rest, TelegramAccountResource, {
      name: 'hosted-accounts',
      namespace: config.POD_NAMESPACE,
      labelSelector: `${LABEL_PLACED_POD}=${config.POD_NAME}`,
      logger,
      registry,
    });
    this.status = new StatusWriter(rest, logger);
    this.controller = new Controller({
      name: 'runtime-accounts',
      reconciler: this,
      workers: 4,
      logger,
      registry,
    }).for(this.accounts);
    // The pod's heartbeat: the operator moves this pod's accounts elsewhere when it expires.
    this.heartbeat = new LeaseFence({
      rest: deps.leaseRest,
      namespace: config.POD_NAMESPACE,
      name: config.POD_NAME,
      holder: config.POD_NAME,
      durationSeconds: config.RUNTIME_LEASE_SECONDS,
      labels: { [LABEL_MANAGED_BY]: 'tdlib-runtime', [LABEL_POOL]: config.RUNTIME_POOL },
      logger,
      onLost: (reason) => logger.error({ reason }, 'pod heartbeat lease lost'),
    });
  }

  async start(): Promise<void> {
    // The unsafe test mode skips every fence, the pod heartbeat included, to show what the fences prevent.
    if (!this.deps.config.RUNTIME_UNSAFE_DISABLE_FENCE)
      while (!(await this.heartbeat.tryAcquire())) await new Promise((r) => setTimeout(r, 1000));
    this.accounts.start();
    await this.controller.start();
    const sweepSeconds = Math.min(3600, this.deps.config.TDLIB_SESSION_TTL_SECONDS);
    this.sweepTimer = setInterval(() => this.sweepStaleSessions(), sweepSeconds * 1000);
    this.sweepTimer.unref();
  }

  /** Caches synced and every hosted account past its start (running, or waiting for input/Lease). */
  ready(): boolean {
    return this.accounts.hasSynced() && !this.stopping;
  }

  async reconcile(key: ObjectKey): Promise<void> {
    if (this.stopping) return;
    const id = `${key.namespace}/${key.name}`;
    const account = this.accounts.get(key.namespace, key.name);
    const hosted = this.hosted.get(id);
    const deleting = account?.metadata.deletionTimestamp !== undefined;
    const logOut = deleting && account?.spec.deletionPolicy === 'LogOut';
    const wanted =
      account !== undefined && !account.spec.suspend && !deleting && this.deps.config.TDLIB_ENABLED;

    if (logOut && account) {
      const target = hosted ?? this.host(id, account);
      await target.logOut();
      this.hosted.delete(id);
      return;
    }
    if (wanted && account) {
      if (hosted) hosted.update(account);
      else void this.host(id, account).start();
      return;
    }
    if (hosted) {
      this.hosted.delete(id);
      await hosted.stop(account?.spec.suspend ? 'suspended' : deleting ? 'deleted' : 'moved');
      if (!account) this.status.forget(hosted.namespace, hosted.name);
    }
  }

  private host(id: string, account: Account): HostedAccount {
    const hosted = new HostedAccount(account, {
      rest: this.deps.rest,
      leaseRest: this.deps.leaseRest,
      manager: this.deps.manager,
      events: this.deps.events,
      logger: this.deps.logger,
      podName: this.deps.config.POD_NAME,
      dataDir: this.deps.config.TDLIB_DATA_DIR,
      leaseSeconds: this.deps.config.RUNTIME_LEASE_SECONDS,
      applicationVersion: this.deps.applicationVersion,
      unsafeNoFence: this.deps.config.RUNTIME_UNSAFE_DISABLE_FENCE,
      onChange: (latest, view) => {
        // Report against the newest cached object, whose conditions carry the last transition times.
        const current = this.accounts.get(latest.metadata.namespace, latest.metadata.name ?? '') ?? latest;
        this.status.report(current, view);
      },
    });
    this.hosted.set(id, hosted);
    return hosted;
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

  /** SIGTERM: stop taking work, then close every client, back up sessions and release the Leases. */
  async shutdown(): Promise<void> {
    this.stopping = true;
    clearInterval(this.sweepTimer);
    await this.controller.stop();
    await this.accounts.stop();
    const all = [...this.hosted.values()];
    this.hosted.clear();
    await Promise.all(all.map((h) => h.stop('shutdown')));
    await this.status.flush();
    await this.heartbeat.release();
  }
}
