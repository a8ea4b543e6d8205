/**
 * Rollout metrics. Gauges are read from the pool cache at scrape time (every replica exports them once synced:
 * aggregate with max); counters count what this replica decided. Labels are pool_namespace and pool: a scrape
 * gives every series the operator pod's own `namespace`.
 */
import type { Counter } from 'prom-client';
import type { TelegramRuntimePool } from '../../../crds/index.js';
import { counter, gauge, type Registry } from '../../kube/metrics.js';

export interface RolloutMetrics {
  analyses: Counter<'pool_namespace' | 'pool' | 'verdict'>;
  rollbacks: Counter<'pool_namespace' | 'pool' | 'reason'>;
}

export function registerRolloutMetrics(
  registry: Registry,
  pools: { list(): readonly TelegramRuntimePool[]; hasSynced(): boolean },
): RolloutMetrics {
  const perPool = (
    name: string,
    help: string,
    value: (pool: TelegramRuntimePool) => number | undefined,
  ): void => {
    gauge(registry, {
      name,
      help,
      labelNames: ['pool_namespace', 'pool'],
      collect() {
        this.reset();
        if (!pools.hasSynced()) return;
        for (const pool of pools.list()) {
          const v = value(pool);
          if (v !== undefined)
            this.set({ pool_namespace: pool.metadata.namespace ?? '', pool: pool.metadata.name ?? '' }, v);
        }
      },
    });
  };
  const inRollout = (p: TelegramRuntimePool): boolean =>
    p.status?.phase === 'Progressing' || p.status?.phase === 'Paused';
  perPool(
    'tdlib_rollout_step',
    'Current rollout step (1-based) of a runtime pool; 0 without a rollout',
    (p) => (p.status ? (inRollout(p) ? (p.status.currentStep ?? 0) + 1 : 0) : undefined),
  );
  perPool(
    'tdlib_rollout_canary_weight',
    "Percent of a runtime pool's accounts hosted by canary pods now",
    (p) => p.status?.weight,
  );
  perPool(
    'tdlib_rollout_desired_weight',
    "The current rollout step's weight in percent; 0 without a rollout",
    (p) => (p.status ? (inRollout(p) ? (p.status.desiredWeight ?? 0) : 0) : undefined),
  );
  perPool(
    'tdlib_rollout_degraded',
    "1 while the pool's desired revision was rolled back (the spec still names it)",
    (p) => (p.status ? (p.status.phase === 'Degraded' ? 1 : 0) : undefined),
  );
  return {
    analyses: counter(registry, {
      name: 'tdlib_rollout_analyses_total',
      help: 'Rollout analyses by verdict (Passed, Failed, Inconclusive)',
      labelNames: ['pool_namespace', 'pool', 'verdict'],
    }),
    rollbacks: counter(registry, {
      name: 'tdlib_rollout_rollbacks_total',
      help: 'Rollouts rolled back, by reason (AnalysisFailed, ManualUndo)',
      labelNames: ['pool_namespace', 'pool', 'reason'],
    }),
  };
}
