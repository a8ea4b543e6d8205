import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { waitFor } from '../cluster/wait.js';
import { testCluster } from './cluster.js';

export const OPERATOR_NAMESPACE = 'tdlib-operator-system';
const operatorMain = resolve('dist/operator/main.js');

/**
 * Applies config/rbac (ServiceAccount, the shipped ClusterRole and its binding) and returns a kubeconfig
 * that authenticates as that ServiceAccount: tests run the operator with exactly the rights users grant it.
 */
export async function operatorKubeconfig(kubeconfig = testCluster().kubeconfigPath): Promise<string> {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfig);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: OPERATOR_NAMESPACE } } }).catch((error: unknown) => {
    if (!(error instanceof k8s.ApiException && error.code === 409)) throw error;
  });
  execFileSync(
    'kubectl',
    ['--kubeconfig', kubeconfig, 'apply', '--server-side', '-k', resolve('config/rbac')],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const token = await core.createNamespacedServiceAccountToken({
    namespace: OPERATOR_NAMESPACE,
    name: 'tdlib-operator',
    body: { spec: { audiences: ['https://kubernetes.default.svc.cluster.local'], expirationSeconds: 86400 } },
  });
  const cluster = kc.getCurrentCluster();
  if (!cluster || !token.status?.token)
    throw new Error('could not get a token for the operator ServiceAccount');
  const dir = mkdtempSync(join(tmpdir(), 'tdlib-operator-sa-'));
  const path = join(dir, 'kubeconfig');
  writeFileSync(
    path,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        { name: 'test', cluster: { server: cluster.server, 'certificate-authority-data': cluster.caData } },
      ],
      users: [{ name: 'tdlib-operator', user: { token: token.status.token } }],
      contexts: [{ name: 'operator', context: { cluster: 'test', user: 'tdlib-operator' } }],
      'current-context': 'operator',
    }),
    { mode: 0o600 },
  );
  return path;
}

export interface OperatorProcess {
  child: ChildProcess;
  /** Every JSON log line so far. */
  logs: Array<Record<string, unknown>>;
  rawOutput: () => string;
  metricsPort: () => Promise<number>;
  scrape: () => Promise<string>;
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
}

export function startOperatorProcess(kubeconfig: string, env: Record<string, string> = {}): OperatorProcess {
  const child = spawn(process.execPath, [operatorMain], {
    env: {
      ...process.env,
      KUBECONFIG: kubeconfig,
      METRICS_PORT: '0',
      HEALTH_PORT: '0',
      OPERATOR_NAMESPACE,
      RUNTIME_STORAGE_SIZE: 'emptyDir',
      LOG_LEVEL: 'info',
      LEASE_DURATION_SECONDS: '4',
      RENEW_DEADLINE_SECONDS: '3',
      RETRY_PERIOD_SECONDS: '1',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Array<Record<string, unknown>> = [];
  let raw = '';
  let partial = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    raw += chunk;
    partial += chunk;
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const line of lines) {
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not a log line
      }
    }
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (raw += chunk));
  const exited = new Promise<number | null>((resolvePromise) =>
    child.once('exit', (code) => resolvePromise(code)),
  );
  const metricsPort = (): Promise<number> =>
    waitFor(
      'the operator to report its ports',
      () => {
        const started = logs.find((l) => l.msg === 'operator started');
        return (started?.ports as { metrics?: number } | undefined)?.metrics;
      },
      { timeoutMs: 20_000, onTimeout: () => raw.slice(-3000) },
    );
  return {
    child,
    logs,
    rawOutput: () => raw,
    metricsPort,
    scrape: async () => {
      const port = await metricsPort();
      const response = await fetch(`http://127.0.0.1:${port}/metrics`);
      return response.text();
    },
    stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Sum of a Prometheus counter over the series whose labels match `labels`. */
export function metricSum(text: string, name: string, labels: Record<string, string | RegExp> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const labelText = line.slice(name.length).match(/^\{(.*)\}/)?.[1] ?? '';
    const found = Object.fromEntries([...labelText.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    const ok = Object.entries(labels).every(([k, v]) =>
      typeof v === 'string' ? found[k] === v : v.test(found[k] ?? ''),
    );
    if (ok) sum += Number(line.split(' ').pop());
  }
  return sum;
}

/**
 * The operator as a Deployment would run it: restarted whenever it exits on its own (e.g. after losing its
 * leader Lease during an API outage, which makes it exit by design). stop() ends it for good.
 */
export interface SupervisedOperator {
  current: () => OperatorProcess;
  restarts: () => number;
  /** Everything every incarnation printed. */
  rawOutput: () => string;
  stop: () => Promise<void>;
}

export function startSupervisedOperator(
  kubeconfig: string,
  env: Record<string, string> = {},
): SupervisedOperator {
  let stopping = false;
  let restarts = 0;
  let earlier = '';
  let current = startOperatorProcess(kubeconfig, env);
  const watch = (operator: OperatorProcess): void => {
    operator.child.once('exit', () => {
      if (stopping) return;
      earlier += operator.rawOutput();
      restarts++;
      current = startOperatorProcess(kubeconfig, env);
      watch(current);
    });
  };
  watch(current);
  return {
    current: () => current,
    restarts: () => restarts,
    rawOutput: () => earlier + current.rawOutput(),
    stop: async () => {
      stopping = true;
      await current.stop();
    },
  };
}
