/**
 * The pure decisions the session fence rests on: what the runtime wants for an account, which copy of a
 * session is newer, how long a renewal keeps the holder valid, whose heartbeat vouches for a holder, what
 * the runtime reports, and how observers judge a Lease unchanged.
 */
import type { TelegramAccount } from '../../../crds/index.js';
import { LeaseObserver, leaseExpired, recordKey } from '../../../operator/kube/lease.js';
import { desireFor } from '../../../runtime/hosting/desire.js';
import {
  earlierIncarnationInPod,
  fenceTiming,
  heartbeatLeaseOf,
  incarnationIdentity,
  validUntilAfter,
} from '../../../runtime/hosting/fence.js';
import { chooseSession, parseEpoch } from '../../../runtime/hosting/session-store.js';
import { desiredRuntimeStatus, statusFingerprint } from '../../../runtime/hosting/status.js';

const POD = 'tdlib-runtime-default-0';

function account(overrides: {
  pod?: string;
  suspend?: boolean;
  deleting?: boolean;
  policy?: 'LogOut' | 'KeepSession';
}): TelegramAccount {
  return {
    apiVersion: 'telegram.tdlib-operator.dev/v1alpha1',
    kind: 'TelegramAccount',
    metadata: {
      name: 'a',
      namespace: 'n',
      ...(overrides.deleting ? { deletionTimestamp: '2026-11-28T00:00:00Z' } : {}),
    },
    spec: {
      type: 'Bot',
      botTokenSecretRef: { name: 'bot' },
      apiCredentialsSecretRef: { name: 'api' },
      suspend: overrides.suspend,
      deletionPolicy: overrides.policy,
    },
    ...(overrides.pod === undefined ? {} : { status: { placement: { pool: 'p', pod: overrides.pod } } }),
  };
}

describe('desireFor: what the runtime steers an account to', () => {
  const options = { tdlibEnabled: true, shuttingDown: false };

  it('runs an account placed here, and stops it for every reason it should not run', () => {
    expect(desireFor(account({ pod: POD }), POD, options)).toEqual({ kind: 'run' });
    expect(desireFor(undefined, POD, options)).toEqual({ kind: 'stop', reason: 'moved' });
    expect(desireFor(account({ pod: 'tdlib-runtime-default-1' }), POD, options)).toEqual({
      kind: 'stop',
      reason: 'moved',
    });
    expect(desireFor(account({ pod: POD, suspend: true }), POD, options)).toEqual({
      kind: 'stop',
      reason: 'suspended',
    });
    expect(desireFor(account({ pod: POD }), POD, { tdlibEnabled: false, shuttingDown: false })).toEqual({
      kind: 'stop',
      reason: 'disabled',
    });
    expect(desireFor(account({ pod: POD }), POD, { tdlibEnabled: true, shuttingDown: true })).toEqual({
      kind: 'stop',
      reason: 'shutdown',
    });
  });

  it('logs out only a deleted account whose policy says so; a suspended one being deleted still logs out', () => {
    expect(desireFor(account({ pod: POD, deleting: true, policy: 'LogOut' }), POD, options)).toEqual({
      kind: 'logout',
    });
    expect(desireFor(account({ pod: POD, deleting: true, policy: 'KeepSession' }), POD, options)).toEqual({
      kind: 'stop',
      reason: 'deleted',
    });
    expect(
      desireFor(account({ pod: POD, deleting: true, policy: 'LogOut', suspend: true }), POD, options),
    ).toEqual({ kind: 'logout' });
  });
});

describe('chooseSession: which copy of a session is newer, by fencing epoch only (F13)', () => {
  it('restores the backup when the volume has none, or when someone ran the session later', () => {
    expect(chooseSession({ hasFiles: false }, { present: true, epoch: 3 })).toBe('backup');
    expect(chooseSession({ hasFiles: true, epoch: 2 }, { present: true, epoch: 3 })).toBe('backup');
    expect(chooseSession({ hasFiles: true }, { present: true, epoch: 0 })).toBe('backup');
  });

  it('keeps the local files when they are as new as the backup or newer, and starts fresh with neither', () => {
    expect(chooseSession({ hasFiles: true, epoch: 3 }, { present: true, epoch: 3 })).toBe('local');
    expect(chooseSession({ hasFiles: true, epoch: 4 }, { present: true, epoch: 3 })).toBe('local');
    expect(chooseSession({ hasFiles: true, epoch: 1 }, { present: false })).toBe('local');
    // A backup without an epoch (written before epochs existed) never beats local files.
    expect(chooseSession({ hasFiles: true }, { present: true })).toBe('local');
    expect(chooseSession({ hasFiles: false }, { present: false })).toBe('fresh');
  });

  it('reads only plain non-negative integers as epochs', () => {
    expect(parseEpoch('12')).toBe(12);
    for (const bad of [undefined, '', '-1', '1.5', '1e3', ' 2', 'x']) expect(parseEpoch(bad)).toBeUndefined();
  });
});

describe("the holder's validity and identity", () => {
  it('stays valid until a margin before a contender could take over, counted from when the renewal was sent', () => {
    const timing = fenceTiming(15);
    expect(timing).toEqual({ durationMs: 15_000, renewEveryMs: 5000, marginMs: 3000 });
    expect(validUntilAfter(1000, timing)).toBe(13_000);
    // Three renewal attempts fit before validity ends, and the margin stays on the holder's side.
    expect(validUntilAfter(0, timing) - timing.renewEveryMs * 2).toBeGreaterThan(0);
    expect(validUntilAfter(0, timing)).toBeLessThan(timing.durationMs);
  });

  it('names the process incarnation, and finds the heartbeat that vouches for it by pod name (F8)', () => {
    const a = incarnationIdentity(POD, 'uid-1');
    const b = incarnationIdentity(POD, 'uid-1');
    expect(a).toMatch(/^tdlib-runtime-default-0\/uid-1\/[0-9a-f]{8}$/);
    expect(a).not.toBe(b);
    expect(heartbeatLeaseOf(a)).toBe(POD);
    expect(heartbeatLeaseOf(POD)).toBe(POD);
  });

  it("lets a restarted container take its own pod's heartbeat at once, and nobody else's", () => {
    const before = incarnationIdentity(POD, 'uid-1');
    const restarted = incarnationIdentity(POD, 'uid-1');
    expect(earlierIncarnationInPod(restarted, before)).toBe(true);
    // A recreated pod (new uid) waits: its predecessor may still be terminating on another node.
    expect(earlierIncarnationInPod(incarnationIdentity(POD, 'uid-2'), before)).toBe(false);
    expect(earlierIncarnationInPod(incarnationIdentity('tdlib-runtime-default-1', 'uid-1'), before)).toBe(
      false,
    );
    // Without a pod uid (a process run outside a pod) nothing vouches for the predecessor being gone.
    expect(
      earlierIncarnationInPod(incarnationIdentity(POD, undefined), incarnationIdentity(POD, undefined)),
    ).toBe(false);
    expect(earlierIncarnationInPod(restarted, restarted)).toBe(false);
    expect(earlierIncarnationInPod(restarted, '')).toBe(false);
  });
});

describe('desiredRuntimeStatus: what the hosting pod reports', () => {
  const now = new Date('2026-11-28T12:00:00Z');

  it('says which pod writes, and is Authorized and Connected only when both are true', () => {
    const ready = desiredRuntimeStatus(
      { generation: 2, authorizationState: 'Ready', connectionState: 'Ready', proxy: { inUse: 'direct' } },
      undefined,
      now,
      POD,
    );
    expect(ready.hostedBy).toBe(POD);
    expect(ready.conditions.map((c) => [c.type, c.status, c.reason])).toEqual([
      ['Authorized', 'True', 'Authorized'],
      ['Connected', 'True', 'Ready'],
    ]);
    expect(ready.conditions.every((c) => c.observedGeneration === 2)).toBe(true);
    // Its own conditions only: withReady adds the Ready derived from them (runtime-ready.test.ts).
    expect(ready.conditions.some((c) => c.type === 'Ready')).toBe(false);
  });

  it('reports an unusable proxy as Connected=False naming the field, never as connected', () => {
    const blocked = desiredRuntimeStatus(
      {
        authorizationState: 'Ready',
        connectionState: 'Ready',
        connectionBlocked: {
          reason: 'ProxyInvalid',
          message: 'spec.proxy.link: proxy link has no port parameter',
        },
      },
      undefined,
      now,
      POD,
    );
    const connected = blocked.conditions.find((c) => c.type === 'Connected');
    expect(connected).toMatchObject({ status: 'False', reason: 'ProxyInvalid' });
    expect(connected?.message).toContain('spec.proxy.link');
  });

  it('reports a stopped client as stopped, without a stale connection state', () => {
    const suspended = desiredRuntimeStatus(
      { authorizationState: 'Ready', connectionState: 'Ready', stoppedReason: 'Suspended' },
      undefined,
      now,
      POD,
    );
    expect(suspended.conditions.map((c) => [c.type, c.status, c.reason])).toEqual([
      ['Authorized', 'False', 'Suspended'],
      ['Connected', 'False', 'Suspended'],
    ]);
    expect(suspended.connectionState).toBeUndefined();
  });

  it('fingerprints what a reader sees, not when it was computed', () => {
    const view = { authorizationState: 'WaitCode', authReason: 'WaitCode' };
    const first = desiredRuntimeStatus(view, undefined, now, POD);
    const later = desiredRuntimeStatus(view, undefined, new Date('2026-11-28T13:00:00Z'), POD);
    expect(statusFingerprint(first)).toBe(statusFingerprint(later));
    expect(statusFingerprint(first)).not.toBe(
      statusFingerprint(desiredRuntimeStatus(view, undefined, now, 'other')),
    );
  });
});

describe('LeaseObserver: "unchanged for D" on the observer clock', () => {
  it('restarts its clock on any change of the record, and for a missing Lease too', () => {
    let t = 0;
    const observer = new LeaseObserver(() => t);
    const record = { holderIdentity: 'a', renewTime: 'r1', leaseDurationSeconds: 2 };
    expect(observer.observe('l', record)).toBe(0);
    t = 1500;
    expect(observer.observe('l', { ...record })).toBe(1500);
    expect(leaseExpired(record, 1500, 15)).toBe(false);
    t = 2500;
    expect(leaseExpired(record, observer.observe('l', record), 15)).toBe(true);
    expect(observer.observe('l', { ...record, renewTime: 'r2' })).toBe(0);
    expect(observer.observe('gone', undefined)).toBe(0);
    t = 4000;
    expect(observer.observe('gone', undefined)).toBe(1500);
    expect(recordKey(undefined)).toBe('<none>');
  });
});
