/**
 * A campaign under chaos: while 5,000 recipients are sent to by two user senders and a bot, runtime processes
 * are SIGKILLed three times at random moments and restarted as a kubelet would (same pod, same volume), and
 * once a runtime pod is lost for good so its senders move to another pod (an empty volume). At the end the
 * simulator's delivery log shows every recipient at most once; exactly once for those the status calls sent;
 * and the only ones in doubt are the bot's, each of which the log shows got the message once or not at all.
 */
import * as k8s from '@kubernetes/client-node';
import { waitFor } from '../cluster/wait.js';
import { RECIPIENT_BASE_ID, recipientName } from '../support/campaign-world.js';
import { plugin, run, startCampaignScene, type CampaignScene } from '../support/campaign-scene.js';
import { adminKubeConfig, testCluster } from '../support/cluster.js';

const RECIPIENTS = 5000;
const TEXT = 'Chaos sale: the greenhouse stays open late tonight.';
const SENDERS = ['user-a', 'user-b', 'bot'] as const;
/**
 * RUNTIME_POD_START_TIMEOUT_SECONDS the operator runs with. A pod lost for good may be one the kubelet only
 * just started (its accounts moved there after an earlier kill): if its runtime dies before it first takes its
 * heartbeat Lease, the pod counts as starting and its accounts move only after this timeout (120 s by
 * default), not after the heartbeat's 3 s. Under CI load a runtime has taken more than 3 s to get that far.
 */
const POD_START_TIMEOUT_SECONDS = 20;
// Reproducible when it fails: the seed is printed, and CHAOS_SEED replays it.
const SEED = Number(process.env.CHAOS_SEED ?? Date.now() % 1_000_000);

/** mulberry32: a small seeded generator, so a failing schedule of kills can be replayed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('a campaign while runtimes are killed and a sender moves', () => {
  let scene: CampaignScene;
  const core = adminKubeConfig().makeApiClient(k8s.CoreV1Api);
  const log: string[] = [];

  beforeAll(async () => {
    scene = await startCampaignScene({
      prefix: 'campaign-chaos',
      world: { recipients: RECIPIENTS, userSenders: 2, bot: true },
      senders: [
        { name: 'user-a', kind: 'user', index: 0 },
        { name: 'user-b', kind: 'user', index: 1 },
        { name: 'bot', kind: 'bot', index: 0 },
      ],
      pods: 2,
      accountsPerPod: 2,
      operatorEnv: { RUNTIME_POD_START_TIMEOUT_SECONDS: String(POD_START_TIMEOUT_SECONDS) },
    });
  });

  afterAll(() => scene?.stop());

  const placedPod = async (account: string): Promise<string | undefined> =>
    (await scene.account(account)).status?.placement?.pod;

  const runningPods = async (): Promise<string[]> => {
    const pods = new Set<string>();
    for (const name of SENDERS) {
      const pod = await placedPod(name);
      if (pod && scene.runtime(pod)) pods.add(pod);
    }
    return [...pods].sort();
  };

  /** Pods lost for good: no kubelet starts them again. */
  const lost = new Set<string>();

  async function killAndRestart(pod: string, restartAfterMs: number): Promise<void> {
    log.push(`${new Date().toISOString()} SIGKILL ${pod}, restart after ${restartAfterMs} ms`);
    await scene.runtime(pod)?.stop('SIGKILL');
    const at = Date.now();
    await waitFor('the kubelet restart delay', () => (Date.now() - at >= restartAfterMs ? true : undefined), {
      timeoutMs: restartAfterMs + 5000,
      intervalMs: 20,
    });
    await scene.startRuntime(pod);
  }

  /** The pod is lost for good: its senders move to another pod, whose runtime starts on an empty volume. */
  async function loseForGood(pod: string): Promise<void> {
    const moving: string[] = [];
    for (const name of SENDERS) if ((await placedPod(name)) === pod) moving.push(name);
    log.push(`${new Date().toISOString()} SIGKILL ${pod} for good; moving ${moving.join(', ')}`);
    lost.add(pod);
    await scene.runtime(pod)?.stop('SIGKILL');
    for (const name of moving) {
      const target = await waitFor(
        `${name} to move off ${pod}`,
        async () => {
          const now = await placedPod(name);
          return now && now !== pod ? now : undefined;
        },
        // Moved after the heartbeat's lapse, or after the start timeout if the runtime never took it.
        { timeoutMs: POD_START_TIMEOUT_SECONDS * 1000 + 90_000, intervalMs: 200, onTimeout: scene.logs },
      );
      log.push(`${new Date().toISOString()} ${name} placed on ${target}`);
      if (!scene.runtime(target)) await scene.startRuntime(target);
    }
    // The lost pod's process stays down: nothing may start it again with the old volume.
    expect(scene.runtime(pod)).toBeUndefined();
  }

  /** A kill can outlast the pod's heartbeat, and its accounts then move to a pod that needs a runtime too. */
  async function kubelet(): Promise<void> {
    for (const pod of await scene.kubelet(lost))
      log.push(`${new Date().toISOString()} kubelet started ${pod}`);
  }

  it('delivers to each recipient at most once, exactly once where the status says sent, and in doubt only for the bot', async () => {
    const rand = random(SEED);
    const lines = Array.from({ length: RECIPIENTS }, (_, i) => `@${recipientName(i)}`);
    await scene.recipientList('chaos-list', lines);
    await scene.createCampaign('chaos', {
      senders: { selector: { matchLabels: { role: 'sender' } } },
      message: { text: TEXT },
      recipients: { configMapRefs: [{ name: 'chaos-list' }] },
      pace: { messagesPerMinute: 9000, perSenderMessagesPerMinute: 3000 },
    });

    // Four disturbances at random points between 5% and 80% of the deliveries; one of them is the move.
    const thresholds = Array.from({ length: 4 }, () => Math.floor(RECIPIENTS * (0.05 + 0.75 * rand()))).sort(
      (a, b) => a - b,
    );
    const moveAt = Math.floor(rand() * thresholds.length);
    log.push(`seed ${SEED}: disturbances at ${thresholds.join(', ')} deliveries, the move is #${moveAt + 1}`);
    const why = (): string => `${log.join('\n')}\n${scene.logs()}`;
    try {
      for (const [n, threshold] of thresholds.entries()) {
        await waitFor(
          `${threshold} deliveries`,
          async () => {
            await kubelet();
            return scene.deliveries(TEXT).length >= threshold ? true : undefined;
          },
          { timeoutMs: 180_000, intervalMs: 100, onTimeout: why },
        );
        const pods = await runningPods();
        const pod = pods[Math.floor(rand() * pods.length)];
        if (!pod) throw new Error(`no runtime pod hosts a sender at disturbance ${n + 1}`);
        if (n === moveAt) await loseForGood(pod);
        else await killAndRestart(pod, Math.floor(rand() * 2000));
      }
    } catch (error) {
      throw new Error(`${error instanceof Error ? error.message : String(error)}\n${log.join('\n')}`);
    }

    const done = await waitFor(
      'campaign chaos Completed',
      async () => {
        await kubelet();
        const c = await scene.campaign('chaos');
        return c.status?.phase === 'Completed' ? c : undefined;
      },
      { timeoutMs: 300_000, intervalMs: 250, onTimeout: why },
    );
    const status = done.status ?? {};
    expect(status).toMatchObject({ total: RECIPIENTS, pending: 0, failed: 0 });
    expect((status.sent ?? 0) + (status.inDoubt ?? 0)).toBe(RECIPIENTS);

    const ids = new Map<number, string>();
    for (const name of SENDERS) ids.set((await scene.account(name)).status?.user?.id ?? 0, name);
    const byRecipient = new Map<number, string[]>();
    for (const d of scene.deliveries(TEXT))
      byRecipient.set(d.to, [...(byRecipient.get(d.to) ?? []), ids.get(d.from) ?? `unknown ${d.from}`]);

    // Nobody got it twice, whoever sent it; no sender outside the campaign sent it.
    const twice = [...byRecipient].filter(([, senders]) => senders.length > 1);
    expect({ seed: SEED, twice }).toEqual({ seed: SEED, twice: [] });
    expect([...byRecipient.values()].flat().filter((s) => !SENDERS.includes(s as never))).toEqual([]);

    // The report, recipient by recipient, against the log.
    const { stdout } = await run(
      process.execPath,
      [
        plugin,
        'campaign',
        'report',
        'chaos',
        '-n',
        scene.namespace,
        '--kubeconfig',
        testCluster().kubeconfigPath,
        '-o',
        'json',
      ],
      { maxBuffer: 64 * 1024 * 1024 },
    );
    const rows = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { recipient: string; sender: string; outcome: string; reason?: string });
    expect(rows).toHaveLength(RECIPIENTS);
    const problems: string[] = [];
    let inDoubt = 0;
    for (const row of rows) {
      const id = RECIPIENT_BASE_ID + Number(row.recipient.replace('@rcpt_', ''));
      const got = byRecipient.get(id) ?? [];
      if (row.outcome === 'Sent' && (got.length !== 1 || got[0] !== row.sender))
        problems.push(`${row.recipient}: Sent by ${row.sender}, log shows ${JSON.stringify(got)}`);
      if (row.outcome === 'InDoubt') {
        inDoubt++;
        // Only a bot cannot ask Telegram what happened; a user sender resolves every send it lost.
        if (row.sender !== 'bot') problems.push(`${row.recipient}: in doubt for user sender ${row.sender}`);
        if (got.some((s) => s !== row.sender))
          problems.push(`${row.recipient}: in doubt for ${row.sender}, yet sent by ${JSON.stringify(got)}`);
      }
      if (row.outcome !== 'Sent' && row.outcome !== 'InDoubt')
        problems.push(`${row.recipient}: ${row.outcome} ${row.reason ?? ''}`);
    }
    expect({ seed: SEED, problems: problems.slice(0, 20) }).toEqual({ seed: SEED, problems: [] });
    expect(status.inDoubt ?? 0).toBe(inDoubt);
    // Every recipient the log shows nothing for is one the status admits it cannot vouch for.
    const never = rows.filter((r) => !byRecipient.has(RECIPIENT_BASE_ID + Number(r.recipient.slice(6))));
    expect(never.every((r) => r.outcome === 'InDoubt')).toBe(true);

    // The kills left no trace in the account statuses: every sender is Ready again.
    for (const name of SENDERS)
      expect((await scene.account(name)).status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe(
        'True',
      );
    // And the events tell the story a person would look for.
    const events = await core.listNamespacedEvent({ namespace: scene.namespace });
    expect(events.items.some((e) => e.reason === 'Completed')).toBe(true);
  }, 900_000);
});
