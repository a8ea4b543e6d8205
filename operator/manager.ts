/**
 * Wires the operator: caches on every replica (so a new leader starts warm), controllers only on the
 * leader, HTTP endpoints for probes and metrics. Returns a handle whose stop() is the graceful shutdown.
 */
import { hostname } from 'node:os';
import type { V1StatefulSet } from '@kubernetes/client-node';
import type { TelegramAccount, TelegramRuntimePool } from '../crds/index.js';
import { AccountReconciler } from './account/controller.js';
import { secretCache } from './account/secret-cache.js';
import { accountLoopRelevant } from './account/predicates.js';
import { referencedSecrets } from './account/inputs.js';
import { registerAccountMetrics } from './account/metrics.js';
import type { OperatorConfig } from './config.js';
import { RestClient, loadKubeConfig } from './kube/client.js';
import { Controller } from './kube/controller.js';
import { EventRecorder } from './kube/events.js';
import { LeaderElector, type LeaderElectionEnd } from './kube/leader-election.js';
import type { Logger } from './kube/logging.js';
import { registerListenerMetrics } from './kube/listener-metrics.js';
import { createRegistry, startMetricsServer, type Registry } from './kube/metrics.js';
import { Informer } from './kube/reflector.js';
import { Resources, type ApiObject } from './kube/resource.js';
import { LABEL_ACCOUNT, LABEL_MANAGED_BY, LABEL_POOL, MANAGED_BY } from '../crds/naming.js';
import { registerCampaignMetrics } from './campaign/metrics.js';
import { setupCampaignController } from './campaign/setup.js';
import {
  POOL_INDEX,
  PoolReconciler,
  WRITE_CONCURRENCY,
  poolKeyOf,
  type HeartbeatLease,
} from './pool/controller.js';
import { POOL_COALESCE_MS, poolRelevantChange } from './pool/predicates.js';
import { SECRET_INDEX } from './pool/secret-links.js';
import { RuntimePoolResource, TelegramAccountResource } from '../crds/resources.js';
import { registerRolloutMetrics } from './pool/rollout/metrics.js';

type Account = TelegramAccount & ApiObject;
export interface OperatorHandle {
  rest: RestClient;
  registry: Registry;
  /** Resolves when the process should exit: leadership lost ('lost') or stop() called. */
  done: Promise<LeaderElectionEnd | 'stopped'>;
  isLeader(): boolean;
  ports: { metrics: number; health: number };
  stop(): Promise<void>;
}

export async function startOperator(config: OperatorConfig, logger: Logger): Promise<OperatorHandle> {
  const registry = createRegistry({ defaultMetrics: true });
  registerListenerMetrics(registry);
  const identity = config.POD_NAME || `${hostname()}-${process.pid}`;
  const rest = new RestClient(loadKubeConfig(config.KUBECONFIG), {
    registry,
    logger,
    // Per replica, so the apiserver's audit log tells which replica wrote what.
    userAgent: `tdlib-operator/${identity}`,
  });
  const namespace = config.WATCH_NAMESPACE === '' ? undefined : config.WATCH_NAMESPACE;

  const accounts = new Informer<Account>(rest, TelegramAccountResource, {
    name: 'telegramaccounts',
    namespace,
    logger,
    registry,
  });
  accounts.addIndex(POOL_INDEX, (a) => [poolKeyOf(a)]);
  accounts.addIndex(SECRET_INDEX, (a) => referencedSecrets(a).map((s) => `${a.metadata.namespace}/${s}`));
  const secrets = secretCache(rest, { namespace, logger, registry });
  const statefulSets = new Informer<V1StatefulSet & ApiObject>(rest, Resources.StatefulSet, {
    name: 'statefulsets',
    namespace,
    labelSelector: `${LABEL_MANAGED_BY}=${MANAGED_BY}`,
    logger,
    registry,
  });
  // The runtimes' Leases: pod heartbeats (labelled with their pool) and account fences (with their account).
  const leases = new Informer<HeartbeatLease>(rest, Resources.Lease, {
    name: 'runtime-leases',
    namespace,
    labelSelector: `${LABEL_MANAGED_BY}=tdlib-runtime`,
    logger,
    registry,
  });
  const pools = new Informer<TelegramRuntimePool & ApiObject>(rest, RuntimePoolResource, {
    name: 'telegramruntimepools',
    namespace,
    logger,
    registry,
  });
  const events = new EventRecorder(rest, { component: 'tdlib-operator', host: identity, logger, registry });
  const campaign = setupCampaignController({
    rest,
    namespace,
    accounts,
    events,
    logger,
    registry,
    workers: Math.max(1, Math.ceil(config.WORKERS / 2)),
  });
  const informers = [accounts, ...secrets.informers, statefulSets, leases, pools, ...campaign.informers];
  const rolloutMetrics = registerRolloutMetrics(registry, pools);
  for (const informer of informers) informer.start();

  const poolReconciler = new PoolReconciler({
    rest,
    accounts,
    secrets,
    statefulSets,
    leases,
    pools,
    rolloutMetrics,
    events,
    config,
    logger,
    // Heartbeats are judged from the Lease cache: while its watch is down (in backoff after cut
    // connections) nothing is seen to change, which is not the same as nothing changing.
    apiTroubleEndedAt: () => Math.max(rest.apiTroubleEndedAt(), leases.currentSince()),
    podStartTimeoutMs: config.RUNTIME_POD_START_TIMEOUT_SECONDS * 1000,
  });
  const pool = new Controller({
    name: 'runtimepool',
    reconciler: poolReconciler,
    workers: Math.max(1, Math.ceil(config.WORKERS / 2)),
    // Its writes to accounts go out WRITE_CONCURRENCY at a time, plus the workload and Lease writes.
    requestsPerReconcile: WRITE_CONCURRENCY + 8,
    logger,
    registry,
  })
    // Accounts reach the pool loop through the predicate below; watching them here only gates start-up on
    // their cache.
    .watches(accounts, () => [])
    // A Secret's accounts' pools, when it changed what their inputs say (a referenced Secret or key appearing
    // or going, an opt-in label, a Secret of the session's name that is not ours).
    .watches(secrets.made, (s) => poolReconciler.poolsOfSecretEvent(s), { coalesceMs: POOL_COALESCE_MS })
    .watches(secrets.others, (s) => poolReconciler.poolsOfSecretEvent(s), { coalesceMs: POOL_COALESCE_MS })
    .watches(pools, (p) => [{ namespace: p.metadata?.namespace ?? '', name: p.metadata?.name ?? '' }])
    .watches(statefulSets, (sts) => {
      const p = sts.metadata?.labels?.[LABEL_POOL];
      return p ? [{ namespace: sts.metadata?.namespace ?? '', name: p }] : [];
    })
    .watches(leases, (lease) => {
      const p = lease.metadata?.labels?.[LABEL_POOL];
      return p ? [{ namespace: lease.metadata?.namespace ?? '', name: p }] : [];
    });
  accounts.onEvent((type, current, old, meta) => {
    const keys = new Set([poolKeyOf(current)]);
    if (type === 'MODIFIED' && old) {
      if (!poolRelevantChange(old, current) || poolReconciler.ownPlacementEcho(old, current)) return;
      keys.add(poolKeyOf(old));
    }
    for (const key of keys)
      pool.enqueue(key, meta.initial ? { priority: 'low' } : { afterMs: POOL_COALESCE_MS });
  });
  const accountReconciler = new AccountReconciler({ rest, accounts, secrets, leases, events });
  const account = new Controller({
    name: 'telegramaccount',
    reconciler: accountReconciler,
    workers: config.WORKERS,
    logger,
    registry,
  })
    .for(accounts, { predicate: accountLoopRelevant })
    // Only the Secrets it made carry an account label (they are made again when deleted).
    .watches(
      secrets.made,
      (s) => {
        const owner = s.metadata?.labels?.[LABEL_ACCOUNT];
        return owner ? [{ namespace: s.metadata?.namespace ?? '', name: owner }] : [];
      },
      { predicate: (_type, s) => !accountReconciler.ownCreateEcho(s) },
    )
    // An account Lease a runtime made: its ownership follows the deletion policy, which may have changed
    // since the runtime read it.
    .watches(
      leases,
      (lease) => {
        const owner = lease.metadata?.labels?.[LABEL_ACCOUNT];
        return owner ? [{ namespace: lease.metadata?.namespace ?? '', name: owner }] : [];
      },
      { types: ['ADDED'] },
    );
  const controllers = [pool, account, campaign.controller];

  let leading = false;
  // Object state as metrics (for alerts), from every replica's cache: a failover leaves no gap.
  registerAccountMetrics(registry, accounts);
  registerCampaignMetrics(registry, campaign.campaigns);
  const synced = (): boolean => informers.every((i) => i.hasSynced());
  const probes = { '/healthz': () => true, '/readyz': synced };
  const metricsServer = await startMetricsServer({ port: config.METRICS_PORT, registry, probes });
  const healthServer =
    config.HEALTH_PORT === config.METRICS_PORT && config.METRICS_PORT !== 0
      ? metricsServer
      : await startMetricsServer({ port: config.HEALTH_PORT, registry, probes });

  const runControllers = async (signal: AbortSignal): Promise<void> => {
    leading = true;
    logger.info({ identity }, 'leading: starting controllers');
    await Promise.all(controllers.map((c) => c.start(signal)));
  };
  const stopControllers = async (): Promise<void> => {
    leading = false;
    await Promise.all(controllers.map((c) => c.stop()));
  };

  let elector: LeaderElector | undefined;
  let done: Promise<LeaderElectionEnd | 'stopped'>;
  let resolveStopped: (end: 'stopped') => void = () => undefined;
  const stopped = new Promise<'stopped'>((resolve) => (resolveStopped = resolve));
  if (config.LEADER_ELECT) {
    elector = new LeaderElector({
      rest,
      namespace: config.OPERATOR_NAMESPACE,
      name: 'tdlib-operator-leader',
      identity,
      leaseDurationSeconds: config.LEASE_DURATION_SECONDS,
      renewDeadlineSeconds: config.RENEW_DEADLINE_SECONDS,
      retryPeriodSeconds: config.RETRY_PERIOD_SECONDS,
      logger,
      registry,
    });
    done = elector.run({ onStartedLeading: runControllers, onStoppedLeading: stopControllers });
  } else {
    void runControllers(new AbortController().signal);
    done = stopped;
  }

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      logger.info('shutting down');
      if (elector) await elector.release();
      await stopControllers();
      await events.close();
      await Promise.all(informers.map((i) => i.stop()));
      await metricsServer.close();
      if (healthServer !== metricsServer) await healthServer.close();
      await rest.close();
      resolveStopped('stopped');
    })();
    return stopping;
  };
  return {
    rest,
    registry,
    done: Promise.race([done, stopped]),
    isLeader: () => leading,
    ports: { metrics: metricsServer.port, health: healthServer.port },
    stop,
  };
}
