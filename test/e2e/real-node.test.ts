/**
 * The real node: kubelet and containerd beside the e2e control plane. Nothing between the chart and TDLib is
 * played by the test: the image is built from the repository's Dockerfile in this run and imported into
 * containerd, the chart installs the operator as a Deployment pod, the operator's StatefulSet runs runtime
 * pods of the same image on the simulator backend (its world directory reaches them through a hostPath
 * volume set only in this test's values), the kubelet runs the probes, restarts and terminations, and
 * enforces memory limits. Pods reach the API server through the kubernetes Service (real-node.ts DNATs it
 * to the loopback API server, as kube-proxy would).
 */
import { execFile, execFileSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { GROUP, VERSION, type TelegramAccount } from '../../crds/index.js';
import {
  NODE_IP,
  PAUSE_IMAGE,
  REAL_NODE_NAME,
  REAL_NODE_TAINT,
  RealNode,
  listNetns,
} from '../cluster/real-node.js';
import { processAlive } from '../cluster/process.js';
import { toolPath } from '../cluster/tools.js';
import { waitFor } from '../cluster/wait.js';
import { adminKubeConfig, createTestNamespace, testCluster } from '../support/cluster.js';
import { installCrds } from '../support/crds.js';
import {
  DEMO_API_CREDENTIALS,
  DEMO_BOT_TOKEN,
  SECRET_OPT_IN,
  getTelegramAccount,
} from '../support/runtime.js';

const execFileAsync = promisify(execFile);
const kc = adminKubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const custom = kc.makeApiClient(k8s.CustomObjectsApi);
const coordination = kc.makeApiClient(k8s.CoordinationV1Api);
const plugin = resolve('dist/tools/kubectl-telegram/main.js');
const IMAGE_REPOSITORY = 'tdlib-operator';
const IMAGE_TAG = 'test';
/** The same image under a second tag: a new runtime revision for the rolling update, no rebuild. */
const ROLLED_TAG = 'test-rolled';
const PHONE = '+15550100001';
const CODE = '12345';
const PASSWORD = 'demo-2fa-password';
const RUNTIME_POD = 'tdlib-runtime-default-0';
const RUNTIME_GRACE_SECONDS = 60;
const NONROOT = 65532;

let node: RealNode | undefined;
let dir = '';
let imageId = '';
let netnsBefore: string[] = [];

const docker = (args: string[]): string =>
  execFileSync('docker', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const netns = listNetns;

function importTag(tag: string): void {
  node?.importDockerImage(`${IMAGE_REPOSITORY}:${tag}`);
}

beforeAll(async () => {
  netnsBefore = netns();
  dir = mkdtempSync(join(tmpdir(), 'tdlib-operator-real-node-'));
  node = await RealNode.start({ dir, kubeconfigPath: testCluster().kubeconfigPath });
  // The Dockerfile, built in this run (layers cached by the engine: only what changed is rebuilt).
  await execFileAsync('bash', ['test/image/build-image.sh'], {
    env: { ...process.env, TEST_IMAGE: `${IMAGE_REPOSITORY}:${IMAGE_TAG}` },
    maxBuffer: 64 * 1024 * 1024,
  });
  imageId = docker(['image', 'inspect', '-f', '{{.Id}}', `${IMAGE_REPOSITORY}:${IMAGE_TAG}`]).trim();
  importTag(IMAGE_TAG);
}, 40 * 60_000);

afterAll(async () => {
  await node?.stop();
  try {
    docker(['rmi', `${IMAGE_REPOSITORY}:${ROLLED_TAG}`]);
  } catch {
    // the tag was never made (a failure before the rolling update)
  }
}, 120_000);

const isReady = (conditions: Array<{ type: string; status: string }> | undefined): boolean =>
  conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

describe('a real node', () => {
  it('registers Ready with its host-only InternalIP', async () => {
    const ready = await waitFor(
      `node ${REAL_NODE_NAME} Ready`,
      async () => {
        const n = await core.readNode({ name: REAL_NODE_NAME }).catch(() => undefined);
        return isReady(n?.status?.conditions) ? n : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 250, onTimeout: () => node?.logs() ?? '' },
    );
    expect(ready?.status?.addresses).toContainEqual({ type: 'InternalIP', address: NODE_IP });
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
        return isReady(p.status?.conditions) && p.status?.podIP ? p : undefined;
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

  describe('the chart, the operator and the runtime on it (image built in this run, simulator backend)', () => {
    let system = '';
    let apps = '';
    let worldDir = '';
    const release = 'tdl';
    const helm = (args: string[]): string =>
      execFileSync(toolPath('helm'), ['--kubeconfig', testCluster().kubeconfigPath, ...args], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    const onRealNode = {
      nodeSelector: { 'kubernetes.io/hostname': REAL_NODE_NAME },
      tolerations: [{ key: REAL_NODE_TAINT, operator: 'Exists', effect: 'NoSchedule' }],
    };

    const podsOf = async (namespace: string): Promise<k8s.V1Pod[]> =>
      (await core.listNamespacedPod({ namespace })).items;
    /** The last lines of every container of both namespaces, for a failure message. */
    const logs = async (): Promise<string> => {
      const parts: string[] = [];
      for (const namespace of [system, apps]) {
        for (const pod of await podsOf(namespace).catch(() => [])) {
          const name = pod.metadata?.name ?? '';
          const text = await core
            .readNamespacedPodLog({ namespace, name, tailLines: 40 })
            .catch((e: unknown) => `(no log: ${e instanceof Error ? e.message : String(e)})`);
          parts.push(
            `--- ${namespace}/${name} ${JSON.stringify(pod.status?.containerStatuses?.[0]?.state)}\n${text}`,
          );
        }
      }
      return `${parts.join('\n')}\n${node?.logs() ?? ''}`;
    };
    const account = (name: string): Promise<TelegramAccount> => getTelegramAccount(custom, apps, name);
    const cond = (a: TelegramAccount, type: string) => a.status?.conditions?.find((c) => c.type === type);
    const waitForAccount = (
      name: string,
      what: string,
      test: (a: TelegramAccount) => boolean,
      timeoutMs = 90_000,
    ) =>
      waitFor(
        `${name}: ${what}`,
        async () => {
          const a = await account(name);
          return test(a) ? a : undefined;
        },
        { timeoutMs, intervalMs: 250, onTimeout: logs },
      );
    const createAccount = (name: string, spec: Record<string, unknown>) =>
      custom.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: apps,
        plural: 'telegramaccounts',
        body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'TelegramAccount', metadata: { name }, spec },
      });
    const secret = (name: string, data: Record<string, string>) =>
      core.createNamespacedSecret({
        namespace: apps,
        body: { metadata: { name, labels: SECRET_OPT_IN }, stringData: data },
      });
    const holderOf = async (accountName: string): Promise<string> =>
      (await coordination.readNamespacedLease({ namespace: apps, name: `tga-${accountName}` })).spec
        ?.holderIdentity ?? '';
    const pod = (name: string): Promise<k8s.V1Pod> => core.readNamespacedPod({ namespace: apps, name });
    /** The runtime pod hosting the user account now. */
    const hostingPod = async (): Promise<k8s.V1Pod> => pod((await account('support')).status?.hostedBy ?? '');
    /**
     * Both accounts logged in again by a runtime process other than `before`, with no login: a user account
     * without its session would sit in WaitCode, and nobody gives it a code here. Returns the new holder.
     */
    const sessionsRestored = async (before: string): Promise<string> => {
      let holder = '';
      for (const name of ['news-bot', 'support']) {
        holder = await waitFor(
          `${name} hosted again by a runtime process other than ${before}`,
          async () => {
            const h = await holderOf(name);
            return h !== '' && h !== before ? h : undefined;
          },
          { timeoutMs: 90_000, intervalMs: 250, onTimeout: logs },
        );
        const ready = await waitForAccount(
          name,
          'Ready again',
          (a) => cond(a, 'Ready')?.status === 'True' && a.status?.hostedBy === holder.split('/')[0],
        );
        expect(ready.status?.authorizationState).toBe('Ready');
      }
      await expect(
        core.readNamespacedSecret({ namespace: apps, name: 'support-login-code' }),
      ).rejects.toMatchObject({
        code: 404,
      });
      return holder;
    };

    /** Records every state of some objects through a watch (a terminated container lasts only moments). */
    const record = async <T extends k8s.KubernetesObject>(path: string, selector: Record<string, string>) => {
      const seen: T[] = [];
      const request = await new k8s.Watch(kc).watch(
        path,
        selector,
        (_type: string, object: T) => seen.push(object),
        () => undefined,
      );
      return { seen, stop: () => request.abort() };
    };

    beforeAll(async () => {
      await installCrds(kc);
      system = await createTestNamespace(kc, 'real-system');
      apps = await createTestNamespace(kc, 'real-apps');
      worldDir = mkdtempSync(join(tmpdir(), 'tdlib-operator-real-world-'));
      copyFileSync(resolve('config/samples/simulator-world.yaml'), join(worldDir, 'world.yaml'));
      // The runtime runs as 65532 and keeps the simulated Telegram's state in this directory.
      chownSync(worldDir, NONROOT, NONROOT);
      chownSync(join(worldDir, 'world.yaml'), NONROOT, NONROOT);
      chmodSync(worldDir, 0o755);
      const values = {
        replicas: 1,
        image: { repository: IMAGE_REPOSITORY, tag: IMAGE_TAG, pullPolicy: 'Never' },
        watchNamespace: apps,
        ...onRealNode,
        runtime: {
          backend: 'simulator',
          storage: { size: 'emptyDir', storageClass: '' },
          ...onRealNode,
          extraEnv: [{ name: 'TDLIB_SIMULATOR_WORLD', value: '/world' }],
          extraVolumes: [{ name: 'world', hostPath: { path: worldDir, type: 'Directory' } }],
          extraVolumeMounts: [{ name: 'world', mountPath: '/world' }],
        },
      };
      mkdirSync(join(dir, 'helm'), { recursive: true });
      const valuesFile = join(dir, 'helm', 'values.yaml');
      writeFileSync(valuesFile, stringify(values));
      // The CRDs are in the cluster already (installCrds): helm adopts nothing it did not make.
      helm([
        'install',
        release,
        'charts/tdlib-operator',
        '-n',
        system,
        '-f',
        valuesFile,
        '--set',
        'crds.create=false',
      ]);
      await secret('api', DEMO_API_CREDENTIALS);
      await secret('bot-token', { token: DEMO_BOT_TOKEN });
      await secret('pw', { password: PASSWORD });
    }, 120_000);

    afterAll(async () => {
      if (!system) return;
      helm(['uninstall', release, '-n', system, '--wait', '--timeout', '120s']);
      // The node stops clean only without pods: delete the apps' namespace and wait for its pods to go.
      await core.deleteNamespace({ name: apps });
      await waitFor(
        'every pod of the test gone from the real node',
        async () =>
          (await core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${REAL_NODE_NAME}` })).items
            .length === 0
            ? true
            : undefined,
        { timeoutMs: 120_000, intervalMs: 500, onTimeout: logs },
      );
      rmSync(worldDir, { recursive: true, force: true });
    }, 300_000);

    it('runs the operator as a Deployment pod of the image built in this run, Ready through its probes', async () => {
      const pod = await waitFor(
        'the operator pod Ready on the real node',
        async () =>
          (await podsOf(system)).find(
            (p) => p.spec?.nodeName === REAL_NODE_NAME && isReady(p.status?.conditions),
          ),
        { timeoutMs: 120_000, intervalMs: 500, onTimeout: logs },
      );
      const container = pod.status?.containerStatuses?.[0];
      expect(container?.imageID).toBe(imageId);
      expect(container?.restartCount).toBe(0);
      expect(pod.spec?.containers[0]?.readinessProbe?.httpGet?.path).toBe('/readyz');
      expect(pod.spec?.containers[0]?.livenessProbe?.httpGet?.path).toBe('/healthz');
      expect(pod.metadata?.ownerReferences?.[0]?.kind).toBe('ReplicaSet');
    });

    it('hosts a bot on a runtime pod of the StatefulSet the operator made, the same image, Ready through its probes', async () => {
      await createAccount('news-bot', {
        type: 'Bot',
        botTokenSecretRef: { name: 'bot-token' },
        apiCredentialsSecretRef: { name: 'api' },
      });
      const bot = await waitForAccount(
        'news-bot',
        'Ready',
        (a) => cond(a, 'Ready')?.status === 'True',
        180_000,
      );
      expect(bot.status?.hostedBy).toBe(RUNTIME_POD);
      expect(bot.status?.user).toMatchObject({ id: 7000000001, isBot: true });
      const runtime = await pod(RUNTIME_POD);
      expect(runtime.spec?.nodeName).toBe(REAL_NODE_NAME);
      expect(runtime.metadata?.ownerReferences?.[0]).toMatchObject({
        kind: 'StatefulSet',
        name: 'tdlib-runtime-default',
      });
      expect(runtime.status?.containerStatuses?.[0]?.imageID).toBe(imageId);
      // The kubelet's readiness probe (every 5 s) may lag the account by a period.
      await waitFor(
        `pod ${RUNTIME_POD} Ready through its readiness probe`,
        async () => (isReady((await pod(RUNTIME_POD)).status?.conditions) ? true : undefined),
        { timeoutMs: 30_000, intervalMs: 250, onTimeout: logs },
      );
      expect(runtime.spec?.containers[0]?.readinessProbe?.httpGet?.path).toBe('/readyz');
      expect(runtime.spec?.containers[0]?.livenessProbe?.httpGet?.path).toBe('/healthz');
      // The runtime talks to the API server as its pool's ServiceAccount, through the projected token.
      expect(runtime.spec?.serviceAccountName).toBe('tdlib-runtime-default');
      const backup = await waitFor(
        'the session backup',
        async () => {
          const s = await core.readNamespacedSecret({ namespace: apps, name: 'news-bot-tdlib-session' });
          return s.data?.session ? s : undefined;
        },
        { timeoutMs: 30_000, onTimeout: logs },
      );
      expect(backup.data?.session).toBeTruthy();
    });

    it('logs a user in with kubectl telegram login, the code reaching the real pod', async () => {
      await createAccount('support', {
        type: 'User',
        phoneNumber: PHONE,
        apiCredentialsSecretRef: { name: 'api' },
        passwordSecretRef: { name: 'pw' },
      });
      await waitForAccount('support', 'WaitCode', (a) => a.status?.authorizationState === 'WaitCode');
      const result = await execFileAsync(process.execPath, [
        plugin,
        'login',
        'support',
        '-n',
        apps,
        '--kubeconfig',
        testCluster().kubeconfigPath,
        '--code',
        CODE,
        '--timeout',
        '90s',
      ]);
      expect(`${result.stdout}${result.stderr}`).not.toContain(CODE);
      const ready = await waitForAccount('support', 'Ready', (a) => cond(a, 'Ready')?.status === 'True');
      expect(ready.status?.user).toMatchObject({ id: 5550100001, username: 'demo_user' });
      expect(ready.status?.hostedBy).toBe(RUNTIME_POD);
    });

    it('restarts a killed runtime container in place and restores both sessions there without a login', async () => {
      const killed = await hostingPod();
      const name = killed.metadata?.name ?? '';
      const containerId =
        killed.status?.containerStatuses?.[0]?.containerID?.replace(/^containerd:\/\//, '') ?? '';
      const before = await holderOf('support');
      node?.killContainer(containerId);
      const restarted = await waitFor(
        'the kubelet to restart the runtime container',
        async () => {
          const p = await pod(name);
          const status = p.status?.containerStatuses?.[0];
          return (status?.restartCount ?? 0) >= 1 && status?.lastState?.terminated ? p : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 250, onTimeout: logs },
      );
      expect(restarted.metadata?.uid).toBe(killed.metadata?.uid);
      expect(restarted.status?.containerStatuses?.[0]?.lastState?.terminated?.exitCode).toBe(137);
      // The new container takes its own pod's heartbeat at once (the kubelet ran the old one to its end), so
      // the accounts stay on this pod instead of being declared dead and moved.
      const holder = await sessionsRestored(before);
      expect(holder.startsWith(`${name}/${killed.metadata?.uid}/`)).toBe(true);
    });

    it('drains a deleted runtime pod (SIGTERM: backup, Lease release, exit 0) and restores the sessions on its successor', async () => {
      const old = await hostingPod();
      const before = await holderOf('support');
      const pods = await record<k8s.V1Pod>(`/api/v1/namespaces/${apps}/pods`, {
        labelSelector: 'app.kubernetes.io/name=tdlib-runtime',
      });
      const leases = await record<k8s.V1Lease>(`/apis/coordination.k8s.io/v1/namespaces/${apps}/leases`, {
        fieldSelector: 'metadata.name=tga-support',
      });
      try {
        await core.deleteNamespacedPod({ namespace: apps, name: old.metadata?.name ?? '' });
        const holder = await sessionsRestored(before);
        expect(holder).not.toContain(old.metadata?.uid ?? '-');
        expectGracefulExit(pods.seen, old.metadata?.uid ?? '');
        // The old process gave the Lease up before the successor took it: no waiting for it to expire.
        const holders = leases.seen.map((l) => l.spec?.holderIdentity ?? '');
        expect(holders.indexOf('')).toBeGreaterThan(-1);
        expect(holders.indexOf('')).toBeLessThan(holders.indexOf(holder));
      } finally {
        pods.stop();
        leases.stop();
      }
    });

    it('rolls the runtime image: the old pod drains within its grace period and the new image hosts the sessions', async () => {
      docker(['tag', `${IMAGE_REPOSITORY}:${IMAGE_TAG}`, `${IMAGE_REPOSITORY}:${ROLLED_TAG}`]);
      importTag(ROLLED_TAG);
      const old = await hostingPod();
      const before = await holderOf('support');
      const backupBefore = (await account('support')).status?.session?.lastBackupTime ?? '';
      const pods = await record<k8s.V1Pod>(`/api/v1/namespaces/${apps}/pods`, {
        labelSelector: 'app.kubernetes.io/name=tdlib-runtime',
      });
      try {
        helm([
          'upgrade',
          release,
          'charts/tdlib-operator',
          '-n',
          system,
          '--reuse-values',
          '--set',
          `runtime.image.repository=${IMAGE_REPOSITORY}`,
          '--set',
          `runtime.image.tag=${ROLLED_TAG}`,
        ]);
        const holder = await waitFor(
          'the sessions hosted by a runtime pod of the new image',
          async () => {
            const h = await holderOf('support');
            if (h === '' || h === before) return undefined;
            const p = await pod(h.split('/')[0] ?? '').catch(() => undefined);
            return p?.spec?.containers[0]?.image === `${IMAGE_REPOSITORY}:${ROLLED_TAG}` ? h : undefined;
          },
          { timeoutMs: 180_000, intervalMs: 250, onTimeout: logs },
        );
        expect(await sessionsRestored(before)).toBe(holder);
        const deleting = expectGracefulExit(pods.seen, old.metadata?.uid ?? '');
        // The drain backed the session up on its way out.
        const after = (await account('support')).status?.session?.lastBackupTime ?? '';
        expect(Date.parse(after)).toBeGreaterThan(Date.parse(backupBefore));
        expect(Date.parse(after)).toBeGreaterThanOrEqual(Date.parse(deleting) - 1000);
      } finally {
        pods.stop();
      }
    });

    it('has the kubelet enforce a memory limit: a pool limited below what the runtime needs is OOMKilled', async () => {
      await custom.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: apps,
        plural: 'telegramruntimepools',
        body: {
          apiVersion: `${GROUP}/${VERSION}`,
          kind: 'TelegramRuntimePool',
          metadata: { name: 'tiny' },
          spec: {
            image: `${IMAGE_REPOSITORY}:${IMAGE_TAG}`,
            backend: 'simulator',
            storage: { size: 'emptyDir' },
            // Below the anonymous memory Node needs to load the runtime's modules (26 MB, measured; file
            // pages can be reclaimed, these cannot). 48Mi was below it until the runtime stopped loading
            // client-node, and then it ran in 48Mi.
            resources: { limits: { memory: '24Mi' } },
          },
        },
      });
      await createAccount('tiny-bot', {
        type: 'Bot',
        botTokenSecretRef: { name: 'bot-token' },
        apiCredentialsSecretRef: { name: 'api' },
        runtimePool: 'tiny',
      });
      const killed = await waitFor(
        'the tiny pool pod OOMKilled by the kubelet',
        async () => {
          const p = await core
            .readNamespacedPod({ namespace: apps, name: 'tdlib-runtime-tiny-0' })
            .catch(() => undefined);
          const status = p?.status?.containerStatuses?.[0];
          return status?.lastState?.terminated?.reason === 'OOMKilled' ? status : undefined;
        },
        { timeoutMs: 120_000, intervalMs: 250, onTimeout: logs },
      );
      expect(killed.lastState?.terminated?.exitCode).toBe(137);
      const tiny = await account('tiny-bot');
      expect(cond(tiny, 'Ready')?.status).not.toBe('True');
    });
  });

  it('leaves no process, mount, link, network namespace or iptables rule behind when stopped', async () => {
    const pids = node?.pids() ?? [];
    await node?.stop();
    node = undefined;
    for (const pid of pids) expect(processAlive(pid)).toBe(false);
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8');
    expect(mounts.includes(dir)).toBe(false);
    const links = execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' });
    expect(links).not.toMatch(/tdlop/);
    expect(netns().filter((n) => !netnsBefore.includes(n))).toEqual([]);
    const rules = execFileSync('iptables-save', { encoding: 'utf8' });
    expect(rules).not.toContain('tdlib-operator-real-node');
    // Passed: the node's logs are not needed any more.
    rmSync(dir, { recursive: true, force: true });
  });
});

/**
 * The pod's last recorded state: its container exited 0 ("Completed", the runtime's clean SIGTERM path)
 * before the grace period ran out (a kill at its end is exit 137). Returns when the deletion began.
 */
function expectGracefulExit(seen: readonly k8s.V1Pod[], uid: string): string {
  const states = seen.filter((p) => p.metadata?.uid === uid);
  const deleting = states.find((p) => p.metadata?.deletionTimestamp)?.metadata;
  const terminated = states
    .map((p) => p.status?.containerStatuses?.[0]?.state?.terminated)
    .find((t) => t !== undefined);
  expect(deleting?.deletionTimestamp).toBeDefined();
  expect(terminated).toMatchObject({ exitCode: 0, reason: 'Completed' });
  // deletionTimestamp is when the grace period ends: the deletion began that many seconds earlier.
  const graceMs = (deleting?.deletionGracePeriodSeconds ?? 0) * 1000;
  expect(graceMs).toBe(RUNTIME_GRACE_SECONDS * 1000);
  const deletedAt = new Date(deleting?.deletionTimestamp ?? 0).getTime() - graceMs;
  const finishedAt = new Date(terminated?.finishedAt ?? 0).getTime();
  expect(finishedAt).toBeGreaterThanOrEqual(deletedAt - 1000);
  expect(finishedAt - deletedAt).toBeLessThan(graceMs);
  return new Date(deletedAt).toISOString();
}
