/**
 * Which hosted-client views the status writer holds for its longer window (runtime/hosting/status.ts
 * `settling`): the states a client leaves by itself within seconds, and none a reader must see promptly.
 */
import { describe, expect, it } from '@jest/globals';
import { settling, type HostedView } from '../../../runtime/hosting/status.js';

const session = { backupSecretName: 'bot-tdlib-session' };
const backedUp = { ...session, lastBackupTime: '2026-11-30T06:00:00Z' };
const user = { id: 7000000001, username: 'demo_bot', isBot: true };
const loggedIn: HostedView = {
  authorizationState: 'Ready',
  connectionState: 'Ready',
  user,
  session: backedUp,
};

describe('settling', () => {
  it.each<[string, HostedView]>([
    ['the client starting', { authReason: 'Starting', authMessage: 'starting the TDLib client', session }],
    ['TDLib taking its parameters', { authorizationState: 'WaitTdlibParameters', session }],
    ['a bot token being checked', { authorizationState: 'WaitPhoneNumber', session }],
    ['logged in, still connecting', { ...loggedIn, connectionState: 'Connecting' }],
    ['logged in, the user not looked up yet', { ...loggedIn, user: undefined }],
    ['logged in, the first backup not taken yet', { ...loggedIn, session }],
  ])('holds %s', (_what, view) => {
    expect(settling(view)).toBe(true);
  });

  it.each<[string, HostedView]>([
    ['logged in, connected and backed up', loggedIn],
    ['logged in without a fence (no backups at all)', { ...loggedIn, session: undefined }],
    ['a login code wanted', { authorizationState: 'WaitCode', authReason: 'WaitCode', session }],
    [
      'a bot token missing',
      { authorizationState: 'WaitPhoneNumber', authReason: 'BotTokenMissing', session },
    ],
    ['a TDLib error', { authorizationState: 'WaitPhoneNumber', authReason: 'ACCESS_TOKEN_INVALID', session }],
    ['another pod holding the Lease', { authReason: 'WaitingForLease', session }],
    ['a start step failing', { authReason: 'StartFailed', session }],
    ['stopped on purpose', { authorizationState: 'Closed', stoppedReason: 'Suspended', session }],
    [
      'a proxy that cannot be used',
      {
        ...loggedIn,
        connectionState: 'Connecting',
        connectionBlocked: { reason: 'ProxyInvalid', message: 'x' },
      },
    ],
  ])('writes %s promptly', (_what, view) => {
    expect(settling(view)).toBe(false);
  });
});
