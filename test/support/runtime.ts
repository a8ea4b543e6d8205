/**
 * Runtime processes started out of cluster as the runtime pods kwok "runs": the test plays the kubelet.
 * Each process authenticates as its pool's ServiceAccount (the one the operator created), so the
 * least-privilege Role is what the runtime really runs with.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { stringify } from 'yaml';
import {
  GROUP,
  LABEL_SECRET_OPT_IN,
  SECRET_OPT_IN_VALUE,
  VERSION,
  type TelegramAccount,
} from '../../crds/index.js';
import { waitFor } from '../cluster/wait.js';
import { createTestNamespace } from './cluster.js';
import { installCrds } from './crds.js';
import { operatorKubeconfig, startOperatorProcess, type OperatorProcess } from './operator.js';

const runtimeMain = resolve('dist/runtime/main.js');

/** A private copy of the demo world, so tests never share simulator state. */
export function demoWorld(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tdlib-operator-world-'));
  cpSync(resolve('config/samples/simulator-world.yaml'), join(dir, 'world.yaml'));
  return dir;
}

/** The label with which a Secret's owner lets runtime pods read it for the accounts that name it. */
export const SECRET_OPT_IN = { [LABEL_SECRET_OPT_IN]: SECRET_OPT_IN_VALUE };

/** The demo world's bot token and API credentials (config/samples/simulator-world.yaml). */
export const DEMO_BOT_TOKEN = '7000000001:AAH-demo-simulator-token';
export const DEMO_API_CREDENTIALS = { api_id: '94575', api_hash: '0123456789abcdef0123456789abcdef' };

export interface SimulatorScene {
  readonly namespace: string;
  readonly worldDir: string;
  readonly operator: OperatorProcess;
}

/**
 * What every runtime e2e test starts from: the CRDs, a fresh namespace, a private demo world, the operator
 * watching that namespace with simulator runtimes, and the demo world's Secrets 'api' and 'bot-token'.
 */
export async function startSimulatorScene(kc: k8s.KubeConfig, prefix: string): Promise<SimulatorScene> {
  await installCrds(kc);
  const namespace = await createTestNamespace(kc, prefix);
  const worldDir = demoWorld();
  const operator = startOperatorProcess(await operatorKubeconfig(), {
    WATCH_NAMESPACE: namespace,
    RUNTIME_BACKEND: 'simulator',
  });
  const core = kc.makeApiClient(k8s.CoreV1Api);
  await core.createNamespacedSecret({
    namespace,
    body: { metadata: { name: 'api', labels: SECRET_OPT_IN }, stringData: DEMO_API_CREDENTIALS },
  });
  await core.createNamespacedSecret({
    namespace,
    body: { metadata: { name: 'bot-token', labels: SECRET_OPT_IN }, stringData: { token: DEMO_BOT_TOKEN } },
  });
  return { namespace, worldDir, operator };
}

export async function getTelegramAccount(
  custom: k8s.CustomObjectsApi,
  namespace: string,
  name: string,
): Promise<TelegramAccount> {
  return (await custom.getNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace,
    plural: 'telegramaccounts',
    name,
  })) as TelegramAccount;
}

/** A fresh TokenRequest token of a ServiceAccount, for one audience. */
export function serviceAccountToken(
  admin: k8s.KubeConfig,
  namespace: string,
  name: string,
  audience: string,
): Promise<string> {
  const core = admin.makeApiClient(k8s.CoreV1Api);
  return waitFor(
    `a token for ${namespace}/${name}`,
    async () =>
      (
        await core.createNamespacedServiceAccountToken({
          namespace,
          name,
          body: { spec: { audiences: [audience], expirationSeconds: 3600 } },
        })
      ).status?.token,
    { timeoutMs: 30_000 },
  );
}

/** A kubeconfig that authenticates as `serviceAccount` in `namespace` (a fresh TokenRequest token). */
export async function serviceAccountKubeconfig(
  admin: k8s.KubeConfig,
  namespace: string,
  serviceAccount: string,
): Promise<string> {
  const core = admin.makeApiClient(k8s.CoreV1Api);
  const token = await waitFor(
    `ServiceAccount ${namespace}/${serviceAccount}`,
    () =>
      core.createNamespacedServiceAccountToken({
        namespace,
        name: serviceAccount,
        body: {
          spec: { audiences: ['https://kubernetes.default.svc.cluster.local'], expirationSeconds: 86400 },
        },
      }),
    { timeoutMs: 30_000 },
  );
  const cluster = admin.getCurrentCluster();
  if (!cluster || !token.status?.token) throw new Error(`no token for ${serviceAccount}`);
  const dir = mkdtempSync(join(tmpdir(), 'tdlib-operator-rt-sa-'));
  const path = join(dir, 'kubeconfig');
  writeFileSync(
    path,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        { name: 'test', cluster: { server: cluster.server, 'certificate-authority-data': cluster.caData } },
      ],
      users: [{ name: serviceAccount, user: { token: token.status.token } }],
      contexts: [{ name: 'runtime', context: { cluster: 'test', user: serviceAccount } }],
      'current-context': 'runtime',
    }),
    { mode: 0o600 },
  );
  return path;
}

export interface RuntimeProcess {
  pod: string;
  child: ChildProcess;
  dataDir: string;
  output: () => string;
  port: () => Promise<number>;
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
}

export function startRuntimeProcess(options: {
  pod: string;
  namespace: string;
  pool?: string;
  kubeconfig: string;
  worldDir: string;
  dataDir?: string;
  env?: Record<string, string>;
  /** Node options before the runtime's entry point (e.g. --import of a preload). */
  nodeArgs?: readonly string[];
}): RuntimeProcess {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), `tdlib-operator-data-${options.pod}-`));
  mkdirSync(dataDir, { recursive: true });
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), runtimeMain], {
    env: {
      ...process.env,
      KUBECONFIG: options.kubeconfig,
      POD_NAME: options.pod,
      POD_NAMESPACE: options.namespace,
      RUNTIME_POOL: options.pool ?? 'default',
      TDLIB_BACKEND: 'simulator',
      TDLIB_SIMULATOR_WORLD: options.worldDir,
      TDLIB_DATA_DIR: dataDir,
      HTTP_PORT: '0',
      RUNTIME_LEASE_SECONDS: '3',
      LOG_LEVEL: 'info',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr?.setEncoding('utf8').on('data', (c: string) => (out += c));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return {
    pod: options.pod,
    child,
    dataDir,
    output: () => out,
    port: () =>
      waitFor(
        `runtime ${options.pod} to report its port`,
        () => {
          const m = out.match(/"port":(\d+)[^\n]*"msg":"runtime started"/);
          return m ? Number(m[1]) : undefined;
        },
        { timeoutMs: 20_000, onTimeout: () => out.slice(-3000) },
      ),
    stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Waits until kwok reports the runtime pod Ready: the moment a kubelet would start its container. */
export function waitForPodReady(kc: k8s.KubeConfig, namespace: string, name: string): Promise<true> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  return waitFor(
    `pod ${name} Ready (kwok)`,
    async () => {
      const pod = await core.readNamespacedPod({ namespace, name });
      return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')
        ? true
        : undefined;
    },
    { timeoutMs: 60_000 },
  );
}
