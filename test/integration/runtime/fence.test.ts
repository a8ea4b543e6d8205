/**
 * The session fence of an in-process runtime agent against a real apiserver and the operator:
 * - F3: an account stopped while its first Lease acquisition is in flight ends with its Lease released and
 *   never written again by this pod;
 * - F5: a heartbeat lost to someone else closes every client, and the agent takes the fence again by itself
 *   and serves the same session (same auth key) again, without a new login;
 * - a crashed agent's account goes to another pod, which takes the Lease over and resumes the session.
 */
import { accountLeaseName, runtimePodName } from '../../../crds/index.js';
import { microTime } from '../../../operator/kube/lease.js';
import { Resources } from '../../../operator/kube/resource.js';
import { waitFor } from '../../cluster/wait.js';
import {
  AgentScene,
  botUserId,
  holderOf,
  LeaseWrites,
  revision,
  type InProcessAgent,
  type LeaseApiObject,
} from '../../support/agent.js';
import { adminKubeConfig } from '../../support/cluster.js';

const POD = runtimePodName('default', 0);

describe('the session fence of the runtime agent (in process, real apiserver)', () => {
  let scene: AgentScene;

  beforeAll(async () => {
    scene = await AgentScene.start(adminKubeConfig(), 'agent-fence');
  });

  afterAll(async () => {
    await scene?.close();
  });

  afterEach(() => scene.afterTest());

  /** Holds the first acquisition of `name`'s Lease, runs `stop` meanwhile, then lets the acquisition finish. */
  async function stopDuringFirstAcquisition(
    name: string,
    stop: () => Promise<unknown>,
    stopped: (agent: InProcessAgent) => boolean,
  ): Promise<void> {
    const lease = new LeaseWrites(accountLeaseName(name), true);
    const agent = await scene.startAgent({ beforeWrite: lease.beforeWrite });
    await waitFor(
      'the first acquisition of the account Lease to be on its way',
      () => lease.reached || undefined,
      {
        timeoutMs: 20_000,
        onTimeout: () => scene.diagnostics(),
      },
    );
    await stop();
    await waitFor('the agent to see the stop', () => stopped(agent) || undefined, { timeoutMs: 10_000 });
    lease.letGo();

    const id = `${scene.namespace}/${name}`;
    const released = await waitFor(
      'the account Lease released and the account forgotten by the agent',
      async () => {
        const current = await scene.accountLease(name);
        return holderOf(current) === '' && !agent.agent.hosted.has(id) ? current : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 200, onTimeout: () => scene.diagnostics() },
    );
    // The acquisition that was in flight did land (it was ours), and the release came after it.
    expect(lease.holders[0]).toBe(agent.identity);
    expect(lease.holders[lease.holders.length - 1]).toBe('');

    // "Never again": three more heartbeat renewals (a renewal period each) go by without a write to it.
    const renewals = agent.agent.fence.renewals;
    const writesBefore = lease.holders.length;
    await waitFor(
      'three more heartbeat renewals',
      () => agent.agent.fence.renewals >= renewals + 3 || undefined,
      {
        timeoutMs: 20_000,
      },
    );
    const after = await scene.accountLease(name);
    expect(holderOf(after)).toBe('');
    expect(revision(after)).toBe(revision(released));
    expect(lease.holders).toHaveLength(writesBefore);
    await scene.stopAgent(agent);
  }

  it('F3: an account suspended while its first Lease acquisition is in flight releases the Lease and never writes it again', async () => {
    const name = 'early-suspend';
    await scene.createBot(name, 2);
    await scene.waitForPlacement(name);
    await stopDuringFirstAcquisition(
      name,
      () => scene.patchSpec(name, { suspend: true }),
      (agent) => agent.agent.accounts.get(scene.namespace, name)?.spec.suspend === true,
    );
    await scene.deleteAccount(name);
  });

  it('F5: a heartbeat lost to another holder closes every client; the agent takes it again and serves the same session', async () => {
    const name = 'lapse';
    const bot = botUserId(3);
    await scene.createBot(name, 3);
    await scene.waitForPlacement(name);
    const agent = await scene.startAgent();
    await scene.waitForReady(name);
    await scene.waitForBackup(name);
    const sessions = scene.sessionsOf(bot);
    expect(sessions).toHaveLength(1);
    const authKey = sessions[0]?.auth_key ?? '';
    await waitFor(
      'the session live in the world',
      () => scene.liveHolders(authKey).length === 1 || undefined,
      {
        timeoutMs: 10_000,
      },
    );
    expect(holderOf(await scene.accountLease(name))).toBe(agent.identity);

    // Someone else holds this pod's heartbeat for a while (as a replacement incarnation would), long enough to
    // be seen; its record says 30 s, so the operator keeps the pod alive and the account where it is.
    const intruder = `${POD}/intruder/0000`;
    await writeHeartbeat(scene, intruder);
    await waitFor(
      'every client of the agent closed and the session no longer live',
      () =>
        !agent.agent.fence.valid() &&
        agent.backend.openClients === 0 &&
        scene.liveHolders(authKey).length === 0
          ? true
          : undefined,
      { timeoutMs: 10_000, onTimeout: () => scene.diagnostics() },
    );
    // The lapse neither released nor took the account Lease: it still names the agent.
    expect(holderOf(await scene.accountLease(name))).toBe(agent.identity);

    // The intruder gives the heartbeat back; the agent must take it again by itself and restart the session.
    await writeHeartbeat(scene, null);
    await waitFor('the agent to hold its heartbeat again', () => agent.agent.fence.valid() || undefined, {
      timeoutMs: 10_000,
      onTimeout: () => scene.diagnostics(),
    });
    await waitFor(
      'the same session live again, on a new client of this agent',
      () => (scene.liveHolders(authKey).length === 1 && agent.backend.openClients === 1 ? true : undefined),
      { timeoutMs: 20_000, onTimeout: () => scene.diagnostics() },
    );
    await scene.waitForReady(name, POD);
    expect(holderOf(await scene.accountLease(name))).toBe(agent.identity);
    expect(scene.sessionsOf(bot).map((s) => [s.auth_key, s.revoked])).toEqual([[authKey, undefined]]);
    expect(scene.worldEvents('login', bot)).toHaveLength(1);
    expect(scene.worldEvents('auth_key_duplicated')).toEqual([]);
    expect(scene.worldEvents('authorization_lost', bot)).toEqual([]);

    await scene.stopAgent(agent);
    await scene.deleteAccount(name);
  });

  it('F3: an account moved while its first Lease acquisition is in flight releases the Lease and never writes it again', async () => {
    const name = 'early-move';
    await scene.createBot(name, 4);
    await scene.waitForPlacement(name);
    // The test moves the account itself (the operator would only move it off a dead pod).
    await scene.stopOperator();
    await stopDuringFirstAcquisition(
      name,
      () => scene.placeOn(name, runtimePodName('default', 1)),
      (agent) => agent.agent.accounts.get(scene.namespace, name) === undefined,
    );
    scene.startOperator();
    await scene.deleteAccount(name);
  });

  it('a crashed agent (no shutdown) loses its account to another pod, which resumes the session from the backup', async () => {
    const name = 'crashed';
    const bot = botUserId(5);
    await scene.createBot(name, 5);
    await scene.waitForPlacement(name);
    const first = await scene.startAgent();
    await scene.waitForReady(name);
    await scene.waitForBackup(name);
    const sessions = scene.sessionsOf(bot);
    expect(sessions).toHaveLength(1);
    const epochBefore = (await scene.accountLease(name)).spec?.leaseTransitions ?? 0;

    // Nothing closes, backs up or releases: the heartbeat stops, the operator declares the pod dead and moves
    // the account; the new pod takes the account Lease once the old holder's heartbeat stayed unchanged for D.
    await scene.crashAgent(first);
    const pod1 = runtimePodName('default', 1);
    await scene.waitForPlacement(name, pod1);
    const second = await scene.startAgent({ pod: pod1 });
    await scene.waitForReady(name, pod1);
    const lease = await scene.accountLease(name);
    expect(holderOf(lease)).toBe(second.identity);
    expect(lease.spec?.leaseTransitions).toBeGreaterThan(epochBefore);
    expect(scene.sessionsOf(bot).map((s) => [s.auth_key, s.revoked])).toEqual([
      [sessions[0]?.auth_key, undefined],
    ]);
    expect(scene.worldEvents('login', bot)).toHaveLength(1);
    expect(scene.worldEvents('auth_key_duplicated')).toEqual([]);

    await scene.stopAgent(second);
    await scene.deleteAccount(name);
  });
});

/** Writes this pod's heartbeat Lease as `holder` (null: given back), whatever the agent writes meanwhile. */
async function writeHeartbeat(scene: AgentScene, holder: string | null): Promise<void> {
  await waitFor(
    `heartbeat ${POD} written with holder ${holder ?? '(none)'}`,
    async () => {
      const lease = await scene.lease(POD);
      const now = microTime(new Date());
      const body: LeaseApiObject = {
        ...lease,
        spec: {
          ...lease.spec,
          holderIdentity: holder,
          leaseDurationSeconds: 30,
          acquireTime: holder ? now : null,
          renewTime: now,
          leaseTransitions: (lease.spec?.leaseTransitions ?? 0) + (holder ? 1 : 0),
        },
      };
      try {
        await scene.rest.replace(Resources.Lease, body);
        return true;
      } catch {
        return undefined; // 409: the agent renewed meanwhile; read and write again
      }
    },
    { timeoutMs: 10_000 },
  );
}
