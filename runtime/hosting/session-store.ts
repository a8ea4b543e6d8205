/**
 * Where an account's session lives: TDLib's database on this pod's volume, and the encrypted backup in the
 * account's session Secret. Which copy is newer is decided by fencing epoch (the account Lease's
 * leaseTransitions when its holder ran TDLib on it), never by comparing clocks of different pods.
 *
 * A backup is written only by the current holder, with a valid fence, and with two preconditions: the
 * Secret's epoch is not newer than ours, and the write carries the resourceVersion that check was made on.
 */
import { createHmac } from 'node:crypto';
import { existsSync, renameSync, rmSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GROUP, sessionSecretName } from '../../crds/index.js';
import type { RestClient } from '../../operator/kube/client.js';
import { isConflict, isNotFound } from '../../operator/kube/errors.js';
import { Resources, type ApiObject } from '../../operator/kube/resource.js';
import {
  SESSION_SECRET_KEY,
  errnoCode,
  packSessionInBackground,
  unpackSession,
  type BackupContext,
} from '../session/backup.js';
import { UPDATES_STATE_FILE } from '../updates/account-updates.js';

type SecretObject = ApiObject & { data?: Record<string, string>; type?: string };

/** The epoch of the holder that wrote a backup (an annotation of the session Secret). */
export const SESSION_EPOCH_ANNOTATION = `${GROUP}/session-epoch`;
/** When a backup was written (informational: status.session.lastBackupTime). */
export const BACKUP_TIME_ANNOTATION = `${GROUP}/backup-time`;
/** TDLib keeps the session (auth key, DC options) in td.binlog; the simulator mirrors that file. */
export const SESSION_FILES = ['td.binlog'];
/**
 * What the backup carries: the session, and the updates' marks (a few bytes per chat) so the pod that
 * starts the account next refills from where this one stopped.
 */
const BACKUP_FILES = [...SESSION_FILES, UPDATES_STATE_FILE];
/** In the database directory: the epoch under which TDLib last ran on these files. */
const LOCAL_EPOCH_MARK = '.session-epoch';
/** In the database directory: which key the files are encrypted with (a fingerprint, never the key). */
const LOCAL_KEY_MARK = '.session-key';

/**
 * Identifies a key without revealing it. The same key means the same session lineage (an account
 * recreated after KeepSession finds its key Secret and its database); another key means another account
 * that had this name (deleted with LogOut and made again), whose database TDLib could not open.
 */
export function keyFingerprint(key: Buffer): string {
  return createHmac('sha256', key).update('tdlib-operator local session').digest('hex').slice(0, 32);
}

export type RestoreChoice = 'backup' | 'local' | 'fresh';

/**
 * Pure: which session to start from. The backup wins when this volume has none, or when it was written
 * under a later epoch than the one TDLib last ran on these files here (someone else ran the session since).
 */
export function chooseSession(
  local: { hasFiles: boolean; epoch?: number },
  backup: { present: boolean; epoch?: number },
): RestoreChoice {
  if (backup.present && (!local.hasFiles || (backup.epoch ?? -1) > (local.epoch ?? -1))) return 'backup';
  return local.hasFiles ? 'local' : 'fresh';
}

export function parseEpoch(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d{1,15}$/.test(value)) return undefined;
  return Number(value);
}

export interface SessionStoreOptions {
  rest: RestClient;
  namespace: string;
  account: string;
  dataDir: string;
}

export interface RestoreResult {
  choice: RestoreChoice;
  /** The backup's epoch, if there is a backup. */
  backupEpoch?: number;
  /** Set when a backup exists but cannot be used (wrong key, corrupt): the local session or a new login follows. */
  unreadable?: string;
}

/** A backup refused because a newer holder already wrote one: this process is stale for this account. */
export class StaleBackupError extends Error {
  override readonly name = 'StaleBackupError';
}

export class SessionStore {
  /**
   * The session Secret as this store last read or wrote it, without the backup's blob (memory: one per
   * hosted account). The next backup decides on it and sends it as its precondition instead of reading
   * first: if anyone changed the Secret since, the write is refused (409) and that attempt reads afresh.
   */
  private lastSeen: SecretObject | undefined;

  constructor(private readonly options: SessionStoreOptions) {}

  private remember(secret: SecretObject | undefined): void {
    if (!secret?.data?.[SESSION_SECRET_KEY]) {
      this.lastSeen = secret;
      return;
    }
    const data = { ...secret.data };
    delete data[SESSION_SECRET_KEY];
    this.lastSeen = { ...secret, data };
  }

  get secretName(): string {
    return sessionSecretName(this.options.account);
  }

  get accountDir(): string {
    return join(this.options.dataDir, this.options.namespace, this.options.account);
  }

  get databaseDir(): string {
    return join(this.accountDir, 'db');
  }

  get filesDir(): string {
    return join(this.accountDir, 'files');
  }

  hasLocalSession(): boolean {
    return SESSION_FILES.some((f) => existsSync(join(this.databaseDir, f)));
  }

  private context(epoch: number): BackupContext {
    return { account: `${this.options.namespace}/${this.options.account}`, epoch };
  }

  /** A mark file's text; undefined when there is none. */
  private async readMark(name: string): Promise<string | undefined> {
    try {
      return (await readFile(join(this.databaseDir, name), 'utf8')).trim();
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return undefined;
      throw error;
    }
  }

  /**
   * Brings the newer session onto this volume and marks it as run under `epoch` (TDLib is about to change
   * the files). A missing session Secret is "no backup", never an error. `read` is the session Secret as
   * the caller just read it (for its key, under the same fence); without it, it is read here.
   */
  async restore(
    key: Buffer,
    epoch: number,
    signal?: AbortSignal,
    read?: { secret: SecretObject | undefined },
  ): Promise<RestoreResult> {
    const secret = read ? read.secret : await this.readSecret(signal);
    this.remember(secret);
    const blob = secret?.data?.[SESSION_SECRET_KEY];
    const backupEpoch = parseEpoch(secret?.metadata?.annotations?.[SESSION_EPOCH_ANNOTATION]);
    const fingerprint = keyFingerprint(key);
    // Asynchronous file calls: a thousand accounts start together, and these run on libuv's threads
    // instead of one after another on the event loop.
    const localKey = await this.readMark(LOCAL_KEY_MARK);
    // Files without the mark predate it: kept (their key was the only one the account ever had then).
    if (localKey !== undefined && localKey !== fingerprint) {
      await rm(this.databaseDir, { recursive: true, force: true });
      await rm(this.filesDir, { recursive: true, force: true });
    }
    const choice = chooseSession(
      { hasFiles: this.hasLocalSession(), epoch: parseEpoch(await this.readMark(LOCAL_EPOCH_MARK)) },
      { present: Boolean(blob), epoch: backupEpoch },
    );
    let result: RestoreResult = { choice, backupEpoch };
    if (choice === 'backup' && blob) {
      try {
        unpackSession(Buffer.from(blob, 'base64'), key, this.databaseDir, this.context(backupEpoch ?? 0));
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        result = {
          choice: this.hasLocalSession() ? 'local' : 'fresh',
          backupEpoch,
          unreadable: reason,
        };
      }
    }
    await mkdir(this.databaseDir, { recursive: true, mode: 0o700 });
    await writeFile(join(this.databaseDir, LOCAL_EPOCH_MARK), String(epoch));
    await writeFile(join(this.databaseDir, LOCAL_KEY_MARK), fingerprint);
    return result;
  }

  /**
   * Writes the session files as the backup of `epoch`. `check` runs right before the write is sent (the
   * session fence). Throws StaleBackupError when the Secret already holds a backup of a later epoch.
   * Returns the backup time, or undefined when there is no session to back up.
   */
  async backup(
    key: Buffer,
    epoch: number,
    check: () => void,
    signal?: AbortSignal,
  ): Promise<string | undefined> {
    if (!this.hasLocalSession()) return undefined;
    const blob = (
      await packSessionInBackground(this.databaseDir, BACKUP_FILES, key, this.context(epoch))
    ).toString('base64');
    for (let reads = 0; reads < 3;) {
      const remembered = this.lastSeen;
      this.lastSeen = undefined;
      if (!remembered) reads++;
      const secret =
        remembered ??
        (await this.options.rest.get<SecretObject>(
          Resources.Secret,
          this.options.namespace,
          this.secretName,
          { signal },
        ));
      const stored = parseEpoch(secret.metadata?.annotations?.[SESSION_EPOCH_ANNOTATION]);
      // A refusal is decided on what the Secret holds now, never on what this store remembers of it.
      if (stored !== undefined && stored > epoch && remembered) continue;
      if (stored !== undefined && stored > epoch)
        throw new StaleBackupError(
          `the session Secret ${this.secretName} holds a backup of epoch ${stored}, newer than this holder's ${epoch}`,
        );
      const at = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
      check();
      try {
        const written = await this.options.rest.replace(
          Resources.Secret,
          {
            ...secret,
            metadata: {
              ...secret.metadata,
              annotations: {
                ...(secret.metadata?.annotations ?? {}),
                [SESSION_EPOCH_ANNOTATION]: String(epoch),
                [BACKUP_TIME_ANNOTATION]: at,
              },
            },
            data: { ...(secret.data ?? {}), [SESSION_SECRET_KEY]: blob },
          } as SecretObject,
          { signal },
        );
        this.remember(written);
        return at;
      } catch (error) {
        if (!isConflict(error)) throw error;
      }
    }
    throw new Error(
      `the session Secret ${this.secretName} kept changing while it was written; retrying later`,
    );
  }

  /**
   * Drops the backed-up session (Telegram ended it: its auth key is dead), fenced like backup(): the next
   * start logs in anew instead of restoring a key that is refused at once. The Secret and its epoch stay.
   */
  async discardBackup(epoch: number, check: () => void, signal?: AbortSignal): Promise<void> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const secret = await this.readSecret(signal);
      if (!secret) return;
      if (!secret.data?.[SESSION_SECRET_KEY]) return;
      const stored = parseEpoch(secret.metadata?.annotations?.[SESSION_EPOCH_ANNOTATION]);
      if (stored !== undefined && stored > epoch)
        throw new StaleBackupError(
          `the session Secret ${this.secretName} holds a backup of epoch ${stored}, newer than this holder's ${epoch}`,
        );
      const data = { ...secret.data };
      delete data[SESSION_SECRET_KEY];
      check();
      try {
        this.remember(
          await this.options.rest.replace(Resources.Secret, { ...secret, data } as SecretObject, {
            signal,
          }),
        );
        return;
      } catch (error) {
        if (!isConflict(error)) throw error;
      }
    }
    throw new Error(`the session Secret ${this.secretName} kept changing while its backup was dropped`);
  }

  /** The newest backup's epoch (undefined: none), e.g. to keep the Lease's epoch ahead of it. */
  async backupEpoch(signal?: AbortSignal): Promise<number | undefined> {
    const secret = await this.readSecret(signal);
    return secret?.data?.[SESSION_SECRET_KEY]
      ? parseEpoch(secret.metadata?.annotations?.[SESSION_EPOCH_ANNOTATION])
      : undefined;
  }

  /** The session Secret, or undefined when it does not exist. */
  private async readSecret(signal?: AbortSignal): Promise<SecretObject | undefined> {
    try {
      return await this.options.rest.get<SecretObject>(
        Resources.Secret,
        this.options.namespace,
        this.secretName,
        { signal },
      );
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  /** Moves the local database out of the way (kept for a person to inspect), so the next start is fresh. */
  setAsideLocal(why: string): void {
    if (!existsSync(this.databaseDir)) return;
    renameSync(this.databaseDir, join(this.accountDir, `db.${why}-${Date.now()}`));
  }

  /** LogOut: the session is over; nothing of it stays on this volume. */
  removeLocal(): void {
    rmSync(this.accountDir, { recursive: true, force: true });
  }
}
