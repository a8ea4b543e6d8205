/**
 * Helpers for the kube/ integration suites: private control planes with extra kube-apiserver flags, a TCP
 * proxy that can kill or black-hole watch connections, etcd compaction through its HTTP gateway.
 */
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { ControlPlane, ensureBinaries } from '../../cluster/control-plane.js';
import { createLogger, type Logger } from '../../../operator/kube/logging.js';
import { testCluster } from '../../support/cluster.js';

/** Test logs stay quiet unless LOG_LEVEL asks for more. */
export function testLogger(name: string): Logger {
  return createLogger({ name, level: process.env.LOG_LEVEL ?? 'error' });
}

/**
 * Counts event-loop turns (one setImmediate per turn) until stopped, so a test can see whether work it
 * observes ran in one turn or was spread over several. Spins the loop while running: stop it promptly.
 */
export function turnCounter(): { current: () => number; stop: () => void } {
  let turn = 0;
  let counting = true;
  const next = (): void => {
    turn++;
    if (counting) setImmediate(next);
  };
  setImmediate(next);
  return {
    current: () => turn,
    stop: () => {
      counting = false;
    },
  };
}

export interface PrivatePlane {
  plane: ControlPlane;
  kubeConfig: KubeConfig;
  etcdUrl: string;
}

/**
 * Starts etcd + kube-apiserver with `extraArgs` appended to kube-apiserver's command line. ControlPlane has
 * no option for extra flags, so the binaries are reached through a directory holding symlinks and a
 * kube-apiserver wrapper script that appends them (and records the full command line, which is also where
 * the etcd URL comes from). restartApiServer() re-runs the wrapper, so the flags survive restarts.
 */
export async function startPrivatePlane(label: string, extraArgs: string[]): Promise<PrivatePlane> {
  let realBin: string;
  try {
    realBin = testCluster().binDir ?? ensureBinaries();
  } catch {
    realBin = ensureBinaries();
  }
  const dir = mkdtempSync(join(tmpdir(), `tdlib-operator-kube-${label}-`));
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  for (const name of ['etcd', 'kube-controller-manager', 'kube-scheduler', 'kwok']) {
    if (existsSync(join(realBin, name))) symlinkSync(join(realBin, name), join(bin, name));
  }
  const argsFile = join(dir, 'apiserver-args');
  const quoted = extraArgs.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  writeFileSync(
    join(bin, 'kube-apiserver'),
    `#!/bin/sh\nprintf '%s\\n' "$@" ${quoted} > '${argsFile}'\nexec '${join(realBin, 'kube-apiserver')}' "$@" ${quoted}\n`,
  );
  chmodSync(join(bin, 'kube-apiserver'), 0o755);
  const plane = await ControlPlane.start({ dir, binDir: bin });
  const args = readFileSync(argsFile, 'utf8').split('\n');
  const etcdArg = args.find((a) => a.startsWith('--etcd-servers='));
  if (!etcdArg) throw new Error('kube-apiserver was started without --etcd-servers');
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(plane.info.kubeconfigPath);
  return { plane, kubeConfig, etcdUrl: etcdArg.slice('--etcd-servers='.length) };
}

/** etcd's current revision (the cluster-wide resourceVersion), via the v3 JSON gateway. */
export async function etcdRevision(etcdUrl: string): Promise<number> {
  const response = await fetch(`${etcdUrl}/v3/kv/range`, {
    method: 'POST',
    body: JSON.stringify({ key: Buffer.from('/').toString('base64') }),
  });
  const body = (await response.json()) as { header?: { revision?: string } };
  return Number(body.header?.revision ?? 0);
}

/** Compacts etcd history up to `revision`: watches from older resourceVersions then get 410 Gone. */
export async function compactEtcd(etcdUrl: string, revision: number): Promise<void> {
  const response = await fetch(`${etcdUrl}/v3/kv/compaction`, {
    method: 'POST',
    body: JSON.stringify({ revision: String(revision), physical: true }),
  });
  if (!response.ok)
    throw new Error(`etcd compaction failed: HTTP ${response.status} ${await response.text()}`);
}

/**
 * A TCP proxy in front of the apiserver (TLS passes through untouched). killAll() resets every open
 * connection, like a dropped network path; blackhole() leaves existing connections open but stops moving
 * their bytes, like a half-open connection after a NAT or node failure. New connections always work.
 */
export class TcpProxy {
  private readonly sockets = new Set<{ client: Socket; upstream: Socket; blackholed: boolean }>();
  private server?: Server;
  port = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  async start(): Promise<void> {
    this.server = createServer((client) => {
      const upstream = connect(this.targetPort, this.targetHost);
      const pair = { client, upstream, blackholed: false };
      this.sockets.add(pair);
      client.on('data', (chunk: Buffer) => {
        if (!pair.blackholed) upstream.write(chunk);
      });
      upstream.on('data', (chunk: Buffer) => {
        if (!pair.blackholed) client.write(chunk);
      });
      const close = (): void => {
        this.sockets.delete(pair);
        client.destroy();
        upstream.destroy();
      };
      client.on('close', close);
      upstream.on('close', close);
      client.on('error', close);
      upstream.on('error', close);
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    const address = this.server.address();
    if (address === null || typeof address === 'string') throw new Error('proxy has no port');
    this.port = address.port;
  }

  /** Connections currently open. */
  get connections(): number {
    return this.sockets.size;
  }

  killAll(): number {
    const count = this.sockets.size;
    for (const { client, upstream } of [...this.sockets]) {
      client.resetAndDestroy();
      upstream.destroy();
    }
    return count;
  }

  blackhole(): number {
    let count = 0;
    for (const pair of this.sockets) {
      if (!pair.blackholed) count++;
      pair.blackholed = true;
    }
    return count;
  }

  async stop(): Promise<void> {
    this.killAll();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

/** A copy of `kc` whose current cluster points at `server` (e.g. a proxy), keeping TLS and credentials. */
export function kubeConfigWithServer(kc: KubeConfig, server: string): KubeConfig {
  const cluster = kc.getCurrentCluster();
  const user = kc.getCurrentUser();
  if (!cluster || !user) throw new Error('kubeconfig has no current cluster or user');
  const copy = new KubeConfig();
  copy.loadFromOptions({
    clusters: [{ ...cluster, server }],
    users: [user],
    contexts: [{ name: 'via', cluster: cluster.name, user: user.name }],
    currentContext: 'via',
  });
  return copy;
}
