/**
 * The real node: kubelet and containerd beside the e2e control plane run a real pod (a container of a
 * locally built image and its readiness probe), delete it, and leave nothing behind when stopped. The first
 * step of issue 14: the operator and runtime on this node are still to come.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { NODE_IP, PAUSE_IMAGE, REAL_NODE_NAME, RealNode } from '../cluster/real-node.js';
import { waitFor } from '../cluster/wait.js';
import { adminKubeConfig, createTestNamespace, testCluster } from '../support/cluster.js';

const kc = adminKubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
let node: RealNode | undefined;
let dir = '';

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tdlib-operator-real-node-'));
  node = await RealNode.start({ dir, kubeconfigPath: testCluster().kubeconfigPath });
}, 300_000);

afterAll(async () => {
  await node?.stop();
});

describe('a real node', () => {
  it('registers Ready with its host-only InternalIP', async () => {
    const ready = await waitFor(
      `node ${REAL_NODE_NAME} Ready`,
      async () => {
        const n = await core.readNode({ name: REAL_NODE_NAME }).catch(() => undefined);
        return n?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? n : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 250, onTimeout: () => node?.logs() ?? '' },
    );
    expect(ready.status?.addresses).toContainEqual({ type: 'InternalIP', address: NODE_IP });
  });

  it('runs a pod of a local image to Ready through its exec readiness probe, and deletes it', async () => {
    const namespace = await createTestNamespace(kc, 'real-node');
    await core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name: 'sleeper' },
        spec: {
          nodeName: REAL_NODE_NAME,
          terminationGracePeriodSeconds: 2,
          containers: [
            {
              name: 'pause',
              image: PAUSE_IMAGE,
              imagePullPolicy: 'Never',
              readinessProbe: { exec: { command: ['/pause', '--ready'] }, periodSeconds: 1 },
            },
          ],
        },
      },
    });
    const pod = await waitFor(
      'pod sleeper Ready on the real node',
      async () => {
        const p = await core.readNamespacedPod({ namespace, name: 'sleeper' });
        const ready = p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
        return ready && p.status?.podIP ? p : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 250, onTimeout: () => node?.logs() ?? '' },
    );
    expect(pod.status?.podIP?.startsWith('10.88.0.')).toBe(true);
    await core.deleteNamespacedPod({ namespace, name: 'sleeper' });
    await waitFor(
      'pod sleeper gone',
      async () =>
        (await core.readNamespacedPod({ namespace, name: 'sleeper' }).catch(() => undefined))
          ? undefined
          : true,
      { timeoutMs: 60_000, intervalMs: 250, onTimeout: () => node?.logs() ?? '' },
    );
  });

  it('leaves no process, mount or link behind when stopped', async () => {
    await node?.stop();
    node = undefined;
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8');
    expect(mounts.includes(dir)).toBe(false);
    const links = execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' });
    expect(links).not.toMatch(/tdlop/);
  });
});
