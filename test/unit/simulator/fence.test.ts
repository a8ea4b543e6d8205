import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { cpSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { isCloseRequest } from '../../../runtime/simulator/fence.js';
import { InstanceRegistry } from '../../../runtime/simulator/store/liveness.js';
import { TdClientClosedError } from '../../../runtime/tdlib/errors.js';
import {
  isAuthState,
  isConnectionState,
  loginUser,
  makeWorld,
  params,
  Recorder,
  startSession,
  type Session,
  type WorldFixture,
} from './support/harness.js';

jest.setTimeout(20_000);

/** Holds the JS thread like a stopped or stalled process: no timer, no tick, no heartbeat runs. */
function blockFor(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // spin
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('simulator session fence', () => {
  let fx: WorldFixture;
  let session: Session;

  beforeEach(() => {
    fx = makeWorld();
    session = startSession(fx.dir);
  });

  afterEach(async () => {
    jest.restoreAllMocks();
    await session.close();
    expect(session.checked.problems).toEqual([]);
    fx.cleanup();
  });

  it('recognizes exactly a close request, with at most one integer @extra', () => {
    expect(isCloseRequest('{"@type":"close"}')).toBe(true);
    expect(isCloseRequest('{"@extra":17,"@type":"close"}')).toBe(true);
    expect(isCloseRequest('{"@type":"close","@extra":-3}')).toBe(true);
    expect(isCloseRequest('{"@extra":1,"@type":"close","@extra":2}')).toBe(false);
    expect(isCloseRequest('{"@extra":"x","@type":"close"}')).toBe(false);
    expect(isCloseRequest('{"@type":"close","x":1}')).toBe(false);
    expect(isCloseRequest('{"@type":"testCallString","x":"{\\"@type\\":\\"close\\"}"}')).toBe(false);
    expect(isCloseRequest('{ "@type":"close"}')).toBe(false);
  });

  it('drops and counts requests of a client past its deadline, and still forwards close', async () => {
    const client = session.manager.createClient();
    const rec = new Recorder(client);
    await client.invokeUnchecked(params(join(fx.dir, 'db-fenced')));
    await rec.waitFor(isAuthState('authorizationStateWaitPhoneNumber'));
    const unfenced = session.manager.createClient();
    session.backend.setClientDeadline(unfenced.id, Infinity);

    session.backend.setClientDeadline(client.id, 0);
    // In the same turn, so the backend's tick cannot have closed the client by itself yet.
    const dropped = client.invokeUnchecked({ '@type': 'testSquareInt', x: 3 }).then(
      () => 'answered',
      (error: unknown) => (error instanceof TdClientClosedError ? 'rejected at close' : String(error)),
    );
    const closing = client.close();
    expect(session.backend.fenceStats()).toEqual({ fencedClients: 1, blockedRequests: 1, watchdogCloses: 0 });

    await closing;
    expect(await dropped).toBe('rejected at close');
    expect(rec.authStates().slice(-2)).toEqual(['authorizationStateClosing', 'authorizationStateClosed']);
    expect(await unfenced.invokeUnchecked({ '@type': 'testSquareInt', x: 4 })).toMatchObject({ value: 16 });
    // A closed client is no longer fenced, but its passed deadline still holds: nothing but close goes out.
    session.backend.setClientDeadline(client.id, 60_000);
    session.backend.send(client.id, '{"@type":"testSquareInt","x":5,"@extra":77}');
    expect(session.backend.fenceStats()).toEqual({ fencedClients: 0, blockedRequests: 2, watchdogCloses: 0 });
  });

  it('keeps a passed deadline: a renewal after it neither revives the client nor stops its close', async () => {
    const client = session.manager.createClient();
    const rec = new Recorder(client);
    await client.invokeUnchecked(params(join(fx.dir, 'db-late')));
    await rec.waitFor(isAuthState('authorizationStateWaitPhoneNumber'));
    session.backend.setClientDeadline(client.id, 20);
    blockFor(40);
    session.backend.setClientDeadline(client.id, 60_000);
    session.backend.setClientDeadline(client.id, Infinity);
    const answer = client.invokeUnchecked({ '@type': 'testSquareInt', x: 2 }, { timeoutMs: 5_000 }).then(
      () => 'answered',
      (error: unknown) => (error instanceof TdClientClosedError ? 'rejected at close' : String(error)),
    );
    await rec.waitFor(isAuthState('authorizationStateClosed'));
    expect(await answer).toBe('rejected at close');
    expect(session.backend.fenceStats()).toEqual({ fencedClients: 0, blockedRequests: 1, watchdogCloses: 1 });
  });

  it('closes an overdue client at the next tick, before its heartbeat, so another process can take the session', async () => {
    const original = join(fx.dir, 'db-orig');
    const a = session.manager.createClient();
    const recA = new Recorder(a);
    await a.invokeUnchecked(params(original));
    await loginUser(a, '+15550100002', '54321');
    await recA.waitFor(isAuthState('authorizationStateReady'));
    await recA.waitFor(isConnectionState('connectionStateReady'));
    const authKey = fx.world.sessions().find((s) => s.user_id === 5550100002)?.auth_key as string;
    const liveDir = fx.world.path('live', authKey);
    const marks = readdirSync(liveDir);
    expect(marks).toHaveLength(1);
    const instanceA = (marks[0] as string).slice(0, (marks[0] as string).lastIndexOf('.'));

    // At every heartbeat of A's instance: is A's live mark on the session still there?
    const marksAtHeartbeat: number[] = [];
    const realHeartbeat = InstanceRegistry.prototype.heartbeat;
    jest.spyOn(InstanceRegistry.prototype, 'heartbeat').mockImplementation(function (this: InstanceRegistry) {
      if (this.own.instance === instanceA) {
        marksAtHeartbeat.push(readdirSync(liveDir).filter((n) => n.startsWith(`${instanceA}.`)).length);
      }
      realHeartbeat.call(this);
    });

    session.backend.setClientDeadline(a.id, 100);
    // A pause past the deadline (and past the world's heartbeat interval): nothing of A runs meanwhile.
    blockFor(300);
    const beforeResume = marksAtHeartbeat.length;

    const copy = join(fx.dir, 'db-copy');
    cpSync(original, copy, { recursive: true });
    const other = startSession(fx.dir);
    try {
      const b = other.manager.createClient();
      const recB = new Recorder(b);
      await b.invokeUnchecked(params(copy));
      await recB.waitFor(isAuthState('authorizationStateReady'));
      await recB.waitFor(isConnectionState('connectionStateReady'));
      await recA.waitFor(isAuthState('authorizationStateClosed'));
      // Several of B's session health checks (one per heartbeat interval) would have seen a duplicate.
      await sleep(300);

      expect(marksAtHeartbeat.slice(beforeResume, beforeResume + 1)).toEqual([0]);
      expect(recB.updates.some((u) => u['@type'] === 'updateServiceNotification')).toBe(false);
      expect(recB.authStates().at(-1)).toBe('authorizationStateReady');
      expect(fx.world.session(authKey)?.revoked).toBeUndefined();
      expect(fx.world.events().filter((e) => e.type === 'auth_key_duplicated')).toHaveLength(0);
      expect(recA.authStates().slice(-2)).toEqual(['authorizationStateClosing', 'authorizationStateClosed']);
      expect(session.backend.fenceStats()).toEqual({
        fencedClients: 0,
        blockedRequests: 0,
        watchdogCloses: 1,
      });
      await b.close();
    } finally {
      await other.close();
      expect(other.checked.problems).toEqual([]);
    }
  });
});
