/**
 * The session fence of a whole runtime process on real libtdjson: runtime A hosts accounts, is paused
 * (SIGSTOP) past its Lease while runtime B takes them over, and is resumed (SIGCONT). What reaches TDLib is
 * recorded from outside the addon by a shim libtdjson (fixtures/tdjson-recorder.c) that forwards to the real
 * one: after the resume, A must not send a single request on those sessions but `close`, and must have closed
 * them (or exited) within 100 ms.
 *
 * A real kube-apiserver (test/cluster) and the operator process run the API side; Telegram is offline, so the
 * accounts stop at authorizationStateWaitPhoneNumber with a login request in flight, and each has a proxy
 * that the runtime keeps pinging: A has work queued to send when it wakes up.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { GROUP, VERSION, accountLeaseName, type TelegramAccount } from '../../crds/index.js';
import { resolveLibraryPath } from '../../native/index.js';
import { ControlPlane } from '../cluster/control-plane.js';
import { waitFor } from '../cluster/wait.js';
import { createTestNamespace } from '../support/cluster.js';
import { installCrds } from '../support/crds.js';
import { operatorKubeconfig, startOperatorProcess, type OperatorProcess } from '../support/operator.js';
import {
  DEMO_API_CREDENTIALS,
  SECRET_OPT_IN,
  serviceAccountKubeconfig,
  startRuntimeProcess,
  type RuntimeProcess,
} from '../support/runtime.js';

const ACCOUNTS = ['alice', 'bob', 'carol'];
const POD = (n: number): string => `tdlib-runtime-default-${n}`;

interface Recorded {
  ns: bigint;
  kind: 'send' | 'closed';
  client: number;
  type?: string;
}

function readRecord(file: string): Recorded[] {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => {
      const [ns, kind, client, type] = line.split(' ');
      return { ns: BigInt(ns ?? '0'), kind: kind as Recorded['kind'], client: Number(client), type };
    });
}

describe('runtime session fence on real libtdjson: pause past the Lease, takeover, resume', () => {
  let plane: ControlPlane;
  let kc: k8s.KubeConfig;
  let scratch: string;
  let recorder: string;
  let operator: OperatorProcess | undefined;
  const runtimes: RuntimeProcess[] = [];

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'runtime-fence-'));
    recorder = join(scratch, 'libtdjson-recorder.so');
    execFileSync('cc', [
      '-shared',
      '-fPIC',
      '-O2',
      '-o',
      recorder,
      resolve('test/native/fixtures/tdjson-recorder.c'),
      '-ldl',
    ]);
    plane = await ControlPlane.start({ dir: join(scratch, 'cluster') });
    kc = new k8s.KubeConfig();
    kc.loadFromFile(plane.info.kubeconfigPath);
  });

  afterAll(async () => {
    for (const r of runtimes) r.child.kill('SIGCONT');
    await Promise.all(runtimes.map((r) => r.stop('SIGKILL')));
    await operator?.stop();
    await plane?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });

  it('sends nothing but close on the sessions it lost, and closes them within 100 ms of resuming', async () => {
    await installCrds(kc, plane.info.kubeconfigPath);
    const namespace = await createTestNamespace(kc, 'native-fence');
    operator = startOperatorProcess(await operatorKubeconfig(plane.info.kubeconfigPath), {
      WATCH_NAMESPACE: namespace,
    });
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const custom = kc.makeApiClient(k8s.CustomObjectsApi);
    const coordination = kc.makeApiClient(k8s.CoordinationV1Api);
    await core.createNamespacedSecret({
      namespace,
      body: { metadata: { name: 'api', labels: SECRET_OPT_IN }, stringData: DEMO_API_CREDENTIALS },
    });
    for (const [i, name] of ACCOUNTS.entries())
      await custom.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace,
        plural: 'telegramaccounts',
        body: {
          apiVersion: `${GROUP}/${VERSION}`,
          kind: 'TelegramAccount',
          metadata: { name },
          spec: {
            type: 'User',
            phoneNumber: `+1202555010${i}`,
            apiCredentialsSecretRef: { name: 'api' },
            // Nothing listens there: the runtime pings it every 10 s, so there is always work to send.
            proxy: { type: 'Socks5', server: '127.0.0.1', port: 9, checkIntervalSeconds: 10 },
          },
        },
      });
    const account = async (name: string): Promise<TelegramAccount> =>
      (await custom.getNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace,
        plural: 'telegramaccounts',
        name,
      })) as TelegramAccount;
    const allHostedBy = (pod: string, states: string[]) =>
      waitFor(
        `every account hosted by ${pod}`,
        async () => {
          const all = await Promise.all(ACCOUNTS.map(account));
          return all.every(
            (a) => a.status?.hostedBy === pod && states.includes(a.status?.authorizationState ?? ''),
          )
            ? true
            : undefined;
        },
        {
          timeoutMs: 90_000,
          onTimeout: () => runtimes.map((r) => `${r.pod}:\n${r.output().slice(-3000)}`).join('\n---\n'),
        },
      );
    const runtimeKubeconfig = await serviceAccountKubeconfig(kc, namespace, 'tdlib-runtime-default');
    const start = (pod: number, file: string): RuntimeProcess => {
      const runtime = startRuntimeProcess({
        pod: POD(pod),
        namespace,
        kubeconfig: runtimeKubeconfig,
        worldDir: scratch,
        env: {
          TDLIB_BACKEND: 'native',
          TDLIB_LIBRARY_PATH: recorder,
          TDJSON_RECORDER_REAL: resolveLibraryPath({ env: {} }).file,
          TDJSON_RECORDER_FILE: file,
          RUNTIME_LEASE_SECONDS: '3',
        },
      });
      runtimes.push(runtime);
      return runtime;
    };

    const fileA = join(scratch, 'a.record');
    const a = start(0, fileA);
    await allHostedBy(POD(0), ['WaitPhoneNumber']);
    const clientsOfA = [...new Set(readRecord(fileA).map((r) => r.client))];
    expect(clientsOfA.length).toBeGreaterThanOrEqual(ACCOUNTS.length);

    let resumedAt = 0n;
    a.child.kill('SIGSTOP');
    try {
      // The operator sees A's heartbeat stop and places the accounts on pod 1; B takes their Leases over.
      await waitFor(
        'the accounts placed on pod 1',
        async () =>
          (await Promise.all(ACCOUNTS.map(account))).every((x) => x.status?.placement?.pod === POD(1))
            ? true
            : undefined,
        { timeoutMs: 30_000 },
      );
      const b = start(1, join(scratch, 'b.record'));
      await allHostedBy(POD(1), ['WaitPhoneNumber']);
      for (const name of ACCOUNTS) {
        const lease = await coordination.readNamespacedLease({ namespace, name: accountLeaseName(name) });
        expect(lease.spec?.holderIdentity?.startsWith(`${POD(1)}/`)).toBe(true);
      }
      expect(b.child.exitCode).toBeNull();
    } finally {
      resumedAt = process.hrtime.bigint();
      a.child.kill('SIGCONT');
    }

    const exited = new Promise<bigint>((r) => a.child.once('exit', () => r(process.hrtime.bigint())));
    // Done when every client of A reported Closed, or A is gone.
    const closedOrExit = await Promise.race([
      exited.then((at) => ({ exitedAt: at, closed: new Map<number, bigint>() })),
      waitFor(
        'A to close every client it had',
        () => {
          const closed = new Map(
            readRecord(fileA)
              .filter((r) => r.kind === 'closed')
              .map((r) => [r.client, r.ns] as const),
          );
          return clientsOfA.every((c) => closed.has(c)) ? { exitedAt: undefined, closed } : undefined;
        },
        { timeoutMs: 10_000, intervalMs: 20 },
      ),
    ]);
    // Let A run whatever it had queued (overdue timers, watch events) until its next heartbeat renewal.
    await waitFor(
      'A to run on after the resume (one more heartbeat)',
      async () => {
        if (a.child.exitCode !== null || a.child.signalCode !== null) return true;
        const lease = await coordination.readNamespacedLease({ namespace, name: POD(0) });
        const renewed = lease.spec?.renewTime ? Date.parse(String(lease.spec.renewTime)) : 0;
        return renewed > Date.now() - 1500 ? true : undefined;
      },
      { timeoutMs: 20_000 },
    );

    const afterResume = readRecord(fileA).filter((r) => r.ns > resumedAt && clientsOfA.includes(r.client));
    const sent = afterResume.filter((r) => r.kind === 'send' && r.type !== 'close');
    expect(sent).toEqual([]);
    const limit = resumedAt + 100_000_000n;
    if (closedOrExit.exitedAt !== undefined) expect(closedOrExit.exitedAt).toBeLessThanOrEqual(limit);
    else
      for (const c of clientsOfA) expect(closedOrExit.closed.get(c) ?? limit + 1n).toBeLessThanOrEqual(limit);
  });
});
