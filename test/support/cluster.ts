import { readFileSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import { CLUSTER_INFO_ENV } from '../cluster/global-setup.js';
import type { Pki } from '../cluster/pki.js';

export interface TestClusterInfo {
  kubeconfigPath: string;
  existing: boolean;
  apiServerUrl?: string;
  pki?: Pki;
  dir?: string;
  binDir?: string;
  logs?: Record<string, string>;
  pids?: Record<string, number>;
}

/** The cluster the jest global setup started (or the existing one it was told to use). */
export function testCluster(): TestClusterInfo {
  const path = process.env[CLUSTER_INFO_ENV];
  if (!path)
    throw new Error(
      `${CLUSTER_INFO_ENV} is not set: run this suite through its jest project (npm run test:integration)`,
    );
  return JSON.parse(readFileSync(path, 'utf8')) as TestClusterInfo;
}

export function adminKubeConfig(): k8s.KubeConfig {
  return clientNodeKubeConfig(testCluster().kubeconfigPath);
}

/** client-node's KubeConfig of a file, for the test helpers built on its generated API clients. */
export function clientNodeKubeConfig(path: string): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(path);
  return kc;
}

/** A kubeconfig for the same cluster that authenticates with a bearer token instead of the admin cert. */
export function tokenKubeConfig(admin: k8s.KubeConfig, token: string): k8s.KubeConfig {
  const cluster = admin.getCurrentCluster();
  if (!cluster) throw new Error('admin kubeconfig has no current cluster');
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({
    clusters: [cluster],
    users: [{ name: 'token-user', token }],
    contexts: [{ name: 'token', cluster: cluster.name, user: 'token-user' }],
    currentContext: 'token',
  });
  return kc;
}

let counter = 0;
/** Creates a namespace with a unique name so test files never see each other's objects. */
export async function createTestNamespace(kc: k8s.KubeConfig, prefix: string): Promise<string> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const name = `${prefix}-${process.pid}-${Date.now().toString(36)}-${counter++}`.slice(0, 63);
  await core.createNamespace({ body: { metadata: { name } } });
  return name;
}

/** The HTTP status of an error thrown by @kubernetes/client-node, or undefined if it is not an API error. */
export function apiStatus(error: unknown): number | undefined {
  if (error instanceof k8s.ApiException) return error.code;
  return undefined;
}
