import { startForJest } from './global-setup.js';

/** End-to-end tier: the whole control plane plus kwok fake nodes, so workloads get pods that reach Ready. */
export default async function setup(): Promise<void> {
  await startForJest({ controllers: true, kwokNodes: 3 }, 'e2e');
}
