/**
 * The part of an account's status the operator writes, as a pure function: placement, observedGeneration,
 * Scheduled, and Ready, the summary a user (and kstatus, Argo CD) reads. Ready comes from crds/account-ready.ts,
 * which the hosting runtime applies too with its report: where the operator knows no more than that pod, the
 * status already shows what it would write, and it writes nothing. It writes Ready where it knows more: a pod
 * declared dead makes its accounts Ready=Unknown (RuntimeLost), as Kubernetes does for pods on a lost node; an
 * account placed on a pod that has not reported it yet is Unknown too, whatever an earlier pod last wrote.
 */
import {
  API_VERSION,
  ConditionType,
  OperatorReason,
  TELEGRAM_ACCOUNT_KIND,
  findCondition,
  nextCondition,
  readyCondition,
  type Condition,
  type ConditionInput,
  type PodHealth,
  type TelegramAccount,
} from '../../crds/index.js';
import type { InputsCheck } from '../account/inputs.js';

/** The part of an account's status the operator owns. */
export interface OperatorStatus {
  observedGeneration?: number;
  placement?: { pool: string; pod: string };
  conditions: Condition[];
}

export type { PodHealth };

export type PlacementOutcome = { pod: string } | { unplaced: 'PoolFull' | 'InputsInvalid' };

export interface StatusFacts {
  pool: string;
  inputs: InputsCheck;
  outcome: PlacementOutcome;
  /** Health of a runtime pod of this pool by name (undefined: not a pod of this pool, or unknown). */
  podHealth: (pod: string) => PodHealth | undefined;
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
      nextCondition(
        existing,
        readyCondition(account, {
          placement:
            'pod' in facts.outcome ? facts.outcome : { unplaced: scheduledCondition(account, facts) },
          podHealth: facts.podHealth,
        }),
        now,
      ),
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
 * writes (connection flickers inside the same condition, proxy messages) need not. The runtime's own Ready
 * changes only with these, the generation or the deletion, so it needs no entry of its own.
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
