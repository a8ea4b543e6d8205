/**
 * An account's Ready condition, as one pure function both of its writers use. Ready is True only while the
 * runtime pod the account is placed on is alive and reports (status.hostedBy) that it is logged in and
 * connected. The runtime hosting the account writes it with its report, as a kubelet writes its pods' Ready;
 * the operator writes it only where it knows more than that pod: the account is not placed, is moving, waits
 * for a pod that has not reported it yet, or its pod was declared dead (RuntimeLost), as Kubernetes' node
 * controller marks the pods of a lost node. Both derive it here, so where they know the same they write the
 * same value, and server-side apply lets two managers share a field they set alike: no second write, no
 * conflict.
 */
import {
  ConditionType,
  OperatorReason,
  RuntimeReason,
  findCondition,
  type ConditionInput,
} from './conditions.js';
import type { TelegramAccount } from './telegram-account.js';

/** What the operator knows of a runtime pod: from its heartbeat Lease, on the operator's own clock. */
export type PodHealth = { state: 'alive' } | { state: 'starting' } | { state: 'dead'; why: string };

export interface ReadyFacts {
  /** The pod the account is placed on, or, when it is not placed, why (the Scheduled condition's reason). */
  placement: { pod: string } | { unplaced: { reason: string; message: string } };
  /** Health of a runtime pod by name (undefined: unknown, read as not dead). */
  podHealth: (pod: string) => PodHealth | undefined;
}

export function readyCondition(account: TelegramAccount, facts: ReadyFacts): ConditionInput {
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
  if (!('pod' in facts.placement)) {
    const { reason, message } = facts.placement.unplaced;
    return { ...base, status: 'False', reason, message };
  }
  if (account.spec.suspend)
    return {
      ...base,
      status: 'False',
      reason: OperatorReason.Suspended,
      message: 'spec.suspend is true: the TDLib client is stopped and the session kept',
    };
  const pod = facts.placement.pod;
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
