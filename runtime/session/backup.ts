/**
 * The session backup codec: the few files that spare a new login (TDLib's binlog with the auth key) packed
 * into one encrypted, compressed blob that fits a Secret, and restored from it onto any pod.
 *
 * Blob layout (all integers big-endian):
 *
 *   magic "TGSB" (4) | version (1) | iv (12) | auth tag (16) | ciphertext
 *
 * ciphertext = AES-256-GCM(backup key, iv, gzip(payload)). Version 2 (written now): the backup key is
 * HKDF-SHA256 of the account key (the raw key stays TDLib's database key: one secret, two uses, two keys),
 * and the additional authenticated data is magic + version + the context: the account ("namespace/name")
 * and the fencing epoch of the writer. A blob replayed onto another account, or an older blob presented
 * with a newer epoch, fails authentication. Version 1 (read only): the raw key, magic + version as AAD.
 * payload is
 *
 *   file count (u32) | per file: name length (u16) | name (UTF-8) | data length (u32) | data
 *
 * Pure: node:fs, node:zlib and node:crypto only; nothing here knows about Kubernetes.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import { constants as zlibConstants, gunzipSync, gzip, gzipSync } from 'node:zlib';
import { SESSION_KEY_BYTES, SESSION_SECRET_BACKUP_FIELD } from '../../crds/naming.js';

/** The largest blob packSession returns: a Secret holds at most 1 MiB of data, keys and all. */
export const MAX_BACKUP_BYTES = 1_000_000;

/** The data key of the blob in the session Secret. */
export const SESSION_SECRET_KEY = SESSION_SECRET_BACKUP_FIELD;
export { SESSION_KEY_BYTES };

const MAGIC = Buffer.from('TGSB', 'ascii');
const VERSION = 2;
const LEGACY_VERSION = 1;
const HKDF_INFO = Buffer.from('tdlib-operator session backup v2', 'utf8');

/** What a backup is bound to: the account it belongs to and the fencing epoch of the holder that wrote it. */
export interface BackupContext {
  /** "namespace/name" of the TelegramAccount. */
  readonly account: string;
  /** The account Lease's epoch (leaseTransitions) when the writer held it. */
  readonly epoch: number;
}

function contextBytes(context: BackupContext): Buffer {
  return Buffer.from(`${context.account}|${context.epoch}`, 'utf8');
}

function backupKey(key: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), HKDF_INFO, 32));
}
const IV_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = MAGIC.length + 1;
const MIN_BLOB_BYTES = HEADER_BYTES + IV_BYTES + TAG_BYTES;
/** A decompressed payload larger than this is refused (a guard, far above any real binlog). */
const MAX_PAYLOAD_BYTES = 64 * 1024 * 1024;
const MAX_NAME_BYTES = 1024;

export type SessionBackupErrorCode =
  /** The key is not 32 bytes. */
  | 'InvalidKey'
  /** The packed blob would not fit a Secret. */
  | 'TooLarge'
  /** Not a session backup (bad magic, truncated, malformed payload). */
  | 'Malformed'
  /** A backup of a format version this code does not read. */
  | 'UnsupportedVersion'
  /** GCM authentication failed: wrong key, or the blob was changed. */
  | 'AuthenticationFailed'
  /** A file name that is absolute or leaves the directory. */
  | 'UnsafePath'
  /** Reading or writing a file failed. */
  | 'Io';

export class SessionBackupError extends Error {
  override readonly name = 'SessionBackupError';

  constructor(
    readonly code: SessionBackupErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * Reads `files` (relative to `dir`) into one encrypted, compressed blob. Files that do not exist are
 * skipped; any other read error throws. Throws SessionBackupError('TooLarge') naming the sizes when the
 * blob would exceed MAX_BACKUP_BYTES.
 */
export function packSession(
  dir: string,
  files: readonly string[],
  key: Buffer,
  context: BackupContext,
): Buffer {
  checkKey(key);
  const entries = readEntries(dir, files);
  return seal(entries, gzipSync(encodePayload(entries), GZIP_OPTIONS), key, context);
}

/**
 * packSession with the compression on libuv's thread pool: the runtime backs up many sessions at once (a
 * thousand accounts logging in), and compressing each on the event loop stalled it (measured: 63 ms of
 * packSession in one 207 ms stretch). Same blob format; the files are small and read synchronously.
 */
export async function packSessionInBackground(
  dir: string,
  files: readonly string[],
  key: Buffer,
  context: BackupContext,
): Promise<Buffer> {
  checkKey(key);
  const entries = readEntries(dir, files);
  return seal(entries, await gzipAsync(encodePayload(entries), GZIP_OPTIONS), key, context);
}

const GZIP_OPTIONS = { level: zlibConstants.Z_BEST_COMPRESSION };
const gzipAsync = promisify(gzip);

type Entry = { name: string; data: Buffer };

function readEntries(dir: string, files: readonly string[]): Entry[] {
  const entries: Entry[] = [];
  const seen = new Set<string>();
  for (const raw of files) {
    const name = safeName(raw);
    if (seen.has(name)) continue;
    seen.add(name);
    const path = join(dir, name);
    let data: Buffer;
    try {
      data = readFileSync(path);
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') continue;
      throw new SessionBackupError('Io', `cannot read session file ${name}: ${errnoText(error)}`, {
        cause: error,
      });
    }
    entries.push({ name, data });
  }
  return entries;
}

function seal(entries: readonly Entry[], compressed: Buffer, key: Buffer, context: BackupContext): Buffer {
  const iv = randomBytes(IV_BYTES);
  const header = Buffer.concat([MAGIC, Buffer.from([VERSION])]);
  const cipher = createCipheriv('aes-256-gcm', backupKey(key), iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.concat([header, contextBytes(context)]));
  const ciphertext = Buffer.concat([cipher.update(compressed), cipher.final()]);
  const blob = Buffer.concat([header, iv, cipher.getAuthTag(), ciphertext]);

  if (blob.length > MAX_BACKUP_BYTES) {
    const rawBytes = entries.reduce((sum, e) => sum + e.data.length, 0);
    throw new SessionBackupError(
      'TooLarge',
      `session backup is ${blob.length} bytes (${entries.length} files, ${rawBytes} bytes before ` +
        `compression), over the limit of ${MAX_BACKUP_BYTES} bytes that fits a Secret`,
    );
  }
  return blob;
}

/**
 * Verifies and decrypts a blob made by packSession and writes its files into `dir` (created if missing),
 * each atomically (temporary file, fsync, rename). Nothing is written unless the whole blob authenticates
 * and every name stays inside `dir`. Returns the restored names, in the order they were packed.
 */
export function unpackSession(blob: Buffer, key: Buffer, dir: string, context: BackupContext): string[] {
  checkKey(key);
  const entries = decodePayload(decrypt(blob, key, context));
  for (const entry of entries) safeName(entry.name);

  const root = resolve(dir);
  try {
    mkdirSync(root, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw new SessionBackupError('Io', `cannot create session directory: ${errnoText(error)}`, {
      cause: error,
    });
  }
  const restored: string[] = [];
  for (const { name, data } of entries) {
    const target = resolve(root, name);
    const rel = relative(root, target);
    if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) {
      throw new SessionBackupError(
        'UnsafePath',
        `session file name ${JSON.stringify(name)} leaves the directory`,
      );
    }
    writeAtomically(target, data, name);
    restored.push(name);
  }
  return restored;
}

// ---- internals --------------------------------------------------------------------------------------

function checkKey(key: Buffer): void {
  if (!Buffer.isBuffer(key) || key.length !== SESSION_KEY_BYTES) {
    throw new SessionBackupError(
      'InvalidKey',
      `session backup key must be ${SESSION_KEY_BYTES} bytes, got ${Buffer.isBuffer(key) ? key.length : typeof key}`,
    );
  }
}

/**
 * Normalizes a relative file name ('/'-separated) and refuses anything that could leave the directory:
 * absolute paths, drive letters, '..' or '.' segments, empty segments, backslashes and NUL.
 */
function safeName(name: string): string {
  const unsafe = (why: string) =>
    new SessionBackupError('UnsafePath', `session file name ${JSON.stringify(name)} is not allowed: ${why}`);
  if (typeof name !== 'string' || name.length === 0) throw unsafe('empty');
  if (name.includes('\0')) throw unsafe('contains NUL');
  if (name.includes('\\')) throw unsafe('contains a backslash');
  if (name.startsWith('/') || isAbsolute(name) || /^[A-Za-z]:/.test(name)) throw unsafe('absolute path');
  const segments = name.split('/');
  for (const segment of segments) {
    if (segment === '..') throw unsafe("'..' leaves the directory");
    if (segment === '' || segment === '.') throw unsafe("empty or '.' path segment");
  }
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) throw unsafe(`longer than ${MAX_NAME_BYTES} bytes`);
  return segments.join('/');
}

function encodePayload(entries: ReadonlyArray<{ name: string; data: Buffer }>): Buffer {
  const parts: Buffer[] = [];
  const count = Buffer.alloc(4);
  count.writeUInt32BE(entries.length);
  parts.push(count);
  for (const { name, data } of entries) {
    const nameBytes = Buffer.from(name, 'utf8');
    const head = Buffer.alloc(2 + nameBytes.length + 4);
    head.writeUInt16BE(nameBytes.length, 0);
    nameBytes.copy(head, 2);
    head.writeUInt32BE(data.length, 2 + nameBytes.length);
    parts.push(head, data);
  }
  return Buffer.concat(parts);
}

function decodePayload(payload: Buffer): Array<{ name: string; data: Buffer }> {
  const malformed = (what: string) =>
    new SessionBackupError('Malformed', `session backup payload is malformed: ${what}`);
  if (payload.length < 4) throw malformed('truncated file count');
  const count = payload.readUInt32BE(0);
  let offset = 4;
  const entries: Array<{ name: string; data: Buffer }> = [];
  for (let i = 0; i < count; i++) {
    if (offset + 2 > payload.length) throw malformed(`truncated name length of file ${i}`);
    const nameLength = payload.readUInt16BE(offset);
    offset += 2;
    if (offset + nameLength + 4 > payload.length) throw malformed(`truncated name of file ${i}`);
    const name = payload.subarray(offset, offset + nameLength).toString('utf8');
    offset += nameLength;
    const dataLength = payload.readUInt32BE(offset);
    offset += 4;
    if (offset + dataLength > payload.length) throw malformed(`truncated data of file ${i}`);
    entries.push({ name, data: Buffer.from(payload.subarray(offset, offset + dataLength)) });
    offset += dataLength;
  }
  if (offset !== payload.length) throw malformed(`${payload.length - offset} trailing bytes`);
  return entries;
}

function decrypt(blob: Buffer, key: Buffer, context: BackupContext): Buffer {
  if (!Buffer.isBuffer(blob) || blob.length < MIN_BLOB_BYTES) {
    throw new SessionBackupError('Malformed', 'not a session backup: too short');
  }
  if (!blob.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new SessionBackupError('Malformed', 'not a session backup: bad magic bytes');
  }
  const version = blob[MAGIC.length];
  if (version !== VERSION && version !== LEGACY_VERSION) {
    throw new SessionBackupError(
      'UnsupportedVersion',
      `session backup has format version ${String(version)}; this runtime reads versions ${LEGACY_VERSION} and ${VERSION}`,
    );
  }
  const header = blob.subarray(0, HEADER_BYTES);
  const iv = blob.subarray(HEADER_BYTES, HEADER_BYTES + IV_BYTES);
  const tag = blob.subarray(HEADER_BYTES + IV_BYTES, MIN_BLOB_BYTES);
  const ciphertext = blob.subarray(MIN_BLOB_BYTES);
  let compressed: Buffer;
  try {
    const legacy = version === LEGACY_VERSION;
    const decipher = createDecipheriv('aes-256-gcm', legacy ? key : backupKey(key), iv, {
      authTagLength: TAG_BYTES,
    });
    decipher.setAAD(legacy ? header : Buffer.concat([header, contextBytes(context)]));
    decipher.setAuthTag(tag);
    compressed = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  } catch (error) {
    throw new SessionBackupError(
      'AuthenticationFailed',
      "session backup failed authentication: wrong key, another account's or epoch's backup, or the backup was modified or corrupted",
      { cause: error },
    );
  }
  try {
    return gunzipSync(compressed, { maxOutputLength: MAX_PAYLOAD_BYTES });
  } catch (error) {
    // Authenticated but not gzip: written by something other than packSession with this key.
    throw new SessionBackupError(
      'Malformed',
      `session backup payload does not decompress: ${errnoText(error)}`,
      {
        cause: error,
      },
    );
  }
}

function writeAtomically(target: string, data: Buffer, name: string): void {
  const tmp = `${target}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    mkdirSync(dirname(target), { recursive: true, mode: 0o700 });
    if (existsAsDirectory(target)) {
      throw new SessionBackupError('Io', `cannot restore session file ${name}: a directory has that name`);
    }
    const fd = openSync(tmp, 'wx', 0o600);
    try {
      let written = 0;
      while (written < data.length) written += writeSync(fd, data, written, data.length - written);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, target);
  } catch (error) {
    rmSync(tmp, { force: true });
    if (error instanceof SessionBackupError) throw error;
    throw new SessionBackupError('Io', `cannot restore session file ${name}: ${errnoText(error)}`, {
      cause: error,
    });
  }
}

function existsAsDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

export function errnoCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

function errnoText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
