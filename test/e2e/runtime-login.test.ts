/**
 * End to end on the real control plane (controller-manager, scheduler, kwok), the operator, and runtime
 * processes acting as the kwok pods, on the simulator: every login flow, and no secret in any output.
 */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { GROUP, VERSION, type TelegramAccount } from '../../crds/index.js';
import { World } from '../../runtime/simulator/world.js';
import { waitFor } from '../cluster/wait.js';
import { adminKubeConfig, testCluster } from '../support/cluster.js';
import { moduleRecorder } from '../support/module-recorder.js';
import type { OperatorProcess } from '../support/operator.js';
import {
  serviceAccountKubeconfig,
  startRuntimeProcess,
  waitForPodReady,
  type RuntimeProcess,
  getTelegramAccount,
  startSimulatorScene,
  DEMO_API_CREDENTIALS,
  DEMO_BOT_TOKEN,
  SECRET_OPT_IN,
} from '../support/runtime.js';

const run = promisify(execFile);
const plugin = resolve('dist/tools/kubectl-telegram/main.js');
const BOT_TOKEN = DEMO_BOT_TOKEN;
const PASSWORD = 'demo-2fa-password';
const CODE = '12345';
const PHONE = '+15550100001';
const API_HASH = DEMO_API_CREDENTIALS.api_hash;

describe('runtime login flows (simulator backend, runtime processes as kwok pods)', () => {
  const kc = adminKubeConfig();
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  let namespace = '';
  let worldDir = '';
  let operator: OperatorProcess;
  const runtimes: RuntimeProcess[] = [];

  const createAccount = (name: string, spec: Record<string, unknown>) =>
    custom.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: 'telegramaccounts',
      body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'TelegramAccount', metadata: { name }, spec },
    });
  const getAccount = (name: string) => getTelegramAccount(custom, namespace, name);
  const cond = (a: TelegramAccount, type: string) => a.status?.conditions?.find((c) => c.type === type);
  const waitForAccount = (
    name: string,
    what: string,
    test: (a: TelegramAccount) => boolean,
    timeoutMs = 30_000,
  ) =>
    waitFor(
      `${name}: ${what}`,
      async () => {
        const a = await getAccount(name);
        return test(a) ? a : undefined;
      },
      {
        timeoutMs,
        intervalMs: 200,
        onTimeout: () =>
          `operator:\n${operator.rawOutput().slice(-1500)}\nruntimes:\n${runtimes.map((r) => r.output().slice(-2500)).join('\n---\n')}`,
      },
    );
  const secret = (name: string, data: Record<string, string>) =>
    core.createNamespacedSecret({
      namespace,
      body: { metadata: { name, labels: SECRET_OPT_IN }, stringData: data },
    });
  const login = (account: string, code: string) =>
    run(process.execPath, [
      plugin,
      'login',
      account,
      '-n',
      namespace,
      '--kubeconfig',
      testCluster().kubeconfigPath,
      '--code',
      code,
      '--timeout',
      '60s',
    ]).then(
      (r) => ({ code: 0, out: r.stdout + r.stderr }),
      (e: { code?: number; stdout?: string; stderr?: string }) => ({
        code: e.code ?? 1,
        out: `${e.stdout ?? ''}${e.stderr ?? ''}`,
      }),
    );

  const runtimeModules = moduleRecorder();

  beforeAll(async () => {
    ({ namespace, worldDir, operator } = await startSimulatorScene(kc, 'login'));
    await secret('pw', { password: 'not-the-password' });
    await createAccount('news-bot', {
      type: 'Bot',
      botTokenSecretRef: { name: 'bot-token' },
      apiCredentialsSecretRef: { name: 'api' },
    });
    // The operator creates the pool's StatefulSet and ServiceAccount; kwok runs pod-0; we start its process.
    await waitForPodReady(kc, namespace, 'tdlib-runtime-default-0');
    const kubeconfig = await serviceAccountKubeconfig(kc, namespace, 'tdlib-runtime-default');
    runtimes.push(
      startRuntimeProcess({
        pod: 'tdlib-runtime-default-0',
        namespace,
        kubeconfig,
        worldDir,
        nodeArgs: runtimeModules.nodeArgs,
      }),
    );
    await runtimes[0]?.port();
  });

  afterAll(async () => {
    const codes = await Promise.all(runtimes.map((r) => r.stop('SIGTERM')));
    const operatorCode = await operator.stop();
    // A clean SIGTERM: every client closed, sessions backed up, Leases released (the output says otherwise).
    const unclean = runtimes.filter((_, i) => codes[i] !== 0).map((r) => r.output().slice(-3000));
    expect(unclean).toEqual([]);
    expect(operatorCode).toBe(0);
  });

  it('brings a bot account to Ready and backs up its session', async () => {
    const bot = await waitForAccount('news-bot', 'Ready', (a) => cond(a, 'Ready')?.status === 'True');
    expect(bot.status?.authorizationState).toBe('Ready');
    expect(bot.status?.user).toMatchObject({ id: 7000000001, username: 'demo_campaign_bot', isBot: true });
    expect(cond(bot, 'Connected')?.status).toBe('True');
    const session = await waitFor(
      'the session backup',
      async () => {
        const s = await core.readNamespacedSecret({ namespace, name: 'news-bot-tdlib-session' });
        return s.data?.session ? s : undefined;
      },
      { timeoutMs: 15_000 },
    );
    expect(Buffer.from(session.data?.session ?? '', 'base64').length).toBeGreaterThan(16);
  });

  it('runs on its ServiceAccount token without loading client-node', () => {
    const loaded = runtimeModules.loaded();
    expect(loaded.some((url) => url.endsWith('/dist/operator/kube/kubeconfig.js'))).toBe(true);
    expect(loaded.filter((url) => url.includes('@kubernetes/client-node'))).toEqual([]);
  });

  it('logs a user in: WaitCode, a wrong code, the right code, a wrong 2FA password, the right one, Ready', async () => {
    await createAccount('support', {
      type: 'User',
      phoneNumber: PHONE,
      apiCredentialsSecretRef: { name: 'api' },
      passwordSecretRef: { name: 'pw' },
    });
    // Ready summarizes what the runtime reports (the runtime writes it with the report, as the operator would).
    const waiting = await waitForAccount(
      'support',
      'WaitCode',
      (a) => a.status?.authorizationState === 'WaitCode' && cond(a, 'Ready')?.reason === 'WaitCode',
    );
    expect(cond(waiting, 'Ready')).toMatchObject({ status: 'False', reason: 'WaitCode' });
    expect(waiting.status?.hostedBy).toBe('tdlib-runtime-default-0');
    expect(waiting.status?.codeDelivery).toBeTruthy();

    const wrong = await login('support', '99999');
    expect(wrong.code).not.toBe(0);
    expect(wrong.out).toContain('PHONE_CODE_INVALID');
    const rejected = await waitForAccount(
      'support',
      'Authorized reason PHONE_CODE_INVALID',
      (a) => cond(a, 'Authorized')?.reason === 'PHONE_CODE_INVALID',
    );
    expect(rejected.status?.authorizationState).toBe('WaitCode');
    await waitFor(
      'a Warning Event for the wrong code',
      async () => {
        const events = await core.listNamespacedEvent({
          namespace,
          fieldSelector: 'involvedObject.name=support',
        });
        return events.items.find((e) => e.type === 'Warning' && e.reason === 'PHONE_CODE_INVALID');
      },
      { timeoutMs: 10_000 },
    );

    const right = await login('support', CODE);
    expect(right.out).toMatch(/WaitPassword|two-step verification/);
    await waitForAccount(
      'support',
      'Authorized reason PASSWORD_HASH_INVALID',
      (a) => cond(a, 'Authorized')?.reason === 'PASSWORD_HASH_INVALID',
    );

    await core.patchNamespacedSecret(
      { namespace, name: 'pw', body: { stringData: { password: PASSWORD } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    const ready = await waitForAccount('support', 'Ready', (a) => cond(a, 'Ready')?.status === 'True');
    expect(ready.status?.user).toMatchObject({ id: 5550100001, username: 'demo_user', firstName: 'Demo' });
    await expect(core.readNamespacedSecret({ namespace, name: 'support-login-code' })).rejects.toMatchObject({
      code: 404,
    });
  });

  it('logs in by QR code, confirmed from the world side', async () => {
    await secret('qr-pw', { password: PASSWORD });
    await createAccount('qr', {
      type: 'User',
      phoneNumber: PHONE,
      loginMethod: 'QR',
      apiCredentialsSecretRef: { name: 'api' },
      passwordSecretRef: { name: 'qr-pw' },
    });
    const waiting = await waitForAccount('qr', 'a QR link', (a) =>
      (a.status?.qrCodeLink ?? '').startsWith('tg://login?token='),
    );
    World.open(worldDir).confirmQrLogin(waiting.status?.qrCodeLink ?? '', 'demo_user');
    const ready = await waitForAccount('qr', 'Ready', (a) => cond(a, 'Ready')?.status === 'True');
    expect(ready.status?.qrCodeLink).toBeUndefined();
  });

  it('serves /readyz and the tdlib_* metrics', async () => {
    const port = await runtimes[0]?.port();
    expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const value = (name: string) =>
      Number(metrics.match(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm'))?.[1] ?? NaN);
    expect(value('tdlib_active_clients')).toBeGreaterThanOrEqual(3);
    // Every open client was started once at least (it was always 0 before: nothing counted).
    expect(value('tdlib_sessions_total')).toBeGreaterThanOrEqual(value('tdlib_active_clients'));
    expect(metrics).toMatch(/^tdlib_request_duration_seconds_bucket\{[^}]*method="checkAuthenticationCode"/m);
    expect(metrics).toMatch(/^tdlib_errors_total\{[^}]*\} [1-9]/m);
    expect(metrics).toMatch(/^tdlib_hosted_accounts\{state="Ready"\} 3$/m);
    expect(metrics).toMatch(/^nodejs_eventloop_lag_seconds /m);
  });

  it('logs out on delete with deletionPolicy LogOut, then lets the account go', async () => {
    await custom.patchNamespacedCustomObject(
      {
        group: GROUP,
        version: VERSION,
        namespace,
        plural: 'telegramaccounts',
        name: 'qr',
        body: { spec: { deletionPolicy: 'LogOut' } },
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    await waitForAccount(
      'qr',
      'observed LogOut policy',
      (a) => a.status?.observedGeneration === a.metadata.generation && a.spec.deletionPolicy === 'LogOut',
    );
    const logoutsBefore = World.open(worldDir)
      .events()
      .filter((e) => e.type === 'logout').length;
    await custom.deleteNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: 'telegramaccounts',
      name: 'qr',
    });
    await waitFor(
      'qr to be gone',
      () =>
        getAccount('qr').then(
          () => undefined,
          () => true,
        ),
      { timeoutMs: 60_000 },
    );
    // The session was ended at Telegram (the world records the request and the session's end).
    expect(
      World.open(worldDir)
        .events()
        .filter((e) => e.type === 'logout').length,
    ).toBeGreaterThan(logoutsBefore);
  });

  it('never shows a code, password, token, API hash or full phone number in logs, Events or conditions', async () => {
    const events = await core.listNamespacedEvent({ namespace });
    const accounts = await Promise.all(['news-bot', 'support'].map(getAccount));
    const texts = [
      operator.rawOutput(),
      ...runtimes.map((r) => r.output()),
      JSON.stringify(events.items.map((e) => [e.reason, e.message])),
      JSON.stringify(accounts.map((a) => a.status)),
    ].join('\n');
    expect(texts.length).toBeGreaterThan(1000);
    for (const secretText of [CODE, PASSWORD, BOT_TOKEN, API_HASH, PHONE, PHONE.slice(1)])
      expect(texts).not.toContain(secretText);
  });
});
