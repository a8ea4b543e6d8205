/**
 * A Telegram session lost without us asking: TDLib reports authorizationStateLoggingOut although no logOut
 * was sent. Either Telegram dropped an auth key that two live clients used at once (AUTH_KEY_DUPLICATED,
 * announced by the service notification AUTH_KEY_DROP_DUPLICATE: the session fence failed, or the session was
 * copied elsewhere), or the session was ended elsewhere (logged out from another device, terminated, revoked,
 * the account deleted). Either way TDLib drops its database and the account must log in again.
 */
import type { Counter } from 'prom-client';
import { counter, type Registry } from '../../operator/kube/metrics.js';
import type { TdObject } from '../tdlib/backend.js';

export type SessionLossReason = 'AuthKeyDuplicated' | 'LoggedOut';
export const SESSION_LOSS_REASONS: readonly SessionLossReason[] = ['AuthKeyDuplicated', 'LoggedOut'];

/** updateServiceNotification.type TDLib sends when it drops a duplicated auth key. */
export const AUTH_KEY_DROP_DUPLICATE = 'AUTH_KEY_DROP_DUPLICATE';

/** Watches one TDLib client's updates (make a new one per client). */
export class SessionLossDetector {
  private duplicateNotice = false;
  private reported = false;

  /** The reason when `update` says the session was lost; `logOutRequested`: we sent logOut ourselves. */
  observe(update: TdObject, logOutRequested: boolean): SessionLossReason | undefined {
    if (update['@type'] === 'updateServiceNotification' && update.type === AUTH_KEY_DROP_DUPLICATE) {
      this.duplicateNotice = true;
      return undefined;
    }
    if (update['@type'] !== 'updateAuthorizationState' || this.reported || logOutRequested) return undefined;
    const state = update.authorization_state as TdObject | undefined;
    if (state?.['@type'] !== 'authorizationStateLoggingOut') return undefined;
    this.reported = true;
    return this.duplicateNotice ? 'AuthKeyDuplicated' : 'LoggedOut';
  }
}

/**
 * tdlib_sessions_lost_total{account,reason}: one series per reason for each account hosted here, made at 0
 * when the account is hosted (a counter born at 1 is invisible to increase()) and removed when it leaves
 * this pod, so the series stay bounded by the accounts the pod hosts. The pod's namespace comes with the
 * scrape.
 */
export class SessionLossMetric {
  private readonly lost: Counter<'account' | 'reason'>;

  constructor(registry: Registry) {
    this.lost = counter(registry, {
      name: 'tdlib_sessions_lost_total',
      help: 'Telegram sessions lost without a log-out of ours (AuthKeyDuplicated: a key used by two clients at once; LoggedOut: ended elsewhere), by account hosted on this pod',
      labelNames: ['account', 'reason'],
    });
  }

  hosted(account: string): void {
    for (const reason of SESSION_LOSS_REASONS) this.lost.inc({ account, reason }, 0);
  }

  sessionLost(account: string, reason: SessionLossReason): void {
    this.lost.inc({ account, reason });
  }

  forget(account: string): void {
    for (const reason of SESSION_LOSS_REASONS) this.lost.remove({ account, reason });
  }
}
