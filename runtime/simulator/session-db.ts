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

/** Reads the session; undefined when the directory has none yet. Throws WrongKeyError on a wrong key. */
export function readSession(databaseDirectory: string, key: Buffer): SessionData | undefined {
  let data: Buffer;
  try {
    data = readFileSync(sessionPath(databaseDirectory));
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
    return JSON.parse(plain.toString('utf8')) as SessionData;
  } catch {
    throw new WrongKeyError('wrong key');
  }
}

export function writeSession(databaseDirectory: string, key: Buffer, session: SessionData): void {
  ensureDir(databaseDirectory);
  const salt = randomBytes(16);
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', derive(key, salt), iv);
  const body = Buffer.concat([cipher.update(JSON.stringify(session), 'utf8'), cipher.final()]);
  writeFileAtomic(
    sessionPath(databaseDirectory),
    Buffer.concat([MAGIC, salt, iv, cipher.getAuthTag(), body]),
    true,
  );
}

export function deleteSession(databaseDirectory: string): void {
  rmSync(sessionPath(databaseDirectory), { force: true });
}
