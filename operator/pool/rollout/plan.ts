/**
 * The rollout of a pool's new revision as a pure function of what the pool remembers (its status), what the
 * cluster shows (accounts per version, canary pods, the latest analysis) and the user's signals (pause,
 * promote, undo). Called on every reconcile; the same inputs give the same plan, so a restarted operator
 * continues where the status says it was.
 *
 * The steps: bring up canary pods, move the step's share of accounts onto them (the controller limits how
 * many move at once), hold the step's pause once the share is reached, advance when the latest analysis
 * passed. After the last step (100%) the stable StatefulSet takes the new template and the accounts move
 * back to it ("finalizing"). A failed analysis, a canary pod that never starts or stops heartbeating, or
 * `undo` rolls back: every account returns to the stable pods and the revision is not tried again until the
 * spec names another one.
 */
import type { ConditionInput } from '../../../crds/index.js';
import { RolloutConditionType, RolloutReason } from '../../../crds/index.js';
import type { RolloutSettings } from './template.js';

export type Phase = 'Healthy' | 'Progressing' | 'Paused' | 'Degraded';

/** What the pool's status remembers between reconciles. */
export interface RolloutMemory {
  canaryRevision?: string;
  currentStep?: number;
  stepStartedAt?: string;
  stepReachedAt?: string;
  rolledBackRevision?: string;
  /** The RolledBack condition's reason and message, kept while the spec names that revision. */
  rolledBackReason?: string;
  rolledBackMessage?: string;
}

export interface LatestAnalysis {
  verdict: 'Passed' | 'Failed' | 'Inconclusive';
  metric?: string;
  message: string;
  time: string;
  step: number;
}

export interface RolloutFacts {
  now: Date;
  specRevision: string;
  stableRevision: string;
  /** The pool's accounts that can be placed. */
  accounts: number;
  /** Accounts placed on canary pods. */
  canaryAccounts: number;
  /** Of those, the ones a canary pod hosts (holds the session Lease of). */
  canaryHosted: number;
  /** Accounts placed on a pod that does not hold their session yet (being handed over). */
  inMotion: number;
  /** Every canary pod the rollout needs runs a runtime (holds its heartbeat). */
  canaryPodsAlive: boolean;
  /** Pods of the canary StatefulSet: none means no account can be on its way back from one. */
  canaryPods: number;
  /** Why a canary pod counts as failed (never started within the deadline, stopped heartbeating). */
  canaryPodFailure?: string;
  /** The latest analysis of this rollout, if any. */
  analysis?: LatestAnalysis;
  /** From the promote annotation, when it names the canary revision. */
  promote?: number | 'full';
  /** The undo annotation names the canary revision. */
  undo: boolean;
}

export interface PlannedEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

export interface RolloutPlan {
  memory: RolloutMemory;
  phase: Phase;
  /** Accounts that should be on canary pods now (the controller moves toward it within its motion limit). */
  canaryTarget: number;
  /** The canary pods exist for this many accounts, even before any moved (they must start first). */
  canaryCapacityFor: number;
  /** Whether accounts may move onto canary pods now (false holds the current share). */
  moveToCanary: boolean;
  /** The stable StatefulSet takes the canary's template now (the last step passed). */
  finalize: boolean;
  /** Whether canary and stable should be compared now. */
  analyze: boolean;
  /** Weight of the current step, percent (0 without a rollout). */
  desiredWeight: number;
  message: string;
  conditions: ConditionInput[];
  events: PlannedEvent[];
  rolledBack?: { reason: 'AnalysisFailed' | 'ManualUndo' };
  /** When to look again even if nothing changes (a pause ending). */
  requeueAfterMs?: number;
}

const pct = (weight: number): string => `${weight}%`;

export function stepLabel(step: number, settings: RolloutSettings): string {
  const weight = settings.steps[step]?.weight ?? 100;
  return `${step + 1}/${settings.steps.length} (${pct(weight)})`;
}

function conditionsFor(
  progressing: { status: 'True' | 'False'; reason: string; message: string },
  rolledBack?: { reason: string; message: string },
): ConditionInput[] {
  return [
    { type: RolloutConditionType.Progressing, ...progressing },
    rolledBack
      ? { type: RolloutConditionType.Degraded, status: 'True', ...rolledBack }
      : {
          type: RolloutConditionType.Degraded,
          status: 'False',
          reason: 'AsExpected',
          message: 'no rollback',
        },
    rolledBack
      ? { type: RolloutConditionType.RolledBack, status: 'True', ...rolledBack }
      : {
          type: RolloutConditionType.RolledBack,
          status: 'False',
          reason: 'NotRolledBack',
          message: 'the desired revision was not rolled back',
        },
  ];
}

export function planRollout(
  memory: RolloutMemory,
  facts: RolloutFacts,
  settings: RolloutSettings,
): RolloutPlan {
  const now = facts.now;
  const base = {
    canaryTarget: 0,
    canaryCapacityFor: 0,
    moveToCanary: true,
    finalize: false,
    analyze: false,
    desiredWeight: 0,
    events: [] as PlannedEvent[],
  };

  // The spec names what the stable pods run: no rollout, a finished one, or a spec reverted mid-rollout.
  if (facts.specRevision === facts.stableRevision) {
    const promoted = memory.canaryRevision === facts.specRevision;
    // A spec reverted mid-rollout ends that rollout now: applying the new revision again starts it over.
    const settled: RolloutMemory = promoted ? memory : { rolledBackRevision: memory.rolledBackRevision };
    // Accounts in motion matter only while a rollout is winding down: without one they are new accounts
    // starting on the stable pods (or ordinary moves), not a rollback.
    const windingDown = facts.canaryPods > 0 && facts.inMotion > 0;
    if (facts.canaryAccounts > 0 || windingDown) {
      const message = promoted
        ? `finalizing: moving ${facts.canaryAccounts + facts.inMotion} accounts from the canary pods back to the stable pods, which now run revision ${facts.specRevision}`
        : `the spec names the stable revision ${facts.stableRevision} again: moving ${facts.canaryAccounts + facts.inMotion} accounts back from the canary pods`;
      return {
        ...base,
        memory: settled,
        phase: 'Progressing',
        message,
        conditions: conditionsFor({
          status: 'True',
          reason: promoted ? RolloutReason.Promoted : RolloutReason.RollingBack,
          message,
        }),
      };
    }
    const message = `every account runs revision ${facts.stableRevision}`;
    return {
      ...base,
      memory: { rolledBackRevision: memory.rolledBackRevision },
      phase: 'Healthy',
      message,
      conditions: conditionsFor({
        status: 'False',
        reason: promoted ? RolloutReason.Promoted : RolloutReason.NoRollout,
        message,
      }),
    };
  }

  const rolledBack = (m: RolloutMemory, extraEvents: PlannedEvent[] = []): RolloutPlan => {
    const reason = m.rolledBackReason ?? RolloutReason.AnalysisFailed;
    const detail = m.rolledBackMessage ?? `revision ${facts.specRevision} was rolled back`;
    const message =
      facts.canaryAccounts > 0
        ? `rolling back: moving ${facts.canaryAccounts} accounts to the stable revision ${facts.stableRevision}; ${detail}`
        : `revision ${facts.specRevision} was rolled back; every account runs the stable revision ${facts.stableRevision}. Change the spec to roll out another revision`;
    return {
      ...base,
      memory: m,
      phase: 'Degraded',
      message,
      conditions: conditionsFor(
        { status: 'False', reason: RolloutReason.RollingBack, message },
        { reason, message: detail },
      ),
      events: extraEvents,
    };
  };

  if (memory.rolledBackRevision === facts.specRevision) return rolledBack(memory);

  let m: RolloutMemory = memory;
  const events: PlannedEvent[] = [];
  if (memory.canaryRevision !== facts.specRevision) {
    m = {
      canaryRevision: facts.specRevision,
      currentStep: 0,
      stepStartedAt: now.toISOString(),
      rolledBackRevision: memory.rolledBackRevision,
    };
    events.push({
      type: 'Normal',
      reason: 'RolloutStarted',
      message: `rolling out revision ${facts.specRevision} (stable ${facts.stableRevision}): step ${stepLabel(0, settings)}`,
    });
  }
  // Steps edited to fewer mid-rollout: continue from the last one, remembered as such (status, promote).
  const step = Math.min(Math.max(m.currentStep ?? 0, 0), settings.steps.length - 1);
  if (step !== m.currentStep) m = { ...m, currentStep: step };
  const weight = settings.steps[step]?.weight ?? 100;
  const label = stepLabel(step, settings);

  const rollBack = (reason: 'AnalysisFailed' | 'ManualUndo', detail: string): RolloutPlan => {
    const next: RolloutMemory = {
      ...m,
      stepReachedAt: undefined,
      rolledBackRevision: facts.specRevision,
      rolledBackReason: reason,
      rolledBackMessage: `at step ${label}: ${detail}`,
    };
    const plan = rolledBack(next, [
      ...events,
      {
        type: 'Warning',
        reason: 'RolledBack',
        message: `rolled back revision ${facts.specRevision} at step ${label}: ${detail}`,
      },
    ]);
    return { ...plan, rolledBack: { reason } };
  };
  if (facts.undo) return rollBack('ManualUndo', 'kubectl telegram rollout undo');
  if (facts.canaryPodFailure) return rollBack('AnalysisFailed', facts.canaryPodFailure);
  if (facts.analysis?.verdict === 'Failed')
    return rollBack(
      'AnalysisFailed',
      `${facts.analysis.metric ? `${facts.analysis.metric}: ` : ''}${facts.analysis.message}`,
    );

  if (facts.accounts === 0) {
    // Nothing to move and nothing to measure: the new template simply becomes the stable one.
    events.push({
      type: 'Normal',
      reason: 'Promoted',
      message: `revision ${facts.specRevision} promoted: the pool has no accounts to roll it out to`,
    });
    const message = `promoting revision ${facts.specRevision} (no accounts)`;
    return {
      ...base,
      memory: m,
      phase: 'Progressing',
      message,
      conditions: conditionsFor({ status: 'True', reason: RolloutReason.Promoted, message }),
      events,
      finalize: true,
      requeueAfterMs: 0,
    };
  }
  const target = Math.min(facts.accounts, Math.ceil((weight * facts.accounts) / 100));
  const progressing = {
    ...base,
    desiredWeight: weight,
    canaryCapacityFor: target,
    canaryTarget: target,
    analyze: facts.canaryPodsAlive && facts.canaryAccounts > 0,
  };
  const hold = (
    phase: Phase,
    reason: string,
    message: string,
    extra: Partial<RolloutPlan> = {},
  ): RolloutPlan => ({
    ...progressing,
    memory: m,
    phase,
    message,
    conditions: conditionsFor({ status: 'True', reason, message }),
    events,
    ...extra,
  });

  if (settings.paused)
    return hold(
      'Paused',
      RolloutReason.ManuallyPaused,
      `paused at step ${label} (kubectl telegram rollout resume)`,
      {
        canaryTarget: Math.min(target, facts.canaryAccounts),
        moveToCanary: false,
      },
    );
  if (!facts.canaryPodsAlive)
    return hold(
      'Progressing',
      RolloutReason.WaitingForCanaryPods,
      `step ${label}: waiting for the canary pods to start`,
      {
        canaryTarget: Math.min(target, facts.canaryAccounts),
        moveToCanary: false,
      },
    );
  if (facts.canaryHosted < target || facts.canaryAccounts !== target || facts.inMotion > 0)
    return hold(
      'Progressing',
      RolloutReason.MovingAccounts,
      `step ${label}: ${facts.canaryHosted} of ${target} accounts run the new revision (${facts.inMotion} being handed over)`,
    );

  if (m.stepReachedAt === undefined) {
    m = { ...m, stepReachedAt: now.toISOString() };
    events.push({
      type: 'Normal',
      reason: 'StepReached',
      message: `step ${label}: ${target} of ${facts.accounts} accounts run revision ${facts.specRevision}`,
    });
  }
  const pauseMs = settings.steps[step]?.pauseMs ?? 0;
  const pauseEnds = Date.parse(m.stepReachedAt ?? now.toISOString()) + pauseMs;
  const promoted = facts.promote === 'full' || facts.promote === step;
  const latestOfStep =
    facts.analysis !== undefined &&
    facts.analysis.step === step &&
    Date.parse(facts.analysis.time) >= Date.parse(m.stepReachedAt ?? '')
      ? facts.analysis
      : undefined;
  if (!promoted && now.getTime() < pauseEnds) {
    const until = new Date(pauseEnds).toISOString();
    // An idle canary shows as such during the pause too, not only once the pause is over.
    return latestOfStep?.verdict === 'Inconclusive'
      ? hold(
          'Progressing',
          RolloutReason.AnalysisInconclusive,
          `step ${label}: analysis inconclusive (${latestOfStep.message}); holding, at least until ${until}`,
          { requeueAfterMs: pauseEnds - now.getTime() },
        )
      : hold(
          'Progressing',
          RolloutReason.StepPaused,
          `step ${label} reached; holding until ${until} while the analysis passes`,
          { requeueAfterMs: pauseEnds - now.getTime() },
        );
  }
  if (!promoted) {
    const latest = latestOfStep;
    if (!latest)
      return hold(
        'Progressing',
        RolloutReason.StepProgressing,
        `step ${label}: waiting for an analysis of this step`,
      );
    if (latest.verdict !== 'Passed')
      return hold(
        'Progressing',
        RolloutReason.AnalysisInconclusive,
        `step ${label}: analysis inconclusive (${latest.message}); holding (kubectl telegram rollout promote to go on)`,
      );
  }
  const why = promoted ? 'promoted by hand' : `analysis passed: ${facts.analysis?.message ?? ''}`;
  if (step + 1 < settings.steps.length) {
    const next = step + 1;
    m = { ...m, currentStep: next, stepStartedAt: now.toISOString(), stepReachedAt: undefined };
    events.push({
      type: 'Normal',
      reason: 'StepCompleted',
      message: `step ${label} completed (${why}); next step ${stepLabel(next, settings)}`,
    });
    return hold('Progressing', RolloutReason.StepProgressing, `moving to step ${stepLabel(next, settings)}`, {
      desiredWeight: settings.steps[next]?.weight ?? 100,
      requeueAfterMs: 0,
    });
  }
  events.push({
    type: 'Normal',
    reason: 'Promoted',
    message: `revision ${facts.specRevision} promoted (${why}): the stable pods take it and the accounts move back to them`,
  });
  return hold('Progressing', RolloutReason.Promoted, `promoting revision ${facts.specRevision}`, {
    finalize: true,
    requeueAfterMs: 0,
  });
}
