/**
 * The session fence below JavaScript (native/src/fence.h), against real libtdjson: requests of a client
 * past its deadline never reach TDLib, the watchdog closes overdue clients while JS is blocked, ends the
 * process when a close cannot be confirmed, and acts within milliseconds when a stopped process resumes,
 * as seen by a recording libtdjson shim outside the addon.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { FENCE_WATCHDOG_EXIT_CODE, resolveLibraryPath } from '../../native/index.js';
import type { TdReceived } from '../../runtime/tdlib/backend.js';
import { TdClientManager } from '../../runtime/tdlib/client.js';
import { TdClientClosedError } from '../../runtime/tdlib/errors.js';
import { NativeBackend } from '../../runtime/tdlib/native-backend.js';
import { compileFixture, REPO_ROOT, runNode, type CompiledFixture } from './helpers/child.js';
import { initializeClient, tempDir, type TempDir } from './helpers/tdlib.js';

const NS_PER_MS = 1_000_000n;

async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function resultOf(stdout: string): Record<string, unknown> {
  const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (line === undefined) throw new Error(`the child printed no RESULT; stdout: ${stdout}`);
  return JSON.parse(line.slice('RESULT '.length)) as Record<string, unknown>;
}

describe('session fence (native)', () => {
  describe('in this process', () => {
    let dir: TempDir;
    let backend: NativeBackend | undefined;

    beforeAll(() => {
      dir = tempDir('tdlib-fence-inproc');
    });

    afterEach(async () => {
      await backend?.close();
      backend = undefined;
    });

    afterAll(() => dir.remove());

    it('drops requests of a client past its deadline, answers others, and still forwards close', async () => {
      // Every request goes out on this thread, so the fence's verdict is known when send() returns. The
      // grace is long: if this test fails half-way, the watchdog must not end the test runner.
      backend = new NativeBackend({
        logVerbosity: 0,
        directSendsPerTurn: Infinity,
        fenceExitGraceMs: 600_000,
      });
      const unroutable: TdReceived[] = [];
      const manager = new TdClientManager(backend, {
        defaultTimeoutMs: 60_000,
        onUnroutable: (object) => unroutable.push(object),
      });
      const fenced = manager.createClient();
      const free = manager.createClient();
      await initializeClient(fenced, path.join(dir.path, 'fenced'));
      await initializeClient(free, path.join(dir.path, 'free'));
      // Counters are process-global; other suites may have run in this worker.
      const before = backend.fenceStats();
      backend.setClientDeadline(free.id, Infinity);

      backend.setClientDeadline(fenced.id, 0);
      // A passed deadline is final: a renewal after it changes nothing.
      backend.setClientDeadline(fenced.id, 60_000);
      const dropped = fenced.invoke({ '@type': 'testSquareInt', x: 3 }).then(
        () => 'answered',
        (error: unknown) => (error instanceof TdClientClosedError ? 'rejected at close' : String(error)),
      );
      expect(backend.fenceStats()).toMatchObject({
        fencedClients: before.fencedClients + 1,
        blockedRequests: before.blockedRequests + 1,
      });
      // A raw close with an '@extra' the manager does not know: its answer comes back as unroutable,
      // which shows it reached TDLib whether or not the watchdog's own close got there first.
      const closeExtra = 987_654_321;
      backend.send(fenced.id, `{"@extra":${closeExtra},"@type":"close"}`);
      expect(await free.invoke({ '@type': 'testSquareInt', x: 4 })).toMatchObject({ value: 16 });

      await until(() => fenced.state === 'closed', 20_000, 'the fenced client to close');
      await until(() => unroutable.some((o) => o['@extra'] === closeExtra), 10_000, 'the answer to close');
      expect(await dropped).toBe('rejected at close');
      // Closed: no longer fenced, but its requests stay dropped.
      backend.send(fenced.id, '{"@type":"testSquareInt","x":5}');
      const after = backend.fenceStats();
      expect(after.fencedClients).toBe(before.fencedClients);
      expect(after.blockedRequests).toBe(before.blockedRequests + 2);
      expect((await manager.shutdown({ timeoutMs: 20_000 })).notClosed).toEqual([]);
    });
  });

  describe('watchdog', () => {
    let fixture: CompiledFixture;

    beforeAll(() => {
      fixture = compileFixture('test/native/fixtures/fence-child.ts');
    });

    afterAll(() => fixture.remove());

    it('closes an overdue client by itself while the JS thread is blocked', async () => {
      const result = await runNode(fixture.entry, { args: ['watchdog-close'], timeoutMs: 60_000 });
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      const outcome = resultOf(result.stdout);
      // Read right after the blocked stretch, before JS handled a single received object: the close was
      // sent and its authorizationStateClosed noticed by native code alone.
      expect(outcome.afterBlock).toEqual({ fencedClients: 0, blockedRequests: 0, watchdogCloses: 1 });
      expect(outcome.states).toEqual(['authorizationStateClosing', 'authorizationStateClosed']);
      expect(outcome.notClosed).toEqual([]);
    }, 90_000);

    it(`ends the process (exit code ${FENCE_WATCHDOG_EXIT_CODE}) when a close cannot be confirmed in time`, async () => {
      let blockingAt: bigint | undefined;
      const result = await runNode(fixture.entry, {
        args: ['watchdog-exit'],
        timeoutMs: 60_000,
        onStdout: (stdout) => {
          if (blockingAt === undefined && stdout.includes('BLOCKING')) blockingAt = process.hrtime.bigint();
        },
      });
      const exitedAt = process.hrtime.bigint();
      expect(result.code).toBe(FENCE_WATCHDOG_EXIT_CODE);
      expect(result.stdout).not.toContain('NOT EXITED');
      const fencedId = /BLOCKING (\d+)/.exec(result.stdout)?.[1];
      const line =
        /^tdlib-runtime: session fence watchdog: client (\d+) still open (\d+) ms past its Lease deadline; exiting$/m.exec(
          result.stderr,
        );
      expect(line?.[1]).toBe(fencedId);
      // Deadline 100 ms, grace 300 ms, the watchdog looks at least every 50 ms.
      expect(Number(line?.[2])).toBeGreaterThanOrEqual(300);
      expect(Number(line?.[2])).toBeLessThan(1000);
      expect(blockingAt).toBeDefined();
      const elapsedMs = Number((exitedAt - (blockingAt as bigint)) / NS_PER_MS);
      expect(elapsedMs).toBeLessThan(3000);
    }, 90_000);
  });

  describe('a stopped process that resumes past its deadlines', () => {
    const CLIENTS = 20;
    let fixture: CompiledFixture;
    let scratch: TempDir;
    let recorder: string;
    let realLibrary: string;

    beforeAll(() => {
      fixture = compileFixture('test/native/fixtures/fence-child.ts');
      scratch = tempDir('tdjson-recorder');
      const source = path.join(REPO_ROOT, 'test/native/fixtures/tdjson-recorder.c');
      recorder = path.join(scratch.path, 'libtdjson-recorder.so');
      execFileSync('cc', ['-shared', '-fPIC', '-O2', '-Wall', '-o', recorder, source, '-ldl'], {
        stdio: 'pipe',
      });
      realLibrary = resolveLibraryPath().file;
      expect(existsSync(realLibrary)).toBe(true);
    });

    afterAll(() => {
      fixture.remove();
      scratch.remove();
    });

    interface Recorded {
      readonly at: bigint;
      readonly kind: 'send' | 'closed';
      readonly client: number;
      readonly type: string;
    }

    interface PauseRun {
      readonly ids: readonly number[];
      readonly stoppedAt: bigint;
      readonly continuedAt: bigint;
      readonly exitedAt: bigint;
      readonly code: number | null;
      readonly lines: readonly Recorded[];
      readonly outcome: Record<string, unknown>;
    }

    /**
     * Runs the child with the recording libtdjson, stops it for 2 s once it is steadily sending, and lets
     * it run 1 s after SIGCONT. Times are CLOCK_MONOTONIC (process.hrtime on Linux), like the recorder's.
     */
    async function pauseRun(mode: 'fenced' | 'unfenced'): Promise<PauseRun> {
      const file = path.join(scratch.path, `record-${mode}.log`);
      let ids: number[] | undefined;
      let stoppedAt = 0n;
      let continuedAt = 0n;
      let exitedAt = 0n;
      let driving: Promise<void> | undefined;
      const result = await runNode(fixture.entry, {
        args: ['pause', String(CLIENTS), mode],
        env: {
          TDLIB_LIBRARY_PATH: recorder,
          TDJSON_RECORDER_REAL: realLibrary,
          TDJSON_RECORDER_FILE: file,
        },
        timeoutMs: 120_000,
        onStdout: (stdout, child) => {
          const ready = /READY (\[[\d,]*\])\n/.exec(stdout);
          if (driving !== undefined || ready === null) return;
          ids = JSON.parse(ready[1] as string) as number[];
          child.once('exit', () => (exitedAt = process.hrtime.bigint()));
          driving = (async () => {
            await sleep(400);
            stoppedAt = process.hrtime.bigint();
            child.kill('SIGSTOP');
            await sleep(2000);
            continuedAt = process.hrtime.bigint();
            child.kill('SIGCONT');
            await sleep(1000);
            child.kill('SIGTERM');
          })();
        },
      });
      await driving;
      const lines = readFileSync(file, 'utf8')
        .split('\n')
        .filter((line) => line !== '')
        .map((line): Recorded => {
          const [at, kind, client, type] = line.split(' ');
          return {
            at: BigInt(at as string),
            kind: kind as Recorded['kind'],
            client: Number(client),
            type: type ?? '',
          };
        });
      expect(ids).toHaveLength(CLIENTS);
      return {
        ids: ids as number[],
        stoppedAt,
        continuedAt,
        exitedAt,
        code: result.code,
        lines,
        outcome: result.code === 0 ? resultOf(result.stdout) : { stderr: result.stderr },
      };
    }

    const ms = (ns: bigint): number => Number(ns) / 1e6;

    it('sends nothing but close after SIGCONT, and closes every client within 100 ms', async () => {
      const run = await pauseRun('fenced');
      const ours = run.lines.filter((l) => run.ids.includes(l.client));
      // The pause fell into steady operation: requests went out right before it, no client was closed.
      expect(
        ours.some(
          (l) => l.kind === 'send' && l.type === 'testCallEmpty' && run.stoppedAt - l.at < 200n * NS_PER_MS,
        ),
      ).toBe(true);
      expect(
        ours.filter((l) => l.at < run.continuedAt && (l.kind === 'closed' || l.type === 'close')),
      ).toEqual([]);

      const after = ours.filter((l) => l.at > run.continuedAt);
      expect(after.filter((l) => l.kind === 'send' && l.type !== 'close')).toEqual([]);
      const reactions = run.ids.map((id) => {
        const closed = after.find((l) => l.kind === 'closed' && l.client === id);
        if (closed !== undefined) return ms(closed.at - run.continuedAt);
        // The other acceptable outcome: the watchdog ended the process.
        return run.code === FENCE_WATCHDOG_EXIT_CODE ? ms(run.exitedAt - run.continuedAt) : Infinity;
      });
      const firstClose = after.find((l) => l.kind === 'send' && l.type === 'close');
      console.log(
        `fence after SIGCONT: first close sent after ${firstClose ? ms(firstClose.at - run.continuedAt).toFixed(2) : '-'} ms, ` +
          `every client closed after ${Math.max(...reactions).toFixed(2)} ms (median ${[...reactions].sort((a, b) => a - b)[reactions.length >> 1]?.toFixed(2)} ms)`,
      );
      expect(Math.max(...reactions)).toBeLessThanOrEqual(100);
      expect(run.code).toBe(0);
      expect(run.outcome.final).toMatchObject({ fencedClients: 0, watchdogCloses: CLIENTS });
      expect((run.outcome.final as { blockedRequests: number }).blockedRequests).toBeGreaterThan(0);
    }, 180_000);

    it('without deadlines the same process does send after SIGCONT (the check above can fail)', async () => {
      const run = await pauseRun('unfenced');
      const after = run.lines.filter((l) => run.ids.includes(l.client) && l.at > run.continuedAt);
      const firstSend = after.find((l) => l.kind === 'send' && l.type === 'testCallEmpty');
      expect(firstSend).toBeDefined();
      expect(after.filter((l) => l.kind === 'closed' && l.at - run.continuedAt < 500n * NS_PER_MS)).toEqual(
        [],
      );
      expect(run.code).toBe(0);
      expect(run.outcome.final).toMatchObject({ fencedClients: 0, blockedRequests: 0 });
    }, 180_000);
  });
});
