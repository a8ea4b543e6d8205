/**
 * `kubectl telegram rollout`: argument parsing (subcommands, --watch/-w, --full, --timeout, what applies
 * where) and the pure parts of the output (step text, the status summary, exit code by phase, the line
 * --watch prints per change).
 */
import { API_VERSION, type TelegramRuntimePool } from '../../../crds/index.js';
import { parseArgs } from '../../../tools/kubectl-telegram/args.js';
import { CliError } from '../../../tools/kubectl-telegram/errors.js';
import {
  describePool,
  phaseExitCode,
  progressLine,
  statusIsCurrent,
  stepText,
} from '../../../tools/kubectl-telegram/rollout.js';

const usageError = (argv: string[]): CliError => {
  let error: unknown;
  try {
    parseArgs(argv);
  } catch (caught) {
    error = caught;
  }
  expect(error).toBeInstanceOf(CliError);
  return error as CliError;
};

describe('parseArgs: rollout', () => {
  it('reads the action, pool and namespace', () => {
    for (const action of ['status', 'promote', 'pause', 'resume', 'undo'] as const) {
      expect(parseArgs(['rollout', action, 'main', '-n', 'ops'])).toMatchObject({
        command: 'rollout',
        rolloutAction: action,
        pool: 'main',
        namespace: 'ops',
        watch: false,
        full: false,
      });
    }
  });

  it('status waits without a limit with -w, and for --timeout with it', () => {
    expect(parseArgs(['rollout', 'status', 'main'])).toMatchObject({ watch: false });
    expect(parseArgs(['rollout', 'status', 'main', '-w'])).toMatchObject({
      watch: true,
      timeoutMs: Number.POSITIVE_INFINITY,
    });
    expect(parseArgs(['rollout', 'status', 'main', '--watch', '--timeout', '10m'])).toMatchObject({
      watch: true,
      timeoutMs: 600_000,
    });
    expect(parseArgs(['rollout', 'status', '--watch=true', 'main', '--timeout=1h30m'])).toMatchObject({
      watch: true,
      timeoutMs: 5_400_000,
    });
    expect(parseArgs(['-nops', 'rollout', 'status', 'main', '--watch=false'])).toMatchObject({
      watch: false,
      namespace: 'ops',
    });
  });

  it('promote takes --full', () => {
    expect(parseArgs(['rollout', 'promote', 'main', '--full'])).toMatchObject({
      rolloutAction: 'promote',
      full: true,
    });
  });

  it.each([
    [
      ['rollout'],
      /rollout needs a subcommand: kubectl telegram rollout status\|promote\|pause\|resume\|undo/,
    ],
    [['rollout', 'restart', 'main'], /unknown rollout subcommand "restart"/],
    [['rollout', 'status'], /rollout status needs a pool name/],
    [['rollout', 'pause', 'a', 'b'], /unexpected argument after the pool name/],
    [['rollout', 'undo', 'Main_Pool'], /is not a valid TelegramRuntimePool name/],
    [['rollout', 'pause', 'main', '-w'], /--watch applies to rollout status only/],
    [['rollout', 'undo', 'main', '--full'], /--full applies to rollout promote only/],
    [['rollout', 'status', 'main', '--timeout', '5m'], /--timeout applies to rollout status --watch only/],
    [['rollout', 'promote', 'main', '--timeout', '5m'], /--timeout applies to rollout status --watch only/],
    [['rollout', 'status', 'main', '-w', '--timeout', 'soon'], /invalid duration "soon"/],
    [['rollout', 'status', 'main', '-w', '-w'], /flag -w given twice/],
    [['rollout', 'status', 'main', '--watch=yes'], /flag --watch takes no value/],
    [['rollout', 'status', 'main', '-o', 'json'], /apply to campaign report only/],
    [['rollout', 'status', 'main', '--code', '1'], /--code applies to login only/],
    [['status', 'alice', '-w'], /--watch and --full apply to rollout only/],
    [['campaign', 'report', 'spring', '--full'], /--watch and --full apply to rollout only/],
  ])('%j is a usage error', (argv, message) => {
    const error = usageError(argv);
    expect(error.exitCode).toBe(2);
    expect(error.message).toMatch(message);
  });

  it('--timeout on campaign report names where it applies', () => {
    expect(usageError(['campaign', 'report', 'a', '--timeout', '1m']).message).toMatch(
      /--timeout applies to login and rollout status --watch only/,
    );
  });
});

const pool = (
  status: TelegramRuntimePool['status'],
  extra: { generation?: number; paused?: boolean } = {},
): TelegramRuntimePool => ({
  apiVersion: API_VERSION,
  kind: 'TelegramRuntimePool',
  metadata: { name: 'main', namespace: 'ops', generation: extra.generation ?? 2 },
  spec: {
    image: 'registry.example/runtime:1.3',
    ...(extra.paused === undefined ? {} : { rollout: { paused: extra.paused } }),
  },
  status,
});

const progressing: TelegramRuntimePool['status'] = {
  observedGeneration: 2,
  phase: 'Progressing',
  stableRevision: 'aaa111',
  stableImage: 'registry.example/runtime:1.2',
  canaryRevision: 'bbb222',
  canaryImage: 'registry.example/runtime:1.3',
  currentStep: 1,
  desiredWeight: 25,
  weight: 20,
  rolloutStep: '2/4 (25%)',
  accounts: 100,
  canaryAccounts: 20,
  accountsInMotion: 5,
  readyPods: '3/3',
  message: 'moving 5 accounts to the canary',
  conditions: [
    {
      type: 'Progressing',
      status: 'True',
      reason: 'MovingAccounts',
      message: 'moving 5 accounts to the canary',
      lastTransitionTime: '2025-01-01T00:00:00Z',
    },
  ],
  analyses: [
    {
      time: '2025-01-01T00:01:00Z',
      step: 1,
      verdict: 'Inconclusive',
      metric: 'requests',
      message: '12 requests, fewer than 100',
      canary: { pods: 1, requests: 12 },
    },
  ],
};

describe('rollout output', () => {
  it('stepText: status.rolloutStep, else computed from currentStep and the steps', () => {
    expect(stepText(pool(progressing))).toBe('2/4 (25%)');
    expect(stepText(pool({ ...progressing, rolloutStep: undefined, desiredWeight: undefined }))).toBe(
      '2/4 (25%)',
    );
    expect(stepText(pool({ phase: 'Healthy', rolloutStep: '-' }))).toBeUndefined();
  });

  it('describePool shows revisions, step, weight, accounts, pods, conditions and analyses', () => {
    const text = describePool(pool(progressing, { paused: true }));
    expect(text).toMatch(/^Pool:\s+ops\/main$/m);
    expect(text).toMatch(/^Phase:\s+Progressing$/m);
    expect(text).toMatch(/^Stable:\s+revision aaa111 \(registry\.example\/runtime:1\.2\)$/m);
    expect(text).toMatch(/^Canary:\s+revision bbb222 \(registry\.example\/runtime:1\.3\)$/m);
    expect(text).toMatch(/^Step:\s+2\/4 \(25%\)$/m);
    expect(text).toMatch(/^Weight:\s+20% of accounts on the canary \(step wants 25%\)$/m);
    expect(text).toMatch(/^Accounts:\s+100, 20 on the canary, 5 in motion$/m);
    expect(text).toMatch(/^Ready pods:\s+3\/3$/m);
    expect(text).toMatch(/^Paused:\s+yes .*kubectl telegram rollout resume main -n ops/m);
    expect(text).toMatch(/^ {2}Progressing\s+True\s+MovingAccounts\s+moving 5 accounts to the canary$/m);
    expect(text).toMatch(
      /^ {2}2025-01-01T00:01:00Z\s+step 2\s+Inconclusive\s+requests\s+12 requests, fewer than 100$/m,
    );
    expect(text).not.toMatch(/^Note:/m);
  });

  it('describePool without status and with a stale status', () => {
    expect(describePool(pool(undefined))).toMatch(
      /^Phase:\s+\(not reported yet: is the operator running\?\)$/m,
    );
    const stale = describePool(pool({ ...progressing, observedGeneration: 1 }, { generation: 2 }));
    expect(stale).toMatch(
      /^Note:\s+the operator has not acted on the latest spec yet \(generation 2, status of 1\)$/m,
    );
  });

  it('exit code by phase: only Degraded fails', () => {
    expect(phaseExitCode(pool({ phase: 'Healthy' }))).toBe(0);
    expect(phaseExitCode(pool({ phase: 'Progressing' }))).toBe(0);
    expect(phaseExitCode(pool({ phase: 'Paused' }))).toBe(0);
    expect(phaseExitCode(pool(undefined))).toBe(0);
    expect(phaseExitCode(pool({ phase: 'Degraded' }))).toBe(1);
  });

  it('progressLine: phase, step and message; a stale or missing status says what it waits for', () => {
    expect(progressLine(pool(progressing))).toBe(
      'Progressing, step 2/4 (25%): moving 5 accounts to the canary',
    );
    expect(progressLine(pool({ ...progressing, phase: 'Paused', message: 'held' }, { paused: true }))).toBe(
      'Paused, step 2/4 (25%): held (spec.rollout.paused: kubectl telegram rollout resume main -n ops)',
    );
    expect(progressLine(pool(undefined))).toMatch(/waiting for the operator to report the pool/);
    expect(progressLine(pool({ ...progressing, observedGeneration: 1 }))).toMatch(
      /waiting for the operator to act on the latest spec \(generation 2; the status is of 1\)/,
    );
    expect(statusIsCurrent(pool({ phase: 'Healthy' }))).toBe(false);
    expect(statusIsCurrent(pool({ phase: 'Healthy', observedGeneration: 2 }))).toBe(true);
  });
});
