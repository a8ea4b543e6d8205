/**
 * `kubectl telegram rollout status|promote|pause|resume|undo POOL`: the operator rolls a new runtime version
 * out to a TelegramRuntimePool in canary steps; the plugin only reads the pool's status and writes the
 * signals the operator acts on:
 * - pause / resume: spec.rollout.paused (merge patch);
 * - promote: annotation ANNOTATION_PROMOTE = promoteToken(canary revision, current step | 'full');
 * - undo: annotation ANNOTATION_UNDO = the canary revision.
 * Both annotations name the canary revision they are meant for, so a signal that arrives late (the rollout
 * moved on, another version started) does nothing. Nothing here retries a write: each is idempotent.
 */
import {
  ANNOTATION_PROMOTE,
  ANNOTATION_UNDO,
  DEFAULT_ROLLOUT_STEPS,
  GROUP,
  RUNTIME_POOL_PLURAL,
  RolloutConditionType,
  promoteToken,
  type AnalysisRecord,
  type Condition,
  type TelegramRuntimePool,
} from '../../crds/index.js';
import { RuntimePoolResource } from '../../crds/resources.js';
import { isApiError, isNotFound, type RestClient } from '../../operator/kube/client.js';
import { errorMessage } from '../../operator/kube/util.js';
import type { RolloutAction } from './args.js';
import { CliError, ExitCode } from './errors.js';
import { PLUGIN_NAME, formatDuration, type Cleanups } from './login.js';
import { ObjectObserver, WaitTimeoutError } from './observe.js';
import type { Io } from './prompt.js';

export interface RolloutOptions {
  namespace: string;
  name: string;
  action: RolloutAction;
  /** status: wait until Healthy or Degraded. */
  watch: boolean;
  /** promote: skip every remaining pause. */
  full: boolean;
  /** status --watch: how long to wait; Infinity waits until the rollout ends. */
  timeoutMs: number;
  /** status --watch: GET interval when list/watch is not allowed (default 1 s). */
  pollIntervalMs?: number;
}

/** One observer wait at most this long (a timer of Infinity would fire at once), then the next. */
const WAIT_SLICE_MS = 60 * 60_000;

/** `telegramruntimepool/NAME`, as kubectl names objects in what it prints. */
export function poolRef(name: string): string {
  return `telegramruntimepool/${name}`;
}

/** What each command needs from RBAC, for a 403. */
function neededVerbs(action: RolloutAction, watch: boolean): string {
  if (action !== 'status') return 'get and patch';
  return watch ? 'get, and list and watch to follow changes (with get alone it polls)' : 'get';
}

/** A 403 as the verb that was refused and the verbs the command needs; other errors unchanged. */
function forbidden(error: unknown, verb: string, options: RolloutOptions): unknown {
  if (!isApiError(error, 403)) return error;
  return new CliError(
    ExitCode.Failed,
    `not allowed to ${verb} ${RUNTIME_POOL_PLURAL}.${GROUP} in namespace ${options.namespace} (403 Forbidden): ` +
      `kubectl telegram rollout ${options.action} needs ${neededVerbs(options.action, options.watch)} on ` +
      `${RUNTIME_POOL_PLURAL} (API group ${GROUP}) in the namespace\n(the API server said: ${errorMessage(error)})`,
  );
}

function notFound(namespace: string, name: string): CliError {
  return new CliError(
    ExitCode.NotFound,
    `telegramruntimepool ${JSON.stringify(name)} not found in namespace ${JSON.stringify(namespace)} ` +
      `(kubectl get tgp -n ${namespace})`,
  );
}

async function readPool(client: RestClient, options: RolloutOptions): Promise<TelegramRuntimePool> {
  try {
    return await client.get<TelegramRuntimePool>(RuntimePoolResource, options.namespace, options.name);
  } catch (error) {
    if (isNotFound(error)) throw notFound(options.namespace, options.name);
    throw forbidden(error, 'get', options);
  }
}

async function patchPool(client: RestClient, options: RolloutOptions, patch: unknown): Promise<void> {
  try {
    await client.mergePatch(RuntimePoolResource, options.namespace, options.name, patch, {
      fieldManager: PLUGIN_NAME,
    });
  } catch (error) {
    if (isNotFound(error)) throw notFound(options.namespace, options.name);
    throw forbidden(error, 'patch', options);
  }
}

/** "2/4 (25%)" from status.rolloutStep, else from currentStep and the steps; undefined without a rollout. */
export function stepText(pool: TelegramRuntimePool): string | undefined {
  const s = pool.status;
  if (s?.rolloutStep && s.rolloutStep !== '-') return s.rolloutStep;
  if (!s?.canaryRevision || s.currentStep === undefined) return undefined;
  const steps = pool.spec.rollout?.steps?.map((step) => step.weight) ?? DEFAULT_ROLLOUT_STEPS;
  const weight = s.desiredWeight ?? steps[s.currentStep];
  return `${s.currentStep + 1}/${steps.length}${weight === undefined ? '' : ` (${weight}%)`}`;
}

/** Whether the status describes the current spec (the operator has acted on the latest generation). */
export function statusIsCurrent(pool: TelegramRuntimePool): boolean {
  const observed = pool.status?.observedGeneration;
  const generation = pool.metadata.generation;
  return observed !== undefined && (generation === undefined || observed >= generation);
}

function revisionText(revision: string | undefined, image: string | undefined): string | undefined {
  if (revision === undefined && image === undefined) return undefined;
  if (revision === undefined) return image;
  return image === undefined ? `revision ${revision}` : `revision ${revision} (${image})`;
}

function table(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length + 2)));
  return rows.map((row) =>
    `  ${row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('')}`.trimEnd(),
  );
}

/** The human summary of `kubectl telegram rollout status`. */
export function describePool(pool: TelegramRuntimePool): string {
  const s = pool.status ?? {};
  const name = pool.metadata.name ?? '';
  const namespace = pool.metadata.namespace ?? '';
  const paused = pool.spec.rollout?.paused === true;
  const accounts =
    s.accounts === undefined
      ? undefined
      : [
          `${s.accounts}`,
          s.canaryAccounts === undefined ? undefined : `${s.canaryAccounts} on the canary`,
          s.accountsInMotion === undefined ? undefined : `${s.accountsInMotion} in motion`,
        ]
          .filter(Boolean)
          .join(', ');
  const weight =
    s.weight === undefined && s.desiredWeight === undefined
      ? undefined
      : `${s.weight ?? 0}% of accounts on the canary (step wants ${s.desiredWeight ?? 0}%)`;
  const rows: Array<[string, string | undefined]> = [
    ['Pool', `${namespace}/${name}`],
    ['Phase', s.phase ?? '(not reported yet: is the operator running?)'],
    ['Image (spec)', pool.spec.image],
    ['Stable', revisionText(s.stableRevision, s.stableImage)],
    [
      'Canary',
      revisionText(s.canaryRevision, s.canaryImage) ?? (s.phase ? '(no rollout in progress)' : undefined),
    ],
    ['Step', stepText(pool)],
    ['Weight', s.canaryRevision ? weight : undefined],
    ['Accounts', accounts],
    ['Ready pods', s.readyPods],
    [
      'Paused',
      paused
        ? `yes (spec.rollout.paused; to go on: kubectl telegram rollout resume ${name} -n ${namespace})`
        : undefined,
    ],
    [
      'Rolled back',
      s.rolledBackRevision
        ? `revision ${s.rolledBackRevision} (not tried again until the spec changes)`
        : undefined,
    ],
    ['Message', s.message],
    [
      'Note',
      s.phase !== undefined && !statusIsCurrent(pool)
        ? `the operator has not acted on the latest spec yet (generation ${pool.metadata.generation ?? '?'}, ` +
          `status of ${s.observedGeneration ?? 'none'})`
        : undefined,
    ],
  ];
  const width = Math.max(...rows.map(([k]) => k.length)) + 2;
  const lines = rows
    .filter((row): row is [string, string] => row[1] !== undefined && row[1] !== '')
    .map(([k, v]) => `${`${k}:`.padEnd(width)}${v}`);
  const conditions: Condition[] = s.conditions ?? [];
  if (conditions.length > 0) {
    lines.push('Conditions:');
    lines.push(...table(conditions.map((c) => [c.type, c.status, c.reason, c.message])));
  }
  const analyses: AnalysisRecord[] = s.analyses ?? [];
  if (analyses.length > 0) {
    lines.push('Last analyses (newest last):');
    // Steps as people count them, like rolloutStep: index 1 is "step 2".
    lines.push(
      ...table(analyses.map((a) => [a.time, `step ${a.step + 1}`, a.verdict, a.metric ?? '-', a.message])),
    );
  }
  return lines.join('\n');
}

/** Why the pool is Degraded, in one line: the Degraded condition, else the message, else the last failed analysis. */
function degradedReason(pool: TelegramRuntimePool): string {
  const s = pool.status ?? {};
  const degraded = s.conditions?.find((c) => c.type === RolloutConditionType.Degraded && c.status === 'True');
  const failed = [...(s.analyses ?? [])].reverse().find((a) => a.verdict === 'Failed');
  const parts = [
    degraded ? `${degraded.reason}: ${degraded.message}` : s.message,
    failed
      ? `last failed analysis at step ${failed.step + 1}: ${failed.metric ? `${failed.metric}: ` : ''}${failed.message}`
      : undefined,
    s.rolledBackRevision ? `revision ${s.rolledBackRevision} rolled back` : undefined,
  ];
  return parts.filter((p) => p !== undefined && p !== '').join('; ') || 'a version was rolled back';
}

/** The exit code of `rollout status` without --watch: Degraded fails, everything else is 0. */
export function phaseExitCode(pool: TelegramRuntimePool): ExitCode {
  return pool.status?.phase === 'Degraded' ? ExitCode.Failed : ExitCode.Ok;
}

/** What --watch prints a line for when it changes: phase, step and message (and a stale status). */
export function progressLine(pool: TelegramRuntimePool): string {
  const s = pool.status ?? {};
  if (!s.phase) return 'waiting for the operator to report the pool (status.phase is empty)';
  if (!statusIsCurrent(pool)) {
    return (
      `waiting for the operator to act on the latest spec (generation ${pool.metadata.generation ?? '?'}; ` +
      `the status is of ${s.observedGeneration ?? 'none'})`
    );
  }
  const step = stepText(pool);
  const paused =
    s.phase === 'Paused' && pool.spec.rollout?.paused
      ? ` (spec.rollout.paused: kubectl telegram rollout resume ${pool.metadata.name ?? ''} -n ${pool.metadata.namespace ?? ''})`
      : '';
  return `${s.phase}${step ? `, step ${step}` : ''}${s.message ? `: ${s.message}` : ''}${paused}`;
}

/** Healthy or Degraded of the current spec: the end of a --watch; undefined while it goes on. */
function outcome(pool: TelegramRuntimePool): 'Healthy' | 'Degraded' | undefined {
  if (!statusIsCurrent(pool)) return undefined;
  const phase = pool.status?.phase;
  return phase === 'Healthy' || phase === 'Degraded' ? phase : undefined;
}

/** Runs one rollout command; resolves with the exit code or throws CliError. */
export async function rollout(
  client: RestClient,
  io: Io,
  options: RolloutOptions,
  cleanups: Cleanups,
): Promise<ExitCode> {
  const say = (text: string) => io.stdout.write(`${text}\n`);
  const pool = await readPool(client, options);
  switch (options.action) {
    case 'status':
      say(describePool(pool));
      if (!options.watch) return phaseExitCode(pool);
      return watchRollout(client, io, options, pool, cleanups);
    case 'pause':
    case 'resume':
      return pauseOrResume(client, say, options, pool);
    case 'promote':
      return promote(client, say, options, pool);
    case 'undo':
      return undo(client, say, options, pool);
  }
}

async function pauseOrResume(
  client: RestClient,
  say: (text: string) => void,
  options: RolloutOptions,
  pool: TelegramRuntimePool,
): Promise<ExitCode> {
  const { name, namespace } = options;
  const pause = options.action === 'pause';
  const paused = pool.spec.rollout?.paused === true;
  const step = pool.status?.canaryRevision ? stepText(pool) : undefined;
  const where = step ? ` at step ${step}` : ' (no rollout in progress now)';
  if (pause === paused) {
    say(`${poolRef(name)} is ${pause ? 'already paused' : 'not paused'}${step ? ` (step ${step})` : ''}`);
    return ExitCode.Ok;
  }
  await patchPool(client, options, { spec: { rollout: { paused: pause } } });
  say(`${poolRef(name)} ${pause ? 'paused' : 'resumed'}${where}`);
  if (pause) say(`To go on: kubectl telegram rollout resume ${name} -n ${namespace}`);
  return ExitCode.Ok;
}

/** The canary revision a promote or undo is for; none is an error that says so. */
function canaryOf(pool: TelegramRuntimePool, options: RolloutOptions): string {
  const s = pool.status ?? {};
  if (s.canaryRevision) return s.canaryRevision;
  throw new CliError(
    ExitCode.Failed,
    `no rollout in progress for pool ${options.name}: status.canaryRevision is empty ` +
      `(phase ${s.phase ?? 'not reported'}), so there is nothing to ${options.action}` +
      (s.rolledBackRevision ? `; revision ${s.rolledBackRevision} was rolled back` : '') +
      ` (kubectl telegram rollout status ${options.name} -n ${options.namespace})`,
  );
}

async function promote(
  client: RestClient,
  say: (text: string) => void,
  options: RolloutOptions,
  pool: TelegramRuntimePool,
): Promise<ExitCode> {
  const { name, namespace } = options;
  const revision = canaryOf(pool, options);
  if (pool.status?.rolledBackRevision === revision) {
    throw new CliError(
      ExitCode.Failed,
      `revision ${revision} of pool ${name} is rolled back (status.rolledBackRevision); there is nothing to ` +
        'promote: change the spec to roll out a new version',
    );
  }
  const step = pool.status?.currentStep ?? 0;
  const token = promoteToken(revision, options.full ? 'full' : step);
  await patchPool(client, options, { metadata: { annotations: { [ANNOTATION_PROMOTE]: token } } });
  const stepLabel = stepText(pool) ?? `${step + 1}`;
  say(
    options.full
      ? `${poolRef(name)} promoted: revision ${revision} skips every remaining pause (from step ${stepLabel})`
      : `${poolRef(name)} promoted: step ${stepLabel} of revision ${revision} skips its pause`,
  );
  say(
    `(annotation ${ANNOTATION_PROMOTE}=${token}; follow it: kubectl telegram rollout status ${name} -n ${namespace} -w)`,
  );
  if (pool.spec.rollout?.paused) {
    say(
      `The rollout is paused (spec.rollout.paused) and stays at its step until resumed: ` +
        `kubectl telegram rollout resume ${name} -n ${namespace}`,
    );
  }
  return ExitCode.Ok;
}

async function undo(
  client: RestClient,
  say: (text: string) => void,
  options: RolloutOptions,
  pool: TelegramRuntimePool,
): Promise<ExitCode> {
  const { name, namespace } = options;
  const s = pool.status ?? {};
  const revision = canaryOf(pool, options);
  const retryHint =
    `Revision ${revision} is not tried again until the spec changes: to retry the same image later, change ` +
    'the spec (e.g. the same image under another tag, or by digest).';
  if (s.rolledBackRevision === revision) {
    say(`${poolRef(name)}: revision ${revision} is already rolled back`);
    say(retryHint);
    return ExitCode.Ok;
  }
  await patchPool(client, options, { metadata: { annotations: { [ANNOTATION_UNDO]: revision } } });
  const accounts = s.canaryAccounts === undefined ? 'accounts' : `${s.canaryAccounts} accounts`;
  const stable = revisionText(s.stableRevision, s.stableImage);
  say(
    `${poolRef(name)}: undo of revision ${revision} requested (annotation ${ANNOTATION_UNDO}=${revision}); ` +
      `the operator moves the canary's ${accounts} back${stable ? ` to ${stable}` : ''} and marks ` +
      `${revision} rolled back`,
  );
  say(retryHint);
  say(`Follow it: kubectl telegram rollout status ${name} -n ${namespace} -w`);
  return ExitCode.Ok;
}

/** `rollout status --watch`: one line per change until the current spec is Healthy (0) or Degraded (1). */
async function watchRollout(
  client: RestClient,
  io: Io,
  options: RolloutOptions,
  initial: TelegramRuntimePool,
  cleanups: Cleanups,
): Promise<ExitCode> {
  const { name, namespace } = options;
  const say = (text: string) => io.stdout.write(`${text}\n`);
  const deadlineAt = Date.now() + options.timeoutMs;
  const observer = new ObjectObserver<TelegramRuntimePool>(client, RuntimePoolResource, namespace, name, {
    pollIntervalMs: options.pollIntervalMs ?? 1000,
  }).start(initial);
  let stopped = false;
  const dropObserver = cleanups.add(async () => {
    stopped = true;
    await observer.stop();
  });
  let shown: string | undefined;
  try {
    for (;;) {
      let pool: TelegramRuntimePool | null;
      try {
        pool = await observer.until(
          (current) => (current === null || progressLine(current) !== shown ? current : undefined),
          Math.min(deadlineAt, Date.now() + WAIT_SLICE_MS),
          `${poolRef(name)} to finish its rollout`,
        );
      } catch (error) {
        if (!(error instanceof WaitTimeoutError)) throw forbidden(error, 'get', options);
        if (stopped) throw new CliError(ExitCode.Interrupted, 'interrupted');
        if (Date.now() < deadlineAt) continue;
        const latest = observer.latest();
        throw new CliError(
          ExitCode.Timeout,
          `timed out after ${formatDuration(options.timeoutMs)} waiting for ${poolRef(name)} to become Healthy or ` +
            `Degraded; it is ${latest ? progressLine(latest) : 'unknown'} (the rollout goes on: ` +
            `kubectl telegram rollout status ${name} -n ${namespace} -w)`,
        );
      }
      if (pool === null) {
        throw new CliError(
          ExitCode.NotFound,
          `telegramruntimepool ${JSON.stringify(name)} was deleted from namespace ${JSON.stringify(namespace)} while waiting`,
        );
      }
      const line = progressLine(pool);
      shown = line;
      say(line);
      const end = outcome(pool);
      if (end === 'Healthy') {
        const stable = revisionText(pool.status?.stableRevision, pool.status?.stableImage);
        say(`${poolRef(name)} rolled out${stable ? `: ${stable} serves every account` : ''}`);
        return ExitCode.Ok;
      }
      if (end === 'Degraded') {
        throw new CliError(ExitCode.Failed, `${poolRef(name)} is Degraded: ${degradedReason(pool)}`);
      }
    }
  } finally {
    dropObserver();
    await observer.stop();
  }
}
