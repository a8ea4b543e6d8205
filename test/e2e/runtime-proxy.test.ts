/** spec.proxy on the real control plane with a simulator runtime: a dead primary fails over; removing it goes direct. */
import * as k8s from '@kubernetes/client-node';
import { GROUP, VERSION, type TelegramAccount } from '../../crds/index.js';
import { waitFor } from '../cluster/wait.js';
import { adminKubeConfig } from '../support/cluster.js';
import type { OperatorProcess } from '../support/operator.js';
import {
  serviceAccountKubeconfig,
  startRuntimeProcess,
  waitForPodReady,
  type RuntimeProcess,
  getTelegramAccount,
  startSimulatorScene,
  SECRET_OPT_IN,
} from '../support/runtime.js';

describe('proxies: failover and removal', () => {
  const kc = adminKubeConfig();
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  let namespace = '';
  let operator: OperatorProcess;
  let runtime: RuntimeProcess;

  const getAccount = () => getTelegramAccount(custom, namespace, 'proxied');
  const waitForAccount = (what: string, test: (a: TelegramAccount) => boolean) =>
    waitFor(
      `proxied: ${what}`,
      async () => {
        const a = await getAccount();
        return test(a) ? a : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 250, onTimeout: () => runtime.output().slice(-3000) },
    );

  beforeAll(async () => {
    let worldDir: string;
    ({ namespace, worldDir, operator } = await startSimulatorScene(kc, 'proxy'));
    await core.createNamespacedSecret({
      namespace,
      body: {
        metadata: { name: 'socks-login', labels: SECRET_OPT_IN },
        stringData: { username: 'demo', password: 'proxy-secret-pw' },
      },
    });
    await core.createNamespacedSecret({
      namespace,
      body: {
        metadata: { name: 'mtproto-secret', labels: SECRET_OPT_IN },
        stringData: { secret: 'dd00112233445566778899aabbccddeeff' },
      },
    });
    await custom.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: 'telegramaccounts',
      body: {
        apiVersion: `${GROUP}/${VERSION}`,
        kind: 'TelegramAccount',
        metadata: { name: 'proxied' },
        spec: {
          type: 'Bot',
          botTokenSecretRef: { name: 'bot-token' },
          apiCredentialsSecretRef: { name: 'api' },
          // The primary is dead in the demo world; the failover entries are alive.
          proxy: {
            type: 'Socks5',
            server: '10.255.0.1',
            port: 1080,
            failover: [
              {
                type: 'Socks5',
                server: 'socks.demo.invalid',
                port: 1080,
                credentialsSecretRef: { name: 'socks-login' },
              },
              {
                link: 'tg://proxy?server=mt.demo.invalid&port=443',
                credentialsSecretRef: { name: 'mtproto-secret' },
              },
            ],
          },
        },
      },
    });
    await waitForPodReady(kc, namespace, 'tdlib-runtime-default-0');
    runtime = startRuntimeProcess({
      pod: 'tdlib-runtime-default-0',
      namespace,
      kubeconfig: await serviceAccountKubeconfig(kc, namespace, 'tdlib-runtime-default'),
      worldDir,
    });
  });

  afterAll(async () => {
    const code = await runtime?.stop();
    await operator.stop();
    // A clean SIGTERM: every client closed, sessions backed up, Leases released (the output says otherwise).
    expect({ code, output: code === 0 ? '' : runtime?.output().slice(-3000) }).toEqual({
      code: 0,
      output: '',
    });
  });

  it('fails over from a dead primary, says why, and reconnects directly once the proxy is removed', async () => {
    const onProxy = await waitForAccount(
      'Ready through the failover proxy',
      (a) =>
        a.status?.proxy?.inUse === 'socks.demo.invalid:1080' &&
        (a.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'),
    );
    expect(onProxy.status?.proxy?.message).toContain('10.255.0.1:1080');
    expect(onProxy.status?.conditions?.find((c) => c.type === 'Connected')?.message).toContain(
      'socks.demo.invalid:1080',
    );

    await custom.patchNamespacedCustomObject(
      {
        group: GROUP,
        version: VERSION,
        namespace,
        plural: 'telegramaccounts',
        name: 'proxied',
        body: { spec: { proxy: null } },
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    const direct = await waitForAccount(
      'reconnected directly',
      (a) =>
        a.status?.proxy?.inUse === 'direct' &&
        a.status.conditions?.find((c) => c.type === 'Connected')?.status === 'True',
    );
    expect(direct.status?.conditions?.find((c) => c.type === 'Connected')?.message).toContain('directly');
    expect(runtime.output()).not.toContain('proxy-secret-pw');
  });
});
