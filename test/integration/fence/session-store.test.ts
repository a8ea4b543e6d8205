/**
 * SessionStore (runtime/hosting/session-store.ts) against the real apiserver, with real key and session
 * Secrets and a temporary data directory holding a stand-in td.binlog (F9, F13): restore chooses by fencing
 * epoch and never by clocks; a backup is refused for an older epoch and leaves the Secret untouched; the
 * fence check runs between the read and the write, and the write is conditional on that read; a missing
 * Secret is "no backup"; an unreadable backup falls back instead of failing.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { encryptionKeySecretName, sessionSecretName } from '../../../crds/index.js';
import { RestClient } from '../../../operator/kube/client.js';
import { createRegistry } from '../../../operator/kube/metrics.js';
import { Resources, type ApiObject } from '../../../operator/kube/resource.js';
import { FenceLostError } from '../../../runtime/hosting/fence.js';
import {
  BACKUP_TIME_ANNOTATION,
  SESSION_EPOCH_ANNOTATION,
  SessionStore,
  StaleBackupError,
} from '../../../runtime/hosting/session-store.js';
import { SESSION_SECRET_KEY } from '../../../runtime/session/backup.js';
import { adminKubeConfig, createTestNamespace, testCluster } from '../../support/cluster.js';
import { testLogger } from '../kube/support.js';

type SecretObject = ApiObject & { data?: Record<string, string> };

const logger = testLogger('fence-session-store');
let rest: RestClient;
let namespace: string;
let root: string;

const LONG_AGO = new Date('2001-01-01T00:00:00Z');
const FAR_AHEAD = new Date('2101-01-01T00:00:00Z');

beforeAll(async () => {
  const kc = adminKubeConfig();
  rest = new RestClient(kc, { registry: createRegistry(), logger });
  namespace = await createTestNamespace(kc, 'fence-session');
  root = mkdtempSync(join(tmpdir(), 'tdlib-operator-fence-session-'));
});

afterAll(async () => {
  await rest.close();
});

/**
 * The key as an earlier operator version made it, in a separate key Secret (32 random bytes under "key"),
 * which the runtime still reads when the session Secret has no key (these tests are about backups, not
 * where the key lives); returns the key.
 */
async function keySecret(account: string): Promise<Buffer> {
  const key = randomBytes(32);
  await rest.create<SecretObject>(Resources.Secret, {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: encryptionKeySecretName(account), namespace },
    data: { key: key.toString('base64') },
  });
  return key;
}

/** The operator's part: the (empty) session Secret backups go to. */
async function sessionSecret(account: string, extra: Partial<SecretObject> = {}): Promise<void> {
  await rest.create<SecretObject>(Resources.Secret, {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: sessionSecretName(account), namespace, ...extra.metadata },
    ...(extra.data ? { data: extra.data } : {}),
  });
}

async function readSecret(account: string): Promise<SecretObject> {
  return rest.get<SecretObject>(Resources.Secret, namespace, sessionSecretName(account));
}

/** The Secret exactly as the API serves it (resourceVersion and managedFields included). */
async function rawSecret(account: string): Promise<string> {
  return JSON.stringify(await readSecret(account));
}

async function annotate(account: string, annotations: Record<string, string>): Promise<void> {
  await rest.mergePatch(Resources.Secret, namespace, sessionSecretName(account), {
    metadata: { annotations },
  });
}

/** A pod's volume: `<root>/<pod>`, optionally with a session, the epoch it last ran under, and file times. */
function podStore(
  pod: string,
  account: string,
  local?: { content: string; epoch?: number; mtime?: Date },
): SessionStore {
  const store = new SessionStore({ rest, namespace, account, dataDir: join(root, pod) });
  if (local) {
    mkdirSync(store.databaseDir, { recursive: true });
    const files = [join(store.databaseDir, 'td.binlog')];
    writeFileSync(files[0] ?? '', local.content);
    if (local.epoch !== undefined) {
      files.push(join(store.databaseDir, '.session-epoch'));
      writeFileSync(files[1] ?? '', String(local.epoch));
    }
    if (local.mtime) for (const file of files) utimesSync(file, local.mtime, local.mtime);
  }
  return store;
}

function localContent(store: SessionStore): string | undefined {
  const file = join(store.databaseDir, 'td.binlog');
  return existsSync(file) ? readFileSync(file, 'utf8') : undefined;
}

function localMark(store: SessionStore): string {
  return readFileSync(join(store.databaseDir, '.session-epoch'), 'utf8');
}

const allowed = (): void => undefined;

describe('SessionStore', () => {
  it('restores the backup only when its epoch is newer than the local mark; file times and time annotations play no part (F13)', async () => {
    const key = await keySecret('alpha');
    await sessionSecret('alpha');
    const writer = podStore('pod-a', 'alpha', { content: 'session of epoch 5' });
    await writer.backup(key, 5, allowed);
    expect((await readSecret('alpha')).metadata?.annotations?.[SESSION_EPOCH_ANNOTATION]).toBe('5');

    // Newer backup, but every clock says the local files are newer.
    await annotate('alpha', { [BACKUP_TIME_ANNOTATION]: LONG_AGO.toISOString() });
    const behind = podStore('pod-b', 'alpha', {
      content: 'local session of epoch 4',
      epoch: 4,
      mtime: FAR_AHEAD,
    });
    expect(await behind.restore(key, 6)).toEqual({ choice: 'backup', backupEpoch: 5 });
    expect(localContent(behind)).toBe('session of epoch 5');
    expect(localMark(behind)).toBe('6');

    // Older backup, but every clock says the backup is newer.
    await annotate('alpha', { [BACKUP_TIME_ANNOTATION]: FAR_AHEAD.toISOString() });
    const ahead = podStore('pod-c', 'alpha', {
      content: 'local session of epoch 7',
      epoch: 7,
      mtime: LONG_AGO,
    });
    expect(await ahead.restore(key, 8)).toEqual({ choice: 'local', backupEpoch: 5 });
    expect(localContent(ahead)).toBe('local session of epoch 7');
    expect(localMark(ahead)).toBe('8');

    // The same epoch is not newer: the files TDLib last ran here win.
    const same = podStore('pod-d', 'alpha', {
      content: 'local session of epoch 5',
      epoch: 5,
      mtime: LONG_AGO,
    });
    expect(await same.restore(key, 6)).toEqual({ choice: 'local', backupEpoch: 5 });
    expect(localContent(same)).toBe('local session of epoch 5');

    // No session on this volume: the backup.
    const empty = podStore('pod-e', 'alpha');
    expect(await empty.restore(key, 6)).toEqual({ choice: 'backup', backupEpoch: 5 });
    expect(localContent(empty)).toBe('session of epoch 5');
  });

  it('refuses a backup of an epoch older than the Secret holds, leaving the Secret byte for byte unchanged (F9)', async () => {
    const key = await keySecret('beta');
    await sessionSecret('beta');
    const current = podStore('pod-a', 'beta', { content: 'session of the holder of epoch 7' });
    expect(await current.backup(key, 7, allowed)).toEqual(expect.any(String));
    const before = await rawSecret('beta');

    const stale = podStore('pod-b', 'beta', { content: 'session of a resumed old holder (epoch 6)' });
    await expect(stale.backup(key, 6, allowed)).rejects.toBeInstanceOf(StaleBackupError);
    expect(await rawSecret('beta')).toBe(before);

    // The current holder may back up again, and a newer one takes over the Secret.
    await current.backup(key, 7, allowed);
    const newer = podStore('pod-c', 'beta', { content: 'session of the holder of epoch 8' });
    await newer.backup(key, 8, allowed);
    const secret = await readSecret('beta');
    expect(secret.metadata?.annotations?.[SESSION_EPOCH_ANNOTATION]).toBe('8');
    const fresh = podStore('pod-d', 'beta');
    expect(await fresh.restore(key, 9)).toEqual({ choice: 'backup', backupEpoch: 8 });
    expect(localContent(fresh)).toBe('session of the holder of epoch 8');
  });

  it('runs the check between reading the Secret and writing it; a throwing check means no write, and the write is conditional on that read', async () => {
    const key = await keySecret('gamma');
    await sessionSecret('gamma');
    const own = new RestClient(adminKubeConfig(), { registry: createRegistry(), logger });
    try {
      const store = new SessionStore({
        rest: own,
        namespace,
        account: 'gamma',
        dataDir: join(root, 'pod-a'),
      });
      mkdirSync(store.databaseDir, { recursive: true });
      writeFileSync(join(store.databaseDir, 'td.binlog'), 'session of epoch 3');

      // Exactly one request (the read) before the check, exactly one (the write) after it.
      const start = own.requestCount();
      let atCheck = -1;
      await store.backup(key, 3, () => {
        atCheck = own.requestCount();
      });
      expect(atCheck - start).toBe(1);
      expect(own.requestCount() - atCheck).toBe(1);

      // The next backup decides on the Secret as its own write left it: no read, one write.
      const again = own.requestCount();
      let againAtCheck = -1;
      await store.backup(key, 3, () => {
        againAtCheck = own.requestCount();
      });
      expect(againAtCheck - again).toBe(0);
      expect(own.requestCount() - againAtCheck).toBe(1);

      // The fence lapsed by the time the write would go out: nothing is written.
      const before = await rawSecret('gamma');
      const sent = own.requestCount();
      await expect(
        store.backup(key, 3, () => {
          throw new FenceLostError('session backup refused: the fence lapsed');
        }),
      ).rejects.toBeInstanceOf(FenceLostError);
      expect(own.requestCount() - sent).toBe(0);
      expect(await rawSecret('gamma')).toBe(before);

      // A newer holder's write (here: just its epoch) lands between our read and our write: the write
      // carries the resourceVersion of our read, so it is refused, and the retry sees the newer epoch.
      let raced = false;
      const attempt = store.backup(key, 3, () => {
        if (raced) return;
        raced = true;
        // Synchronous, so it happens exactly between the check and the write.
        execFileSync('kubectl', [
          '--kubeconfig',
          testCluster().kubeconfigPath,
          '-n',
          namespace,
          'annotate',
          'secret',
          sessionSecretName('gamma'),
          `${SESSION_EPOCH_ANNOTATION}=4`,
          '--overwrite',
        ]);
      });
      await expect(attempt).rejects.toBeInstanceOf(StaleBackupError);
      expect(raced).toBe(true);
      expect((await readSecret('gamma')).metadata?.annotations?.[SESSION_EPOCH_ANNOTATION]).toBe('4');
      // What the Secret holds is still epoch 3's blob (the annotation alone changed): ours did not land.
      const blob = (await readSecret('gamma')).data?.[SESSION_SECRET_KEY];
      expect(blob).toBe((JSON.parse(before) as SecretObject).data?.[SESSION_SECRET_KEY]);
    } finally {
      await own.close();
    }
  });

  it('a backup after a restore writes without reading; a change made meanwhile by anyone costs one read, and a newer epoch is still refused', async () => {
    const key = await keySecret('lambda');
    await sessionSecret('lambda');
    const own = new RestClient(adminKubeConfig(), { registry: createRegistry(), logger });
    try {
      const store = new SessionStore({
        rest: own,
        namespace,
        account: 'lambda',
        dataDir: join(root, 'pod-a'),
      });
      expect(await store.restore(key, 5)).toEqual({ choice: 'fresh', backupEpoch: undefined });
      mkdirSync(store.databaseDir, { recursive: true });
      writeFileSync(join(store.databaseDir, 'td.binlog'), 'session of epoch 5');

      const first = own.requestCount();
      await store.backup(key, 5, allowed);
      expect(own.requestCount() - first).toBe(1);

      // Someone else's change (a label here): our remembered version is refused, read once, written again.
      await rest.mergePatch(Resources.Secret, namespace, sessionSecretName('lambda'), {
        metadata: { labels: { touched: 'by-someone-else' } },
      });
      const second = own.requestCount();
      await store.backup(key, 5, allowed);
      expect(own.requestCount() - second).toBe(3);
      const kept = await readSecret('lambda');
      expect(kept.metadata?.labels?.touched).toBe('by-someone-else');
      expect(kept.metadata?.annotations?.[SESSION_EPOCH_ANNOTATION]).toBe('5');

      // A newer holder backs up: the old holder's remembered copy says epoch 5, the Secret says 6.
      const newer = podStore('pod-b', 'lambda', { content: 'session of epoch 6' });
      await newer.backup(key, 6, allowed);
      const before = await rawSecret('lambda');
      await expect(store.backup(key, 5, allowed)).rejects.toBeInstanceOf(StaleBackupError);
      expect(await rawSecret('lambda')).toBe(before);
    } finally {
      await own.close();
    }
  });

  it('discards a local database encrypted with another key (an earlier account of that name, deleted with LogOut and made again) instead of running it', async () => {
    const oldKey = await keySecret('kappa');
    const store = podStore('pod-a', 'kappa', { content: 'old account session', epoch: 7 });
    expect(await store.restore(oldKey, 8)).toEqual({ choice: 'local', backupEpoch: undefined });
    // Recreated: a new key, a new Lease whose epochs start again below the old mark.
    const newKey = randomBytes(32);
    expect(await store.restore(newKey, 1)).toEqual({ choice: 'fresh', backupEpoch: undefined });
    expect(localContent(store)).toBeUndefined();
    expect(localMark(store)).toBe('1');
    // The same key again (KeepSession): its database is used.
    writeFileSync(join(store.databaseDir, 'td.binlog'), 'new account session');
    expect(await store.restore(newKey, 2)).toEqual({ choice: 'local', backupEpoch: undefined });
    expect(localContent(store)).toBe('new account session');
    // The mark identifies the key without holding it.
    const mark = readFileSync(join(store.databaseDir, '.session-key'), 'utf8');
    for (const encoding of ['hex', 'base64'] as const)
      expect(mark).not.toContain(newKey.toString(encoding).slice(0, 16));
  });

  it('treats a missing session Secret as "no backup"', async () => {
    const key = await keySecret('delta');
    const empty = podStore('pod-a', 'delta');
    expect(await empty.restore(key, 1)).toEqual({ choice: 'fresh', backupEpoch: undefined });
    expect(empty.hasLocalSession()).toBe(false);
    expect(localMark(empty)).toBe('1');

    const local = podStore('pod-b', 'delta', { content: 'local session', epoch: 0 });
    expect(await local.restore(key, 1)).toEqual({ choice: 'local', backupEpoch: undefined });
    expect(localContent(local)).toBe('local session');
    expect(await local.backupEpoch()).toBeUndefined();
  });

  it('falls back to the local session or a fresh login, with `unreadable` set, when the backup cannot be read', async () => {
    const key = await keySecret('eps');
    // Corrupt: not a backup at all, under a newer epoch than anything local.
    await sessionSecret('eps', {
      metadata: { annotations: { [SESSION_EPOCH_ANNOTATION]: '9' } },
      data: { [SESSION_SECRET_KEY]: Buffer.from('certainly not a session backup').toString('base64') },
    });
    const withLocal = podStore('pod-a', 'eps', { content: 'local session of epoch 3', epoch: 3 });
    const corrupt = await withLocal.restore(key, 10);
    expect(corrupt).toMatchObject({ choice: 'local', backupEpoch: 9, unreadable: expect.any(String) });
    expect(localContent(withLocal)).toBe('local session of epoch 3');
    const nothing = podStore('pod-b', 'eps');
    expect(await nothing.restore(key, 10)).toMatchObject({ choice: 'fresh', unreadable: expect.any(String) });
    expect(nothing.hasLocalSession()).toBe(false);

    // A real backup, read with another key.
    const key2 = await keySecret('zeta');
    await sessionSecret('zeta');
    await podStore('pod-a', 'zeta', { content: 'session of epoch 4' }).backup(key2, 4, allowed);
    const wrongKey = podStore('pod-b', 'zeta');
    const result = await wrongKey.restore(key, 5);
    expect(result).toMatchObject({ choice: 'fresh', backupEpoch: 4 });
    expect(result.unreadable).toMatch(/authentication/);
    expect(wrongKey.hasLocalSession()).toBe(false);

    // The same blob passed off as a newer epoch fails too (the epoch is authenticated with it).
    await annotate('zeta', { [SESSION_EPOCH_ANNOTATION]: '7' });
    const replayed = await podStore('pod-c', 'zeta').restore(key2, 8);
    expect(replayed).toMatchObject({ choice: 'fresh', backupEpoch: 7, unreadable: expect.any(String) });
    // With its true epoch it reads fine (the control).
    await annotate('zeta', { [SESSION_EPOCH_ANNOTATION]: '4' });
    const genuine = podStore('pod-d', 'zeta');
    expect(await genuine.restore(key2, 8)).toEqual({ choice: 'backup', backupEpoch: 4 });
    expect(localContent(genuine)).toBe('session of epoch 4');
  });
});
