/**
 * How a client's session ends or is checked while it lives: the live lease on its auth key, the world's
 * verdict on it (revoked, or used by two live clients at once: AUTH_KEY_DUPLICATED), losing it, closing,
 * and releasing what the client holds in the world.
 */
import { rmSync } from 'node:fs';
import type { SimClient } from './client.js';
import { closeLatencyOf } from './faults.js';
import * as O from './objects.js';
import type { Json } from './protocol.js';
import { deleteSession } from './session-db.js';

/** Called when an authorized client is connected: from now on it is a live user of its auth key. */
export function onConnectedReady(client: SimClient): void {
  const session = client.session;
  if (session === undefined || !client.isReady) return;
  if (client.leaseKey === undefined) {
    client.rt.leases.acquire(session.auth_key, client.holder);
    client.leaseKey = session.auth_key;
  }
  checkSessionHealth(client);
}

/**
 * The server side of an auth key: revoked (logged out elsewhere, terminated, killed as a duplicate), or
 * used by a second live client right now, which makes Telegram drop it for everybody.
 */
export function checkSessionHealth(client: SimClient): void {
  const session = client.session;
  if (session === undefined || client.phase !== 'open') return;
  const world = client.rt.world;
  const record = world.session(session.auth_key);
  if (record?.revoked !== undefined) {
    loseAuthorization(client, record.revoked.reason);
    return;
  }
  if (record === undefined && client.isReady) {
    // A session the world never authorized (its state was wiped): the server does not know this key.
    loseAuthorization(client, 'AUTH_KEY_UNREGISTERED');
    return;
  }
  const holders = client.rt.leases.holders(session.auth_key);
  if (holders.length > 1) {
    world.revokeSession(session.auth_key, 'AUTH_KEY_DUPLICATED');
    loseAuthorization(client, 'AUTH_KEY_DUPLICATED');
  }
}

/** The session is gone server-side: TDLib reports LoggingOut, drops the database and closes. */
export function loseAuthorization(client: SimClient, reason: string): void {
  if (client.phase !== 'open') return;
  const session = client.session;
  if (reason === 'AUTH_KEY_DUPLICATED') {
    client.update(
      O.updateServiceNotification(
        'AUTH_KEY_DROP_DUPLICATE',
        'Authorization error. Use the "Log out" button to log out, then log in again with your phone number. We apologize for the inconvenience.',
      ),
    );
    client.abortInFlight(406, 'AUTH_KEY_DUPLICATED');
  } else {
    client.abortInFlight(401, reason);
  }
  client.rt.logger?.warn({ clientId: client.id, reason }, 'simulated Telegram session lost');
  client.rt.event({
    type: 'authorization_lost',
    detail: reason,
    ...(session ? { auth_key: session.auth_key } : {}),
    ...(client.me ? { user_id: client.me.id } : {}),
  });
  client.phase = 'closing';
  client.setAuthState({ '@type': 'authorizationStateLoggingOut' });
  client.dropPendingSends();
  deleteSession(client.databaseDirectory);
  client.session = undefined;
  finishClose(client);
}

export function close(client: SimClient, extra: Json | undefined): void {
  client.reply(extra, O.ok());
  client.phase = 'closing';
  client.setAuthState({ '@type': 'authorizationStateClosing' });
  client.abortInFlight(500, 'Request aborted');
  if (closeLatencyOf(client.rt) > 0) {
    // A slow close (TDLib flushing to a stalled disk): the client keeps what it holds until it is Closed.
    client.closeStartedAt = Date.now();
    return;
  }
  finishClose(client);
}

/** Finishes a slow close once `latency_ms.methods.close` (as it is now) has passed since it started. */
export function tickClose(client: SimClient, now: number): void {
  if (client.closeStartedAt === undefined || client.phase !== 'closing') return;
  if (now - client.closeStartedAt < closeLatencyOf(client.rt)) return;
  client.closeStartedAt = undefined;
  finishClose(client);
}

/** Releases what the client holds in the world and reports authorizationStateClosed. */
export function finishClose(client: SimClient): void {
  const rt = client.rt;
  client.closeStartedAt = undefined;
  if (client.leaseKey !== undefined) rt.leases.release(client.leaseKey, client.holder);
  client.leaseKey = undefined;
  if (client.dbLocked) rt.dbLocks.release(client.databaseDirectory, client.holder);
  client.dbLocked = false;
  dropQrToken(client);
  client.account?.save();
  rt.scheduler.after(0, () => {
    client.phase = 'closed';
    client.setAuthState({ '@type': 'authorizationStateClosed' });
  });
}

export function qrTokenPath(client: SimClient, token: string): string {
  return client.rt.world.path('qr', `${token}.json`);
}

/** Withdraws the client's QR login link from the world (login finished, replaced, or client gone). */
export function dropQrToken(client: SimClient): void {
  if (client.qr === undefined) return;
  rmSync(qrTokenPath(client, client.qr.token), { force: true });
  client.qr = undefined;
}
