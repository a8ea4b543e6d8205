/**
 * The part of an account's status the operator owns, as a pure function: placement, observedGeneration,
 * Scheduled, and Ready, the summary a user (and kstatus, Argo CD) reads. Ready is derived, never copied
 * blindly: True only while the runtime pod the account is placed on is alive and reports (status.hostedBy)
 * that it is logged in and connected. A pod declared dead makes its accounts Ready=Unknown (RuntimeLost),
 * as Kubernetes does for pods on a lost node; an account placed on a pod that has not reported it yet is
 * Unknown too, whatever an earlier pod last wrote.
 */
import {
  API_VERSION,
  ConditionType,
  OperatorReason,
  RuntimeReason,
  TELEGRAM_ACCOUNT_KIND,
  findCondition,
  nextCondition,
  type Condition,
  type ConditionInput,
  type TelegramAccount,
} from '../../crds/index.js';
import type { InputsCheck } from '../account/inputs.js';

/** The part of an account's status the operator owns. */
export interface OperatorStatus {
  observedGeneration?: number;
  placement?: { pool: string; pod: string };
  conditions: Condition[];
}

export type PlacementOutcome = { pod: string } | { unplaced: 'PoolFull' | 'InputsInvalid' };

/** What the operator knows of a runtime pod: from its heartbeat Lease, on the operator's own clock. */
export type PodHealth = { state: 'alive' } | { state: 'starting' } | { state: 'dead'; why: string };

export interface StatusFacts {
  pool: string;
  inputs: InputsCheck;
  outcome: PlacementOutcome;
  /** Health of a runtime pod of this pool by name (undefined: not a pod of this pool, or unknown). */
  podHealth: (pod: string) => PodHealth | undefined;
}

function readyCondition(account: TelegramAccount, facts: StatusFacts): ConditionInput {
  const generation = account.metadata.generation;
  const base = { type: ConditionType.Ready, observedGeneration: generation };
  if (account.metadata.deletionTimestamp) {
    const policy = account.spec.deletionPolicy ?? 'KeepSession';
    return {
      ...base,
      status: 'False',
      reason: OperatorReason.Deleting,
      message:
        policy === 'LogOut'
          ? 'being deleted: waiting for the runtime to log the session out (deletionPolicy LogOut)'
          : 'being deleted: the session backup is kept (deletionPolicy KeepSession)',
    };
  }
  if (!('pod' in facts.outcome)) {
    const scheduled = scheduledCondition(account, facts);
    return { ...base, status: 'False', reason: scheduled.reason, message: scheduled.message };
  }
  if (account.spec.suspend)
    return {
      ...base,
      status: 'False',
      reason: OperatorReason.Suspended,
      message: 'spec.suspend is true: the TDLib client is stopped and the session kept',
    };
  const pod = facts.outcome.pod;
  const hostedBy = account.status?.hostedBy;
  const lost = (name: string): string | undefined => {
    const health = facts.podHealth(name);
    return health?.state === 'dead' ? health.why : undefined;
  };
  if (!hostedBy)
    return {
      ...base,
      status: 'Unknown',
      reason: OperatorReason.WaitingForRuntime,
      message: `placed on runtime pod ${pod}; waiting for it to report the account`,
    };
  if (hostedBy !== pod) {
    const why = lost(hostedBy);
    return why
      ? {
          ...base,
          status: 'Unknown',
          reason: OperatorReason.RuntimeLost,
          message: `runtime pod ${hostedBy} was lost (${why}); the account moved to ${pod} and waits for it`,
        }
      : {
          ...base,
          status: 'Unknown',
          reason: OperatorReason.WaitingForRuntime,
          message: `moving from runtime pod ${hostedBy} to ${pod}; waiting for ${pod} to serve the account`,
        };
  }
  const why = lost(pod);
  if (why)
    return {
      ...base,
      status: 'Unknown',
      reason: OperatorReason.RuntimeLost,
      message: `runtime pod ${pod} was lost (${why}): the account's state is unknown`,
    };
  const conditions = account.status?.conditions;
  const authorized = findCondition(conditions, ConditionType.Authorized);
  const connected = findCondition(conditions, ConditionType.Connected);
  // Ready reflects what the runtime has seen: never newer than the generation it reported on.
  const seen = Math.min(generation ?? 0, authorized?.observedGeneration ?? generation ?? 0);
  const fromRuntime = { ...base, observedGeneration: generation === undefined ? undefined : seen };
  if (authorized?.status !== 'True')
    return {
      ...fromRuntime,
      status: 'False',
      reason: authorized?.reason ?? RuntimeReason.Starting,
      message: authorized?.message ?? 'the TDLib client is starting',
    };
  if (connected?.status !== 'True')
    return {
      ...fromRuntime,
      status: 'False',
      reason: connected?.reason ?? RuntimeReason.Unknown,
      message: `logged in; ${connected?.message ?? 'connection state unknown'}`,
    };
  return {
    ...fromRuntime,
    status: 'True',
    reason: OperatorReason.Ready,
    message: `logged in and connected on runtime pod ${pod}`,
  };
}

function scheduledCondition(account: TelegramAccount, facts: StatusFacts): ConditionInput {
  const observedGeneration = account.metadata.generation;
  if ('pod' in facts.outcome)
    return {
      type: ConditionType.Scheduled,
      status: 'True',
      reason: OperatorReason.Placed,
      message: `placed on runtime pod ${facts.outcome.pod}`,
      observedGeneration,
    };
  if (!facts.inputs.ok)
    return {
      type: ConditionType.Scheduled,
      status: 'False',
      reason: facts.inputs.reason,
      message: facts.inputs.message,
      observedGeneration,
    };
  return {
    type: ConditionType.Scheduled,
    status: 'False',
    reason: OperatorReason.PoolFull,
    message: `runtime pool "${facts.pool}" is at its maximum size; raise RUNTIME_MAX_REPLICAS or RUNTIME_ACCOUNTS_PER_POD`,
    observedGeneration,
  };
}

export function desiredOperatorStatus(
  account: TelegramAccount,
  facts: StatusFacts,
  now: Date,
): OperatorStatus {
  const existing = account.status?.conditions;
  return {
    observedGeneration: account.metadata.generation,
    placement: 'pod' in facts.outcome ? { pool: facts.pool, pod: facts.outcome.pod } : undefined,
    conditions: [
      nextCondition(existing, scheduledCondition(account, facts), now),
      nextCondition(existing, readyCondition(account, facts), now),
    ],
  };
}

/** True when the account's status already shows `desired` (so no write is needed). */
export function operatorStatusCurrent(account: TelegramAccount, desired: OperatorStatus): boolean {
  const status = account.status;
  if (status?.observedGeneration !== desired.observedGeneration) return false;
  if (
    status?.placement?.pod !== desired.placement?.pod ||
    status?.placement?.pool !== desired.placement?.pool
  )
    return false;
  return desired.conditions.every((want) => {
    const have = status?.conditions?.find((c) => c.type === want.type);
    return (
      have !== undefined &&
      have.status === want.status &&
      have.reason === want.reason &&
      have.message === want.message &&
      have.observedGeneration === want.observedGeneration
    );
  });
}

export function statusApplyBody(account: TelegramAccount, status: OperatorStatus): Record<string, unknown> {
  const body: Record<string, unknown> = { conditions: status.conditions };
  if (status.observedGeneration !== undefined) body.observedGeneration = status.observedGeneration;
  if (status.placement) body.placement = status.placement;
  return {
    apiVersion: API_VERSION,
    kind: TELEGRAM_ACCOUNT_KIND,
    metadata: { name: account.metadata.name, namespace: account.metadata.namespace },
    status: body,
  };
}

/**
 * What of the runtime's status Ready depends on: a change of it must re-run the pool loop, other runtime
 * writes (connection flickers inside the same condition, proxy messages) need not.
 */
export function readyInputs(account: TelegramAccount): string {
  const c = account.status?.conditions;
  const part = (type: string): string => {
    const x = findCondition(c, type);
    return x ? `${x.status}|${x.reason}|${x.message}|${x.observedGeneration ?? ''}` : '';
  };
  return [account.status?.hostedBy ?? '', part(ConditionType.Authorized), part(ConditionType.Connected)].join(
    '#',
  );
}
