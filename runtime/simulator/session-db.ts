/**
 * What a simulated client keeps in its database_directory: the auth key it logged in with, how far the
 * login got, and its proxy list. Like TDLib's binlog it lives in `td.binlog` and is encrypted with the
 * database_encryption_key (an empty key means TDLib's default "cucumber"), so a wrong key fails the same
 * way (401 "Wrong database encryption key") and backup/restore of the directory carries the session along.
 * Copying the directory copies the auth key: two live copies make the world kill it (AUTH_KEY_DUPLICATED).
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ensureDir, isErrno, writeFileAtomic } from './store/files.js';
import type { Json } from './protocol.js';

export const SESSION_FILE = 'td.binlog';
/**
 * Sends not finished yet, kept only with use_message_database (TDLib keeps them as SendMessage events in its
 * binlog); encrypted like td.binlog. A separate file so that a send costs a small write, not a rewrite of
 * the session.
 */
export const PENDING_FILE = 'td.pending';
const MAGIC = Buffer.from('TDSIM1\n');

export type AuthProgress =
  | { readonly step: 'wait_code'; readonly user_id: number; readonly phone: string }
  | { readonly step: 'wait_password'; readonly user_id: number }
  | { readonly step: 'ready'; readonly user_id: number; readonly is_bot: boolean };

export interface StoredProxy {
  readonly id: number;
  readonly server: string;
  readonly port: number;
  readonly type: Json;
  readonly enabled: boolean;
  readonly last_used_date: number;
  readonly comment: string;
}

export interface SessionData {
  readonly auth_key: string;
  readonly created_at: number;
  readonly auth?: AuthProgress;
  readonly proxies: readonly StoredProxy[];
  readonly next_proxy_id: number;
}

/** A send TDLib would re-send at the next start (what its SendMessageLogEvent keeps). */
export interface PendingSend {
  /** int64 as a decimal string; the resend carries the same one, so the server dedupes it. */
  readonly random_id: string;
  readonly chat_id: number;
  readonly text: { readonly text: string; readonly entities: readonly Json[] };
  readonly link_preview_options?: Json;
  /** When it was first sent (Unix seconds): older than 24 h at the restart, it is not re-sent. */
  readonly send_date: number;
}

export class WrongKeyError extends Error {}

function keyBytes(key: Buffer): Buffer {
  return key.length === 0 ? Buffer.from('cucumber') : key;
}

function derive(key: Buffer, salt: Buffer): Buffer {
  return createHash('sha256').update(salt).update(keyBytes(key)).digest();
}

export function newSession(): SessionData {
  return {
    auth_key: randomBytes(8).toString('hex'),
    created_at: Math.floor(Date.now() / 1000),
    proxies: [],
    // TDLib hands out 2 for the first proxy of a fresh database (measured on 1.8.67).
    next_proxy_id: 2,
  };
}

export function sessionPath(databaseDirectory: string): string {
  return join(databaseDirectory, SESSION_FILE);
}

function readEncrypted(path: string, key: Buffer): unknown {
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return undefined;
    throw error;
  }
  if (data.length < MAGIC.length + 44 || !data.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new WrongKeyError('not a simulator database');
  }
  const salt = data.subarray(MAGIC.length, MAGIC.length + 16);
  const iv = data.subarray(MAGIC.length + 16, MAGIC.length + 28);
  const tag = data.subarray(MAGIC.length + 28, MAGIC.length + 44);
  const body = data.subarray(MAGIC.length + 44);
  try {
    const decipher = createDecipheriv('aes-256-gcm', derive(key, salt), iv);
    decipher.setAuthTag(tag);
    const plain = Buffer.concat([decipher.update(body), decipher.final()]);
    return JSON.parse(plain.toString('utf8')) as unknown;
  } catch {
    throw new WrongKeyError('wrong key');
  }
}

function writeEncrypted(
  path: string,
  key: Buffer,
  value: unknown,
  durable: false | 'now' | 'background',
): void {
  const salt = randomBytes(16);
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', derive(key, salt), iv);
  const body = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final()]);
  writeFileAtomic(path, Buffer.concat([MAGIC, salt, iv, cipher.getAuthTag(), body]), durable);
}

/** Reads the session; undefined when the directory has none yet. Throws WrongKeyError on a wrong key. */
export function readSession(databaseDirectory: string, key: Buffer): SessionData | undefined {
  return readEncrypted(sessionPath(databaseDirectory), key) as SessionData | undefined;
}

export function writeSession(databaseDirectory: string, key: Buffer, session: SessionData): void {
  ensureDir(databaseDirectory);
  writeEncrypted(sessionPath(databaseDirectory), key, session, 'background');
}

/** Deletes what TDLib deletes on logOut/destroy or a lost authorization: the binlog and with it the sends. */
export function deleteSession(databaseDirectory: string): void {
  rmSync(sessionPath(databaseDirectory), { force: true });
  deletePendingSends(databaseDirectory);
}

export function pendingPath(databaseDirectory: string): string {
  return join(databaseDirectory, PENDING_FILE);
}

function isPendingSend(value: unknown): value is PendingSend {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.random_id === 'string' && typeof v.chat_id === 'number' && typeof v.send_date === 'number';
}

/** The sends remembered in the directory; [] when there are none (or the file is unreadable garbage). */
export function readPendingSends(databaseDirectory: string, key: Buffer): PendingSend[] {
  let value: unknown;
  try {
    value = readEncrypted(pendingPath(databaseDirectory), key);
  } catch (error) {
    if (error instanceof WrongKeyError) return [];
    throw error;
  }
  return Array.isArray(value) ? value.filter(isPendingSend) : [];
}

/**
 * Replaces the remembered sends. Not fsynced: what matters is surviving the death of the process (the
 * page cache keeps the write), as TDLib's binlog does between its own periodic flushes.
 */
export function writePendingSends(
  databaseDirectory: string,
  key: Buffer,
  sends: readonly PendingSend[],
): void {
  if (sends.length === 0) return deletePendingSends(databaseDirectory);
  ensureDir(databaseDirectory);
  writeEncrypted(pendingPath(databaseDirectory), key, sends, false);
}

export function deletePendingSends(databaseDirectory: string): void {
  rmSync(pendingPath(databaseDirectory), { force: true });
}
