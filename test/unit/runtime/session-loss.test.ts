/**
 * A session lost without a log-out of ours (TDLib goes LoggingOut by itself) is counted by account and
 * reason; AUTH_KEY_DUPLICATED is told apart by TDLib's AUTH_KEY_DROP_DUPLICATE service notification.
 */
import { describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import {
  AUTH_KEY_DROP_DUPLICATE,
  SessionLossDetector,
  SessionLossMetric,
} from '../../../runtime/hosting/session-loss.js';
import type { TdObject } from '../../../runtime/tdlib/backend.js';

const state = (type: string): TdObject => ({
  '@type': 'updateAuthorizationState',
  authorization_state: { '@type': type },
});
const duplicateNotice: TdObject = {
  '@type': 'updateServiceNotification',
  type: AUTH_KEY_DROP_DUPLICATE,
  content: { '@type': 'messageText' },
};

describe('SessionLossDetector', () => {
  it('LoggingOut without our logOut is a lost session (LoggedOut), reported once', () => {
    const detector = new SessionLossDetector();
    expect(detector.observe(state('authorizationStateReady'), false)).toBeUndefined();
    expect(detector.observe(state('authorizationStateLoggingOut'), false)).toBe('LoggedOut');
    expect(detector.observe(state('authorizationStateLoggingOut'), false)).toBeUndefined();
    expect(detector.observe(state('authorizationStateClosed'), false)).toBeUndefined();
  });

  it('after AUTH_KEY_DROP_DUPLICATE the reason is AuthKeyDuplicated', () => {
    const detector = new SessionLossDetector();
    expect(detector.observe(duplicateNotice, false)).toBeUndefined();
    expect(detector.observe(state('authorizationStateLoggingOut'), false)).toBe('AuthKeyDuplicated');
  });

  it('our own logOut is not a loss; neither is a close', () => {
    const detector = new SessionLossDetector();
    expect(detector.observe(state('authorizationStateLoggingOut'), true)).toBeUndefined();
    expect(new SessionLossDetector().observe(state('authorizationStateClosing'), false)).toBeUndefined();
    expect(
      new SessionLossDetector().observe({ '@type': 'updateConnectionState', state: {} }, false),
    ).toBeUndefined();
  });
});

describe('tdlib_sessions_lost_total', () => {
  const samples = async (registry: Registry): Promise<string[]> =>
    (await registry.getSingleMetricAsString('tdlib_sessions_lost_total'))
      .split('\n')
      .filter((line) => line.startsWith('tdlib_sessions_lost_total{'))
      .sort();

  it('starts at 0 for each hosted account and reason, counts losses, and goes with the account', async () => {
    const registry = new Registry();
    const metric = new SessionLossMetric(registry);
    metric.hosted('alice');
    metric.hosted('bot');
    metric.sessionLost('alice', 'AuthKeyDuplicated');
    expect(await samples(registry)).toEqual([
      'tdlib_sessions_lost_total{account="alice",reason="AuthKeyDuplicated"} 1',
      'tdlib_sessions_lost_total{account="alice",reason="LoggedOut"} 0',
      'tdlib_sessions_lost_total{account="bot",reason="AuthKeyDuplicated"} 0',
      'tdlib_sessions_lost_total{account="bot",reason="LoggedOut"} 0',
    ]);
    metric.hosted('alice');
    metric.forget('bot');
    expect(await samples(registry)).toEqual([
      'tdlib_sessions_lost_total{account="alice",reason="AuthKeyDuplicated"} 1',
      'tdlib_sessions_lost_total{account="alice",reason="LoggedOut"} 0',
    ]);
  });
});
