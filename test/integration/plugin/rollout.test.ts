/**
 * `kubectl telegram rollout` against the real apiserver of the integration tier. The test plays the
 * operator's part: it writes the TelegramRuntimePool's status through the status subresource, and checks
 * what the plugin prints, its exit codes, and the signals it leaves on the object (spec.rollout.paused, the
 * promote and undo annotations).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import {
  ANNOTATION_PROMOTE,
  ANNOTATION_UNDO,
  API_VERSION,
  type Condition,
  type RuntimePoolStatus,
  type TelegramRuntimePool,
} from '../../../crds/index.js';
import { RuntimePoolResource } from '../../../crds/resources.js';
import { RestClient } from '../../../operator/kube/client.js';
import { createRegistry } from '../../../operator/kube/metrics.js';
import { waitFor } from '../../cluster/wait.js';
import { adminKubeConfig, createTestNamespace, testCluster } from '../../support/cluster.js';
import { installCrds } from '../../support/crds.js';
import { restrictedKubeconfig } from '../../support/restricted-kubeconfig.js';

const shim = resolve('bin/kubectl-telegram');
const OPERATOR = 'test-operator';
const STABLE = { revision: '6b8f9d4c7a', image: 'registry.example/tdlib-runtime:1.2.0' };
const CANARY = { revision: '9c1e2a7f30', image: 'registry.example/tdlib-runtime:1.3.0' };

interface PluginRun {
  child: ChildProcess;
  exit: Promise<number | null>;
  stdout: () => string;
  stderr: () => string;
  output: () => string;
}

/** A merge patch of the status: null clears a field an earlier write set, as the operator's writes do. */
type StatusPatch = { [K in keyof RuntimePoolStatus]?: RuntimePoolStatus[K] | null };

const running = new Set<ChildProcess>();

describe('kubectl telegram rollout against a real apiserver', () => {
  const kc = adminKubeConfig();
  const kubeconfig = testCluster().kubeconfigPath;
  const client = new RestClient(kc, { registry: createRegistry() });
  let namespace = '';

  const run = (args: string[], options: { kubeconfig?: string } = {}): PluginRun => {
    const child = spawn(shim, [...args, '--kubeconfig', options.kubeconfig ?? kubeconfig, '-n', namespace], {
      env: { ...process.env, KUBECONFIG: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    running.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const exit = new Promise<number | null>((resolveExit) =>
      child.once('exit', (code) => {
        running.delete(child);
        resolveExit(code);
      }),
    );
    return { child, exit, stdout: () => stdout, stderr: () => stderr, output: () => stdout + stderr };
  };

  const exitOf = (plugin: PluginRun, timeoutMs = 30_000): Promise<number | null> =>
    waitFor(
      'the plugin to exit',
      () => ((plugin.child.exitCode ?? plugin.child.signalCode) !== null ? plugin.exit : undefined),
      { timeoutMs, onTimeout: () => plugin.output() },
    );

  const waitForOutput = (plugin: PluginRun, pattern: RegExp) =>
    waitFor(`plugin output ${pattern}`, () => (pattern.test(plugin.output()) ? true : undefined), {
      timeoutMs: 20_000,
      onTimeout: () => plugin.output(),
    });

  const occurrences = (text: string, needle: string) => text.split(needle).length - 1;

  const now = () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  const condition = (
    type: string,
    status: Condition['status'],
    reason: string,
    message: string,
  ): Condition => ({ type, status, reason, message, lastTransitionTime: now() });

  const getPool = (name: string) => client.get<TelegramRuntimePool>(RuntimePoolResource, namespace, name);

  const createPool = (name: string, spec: Record<string, unknown> = {}) =>
    client.create<TelegramRuntimePool>(RuntimePoolResource, {
      apiVersion: API_VERSION,
      kind: 'TelegramRuntimePool',
      metadata: { name, namespace },
      spec: { image: CANARY.image, ...spec },
    } as TelegramRuntimePool);

  /** The operator's status write, of the generation the object has now. */
  const setStatus = async (name: string, status: StatusPatch) => {
    const current = await getPool(name);
    await client.mergePatch(
      RuntimePoolResource,
      namespace,
      name,
      { status: { observedGeneration: current.metadata.generation, ...status } },
      { subresource: 'status', fieldManager: OPERATOR },
    );
  };

  const healthy = (revision = STABLE): StatusPatch => ({
    phase: 'Healthy',
    stableRevision: revision.revision,
    stableImage: revision.image,
    canaryRevision: null,
    canaryImage: null,
    rolloutStep: '-',
    weight: 0,
    desiredWeight: 0,
    accounts: 40,
    canaryAccounts: 0,
    accountsInMotion: 0,
    readyPods: '1/1',
    message: 'one version serves every account',
    conditions: [condition('Progressing', 'False', 'NoRollout', 'no rollout in progress')],
  });

  const atStep = (step: number, weight: number, extra: StatusPatch = {}): StatusPatch => ({
    phase: 'Progressing',
    stableRevision: STABLE.revision,
    stableImage: STABLE.image,
    canaryRevision: CANARY.revision,
    canaryImage: CANARY.image,
    currentStep: step,
    desiredWeight: weight,
    weight,
    rolloutStep: `${step + 1}/4 (${weight}%)`,
    accounts: 40,
    canaryAccounts: (40 * weight) / 100,
    accountsInMotion: 0,
    readyPods: '2/2',
    message: `step ${step + 1} holds for 24h`,
    conditions: [condition('Progressing', 'True', 'StepPaused', `step ${step + 1} holds for 24h`)],
    analyses: [
      {
        time: now(),
        step,
        verdict: 'Passed',
        message: 'error ratio 0.001 <= 0.01, p95 120ms <= 500ms',
        canary: { pods: 1, requests: 400, errorRatio: 0.001, p95LatencyMs: 120 },
        stable: { pods: 1, requests: 1600, errorRatio: 0.001, p95LatencyMs: 110 },
      },
    ],
    ...extra,
  });

  const degraded: StatusPatch = {
    ...atStep(1, 25),
    phase: 'Degraded',
    canaryRevision: null,
    canaryImage: null,
    rolledBackRevision: CANARY.revision,
    weight: 0,
    canaryAccounts: 0,
    rolloutStep: '-',
    message: `revision ${CANARY.revision} rolled back: analysis failed`,
    conditions: [
      condition('Degraded', 'True', 'AnalysisFailed', 'p95 latency 900ms above 500ms at step 2'),
      condition('RolledBack', 'True', 'AnalysisFailed', `revision ${CANARY.revision} rolled back`),
    ],
    analyses: [
      {
        time: now(),
        step: 1,
        verdict: 'Failed',
        metric: 'p95LatencyMs',
        message: 'p95 latency 900ms above 500ms',
        canary: { pods: 1, requests: 500, p95LatencyMs: 900 },
      },
    ],
  };

  beforeAll(async () => {
    await installCrds(kc);
    namespace = await createTestNamespace(kc, 'rollout');
  });

  afterEach(() => {
    for (const child of running) child.kill('SIGKILL');
  });

  afterAll(async () => {
    await client.close();
  });

  it('status summarizes the rollout; exit code 0 while Progressing, 0 when Healthy, 1 when Degraded', async () => {
    await createPool('summary');
    await setStatus('summary', atStep(1, 25));
    const progressing = run(['rollout', 'status', 'summary']);
    expect(await exitOf(progressing)).toBe(0);
    const out = progressing.stdout();
    expect(out).toMatch(/^Phase:\s+Progressing$/m);
    expect(out).toContain(`Stable:`);
    expect(out).toMatch(new RegExp(`^Stable:\\s+revision ${STABLE.revision} \\(${STABLE.image}\\)$`, 'm'));
    expect(out).toMatch(new RegExp(`^Canary:\\s+revision ${CANARY.revision} \\(${CANARY.image}\\)$`, 'm'));
    expect(out).toMatch(/^Step:\s+2\/4 \(25%\)$/m);
    expect(out).toMatch(/^Weight:\s+25% of accounts on the canary \(step wants 25%\)$/m);
    expect(out).toMatch(/^Accounts:\s+40, 10 on the canary, 0 in motion$/m);
    expect(out).toMatch(/^Ready pods:\s+2\/2$/m);
    expect(out).toMatch(/^ {2}Progressing\s+True\s+StepPaused\s+step 2 holds for 24h$/m);
    expect(out).toMatch(
      /^ {2}\S+Z\s+step 2\s+Passed\s+-\s+error ratio 0\.001 <= 0\.01, p95 120ms <= 500ms$/m,
    );

    await setStatus('summary', healthy());
    const ok = run(['rollout', 'status', 'summary']);
    expect(await exitOf(ok)).toBe(0);
    expect(ok.stdout()).toMatch(/^Phase:\s+Healthy$/m);
    expect(ok.stdout()).toMatch(/^Canary:\s+\(no rollout in progress\)$/m);

    await setStatus('summary', degraded);
    const bad = run(['rollout', 'status', 'summary']);
    expect(await exitOf(bad)).toBe(1);
    expect(bad.stdout()).toMatch(/^Phase:\s+Degraded$/m);
    expect(bad.stdout()).toMatch(new RegExp(`^Rolled back:\\s+revision ${CANARY.revision} `, 'm'));
    expect(bad.stdout()).toMatch(/^ {2}Degraded\s+True\s+AnalysisFailed\s+p95 latency 900ms above 500ms/m);
    expect(bad.stdout()).toMatch(/step 2\s+Failed\s+p95LatencyMs\s+p95 latency 900ms above 500ms$/m);
  });

  it('pause and resume set spec.rollout.paused and say at which step', async () => {
    await createPool('steady', { rollout: { maxAccountsInMotion: 5 } });
    await setStatus('steady', atStep(1, 25));

    const pause = run(['rollout', 'pause', 'steady']);
    expect(await exitOf(pause)).toBe(0);
    expect(pause.stdout()).toContain('telegramruntimepool/steady paused at step 2/4 (25%)');
    let pool = await getPool('steady');
    expect(pool.spec.rollout).toEqual({ maxAccountsInMotion: 5, paused: true });

    const again = run(['rollout', 'pause', 'steady']);
    expect(await exitOf(again)).toBe(0);
    expect(again.stdout()).toContain('telegramruntimepool/steady is already paused');

    // A stale status (the operator has not seen the pause yet) shows as such.
    const status = run(['rollout', 'status', 'steady']);
    expect(await exitOf(status)).toBe(0);
    expect(status.stdout()).toMatch(/^Paused:\s+yes /m);
    expect(status.stdout()).toMatch(/^Note:\s+the operator has not acted on the latest spec yet/m);

    const resume = run(['rollout', 'resume', 'steady']);
    expect(await exitOf(resume)).toBe(0);
    expect(resume.stdout()).toContain('telegramruntimepool/steady resumed at step 2/4 (25%)');
    pool = await getPool('steady');
    expect(pool.spec.rollout).toEqual({ maxAccountsInMotion: 5, paused: false });
  });

  it('promote writes the promote token for the current step, --full for every step', async () => {
    await createPool('promo');
    await setStatus('promo', atStep(1, 25));

    const step = run(['rollout', 'promote', 'promo']);
    expect(await exitOf(step)).toBe(0);
    expect(step.stdout()).toContain(
      `telegramruntimepool/promo promoted: step 2/4 (25%) of revision ${CANARY.revision} skips its pause`,
    );
    expect((await getPool('promo')).metadata.annotations?.[ANNOTATION_PROMOTE]).toBe(`${CANARY.revision}/1`);

    await setStatus('promo', atStep(2, 50));
    const full = run(['rollout', 'promote', 'promo', '--full']);
    expect(await exitOf(full)).toBe(0);
    expect(full.stdout()).toContain(`revision ${CANARY.revision} skips every remaining pause`);
    const pool = await getPool('promo');
    expect(pool.metadata.annotations?.[ANNOTATION_PROMOTE]).toBe(`${CANARY.revision}/full`);
    expect(pool.spec.rollout?.paused).toBeUndefined();
  });

  it('undo writes the canary revision and says how to retry the image', async () => {
    await createPool('undone');
    await setStatus('undone', atStep(0, 10));
    const undo = run(['rollout', 'undo', 'undone']);
    expect(await exitOf(undo)).toBe(0);
    expect(undo.stdout()).toContain(`undo of revision ${CANARY.revision} requested`);
    expect(undo.stdout()).toContain(`back to revision ${STABLE.revision} (${STABLE.image})`);
    expect(undo.stdout()).toMatch(/to retry the same image later, change the spec \(e\.g\. .*another tag/);
    expect((await getPool('undone')).metadata.annotations?.[ANNOTATION_UNDO]).toBe(CANARY.revision);
  });

  it('promote and undo without a rollout in progress fail and write nothing', async () => {
    await createPool('idle');
    await setStatus('idle', healthy());
    for (const action of ['promote', 'undo']) {
      const plugin = run(['rollout', action, 'idle']);
      expect(await exitOf(plugin)).toBe(1);
      expect(plugin.stderr()).toMatch(/error: no rollout in progress for pool idle/);
      expect(plugin.stderr()).toContain('status.canaryRevision is empty');
    }
    expect((await getPool('idle')).metadata.annotations).toBeUndefined();
  });

  it('a missing pool is exit code 3 with how to list pools', async () => {
    for (const args of [
      ['status', 'nope'],
      ['pause', 'nope'],
      ['promote', 'nope', '--full'],
    ]) {
      const plugin = run(['rollout', ...args]);
      expect(await exitOf(plugin)).toBe(3);
      expect(plugin.stderr()).toContain(
        `telegramruntimepool "nope" not found in namespace "${namespace}" (kubectl get tgp -n ${namespace})`,
      );
    }
  });

  it('status --watch prints each change once and exits 0 when Healthy', async () => {
    await createPool('watched');
    await setStatus('watched', atStep(0, 10));
    const plugin = run(['rollout', 'status', 'watched', '-w']);
    await waitForOutput(plugin, /Progressing, step 1\/4 \(10%\): step 1 holds for 24h\n/);

    await setStatus(
      'watched',
      atStep(1, 25, { message: 'moving 6 accounts to the canary', accountsInMotion: 6 }),
    );
    await waitForOutput(plugin, /Progressing, step 2\/4 \(25%\): moving 6 accounts to the canary\n/);
    // Only the weight moves: no new line.
    await setStatus(
      'watched',
      atStep(1, 25, { message: 'moving 6 accounts to the canary', accountsInMotion: 2 }),
    );
    await setStatus('watched', atStep(1, 25, { message: 'step 2 holds for 24h' }));
    await waitForOutput(plugin, /Progressing, step 2\/4 \(25%\): step 2 holds for 24h\n/);
    expect(plugin.child.exitCode).toBeNull();

    await setStatus('watched', healthy(CANARY));
    expect(await exitOf(plugin)).toBe(0);
    const out = plugin.stdout();
    expect(out).toContain(
      `telegramruntimepool/watched rolled out: revision ${CANARY.revision} (${CANARY.image})`,
    );
    expect(occurrences(out, 'Progressing, step 1/4 (10%): step 1 holds for 24h')).toBe(1);
    expect(occurrences(out, 'Progressing, step 2/4 (25%): moving 6 accounts to the canary')).toBe(1);
    expect(occurrences(out, 'Healthy: one version serves every account')).toBe(1);
  });

  it('status --watch exits 1 when the rollout ends Degraded, and waits out a status older than the spec', async () => {
    await createPool('failing');
    await setStatus('failing', degraded);
    // A new spec: the Degraded status is of the previous generation and does not end the wait.
    await client.mergePatch(RuntimePoolResource, namespace, 'failing', {
      spec: { image: 'registry.example/tdlib-runtime:1.3.1' },
    });
    const plugin = run(['rollout', 'status', 'failing', '--watch', '--timeout', '1m']);
    await waitForOutput(
      plugin,
      /waiting for the operator to act on the latest spec \(generation 2; the status is of 1\)/,
    );
    expect(plugin.child.exitCode).toBeNull();

    await setStatus('failing', atStep(1, 25));
    await waitForOutput(plugin, /Progressing, step 2\/4 \(25%\)/);
    await setStatus('failing', degraded);
    expect(await exitOf(plugin)).toBe(1);
    expect(plugin.stderr()).toMatch(
      /error: telegramruntimepool\/failing is Degraded: AnalysisFailed: p95 latency 900ms above 500ms at step 2; last failed analysis at step 2: p95LatencyMs: p95 latency 900ms above 500ms/,
    );
  });

  it('status --watch --timeout ends with exit code 5 while the rollout goes on', async () => {
    await createPool('slow');
    await setStatus('slow', atStep(0, 10));
    const plugin = run(['rollout', 'status', 'slow', '-w', '--timeout', '2s']);
    expect(await exitOf(plugin)).toBe(5);
    expect(plugin.stderr()).toMatch(
      /error: timed out after 2s waiting for telegramruntimepool\/slow to become Healthy or Degraded; it is Progressing, step 1\/4 \(10%\)/,
    );
  });

  it('with get only: status --watch polls; pause says it needs get and patch', async () => {
    await createPool('guarded');
    await setStatus('guarded', atStep(1, 25));
    const restricted = await restrictedKubeconfig({
      admin: kc,
      rest: client,
      namespace,
      name: 'rollout-viewer',
      rules: [
        { apiGroups: ['telegram.tdlib-operator.dev'], resources: ['telegramruntimepools'], verbs: ['get'] },
      ],
      probe: (restrictedClient) => restrictedClient.get(RuntimePoolResource, namespace, 'guarded'),
    });

    const pause = run(['rollout', 'pause', 'guarded'], { kubeconfig: restricted });
    expect(await exitOf(pause)).toBe(1);
    expect(pause.stderr()).toMatch(
      /not allowed to patch telegramruntimepools\.telegram\.tdlib-operator\.dev in namespace \S+ \(403 Forbidden\): kubectl telegram rollout pause needs get and patch on telegramruntimepools/,
    );
    expect((await getPool('guarded')).spec.rollout).toBeUndefined();

    const watch = run(['rollout', 'status', 'guarded', '-w'], { kubeconfig: restricted });
    await waitForOutput(watch, /Progressing, step 2\/4 \(25%\)/);
    await setStatus('guarded', healthy(CANARY));
    expect(await exitOf(watch)).toBe(0);
    expect(watch.stdout()).toContain('telegramruntimepool/guarded rolled out');
  });
});
