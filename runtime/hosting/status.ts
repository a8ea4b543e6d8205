/**
 * The runtime-owned part of a TelegramAccount's status, as a pure function of what the hosted client knows.
 * The runtime pod hosting the account is its only writer (field manager RUNTIME_FIELD_MANAGER): hostedBy,
 * authorizationState, codeDelivery, qrCodeLink, user, connectionState, proxy, session and the conditions
 * Authorized and Connected. The operator owns placement, observedGeneration and Scheduled. Ready is derived
 * from all of these by one shared function (crds/account-ready.ts): the runtime writes it with its report, as
 * a kubelet writes its pods' Ready, and the operator only where it knows more (a pod declared dead, an account
 * moving or not yet reported), so a start costs the API server one status apply per account, not two.
 */
import {
  ConditionType,
  RuntimeReason,
  nextCondition,
  readyCondition,
  type TelegramAccount,
  type Condition,
  type ConditionInput,
  type TelegramAccountStatus,
} from '../../crds/index.js';
import type { UpdatesFigures } from '../updates/account-updates.js';

export const RUNTIME_FIELD_MANAGER = 'tdlib-runtime';

export interface HostedView {
  generation?: number;
  /** Short TDLib state name (WaitCode, Ready, ...) or undefined before TDLib reported one. */
  authorizationState?: string;
  /** The latest reason the login waits or failed (WaitCode, PHONE_CODE_INVALID, WaitingForLease, ...). */
  authReason?: string;
  authMessage?: string;
  connectionState?: string;
  /** The client runs but may not connect: spec.proxy names a proxy that cannot be used. */
  connectionBlocked?: { reason: string; message: string };
  codeDelivery?: string;
  qrCodeLink?: string;
  user?: { id: number; username?: string; firstName?: string; lastName?: string; isBot?: boolean };
  proxy?: { inUse: string; message?: string };
  session?: { backupSecretName: string; lastBackupTime?: string };
  /** The client is stopped on purpose (suspend, logged out): no connection expected. */
  stoppedReason?: string;
  /** spec.updates is set and the account's outbox is open here. */
  updates?: UpdatesFigures;
}

export type RuntimeStatus = Pick<
  TelegramAccountStatus,
  | 'hostedBy'
  | 'authorizationState'
  | 'codeDelivery'
  | 'qrCodeLink'
  | 'user'
  | 'connectionState'
  | 'proxy'
  | 'session'
  | 'updates'
> & { conditions: Condition[] };

export function desiredRuntimeStatus(
  view: HostedView,
  previous: readonly Condition[] | undefined,
  now: Date,
  hostedBy: string,
): RuntimeStatus {
  const authorized = view.authorizationState === 'Ready' && !view.stoppedReason;
  const connected = authorized && view.connectionState === 'Ready' && !view.connectionBlocked;
  const g = view.generation;
  const authReason = authorized
    ? RuntimeReason.Authorized
    : (view.stoppedReason ?? view.authReason ?? view.authorizationState ?? RuntimeReason.Starting);
  const authMessage = authorized
    ? `logged in${view.user?.username ? ` as @${view.user.username}` : ''}`
    : (view.authMessage ??
      (view.stoppedReason ? `the client is stopped: ${view.stoppedReason}` : 'the TDLib client is starting'));
  const connReason =
    view.stoppedReason ?? view.connectionBlocked?.reason ?? view.connectionState ?? RuntimeReason.Unknown;
  const connMessage = connected
    ? `connected${view.proxy && view.proxy.inUse !== 'direct' ? ` through ${view.proxy.inUse}` : ' directly'}`
    : (view.connectionBlocked?.message ?? `connection state: ${connReason}`);
  const conditions = [
    nextCondition(
      previous,
      {
        type: ConditionType.Authorized,
        status: authorized ? 'True' : 'False',
        reason: authReason,
        message: authMessage,
        ...(g === undefined ? {} : { observedGeneration: g }),
      },
      now,
    ),
    nextCondition(
      previous,
      {
        type: ConditionType.Connected,
        status: connected
          ? 'True'
          : view.connectionState || view.connectionBlocked || view.stoppedReason
            ? 'False'
            : 'Unknown',
        reason: connReason,
        message: connMessage,
        ...(g === undefined ? {} : { observedGeneration: g }),
      },
      now,
    ),
  ];
  if (view.updates) conditions.push(nextCondition(previous, updatesCondition(view.updates, g), now));
  const status: RuntimeStatus = { hostedBy, conditions };
  if (view.authorizationState) status.authorizationState = view.authorizationState;
  if (view.codeDelivery && view.authorizationState === 'WaitCode') status.codeDelivery = view.codeDelivery;
  if (view.qrCodeLink && view.authorizationState === 'WaitOtherDeviceConfirmation')
    status.qrCodeLink = view.qrCodeLink;
  if (view.user) status.user = view.user;
  if (view.connectionState && !view.stoppedReason) status.connectionState = view.connectionState;
  if (view.proxy) status.proxy = view.proxy;
  if (view.session) status.session = view.session;
  if (view.updates) {
    const { problem: _problem, inherited: _inherited, ...figures } = view.updates;
    status.updates = figures;
  }
  return status;
}

/**
 * `status` with the Ready condition this pod writes for `account` (hosted here, so placed here): what the
 * operator derives from the same report while it knows this pod alive.
 */
export function withReady(status: RuntimeStatus, account: TelegramAccount, now: Date): RuntimeStatus {
  const reported: TelegramAccount = {
    ...account,
    status: { ...account.status, hostedBy: status.hostedBy, conditions: status.conditions },
  };
  const ready = readyCondition(reported, {
    placement: { pod: status.hostedBy ?? '' },
    podHealth: () => undefined,
  });
  return {
    ...status,
    conditions: [...status.conditions, nextCondition(account.status?.conditions, ready, now)],
  };
}

/**
 * True while the client is on its way to another state by itself: starting, a login step in flight with the
 * inputs it has, connecting, the first session backup after a login. A state the client passes within seconds
 * is not worth a status write: each is one more server-side apply of the account, and on a busy API server
 * those writes are what a thousand starting accounts wait behind. What waits for a person or an input, an
 * error, a stop and the goal state are not settling.
 */
export function settling(view: HostedView): boolean {
  if (view.stoppedReason || view.connectionBlocked) return false;
  if (view.authorizationState !== 'Ready')
    return view.authReason === undefined || view.authReason === RuntimeReason.Starting;
  const firstBackupPending = view.session !== undefined && view.session.lastBackupTime === undefined;
  return view.connectionState !== 'Ready' || view.user === undefined || firstBackupPending;
}

/** UpdatesDelivering: True while nothing waits for a retry; otherwise why not, naming what to fix. */
export function updatesCondition(figures: UpdatesFigures, generation: number | undefined): ConditionInput {
  const base = {
    type: ConditionType.UpdatesDelivering,
    ...(generation === undefined ? {} : { observedGeneration: generation }),
  };
  if (figures.problem) return { ...base, status: 'False', ...figures.problem };
  if (figures.inherited)
    return {
      ...base,
      status: 'Unknown',
      reason: RuntimeReason.Starting,
      message: 'this pod delivers once the account’s client starts here',
    };
  if (figures.retrying > 0)
    return {
      ...base,
      status: 'False',
      reason: RuntimeReason.SinkFailing,
      message: `delivery to ${figures.sinkURI ?? 'the sink'} fails: ${figures.lastFailure?.message ?? 'no answer'}; ${figures.retrying} event(s) wait for a retry, ${figures.pending} in the outbox`,
    };
  if (!figures.sinkURI)
    return {
      ...base,
      status: 'Unknown',
      reason: RuntimeReason.Starting,
      message: 'the sink is being looked up',
    };
  return {
    ...base,
    status: 'True',
    reason: RuntimeReason.Delivering,
    message: `events are delivered to ${figures.sinkURI}`,
  };
}

/** A stable text of a status without timestamps, to decide whether anything a reader sees changed. */
export function statusFingerprint(status: RuntimeStatus): string {
  const { conditions, ...rest } = status;
  return JSON.stringify({
    ...rest,
    conditions: conditions.map(({ lastTransitionTime: _t, ...c }) => c),
  });
}
