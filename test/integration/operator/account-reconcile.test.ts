import * as k8s from '@kubernetes/client-node';
import { GROUP, VERSION, type TelegramAccount } from '../../../crds/index.js';
import { waitFor } from '../../cluster/wait.js';
import { adminKubeConfig, createTestNamespace } from '../../support/cluster.js';
import { installCrds } from '../../support/crds.js';
import { moduleRecorder } from '../../support/module-recorder.js';
import { operatorKubeconfig, startOperatorProcess, type OperatorProcess } from '../../support/operator.js';
import { serviceAccountKubeconfig } from '../../support/runtime.js';

const LEGACY_LABEL_POD = `${GROUP}/pod`;
type Spec = Record<string, unknown>;

describe('the operator reconciles TelegramAccounts (running as its ServiceAccount with the shipped ClusterRole)', () => {
  const kc = adminKubeConfig();
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const apps = kc.makeApiClient(k8s.AppsV1Api);
  const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const coordination = kc.makeApiClient(k8s.CoordinationV1Api);
  let namespace = '';
  let operator: OperatorProcess;
  const modules = moduleRecorder();

  const secret = (name: string, data: Record<string, string>) =>
    core.createNamespacedSecret({
      namespace,
      body: {
        metadata: { name, labels: { 'telegram.tdlib-operator.dev/usable-by-accounts': 'true' } },
        stringData: data,
      },
    });
  const createAccount = (name: string, spec: Spec) =>
    custom.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: 'telegramaccounts',
      body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'TelegramAccount', metadata: { name }, spec },
    });
  const getAccount = async (name: string): Promise<TelegramAccount | undefined> =>
    (await custom
      .getNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace,
        plural: 'telegramaccounts',
        name,
      })
      .catch((error: unknown) => {
        if (error instanceof k8s.ApiException && error.code === 404) return undefined;
        throw error;
      })) as TelegramAccount | undefined;
  const condition = (account: TelegramAccount | undefined, type: string) =>
    account?.status?.conditions?.find((c) => c.type === type);
  const waitForCondition = (name: string, type: string, status: string, reason?: string) =>
    waitFor(
      `${name}: ${type}=${status}${reason ? ` (${reason})` : ''}`,
      async () => {
        const account = await getAccount(name);
        const c = condition(account, type);
        return c && c.status === status && (reason === undefined || c.reason === reason)
          ? account
          : undefined;
      },
      { timeoutMs: 20_000, onTimeout: () => operator.rawOutput().slice(-4000) },
    );
  const deleteAndWaitGone = async (name: string): Promise<void> => {
    await custom.deleteNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: 'telegramaccounts',
      name,
    });
    await waitFor(
      `${name} to be gone`,
      async () => ((await getAccount(name)) === undefined ? true : undefined),
      { timeoutMs: 10_000 },
    );
  };
  const bot = (extra: Spec = {}): Spec => ({
    type: 'Bot',
    botTokenSecretRef: { name: 'bot' },
    apiCredentialsSecretRef: { name: 'api' },
    ...extra,
  });

  beforeAll(async () => {
    await installCrds(kc);
    namespace = await createTestNamespace(kc, 'reconcile');
    operator = startOperatorProcess(await operatorKubeconfig(), {
      WATCH_NAMESPACE: namespace,
      RUNTIME_ACCOUNTS_PER_POD: '2',
      NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} ${modules.nodeOptions}`.trim(),
    });
    await secret('api', { api_id: '12345', api_hash: '0123456789abcdef0123456789abcdef' });
    await secret('bot', { token: '123456:AAAA-test-token' });
  });

  afterAll(async () => {
    expect(await operator.stop()).toBe(0);
  });

  it('places a valid account, reports Scheduled with observedGeneration, and creates its session Secret with the database key in it (KeepSession: no finalizer, nothing owned)', async () => {
    await createAccount('news', bot());
    await waitForCondition('news', 'Scheduled', 'True', 'Placed');
    const account = await getAccount('news');
    // Placement is written once, in status, and a runtime finds its accounts by it (a selectable field).
    expect(account?.status?.placement).toEqual({ pool: 'default', pod: 'tdlib-runtime-default-0' });
    expect(account?.metadata.labels?.[LEGACY_LABEL_POD]).toBeUndefined();
    const selected = (await custom.listNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: 'telegramaccounts',
      fieldSelector: 'status.placement.pod=tdlib-runtime-default-0',
    })) as { items: TelegramAccount[] };
    expect(selected.items.map((a) => a.metadata.name)).toEqual(['news']);
    expect(account?.status?.observedGeneration).toBe(account?.metadata.generation);
    expect(account?.metadata.finalizers ?? []).toEqual([]);

    const session = await waitFor(
      'the session Secret',
      () => core.readNamespacedSecret({ namespace, name: 'news-tdlib-session' }),
      { timeoutMs: 10_000 },
    );
    expect(Buffer.from(session.data?.key ?? '', 'base64')).toHaveLength(32);
    expect(session.metadata?.ownerReferences ?? []).toEqual([]);
    // One Secret per account: no separate key Secret any more.
    await expect(core.readNamespacedSecret({ namespace, name: 'news-tdlib-key' })).rejects.toMatchObject({
      code: 404,
    });
  });

  /**
   * The account's fence Lease as its runtime makes it when it first takes it (runtime/hosting/hosted-account.ts),
   * given back since: a held one would keep the account's names in its holder's pool Role.
   */
  const leaseAsRuntimeMakesIt = (account: string, ownerUid?: string) =>
    coordination.createNamespacedLease({
      namespace,
      body: {
        metadata: {
          name: `tga-${account}`,
          labels: {
            'app.kubernetes.io/managed-by': 'tdlib-runtime',
            'telegram.tdlib-operator.dev/account': account,
          },
          ...(ownerUid
            ? {
                ownerReferences: [
                  {
                    apiVersion: `${GROUP}/${VERSION}`,
                    kind: 'TelegramAccount',
                    name: account,
                    uid: ownerUid,
                  },
                ],
              }
            : {}),
        },
        spec: { leaseDurationSeconds: 15, leaseTransitions: 0 },
      },
    });

  it('reaches the API server on its ServiceAccount token without loading client-node (whose generated API clients alone held 14.6 MB of its heap)', async () => {
    // The first test placed 'news': the operator has listed, watched, applied and created by now.
    await waitForCondition('news', 'Scheduled', 'True', 'Placed');
    const loaded = modules.loaded();
    expect(loaded.some((url) => url.endsWith('/dist/operator/kube/kubeconfig.js'))).toBe(true);
    expect(loaded.filter((url) => url.includes('@kubernetes/client-node'))).toEqual([]);
  });

  it('with deletionPolicy LogOut, holds a finalizer and has the account own its Secrets and Lease; switching to KeepSession releases them', async () => {
    await createAccount('leaver', bot({ deletionPolicy: 'LogOut', runtimePool: 'leaving' }));
    const account = await waitFor(
      'leaver: the finalizer',
      async () => {
        const a = await getAccount('leaver');
        return a?.metadata.finalizers?.includes(`${GROUP}/session`) ? a : undefined;
      },
      { timeoutMs: 20_000, onTimeout: () => operator.rawOutput().slice(-4000) },
    );
    // Made without an owner, as by a runtime that read the account before its policy was LogOut: the
    // operator gives it the owner the policy asks for.
    await leaseAsRuntimeMakesIt('leaver');
    const ownedByLeaver = async (): Promise<boolean[]> => [
      ...(await Promise.all(
        ['leaver-tdlib-session'].map(
          async (name) =>
            (
              await core.readNamespacedSecret({ namespace, name }).catch(() => undefined)
            )?.metadata?.ownerReferences?.some((o) => o.uid === account?.metadata.uid) ?? false,
        ),
      )),
      (
        await coordination.readNamespacedLease({ namespace, name: 'tga-leaver' }).catch(() => undefined)
      )?.metadata?.ownerReferences?.some((o) => o.uid === account?.metadata.uid) ?? false,
    ];
    await waitFor(
      'leaver owns its session Secret and its Lease',
      async () => ((await ownedByLeaver()).every(Boolean) ? true : undefined),
      { timeoutMs: 10_000 },
    );

    await custom.patchNamespacedCustomObject(
      {
        group: GROUP,
        version: VERSION,
        namespace,
        plural: 'telegramaccounts',
        name: 'leaver',
        body: { spec: { deletionPolicy: 'KeepSession' } },
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    await waitFor(
      'leaver: no finalizer',
      async () => (((await getAccount('leaver'))?.metadata.finalizers ?? []).length === 0 ? true : undefined),
      { timeoutMs: 10_000 },
    );
    // Released before the finalizer went: a deletion from then on keeps them.
    expect((await ownedByLeaver()).some(Boolean)).toBe(false);
  });

  it('runs the pool as a StatefulSet with least-privilege RBAC naming exactly the Secrets its accounts use', async () => {
    const sts = await waitFor(
      'the runtime StatefulSet',
      () => apps.readNamespacedStatefulSet({ namespace, name: 'tdlib-runtime-default' }),
      { timeoutMs: 10_000 },
    );
    expect(sts.spec?.replicas).toBe(1);
    expect(sts.spec?.template.spec?.serviceAccountName).toBe('tdlib-runtime-default');
    const role = await rbac.readNamespacedRole({ namespace, name: 'tdlib-runtime-default' });
    const rules = role.rules ?? [];
    const named = (resource: string, verb: string): string[] =>
      rules
        .filter((r) => r.resources?.includes(resource) && r.verbs.includes(verb))
        .flatMap((r) => r.resourceNames ?? ['<any>']);
    // Secrets: read the opted-in inputs and the account's session Secret (its key is in it); delete only
    // the consumed login code; update only the session Secret; never list, never any Secret by default
    // (F7, F18), and no earlier version's key Secret that does not exist.
    expect(named('secrets', 'get')).toEqual(
      expect.arrayContaining(['api', 'bot', 'news-login-code', 'news-tdlib-session']),
    );
    expect(named('secrets', 'get')).not.toContain('news-tdlib-key');
    expect(named('secrets', 'get')).not.toContain('<any>');
    expect(named('secrets', 'delete')).toEqual(['news-login-code']);
    expect(named('secrets', 'update')).toEqual(['news-tdlib-session']);
    expect(named('secrets', 'list')).toEqual([]);
    // Leases: read any (heartbeats of other pods), write only this pool's, create none (the operator does).
    expect(named('leases', 'get')).toEqual(['<any>']);
    expect(named('leases', 'update')).toEqual(
      expect.arrayContaining(['tga-news', 'tdlib-runtime-default-0']),
    );
    expect(named('leases', 'update')).not.toContain('<any>');
    // Create cannot be limited by name in RBAC: the runtime Lease admission policy does that (below).
    expect(named('leases', 'create')).toEqual(['<any>']);
    expect(named('leases', 'delete')).toEqual([]);
    // Accounts: watch the namespace (a label-selected watch cannot be limited by name), write only the pool's.
    expect(named('telegramaccounts', 'watch')).toEqual(['<any>']);
    expect(named('telegramaccounts/status', 'patch')).toEqual(['news']);
    expect(named('telegramaccounts', 'update')).toEqual([]);
    expect(rules.some((r) => r.resources?.includes('pods') || r.resources?.includes('statefulsets'))).toBe(
      false,
    );
    // The pod's heartbeat Lease exists before its runtime runs; the account's fence Lease is the runtime's
    // to create when it first takes it, so the operator spends no write on it.
    await waitFor(
      'the heartbeat Lease',
      () => coordination.readNamespacedLease({ namespace, name: 'tdlib-runtime-default-0' }),
      { timeoutMs: 10_000 },
    );
    await expect(coordination.readNamespacedLease({ namespace, name: 'tga-news' })).rejects.toMatchObject({
      code: 404,
    });
    await core.readNamespacedServiceAccount({ namespace, name: 'tdlib-runtime-default' });
    await rbac.readNamespacedRoleBinding({ namespace, name: 'tdlib-runtime-default' });
  });

  it('lets a runtime create only the Leases its pool hosts (the admission policy narrows its Role)', async () => {
    await createAccount('fenced', bot());
    await waitForCondition('fenced', 'Scheduled', 'True');
    const asRuntime = new k8s.KubeConfig();
    asRuntime.loadFromFile(await serviceAccountKubeconfig(kc, namespace, 'tdlib-runtime-default'));
    const runtimeLeases = asRuntime.makeApiClient(k8s.CoordinationV1Api);
    const lease = (name: string): k8s.V1Lease => ({
      metadata: { name, namespace },
      spec: { holderIdentity: 'tdlib-runtime-default-0/uid/nonce', leaseDurationSeconds: 15 },
    });
    // A Lease the pool's Role does not name: not an account placed here, and not a controller's.
    for (const name of ['tga-elsewhere', 'some-controller-leader']) {
      const refused = await runtimeLeases
        .createNamespacedLease({ namespace, body: lease(name) })
        .then(() => undefined)
        .catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(k8s.ApiException);
      expect((refused as k8s.ApiException<string>).code).toBe(403);
      expect(String((refused as k8s.ApiException<string>).body)).toContain(
        `${name} is not one of them: the operator names an account Lease once it places the account on the pool`,
      );
    }
    // The placed account's own Lease, once the Role names it.
    await waitFor(
      'the runtime to create the placed account Lease',
      () =>
        runtimeLeases
          .createNamespacedLease({ namespace, body: lease('tga-fenced') })
          .then(() => true)
          .catch((error: unknown) => {
            if (error instanceof k8s.ApiException && error.code === 403) return undefined;
            throw error;
          }),
      { timeoutMs: 10_000 },
    );
  });

  it('reports a missing Secret by name and field, with a Warning Event, and recovers once it exists', async () => {
    await createAccount('orphan', bot({ botTokenSecretRef: { name: 'later-token' } }));
    const account = await waitForCondition('orphan', 'Scheduled', 'False', 'SecretNotFound');
    const message = condition(account, 'Scheduled')?.message ?? '';
    expect(message).toContain('"later-token"');
    expect(message).toContain('spec.botTokenSecretRef');
    expect(account?.status?.placement?.pod).toBeUndefined();
    await waitFor(
      'a Warning Event about the missing Secret',
      async () => {
        const events = await core.listNamespacedEvent({
          namespace,
          fieldSelector: 'involvedObject.name=orphan',
        });
        return events.items.find((e) => e.type === 'Warning' && e.reason === 'SecretNotFound');
      },
      { timeoutMs: 10_000 },
    );

    await secret('later-token', { wrong: 'x' });
    const missingKey = await waitForCondition('orphan', 'Scheduled', 'False', 'SecretKeyMissing');
    expect(condition(missingKey, 'Scheduled')?.message).toContain('has no key token');

    await core.patchNamespacedSecret(
      { namespace, name: 'later-token', body: { stringData: { token: '1:B' } } },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    await waitForCondition('orphan', 'Scheduled', 'True', 'Placed');
  });

  it('grows the pool to demand and never puts more than the capacity on one pod', async () => {
    for (let i = 0; i < 5; i++) await createAccount(`small-${i}`, bot({ runtimePool: 'small' }));
    const pods = await waitFor(
      'five placed accounts in pool small',
      async () => {
        const placed = await Promise.all([0, 1, 2, 3, 4].map((i) => getAccount(`small-${i}`)));
        const labels = placed.map((a) => a?.status?.placement?.pod);
        return labels.every((l) => l !== undefined) ? (labels as string[]) : undefined;
      },
      { timeoutMs: 20_000 },
    );
    const perPod = new Map<string, number>();
    for (const pod of pods) perPod.set(pod, (perPod.get(pod) ?? 0) + 1);
    expect(Math.max(...perPod.values())).toBeLessThanOrEqual(2);
    expect(perPod.size).toBe(3);
    const sts = await waitFor(
      'the small pool scaled to 3',
      async () => {
        const s = await apps.readNamespacedStatefulSet({ namespace, name: 'tdlib-runtime-small' });
        return s.spec?.replicas === 3 ? s : undefined;
      },
      { timeoutMs: 10_000 },
    );
    expect(sts.spec?.replicas).toBe(3);
  });

  it('updates observedGeneration after a spec change without moving the account', async () => {
    const before = await getAccount('news');
    await custom.patchNamespacedCustomObject(
      {
        group: GROUP,
        version: VERSION,
        namespace,
        plural: 'telegramaccounts',
        name: 'news',
        body: { spec: { suspend: true } },
      },
      k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
    );
    const after = await waitFor(
      'observedGeneration to follow the new generation',
      async () => {
        const a = await getAccount('news');
        return a &&
          a.status?.observedGeneration === a.metadata.generation &&
          a.metadata.generation !== before?.metadata.generation
          ? a
          : undefined;
      },
      { timeoutMs: 10_000 },
    );
    expect(after.status?.placement?.pod).toBe(before?.status?.placement?.pod);
  });

  it('deletes with KeepSession keeping the session Secret (and its key) and the fencing Lease, and a new account of that name uses them', async () => {
    await createAccount('keeper', bot({ deletionPolicy: 'KeepSession' }));
    await waitFor(
      'keeper session Secret',
      () => core.readNamespacedSecret({ namespace, name: 'keeper-tdlib-session' }),
      { timeoutMs: 10_000 },
    );
    const keyBefore = (await core.readNamespacedSecret({ namespace, name: 'keeper-tdlib-session' })).data
      ?.key;
    expect(keyBefore).toBeDefined();
    const leaseBefore = await leaseAsRuntimeMakesIt('keeper');
    await deleteAndWaitGone('keeper');
    const kept = await core.readNamespacedSecret({ namespace, name: 'keeper-tdlib-session' });
    expect(kept.metadata?.ownerReferences ?? []).toEqual([]);

    await createAccount('keeper', bot({ deletionPolicy: 'KeepSession' }));
    await waitForCondition('keeper', 'Scheduled', 'True');
    const key = await core.readNamespacedSecret({ namespace, name: 'keeper-tdlib-session' });
    expect(key.data?.key).toBe(keyBefore);
    // The same Lease object: a runtime still closing the old account's client holds the session until it
    // lets go; a Lease collected with the account would let a new one start beside it.
    const lease = await coordination.readNamespacedLease({ namespace, name: 'tga-keeper' });
    expect(lease.metadata?.uid).toBe(leaseBefore.metadata?.uid);
  });

  it('deletes a never-logged-in account with LogOut at once', async () => {
    await createAccount('short-lived', bot({ deletionPolicy: 'LogOut' }));
    await waitForCondition('short-lived', 'Scheduled', 'True');
    await deleteAndWaitGone('short-lived');
  });

  it("an account made again at once drops its predecessor's owner references, so garbage collection cannot delete what it now uses", async () => {
    // This control plane runs no garbage collector: the LogOut predecessor's objects stay, still owned by
    // it, as they are in a cluster for the moment between the deletion and the collector's pass.
    await createAccount('phoenix', bot({ deletionPolicy: 'LogOut', runtimePool: 'rebirth' }));
    const first = await waitForCondition('phoenix', 'Scheduled', 'True');
    await leaseAsRuntimeMakesIt('phoenix', first?.metadata.uid);
    const ownersOf = async (): Promise<string[][]> => [
      ...(await Promise.all(
        ['phoenix-tdlib-session'].map(async (name) =>
          ((await core.readNamespacedSecret({ namespace, name })).metadata?.ownerReferences ?? []).map(
            (o) => o.uid,
          ),
        ),
      )),
      (
        (await coordination.readNamespacedLease({ namespace, name: 'tga-phoenix' })).metadata
          ?.ownerReferences ?? []
      ).map((o) => o.uid),
    ];
    await waitFor(
      'phoenix owns its objects',
      async () => ((await ownersOf()).every((u) => u.join() === first?.metadata.uid) ? true : undefined),
      { timeoutMs: 10_000 },
    );
    await deleteAndWaitGone('phoenix');

    await createAccount('phoenix', bot({ runtimePool: 'rebirth' }));
    const again = await waitForCondition('phoenix', 'Scheduled', 'True');
    expect(again?.metadata.uid).not.toBe(first?.metadata.uid);
    // KeepSession: owned by nobody, and no longer by the deleted predecessor.
    await waitFor(
      "the predecessor's references dropped",
      async () => ((await ownersOf()).every((u) => u.length === 0) ? true : undefined),
      { timeoutMs: 10_000, onTimeout: async () => JSON.stringify(await ownersOf()) },
    );
  });
});
