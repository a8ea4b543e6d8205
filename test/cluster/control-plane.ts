import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { createPki, type Pki } from './pki.js';
import { freePort } from './ports.js';
import { isRunning, startProcess, stopProcess, tailLog, type ManagedProcess } from './process.js';
import { waitFor } from './wait.js';

export interface ControlPlaneOptions {
  /** Working directory for data, certificates, logs and the kubeconfig. */
  dir: string;
  /** Also run kube-controller-manager and kube-scheduler (StatefulSets, garbage collection, scheduling). */
  controllers?: boolean;
  /** Fake nodes managed by kwok, where pods "run" and become Ready. Implies controllers. */
  kwokNodes?: number;
  /** Directory with the built binaries; default: built (or reused from cache) by build.sh. */
  binDir?: string;
  /** Where the kubeconfig is written; default `<dir>/kubeconfig`. */
  kubeconfigPath?: string;
  /** Audit every write (not reads) to `<dir>/logs/audit.log`: who changed what, for benchmarks and debugging. */
  auditWrites?: boolean;
}

export interface ControlPlaneInfo {
  dir: string;
  kubeconfigPath: string;
  apiServerUrl: string;
  pki: Pki;
  binDir: string;
  logs: Record<string, string>;
  /** Process id of each component (tests pause the apiserver, for instance). */
  pids: Record<string, number>;
  /** Milliseconds from the first process start to every component being ready. */
  startMs: number;
}

const here = dirname(fileURLToPath(import.meta.url));
/** The repository's test/cluster directory, also when running compiled from dist/test/cluster. */
export const clusterSourceDir = existsSync(join(here, 'build.sh'))
  ? here
  : resolve(here, '../../../test/cluster');

/** Runs build.sh (a no-op when the cache is warm) and returns the directory holding the binaries. */
export function ensureBinaries(): string {
  if (process.env.TESTBIN_DIR) return process.env.TESTBIN_DIR;
  const output = execFileSync('bash', [join(clusterSourceDir, 'build.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = output.trim().split('\n');
  const dir = lines[lines.length - 1];
  if (!dir || !existsSync(join(dir, 'kube-apiserver')))
    throw new Error(`build.sh did not produce binaries (got "${dir}")`);
  return dir;
}

function httpsGet(url: string, pki: Pki): Promise<{ status: number; body: string }> {
  return new Promise((resolvePromise, reject) => {
    const req = request(
      url,
      {
        ca: readFileSync(pki.caCert),
        cert: readFileSync(pki.adminCert),
        key: readFileSync(pki.adminKey),
        timeout: 5_000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

async function httpGetOk(url: string): Promise<boolean | undefined> {
  const response = await fetch(url, { signal: AbortSignal.timeout(3_000) });
  return response.ok ? true : undefined;
}

/** A running etcd + kube-apiserver (and optionally controller-manager, scheduler, kwok). */
export class ControlPlane {
  private readonly processes: ManagedProcess[] = [];
  private stopped = false;

  private constructor(
    readonly info: ControlPlaneInfo,
    private readonly options: ControlPlaneOptions,
  ) {}

  static async start(options: ControlPlaneOptions): Promise<ControlPlane> {
    const dir = resolve(options.dir);
    mkdirSync(join(dir, 'logs'), { recursive: true });
    const binDir = options.binDir ?? ensureBinaries();
    const pki = createPki(join(dir, 'pki'));
    const info: ControlPlaneInfo = {
      dir,
      kubeconfigPath: options.kubeconfigPath ?? join(dir, 'kubeconfig'),
      apiServerUrl: '',
      pki,
      binDir,
      logs: {},
      pids: {},
      startMs: 0,
    };
    const plane = new ControlPlane(info, options);
    const started = Date.now();
    try {
      await plane.startEtcd();
      await plane.startApiServer();
      if (options.controllers || (options.kwokNodes ?? 0) > 0) {
        await plane.startControllerManager();
        plane.startScheduler();
      }
      if ((options.kwokNodes ?? 0) > 0) {
        await plane.startKwok(options.kwokNodes ?? 0);
      }
    } catch (error) {
      await plane.stop();
      throw error;
    }
    info.startMs = Date.now() - started;
    return plane;
  }

  private launch(name: string, args: string[]): ManagedProcess {
    const logFile = join(this.info.dir, 'logs', `${name}.log`);
    this.info.logs[name] = logFile;
    const managed = startProcess(name, join(this.info.binDir, name), args, logFile);
    this.processes.push(managed);
    if (managed.child.pid !== undefined) this.info.pids[name] = managed.child.pid;
    return managed;
  }

  private failureDetail(managed: ManagedProcess): () => string {
    return () =>
      `${managed.name} ${isRunning(managed) ? 'is running' : 'has exited'}; log ${managed.logFile}:\n${tailLog(managed.logFile)}`;
  }

  private async startEtcd(): Promise<void> {
    const clientPort = await freePort();
    const peerPort = await freePort();
    const client = `http://127.0.0.1:${clientPort}`;
    const peer = `http://127.0.0.1:${peerPort}`;
    const etcd = this.launch('etcd', [
      '--name=node0',
      `--data-dir=${join(this.info.dir, 'etcd')}`,
      `--listen-client-urls=${client}`,
      `--advertise-client-urls=${client}`,
      `--listen-peer-urls=${peer}`,
      `--initial-advertise-peer-urls=${peer}`,
      `--initial-cluster=node0=${peer}`,
      // Test data is disposable: fsync would make every write wait on the disk.
      '--unsafe-no-fsync',
      '--quota-backend-bytes=8589934592',
      '--log-level=warn',
    ]);
    this.etcdUrl = client;
    await waitFor(
      'etcd /health',
      () => (isRunning(etcd) ? httpGetOk(`${client}/health`) : Promise.reject(new Error('etcd exited'))),
      {
        timeoutMs: 30_000,
        onTimeout: this.failureDetail(etcd),
      },
    );
  }

  private etcdUrl = '';

  private async startApiServer(): Promise<void> {
    const { pki } = this.info;
    const port = await freePort();
    const withControllers = this.options.controllers || (this.options.kwokNodes ?? 0) > 0;
    const args = [
      `--etcd-servers=${this.etcdUrl}`,
      '--bind-address=127.0.0.1',
      // Without it kube-apiserver looks for a default route, which sandboxes and CI machines may lack.
      '--advertise-address=127.0.0.1',
      `--secure-port=${port}`,
      `--tls-cert-file=${pki.adminCert}`,
      `--tls-private-key-file=${pki.adminKey}`,
      `--client-ca-file=${pki.caCert}`,
      '--service-cluster-ip-range=10.0.0.0/24',
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${pki.serviceAccountKey}`,
      `--service-account-signing-key-file=${pki.serviceAccountKey}`,
      '--authorization-mode=RBAC',
      '--allow-privileged=true',
      '--endpoint-reconciler-type=none',
      // A real node's kubelet is reached at its InternalIP; its name resolves nowhere (no DNS here).
      '--kubelet-preferred-address-types=InternalIP,Hostname',
      `--cert-dir=${join(this.info.dir, 'apiserver-certs')}`,
      // Tests create thousands of objects quickly; the default in-flight limits would throttle them.
      '--max-requests-inflight=2000',
      '--max-mutating-requests-inflight=1000',
    ];
    if (this.options.auditWrites) {
      const policy = join(this.info.dir, 'audit-policy.yaml');
      writeFileSync(
        policy,
        stringify({
          apiVersion: 'audit.k8s.io/v1',
          kind: 'Policy',
          omitStages: ['RequestReceived'],
          rules: [{ level: 'None', verbs: ['get', 'list', 'watch'] }, { level: 'Metadata' }],
        }),
      );
      this.info.logs.audit = join(this.info.dir, 'logs', 'audit.log');
      args.push(
        `--audit-policy-file=${policy}`,
        `--audit-log-path=${this.info.logs.audit}`,
        '--audit-log-format=json',
      );
    }
    // Without the controller-manager nobody creates the `default` ServiceAccount, which that plugin requires.
    if (!withControllers) args.push('--disable-admission-plugins=ServiceAccount');
    const apiserver = this.launch('kube-apiserver', args);
    this.info.apiServerUrl = `https://127.0.0.1:${port}`;
    this.writeKubeconfig();
    await waitFor(
      'kube-apiserver /readyz',
      async () => {
        if (!isRunning(apiserver)) throw new Error('kube-apiserver exited');
        const response = await httpsGet(`${this.info.apiServerUrl}/readyz`, pki);
        return response.status === 200 ? true : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 250, onTimeout: this.failureDetail(apiserver) },
    );
  }

  private writeKubeconfig(): void {
    const { pki } = this.info;
    const b64 = (file: string): string => readFileSync(file).toString('base64');
    const config = {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: 'tdlib-operator-test',
          cluster: { server: this.info.apiServerUrl, 'certificate-authority-data': b64(pki.caCert) },
        },
      ],
      users: [
        {
          name: 'admin',
          user: { 'client-certificate-data': b64(pki.adminCert), 'client-key-data': b64(pki.adminKey) },
        },
      ],
      contexts: [{ name: 'tdlib-operator-test', context: { cluster: 'tdlib-operator-test', user: 'admin' } }],
      'current-context': 'tdlib-operator-test',
    };
    mkdirSync(dirname(this.info.kubeconfigPath), { recursive: true });
    writeFileSync(this.info.kubeconfigPath, stringify(config), { mode: 0o600 });
  }

  private async startControllerManager(): Promise<void> {
    const { pki } = this.info;
    const kcm = this.launch('kube-controller-manager', [
      `--kubeconfig=${this.info.kubeconfigPath}`,
      '--leader-elect=false',
      '--secure-port=0',
      `--root-ca-file=${pki.caCert}`,
      `--service-account-private-key-file=${pki.serviceAccountKey}`,
      '--use-service-account-credentials=false',
      '--kube-api-qps=200',
      '--kube-api-burst=400',
      '--concurrent-statefulset-syncs=10',
      '--concurrent-gc-syncs=20',
    ]);
    // The controller-manager is working once its ServiceAccount controller made the `default` account.
    await waitFor(
      'kube-controller-manager (default ServiceAccount)',
      async () => {
        if (!isRunning(kcm)) throw new Error('kube-controller-manager exited');
        const response = await httpsGet(
          `${this.info.apiServerUrl}/api/v1/namespaces/default/serviceaccounts/default`,
          pki,
        );
        return response.status === 200 ? true : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 250, onTimeout: this.failureDetail(kcm) },
    );
  }

  private startScheduler(): void {
    const config = join(this.info.dir, 'scheduler.yaml');
    writeFileSync(
      config,
      stringify({
        apiVersion: 'kubescheduler.config.k8s.io/v1',
        kind: 'KubeSchedulerConfiguration',
        clientConnection: { kubeconfig: this.info.kubeconfigPath, qps: 200, burst: 400 },
        leaderElection: { leaderElect: false },
      }),
    );
    this.launch('kube-scheduler', [`--config=${config}`, '--secure-port=0']);
  }

  private async startKwok(nodes: number): Promise<void> {
    const stages = join(this.info.binDir, 'kwok-stages', 'fast');
    const kwok = this.launch('kwok', [
      `--kubeconfig=${this.info.kubeconfigPath}`,
      `--config=${stages}`,
      '--manage-all-nodes=false',
      '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
      '--cidr=10.244.0.0/16',
      '--node-ip=10.1.0.1',
      '--node-lease-duration-seconds=40',
    ]);
    for (let i = 0; i < nodes; i++) await this.createFakeNode(`kwok-node-${i}`);
    await waitFor(
      `${nodes} kwok nodes Ready`,
      async () => {
        if (!isRunning(kwok)) throw new Error('kwok exited');
        const response = await httpsGet(
          `${this.info.apiServerUrl}/api/v1/nodes?labelSelector=type%3Dkwok`,
          this.info.pki,
        );
        const list = JSON.parse(response.body) as {
          items?: Array<{ status?: { conditions?: Array<{ type: string; status: string }> } }>;
        };
        const ready = (list.items ?? []).filter((node) =>
          (node.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'),
        ).length;
        return ready >= nodes ? true : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 250, onTimeout: this.failureDetail(kwok) },
    );
  }

  /** Creates a Node that kwok manages; public so tests can add capacity (e.g. to test spreading). */
  async createFakeNode(name: string): Promise<void> {
    const node = {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: {
        name,
        annotations: { 'node.alpha.kubernetes.io/ttl': '0', 'kwok.x-k8s.io/node': 'fake' },
        labels: {
          'kubernetes.io/hostname': name,
          'kubernetes.io/os': 'linux',
          'kubernetes.io/arch': 'amd64',
          type: 'kwok',
        },
      },
      spec: {},
      status: {
        allocatable: { cpu: '32', memory: '256Gi', pods: '250' },
        capacity: { cpu: '32', memory: '256Gi', pods: '250' },
      },
    };
    const { pki } = this.info;
    await new Promise<void>((resolvePromise, reject) => {
      const req = request(
        `${this.info.apiServerUrl}/api/v1/nodes`,
        {
          method: 'POST',
          ca: readFileSync(pki.caCert),
          cert: readFileSync(pki.adminCert),
          key: readFileSync(pki.adminKey),
          headers: { 'content-type': 'application/json' },
        },
        (res) => {
          let body = '';
          res.on('data', (chunk: Buffer) => (body += chunk.toString()));
          res.on('end', () =>
            res.statusCode === 201 || res.statusCode === 409
              ? resolvePromise()
              : reject(new Error(`creating node ${name}: HTTP ${res.statusCode}: ${body}`)),
          );
        },
      );
      req.on('error', reject);
      req.end(JSON.stringify(node));
    });
  }

  /** Restarts kube-apiserver on the same port and data (to test watch and client recovery). */
  async restartApiServer(): Promise<void> {
    const index = this.processes.findIndex((p) => p.name === 'kube-apiserver');
    const old = this.processes[index];
    if (!old) throw new Error('kube-apiserver is not running');
    await stopProcess(old);
    this.processes.splice(index, 1);
    // spawnargs: setpriv --pdeathsig KILL -- <binary> <args...>
    const args = old.child.spawnargs.slice(5);
    const apiserver = this.launch('kube-apiserver', args);
    await waitFor(
      'kube-apiserver /readyz after restart',
      async () => {
        if (!isRunning(apiserver)) throw new Error('kube-apiserver exited');
        const response = await httpsGet(`${this.info.apiServerUrl}/readyz`, this.info.pki);
        return response.status === 200 ? true : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 250, onTimeout: this.failureDetail(apiserver) },
    );
  }

  /** Stops every component, newest first, and waits until each process is gone. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const managed of [...this.processes].reverse()) await stopProcess(managed);
  }

  pids(): number[] {
    return this.processes.filter(isRunning).map((p) => p.child.pid ?? 0);
  }
}
