/**
 * `make run`: the whole system on this machine, offline. A control plane (etcd, kube-apiserver,
 * controller-manager, scheduler, kwok), the CRDs and RBAC, the operator, the samples, and a runtime process
 * (simulator backend) for every runtime pod kwok "runs". Runs until Ctrl-C; every process dies with it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import {
  cpSync,
  createWriteStream,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { networkInterfaces } from 'node:os';
import { join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { allCrds, type TelegramAccount } from '../../crds/index.js';
import { RestClient, loadKubeConfig } from '../../operator/kube/client.js';
import { isAlreadyExists } from '../../operator/kube/errors.js';
import { createLogger } from '../../operator/kube/logging.js';
import { createRegistry } from '../../operator/kube/metrics.js';
import { Informer } from '../../operator/kube/reflector.js';
import { Resources, type ApiObject, type ResourceDescriptor } from '../../operator/kube/resource.js';
import { TelegramAccountResource } from '../../crds/resources.js';

const NAMESPACE = 'tdlib-demo';
const GATEWAY_PORT = 18443;
const ECHO_PORT = 18090;
const root = resolve('.cluster');
const crdResource: ResourceDescriptor = {
  group: 'apiextensions.k8s.io',
  version: 'v1',
  plural: 'customresourcedefinitions',
  kind: 'CustomResourceDefinition',
  namespaced: false,
};

function child(name: string, script: string, env: Record<string, string>, args: string[] = []): ChildProcess {
  mkdirSync(join(root, 'logs'), { recursive: true });
  const log = createWriteStream(join(root, 'logs', `${name}.log`), { flags: 'a' });
  const proc = spawn('setpriv', ['--pdeathsig', 'TERM', '--', process.execPath, script, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stdout?.pipe(log);
  proc.stderr?.pipe(log);
  return proc;
}

/** A process kept running as a kubelet would (restartPolicy: Always, with a growing delay). */
interface Supervised {
  stop: () => Promise<void>;
}

function supervised(name: string, script: string, env: Record<string, string>): Supervised {
  let stopping = false;
  let current = child(name, script, env);
  let delay = 1000;
  const watch = (proc: ChildProcess): void => {
    proc.once('exit', (code, signal) => {
      if (stopping) return;
      console.log(
        `${name} exited (${signal ?? `code ${code}`}); restarting it in ${delay / 1000} s, as a kubelet would`,
      );
      setTimeout(() => {
        if (stopping) return;
        current = child(name, script, env);
        watch(current);
      }, delay);
      delay = Math.min(delay * 2, 10_000);
    });
  };
  watch(current);
  return {
    stop: () =>
      new Promise<void>((done) => {
        stopping = true;
        if (current.exitCode !== null || current.signalCode !== null) return done();
        current.once('exit', () => done());
        current.kill('SIGTERM');
      }),
  };
}

interface RunningPlane {
  kubeconfigPath: string;
  startMs: number;
  stop: () => Promise<void>;
}

/**
 * The control plane's own supervisor (test/cluster's CLI, `serve`) as a child process: tools/ imports nothing
 * of test/, and the components die with the supervisor.
 */
async function startControlPlane(): Promise<RunningPlane> {
  const supervisor = child('control-plane', resolve('dist/test/cluster/cli.js'), {}, [
    'serve',
    '--dir',
    root,
    '--controllers',
    '--kwok-nodes',
    '1',
  ]);
  const exited = new Promise<void>((r) => supervisor.once('exit', () => r()));
  const state = join(root, 'state.json');
  for (;;) {
    if (supervisor.exitCode !== null || supervisor.signalCode !== null)
      throw new Error('the control plane did not start; see .cluster/logs/control-plane.log');
    if (existsSync(state)) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const info = JSON.parse(readFileSync(state, 'utf8')) as { kubeconfigPath: string; startMs: number };
  return {
    ...info,
    stop: async () => {
      if (supervisor.exitCode === null && supervisor.signalCode === null) supervisor.kill('SIGTERM');
      await exited;
    },
  };
}

const Deployment: ResourceDescriptor = {
  group: 'apps',
  version: 'v1',
  plural: 'deployments',
  kind: 'Deployment',
  namespaced: true,
};

/** The kinds config/samples holds. */
const SAMPLE_KINDS: Record<string, ResourceDescriptor> = {
  Secret: Resources.Secret,
  TelegramAccount: TelegramAccountResource,
  ServiceAccount: Resources.ServiceAccount,
  Role: Resources.Role,
  RoleBinding: Resources.RoleBinding,
  Service: Resources.Service,
  Deployment,
};

/** Applies a samples file into the demo namespace; `adapt` may change an object first. */
async function applyFile(
  rest: RestClient,
  file: string,
  adapt: (object: ApiObject) => ApiObject = (o) => o,
): Promise<ApiObject[]> {
  const applied: ApiObject[] = [];
  for (const doc of parseAllDocuments(readFileSync(file, 'utf8'))) {
    const object = doc.toJS() as ApiObject | null;
    if (!object?.kind) continue;
    const resource = SAMPLE_KINDS[object.kind];
    if (!resource) throw new Error(`${file}: make run does not know how to apply a ${object.kind}`);
    object.metadata = { ...object.metadata, namespace: NAMESPACE };
    applied.push(await rest.applyPatch(resource, adapt(object), { fieldManager: 'make-run' }));
  }
  return applied;
}

/** The value of `key` in a Secret's stringData in a samples file. */
function sampleSecretValue(file: string, name: string, key: string): string {
  for (const doc of parseAllDocuments(readFileSync(resolve('config/samples', file), 'utf8'))) {
    const object = doc.toJS() as (ApiObject & { stringData?: Record<string, string> }) | null;
    if (object?.kind === 'Secret' && object.metadata?.name === name && object.stringData?.[key])
      return object.stringData[key];
  }
  throw new Error(`config/samples/${file} has no Secret ${name} with ${key}`);
}

/** A ServiceAccount token for `audience` (TokenRequest), as a projected volume would hold it. */
async function serviceAccountToken(
  rest: RestClient,
  namespace: string,
  name: string,
  audience: string,
): Promise<string> {
  await rest
    .create(Resources.ServiceAccount, {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name, namespace },
    })
    .catch((e: unknown) => {
      if (!isAlreadyExists(e)) throw e;
    });
  const answer = await rest.request<{ status?: { token?: string } }>({
    method: 'POST',
    path: `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`,
    body: {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenRequest',
      spec: { audiences: [audience], expirationSeconds: 3600 },
    },
  });
  if (!answer.status?.token) throw new Error(`no token for ServiceAccount ${namespace}/${name}`);
  return answer.status.token;
}

/**
 * Keeps `file` holding a fresh token, as the kubelet refreshes a projected one (tokens here live an hour).
 * Returns the timer's stop.
 */
async function projectedToken(
  rest: RestClient,
  file: string,
  account: { namespace: string; name: string; audience: string },
): Promise<() => void> {
  const write = async (): Promise<void> =>
    writeFileSync(file, await serviceAccountToken(rest, account.namespace, account.name, account.audience), {
      mode: 0o600,
    });
  await write();
  const timer = setInterval(() => void write().catch(() => undefined), 30 * 60_000);
  return () => clearInterval(timer);
}

/** An address of this machine other pods could reach (not loopback: the CRD refuses those as sinks). */
function hostAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces()))
    for (const a of list ?? []) if (!a.internal && a.family === 'IPv4') return a.address;
  return undefined;
}

async function main(): Promise<void> {
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  console.log('starting the control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok) ...');
  const plane = await startControlPlane();
  const kubeconfig = plane.kubeconfigPath;
  console.log(`control plane up in ${(plane.startMs / 1000).toFixed(1)} s; kubeconfig: ${kubeconfig}`);
  const logger = createLogger({ name: 'make-run', level: 'warn' });
  const rest = new RestClient(loadKubeConfig(kubeconfig), { registry: createRegistry(), logger });
  for (const crd of allCrds())
    await rest.applyPatch(crdResource, crd as ApiObject, { fieldManager: 'make-run' });
  for (const ns of [NAMESPACE, 'tdlib-operator-system'])
    await rest
      .create(Resources.Namespace, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } })
      .catch((e: unknown) => {
        if (!isAlreadyExists(e)) throw e;
      });
  const world = join(root, 'world');
  mkdirSync(world, { recursive: true });
  cpSync(resolve('config/samples/simulator-world.yaml'), join(world, 'world.yaml'));

  const processes: Supervised[] = [];
  const operator = supervised('operator', resolve('dist/operator/main.js'), {
    KUBECONFIG: kubeconfig,
    RUNTIME_BACKEND: 'simulator',
    RUNTIME_STORAGE_SIZE: 'emptyDir',
    METRICS_PORT: '18080',
    HEALTH_PORT: '18081',
  });
  processes.push(operator);
  // Wait until the CRDs are served before applying samples that use them.
  for (let i = 0; i < 50; i++) {
    if (
      await rest.list(TelegramAccountResource, { namespace: NAMESPACE, limit: 1 }).then(
        () => true,
        () => false,
      )
    )
      break;
    await new Promise((r) => setTimeout(r, 200));
  }
  // The send API gateway, as the chart's Deployment runs it (plain HTTP here: no certificate on this machine).
  const secrets = join(root, 'secrets');
  mkdirSync(secrets, { recursive: true });
  const stopTokens: Array<() => void> = [];
  const gatewayToken = join(secrets, 'gateway-runtime-token');
  stopTokens.push(
    await projectedToken(rest, gatewayToken, {
      namespace: 'tdlib-operator-system',
      name: 'tdlib-send-gateway',
      audience: 'tdlib-operator-runtime',
    }),
  );
  processes.push(
    supervised('send-gateway', resolve('dist/operator/gateway/main.js'), {
      KUBECONFIG: kubeconfig,
      GATEWAY_PORT: String(GATEWAY_PORT),
      GATEWAY_INSECURE_HTTP: 'true',
      GATEWAY_RUNTIME_TOKEN_FILE: gatewayToken,
    }),
  );

  // The echo receiver (config/samples/echo-receiver.*) answers what news-bot receives through the gateway.
  // There is no cluster DNS here, so news-bot's sink is this machine's address instead of the Service.
  const host = hostAddress();
  const echoSink = host ? `http://${host}:${ECHO_PORT}/` : undefined;
  const adaptBot = (object: ApiObject): ApiObject => {
    const spec = (object as { spec?: { updates?: { sink?: unknown } } }).spec;
    if (object.kind !== 'TelegramAccount' || !spec?.updates) return object;
    if (echoSink) spec.updates.sink = { uri: echoSink };
    else delete spec.updates;
    return object;
  };
  for (const file of ['demo-secrets.yaml', 'echo-receiver.yaml'])
    await applyFile(rest, resolve('config/samples', file));
  for (const file of ['telegramaccount-bot.yaml', 'telegramaccount-user.yaml'])
    await applyFile(rest, resolve('config/samples', file), adaptBot);
  console.log(`applied config/samples to namespace ${NAMESPACE}; operator logs: .cluster/logs/operator.log`);
  const echoToken = join(secrets, 'echo-send-api-token');
  stopTokens.push(
    await projectedToken(rest, echoToken, {
      namespace: NAMESPACE,
      name: 'echo-receiver',
      audience: 'tdlib-operator-send-api',
    }),
  );
  const updatesAuth = join(secrets, 'echo-updates-token');
  writeFileSync(updatesAuth, sampleSecretValue('echo-receiver.yaml', 'echo-receiver-token', 'token'), {
    mode: 0o600,
  });
  if (echoSink) {
    processes.push(
      supervised('echo-receiver', resolve('config/samples/echo-receiver.mjs'), {
        PORT: String(ECHO_PORT),
        SEND_API_URL: `http://127.0.0.1:${GATEWAY_PORT}`,
        SEND_API_TOKEN_FILE: echoToken,
        UPDATES_AUTH_FILE: updatesAuth,
      }),
    );
    console.log(
      `echo receiver at ${echoSink} (logs: .cluster/logs/echo-receiver.log). Once news-bot is Ready, write to it:\n` +
        `    node dist/runtime/simulator/cli.js --world .cluster/world send @alice_demo @demo_campaign_bot hello\n` +
        `  and see its answer: node dist/runtime/simulator/cli.js --world .cluster/world deliveries | tail -n 2\n`,
    );
  } else console.log('no non-loopback address on this machine: news-bot runs without its echo receiver');

  // Play the kubelet: start a runtime process for each runtime pod kwok reports Ready.
  const started = new Set<string>();
  const pods = new Informer<
    ApiObject & { status?: { conditions?: Array<{ type: string; status: string }> } }
  >(rest, Resources.Pod, {
    name: 'demo-pods',
    namespace: NAMESPACE,
    labelSelector: 'app.kubernetes.io/name=tdlib-runtime',
    logger,
  });
  pods.onEvent((_type, pod) => {
    const name = pod.metadata?.name ?? '';
    const ready = pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
    if (!ready || started.has(name)) return;
    started.add(name);
    const pool = pod.metadata?.labels?.['telegram.tdlib-operator.dev/pool'] ?? 'default';
    processes.push(
      supervised(name, resolve('dist/runtime/main.js'), {
        KUBECONFIG: kubeconfig,
        POD_NAME: name,
        POD_UID: pod.metadata?.uid ?? '',
        POD_NAMESPACE: NAMESPACE,
        RUNTIME_POOL: pool,
        TDLIB_BACKEND: 'simulator',
        TDLIB_SIMULATOR_WORLD: world,
        TDLIB_DATA_DIR: join(root, 'data', name),
        HTTP_PORT: '0',
        // Advertises http://127.0.0.1:<port> for metrics and the send endpoint, where the gateway finds it.
        POD_IP: '127.0.0.1',
      }),
    );
    console.log(`runtime process started for pod ${name}; logs: .cluster/logs/${name}.log`);
  });
  pods.start();

  const accounts = new Informer<TelegramAccount & ApiObject>(rest, TelegramAccountResource, {
    name: 'demo-accounts',
    namespace: NAMESPACE,
    logger,
  });
  const shown = new Map<string, string>();
  accounts.onEvent((_type, a) => {
    const ready = a.status?.conditions?.find((c) => c.type === 'Ready');
    const line = `${a.metadata.name}: ${a.spec.type} auth=${a.status?.authorizationState ?? '-'} ready=${ready?.status ?? '-'} (${ready?.reason ?? 'pending'}) pod=${a.status?.placement?.pod ?? '-'}`;
    if (shown.get(a.metadata.name ?? '') === line) return;
    shown.set(a.metadata.name ?? '', line);
    console.log(line);
    if (a.status?.authorizationState === 'WaitCode' && !shown.has(`${a.metadata.name}-hint`)) {
      shown.set(`${a.metadata.name}-hint`, '');
      console.log(
        `\n  ${a.metadata.name} waits for its login code. In another shell:\n` +
          `    export PATH="$PWD/bin:$PATH" KUBECONFIG=$PWD/.cluster/kubeconfig\n` +
          `    kubectl telegram login ${a.metadata.name} -n ${NAMESPACE}      # the demo world's code is 12345\n`,
      );
    }
  });
  accounts.start();
  console.log('\nrunning; Ctrl-C stops everything. Try: KUBECONFIG=.cluster/kubeconfig kubectl get tga -A\n');

  let stopping = false;
  const stop = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    console.log('\nstopping: runtimes and operator (SIGTERM), then the control plane');
    for (const stopToken of stopTokens) stopToken();
    await pods.stop();
    await accounts.stop();
    await Promise.all(processes.reverse().map((p) => p.stop()));
    await rest.close();
    await plane.stop();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
  if (!existsSync(resolve('dist/tools/kubectl-telegram/main.js')))
    console.log('note: the kubectl plugin is not built (npm run build)');
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exit(1);
});
