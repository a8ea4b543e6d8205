/**
 * The runtime-owned part of a TelegramAccount's status, as a pure function of what the hosted client knows.
 * The runtime is its only writer (field manager RUNTIME_FIELD_MANAGER); the operator owns placement,
 * observedGeneration and Scheduled.
 */
import type { Condition, TelegramAccountStatus } from '../../crds/index.js';

export const RUNTIME_FIELD_MANAGER = 'tdlib-runtime';

export interface HostedView {
  generation?: number;
  /** Short TDLib state name (WaitCode, Ready, ...) or undefined before TDLib reported one. */
  authorizationState?: string;
  /** The latest reason the login waits or failed (WaitCode, PHONE_CODE_INVALID, ...). */
  authReason?: string;
  authMessage?: string;
  connectionState?: string;
  codeDelivery?: string;
  qrCodeLink?: string;
  user?: { id: number; username?: string; firstName?: string; lastName?: string; isBot?: boolean };
  proxy?: { inUse: string; message?: string };
  session?: { backupSecretName: string; lastBackupTime?: string };
  /** The client is stopped on purpose (suspend, logged out): no Ready expected. */
  stoppedReason?: string;
}

type RuntimeStatus = Pick<
  TelegramAccountStatus,
  'authorizationState' | 'codeDelivery' | 'qrCodeLink' | 'user' | 'connectionState' | 'proxy' | 'session'
> & { conditions: Condition[] };

function condition(
  previous: readonly Condition[] | undefined,
  type: string,
  status: 'True' | 'False' | 'Unknown',
  reason: string,
  message: string,
  generation: number | undefined,
  now: Date,
): Condition {
  const old = previous?.find((c) => c.type === type);
  const lastTransitionTime =
    old && old.status === status ? old.lastTransitionTime : now.toISOString().replace(/\.\d{3}Z$/, 'Z');
  return {
    type,
    status,
    reason,
    message,
    lastTransitionTime,
    ...(generation === undefined ? {} : { observedGeneration: generation }),
  };
}

export function desiredRuntimeStatus(
  view: HostedView,
  previous: readonly Condition[] | undefined,
  now: Date,
): RuntimeStatus {
  const authorized = view.authorizationState === 'Ready';
  const connected = view.connectionState === 'Ready';
  const g = view.generation;
  const authReason = authorized
    ? 'Authorized'
    : (view.stoppedReason ?? view.authReason ?? view.authorizationState ?? 'Starting');
  const authMessage = authorized
    ? `logged in${view.user?.username ? ` as @${view.user.username}` : ''}`
    : (view.authMessage ??
      (view.stoppedReason ? `the client is stopped: ${view.stoppedReason}` : 'the TDLib client is starting'));
  const connReason = view.stoppedReason ?? view.connectionState ?? 'Unknown';
  const conditions = [
    condition(previous, 'Authorized', authorized ? 'True' : 'False', authReason, authMessage, g, now),
    condition(
      previous,
      'Connected',
      connected ? 'True' : view.connectionState ? 'False' : 'Unknown',
      connReason,
      connected
        ? `connected${view.proxy && view.proxy.inUse !== 'direct' ? ` through ${view.proxy.inUse}` : ' directly'}`
        : `connection state: ${connReason}`,
      g,
      now,
    ),
    condition(
      previous,
      'Ready',
      authorized && connected ? 'True' : 'False',
      authorized && connected ? 'Ready' : !authorized ? authReason : connReason,
      authorized && connected
        ? 'logged in and connected'
        : !authorized
          ? authMessage
          : `logged in, connection state: ${connReason}`,
      g,
      now,
    ),
  ];
  const status: RuntimeStatus = { conditions };
  if (view.authorizationState) status.authorizationState = view.authorizationState;
  if (view.codeDelivery && view.authorizationState === 'WaitCode') status.codeDelivery = view.codeDelivery;
  if (view.qrCodeLink && view.authorizationState === 'WaitOtherDeviceConfirmation')
    status.qrCodeLink = view.qrCodeLink;
  if (view.user) status.user = view.user;
  if (view.connectionState) status.connectionState = view.connectionState;
  if (view.proxy) status.proxy = view.proxy;
  if (view.session) status.session = view.session;
  return status;
}

/** A stable text of a status without timestamps, to decide whether anything a reader sees changed. */
export function statusFingerprint(status: RuntimeStatus): string {
  const { conditions, ...rest } = status;
  return JSON.stringify({
    ...rest,
    conditions: conditions.map(({ lastTransitionTime: _t, ...c }) => c),
  });
}
