/**
 * The send half of bench:updates: messages sent through the send API gateway, next to a plain HTTPS round
 * trip and to the runtime's own send endpoint, measured in the same run.
 *
 * The parts are the real ones: a kube-apiserver + etcd (TokenReview, SubjectAccessReview, the accounts and
 * heartbeat Leases the gateway watches, the JWKS the runtime verifies the gateway's token with), the
 * gateway as the process its Deployment runs, and the runtime's send server with DirectSends (ledger
 * fdatasync'ed, TDLib's sendMessage on the simulator) for the benchmark's logged-in account. What is set by
 * hand instead of an operator and a runtime pod: the account's placement and Ready condition, and the
 * heartbeat Lease that advertises the send endpoint.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { API_VERSION } from '../../crds/index.js';
import { ANNOTATION_SEND_URL, LABEL_MANAGED_BY } from '../../crds/naming.js';
import { TelegramAccountResource } from '../../crds/resources.js';
import { RestClient } from '../../operator/kube/client.js';
import { clientNodeKubeConfig } from '../support/cluster.js';
import { createLogger } from '../../operator/kube/logging.js';
import { createRegistry } from '../../operator/kube/metrics.js';
import { Resources, type ApiObject } from '../../operator/kube/resource.js';
import { SEND_API_AUDIENCE } from '../../operator/gateway/access.js';
import { startSendServer } from '../../runtime/send-server.js';
import { DirectSends } from '../../runtime/sending/direct-sends.js';
import {
  GatewayTokenVerifier,
  RUNTIME_SEND_AUDIENCE,
  type Jwks,
} from '../../runtime/sending/gateway-token.js';
import { SendLedger } from '../../runtime/sending/send-ledger.js';
import type { TdObject } from '../../runtime/tdlib/backend.js';
import type { TdClient } from '../../runtime/tdlib/client.js';
import { ControlPlane } from '../cluster/control-plane.js';
import { waitFor } from '../cluster/wait.js';
import { startGatewayProcess } from '../support/gateway.js';
import { serviceAccountToken } from '../support/runtime.js';
import { installBenchApi } from './bench-api.js';

const NAMESPACE = 'bench-send';
const ACCOUNT = 'sender';
const POD = 'bench-runtime-0';
const GATEWAY_SA = 'tdlib-send-gateway';
const CALLER_SA = 'app';

export interface SendPhaseOptions {
  client: TdClient;
  execute: (request: TdObject) => TdObject;
  myUserId: number;
  /** `to` of the i-th message. */
  recipient: (i: number) => string;
  count: number;
  parallel: number;
  log: (line: string) => void;
}

export interface Timed {
  perSecond: number;
  /** Sorted, ms. */
  latencies: number[];
}

export interface SendPhaseResult {
  gateway: Timed;
  runtimeDirect: Timed;
  plainHttps: Timed;
  /** Answers other than 200 through the gateway, by status (a send that failed is not a send). */
  refused: Record<string, number>;
}

type Call = (i: number) => Promise<number>;

/** Runs `call` `count` times with `parallel` in flight: the rate and each call's latency. */
async function timed(count: number, parallel: number, call: Call): Promise<Timed & { statuses: number[] }> {
  const latencies: number[] = [];
  const statuses: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < count) {
        const i = next++;
        const at = performance.now();
        statuses.push(await call(i));
        latencies.push(performance.now() - at);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  return { perSecond: count / seconds, latencies: latencies.sort((a, b) => a - b), statuses };
}

/** One POST with a keep-alive agent; resolves with the status once the body is read. */
function post(
  url: string,
  agent: HttpAgent | HttpsAgent,
  headers: Record<string, string>,
  body: string,
): Promise<number> {
  const send = url.startsWith('https:') ? httpsRequest : (httpRequest as typeof httpsRequest);
  return new Promise((resolve, reject) => {
    const req = send(
      url,
      {
        method: 'POST',
        agent,
        headers: {
          ...headers,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function serviceAccounts(rest: RestClient): Promise<void> {
  for (const name of [GATEWAY_SA, CALLER_SA])
    await rest.create(Resources.ServiceAccount, {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name, namespace: NAMESPACE },
    });
  await rest.create(Resources.Role, {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'Role',
    metadata: { name: 'send-as-sender', namespace: NAMESPACE },
    rules: [
      {
        apiGroups: ['telegram.tdlib-operator.dev'],
        resources: ['telegramaccounts/messages'],
        resourceNames: [ACCOUNT],
        verbs: ['create'],
      },
    ],
  } as ApiObject);
  await rest.create(Resources.RoleBinding, {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'RoleBinding',
    metadata: { name: 'app-sends-as-sender', namespace: NAMESPACE },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'send-as-sender' },
    subjects: [{ kind: 'ServiceAccount', name: CALLER_SA, namespace: NAMESPACE }],
  } as ApiObject);
}

/** The account as the operator and its runtime would leave it: placed on POD, Ready. */
async function placedReadyAccount(rest: RestClient): Promise<void> {
  await rest.create(TelegramAccountResource, {
    apiVersion: API_VERSION,
    kind: 'TelegramAccount',
    metadata: { name: ACCOUNT, namespace: NAMESPACE },
    spec: { type: 'User', phoneNumber: '+15550100000', apiCredentialsSecretRef: { name: 'api' } },
  } as ApiObject);
  const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  await rest.mergePatch(
    TelegramAccountResource,
    NAMESPACE,
    ACCOUNT,
    {
      status: {
        placement: { pool: 'bench', pod: POD },
        conditions: [
          { type: 'Ready', status: 'True', reason: 'LoggedIn', message: 'bench', lastTransitionTime: now },
        ],
      },
    },
    { subresource: 'status' },
  );
}

/** The runtime pod's heartbeat Lease, advertising its send endpoint as the runtime does. */
async function heartbeat(rest: RestClient, sendUrl: string): Promise<void> {
  await rest.create(Resources.Lease, {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: {
      name: POD,
      namespace: NAMESPACE,
      labels: { [LABEL_MANAGED_BY]: 'tdlib-runtime' },
      annotations: { [ANNOTATION_SEND_URL]: sendUrl },
    },
    spec: { holderIdentity: `${POD}/bench/0`, leaseDurationSeconds: 3600 },
  } as ApiObject);
}

/** A trivial HTTPS server with the gateway's certificate: the plain round trip. */
async function plainServer(cert: { cert: string; key: string }): Promise<{ url: string; server: Server }> {
  const server = createServer(cert, (req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"messageId":1}'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}/`, server };
}

export async function measureSends(options: SendPhaseOptions): Promise<SendPhaseResult> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-send-'));
  const logger = createLogger({ name: 'bench-send', level: 'warn' });
  options.log('send API: starting etcd + kube-apiserver');
  const plane = await ControlPlane.start({ dir: join(dir, 'plane') });
  const kc = clientNodeKubeConfig(plane.info.kubeconfigPath);
  const rest = new RestClient(kc, { registry: createRegistry(), logger });
  const cleanups: Array<() => Promise<unknown> | unknown> = [];
  try {
    await installBenchApi(rest, NAMESPACE);
    await serviceAccounts(rest);
    await placedReadyAccount(rest);

    mkdirSync(join(dir, 'ledger'));
    // DirectSends owns the ledger from here: closing it waits for sends in flight, then the ledger.
    const direct = new DirectSends({
      ledger: await SendLedger.open(join(dir, 'ledger')),
      client: () => options.client,
      myUserId: () => options.myUserId,
      isBot: false,
      execute: options.execute,
    });
    cleanups.push(() => direct.close());
    const verifier = new GatewayTokenVerifier({
      fetchJwks: () =>
        rest.request<Jwks>({ method: 'GET', path: '/openid/v1/jwks', accept: 'application/jwk-set+json' }),
      subject: `system:serviceaccount:${NAMESPACE}:${GATEWAY_SA}`,
    });
    const sendServer = await startSendServer({
      port: 0,
      check: (token) => verifier.check(token),
      of: (namespace, name) =>
        Promise.resolve(namespace === NAMESPACE && name === ACCOUNT ? direct : undefined),
    });
    cleanups.push(() => sendServer.close());
    const runtimeUrl = `http://127.0.0.1:${sendServer.port}`;
    await heartbeat(rest, runtimeUrl);

    const runtimeToken = await serviceAccountToken(kc, NAMESPACE, GATEWAY_SA, RUNTIME_SEND_AUDIENCE);
    const callerToken = await serviceAccountToken(kc, NAMESPACE, CALLER_SA, SEND_API_AUDIENCE);
    const gateway = await startGatewayProcess({
      kubeconfig: plane.info.kubeconfigPath,
      namespace: NAMESPACE,
      runtimeToken,
    });
    cleanups.push(() => gateway.stop());

    const path = `/v1/namespaces/${NAMESPACE}/telegramaccounts/${ACCOUNT}/messages`;
    const tls = new HttpsAgent({ keepAlive: true, ca: gateway.ca });
    const plainAgent = new HttpsAgent({ keepAlive: true, ca: gateway.ca });
    const runtimeAgent = new HttpAgent({ keepAlive: true });
    cleanups.push(() => [tls, plainAgent, runtimeAgent].forEach((a) => a.destroy()));
    const body = (i: number, phase: string): string =>
      JSON.stringify({ to: options.recipient(i), text: `${phase} message ${i}` });

    // Until the gateway's caches hold the account and the Lease, it answers 503: one send that succeeds.
    await waitFor(
      'a first send through the gateway',
      async () =>
        (await post(
          gateway.url + path,
          tls,
          { authorization: `Bearer ${callerToken}`, 'idempotency-key': 'warm-up' },
          body(0, 'warm-up'),
        )) === 200
          ? true
          : undefined,
      { timeoutMs: 60_000 },
    );

    const plain = await plainServer(gateway.tls);
    cleanups.push(() => new Promise((resolve) => plain.server.close(resolve)));
    const plainHttps = await timed(options.count, options.parallel, (i) =>
      post(
        plain.url,
        plainAgent,
        { authorization: `Bearer ${callerToken}`, 'idempotency-key': `p${i}` },
        body(i, 'plain'),
      ),
    );
    options.log(`send API: plain HTTPS round trip ${plainHttps.perSecond.toFixed(0)} req/s`);
    const runtimeDirect = await timed(options.count, options.parallel, (i) =>
      post(
        runtimeUrl + path,
        runtimeAgent,
        { authorization: `Bearer ${runtimeToken}`, 'idempotency-key': `direct-${i}` },
        body(i, 'direct'),
      ),
    );
    options.log(`send API: the runtime's endpoint directly ${runtimeDirect.perSecond.toFixed(0)} sends/s`);
    const through = await timed(options.count, options.parallel, (i) =>
      post(
        gateway.url + path,
        tls,
        { authorization: `Bearer ${callerToken}`, 'idempotency-key': `gateway-${i}` },
        body(i, 'gateway'),
      ),
    );
    options.log(`send API: through the gateway ${through.perSecond.toFixed(0)} sends/s`);
    const refused: Record<string, number> = {};
    for (const status of [...runtimeDirect.statuses, ...through.statuses])
      if (status !== 200) refused[status] = (refused[status] ?? 0) + 1;
    return { gateway: through, runtimeDirect, plainHttps, refused };
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup();
    await rest.close();
    await plane.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
