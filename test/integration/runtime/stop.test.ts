/**
 * How the runtime agent stops an account (in process, real apiserver, the operator running):
 * - F4: a graceful stop closes TDLib, waits until it is closed, backs the session up and only then releases the
 *   account Lease; a first backup that fails is retried by itself;
 * - F11: a close that does not finish keeps the Lease (a Warning says so), and the Lease goes only once TDLib
 *   has closed.
 */
import { accountLeaseName, runtimePodName, sessionSecretName } from '../../../crds/index.js';
import { BACKUP_TIME_ANNOTATION, SESSION_EPOCH_ANNOTATION } from '../../../runtime/hosting/session-store.js';
import { waitFor } from '../../cluster/wait.js';
import {
  AgentScene,
  LeaseWrites,
  botUserId,
  condition,
  holderOf,
  revision,
  type InProcessAgent,
  type PolicyRule,
} from '../../support/agent.js';
import { adminKubeConfig } from '../../support/cluster.js';

const POD = runtimePodName('default', 0);
/** Long enough that only the test ends it: the close hangs. */
const HANGING_CLOSE_MS = 600_000;

describe('stopping an account on the runtime agent (in process, real apiserver)', () => {
  let scene: AgentScene;

  beforeAll(async () => {
    scene = await AgentScene.start(adminKubeConfig(), 'agent-stop');
  });

  afterAll(async () => {
    await scene?.close();
  });

  afterEach(() => scene.afterTest());

  /** Makes every close of this world hang until `finish` lowers the knob again; resolves once the agent sees it. */
  async function hangCloses(agent: InProcessAgent): Promise<() => void> {
    scene.world.setFaults({ latency_ms: { default: 0, methods: { close: HANGING_CLOSE_MS } } });
    await waitFor(
      'the simulator to see the hanging close',
      () =>
        agent.backend.worldView().config.faults.latency_ms.methods.close === HANGING_CLOSE_MS || undefined,
      { timeoutMs: 5000 },
    );
    return () => scene.world.setFaults({ latency_ms: { default: 0, methods: {} } });
  }

  async function readyWithBackup(name: string, bot: number, agentOptions = {}) {
    await scene.createBot(name, bot);
    await scene.waitForPlacement(name);
    const agent = await scene.startAgent(agentOptions);
    await scene.waitForReady(name);
    const backup = await scene.waitForBackup(name);
    const sessions = scene.sessionsOf(botUserId(bot));
    expect(sessions).toHaveLength(1);
    return { agent, backup, authKey: sessions[0]?.auth_key ?? '' };
  }

  it('F4: a graceful stop backs the session up after TDLib closed and before the Lease is released', async () => {
    const name = 'drain';
    const { agent, backup: first, authKey } = await readyWithBackup(name, 5);
    const firstEpoch = first.metadata?.annotations?.[SESSION_EPOCH_ANNOTATION];
    const firstTime = first.metadata?.annotations?.[BACKUP_TIME_ANNOTATION] ?? '';
    expect(firstEpoch).toMatch(/^\d+$/);

    // A slow close, so that "after TDLib closed" can be told from "when the stop began".
    const finishClose = await hangCloses(agent);
    await scene.patchSpec(name, { suspend: true });
    await scene.waitForAccount(name, 'TDLib closing', (a) => a.status?.authorizationState === 'Closing');
    // TDLib is still closing: the session is neither saved nor let go yet.
    expect(revision(await scene.sessionSecret(name))).toBe(revision(first));
    expect(holderOf(await scene.accountLease(name))).toBe(agent.identity);
    expect(scene.liveHolders(authKey)).toHaveLength(1);

    finishClose();
    const released = await waitFor(
      'the account Lease released',
      async () => {
        const lease = await scene.accountLease(name);
        return holderOf(lease) === '' ? lease : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 200, onTimeout: () => scene.diagnostics() },
    );
    const saved = await scene.sessionSecret(name);
    // A newer backup of the same tenure (epoch), written at the stop ...
    expect(revision(saved)).toBeGreaterThan(revision(first));
    expect(saved.metadata?.annotations?.[SESSION_EPOCH_ANNOTATION]).toBe(firstEpoch);
    expect((saved.metadata?.annotations?.[BACKUP_TIME_ANNOTATION] ?? '') >= firstTime).toBe(true);
    expect(saved.data?.session).toBeTruthy();
    // ... before the Lease was released (etcd revisions order every write of the cluster).
    expect(revision(released)).toBeGreaterThan(revision(saved));
    expect(scene.liveHolders(authKey)).toHaveLength(0);
    const suspended = await scene.waitForAccount(
      name,
      'reported Suspended',
      (a) => condition(a, 'Authorized')?.reason === 'Suspended',
    );
    expect(suspended.status?.hostedBy).toBe(POD);

    await scene.stopAgent(agent);
    await scene.deleteAccount(name);
  });

  it('F4: a first backup that fails is retried until it lands, without any other trigger', async () => {
    const name = 'first-backup';
    const secret = sessionSecretName(name);
    await scene.createBot(name, 6);
    await scene.waitForPlacement(name);
    // The pool's Role without `update` on session Secrets: the backup write is refused (403), as it is while a
    // new Role has not propagated yet. Reads stay allowed.
    const restoreRole = await scene.editRuntimeRole((rules: PolicyRule[]) =>
      rules.map((rule) =>
        rule.resources?.includes('secrets') && rule.verbs.includes('update')
          ? { ...rule, verbs: ['get'] }
          : rule,
      ),
    );
    await waitFor(
      'the runtime ServiceAccount to lose update on the session Secret',
      async () => ((await scene.runtimeMay('update', 'secrets', secret)) ? undefined : true),
      { timeoutMs: 10_000 },
    );

    const agent = await scene.startAgent();
    await scene.waitForReady(name);
    const failed = await scene.waitForEvent(name, 'BackupFailed');
    expect(failed.type).toBe('Warning');
    expect(failed.message).toContain(secret);
    expect((await scene.sessionSecret(name)).data?.session).toBeUndefined();

    // Nothing else happens to the account; giving the right back is enough for the backup to land.
    await restoreRole();
    const backup = await scene.waitForBackup(name);
    expect(backup.metadata?.annotations?.[SESSION_EPOCH_ANNOTATION]).toMatch(/^\d+$/);
    await scene.waitForAccount(name, 'status.session.lastBackupTime', (a) =>
      Boolean(a.status?.session?.lastBackupTime),
    );

    await scene.stopAgent(agent);
    await scene.deleteAccount(name);
  });

  it('F11: a close that does not finish keeps the Lease, says so, and releases it once TDLib closed', async () => {
    const name = 'slow-close';
    const lease = new LeaseWrites(accountLeaseName(name));
    const {
      agent,
      backup: first,
      authKey,
    } = await readyWithBackup(name, 7, { beforeWrite: lease.beforeWrite });
    const writesBeforeStop = lease.holders.length;
    const finishClose = await hangCloses(agent);

    // The account moves to another pod (the test places it, with the operator stopped so it stays there).
    await scene.stopOperator();
    await scene.placeOn(name, runtimePodName('default', 1));
    const slow = await scene.waitForEvent(
      name,
      'Closing',
      (e) => /has not closed the client within \d+ s/.test(e.message ?? ''),
      60_000,
    );
    expect(slow.type).toBe('Warning');
    expect(slow.message).toContain(accountLeaseName(name));
    // While TDLib has not closed: the session is still live here, and the Lease still names this pod.
    expect(scene.liveHolders(authKey)).toHaveLength(1);
    expect(holderOf(await scene.accountLease(name))).toBe(agent.identity);
    expect(lease.holders).toHaveLength(writesBeforeStop);

    finishClose();
    await waitFor(
      'the account Lease released once TDLib closed',
      async () => (holderOf(await scene.accountLease(name)) === '' ? true : undefined),
      { timeoutMs: 20_000, intervalMs: 200, onTimeout: () => scene.diagnostics() },
    );
    expect(scene.liveHolders(authKey)).toHaveLength(0);
    expect(lease.holders.slice(writesBeforeStop)).toEqual(['']);
    expect(revision(await scene.sessionSecret(name))).toBeGreaterThan(revision(first));

    await scene.stopAgent(agent);
    scene.startOperator();
    await scene.deleteAccount(name);
  });

  it('a shutdown stops a dozen accounts, releases every Lease and reports no lapse', async () => {
    const names = Array.from({ length: 12 }, (_, i) => `many-${i}`);
    await Promise.all(names.map((name, i) => scene.createBot(name, 13 + i)));
    for (const name of names) await scene.waitForPlacement(name);
    const agent = await scene.startAgent();
    for (const name of names) await scene.waitForReady(name);
    expect(await scene.stopAgent(agent)).toEqual({ unfinished: 0 });
    const holders = await Promise.all(names.map(async (name) => holderOf(await scene.accountLease(name))));
    expect(holders).toEqual(names.map(() => ''));
    // Giving the heartbeat up is the end of a clean drain, not the fence failing: no error says it lapsed.
    expect(agent.logs()).toContain('pod heartbeat Lease released');
    expect(agent.logs()).not.toMatch(/Lease lapsed/);
    await Promise.all(names.map((name) => scene.deleteAccount(name)));
  });
});
