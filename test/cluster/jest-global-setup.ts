import { startForJest } from './global-setup.js';

/** Integration tier: etcd + kube-apiserver only (fast start; no pods run). */
export default async function setup(): Promise<void> {
  await startForJest({ controllers: false }, 'integration');
}
