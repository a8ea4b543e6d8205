import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { clusterSourceDir } from './control-plane.js';

function pinned(key: string): string {
  const text = readFileSync(join(clusterSourceDir, 'versions.env'), 'utf8');
  const match = new RegExp(`^${key}=(\\S+)$`, 'm').exec(text);
  if (!match?.[1]) throw new Error(`versions.env has no ${key}`);
  return match[1];
}

/** The Kubernetes release the test control plane is built from (test/cluster/versions.env). */
export const K8S_VERSION = pinned('K8S_VERSION');
export const KWOK_VERSION = pinned('KWOK_VERSION');
export const PROMETHEUS_MODULE_VERSION = pinned('PROMETHEUS_MODULE_VERSION');
export const HELM_VERSION = pinned('HELM_VERSION');
