/**
 * A real node next to the control plane, as Kubernetes' hack/local-up-cluster.sh runs one: kubelet with
 * containerd, Debian's runc and CNI plugins, pods in network namespaces on a host-only bridge. Everything it
 * makes lives under one directory, except what kubelet, containerd and libcni hardcode (removed on stop; see
 * ../shared/notes/real-node.md). Needs root.
 *
 * Host-only networking: the node's address is on a bridge device with no route anywhere, pods get an address
 * on a second bridge and no default route; nothing leaves this machine.
 */
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  rmdirSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { clusterSourceDir } from './control-plane.js';
import { isRunning, startProcess, stopProcess, tailLog, type ManagedProcess } from './process.js';
import { waitFor } from './wait.js';

export const REAL_NODE_NAME = 'real-node-0';
/** The node's InternalIP, on a host-only bridge (a loopback address is refused by kubelet). */
export const NODE_IP = '10.99.0.1';
/** Pods that should run on the real node tolerate this taint (or name the node). */
export const REAL_NODE_TAINT = 'tdlib-operator.dev/real-node';
const NODE_LINK = 'tdlopnode0';
const POD_BRIDGE = 'tdlop0';
const POD_CIDR = '10.88.0.0/24';
const CNI_BIN_DIR = '/usr/lib/cni';
const RUNC = '/usr/sbin/runc';
const IPTABLES_COMMENT = 'tdlib-operator-real-node';
/** The kubernetes Service's ClusterIP (first address of the control plane's service range) and port. */
const KUBERNETES_SERVICE = { ip: '10.0.0.1', port: 443, cidr: '10.0.0.0/24' };
/** The sandbox image, as `ctr images import` names a local image. */
export const PAUSE_IMAGE = 'docker.io/local/pause:3.10';

export interface RealNodeOptions {
  dir: string;
  kubeconfigPath: string;
  /** Directory of kubelet, containerd, ctr, the shim and pause (build-node.sh). */
  binDir?: string;
}

/** Runs build-node.sh (a no-op when the cache is warm) and returns the directory holding the binaries. */
export function ensureNodeBinaries(): string {
  const output = execFileSync('bash', [join(clusterSourceDir, 'build-node.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const dir = output.trim().split('\n').at(-1) ?? '';
  if (!existsSync(join(dir, 'kubelet')))
    throw new Error(`build-node.sh did not produce binaries (got "${dir}")`);
  return dir;
}

/** What this machine must have for a real node; each missing part with how to get it. */
export function realNodePrerequisites(): string[] {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root (network namespaces, mounts, cgroups)');
  if (!existsSync(RUNC)) missing.push(`${RUNC} (apt-get install runc)`);
  for (const plugin of ['bridge', 'host-local', 'loopback', 'portmap'])
    if (!existsSync(join(CNI_BIN_DIR, plugin)))
      missing.push(`${CNI_BIN_DIR}/${plugin} (apt-get install containernetworking-plugins)`);
  return missing;
}

const run = (command: string, args: string[]): string =>
  execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const tryRun = (command: string, args: string[]): boolean => {
  try {
    run(command, args);
    return true;
  } catch {
    return false;
  }
};

function portOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** The API server's address in the kubeconfig (the control plane listens on loopback only). */
function apiServerOf(kubeconfigPath: string): { host: string; port: number } {
  const config = parse(readFileSync(kubeconfigPath, 'utf8')) as {
    clusters?: Array<{ cluster?: { server?: string } }>;
  };
  const url = new URL(config.clusters?.[0]?.cluster?.server ?? '');
  return { host: url.hostname, port: Number(url.port || 443) };
}

/**
 * kube-proxy's one job here: pods reach the kubernetes Service (10.0.0.1:443, what in-cluster clients dial)
 * at the API server on the host's loopback. DNAT to 127.0.0.1 is what kube-proxy does for localhost
 * NodePorts; the kernel only routes it with route_localnet on the incoming link.
 */
function serviceDnatRule(apiServer: { host: string; port: number }): string[] {
  return [
    'PREROUTING',
    '-i',
    POD_BRIDGE,
    '-d',
    `${KUBERNETES_SERVICE.ip}/32`,
    '-p',
    'tcp',
    '--dport',
    String(KUBERNETES_SERVICE.port),
    '-j',
    'DNAT',
    '--to-destination',
    `${apiServer.host}:${apiServer.port}`,
    '-m',
    'comment',
    '--comment',
    IPTABLES_COMMENT,
  ];
}

const forwardRule = [
  'FORWARD',
  '-i',
  POD_BRIDGE,
  '-o',
  POD_BRIDGE,
  '-j',
  'ACCEPT',
  '-m',
  'comment',
  '--comment',
  IPTABLES_COMMENT,
];

export class RealNode {
  private containerd?: ManagedProcess;
  private kubelet?: ManagedProcess;
  readonly binDir: string;
  readonly socket: string;
  private readonly createdPaths: string[] = [];
  /** Network namespaces present before the node started: the ones the pods' sandboxes add are removed on stop. */
  private readonly netnsBefore = listNetns();
  private readonly apiServer: { host: string; port: number };

  private constructor(private readonly options: RealNodeOptions) {
    this.binDir = options.binDir ?? ensureNodeBinaries();
    this.apiServer = apiServerOf(options.kubeconfigPath);
    this.socket = join(options.dir, 'containerd', 'containerd.sock');
  }

  static async start(options: RealNodeOptions): Promise<RealNode> {
    const missing = realNodePrerequisites();
    if (missing.length > 0) throw new Error(`a real node needs: ${missing.join('; ')}`);
    const node = new RealNode(options);
    try {
      node.network();
      await node.startContainerd();
      await node.importPause();
      await node.startKubelet();
    } catch (error) {
      await node.stop();
      throw error;
    }
    return node;
  }

  private path(...parts: string[]): string {
    return join(this.options.dir, ...parts);
  }

  /** Paths kubelet and libcni create outside the node directory: removed on stop if they were not there. */
  private remember(path: string): void {
    if (!existsSync(path)) this.createdPaths.push(path);
  }

  private network(): void {
    tryRun('ip', ['link', 'del', NODE_LINK]);
    run('ip', ['link', 'add', NODE_LINK, 'type', 'bridge']);
    run('ip', ['addr', 'add', `${NODE_IP}/32`, 'dev', NODE_LINK]);
    run('ip', ['link', 'set', NODE_LINK, 'up']);
    // Bridged pod traffic passes the FORWARD chain, whose policy may be DROP (Docker's).
    if (!tryRun('iptables', ['-C', ...forwardRule]))
      run('iptables', ['-I', ...forwardRule.slice(0, 1), '1', ...forwardRule.slice(1)]);
    // The pod bridge exists before the first pod (the CNI bridge plugin adopts it), so route_localnet can
    // be set on it for the Service DNAT.
    tryRun('ip', ['link', 'del', POD_BRIDGE]);
    run('ip', ['link', 'add', POD_BRIDGE, 'type', 'bridge']);
    run('ip', ['link', 'set', POD_BRIDGE, 'up']);
    writeFileSync(`/proc/sys/net/ipv4/conf/${POD_BRIDGE}/route_localnet`, '1');
    const dnat = serviceDnatRule(this.apiServer);
    if (!tryRun('iptables', ['-t', 'nat', '-C', ...dnat])) run('iptables', ['-t', 'nat', '-I', ...dnat]);
    mkdirSync(this.path('cni', 'net.d'), { recursive: true });
    writeFileSync(
      this.path('cni', 'net.d', '10-tdlop.conflist'),
      JSON.stringify({
        cniVersion: '1.0.0',
        name: 'tdlop',
        plugins: [
          {
            type: 'bridge',
            bridge: POD_BRIDGE,
            isGateway: true,
            ipMasq: false,
            ipam: {
              type: 'host-local',
              ranges: [[{ subnet: POD_CIDR }]],
              // Only the Service range goes through the bridge's gateway: no default route, nothing leaves.
              routes: [{ dst: KUBERNETES_SERVICE.cidr }],
              dataDir: this.path('cni', 'ipam'),
            },
          },
          { type: 'portmap', capabilities: { portMappings: true } },
        ],
      }),
    );
  }

  private async startContainerd(): Promise<void> {
    const dir = this.path('containerd');
    mkdirSync(join(dir, 'root'), { recursive: true });
    mkdirSync(this.path('logs'), { recursive: true });
    const config = `version = 3
root = '${join(dir, 'root')}'
state = '${join(dir, 'state')}'
[grpc]
  address = '${this.socket}'
[ttrpc]
  address = '${this.socket}.ttrpc'
[plugins.'io.containerd.nri.v1.nri']
  disable = true
[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'overlayfs'
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = '${PAUSE_IMAGE}'
[plugins.'io.containerd.cri.v1.runtime']
  # No CAP_SYS_RESOURCE here: the sandbox's oom_score_adj of -998 cannot be set.
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ['${CNI_BIN_DIR}']
    conf_dir = '${this.path('cni', 'net.d')}'
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
    runtime_type = 'io.containerd.runc.v2'
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
      BinaryName = '${RUNC}'
      Root = '${join(dir, 'runc')}'
      SystemdCgroup = false
[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = '127.0.0.1'
`;
    writeFileSync(join(dir, 'config.toml'), config);
    this.remember('/var/lib/cni');
    this.containerd = startProcess(
      'containerd',
      join(this.binDir, 'containerd'),
      ['--config', join(dir, 'config.toml')],
      this.path('logs', 'containerd.log'),
      { ...process.env, PATH: `${this.binDir}:${process.env.PATH ?? ''}` },
    );
    await waitFor(
      'containerd to answer',
      () => {
        if (this.containerd && !isRunning(this.containerd))
          throw new Error(`containerd exited:\n${tailLog(this.path('logs', 'containerd.log'))}`);
        return tryRun(join(this.binDir, 'ctr'), ['-a', this.socket, 'version']) ? true : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 100 },
    );
  }

  /** Imports an image tarball (docker save) into the namespace the kubelet's pods use. */
  importImage(tarball: string): void {
    run(join(this.binDir, 'ctr'), ['-a', this.socket, '-n', 'k8s.io', 'images', 'import', tarball]);
  }

  /** docker save, then ctr import (the tarball is removed): an image reaches the node without a registry. */
  importDockerImage(image: string): void {
    const tarball = this.path(`image-${image.replace(/[^a-zA-Z0-9_.-]/g, '_')}.tar`);
    run('docker', ['save', image, '-o', tarball]);
    try {
      this.importImage(tarball);
    } finally {
      rmSync(tarball, { force: true });
    }
  }

  private async importPause(): Promise<void> {
    const tarball = this.path('pause.tar');
    if (!existsSync(tarball)) {
      const context = this.path('pause-image');
      mkdirSync(context, { recursive: true });
      writeFileSync(join(context, 'pause'), readFileSync(join(this.binDir, 'pause')), { mode: 0o755 });
      writeFileSync(join(context, 'Dockerfile'), 'FROM scratch\nCOPY pause /pause\nENTRYPOINT ["/pause"]\n');
      run('docker', ['build', '--network', 'host', '-q', '-t', 'local/pause:3.10', context]);
      run('docker', ['save', 'local/pause:3.10', '-o', tarball]);
    }
    this.importImage(tarball);
  }

  private async startKubelet(): Promise<void> {
    const dir = this.path('kubelet');
    mkdirSync(join(dir, 'root'), { recursive: true });
    this.remember('/var/lib/kubelet');
    this.remember('/var/log/containers');
    this.remember('/var/log/pods');
    const config = join(dir, 'config.yaml');
    writeFileSync(
      config,
      stringify({
        apiVersion: 'kubelet.config.k8s.io/v1beta1',
        kind: 'KubeletConfiguration',
        address: NODE_IP,
        healthzBindAddress: '127.0.0.1',
        healthzPort: 0,
        readOnlyPort: 0,
        containerRuntimeEndpoint: `unix://${this.socket}`,
        cgroupDriver: 'cgroupfs',
        failCgroupV1: false,
        failSwapOn: false,
        enforceNodeAllocatable: [],
        podCIDR: POD_CIDR,
        authentication: { anonymous: { enabled: true }, webhook: { enabled: false } },
        authorization: { mode: 'AlwaysAllow' },
        imageGCHighThresholdPercent: 100,
        evictionHard: { 'memory.available': '1Mi', 'nodefs.available': '1%', 'imagefs.available': '1%' },
        podLogsDir: join(dir, 'pod-logs'),
        volumePluginDir: join(dir, 'volume-plugins'),
        resolvConf: '',
        serializeImagePulls: false,
        // Only pods meant for it land here: the kwok nodes' pods have images this node does not hold.
        registerWithTaints: [{ key: REAL_NODE_TAINT, value: 'true', effect: 'NoSchedule' }],
      }),
    );
    this.kubelet = startProcess(
      'kubelet',
      join(this.binDir, 'kubelet'),
      [
        `--config=${config}`,
        `--kubeconfig=${this.options.kubeconfigPath}`,
        `--root-dir=${join(dir, 'root')}`,
        `--cert-dir=${join(dir, 'certs')}`,
        `--hostname-override=${REAL_NODE_NAME}`,
        `--node-ip=${NODE_IP}`,
        `--node-labels=type=real`,
      ],
      this.path('logs', 'kubelet.log'),
    );
    // The kubelet keeps running (and its Node Ready) when it cannot listen: check the port itself.
    await waitFor(
      'kubelet to listen on 10250',
      async () => {
        if (this.kubelet && !isRunning(this.kubelet))
          throw new Error(`kubelet exited:\n${tailLog(this.path('logs', 'kubelet.log'))}`);
        return (await portOpen(NODE_IP, 10250)) ? true : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 200, onTimeout: () => tailLog(this.path('logs', 'kubelet.log')) },
    );
  }

  /** SIGKILLs a container's process, as the kernel or a crash would; the kubelet restarts it. */
  killContainer(containerId: string): void {
    run(join(this.binDir, 'ctr'), [
      '-a',
      this.socket,
      '-n',
      'k8s.io',
      'tasks',
      'kill',
      '-s',
      'SIGKILL',
      containerId,
    ]);
  }

  /** The kubelet's, containerd's and the pods' shims' process ids (a test checks none is left after stop). */
  pids(): number[] {
    return [
      this.kubelet?.child.pid,
      this.containerd?.child.pid,
      ...processesWithArgument(this.socket),
    ].filter((p): p is number => p !== undefined);
  }

  logs(): string {
    return `kubelet:\n${tailLog(this.path('logs', 'kubelet.log'))}\ncontainerd:\n${tailLog(this.path('logs', 'containerd.log'))}`;
  }

  /** Stops everything and removes what it made outside its directory. Pods should be deleted first. */
  async stop(): Promise<void> {
    if (this.kubelet) await stopProcess(this.kubelet, 15_000);
    // The Node object would stay NotReady in the cluster: it goes with the node.
    if (this.kubelet)
      tryRun('kubectl', [
        '--kubeconfig',
        this.options.kubeconfigPath,
        'delete',
        'node',
        REAL_NODE_NAME,
        '--ignore-not-found',
        '--wait=false',
      ]);
    // Stopping containerd leaves the pods' shims and containers: stop them through ctr first.
    if (this.containerd && isRunning(this.containerd)) {
      const ctr = join(this.binDir, 'ctr');
      for (const line of tryList(ctr, ['-a', this.socket, '-n', 'k8s.io', 'tasks', 'ls', '-q']))
        tryRun(ctr, ['-a', this.socket, '-n', 'k8s.io', 'tasks', 'kill', '-s', 'SIGKILL', line]);
      await stopProcess(this.containerd, 15_000);
    }
    // A pod's shim outlives containerd while its sandbox runs (pods not deleted before stop): end them too.
    for (const pid of processesWithArgument(this.socket)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    for (const mount of mountsUnder(this.options.dir).reverse()) tryRun('umount', ['-l', mount]);
    // A sandbox killed without the kubelet's teardown keeps its network namespace (and veth end).
    for (const name of listNetns())
      if (!this.netnsBefore.includes(name)) tryRun('ip', ['netns', 'delete', name]);
    tryRun('ip', ['link', 'del', POD_BRIDGE]);
    tryRun('ip', ['link', 'del', NODE_LINK]);
    tryRun('iptables', ['-D', ...forwardRule]);
    tryRun('iptables', ['-t', 'nat', '-D', ...serviceDnatRule(this.apiServer)]);
    removeCgroups('/sys/fs/cgroup');
    for (const path of this.createdPaths) rmSync(path, { recursive: true, force: true });
  }
}

/** Processes whose command line has `argument` (our containerd socket names our shims). */
function processesWithArgument(argument: string): number[] {
  const pids: number[] = [];
  for (const entry of safeList('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').includes(argument))
        pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

/** Network namespaces by name (`ip netns` and CNI keep them in /var/run/netns). */
export function listNetns(): string[] {
  return safeList('/var/run/netns');
}

function tryList(command: string, args: string[]): string[] {
  try {
    return run(command, args)
      .split('\n')
      .filter((l) => l.trim() !== '');
  } catch {
    return [];
  }
}

/** Mount points at or under `dir`, from /proc/self/mountinfo, outermost first. */
function mountsUnder(dir: string): string[] {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .filter((point) => point === dir || point.startsWith(`${dir}/`));
  return [...new Set(mounts)].sort((a, b) => a.length - b.length);
}

/** The kubelet's kubepods cgroup trees (every v1 controller, and v2), deepest first. */
function removeCgroups(root: string): void {
  const trees: string[] = [];
  for (const controller of safeList(root)) {
    const base = join(root, controller);
    for (const name of ['kubepods', 'kubepods.slice'])
      if (existsSync(join(base, name))) trees.push(join(base, name));
    if (controller === 'kubepods' || controller === 'kubepods.slice') trees.push(base);
  }
  const removeTree = (dir: string): void => {
    for (const child of safeList(dir)) {
      const path = join(dir, child);
      try {
        if (statSync(path).isDirectory()) removeTree(path);
      } catch {
        // gone already
      }
    }
    try {
      rmdirSync(dir);
    } catch {
      // a cgroup with a process left in it stays; the next start reuses it
    }
  };
  for (const tree of trees) removeTree(tree);
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
