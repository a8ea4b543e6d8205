/**
 * The TelegramRuntimePool status the operator writes, as a pure function of the rollout plan and the pool's
 * observed numbers; and the rollout memory read back from a status.
 */
import {
  RolloutConditionType,
  findCondition,
  nextCondition,
  type AnalysisRecord,
  type RuntimePoolStatus,
  type TelegramRuntimePool,
} from '../../../crds/index.js';
import { stepLabel, type RolloutMemory, type RolloutPlan } from './plan.js';
import type { PodTemplateSpec, RolloutSettings } from './template.js';

export const MAX_ANALYSES = 10;

export function memoryFromStatus(status: RuntimePoolStatus | undefined): RolloutMemory {
  if (!status) return {};
  const rolledBack = findCondition(status.conditions, RolloutConditionType.RolledBack);
  return {
    canaryRevision: status.canaryRevision,
    currentStep: status.currentStep,
    stepStartedAt: status.stepStartedAt,
    stepReachedAt: status.stepReachedAt,
    rolledBackRevision: status.rolledBackRevision,
    ...(rolledBack?.status === 'True'
      ? { rolledBackReason: rolledBack.reason, rolledBackMessage: rolledBack.message }
      : {}),
  };
}

export interface PoolCounts {
  replicas: number;
  alivePods: number;
  accounts: number;
  canaryAccounts: number;
  canaryHosted: number;
  inMotion: number;
}

export function desiredPoolStatus(input: {
  pool: TelegramRuntimePool;
  plan: RolloutPlan;
  settings: RolloutSettings;
  stable: { revision: string; template: PodTemplateSpec };
  canary: { revision: string; template: PodTemplateSpec };
  counts: PoolCounts;
  analyses: readonly AnalysisRecord[];
  now: Date;
}): RuntimePoolStatus {
  const { plan, counts } = input;
  const m = plan.memory;
  const inRollout = m.canaryRevision !== undefined && plan.phase !== 'Healthy';
  const existing = input.pool.status?.conditions;
  const status: RuntimePoolStatus = {
    observedGeneration: input.pool.metadata.generation,
    phase: plan.phase,
    stableRevision: input.stable.revision,
    stableImage: input.stable.template.image,
    rolloutStep: inRollout && plan.phase !== 'Degraded' ? stepLabel(m.currentStep ?? 0, input.settings) : '-',
    desiredWeight: plan.phase === 'Degraded' ? 0 : plan.desiredWeight,
    weight: counts.accounts === 0 ? 0 : Math.round((100 * counts.canaryHosted) / counts.accounts),
    replicas: counts.replicas,
    readyPods: `${counts.alivePods}/${counts.replicas}`,
    accounts: counts.accounts,
    canaryAccounts: counts.canaryAccounts,
    accountsInMotion: counts.inMotion,
    message: plan.message.slice(0, 1024),
    conditions: plan.conditions.map((c) =>
      nextCondition(existing, { ...c, message: c.message.slice(0, 32768) }, input.now),
    ),
  };
  if (inRollout) {
    status.canaryRevision = m.canaryRevision;
    status.canaryImage = input.canary.template.image;
    status.currentStep = m.currentStep;
    status.stepStartedAt = m.stepStartedAt;
    if (m.stepReachedAt) status.stepReachedAt = m.stepReachedAt;
  }
  if (m.rolledBackRevision) status.rolledBackRevision = m.rolledBackRevision;
  if (input.analyses.length > 0) status.analyses = input.analyses.slice(-MAX_ANALYSES);
  return status;
}
