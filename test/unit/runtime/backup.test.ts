import { randomBytes } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCipheriv } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import {
  MAX_BACKUP_BYTES,
  SESSION_SECRET_KEY,
  SessionBackupError,
  packSession,
  packSessionInBackground,
  unpackSession,
} from '../../../runtime/session/backup.js';

function expectBackupError(fn: () => unknown, code: SessionBackupError['code'], message?: RegExp): void {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(SessionBackupError);
  const error = thrown as SessionBackupError;
  expect(error.code).toBe(code);
  if (message) expect(error.message).toMatch(message);
}

/** A blob that authenticates under `key` but carries a hand-made payload (what an attacker with the key could send). */
function forge(key: Buffer, payload: Buffer): Buffer {
  const header = Buffer.from([...Buffer.from('TGSB'), 1]);
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(header);
  const ciphertext = Buffer.concat([cipher.update(gzipSync(payload)), cipher.final()]);
  return Buffer.concat([header, iv, cipher.getAuthTag(), ciphertext]);
}

function entry(name: string, data: Buffer): Buffer {
  const nameBytes = Buffer.from(name);
  const head = Buffer.alloc(2 + nameBytes.length + 4);
  head.writeUInt16BE(nameBytes.length, 0);
  nameBytes.copy(head, 2);
  head.writeUInt32BE(data.length, 2 + nameBytes.length);
  return Buffer.concat([head, data]);
}

const ctx = { account: 'ns/acct', epoch: 4 };

describe('session backup codec', () => {
  let root: string;
  let src: string;
  const key = randomBytes(32);

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'backup-test-'));
    src = join(root, 'src');
    mkdirSync(src);
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('exports the Secret data key and the size limit', () => {
    expect(SESSION_SECRET_KEY).toBe('session');
    expect(MAX_BACKUP_BYTES).toBe(1_000_000);
  });

  it('round-trips binary and text files, including files in subdirectories, and skips missing ones', () => {
    const binlog = randomBytes(50_000);
    const text = 'version=1\nauth_key=ok\n\u00e9\u4e2d\n';
    writeFileSync(join(src, 'td.binlog'), binlog);
    writeFileSync(join(src, 'notes.txt'), text, 'utf8');
    mkdirSync(join(src, 'db'));
    writeFileSync(join(src, 'db', 'empty'), Buffer.alloc(0));

    const blob = packSession(src, ['td.binlog', 'notes.txt', 'db/empty', 'missing.bin'], key, ctx);
    expect(blob.subarray(0, 4).toString('ascii')).toBe('TGSB');
    // Encrypted: the plaintext never shows in the blob.
    expect(blob.includes(Buffer.from('auth_key'))).toBe(false);

    const dest = join(root, 'restore', 'nested');
    const restored = unpackSession(blob, key, dest, ctx);
    expect(restored).toEqual(['td.binlog', 'notes.txt', 'db/empty']);
    expect(readFileSync(join(dest, 'td.binlog')).equals(binlog)).toBe(true);
    expect(readFileSync(join(dest, 'notes.txt'), 'utf8')).toBe(text);
    expect(readFileSync(join(dest, 'db', 'empty'))).toHaveLength(0);
    expect(existsSync(join(dest, 'missing.bin'))).toBe(false);
    // No temporary files left behind.
    expect(readdirSync(dest).sort()).toEqual(['db', 'notes.txt', 'td.binlog']);
  });

  it('compresses: a large compressible binlog packs far below its size', () => {
    writeFileSync(join(src, 'td.binlog'), Buffer.alloc(3_000_000, 'ab'));
    const blob = packSession(src, ['td.binlog'], key, ctx);
    expect(blob.length).toBeLessThan(100_000);
    expect(unpackSession(blob, key, join(root, 'out'), ctx)).toEqual(['td.binlog']);
  });

  it('packs the same in the background (compression off the event loop) as in line', async () => {
    writeFileSync(join(src, 'td.binlog'), Buffer.alloc(300_000, 'xy'));
    writeFileSync(join(src, 'notes.txt'), 'notes');
    const blob = await packSessionInBackground(src, ['td.binlog', 'notes.txt', 'missing.bin'], key, ctx);
    expect(blob.length).toBeLessThan(10_000);
    const dest = join(root, 'background');
    expect(unpackSession(blob, key, dest, ctx)).toEqual(['td.binlog', 'notes.txt']);
    expect(readFileSync(join(dest, 'td.binlog')).equals(readFileSync(join(src, 'td.binlog')))).toBe(true);
    await expect(packSessionInBackground(src, [], Buffer.alloc(16), ctx)).rejects.toThrow(/32 bytes/);
  });

  it('uses a fresh IV per pack: the same files never give the same blob', () => {
    writeFileSync(join(src, 'td.binlog'), 'same');
    expect(packSession(src, ['td.binlog'], key, ctx).equals(packSession(src, ['td.binlog'], key, ctx))).toBe(
      false,
    );
  });

  it('replaces existing files on restore', () => {
    writeFileSync(join(src, 'td.binlog'), 'new contents');
    const dest = join(root, 'dest');
    mkdirSync(dest);
    writeFileSync(join(dest, 'td.binlog'), 'old contents that are longer');
    unpackSession(packSession(src, ['td.binlog'], key, ctx), key, dest, ctx);
    expect(readFileSync(join(dest, 'td.binlog'), 'utf8')).toBe('new contents');
  });

  it('round-trips an empty file list to nothing (and creates the directory)', () => {
    const blob = packSession(src, [], key, ctx);
    const dest = join(root, 'empty-restore');
    expect(unpackSession(blob, key, dest, ctx)).toEqual([]);
    expect(readdirSync(dest)).toEqual([]);
  });

  it('refuses a wrong key with a typed error and writes nothing', () => {
    writeFileSync(join(src, 'td.binlog'), 'secret session');
    const blob = packSession(src, ['td.binlog'], key, ctx);
    const dest = join(root, 'wrong-key');
    expectBackupError(
      () => unpackSession(blob, randomBytes(32), dest, ctx),
      'AuthenticationFailed',
      /wrong key|modified/,
    );
    expect(existsSync(join(dest, 'td.binlog'))).toBe(false);
  });

  it('detects any tampered byte: header, IV, tag and ciphertext', () => {
    writeFileSync(join(src, 'td.binlog'), randomBytes(2000));
    const blob = packSession(src, ['td.binlog'], key, ctx);
    const dest = join(root, 'tampered');
    // Byte 4 is the version: changing it is reported as an unsupported version, never decrypted as garbage.
    for (const index of [5, 12, 20, 30, 40, blob.length - 1]) {
      const copy = Buffer.from(blob);
      copy[index] = (copy[index] ?? 0) ^ 0x01;
      expectBackupError(() => unpackSession(copy, key, dest, ctx), 'AuthenticationFailed');
    }
    const magic = Buffer.from(blob);
    magic[0] = 0x00;
    expectBackupError(() => unpackSession(magic, key, dest, ctx), 'Malformed', /magic/);
    const version = Buffer.from(blob);
    version[4] = 3;
    expectBackupError(() => unpackSession(version, key, dest, ctx), 'UnsupportedVersion', /version 3/);
    expectBackupError(() => unpackSession(blob.subarray(0, 20), key, dest, ctx), 'Malformed', /too short/);
    expect(existsSync(join(dest, 'td.binlog'))).toBe(false);
  });

  it('refuses keys that are not 32 bytes', () => {
    expectBackupError(() => packSession(src, [], Buffer.alloc(16), ctx), 'InvalidKey', /32 bytes, got 16/);
    const blob = packSession(src, [], key, ctx);
    expectBackupError(() => unpackSession(blob, Buffer.alloc(31), root, ctx), 'InvalidKey');
  });

  it('throws TooLarge naming the sizes when the blob would not fit a Secret', () => {
    writeFileSync(join(src, 'td.binlog'), randomBytes(MAX_BACKUP_BYTES + 10)); // random data does not compress
    expectBackupError(
      () => packSession(src, ['td.binlog'], key, ctx),
      'TooLarge',
      /session backup is \d+ bytes \(1 files, 1000010 bytes before compression\), over the limit of 1000000 bytes/,
    );
  });

  it('refuses names that escape the directory, when packing', () => {
    for (const name of [
      '../etc/passwd',
      '/etc/passwd',
      'a/../../b',
      'db/./x',
      'a//b',
      '',
      'C:\\x',
      'a\\..\\b',
    ]) {
      expectBackupError(() => packSession(src, [name], key, ctx), 'UnsafePath');
    }
  });

  it('refuses blobs whose names escape the directory, and writes none of their files', () => {
    const dest = join(root, 'jail');
    for (const name of ['../escaped', '/tmp/escaped-abs', 'ok/../../escaped', '.']) {
      const count = Buffer.alloc(4);
      count.writeUInt32BE(2);
      const payload = Buffer.concat([
        count,
        entry('fine.txt', Buffer.from('x')),
        entry(name, Buffer.from('y')),
      ]);
      expectBackupError(() => unpackSession(forge(key, payload), key, dest, ctx), 'UnsafePath');
    }
    expect(existsSync(join(dest, 'fine.txt'))).toBe(false);
    expect(existsSync(join(root, 'escaped'))).toBe(false);
  });

  it('refuses an authenticated but malformed payload', () => {
    const count = Buffer.alloc(4);
    count.writeUInt32BE(3);
    expectBackupError(
      () => unpackSession(forge(key, Buffer.concat([count, entry('a', Buffer.from('x'))])), key, root, ctx),
      'Malformed',
      /truncated/,
    );
  });

  it('binds a backup to its account and epoch: another account, or an older blob claiming a newer epoch, fails (F9)', () => {
    writeFileSync(join(src, 'td.binlog'), randomBytes(1000));
    const blob = packSession(src, ['td.binlog'], key, ctx);
    const dest = join(root, 'bound');
    expectBackupError(
      () => unpackSession(blob, key, dest, { account: 'ns/other', epoch: 4 }),
      'AuthenticationFailed',
    );
    expectBackupError(() => unpackSession(blob, key, dest, { ...ctx, epoch: 5 }), 'AuthenticationFailed');
    expect(existsSync(join(dest, 'td.binlog'))).toBe(false);
    expect(unpackSession(blob, key, dest, ctx)).toEqual(['td.binlog']);
  });

  it('still reads version-1 backups (raw key, header-only AAD) written before the epoch existed', () => {
    const count = Buffer.alloc(4);
    count.writeUInt32BE(1);
    const legacy = forge(key, Buffer.concat([count, entry('td.binlog', Buffer.from('old'))]));
    const dest = join(root, 'legacy');
    expect(unpackSession(legacy, key, dest, ctx)).toEqual(['td.binlog']);
    expect(readFileSync(join(dest, 'td.binlog'), 'utf8')).toBe('old');
  });
});
