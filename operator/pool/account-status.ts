import {
  API_VERSION,
  TELEGRAM_ACCOUNT_KIND,
  type Condition,
  type TelegramAccount,
  nextCondition,
} from '../../crds/index.js';
import type { InputsCheck } from '../account/inputs.js';

/** The part of an account's status the operator owns: placement, observedGeneration and Scheduled. */
export interface OperatorStatus {
  observedGeneration?: number;
  placement?: { pool: string; pod: string };
  conditions: Condition[];
}

export type PlacementOutcome = { pod: string } | { unplaced: 'PoolFull' | 'InputsInvalid' };

export function desiredOperatorStatus(
  account: TelegramAccount,
  pool: string,
  inputs: InputsCheck,
  outcome: PlacementOutcome,
  now: Date,
): OperatorStatus {
  const generation = account.metadata.generation;
  const existing = account.status?.conditions;
  let scheduled: Condition;
  if ('pod' in outcome) {
    scheduled = nextCondition(
      existing,
      {
        type: 'Scheduled',
        status: 'True',
        reason: 'Placed',
        message: `placed on runtime pod ${outcome.pod}`,
        observedGeneration: generation,
      },
      now,
    );
  } else if (!inputs.ok) {
    scheduled = nextCondition(
      existing,
      {
        type: 'Scheduled',
        status: 'False',
        reason: inputs.reason,
        message: inputs.message,
        observedGeneration: generation,
      },
      now,
    );
  } else {
    scheduled = nextCondition(
      existing,
      {
        type: 'Scheduled',
        status: 'False',
        reason: 'PoolFull',
        message: `runtime pool "${pool}" is at its maximum size; raise RUNTIME_MAX_REPLICAS or RUNTIME_ACCOUNTS_PER_POD`,
        observedGeneration: generation,
      },
      now,
    );
  }
  return {
    observedGeneration: generation,
    placement: 'pod' in outcome ? { pool, pod: outcome.pod } : undefined,
    conditions: [scheduled],
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
