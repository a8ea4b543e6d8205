/**
 * The TelegramRuntimePool status the operator writes from a rollout plan, and the rollout memory read back
 * from it: a restarted operator must continue exactly where the status says the rollout was.
 */
import { describe, expect, it } from '@jest/globals';
import {
  API_VERSION,
  RolloutConditionType,
  findCondition,
  type AnalysisRecord,
  type RuntimePoolStatus,
  type TelegramRuntimePool,
} from '../../../crds/index.js';
import {
  planRollout,
  type RolloutFacts,
  type RolloutMemory,
  type RolloutPlan,
} from '../../../operator/pool/rollout/plan.js';
import {
  MAX_ANALYSES,
  desiredPoolStatus,
  memoryFromStatus,
  type PoolCounts,
} from '../../../operator/pool/rollout/pool-status.js';
import {
  DEFAULT_RESOURCES,
  type PodTemplateSpec,
  type RolloutSettings,
} from '../../../operator/pool/rollout/template.js';

const HOUR = 3_600_000;
const T0 = new Date('2030-01-01T00:00:00.000Z');
const at = (ms: number) => new Date(T0.getTime() + ms);

const settings: RolloutSettings = {
  steps: [10, 25, 50, 100].map((weight) => ({ weight, pauseMs: 24 * HOUR })),
  paused: false,
  maxAccountsInMotion: 10,
  intervalMs: 60_000,
  startDeadlineMs: 300_000,
  minRequests: 100,
  maxErrorRatio: 0.01,
  maxP95LatencyMs: 500,
  maxMemoryRatio: 0.8,
  countTelegramLimits: false,
  ignoredErrorCodes: [],
};

const template = (image: string): PodTemplateSpec => ({
  image,
  backend: 'native',
  resources: DEFAULT_RESOURCES,
  storageSize: '1Gi',
  storageClass: '',
});
const stable = { revision: 'rev-a', template: template('runtime:1') };
const canary = { revision: 'rev-b', template: template('runtime:2') };

const pool = (status?: RuntimePoolStatus): TelegramRuntimePool => ({
  apiVersion: API_VERSION,
  kind: 'TelegramRuntimePool',
  metadata: { name: 'main', namespace: 'ns', generation: 7 },
  spec: { image: 'runtime:2' },
  ...(status ? { status } : {}),
});

const facts = (over: Partial<RolloutFacts> = {}): RolloutFacts => ({
  now: T0,
  specRevision: canary.revision,
  stableRevision: stable.revision,
  accounts: 10,
  canaryAccounts: 0,
  canaryHosted: 0,
  inMotion: 0,
  canaryPods: 1,
  canaryPodsAlive: true,
  undo: false,
  ...over,
});

const counts = (over: Partial<PoolCounts> = {}): PoolCounts => ({
  replicas: 3,
  alivePods: 3,
  accounts: 10,
  canaryAccounts: 0,
  canaryHosted: 0,
  inMotion: 0,
  ...over,
});

function statusOf(
  plan: RolloutPlan,
  options: {
    previous?: RuntimePoolStatus;
    counts?: PoolCounts;
    analyses?: AnalysisRecord[];
    now?: Date;
    stable?: typeof stable;
  } = {},
): RuntimePoolStatus {
  return desiredPoolStatus({
    pool: pool(options.previous),
    plan,
    settings,
    stable: options.stable ?? stable,
    canary,
    counts: options.counts ?? counts(),
    analyses: options.analyses ?? [],
    now: options.now ?? T0,
  });
}

const analysis = (i: number): AnalysisRecord => ({
  time: at(i * 60_000).toISOString(),
  step: 0,
  verdict: 'Passed',
  message: `analysis ${i}`,
  canary: { pods: 1, requests: 200 },
});

/** A plan at step 2/4 (25%) with its share reached. */
function atSecondStep(): { memory: RolloutMemory; plan: RolloutPlan } {
  const memory: RolloutMemory = {
    canaryRevision: canary.revision,
    currentStep: 1,
    stepStartedAt: at(-2 * HOUR).toISOString(),
  };
  const plan = planRollout(memory, facts({ now: at(0), canaryAccounts: 3, canaryHosted: 3 }), settings);
  return { memory: plan.memory, plan };
}

describe('desiredPoolStatus', () => {
  it('shows a rollout step for humans, its weights and the counts', () => {
    const { plan } = atSecondStep();
    const status = statusOf(plan, {
      counts: counts({ replicas: 4, alivePods: 3, canaryAccounts: 3, canaryHosted: 2, inMotion: 1 }),
    });
    expect(status).toMatchObject({
      observedGeneration: 7,
      phase: 'Progressing',
      stableRevision: 'rev-a',
      stableImage: 'runtime:1',
      canaryRevision: 'rev-b',
      canaryImage: 'runtime:2',
      currentStep: 1,
      stepStartedAt: at(-2 * HOUR).toISOString(),
      stepReachedAt: T0.toISOString(),
      rolloutStep: '2/4 (25%)',
      desiredWeight: 25,
      weight: 20,
      replicas: 4,
      readyPods: '3/4',
      accounts: 10,
      canaryAccounts: 3,
      accountsInMotion: 1,
      message: plan.message,
    });
    expect(status.analyses).toBeUndefined();
  });

  it('weight is the share of accounts hosted on the canary, rounded, and 0 without accounts', () => {
    const { plan } = atSecondStep();
    const weight = (c: Partial<PoolCounts>) => statusOf(plan, { counts: counts(c) }).weight;
    expect(weight({ accounts: 3, canaryHosted: 1 })).toBe(33);
    expect(weight({ accounts: 3, canaryHosted: 2 })).toBe(67);
    expect(weight({ accounts: 10, canaryHosted: 10 })).toBe(100);
    expect(weight({ accounts: 0, canaryHosted: 0 })).toBe(0);
  });

  it('shows no step and no canary without a rollout', () => {
    const plan = planRollout({}, facts({ specRevision: stable.revision }), settings);
    const status = statusOf(plan, { stable: stable });
    expect(status.phase).toBe('Healthy');
    expect(status.rolloutStep).toBe('-');
    expect(status.desiredWeight).toBe(0);
    expect(status.canaryRevision).toBeUndefined();
    expect(status.canaryImage).toBeUndefined();
    expect(status.currentStep).toBeUndefined();
    expect(status.stepStartedAt).toBeUndefined();
    expect(status.rolledBackRevision).toBeUndefined();
  });

  it('shows no step and weight 0 once rolled back, and keeps the rolled back revision', () => {
    const { memory } = atSecondStep();
    const plan = planRollout(memory, facts({ canaryAccounts: 3, canaryHosted: 3, undo: true }), settings);
    const status = statusOf(plan, { counts: counts({ canaryAccounts: 3, canaryHosted: 3 }) });
    expect(status.phase).toBe('Degraded');
    expect(status.rolloutStep).toBe('-');
    expect(status.desiredWeight).toBe(0);
    expect(status.weight).toBe(30);
    expect(status.rolledBackRevision).toBe('rev-b');
    expect(findCondition(status.conditions, RolloutConditionType.RolledBack)).toMatchObject({
      status: 'True',
      reason: 'ManualUndo',
      message: 'at step 2/4 (25%): kubectl telegram rollout undo',
    });

    // After the spec returns to the stable revision the pool is Healthy but remembers the revision.
    const healthy = planRollout(plan.memory, facts({ specRevision: stable.revision }), settings);
    expect(statusOf(healthy).rolledBackRevision).toBe('rev-b');
  });

  it('keeps the last analyses only', () => {
    const { plan } = atSecondStep();
    const analyses = Array.from({ length: 14 }, (_, i) => analysis(i));
    const status = statusOf(plan, { analyses });
    expect(MAX_ANALYSES).toBe(10);
    expect(status.analyses).toEqual(analyses.slice(4));
  });

  it('bounds the message to what the schema allows', () => {
    const { plan } = atSecondStep();
    const status = statusOf({ ...plan, message: 'x'.repeat(5000) });
    expect(status.message).toHaveLength(1024);
  });

  it('keeps lastTransitionTime while a condition keeps its status, moves it when the status changes', () => {
    const first = atSecondStep();
    const before = statusOf(first.plan, { now: T0 });
    const progressing = findCondition(before.conditions, RolloutConditionType.Progressing);
    expect(progressing).toMatchObject({ status: 'True', lastTransitionTime: '2030-01-01T00:00:00Z' });

    // A day later the step completes: still Progressing=True, with another reason and message.
    const later = at(25 * HOUR);
    const next = planRollout(
      first.memory,
      facts({
        now: later,
        canaryAccounts: 3,
        canaryHosted: 3,
        analysis: {
          verdict: 'Passed',
          message: 'ok',
          time: at(24 * HOUR).toISOString(),
          step: 1,
        },
      }),
      settings,
    );
    expect(next.memory.currentStep).toBe(2);
    const after = statusOf(next, { previous: before, now: later });
    expect(findCondition(after.conditions, RolloutConditionType.Progressing)).toMatchObject({
      status: 'True',
      reason: 'StepProgressing',
      lastTransitionTime: '2030-01-01T00:00:00Z',
    });
    expect(findCondition(after.conditions, RolloutConditionType.Degraded)?.lastTransitionTime).toBe(
      '2030-01-01T00:00:00Z',
    );

    // Then it rolls back: Degraded and RolledBack turn True, Progressing False, all at the new time.
    const failed = planRollout(
      next.memory,
      facts({ now: later, canaryAccounts: 3, canaryHosted: 3, undo: true }),
      settings,
    );
    const rolledBack = statusOf(failed, { previous: after, now: later });
    for (const type of Object.values(RolloutConditionType))
      expect(findCondition(rolledBack.conditions, type)?.lastTransitionTime).toBe('2030-01-02T01:00:00Z');
  });
});

describe('memoryFromStatus', () => {
  it('is empty without a status', () => {
    expect(memoryFromStatus(undefined)).toEqual({});
    expect(memoryFromStatus({})).toEqual({});
  });

  it('round-trips the memory of a rollout mid-step, so a restarted operator plans the same', () => {
    const { plan } = atSecondStep();
    const memory = memoryFromStatus(statusOf(plan));
    expect(memory).toEqual(plan.memory);
    const later = facts({ now: at(3 * HOUR), canaryAccounts: 3, canaryHosted: 3 });
    expect(planRollout(memory, later, settings)).toEqual(planRollout(plan.memory, later, settings));
  });

  it("round-trips a rollback with the RolledBack condition's reason and message", () => {
    const { memory } = atSecondStep();
    const plan = planRollout(
      memory,
      facts({
        canaryAccounts: 3,
        canaryHosted: 3,
        analysis: {
          verdict: 'Failed',
          metric: 'errorRatio',
          message: 'error ratio 0.2 above 0.01',
          time: T0.toISOString(),
          step: 1,
        },
      }),
      settings,
    );
    const restored = memoryFromStatus(statusOf(plan));
    expect(restored).toEqual(plan.memory);
    expect(restored).toMatchObject({
      rolledBackRevision: 'rev-b',
      rolledBackReason: 'AnalysisFailed',
      rolledBackMessage: 'at step 2/4 (25%): errorRatio: error ratio 0.2 above 0.01',
    });
    // The restarted operator still says why, without a second RolledBack event.
    const again = planRollout(restored, facts({ now: at(HOUR) }), settings);
    expect(again.events).toEqual([]);
    expect(findCondition(statusOf(again).conditions, RolloutConditionType.RolledBack)).toMatchObject({
      status: 'True',
      reason: 'AnalysisFailed',
      message: 'at step 2/4 (25%): errorRatio: error ratio 0.2 above 0.01',
    });
  });

  it('does not read a rollback reason from a RolledBack condition that is False', () => {
    const plan = planRollout({}, facts(), settings);
    const memory = memoryFromStatus(statusOf(plan));
    expect(memory.rolledBackReason).toBeUndefined();
    expect(memory.rolledBackMessage).toBeUndefined();
    expect(memory).toEqual(plan.memory);
  });

  it('round-trips a Healthy pool to an empty memory', () => {
    const plan = planRollout({}, facts({ specRevision: stable.revision }), settings);
    expect(memoryFromStatus(statusOf(plan))).toEqual({});
  });
});
