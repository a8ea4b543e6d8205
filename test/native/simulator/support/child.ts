/**
 * Runs TypeScript entry points of this repository in child processes through the repository's TS loader
 * (test/bench/sim/ts-loader.mjs), so cross-process tests never depend on a fresh `npm run build`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Step, Transcript } from './conversation.js';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
const REGISTER = join(REPO, 'test/bench/sim/register-ts.mjs');
const RUNNER = join(REPO, 'test/native/simulator/support/run-conversation.ts');

export interface ChildResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunningChild {
  readonly process: ChildProcess;
  readonly done: Promise<ChildResult>;
}

/** Starts `node --import register-ts.mjs <script> ...args`; the child is killed if it outlives `timeoutMs`. */
export function startTs(script: string, args: readonly string[], timeoutMs = 60_000): RunningChild {
  const child = spawn(process.execPath, ['--import', REGISTER, script, ...args], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const done = new Promise<ChildResult>((resolveDone) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolveDone({ code, signal, stdout, stderr });
    });
  });
  return { process: child, done };
}

export function parseTranscript(result: ChildResult): Transcript {
  const line = result.stdout
    .split('\n')
    .reverse()
    .find((l) => l.startsWith('TRANSCRIPT '));
  if (line === undefined) {
    throw new Error(
      `child printed no transcript (exit ${result.code ?? result.signal}):\n${result.stderr.slice(-4000)}`,
    );
  }
  return JSON.parse(line.slice('TRANSCRIPT '.length)) as Transcript;
}

/** Starts a conversation in a child process; `done` resolves with its transcript. */
export function startConversation(
  backend: 'sim' | 'real',
  steps: readonly Step[],
  worldDir?: string,
  timeoutMs = 90_000,
): { child: RunningChild; transcript: Promise<Transcript> } {
  const dir = mkdtempSync(join(tmpdir(), 'sim-spec-'));
  const specPath = join(dir, 'spec.json');
  writeFileSync(specPath, JSON.stringify({ backend, worldDir, steps }));
  const child = startTs(RUNNER, [specPath], timeoutMs);
  return { child, transcript: child.done.then(parseTranscript) };
}

export function runConversationChild(
  backend: 'sim' | 'real',
  steps: readonly Step[],
  worldDir?: string,
  timeoutMs?: number,
): Promise<Transcript> {
  return startConversation(backend, steps, worldDir, timeoutMs).transcript;
}
