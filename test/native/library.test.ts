import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Writable } from 'node:stream';
import { createLogger } from '../../operator/kube/logging.js';
import { resolveAddonPath, resolveLibraryPath } from '../../native/index.js';
import { NativeBackend } from '../../runtime/tdlib/native-backend.js';
import { parseTdLogLine, tdLogHandler } from '../../runtime/tdlib/td-log.js';
import { compileFixture, runNode, type CompiledFixture } from './helpers/child.js';
import { tempDir, type TempDir } from './helpers/tdlib.js';

const prebuiltLibrary = path.join(
  path.dirname(createRequire(import.meta.url).resolve('@prebuilt-tdlib/linux-x64-glibc/package.json')),
  'libtdjson.so',
);

interface LoadOutcome {
  readonly ok: boolean;
  readonly message?: string;
  readonly libraryPath?: string;
  readonly version?: { readonly value?: string };
}

describe('loading libtdjson', () => {
  let fixture: CompiledFixture;
  let dir: TempDir;

  beforeAll(() => {
    fixture = compileFixture('test/native/fixtures/load-library.ts');
    dir = tempDir('tdlib-load');
  });

  afterAll(() => {
    fixture.remove();
    dir.remove();
  });

  async function load(env: NodeJS.ProcessEnv, libraryPath = ''): Promise<LoadOutcome> {
    const clean = { TDLIB_LIBRARY_PATH: '', TDLIB_ADDON_PATH: '' };
    const result = await runNode(fixture.entry, {
      args: ['load', libraryPath],
      env: { ...clean, ...env },
      timeoutMs: 30_000,
    });
    expect(result.code).toBe(0);
    return JSON.parse(result.stdout.trim().split('\n').pop() ?? '') as LoadOutcome;
  }

  it('defaults to the @prebuilt-tdlib/linux-x64-glibc package', async () => {
    const outcome = await load({});
    expect(outcome).toMatchObject({ ok: true, libraryPath: prebuiltLibrary, version: { value: '1.8.67' } });
  });

  it('prefers TDLIB_LIBRARY_PATH and accepts the TDLIB_ADDON_PATH-era setting (a file or its directory)', async () => {
    const copyDir = path.join(dir.path, 'lib');
    mkdirSync(copyDir);
    const copy = path.join(copyDir, 'libtdjson.so');
    copyFileSync(prebuiltLibrary, copy);
    await expect(load({ TDLIB_LIBRARY_PATH: copy })).resolves.toMatchObject({ ok: true, libraryPath: copy });
    await expect(load({ TDLIB_ADDON_PATH: copyDir })).resolves.toMatchObject({ ok: true, libraryPath: copy });
  });

  it('names the missing path and the setting it came from', async () => {
    const missing = path.join(dir.path, 'nowhere', 'libtdjson.so');
    const outcome = await load({ TDLIB_LIBRARY_PATH: missing });
    expect(outcome.ok).toBe(false);
    expect(outcome.message).toBe(`libtdjson not found at ${missing} (from TDLIB_LIBRARY_PATH)`);
  });

  it('refuses a file that is not a shared library, naming it', async () => {
    const bogus = path.join(dir.path, 'libtdjson-bogus.so');
    writeFileSync(bogus, 'not an ELF file');
    const outcome = await load({}, bogus);
    expect(outcome.ok).toBe(false);
    expect(outcome.message).toContain(`cannot load libtdjson from ${bogus}`);
    expect(outcome.message).toContain('(path from the libraryPath option)');
  });

  it('refuses a shared library that is not libtdjson, listing what is missing', async () => {
    // Our own addon: a loadable shared library without TDLib's symbols.
    const other = resolveAddonPath().file;
    const outcome = await load({}, other);
    expect(outcome.ok).toBe(false);
    expect(outcome.message).toContain(`library ${other} is not a usable libtdjson`);
    expect(outcome.message).toContain('missing td_create_client_id');
  });

  it('writes a fatal TDLib message to stderr before TDLib aborts', async () => {
    const result = await runNode(fixture.entry, { args: ['fatal'], timeoutMs: 30_000 });
    expect(result.stdout).toContain('LOADED');
    expect(result.stdout).not.toContain('NOT REACHED');
    expect(result.signal).toBe('SIGABRT');
    const line = result.stderr.split('\n').find((l) => l.startsWith('{"level":60'));
    expect(line).toBeDefined();
    expect(JSON.parse(line as string)).toMatchObject({
      level: 60,
      name: 'tdlib',
      msg: expect.stringContaining('fatal from the test'),
    });
  });

  it('resolves the library without loading it, for configuration checks', () => {
    expect(resolveLibraryPath({ env: {} })).toEqual({
      file: prebuiltLibrary,
      from: '@prebuilt-tdlib/linux-x64-glibc',
    });
    expect(resolveLibraryPath({ env: { TDLIB_ADDON_PATH: '/x/tdjson_addon.node' } }).from).toBe(
      '@prebuilt-tdlib/linux-x64-glibc',
    );
  });
});

describe("TDLib's log messages", () => {
  it('reach the logger at the level matching their verbosity', async () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
        done();
      },
    });
    const logger = createLogger({ name: 'tdlib', level: 'trace', destination });
    const backend = new NativeBackend({ logVerbosity: 3, onLog: tdLogHandler(logger) });
    try {
      for (const [verbosity, text] of [
        [1, 'an error line'],
        [2, 'a warning line'],
        [3, 'an info line'],
        [4, 'a debug line that verbosity 3 filters out'],
      ] as const) {
        backend.execute(JSON.stringify({ '@type': 'addLogMessage', verbosity_level: verbosity, text }));
      }
      const deadline = Date.now() + 10_000;
      while (lines.filter((l) => l.includes(' line')).length < 3 && Date.now() < deadline) {
        await new Promise((resolve) => setImmediate(resolve));
      }
      const logged = lines
        .map(
          (l) =>
            JSON.parse(l) as { level: number; msg: string; tdlib: { verbosity: number; source?: string } },
        )
        .filter((l) => l.msg.endsWith(' line') || l.msg.includes('filters out'));
      expect(logged.map((l) => [l.level, l.msg, l.tdlib.verbosity])).toEqual([
        [50, 'an error line', 1],
        [40, 'a warning line', 2],
        [30, 'an info line', 3],
      ]);
      expect(logged[0]?.tdlib.source).toMatch(/\.cpp:\d+$/);
    } finally {
      await backend.close();
    }
  });

  it('parses the prefix TDLib puts on every line', () => {
    expect(parseTdLogLine('[ 2][t 4][1700000000.123][Session.cpp:123][#1][!Td]\tConnection lost\n')).toEqual({
      text: 'Connection lost',
      source: 'Session.cpp:123',
      thread: 4,
    });
    expect(parseTdLogLine('no prefix')).toEqual({ text: 'no prefix' });
  });
});
