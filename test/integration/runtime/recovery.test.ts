/**
 * Nothing on the runtime agent is terminal, and the login and log-out move on by themselves (in process, real
 * apiserver, the operator running as its ServiceAccount):
 * - F6: a session key missing at start, or a corrupt session backup, is reported and then recovered from;
 * - F12: a LogOut deletion found at start-up logs out properly; a log-out that cannot finish gives up after its
 *   deadline, closes the client and retries, while the agent's other accounts are served;
 * - F19: a login completes while every status write of the runtime is refused (no write, so no echo).
 */
import { randomBytes } from 'node:crypto';
import {
  API_VERSION,
  FINALIZER,
  GROUP,
  LABEL_ACCOUNT,
  LABEL_MANAGED_BY,
  MANAGED_BY,
  TELEGRAM_ACCOUNT_KIND,
  accountLeaseName,
  encryptionKeySecretName,
  runtimePodName,
  sessionSecretName,
} from '../../../crds/index.js';
import { Resources, type ApiObject } from '../../../operator/kube/resource.js';
import { SESSION_EPOCH_ANNOTATION } from '../../../runtime/hosting/session-store.js';
import { waitFor } from '../../cluster/wait.js';
import {
  AgentScene,
  botUserId,
  condition,
  holderOf,
  LeaseWrites,
  type InProcessAgent,
  type PolicyRule,
} from '../../support/agent.js';
import { adminKubeConfig } from '../../support/cluster.js';

const POD = runtimePodName('default', 0);
const HANGING_MS = 600_000;

describe('recovery and progress on the runtime agent (in process, real apiserver)', () => {
  let scene: AgentScene;

  beforeAll(async () => {
    scene = await AgentScene.start(adminKubeConfig(), 'agent-recovery');
  });

  afterAll(async () => {
    await scene?.close();
  });

  afterEach(() => scene.afterTest());

  const authKeyOf = (bot: number): string => {
    const sessions = scene.sessionsOf(botUserId(bot));
    expect(sessions).toHaveLength(1);
    return sessions[0]?.auth_key ?? '';
  };

  it('F6: a session key missing at start is reported, and the account becomes Ready by itself once it exists', async () => {
    const name = 'no-key';
    const sessionSecret = sessionSecretName(name);
    await scene.createBot(name, 2);
    await scene.waitForPlacement(name);
    // No operator to make it again, and no backup exists: the key is simply not there yet.
    await scene.stopOperator();
    await scene.rest.delete(Resources.Secret, scene.namespace, sessionSecret);

    const agent = await scene.startAgent();
    const reported = await scene.waitForAccount(
      name,
      'Authorized=False SessionKeyMissing',
      (a) => condition(a, 'Authorized')?.reason === 'SessionKeyMissing',
    );
    expect(condition(reported, 'Authorized')?.status).toBe('False');
    expect(condition(reported, 'Authorized')?.message).toContain(sessionSecret);
    const warning = await scene.waitForEvent(name, 'SessionKeyMissing');
    expect(warning.type).toBe('Warning');
    expect(warning.message).toContain(sessionSecret);
    expect(scene.worldEvents('login', botUserId(2))).toEqual([]);

    // The session Secret appears with its key (made as the operator makes it), and nothing tells the agent:
    // no event of the account, only its own retries.
    const account = await scene.account(name);
    await scene.rest.create(Resources.Secret, {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'Opaque',
      metadata: {
        name: sessionSecret,
        namespace: scene.namespace,
        labels: { [LABEL_MANAGED_BY]: MANAGED_BY, [LABEL_ACCOUNT]: name },
        ownerReferences: [
          { apiVersion: API_VERSION, kind: TELEGRAM_ACCOUNT_KIND, name, uid: account.metadata?.uid ?? '' },
        ],
      },
      data: { key: randomBytes(32).toString('base64') },
    } as ApiObject);
    await scene.waitForAccount(
      name,
      'Authorized=True, hosted here',
      (a) => condition(a, 'Authorized')?.status === 'True' && a.status?.hostedBy === POD,
      90_000,
    );
    expect(scene.worldEvents('login', botUserId(2))).toHaveLength(1);
    scene.startOperator();
    await scene.waitForReady(name);

    await scene.stopAgent(agent);
    await scene.deleteAccount(name);
  });

  it('a session backup whose key is gone: the runtime says how to recover, the operator makes no new key, and one is made once the backup is gone', async () => {
    const name = 'lost-key';
    const sessionSecret = sessionSecretName(name);
    await scene.createBot(name, 10);
    await scene.waitForPlacement(name);
    // What a runtime's backup leaves in the session Secret (unreadable here, which does not matter), and the
    // key lost.
    await scene.rest.mergePatch(Resources.Secret, scene.namespace, sessionSecret, {
      data: { session: Buffer.from('an encrypted session backup').toString('base64'), key: null },
    });

    const agent = await scene.startAgent();
    const reported = await scene.waitForAccount(
      name,
      'Ready=False SessionKeyMissing',
      (a) => condition(a, 'Ready')?.reason === 'SessionKeyMissing',
    );
    expect(condition(reported, 'Authorized')?.reason).toBe('SessionKeyMissing');
    expect(condition(reported, 'Ready')?.message).toContain(
      `Restore the key from your backup into ${sessionSecret}`,
    );
    // The operator read the Secret when the runtime reported it, and refused a new key: it says so.
    const refused = await scene.waitForEvent(
      name,
      'SessionKeyMissing',
      (e) => e.source?.component === 'tdlib-operator',
    );
    expect(refused.message).toContain(`or delete ${sessionSecret} to start over`);
    expect((await scene.sessionSecret(name)).data?.key).toBeUndefined();
    expect(scene.worldEvents('login', botUserId(10))).toEqual([]);

    // The backup dropped: nothing a new key would orphan. The operator adds one, and the runtime, retrying
    // on its own, logs in with it.
    await scene.rest.mergePatch(Resources.Secret, scene.namespace, sessionSecret, {
      data: { session: null },
    });
    await scene.waitForAccount(
      name,
      'Authorized=True, hosted here',
      (a) => condition(a, 'Authorized')?.status === 'True' && a.status?.hostedBy === POD,
      90_000,
    );
    expect(Buffer.from((await scene.sessionSecret(name)).data?.key ?? '', 'base64')).toHaveLength(32);
    await scene.waitForReady(name);

    await scene.stopAgent(agent);
    await scene.deleteAccount(name);
  });

  it('an account made by an earlier version, with its separate key Secret, logs in with that key and backs up beside it', async () => {
    const name = 'elder';
    const legacyKey = randomBytes(32).toString('base64');
    const secret = (secretName: string, data: Record<string, string>): ApiObject =>
      ({
        apiVersion: 'v1',
        kind: 'Secret',
        type: 'Opaque',
        metadata: {
          name: secretName,
          namespace: scene.namespace,
          labels: { [LABEL_MANAGED_BY]: MANAGED_BY, [LABEL_ACCOUNT]: name },
        },
        data,
      }) as ApiObject;
    // As the earlier version left them; the operator starts with them in its cache, as after an upgrade.
    await scene.stopOperator();
    await scene.rest.create(Resources.Secret, secret(encryptionKeySecretName(name), { key: legacyKey }));
    await scene.rest.create(Resources.Secret, secret(sessionSecretName(name), {}));
    scene.startOperator();
    await scene.createBot(name, 9);
    const agent = await scene.startAgent();
    await scene.waitForReady(name);
    const backedUp = await waitFor(
      'the session backup',
      async () => {
        const s = await scene.sessionSecret(name);
        return s.data?.session ? s : undefined;
      },
      { timeoutMs: 30_000 },
    );
    // The key stays where it was: no second key is made beside it.
    expect(backedUp.data?.key).toBeUndefined();
    const kept = await scene.rest.get<ApiObject & { data?: Record<string, string> }>(
      Resources.Secret,
      scene.namespace,
      encryptionKeySecretName(name),
    );
    expect(kept.data?.key).toBe(legacyKey);

    await scene.stopAgent(agent);
    await scene.deleteAccount(name);
  });

  it('F6: a corrupt session backup gives a BackupUnreadable Warning and a fresh start, not a wedged account', async () => {
    const name = 'corrupt';
    const secret = sessionSecretName(name);
    const garbage = Buffer.from('this is not a session backup').toString('base64');
    await scene.createBot(name, 3);
    await scene.waitForPlacement(name);
    await scene.rest.mergePatch(Resources.Secret, scene.namespace, secret, {
      metadata: { annotations: { [SESSION_EPOCH_ANNOTATION]: '0' } },
      data: { session: garbage },
    });

    const agent = await scene.startAgent();
    const warning = await scene.waitForEvent(name, 'BackupUnreadable');
    expect(warning.type).toBe('Warning');
    expect(warning.message).toContain(secret);
    await scene.waitForReady(name);
    expect(scene.worldEvents('login', botUserId(3))).toHaveLength(1);
    // The fresh session's own backup replaces the garbage.
    await waitFor(
      'a readable backup in place of the garbage',
      async () => {
        const current = await scene.sessionSecret(name);
        return current.data?.session && current.data.session !== garbage ? true : undefined;
      },
      { timeoutMs: 20_000, onTimeout: () => scene.diagnostics() },
    );

    await scene.stopAgent(agent);
    await scene.deleteAccount(name);
  });

  it('a session Telegram ended is not restored again: its backup is dropped and the bot logs in anew, once', async () => {
    const name = 'ended';
    const bot = 11;
    await scene.createBot(name, bot);
    await scene.waitForPlacement(name);
    const agent = await scene.startAgent();
    await scene.waitForReady(name);
    await scene.waitForBackup(name);
    const oldKey = authKeyOf(bot);

    // Ended elsewhere (terminated from another device): TDLib logs out and drops its database.
    expect(scene.world.terminateSessions(botUserId(bot))).toBe(1);
    const live = (): string[] =>
      scene
        .sessionsOf(botUserId(bot))
        .filter((s) => s.revoked === undefined)
        .map((s) => s.auth_key);
    await waitFor(
      'one new live session for the bot',
      () => (live().length === 1 && live()[0] !== oldKey ? true : undefined),
      { timeoutMs: 30_000, onTimeout: () => scene.diagnostics() },
    );
    await waitFor(
      'a backup of the new session',
      async () => {
        const secret = await scene.sessionSecret(name);
        return secret.data?.session ? true : undefined;
      },
      { timeoutMs: 20_000, onTimeout: () => scene.diagnostics() },
    );
    // And it stays that way: the dead key is never restored and lost again (it looped several times a second).
    const from = Date.now();
    await waitFor('five quiet seconds', () => (Date.now() - from > 5000 ? true : undefined), {
      timeoutMs: 10_000,
    });
    expect(scene.worldEvents('login', botUserId(bot))).toHaveLength(2);
    expect(scene.sessionsOf(botUserId(bot)).filter((s) => s.revoked !== undefined)).toHaveLength(1);
    expect(live()).toHaveLength(1);
    await scene.waitForReady(name);

    await scene.stopAgent(agent);
    await scene.deleteAccount(name);
  });

  it('F12: an account being deleted with deletionPolicy LogOut when the agent starts is logged out properly', async () => {
    const name = 'cold-logout';
    const bot = botUserId(4);
    await scene.createBot(name, 4, { deletionPolicy: 'LogOut' });
    await scene.waitForPlacement(name);
    await scene.waitForAccount(
      name,
      'finalizer',
      (a) => a.metadata?.finalizers?.includes(FINALIZER) ?? false,
    );
    const first = await scene.startAgent();
    await scene.waitForReady(name);
    await scene.waitForBackup(name);
    const authKey = authKeyOf(4);
    await scene.stopAgent(first);

    // Deleted while no runtime runs; the finalizer keeps it (the operator is stopped, so it cannot decide).
    await scene.stopOperator();
    await scene.deleteAccount(name);
    expect((await scene.account(name)).metadata?.deletionTimestamp).toBeTruthy();

    // The pod comes back on a new volume: the session comes from the backup, and is logged out.
    const lease = new LeaseWrites(accountLeaseName(name));
    const second = await scene.startAgent({ beforeWrite: lease.beforeWrite });
    await waitFor('the world to record the log-out', () => scene.worldEvents('logout', bot)[0], {
      timeoutMs: 30_000,
      onTimeout: () => scene.diagnostics(),
    });
    const loggedOut = await scene.waitForAccount(
      name,
      'LoggedOut',
      (a) => a.status?.authorizationState === 'LoggedOut',
    );
    expect(condition(loggedOut, 'Authorized')?.reason).toBe('LoggedOut');
    expect(scene.sessionsOf(bot).map((s) => [s.auth_key, s.revoked?.reason])).toEqual([[authKey, 'LOG_OUT']]);
    expect(await scene.events(name, 'LogOutFailed')).toEqual([]);
    expect(second.logs()).not.toContain('Initialization parameters are needed');
    await waitFor(
      'the account Lease released',
      async () => (holderOf(await scene.accountLease(name)) === '' ? true : undefined),
      { timeoutMs: 10_000 },
    );

    // Done is done: while the deletion waits for the operator, the agent does not take the account up again
    // (no new Lease write, no second restore of the logged-out session) for three heartbeat renewals.
    const writes = lease.holders.length;
    const renewals = second.agent.fence.renewals;
    await waitFor(
      'three more heartbeat renewals',
      () => second.agent.fence.renewals >= renewals + 3 || undefined,
      {
        timeoutMs: 20_000,
      },
    );
    expect(lease.holders).toHaveLength(writes);
    expect(lease.holders[writes - 1]).toBe('');
    expect(second.agent.hosted.size).toBe(0);
    expect(second.logs().match(/session restored from backup/g)).toHaveLength(1);
    expect(scene.worldEvents('logout', bot)).toHaveLength(1);

    // With the log-out confirmed, the operator lets the account go.
    scene.startOperator();
    await scene.deleteAccount(name);
    expect((await scene.stopAgent(second)).unfinished).toBe(0);
  });

  it('F12: a log-out that cannot finish closes the client, warns LogOutFailed and retries; other accounts are served meanwhile', async () => {
    const stuck = 'stuck-logout';
    const bystander = 'bystander';
    await scene.createBot(stuck, 5, { deletionPolicy: 'LogOut' });
    await scene.createBot(bystander, 6);
    await scene.waitForPlacement(stuck);
    await scene.waitForPlacement(bystander);
    const agent: InProcessAgent = await scene.startAgent();
    await scene.waitForReady(stuck);
    await scene.waitForReady(bystander);
    await scene.waitForBackup(stuck);
    const authKey = authKeyOf(5);

    // Telegram does not answer auth.logOut (for as long as the test wants).
    scene.world.setFaults({ latency_ms: { default: 0, methods: { logOut: HANGING_MS } } });
    await waitFor(
      'the simulator to see the hanging log-out',
      () => agent.backend.worldView().config.faults.latency_ms.methods.logOut === HANGING_MS || undefined,
      { timeoutMs: 5000 },
    );
    // The operator sits this out: it reads the runtime's authorizationState "Closed" (the retry's close) as
    // "logged out" and would drop its finalizer without a log-out (operator/account/controller.ts,
    // LOGGED_OUT_STATES; reported, not the runtime's to fix). What is checked here is the runtime.
    await scene.stopOperator();
    await scene.deleteAccount(stuck);
    await scene.waitForAccount(stuck, 'LoggingOut', (a) => a.status?.authorizationState === 'LoggingOut');
    const loggingOutClient = scene.liveHolders(authKey);
    expect(loggingOutClient).toHaveLength(1);

    // Meanwhile the agent serves its other account: it stops on suspend and comes back.
    await scene.patchSpec(bystander, { suspend: true });
    await scene.waitForAccount(
      bystander,
      'Suspended',
      (a) => condition(a, 'Authorized')?.reason === 'Suspended',
    );
    await scene.patchSpec(bystander, { suspend: false });
    await scene.waitForAccount(
      bystander,
      'Authorized again',
      (a) => condition(a, 'Authorized')?.status === 'True',
    );
    expect(await scene.events(stuck, 'LogOutFailed')).toEqual([]);

    // The log-out's deadline: a Warning, the client closed (its live mark goes), and a retry later.
    const failed = await scene.waitForEvent(stuck, 'LogOutFailed', () => true, 60_000);
    expect(failed.type).toBe('Warning');
    expect(failed.message).toMatch(/has not finished logging out within \d+ s/);
    scene.world.setFaults({ latency_ms: { default: 0, methods: {} } });
    await waitFor(
      'the client that was logging out closed',
      () => (scene.liveHolders(authKey).includes(loggingOutClient[0] ?? '') ? undefined : true),
      { timeoutMs: 10_000 },
    );
    expect(scene.worldEvents('logout', botUserId(5))).toEqual([]);
    await waitFor(
      'the retried log-out to reach Telegram',
      () => scene.worldEvents('logout', botUserId(5))[0],
      {
        timeoutMs: 45_000,
        onTimeout: () => scene.diagnostics(),
      },
    );
    expect(scene.sessionsOf(botUserId(5)).map((s) => [s.auth_key, s.revoked?.reason])).toEqual([
      [authKey, 'LOG_OUT'],
    ]);
    await scene.waitForAccount(stuck, 'LoggedOut', (a) => a.status?.authorizationState === 'LoggedOut');
    expect(condition(await scene.account(bystander), 'Authorized')?.status).toBe('True');

    // The operator lets the logged-out account go.
    scene.startOperator();
    await waitFor(
      'the account deleted once logged out',
      async () => ((await scene.accountOrUndefined(stuck)) ? undefined : true),
      { timeoutMs: 30_000, onTimeout: () => scene.diagnostics() },
    );
    await scene.waitForReady(bystander);

    await scene.stopAgent(agent);
    await scene.deleteAccount(bystander);
  });

  it('F19: an idle Ready account is reconciled on events, not on every heartbeat renewal', async () => {
    // Progress comes from TDLib's updates and request completions, never from polling: a poll would hide a
    // lost enqueue (a login would still creep on, one step per renewal) and costs a reconcile of every
    // account of the pod on every renewal.
    const name = 'idle';
    await scene.createBot(name, 8);
    await scene.waitForPlacement(name);
    const agent = await scene.startAgent();
    await scene.waitForReady(name);
    await scene.waitForBackup(name);
    await scene.waitForAccount(name, 'its backup reported', (a) =>
      Boolean(a.status?.session?.lastBackupTime),
    );
    const reconciles = await agent.reconciles();
    const renewals = agent.agent.fence.renewals;
    await waitFor(
      'five more heartbeat renewals',
      () => agent.agent.fence.renewals >= renewals + 5 || undefined,
      {
        timeoutMs: 20_000,
      },
    );
    expect((await agent.reconciles()) - reconciles).toBeLessThan(5);
    await scene.stopAgent(agent);
    await scene.deleteAccount(name);
  });

  it('F19: a login completes while every status write of the runtime is refused', async () => {
    const name = 'no-echo';
    const bot = botUserId(7);
    await scene.createBot(name, 7);
    await scene.waitForPlacement(name);
    // The pool's Role without `patch` on account status: every status write of the runtime gets 403, so
    // nothing it writes can come back through its watch.
    const restoreRole = await scene.editRuntimeRole((rules: PolicyRule[]) =>
      rules.map((rule) =>
        rule.resources?.includes('telegramaccounts/status') ? { ...rule, verbs: ['get'] } : rule,
      ),
    );
    await waitFor(
      'the runtime ServiceAccount to lose patch on account status',
      async () =>
        (await scene.runtimeMay('patch', 'telegramaccounts', name, GROUP, 'status')) ? undefined : true,
      { timeoutMs: 10_000 },
    );

    const agent = await scene.startAgent();
    // Telegram's side: the bot logged in, and its session is live (authorized and connected) on this agent.
    await waitFor(
      'the bot logged in and its session live',
      () => {
        const sessions = scene.sessionsOf(bot);
        return scene.worldEvents('login', bot).length === 1 &&
          sessions.length === 1 &&
          scene.liveHolders(sessions[0]?.auth_key ?? '').length === 1
          ? true
          : undefined;
      },
      { timeoutMs: 30_000, onTimeout: () => scene.diagnostics() },
    );
    // The runtime went on past Ready by itself: the backup it takes on Ready landed.
    await scene.waitForBackup(name);
    const account = await scene.account(name);
    expect(account.status?.hostedBy).toBeUndefined();
    expect(condition(account, 'Authorized')).toBeUndefined();
    // Status writes wait out their coalescing window: the first may go out after the backup landed.
    await waitFor('a status write refused', () => (agent.agent.status.failures > 0 ? true : undefined), {
      timeoutMs: 10_000,
    });
    expect(agent.agent.status.writes).toBe(0);

    await restoreRole();
    await scene.waitForReady(name);
    await scene.stopAgent(agent);
    await scene.deleteAccount(name);
  });
});
