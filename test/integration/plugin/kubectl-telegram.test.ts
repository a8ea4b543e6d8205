/**
 * The kubectl plugin against the real apiserver of the integration tier. The test plays the runtime's part:
 * it watches for the login-code Secret, deletes it as the runtime does once it has read the code, and
 * writes status through the status subresource under its own field manager.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { API_VERSION, type Condition, type TelegramAccount } from '../../../crds/index.js';
import { RestClient, isNotFound } from '../../../operator/kube/client.js';
import { createRegistry } from '../../../operator/kube/metrics.js';
import { Resources, type ApiObject } from '../../../operator/kube/resource.js';
import { LABEL_ACCOUNT, loginCodeSecretName } from '../../../crds/naming.js';
import { TelegramAccountResource } from '../../../crds/resources.js';
import { waitFor } from '../../cluster/wait.js';
import { restrictedKubeconfig as restrictedKubeconfigFor } from '../../support/restricted-kubeconfig.js';
import { adminKubeConfig, createTestNamespace, testCluster } from '../../support/cluster.js';
import { installCrds } from '../../support/crds.js';

const shim = resolve('bin/kubectl-telegram');
const FIELD_MANAGER = 'test-runtime';

interface SecretObject extends ApiObject {
  type?: string;
  data?: Record<string, string>;
  metadata?: ApiObject['metadata'] & {
    ownerReferences?: Array<{ apiVersion: string; kind: string; name: string; uid: string }>;
  };
}

interface PluginRun {
  child: ChildProcess;
  exit: Promise<number | null>;
  stdout: () => string;
  stderr: () => string;
  output: () => string;
}

const running = new Set<ChildProcess>();

describe('kubectl telegram (the kubectl plugin) against a real apiserver', () => {
  const kc = adminKubeConfig();
  const kubeconfig = testCluster().kubeconfigPath;
  const client = new RestClient(kc, { registry: createRegistry() });
  let namespace = '';

  const run = (
    args: string[],
    options: { stdin?: string; kubeconfig?: string; terminal?: boolean } = {},
  ): PluginRun => {
    const argv = [shim, ...args, '--kubeconfig', options.kubeconfig ?? kubeconfig, '-n', namespace];
    // util-linux script(1) runs the plugin on a pseudo-terminal: what a person at a shell gets.
    const [file, fileArgs] = options.terminal
      ? ['script', ['-qefc', argv.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' '), '/dev/null']]
      : [shim, argv.slice(1)];
    const child = spawn(file as string, fileArgs as string[], {
      env: { ...process.env, KUBECONFIG: '' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    running.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    if (options.stdin !== undefined) child.stdin?.end(options.stdin);
    else if (!options.terminal) child.stdin?.end();
    const exit = new Promise<number | null>((resolveExit) =>
      child.once('exit', (code) => {
        running.delete(child);
        resolveExit(code);
      }),
    );
    return { child, exit, stdout: () => stdout, stderr: () => stderr, output: () => stdout + stderr };
  };

  /** Resolves with the exit code, failing with the plugin's output if it does not exit in time. */
  const exitOf = (plugin: PluginRun, timeoutMs = 30_000): Promise<number | null> =>
    waitFor(
      'the plugin to exit',
      () => ((plugin.child.exitCode ?? plugin.child.signalCode) !== null ? plugin.exit : undefined),
      {
        timeoutMs,
        onTimeout: () => plugin.output(),
      },
    );

  const waitForOutput = (plugin: PluginRun, pattern: RegExp) =>
    waitFor(`plugin output ${pattern}`, () => (pattern.test(plugin.output()) ? true : undefined), {
      timeoutMs: 20_000,
      onTimeout: () => plugin.output(),
    });

  const now = () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  const condition = (
    type: string,
    status: Condition['status'],
    reason: string,
    message: string,
  ): Condition => ({
    type,
    status,
    reason,
    message,
    lastTransitionTime: now(),
  });

  const createAccount = (name: string, spec: Record<string, unknown>, finalizers?: string[]) =>
    client.create<TelegramAccount>(TelegramAccountResource, {
      apiVersion: API_VERSION,
      kind: 'TelegramAccount',
      metadata: { name, namespace, ...(finalizers ? { finalizers } : {}) },
      spec,
    } as TelegramAccount);

  const user = (extra: Record<string, unknown> = {}) => ({
    type: 'User',
    phoneNumber: '+12025550123',
    apiCredentialsSecretRef: { name: 'api' },
    ...extra,
  });

  /** The runtime's status write: merge patch on the status subresource under its own field manager. */
  const setStatus = (name: string, status: Record<string, unknown>) =>
    client.mergePatch(
      TelegramAccountResource,
      namespace,
      name,
      { status },
      {
        subresource: 'status',
        fieldManager: FIELD_MANAGER,
      },
    );

  const waitCode = (name: string, delivery = 'TelegramMessage') =>
    setStatus(name, {
      authorizationState: 'WaitCode',
      codeDelivery: delivery,
      placement: { pool: 'default', pod: 'tdlib-runtime-default-0' },
      conditions: [
        condition('Authorized', 'False', 'WaitCode', 'waiting for the login code'),
        condition('Ready', 'False', 'WaitCode', 'waiting for the login code'),
      ],
    });

  const getSecret = (name: string) =>
    client.get<SecretObject>(Resources.Secret, namespace, name).catch((error: unknown) => {
      if (isNotFound(error)) return undefined;
      throw error;
    });

  /** Waits for the plugin's Secret (a new one: not `previousUid`), as the runtime's watch would see it. */
  const waitForCodeSecret = (account: string, plugin: PluginRun, previousUid?: string, previousRv?: string) =>
    waitFor(
      `Secret ${loginCodeSecretName(account)}`,
      async () => {
        const secret = await getSecret(loginCodeSecretName(account));
        if (!secret) return undefined;
        if (
          previousUid &&
          secret.metadata?.uid === previousUid &&
          secret.metadata.resourceVersion === previousRv
        )
          return undefined;
        return secret;
      },
      { timeoutMs: 20_000, onTimeout: () => plugin.output() },
    );

  const decode = (secret: SecretObject) => Buffer.from(secret.data?.code ?? '', 'base64').toString('utf8');

  /** The code must never show in anything the plugin prints (the namespace name is random digits too). */
  const expectNoCode = (plugin: PluginRun, code: string) => {
    expect(plugin.output().split(namespace).join('<ns>')).not.toContain(code);
  };

  beforeAll(async () => {
    await installCrds(kc);
    namespace = await createTestNamespace(kc, 'plugin');
  });

  afterEach(() => {
    for (const child of running) child.kill('SIGKILL');
  });

  afterAll(async () => {
    await client.close();
  });

  it('prints help with exit code 0, and a usage error with exit code 2', async () => {
    const help = run(['help']);
    expect(await exitOf(help)).toBe(0);
    expect(help.stdout()).toMatch(/kubectl telegram login <account>/);
    const bad = run(['login']);
    expect(await exitOf(bad)).toBe(2);
    expect(bad.stderr()).toMatch(/needs an account name/);
  });

  it('hands a code from stdin to the runtime, then follows WaitPassword to Ready', async () => {
    const account = await createAccount('alice', user({ passwordSecretRef: { name: 'alice-2fa' } }));
    await waitCode('alice');
    const code = '80418';
    const plugin = run(['login', 'alice'], { stdin: `${code}\n` });

    const secret = await waitForCodeSecret('alice', plugin);
    expect(decode(secret)).toBe(code);
    expect(secret.type).toBe('Opaque');
    expect(secret.metadata?.labels).toEqual({
      [LABEL_ACCOUNT]: 'alice',
      'app.kubernetes.io/managed-by': 'kubectl-telegram',
    });
    expect(secret.metadata?.ownerReferences).toEqual([
      expect.objectContaining({
        apiVersion: API_VERSION,
        kind: 'TelegramAccount',
        name: 'alice',
        uid: account.metadata.uid,
      }),
    ]);
    expect(plugin.stdout()).toMatch(/authorization WaitCode/);
    expect(plugin.stdout()).toMatch(/sent via TelegramMessage/);

    // The runtime: read the code, delete the Secret, report the next state.
    await client.delete(Resources.Secret, namespace, loginCodeSecretName('alice'));
    await setStatus('alice', {
      authorizationState: 'WaitPassword',
      conditions: [
        condition('Authorized', 'False', 'WaitPassword', 'waiting for the 2FA password'),
        condition('Ready', 'False', 'WaitPassword', 'waiting for the 2FA password'),
      ],
    });
    await waitForOutput(
      plugin,
      /Two-step verification: .*spec\.passwordSecretRef \(Secret alice-2fa, key password\)/,
    );
    expect(plugin.child.exitCode).toBeNull();

    await setStatus('alice', {
      authorizationState: 'Ready',
      codeDelivery: null,
      user: { id: 424242, username: 'alice_tg', firstName: 'Alice', lastName: 'Liddell' },
      conditions: [
        condition('Authorized', 'True', 'Authorized', 'logged in'),
        condition('Ready', 'True', 'Ready', 'logged in and connected'),
      ],
    });
    expect(await exitOf(plugin)).toBe(0);
    expect(plugin.stdout()).toMatch(/Code accepted\./);
    expect(plugin.stdout()).toMatch(
      /Logged in: .*\/alice is authorized as Alice Liddell \(@alice_tg, id 424242\)\./,
    );
    expectNoCode(plugin, code);

    // Already Ready: says so and exits 0 without asking.
    const again = run(['login', 'alice']);
    expect(await exitOf(again)).toBe(0);
    expect(again.stdout()).toMatch(/Logged in/);
    expect(await getSecret(loginCodeSecretName('alice'))).toBeUndefined();
  });

  it('reports a wrong code (PHONE_CODE_INVALID) and exits non-zero when not interactive; replaces a stale Secret', async () => {
    await createAccount('bob', user());
    await waitCode('bob');
    const stale = await client.create<SecretObject>(Resources.Secret, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: loginCodeSecretName('bob'), namespace },
      type: 'Opaque',
      data: { code: Buffer.from('11111').toString('base64') },
    } as SecretObject);

    const code = '24680';
    const plugin = run(['login', 'bob', '--code', code]);
    const secret = await waitForCodeSecret(
      'bob',
      plugin,
      stale.metadata?.uid,
      stale.metadata?.resourceVersion,
    );
    expect(decode(secret)).toBe(code);
    expect(secret.metadata?.labels?.[LABEL_ACCOUNT]).toBe('bob');
    expect(secret.metadata?.ownerReferences?.[0]?.name).toBe('bob');

    await client.delete(Resources.Secret, namespace, loginCodeSecretName('bob'));
    await setStatus('bob', {
      authorizationState: 'WaitCode',
      conditions: [
        condition('Authorized', 'False', 'PHONE_CODE_INVALID', 'Telegram rejected the code; enter it again'),
        condition('Ready', 'False', 'WaitCode', 'waiting for the login code'),
      ],
    });
    expect(await exitOf(plugin)).toBe(1);
    expect(plugin.stdout()).toMatch(/Replacing Secret bob-login-code left from an earlier attempt/);
    expect(plugin.stderr()).toMatch(
      /Telegram did not accept the code: PHONE_CODE_INVALID: Telegram rejected the code; enter it again/,
    );
    expect(plugin.stderr()).toMatch(/error: the code was not accepted/);
    expectNoCode(plugin, code);
    expect(await getSecret(loginCodeSecretName('bob'))).toBeUndefined();
  });

  it('on a terminal: reads the code without echo, asks again after PHONE_CODE_INVALID, logs in with the second', async () => {
    await createAccount('erin', user());
    await waitCode('erin');
    const plugin = run(['login', 'erin'], { terminal: true });
    await waitForOutput(plugin, /Login code: /);
    plugin.child.stdin?.write('11 111\r');
    const first = await waitForCodeSecret('erin', plugin);
    expect(decode(first)).toBe('11111');
    await client.delete(Resources.Secret, namespace, loginCodeSecretName('erin'));
    await setStatus('erin', {
      authorizationState: 'WaitCode',
      conditions: [
        condition('Authorized', 'False', 'PHONE_CODE_INVALID', 'Telegram rejected the code; enter it again'),
        condition('Ready', 'False', 'WaitCode', 'waiting for the login code'),
      ],
    });
    await waitForOutput(plugin, /Login code \(attempt 2 of 3\): /);
    expect(plugin.output()).toMatch(/Telegram did not accept the code: PHONE_CODE_INVALID/);
    plugin.child.stdin?.write('22222\r');
    const second = await waitForCodeSecret(
      'erin',
      plugin,
      first.metadata?.uid,
      first.metadata?.resourceVersion,
    );
    expect(decode(second)).toBe('22222');
    await client.delete(Resources.Secret, namespace, loginCodeSecretName('erin'));
    await setStatus('erin', {
      authorizationState: 'Ready',
      user: { id: 5, firstName: 'Erin' },
      conditions: [condition('Authorized', 'True', 'Authorized', 'logged in')],
    });
    expect(await exitOf(plugin)).toBe(0);
    expect(plugin.output()).toMatch(/Logged in: .*\/erin is authorized as Erin \(id 5\)/);
    expectNoCode(plugin, '11111');
    expectNoCode(plugin, '11 111');
    expectNoCode(plugin, '22222');
    plugin.child.stdin?.end();
  });

  it('reports a rejected 2FA password, and a missing spec.passwordSecretRef, with exit code 1', async () => {
    await createAccount('frank', user({ passwordSecretRef: { name: 'frank-2fa' } }));
    await setStatus('frank', {
      authorizationState: 'WaitPassword',
      conditions: [condition('Authorized', 'False', 'PasswordRequired', 'waiting for the password Secret')],
    });
    const plugin = run(['login', 'frank']);
    await waitForOutput(plugin, /Two-step verification: /);
    await setStatus('frank', {
      authorizationState: 'WaitPassword',
      conditions: [
        condition('Authorized', 'False', 'PASSWORD_HASH_INVALID', 'checkAuthenticationPassword failed'),
      ],
    });
    expect(await exitOf(plugin)).toBe(1);
    expect(plugin.stderr()).toMatch(
      /did not accept the two-step verification password from Secret frank-2fa: PASSWORD_HASH_INVALID/,
    );

    await createAccount('gina', user());
    await setStatus('gina', {
      authorizationState: 'WaitPassword',
      conditions: [condition('Authorized', 'False', 'PasswordRequired', 'set spec.passwordSecretRef')],
    });
    const missing = run(['login', 'gina']);
    expect(await exitOf(missing)).toBe(1);
    expect(missing.stderr()).toMatch(/two-step verification, but spec\.passwordSecretRef is not set/);
  });

  it('refuses a Bot account (no login needed) with exit code 4 and creates nothing', async () => {
    await createAccount('newsbot', {
      type: 'Bot',
      botTokenSecretRef: { name: 'bot' },
      apiCredentialsSecretRef: { name: 'api' },
    });
    const plugin = run(['login', 'newsbot', '--code', '55555']);
    expect(await exitOf(plugin)).toBe(4);
    expect(plugin.stderr()).toMatch(
      /is a Bot account: it logs in with the token from spec\.botTokenSecretRef; no login needed/,
    );
    expect(await getSecret(loginCodeSecretName('newsbot'))).toBeUndefined();
  });

  it('reports a missing account with exit code 3', async () => {
    const plugin = run(['login', 'nobody'], { stdin: '12345\n' });
    expect(await exitOf(plugin)).toBe(3);
    expect(plugin.stderr()).toMatch(/TelegramAccount .*\/nobody not found/);
    const status = run(['status', 'nobody']);
    expect(await exitOf(status)).toBe(3);
  });

  it('refuses an account that is being deleted with exit code 6', async () => {
    await createAccount('leaving', user(), ['test.tdlib-operator.dev/hold']);
    await client.delete(TelegramAccountResource, namespace, 'leaving');
    const plugin = run(['login', 'leaving'], { stdin: '12345\n' });
    expect(await exitOf(plugin)).toBe(6);
    expect(plugin.stderr()).toMatch(/is being deleted/);
    await client.mergePatch(TelegramAccountResource, namespace, 'leaving', {
      metadata: { finalizers: null },
    });
  });

  it('times out with exit code 5 when no runtime picks the code up, and removes its Secret', async () => {
    await createAccount('idle', user());
    await waitCode('idle');
    const code = '13579';
    const plugin = run(['login', 'idle', '--timeout', '2s'], { stdin: `${code}\n` });
    expect(await exitOf(plugin)).toBe(5);
    expect(plugin.stderr()).toMatch(/timed out after 2s: the runtime did not pick up the code/);
    expect(plugin.stderr()).toMatch(/placed on pod tdlib-runtime-default-0/);
    expect(await getSecret(loginCodeSecretName('idle'))).toBeUndefined();
    expectNoCode(plugin, code);
  });

  it('shows the QR login link and waits for Ready', async () => {
    await createAccount('qr', user({ loginMethod: 'QR' }));
    const link = 'tg://login?token=AQID-test-token';
    await setStatus('qr', {
      authorizationState: 'WaitOtherDeviceConfirmation',
      qrCodeLink: link,
      conditions: [condition('Authorized', 'False', 'WaitOtherDeviceConfirmation', 'scan the QR code')],
    });
    const plugin = run(['login', 'qr']);
    await waitForOutput(plugin, /Confirm this login/);
    expect(plugin.stdout()).toContain(link);
    await setStatus('qr', {
      authorizationState: 'Ready',
      user: { id: 7, firstName: 'Q' },
      conditions: [condition('Authorized', 'True', 'Authorized', 'logged in')],
    });
    expect(await exitOf(plugin)).toBe(0);
    expect(plugin.stdout()).toMatch(/Logged in: .*\/qr is authorized as Q \(id 7\)/);
    expect(await getSecret(loginCodeSecretName('qr'))).toBeUndefined();
  });

  it('status describes the account', async () => {
    await createAccount('carol', user());
    await waitCode('carol', 'Sms');
    const plugin = run(['status', 'carol']);
    expect(await exitOf(plugin)).toBe(0);
    const out = plugin.stdout();
    expect(out).toMatch(/Authorization:\s+WaitCode/);
    expect(out).toMatch(/Code sent via:\s+Sms/);
    expect(out).toMatch(/Phone:\s+\+1\*\*\*23/);
    expect(out).not.toContain('2025550123');
    expect(out).toMatch(/Next step: enter the code Telegram sent: kubectl telegram login carol/);
  });

  it('works with least privilege (get on accounts; no list/watch): polls instead of watching', async () => {
    await createAccount('dave', user());
    const restricted = await restrictedKubeconfig('dave');
    await waitCode('dave');
    const code = '36912';
    const plugin = run(['login', 'dave'], { stdin: `${code}\n`, kubeconfig: restricted });
    const secret = await waitForCodeSecret('dave', plugin);
    expect(decode(secret)).toBe(code);
    await client.delete(Resources.Secret, namespace, loginCodeSecretName('dave'));
    await setStatus('dave', {
      authorizationState: 'Ready',
      user: { id: 99, username: 'dave' },
      conditions: [condition('Authorized', 'True', 'Authorized', 'logged in')],
    });
    expect(await exitOf(plugin)).toBe(0);
    expect(plugin.stdout()).toMatch(/authorized as @dave, id 99/);
    expectNoCode(plugin, code);
  });

  /** A ServiceAccount allowed only get on accounts and create/get/update/delete on Secrets in the namespace. */
  function restrictedKubeconfig(probeAccount: string): Promise<string> {
    return restrictedKubeconfigFor({
      admin: kc,
      rest: client,
      namespace,
      name: 'login-user',
      rules: [
        { apiGroups: ['telegram.tdlib-operator.dev'], resources: ['telegramaccounts'], verbs: ['get'] },
        { apiGroups: [''], resources: ['secrets'], verbs: ['create', 'get', 'update', 'delete'] },
      ],
      probe: (restricted) => restricted.get(TelegramAccountResource, namespace, probeAccount),
    });
  }
});
