/**
 * The canary rollout of a pool's new revision as its users see it: steps by share of accounts, a pause per
 * step counted from when its share was reached, advance on a fresh passed analysis, hold on an idle canary,
 * roll back on a failure or `undo`, and finish by moving the accounts back to the updated stable pods. The
 * plan is fed its own memory back on every reconcile, as the controller does through the pool's status.
 */
import { describe, expect, it } from '@jest/globals';
import { RolloutConditionType, RolloutReason, promoteToken } from '../../../crds/index.js';
import { parsePromote } from '../../../operator/pool/controller.js';
import {
  planRollout,
  stepLabel,
  type LatestAnalysis,
  type PlannedEvent,
  type RolloutFacts,
  type RolloutMemory,
  type RolloutPlan,
} from '../../../operator/pool/rollout/plan.js';
import type { RolloutSettings } from '../../../operator/pool/rollout/template.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const STABLE = 'rev-stable';
const NEXT = 'rev-next';
const OTHER = 'rev-other';

function settingsWith(
  weights: readonly number[] = [10, 25, 50, 100],
  pauseMs = DAY,
  extra: Partial<RolloutSettings> = {},
): RolloutSettings {
  return {
    steps: weights.map((weight) => ({ weight, pauseMs })),
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
    ...extra,
  };
}

const condition = (plan: RolloutPlan, type: string) => plan.conditions.find((c) => c.type === type);

/**
 * A pool as the controller sees it: a fake clock, accounts on the stable or canary pods, the latest analysis
 * and the user's signals. `reconcile` plans with the remembered memory and keeps what the plan returns;
 * `settle` moves the accounts to where the plan wants them and lets them be hosted there.
 */
class Pool {
  now = new Date('2030-01-01T00:00:00.000Z');
  memory: RolloutMemory = {};
  specRevision = NEXT;
  stableRevision = STABLE;
  canaryAccounts = 0;
  canaryHosted = 0;
  inMotion = 0;
  canaryPodsAlive = true;
  canaryPods = 1;
  canaryPodFailure: string | undefined;
  analysis: LatestAnalysis | undefined;
  promote: number | 'full' | undefined;
  undo = false;
  readonly events: PlannedEvent[] = [];
  last: RolloutPlan | undefined;

  constructor(
    readonly accounts: number,
    public settings: RolloutSettings = settingsWith(),
  ) {}

  facts(): RolloutFacts {
    return {
      now: this.now,
      specRevision: this.specRevision,
      stableRevision: this.stableRevision,
      accounts: this.accounts,
      canaryAccounts: this.canaryAccounts,
      canaryHosted: this.canaryHosted,
      inMotion: this.inMotion,
      canaryPodsAlive: this.canaryPodsAlive,
      canaryPods: this.canaryPods,
      canaryPodFailure: this.canaryPodFailure,
      analysis: this.analysis,
      promote: this.promote,
      undo: this.undo,
    };
  }

  reconcile(): RolloutPlan {
    const plan = planRollout(this.memory, this.facts(), this.settings);
    this.memory = plan.memory;
    this.events.push(...plan.events);
    // The last step passed: the stable StatefulSet takes the new template.
    if (plan.finalize) this.stableRevision = this.specRevision;
    this.last = plan;
    return plan;
  }

  /** Accounts placed toward the plan's target, not yet hosted there. */
  place(plan: RolloutPlan = this.last ?? this.reconcile()): void {
    const target = plan.canaryTarget;
    this.inMotion = Math.abs(target - this.canaryAccounts);
    this.canaryAccounts = target;
    this.canaryHosted = Math.min(this.canaryHosted, target);
  }

  /** Every placed account is hosted where it is placed. */
  settle(): void {
    this.canaryHosted = this.canaryAccounts;
    this.inMotion = 0;
  }

  /** The controller's analysis of the current step, at the current time. */
  analyse(verdict: LatestAnalysis['verdict'], metric?: string, message = `${verdict.toLowerCase()} check`) {
    this.analysis = {
      verdict,
      message,
      time: this.now.toISOString(),
      step: this.memory.currentStep ?? 0,
      ...(metric ? { metric } : {}),
    };
  }

  advance(ms: number): void {
    this.now = new Date(this.now.getTime() + ms);
  }

  reasons(): string[] {
    return this.events.map((e) => e.reason);
  }

  /** Reconcile, move the accounts and let them settle, reconcile again: the step's share is reached. */
  reachStep(): RolloutPlan {
    this.place(this.reconcile());
    this.settle();
    return this.reconcile();
  }
}

/** Walks every step with a passing analysis after each pause; returns the canary target per step. */
function walk(pool: Pool): number[] {
  const targets: number[] = [];
  for (let step = 0; step < pool.settings.steps.length; step += 1) {
    const reached = pool.reachStep();
    expect(pool.memory.currentStep).toBe(step);
    expect(condition(reached, RolloutConditionType.Progressing)?.reason).toBe(RolloutReason.StepPaused);
    targets.push(reached.canaryTarget);
    pool.advance(DAY);
    pool.analyse('Passed');
    const done = pool.reconcile();
    if (step + 1 < pool.settings.steps.length) {
      expect(done.memory.currentStep).toBe(step + 1);
      expect(done.finalize).toBe(false);
    } else expect(done.finalize).toBe(true);
  }
  return targets;
}

describe('planRollout: a full rollout', () => {
  it('walks 10 accounts through 10/25/50/100%, each event once, then finalizes and is Healthy', () => {
    const pool = new Pool(10);
    const started = pool.reconcile();
    expect(started.phase).toBe('Progressing');
    expect(started.memory).toMatchObject({ canaryRevision: NEXT, currentStep: 0 });
    expect(started.canaryTarget).toBe(1);
    expect(started.canaryCapacityFor).toBe(1);
    expect(started.desiredWeight).toBe(10);
    expect(pool.reasons()).toEqual(['RolloutStarted']);

    expect(walk(pool)).toEqual([1, 3, 5, 10]);
    expect(pool.reasons()).toEqual([
      'RolloutStarted',
      'StepReached',
      'StepCompleted',
      'StepReached',
      'StepCompleted',
      'StepReached',
      'StepCompleted',
      'StepReached',
      'Promoted',
    ]);
    expect(pool.events.every((e) => e.type === 'Normal')).toBe(true);
    expect(pool.events.find((e) => e.reason === 'StepCompleted')?.message).toBe(
      'step 1/4 (10%) completed (analysis passed: passed check); next step 2/4 (25%)',
    );

    // The stable pods now run the new revision: the accounts move back to them ("finalizing").
    const finalizing = pool.reconcile();
    expect(finalizing.phase).toBe('Progressing');
    expect(finalizing.canaryTarget).toBe(0);
    expect(finalizing.finalize).toBe(false);
    expect(condition(finalizing, RolloutConditionType.Progressing)).toMatchObject({
      status: 'True',
      reason: RolloutReason.Promoted,
    });
    expect(finalizing.message).toMatch(/^finalizing: moving 10 accounts/);
    pool.place(finalizing);
    pool.settle();

    const healthy = pool.reconcile();
    expect(healthy.phase).toBe('Healthy');
    expect(healthy.memory).toEqual({ rolledBackRevision: undefined });
    expect(healthy.message).toBe(`every account runs revision ${NEXT}`);
    expect(condition(healthy, RolloutConditionType.Progressing)).toMatchObject({
      status: 'False',
      reason: RolloutReason.Promoted,
    });
    expect(condition(healthy, RolloutConditionType.Degraded)?.status).toBe('False');
    expect(condition(healthy, RolloutConditionType.RolledBack)?.status).toBe('False');

    // Quiet afterwards: no event is repeated.
    const before = pool.events.length;
    for (let i = 0; i < 5; i += 1) {
      pool.advance(HOUR);
      expect(pool.reconcile().phase).toBe('Healthy');
    }
    expect(pool.events).toHaveLength(before);
  });

  it('with 3 accounts every step still puts at least one account on the canary (10% of 3 is 1)', () => {
    expect(walk(new Pool(3))).toEqual([1, 1, 2, 3]);
  });

  it('rounds shares up and never targets more accounts than the pool has', () => {
    const targets = (accounts: number) =>
      [10, 25, 50, 100].map((weight) => {
        const plan = planRollout(
          {},
          { ...new Pool(accounts).facts() },
          settingsWith([weight, ...(weight === 100 ? [] : [100])]),
        );
        return plan.canaryTarget;
      });
    expect(targets(1)).toEqual([1, 1, 1, 1]);
    expect(targets(7)).toEqual([1, 2, 4, 7]);
    expect(targets(100)).toEqual([10, 25, 50, 100]);
    expect(targets(0)).toEqual([0, 0, 0, 0]);
  });

  it('repeating a reconcile in any state emits nothing new', () => {
    const pool = new Pool(10);
    pool.reconcile();
    pool.reconcile();
    expect(pool.reasons()).toEqual(['RolloutStarted']);
    pool.reachStep();
    pool.reconcile();
    pool.advance(HOUR);
    pool.reconcile();
    expect(pool.reasons()).toEqual(['RolloutStarted', 'StepReached']);
    pool.advance(DAY);
    pool.analyse('Passed');
    pool.reconcile();
    pool.reconcile();
    expect(pool.reasons()).toEqual(['RolloutStarted', 'StepReached', 'StepCompleted']);
  });

  it('is deterministic: the same memory and facts give the same plan (a restarted operator continues)', () => {
    const pool = new Pool(10);
    pool.reachStep();
    const facts = pool.facts();
    expect(planRollout(pool.memory, facts, pool.settings)).toEqual(
      planRollout(pool.memory, facts, pool.settings),
    );
  });
});

describe('planRollout: moving accounts and the pause', () => {
  it('holds while accounts are being handed over, then counts the pause from when the share was reached', () => {
    const pool = new Pool(10);
    const startedAt = pool.now.getTime();
    pool.place(pool.reconcile());
    expect(pool.inMotion).toBe(1);
    pool.advance(5 * HOUR);
    const moving = pool.reconcile();
    expect(condition(moving, RolloutConditionType.Progressing)?.reason).toBe(RolloutReason.MovingAccounts);
    expect(moving.message).toBe('step 1/4 (10%): 0 of 1 accounts run the new revision (1 being handed over)');
    expect(moving.memory.stepReachedAt).toBeUndefined();
    expect(moving.memory.stepStartedAt).toBe(new Date(startedAt).toISOString());

    pool.settle();
    const reached = pool.reconcile();
    expect(reached.memory.stepReachedAt).toBe(pool.now.toISOString());
    expect(reached.requeueAfterMs).toBe(DAY);
    expect(pool.events.at(-1)).toEqual({
      type: 'Normal',
      reason: 'StepReached',
      message: `step 1/4 (10%): 1 of 10 accounts run revision ${NEXT}`,
    });

    // 24h after the step started, but only 19h after its share was reached: still holding.
    pool.advance(19 * HOUR);
    pool.analyse('Passed');
    const holding = pool.reconcile();
    expect(condition(holding, RolloutConditionType.Progressing)?.reason).toBe(RolloutReason.StepPaused);
    expect(holding.requeueAfterMs).toBe(5 * HOUR);
    expect(holding.memory.currentStep).toBe(0);

    pool.advance(5 * HOUR);
    pool.analyse('Passed');
    expect(pool.reconcile().memory.currentStep).toBe(1);
  });

  it('holds after the pause until an analysis of this step comes in', () => {
    const pool = new Pool(10);
    pool.reachStep();
    pool.advance(DAY + HOUR);
    const waiting = pool.reconcile();
    expect(condition(waiting, RolloutConditionType.Progressing)?.reason).toBe(RolloutReason.StepProgressing);
    expect(waiting.message).toBe('step 1/4 (10%): waiting for an analysis of this step');
    expect(waiting.memory.currentStep).toBe(0);
  });

  it('does not count an analysis of the previous step toward the next one', () => {
    const pool = new Pool(10);
    pool.reachStep();
    pool.advance(DAY);
    pool.analyse('Passed');
    expect(pool.reconcile().memory.currentStep).toBe(1);
    pool.reachStep();
    pool.advance(DAY);
    // The latest analysis is still the one of step 0.
    const plan = pool.reconcile();
    expect(plan.memory.currentStep).toBe(1);
    expect(plan.message).toBe('step 2/4 (25%): waiting for an analysis of this step');
  });

  it('does not count an analysis of this step taken before its share was reached', () => {
    const pool = new Pool(10, settingsWith([10, 25, 50, 100], 0));
    pool.place(pool.reconcile());
    pool.advance(10 * 60_000);
    // Analysed while the account was still being handed over.
    pool.analyse('Passed');
    pool.advance(60_000);
    pool.settle();
    const reached = pool.reconcile();
    expect(pool.reasons()).toEqual(['RolloutStarted', 'StepReached']);
    expect(reached.memory.currentStep).toBe(0);
    expect(reached.message).toBe('step 1/4 (10%): waiting for an analysis of this step');
    pool.advance(60_000);
    pool.analyse('Passed');
    expect(pool.reconcile().memory.currentStep).toBe(1);
  });

  it('waits for the canary pods before moving accounts onto them, and keeps those already there', () => {
    const pool = new Pool(10);
    pool.canaryPodsAlive = false;
    const waiting = pool.reconcile();
    expect(condition(waiting, RolloutConditionType.Progressing)?.reason).toBe(
      RolloutReason.WaitingForCanaryPods,
    );
    expect(waiting.canaryTarget).toBe(0);
    expect(waiting.canaryCapacityFor).toBe(1);
    expect(waiting.moveToCanary).toBe(false);

    pool.canaryPodsAlive = true;
    walkTo(pool, 2);
    pool.canaryPodsAlive = false;
    pool.canaryAccounts = 4;
    pool.canaryHosted = 4;
    const partial = pool.reconcile();
    expect(partial.canaryTarget).toBe(4);
    expect(partial.canaryCapacityFor).toBe(5);
    expect(partial.moveToCanary).toBe(false);
  });
});

/** Walks to the start of `step` (its share not yet reached). */
function walkTo(pool: Pool, step: number): void {
  while ((pool.memory.currentStep ?? 0) < step) {
    pool.reachStep();
    pool.advance(DAY);
    pool.analyse('Passed');
    pool.reconcile();
  }
}

describe('planRollout: an idle canary and promote', () => {
  it('holds on an inconclusive analysis indefinitely; promote for this step releases it', () => {
    const pool = new Pool(10);
    walkTo(pool, 1);
    pool.reachStep();
    for (let day = 0; day < 30; day += 1) {
      pool.advance(DAY);
      pool.analyse('Inconclusive', 'minRequests', 'canary answered 3 requests, fewer than 100');
      const plan = pool.reconcile();
      expect(plan.memory.currentStep).toBe(1);
      expect(plan.phase).toBe('Progressing');
      expect(condition(plan, RolloutConditionType.Progressing)?.reason).toBe(
        RolloutReason.AnalysisInconclusive,
      );
      expect(plan.message).toBe(
        'step 2/4 (25%): analysis inconclusive (canary answered 3 requests, fewer than 100); holding (kubectl telegram rollout promote to go on)',
      );
    }
    // A token for another step does nothing.
    pool.promote = 0;
    expect(pool.reconcile().memory.currentStep).toBe(1);
    pool.promote = 1;
    const released = pool.reconcile();
    expect(released.memory.currentStep).toBe(2);
    expect(pool.events.at(-1)?.message).toBe(
      'step 2/4 (25%) completed (promoted by hand); next step 3/4 (50%)',
    );
    // The same token does not skip the next step too.
    pool.reachStep();
    pool.advance(DAY);
    expect(pool.reconcile().memory.currentStep).toBe(2);
  });

  it("promote for a step skips that step's pause", () => {
    const pool = new Pool(10);
    pool.promote = 0;
    // In the very reconcile that sees the share reached, the step completes.
    const reached = pool.reachStep();
    expect(reached.events.map((e) => e.reason)).toEqual(['StepReached', 'StepCompleted']);
    expect(reached.memory.currentStep).toBe(1);
    expect(reached.memory.stepReachedAt).toBeUndefined();
    expect(reached.requeueAfterMs).toBe(0);
  });

  it('promote full skips every pause and analysis through to finalizing', () => {
    const pool = new Pool(10);
    pool.promote = 'full';
    for (let i = 0; i < 8 && !pool.last?.finalize; i += 1) pool.reachStep();
    expect(pool.last?.finalize).toBe(true);
    expect(pool.reasons().filter((r) => r === 'StepCompleted')).toHaveLength(3);
    expect(pool.reasons().at(-1)).toBe('Promoted');
    expect(pool.events.at(-1)?.message).toBe(
      `revision ${NEXT} promoted (promoted by hand): the stable pods take it and the accounts move back to them`,
    );
  });

  it('promote does not move accounts faster: the step must still be reached', () => {
    const pool = new Pool(10);
    pool.promote = 'full';
    pool.place(pool.reconcile());
    const moving = pool.reconcile();
    expect(moving.memory.currentStep).toBe(0);
    expect(condition(moving, RolloutConditionType.Progressing)?.reason).toBe(RolloutReason.MovingAccounts);
  });
});

describe('planRollout: rollback', () => {
  it('rolls back on a failed analysis, naming the metric, once', () => {
    const pool = new Pool(10);
    walkTo(pool, 1);
    pool.reachStep();
    pool.advance(HOUR);
    pool.analyse('Failed', 'errorRatio', 'error ratio 0.05 above 0.01');
    const plan = pool.reconcile();
    expect(plan.phase).toBe('Degraded');
    expect(plan.rolledBack).toEqual({ reason: 'AnalysisFailed' });
    expect(plan.canaryTarget).toBe(0);
    expect(plan.canaryCapacityFor).toBe(0);
    expect(plan.desiredWeight).toBe(0);
    expect(plan.events).toEqual([
      {
        type: 'Warning',
        reason: 'RolledBack',
        message: `rolled back revision ${NEXT} at step 2/4 (25%): errorRatio: error ratio 0.05 above 0.01`,
      },
    ]);
    expect(plan.memory).toMatchObject({
      rolledBackRevision: NEXT,
      rolledBackReason: 'AnalysisFailed',
      rolledBackMessage: 'at step 2/4 (25%): errorRatio: error ratio 0.05 above 0.01',
    });
    expect(plan.memory.stepReachedAt).toBeUndefined();
    const rolledBack = {
      status: 'True',
      reason: RolloutReason.AnalysisFailed,
      message: 'at step 2/4 (25%): errorRatio: error ratio 0.05 above 0.01',
    };
    expect(condition(plan, RolloutConditionType.Degraded)).toMatchObject(rolledBack);
    expect(condition(plan, RolloutConditionType.RolledBack)).toMatchObject(rolledBack);
    expect(condition(plan, RolloutConditionType.Progressing)).toMatchObject({
      status: 'False',
      reason: RolloutReason.RollingBack,
    });
    expect(plan.message).toBe(
      `rolling back: moving 3 accounts to the stable revision ${STABLE}; at step 2/4 (25%): errorRatio: error ratio 0.05 above 0.01`,
    );

    // Later reconciles keep the verdict without repeating the event.
    pool.place(plan);
    pool.settle();
    const after = pool.reconcile();
    expect(after.phase).toBe('Degraded');
    expect(after.rolledBack).toBeUndefined();
    expect(after.message).toBe(
      `revision ${NEXT} was rolled back; every account runs the stable revision ${STABLE}. Change the spec to roll out another revision`,
    );
    expect(condition(after, RolloutConditionType.RolledBack)).toMatchObject(rolledBack);
    expect(pool.reasons().filter((r) => r === 'RolledBack')).toHaveLength(1);
  });

  it('rolls back on a failed analysis without a metric, with just its message', () => {
    const pool = new Pool(10);
    pool.reachStep();
    pool.analyse('Failed', undefined, 'canary pods restarted');
    const plan = pool.reconcile();
    expect(plan.memory.rolledBackMessage).toBe('at step 1/4 (10%): canary pods restarted');
  });

  it('rolls back when a canary pod fails, even before any account moved', () => {
    const pool = new Pool(10);
    pool.canaryPodsAlive = false;
    pool.reconcile();
    pool.canaryPodFailure = 'pod tdlib-canary-main-0 did not start its runtime within 5m';
    const plan = pool.reconcile();
    expect(plan.phase).toBe('Degraded');
    expect(plan.rolledBack).toEqual({ reason: 'AnalysisFailed' });
    expect(condition(plan, RolloutConditionType.RolledBack)?.message).toBe(
      'at step 1/4 (10%): pod tdlib-canary-main-0 did not start its runtime within 5m',
    );
    expect(plan.message).toMatch(/^revision rev-next was rolled back; every account runs/);
  });

  it('rolls back on undo with reason ManualUndo', () => {
    const pool = new Pool(10);
    walkTo(pool, 2);
    pool.undo = true;
    const plan = pool.reconcile();
    expect(plan.phase).toBe('Degraded');
    expect(plan.rolledBack).toEqual({ reason: 'ManualUndo' });
    expect(condition(plan, RolloutConditionType.RolledBack)).toMatchObject({
      status: 'True',
      reason: 'ManualUndo',
      message: 'at step 3/4 (50%): kubectl telegram rollout undo',
    });
    expect(plan.events.map((e) => [e.type, e.reason])).toEqual([['Warning', 'RolledBack']]);
  });

  it('rolls back on undo in the very reconcile that starts the rollout', () => {
    const pool = new Pool(10);
    pool.undo = true;
    const plan = pool.reconcile();
    expect(plan.phase).toBe('Degraded');
    expect(plan.events.map((e) => e.reason)).toEqual(['RolloutStarted', 'RolledBack']);
  });

  it('keeps a rolled back revision Degraded, whatever happens, until the spec changes', () => {
    const pool = new Pool(10);
    pool.reachStep();
    pool.analyse('Failed', 'p95Latency', 'p95 900ms above 500ms');
    pool.reconcile();
    pool.place();
    pool.settle();

    // The failure is gone, the user promotes, the analysis passes, days go by: nothing is retried.
    pool.undo = false;
    pool.promote = 'full';
    pool.analyse('Passed');
    for (let day = 0; day < 10; day += 1) {
      pool.advance(DAY);
      const plan = pool.reconcile();
      expect(plan.phase).toBe('Degraded');
      expect(plan.canaryTarget).toBe(0);
      expect(plan.finalize).toBe(false);
      expect(condition(plan, RolloutConditionType.RolledBack)?.reason).toBe('AnalysisFailed');
    }
    expect(pool.reasons()).toEqual(['RolloutStarted', 'StepReached', 'RolledBack']);

    // Another revision rolls out from the first step; the rolled back one is still remembered.
    pool.specRevision = OTHER;
    pool.promote = undefined;
    pool.analysis = undefined;
    const next = pool.reconcile();
    expect(next.phase).toBe('Progressing');
    expect(next.memory).toMatchObject({ canaryRevision: OTHER, currentStep: 0, rolledBackRevision: NEXT });
    expect(next.memory.rolledBackReason).toBeUndefined();
    expect(next.canaryTarget).toBe(1);
    expect(condition(next, RolloutConditionType.RolledBack)).toMatchObject({
      status: 'False',
      reason: 'NotRolledBack',
    });
    expect(condition(next, RolloutConditionType.Degraded)?.status).toBe('False');
    expect(pool.reasons().at(-1)).toBe('RolloutStarted');
  });

  it('a Failed analysis is not masked by promote or pause', () => {
    const pool = new Pool(10, settingsWith([10, 25, 50, 100], DAY, { paused: true }));
    pool.promote = 'full';
    pool.reconcile();
    pool.analyse('Failed', 'memoryRatio', 'memory 0.95 of the limit');
    expect(pool.reconcile().phase).toBe('Degraded');
  });
});

describe('planRollout: no rollout', () => {
  it('new accounts starting on the stable pods of a pool without canary pods are not a rollback', () => {
    const pool = new Pool(3);
    pool.specRevision = STABLE;
    pool.canaryPods = 0;
    pool.inMotion = 3;
    const plan = pool.reconcile();
    expect(plan.phase).toBe('Healthy');
    expect(condition(plan, RolloutConditionType.Progressing)).toMatchObject({
      status: 'False',
      reason: RolloutReason.NoRollout,
    });
  });
});

describe('planRollout: pause, a new spec and a reverted spec', () => {
  it('paused holds the current canary count: no new moves, no step advance', () => {
    const pool = new Pool(10);
    walkTo(pool, 1);
    pool.place(pool.reconcile());
    pool.canaryAccounts = 2;
    pool.canaryHosted = 2;
    pool.inMotion = 0;
    pool.settings = { ...pool.settings, paused: true };
    for (let day = 0; day < 5; day += 1) {
      pool.advance(DAY);
      pool.analyse('Passed');
      const plan = pool.reconcile();
      expect(plan.phase).toBe('Paused');
      expect(plan.canaryTarget).toBe(2);
      expect(plan.canaryCapacityFor).toBe(3);
      expect(plan.moveToCanary).toBe(false);
      expect(plan.memory.currentStep).toBe(1);
      expect(condition(plan, RolloutConditionType.Progressing)).toMatchObject({
        status: 'True',
        reason: RolloutReason.ManuallyPaused,
        message: 'paused at step 2/4 (25%) (kubectl telegram rollout resume)',
      });
    }
    expect(pool.reasons().filter((r) => r === 'StepReached')).toHaveLength(1);

    pool.settings = { ...pool.settings, paused: false };
    const resumed = pool.reconcile();
    expect(resumed.phase).toBe('Progressing');
    expect(resumed.canaryTarget).toBe(3);
    expect(resumed.moveToCanary).toBe(true);
  });

  it('paused never keeps more accounts on the canary than the step allows', () => {
    const pool = new Pool(10, settingsWith([10, 25, 50, 100], DAY, { paused: true }));
    pool.canaryAccounts = 5;
    pool.canaryHosted = 5;
    const plan = pool.reconcile();
    expect(plan.phase).toBe('Paused');
    expect(plan.canaryTarget).toBe(1);
  });

  it('a new spec revision during a rollout restarts at the first step', () => {
    const pool = new Pool(10);
    walkTo(pool, 2);
    pool.reachStep();
    pool.specRevision = OTHER;
    const plan = pool.reconcile();
    expect(plan.memory).toEqual({
      canaryRevision: OTHER,
      currentStep: 0,
      stepStartedAt: pool.now.toISOString(),
      rolledBackRevision: undefined,
    });
    expect(plan.canaryTarget).toBe(1);
    expect(plan.desiredWeight).toBe(10);
    expect(plan.events).toEqual([
      {
        type: 'Normal',
        reason: 'RolloutStarted',
        message: `rolling out revision ${OTHER} (stable ${STABLE}): step 1/4 (10%)`,
      },
    ]);
    // The accounts beyond the first step's share move back before the step counts as reached.
    expect(condition(plan, RolloutConditionType.Progressing)?.reason).toBe(RolloutReason.MovingAccounts);
  });

  it('a spec reverted to the stable revision moves the accounts back (RollingBack), then is Healthy', () => {
    const pool = new Pool(10);
    walkTo(pool, 2);
    pool.reachStep();
    pool.specRevision = STABLE;
    const back = pool.reconcile();
    expect(back.phase).toBe('Progressing');
    expect(back.canaryTarget).toBe(0);
    expect(back.finalize).toBe(false);
    expect(back.events).toEqual([]);
    expect(back.message).toBe(
      `the spec names the stable revision ${STABLE} again: moving 5 accounts back from the canary pods`,
    );
    expect(condition(back, RolloutConditionType.Progressing)).toMatchObject({
      status: 'True',
      reason: RolloutReason.RollingBack,
    });
    expect(condition(back, RolloutConditionType.Degraded)?.status).toBe('False');

    pool.place(back);
    pool.settle();
    const healthy = pool.reconcile();
    expect(healthy.phase).toBe('Healthy');
    expect(healthy.memory).toEqual({ rolledBackRevision: undefined });
    expect(condition(healthy, RolloutConditionType.Progressing)).toMatchObject({
      status: 'False',
      reason: RolloutReason.NoRollout,
    });
  });

  it('re-applying the spec while the accounts are still moving back starts the rollout over', () => {
    // At step 3 (50%), its pause long over and the analysis passed, the user reverts the spec...
    const pool = new Pool(10);
    walkTo(pool, 2);
    pool.reachStep();
    pool.advance(DAY + HOUR);
    pool.analyse('Passed');
    pool.specRevision = STABLE;
    pool.reconcile();
    // ...and re-applies it before the canary's accounts are back on the stable pods.
    pool.advance(HOUR);
    pool.specRevision = NEXT;
    const plan = pool.reconcile();
    // The revert ended the abandoned rollout: nothing of it (step, reach time, analyses) carries over.
    expect(plan.events.map((e) => e.reason)).toEqual(['RolloutStarted']);
    expect(plan.memory.currentStep).toBe(0);
    expect(plan.canaryTarget).toBe(1);
  });
});

describe('planRollout: settings changed mid-rollout', () => {
  it('after the steps shrink, the remembered step is the one the plan acts on', () => {
    // At step 4/4 of the default steps, the user shortens the steps to [50, 100].
    const pool = new Pool(10);
    walkTo(pool, 3);
    pool.settings = settingsWith([50, 100]);
    pool.reachStep();
    pool.advance(DAY);
    // The controller records analyses with the remembered step (memory.currentStep).
    pool.analyse('Passed');
    const plan = pool.reconcile();
    expect(stepLabel(1, pool.settings)).toBe('2/2 (100%)');
    // The plan remembers the step it acts on, so analyses and promote tokens of that step count.
    expect(plan.memory.currentStep).toBe(1);
    expect(plan.finalize).toBe(true);
  });
});

describe('parsePromote (the promote annotation)', () => {
  it('reads a step index or full when the token names the revision', () => {
    expect(parsePromote(promoteToken(NEXT, 2), NEXT)).toBe(2);
    expect(parsePromote(promoteToken(NEXT, 0), NEXT)).toBe(0);
    expect(parsePromote(promoteToken(NEXT, 'full'), NEXT)).toBe('full');
  });

  it('ignores a token for another revision, a missing annotation and malformed steps', () => {
    expect(parsePromote(undefined, NEXT)).toBeUndefined();
    expect(parsePromote(promoteToken(OTHER, 1), NEXT)).toBeUndefined();
    expect(parsePromote(`${NEXT}-x/1`, NEXT)).toBeUndefined();
    expect(parsePromote(NEXT, NEXT)).toBeUndefined();
    for (const bad of ['', '01', '-1', '1.5', 'Full', ' 1', '1 ', 'all'])
      expect(parsePromote(`${NEXT}/${bad}`, NEXT)).toBeUndefined();
  });
});
