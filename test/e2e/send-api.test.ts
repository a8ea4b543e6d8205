/**
 * The send API end to end: a workload's ServiceAccount token for the API's audience, RBAC on
 * `telegramaccounts/messages`, the gateway routing to the runtime pod hosting the account, and exactly one
 * message per Idempotency-Key, also when the runtime dies between accepting a send and TDLib sending it.
 * Counted in the simulated world's own delivery log.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { GROUP, VERSION } from '../../crds/index.js';
import { World } from '../../runtime/simulator/world.js';
import { waitFor } from '../cluster/wait.js';
import { adminKubeConfig, createTestNamespace, testCluster } from '../support/cluster.js';
import { startCampaignScene, type CampaignScene } from '../support/campaign-scene.js';
import { recipientName, RECIPIENT_BASE_ID, USER_SENDER_BASE_ID } from '../support/campaign-world.js';
import { callSendApi, startGatewayProcess, type GatewayProcess } from '../support/gateway.js';
import { serviceAccountToken } from '../support/runtime.js';
import { routableAddress } from '../support/update-receiver.js';

const ACCOUNT = 'support';
const SEND_AUDIENCE = 'tdlib-operator-send-api';
const RUNTIME_AUDIENCE = 'tdlib-operator-runtime';

const kc = adminKubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
const custom = kc.makeApiClient(k8s.CustomObjectsApi);
const merge = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

const token = (namespace: string, name: string, audience: string): Promise<string> =>
  serviceAccountToken(kc, namespace, name, audience);

describe('send API', () => {
  let scene: CampaignScene;
  let gateway: GatewayProcess;
  let other = '';
  let appToken = '';
  const messagesUrl = () =>
    `${gateway.url}/v1/namespaces/${scene.namespace}/telegramaccounts/${ACCOUNT}/messages`;
  const send = (key: string | undefined, text: string, tokenValue = appToken) =>
    callSendApi(messagesUrl(), {
      token: tokenValue,
      ...(key ? { key } : {}),
      body: { to: `@${recipientName(0)}`, text },
      ca: gateway.ca,
    });
  const delivered = (text: string) =>
    World.open(scene.worldDir).deliveries((d) => d.to === RECIPIENT_BASE_ID && d.text === text);
  beforeAll(async () => {
    // The gateway's identity is a ServiceAccount; the runtimes accept its token and nothing else.
    const gatewayNamespace = await createTestNamespace(kc, 'send-gw');
    await core.createNamespacedServiceAccount({
      namespace: gatewayNamespace,
      body: { metadata: { name: 'tdlib-send-gateway' } },
    });
    scene = await startCampaignScene({
      prefix: 'send-api',
      world: { recipients: 3, userSenders: 1, bot: false },
      senders: [{ name: ACCOUNT, kind: 'user', index: 0 }],
      pods: 1,
      accountsPerPod: 1,
      runtimeEnv: {
        POD_IP: '127.0.0.1',
        SEND_GATEWAY_SERVICE_ACCOUNT: `system:serviceaccount:${gatewayNamespace}:tdlib-send-gateway`,
      },
    });
    gateway = await startGatewayProcess({
      kubeconfig: testCluster().kubeconfigPath,
      namespace: scene.namespace,
      runtimeToken: await token(gatewayNamespace, 'tdlib-send-gateway', RUNTIME_AUDIENCE),
    });
    // A workload allowed to send as the account, and one of another namespace that is not.
    await core.createNamespacedServiceAccount({
      namespace: scene.namespace,
      body: { metadata: { name: 'app' } },
    });
    await rbac.createNamespacedRole({
      namespace: scene.namespace,
      body: {
        metadata: { name: 'send-as-support' },
        rules: [
          {
            apiGroups: [GROUP],
            resources: ['telegramaccounts/messages'],
            resourceNames: [ACCOUNT],
            verbs: ['create'],
          },
        ],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: scene.namespace,
      body: {
        metadata: { name: 'app-sends-as-support' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'send-as-support' },
        subjects: [{ kind: 'ServiceAccount', name: 'app', namespace: scene.namespace }],
      },
    });
    other = await createTestNamespace(kc, 'send-other');
    await core.createNamespacedServiceAccount({ namespace: other, body: { metadata: { name: 'app' } } });
    appToken = await token(scene.namespace, 'app', SEND_AUDIENCE);
  }, 180_000);

  afterAll(async () => {
    await gateway?.stop();
    await scene?.stop();
  });

  it('sends through the account and answers a retry with the same message, once', async () => {
    const first = await send('order-1', 'your order shipped');
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ chatId: RECIPIENT_BASE_ID, replayed: false });
    expect(typeof first.body.messageId).toBe('number');
    const retried = await send('order-1', 'your order shipped');
    expect(retried.status).toBe(200);
    expect(retried.body).toEqual({ ...first.body, replayed: true });
    expect(delivered('your order shipped')).toHaveLength(1);
  });

  it('edits the message it sent: the recipient’s chat holds the new text, and the edit is not a new message', async () => {
    const sent = await send('order-2', 'your order ships Monday');
    expect(sent.status).toBe(200);
    const edit = () =>
      callSendApi(messagesUrl(), {
        token: appToken,
        key: 'order-2-fix',
        body: {
          to: `@${recipientName(0)}`,
          text: 'your order ships Tuesday',
          editMessageId: sent.body.messageId,
        },
        ca: gateway.ca,
      });
    const edited = await edit();
    expect(edited.status).toBe(200);
    expect(edited.body).toEqual({ ...sent.body, replayed: false });
    expect((await edit()).body).toEqual({ ...sent.body, replayed: true });
    const edits = World.open(scene.worldDir)
      .edits()
      .filter((e) => e.chat_id === RECIPIENT_BASE_ID && e.message_id === sent.body.messageId);
    expect(edits.map((e) => e.text)).toEqual(['your order ships Tuesday']);
    expect(delivered('your order ships Tuesday')).toHaveLength(0);
  });

  it('the sample echo receiver (config/samples/echo-receiver.mjs) answers what the account receives, through the gateway, once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'echo-receiver-'));
    writeFileSync(join(dir, 'token'), appToken, { mode: 0o600 });
    writeFileSync(join(dir, 'ca.crt'), gateway.ca);
    writeFileSync(join(dir, 'updates-token'), 'echo-test-token', { mode: 0o600 });
    const echo = spawn(process.execPath, [resolve('config/samples/echo-receiver.mjs')], {
      env: {
        ...process.env,
        PORT: '0',
        SEND_API_URL: gateway.url,
        SEND_API_TOKEN_FILE: join(dir, 'token'),
        UPDATES_AUTH_FILE: join(dir, 'updates-token'),
        NODE_EXTRA_CA_CERTS: join(dir, 'ca.crt'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    echo.stdout?.setEncoding('utf8').on('data', (c: string) => (out += c));
    echo.stderr?.setEncoding('utf8').on('data', (c: string) => (out += c));
    try {
      const port = await waitFor('the echo receiver to listen', () => /listening on :(\d+)/.exec(out)?.[1], {
        timeoutMs: 10_000,
        onTimeout: () => out,
      });
      await core.createNamespacedSecret({
        namespace: scene.namespace,
        body: {
          metadata: { name: 'echo-token', labels: { [`${GROUP}/usable-by-accounts`]: 'true' } },
          stringData: { token: 'echo-test-token' },
        },
      });
      await custom.patchNamespacedCustomObject(
        {
          group: GROUP,
          version: VERSION,
          namespace: scene.namespace,
          plural: 'telegramaccounts',
          name: ACCOUNT,
          body: {
            spec: {
              updates: {
                sink: { uri: `http://${routableAddress()}:${port}/` },
                auth: { secretRef: { name: 'echo-token' } },
              },
            },
          },
        },
        merge,
      );
      await waitFor(
        'UpdatesDelivering True',
        async () => {
          const account = (await custom.getNamespacedCustomObject({
            group: GROUP,
            version: VERSION,
            namespace: scene.namespace,
            plural: 'telegramaccounts',
            name: ACCOUNT,
          })) as { status?: { conditions?: Array<{ type: string; status: string }> } };
          return account.status?.conditions?.some(
            (c) => c.type === 'UpdatesDelivering' && c.status === 'True',
          )
            ? true
            : undefined;
        },
        { timeoutMs: 60_000 },
      );
      const world = World.open(scene.worldDir);
      const asked = world.sendMessage(`@${recipientName(1)}`, USER_SENDER_BASE_ID, 'ping from a recipient');
      const echoed = () =>
        World.open(scene.worldDir).deliveries(
          (d) => d.to === RECIPIENT_BASE_ID + 1 && d.text === 'echo: ping from a recipient',
        );
      await waitFor('the echo in the recipient’s chat', () => (echoed().length > 0 ? true : undefined), {
        timeoutMs: 60_000,
        onTimeout: () => out,
      });
      // The receiver logs the gateway's answer, which comes after the message is in the chat.
      const replied = `${asked.from}:${asked.message_id}:new: replied, 200`;
      await waitFor('the receiver to log the answer', () => (out.includes(replied) ? true : undefined), {
        timeoutMs: 30_000,
        onTimeout: () => out,
      });
      expect(echoed()).toHaveLength(1);
    } finally {
      echo.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses what it must: no key, another request under a used key, GET', async () => {
    const noKey = await send(undefined, 'no key');
    expect(noKey.status).toBe(400);
    expect(String(noKey.body.message)).toContain('Idempotency-Key');
    const reused = await send('order-1', 'something else');
    expect(reused.status).toBe(422);
    const get = await callSendApi(messagesUrl(), { method: 'GET', token: appToken, ca: gateway.ca });
    expect(get.status).toBe(405);
    expect(get.headers.allow).toBe('POST');
    expect(delivered('no key')).toHaveLength(0);
    expect(delivered('something else')).toHaveLength(0);
  });

  it('RBAC decides: another namespace’s ServiceAccount gets 403, a token for another audience 401', async () => {
    const stranger = await send('x-1', 'from a stranger', await token(other, 'app', SEND_AUDIENCE));
    expect(stranger.status).toBe(403);
    expect(String(stranger.body.message)).toContain(`system:serviceaccount:${other}:app`);
    const wrongAudience = await send(
      'x-2',
      'wrong audience',
      await token(scene.namespace, 'app', 'https://kubernetes.default.svc'),
    );
    expect(wrongAudience.status).toBe(401);
    expect(wrongAudience.headers['www-authenticate']).toBe('Bearer');
    expect(delivered('from a stranger')).toHaveLength(0);
    expect(delivered('wrong audience')).toHaveLength(0);
  });

  it('the runtime’s own port takes no one but the gateway', async () => {
    // Where the runtime says its send endpoint is (its heartbeat Lease), as the gateway finds it.
    const coordination = kc.makeApiClient(k8s.CoordinationV1Api);
    const lease = await coordination.readNamespacedLease({
      namespace: scene.namespace,
      name: 'tdlib-runtime-default-0',
    });
    const base = lease.metadata?.annotations?.['telegram.tdlib-operator.dev/send-url'];
    expect(base).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const direct = `${base}/v1/namespaces/${scene.namespace}/telegramaccounts/${ACCOUNT}/messages`;
    for (const tokenValue of [undefined, appToken, await token(scene.namespace, 'app', RUNTIME_AUDIENCE)]) {
      const answer = await callSendApi(direct, {
        ...(tokenValue ? { token: tokenValue } : {}),
        key: 'bypass-1',
        body: { to: `@${recipientName(0)}`, text: 'bypass' },
      });
      expect(answer.status).toBe(401);
    }
    expect(delivered('bypass')).toHaveLength(0);
  });

  it('exactly one message when the runtime dies between accepting the send and TDLib sending it', async () => {
    const pod = 'tdlib-runtime-default-0';
    await scene.runtime(pod)?.stop('SIGTERM');
    const sentBefore = delivered('invoice 7 is due').length;
    expect(sentBefore).toBe(0);
    const dying = await scene.startRuntime(pod, { RUNTIME_TEST_KILL_AFTER_SEND_ACCEPT: 'true' });
    // Until the new process runs the account, sends are refused without taking the key (503, not ready).
    const lost = await waitFor(
      'the send accepted by the runtime, which then died',
      async () => {
        const answer = await send('invoice-7', 'invoice 7 is due');
        return answer.body.reason === 'RuntimeUnavailable' ? answer : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500, onTimeout: () => scene.logs() },
    );
    // The runtime accepted it, then died: the gateway cannot tell the caller what happened.
    expect(lost.status).toBe(503);
    await dying.stop();
    expect(dying.child.signalCode).toBe('SIGKILL');
    expect(delivered('invoice 7 is due')).toHaveLength(0);
    const retried = await waitFor(
      'the retry to be answered',
      async () => {
        // Playing the kubelet: the container restarts, and if the operator meanwhile declared the pod dead
        // and moved the account, the pod it moved to starts too.
        await scene.kubelet();
        const answer = await send('invoice-7', 'invoice 7 is due');
        return answer.status === 200 ? answer : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 1000, onTimeout: () => scene.logs() },
    );
    expect(retried.body).toMatchObject({ chatId: RECIPIENT_BASE_ID });
    expect((await send('invoice-7', 'invoice 7 is due')).body).toEqual({ ...retried.body, replayed: true });
    expect(delivered('invoice 7 is due')).toHaveLength(1);
  }, 240_000);
});
