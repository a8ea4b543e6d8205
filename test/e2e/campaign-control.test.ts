/**
 * Campaigns under control, end to end: Telegram parks a sender (PEER_FLOOD) and its recipients finish on the
 * others; suspend stops sends within a second and resume repeats nobody, at the pace the spec allows; too
 * many failures pause a campaign by itself; "retry the failed ones" reaches them and nobody else.
 */
import { GROUP, LABEL_CAMPAIGN, VERSION } from '../../crds/index.js';
import { waitFor } from '../cluster/wait.js';
import { World } from '../../runtime/simulator/world.js';
import { RECIPIENT_BASE_ID, botName, recipientName } from '../support/campaign-world.js';
import { perRecipient, startCampaignScene, type CampaignScene } from '../support/campaign-scene.js';
import { adminKubeConfig } from '../support/cluster.js';
import { metricSum } from '../support/operator.js';
import * as k8s from '@kubernetes/client-node';

const range = (from: number, to: number): string[] =>
  Array.from({ length: to - from }, (_, i) => `@${recipientName(from + i)}`);
const FLOOD = [0, 150] as const;
const PAUSE = [150, 550] as const;
const AUTO = [550, 610] as const;
const AUTO_DEACTIVATED = 30;
const RETRY = [610, 660] as const;
const RETRY_BLOCKED = 10;
const MAX_NEW_STRANGERS = 40;
const WAIT = [660, 760] as const;
const DELETE = [760, 1000] as const;
const LAST = DELETE[1];

describe('campaign control', () => {
  let scene: CampaignScene;
  const core = adminKubeConfig().makeApiClient(k8s.CoreV1Api);
  const custom = adminKubeConfig().makeApiClient(k8s.CustomObjectsApi);

  beforeAll(async () => {
    scene = await startCampaignScene({
      prefix: 'campaign-ctl',
      world: {
        recipients: LAST,
        userSenders: 1,
        bot: true,
        bots: 2,
        recipient: (i) => ({
          ...(i >= AUTO[0] && i < AUTO[0] + AUTO_DEACTIVATED ? { deactivated: true } : {}),
          ...(i >= RETRY[0] && i < RETRY[0] + RETRY_BLOCKED ? { blocked: [botName(0), botName(1)] } : {}),
        }),
        limits: {
          user: { account: { per_second: 1000, burst: 1000 }, chat: { per_second: 10, burst: 10 } },
          bot: { account: { per_second: 1000, burst: 1000 }, chat: { per_second: 10, burst: 10 } },
          peer_flood: { max_new_strangers: MAX_NEW_STRANGERS, window_seconds: 86400 },
          search_public_chat: { per_second: 1000, burst: 1000 },
          tdlib_flood_wait_limit_seconds: 60,
        },
      },
      senders: [
        { name: 'user', kind: 'user', index: 0 },
        { name: 'bot-1', kind: 'bot', index: 0 },
        { name: 'bot-2', kind: 'bot', index: 1 },
      ],
      pods: 2,
      accountsPerPod: 2,
    });
  });

  afterAll(() => scene?.stop());

  /** Every runtime's /metrics, concatenated (a series of one campaign may live on several pods). */
  const runtimeMetrics = async (): Promise<string> =>
    (
      await Promise.all(
        scene.runtimes.map(async (r) => (await fetch(`http://127.0.0.1:${await r.port()}/metrics`)).text()),
      )
    ).join('\n');

  const recipientIds = (from: number, to: number): number[] =>
    Array.from({ length: to - from }, (_, i) => RECIPIENT_BASE_ID + from + i);

  it('parks a sender Telegram flags for PEER_FLOOD and finishes its recipients on the other sender', async () => {
    const text = 'flood test message';
    await scene.recipientList('flood-list', range(...FLOOD));
    await scene.createCampaign('flood', {
      senders: { names: ['user', 'bot-1'] },
      message: { text },
      recipients: { configMapRefs: [{ name: 'flood-list' }] },
      pace: { messagesPerMinute: 12_000, perSenderMessagesPerMinute: 6000 },
    });
    const done = await scene.waitForPhase('flood', 'Completed');
    expect(done.status).toMatchObject({ sent: FLOOD[1] - FLOOD[0], failed: 0, inDoubt: 0 });
    const deliveries = scene.deliveries(text);
    const counts = perRecipient(deliveries);
    expect(counts.size).toBe(FLOOD[1] - FLOOD[0]);
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
    const userId = (await scene.account('user')).status?.user?.id;
    const byUser = deliveries.filter((d) => d.from === userId).length;
    expect(byUser).toBeGreaterThan(0);
    expect(byUser).toBeLessThanOrEqual(MAX_NEW_STRANGERS);
    expect(done.status?.senders?.find((s) => s.name === 'user')).toMatchObject({
      state: 'Parked',
      reason: 'PeerFlood',
    });
    const events = await core.listNamespacedEvent({
      namespace: scene.namespace,
      fieldSelector: 'involvedObject.name=flood',
    });
    expect(events.items.find((e) => e.reason === 'SenderParked')).toMatchObject({
      type: 'Warning',
      message: expect.stringContaining('user'),
    });
    // What Prometheus sees: one sender parked for PEER_FLOOD (still, after its slices moved on), and a sent
    // count that matches the status.
    const metrics = await runtimeMetrics();
    expect(
      metricSum(metrics, 'tdlib_campaign_parked_senders', { campaign: 'flood', reason: 'PeerFlood' }),
    ).toBe(1);
    expect(metricSum(metrics, 'tdlib_campaign_sends_total', { campaign: 'flood', result: 'sent' })).toBe(
      FLOOD[1] - FLOOD[0],
    );
    expect(
      metricSum(metrics, 'tdlib_campaign_sends_total', { campaign: 'flood', result: 'parked' }),
    ).toBeGreaterThan(0);
  });

  it('sends nothing from a sender while Telegram has it waiting out a flood wait', async () => {
    const text = 'flood wait test message';
    const world = World.open(scene.worldDir);
    // Five a second with a burst of ten and nothing absorbed by TDLib: a 10/s campaign keeps hitting
    // "retry after 1" (the bucket itself would take the next message after 0.2 s).
    const refusalsBefore = world.events().filter((e) => e.type === 'flood_wait').length;
    world.setLimits({
      bot: { account: { per_second: 5, burst: 10 }, chat: { per_second: 10, burst: 10 } },
      tdlib_flood_wait_limit_seconds: 0,
    });
    try {
      await scene.recipientList('wait-list', range(...WAIT));
      await scene.createCampaign('wait', {
        senders: { names: ['bot-1'] },
        message: { text },
        recipients: { configMapRefs: [{ name: 'wait-list' }] },
        pace: { messagesPerMinute: 600, perSenderMessagesPerMinute: 600 },
      });
      const done = await scene.waitForPhase('wait', 'Completed');
      expect(done.status).toMatchObject({ sent: WAIT[1] - WAIT[0], failed: 0, inDoubt: 0 });
      const deliveries = scene.deliveries(text);
      expect([...perRecipient(deliveries).values()].every((n) => n === 1)).toBe(true);
      const botId = (await scene.account('bot-1')).status?.user?.id;
      const refusals = world
        .events()
        .filter((e) => e.type === 'flood_wait')
        .slice(refusalsBefore)
        .filter((e) => e.user_id === botId);
      expect(refusals.length).toBeGreaterThan(0);
      // Refusals close together are one flood wait: sends already in flight when the first came back.
      const inFlightGraceMs = 150;
      let waitStart = -Infinity;
      let waitEnd = -Infinity;
      for (const refusal of refusals) {
        if (refusal.at <= waitStart + inFlightGraceMs) continue;
        // A new refusal must come after the previous wait ended: the sender waited.
        expect(refusal.at).toBeGreaterThanOrEqual(waitEnd - 50);
        waitStart = refusal.at;
        waitEnd = refusal.at + (refusal.retry_after ?? 0) * 1000;
        const sentDuringWait = deliveries.filter(
          (d) => d.from === botId && d.at > waitStart + inFlightGraceMs && d.at < waitEnd - 50,
        );
        expect(sentDuringWait).toEqual([]);
      }
      const metrics = await runtimeMetrics();
      expect(
        metricSum(metrics, 'tdlib_campaign_flood_wait_seconds_total', { campaign: 'wait' }),
      ).toBeGreaterThan(0);
      expect(metricSum(metrics, 'tdlib_campaign_sends_total', { campaign: 'wait', result: 'sent' })).toBe(
        WAIT[1] - WAIT[0],
      );
    } finally {
      world.resetOverrides();
    }
  });

  it('stops sending within a second of suspend, shows Paused only then, and resumes without repeating anyone, at the spec pace', async () => {
    const text = 'pause test message';
    const perSender = 600;
    await scene.recipientList('pause-list', range(...PAUSE));
    await scene.createCampaign('pause', {
      senders: { names: ['bot-1', 'bot-2'] },
      message: { text },
      recipients: { configMapRefs: [{ name: 'pause-list' }] },
      pace: { messagesPerMinute: 2 * perSender, perSenderMessagesPerMinute: perSender },
    });
    await waitFor('some sends', () => (scene.deliveries(text).length >= 40 ? true : undefined), {
      timeoutMs: 60_000,
      onTimeout: scene.logs,
    });
    const suspendedAt = Date.now();
    await scene.patchCampaign('pause', { suspend: true });
    const paused = await scene.waitForPhase('pause', 'Paused', 30_000);
    expect(paused.status?.conditions?.find((c) => c.type === 'Paused')).toMatchObject({
      status: 'True',
      reason: 'Suspended',
    });
    const atPause = scene.deliveries(text);
    const last = Math.max(...atPause.map((d) => d.at));
    expect(last).toBeLessThanOrEqual(suspendedAt + 1000);
    // Watch for three seconds: nothing more arrives while it says Paused.
    const watchFrom = Date.now();
    await waitFor('three seconds of Paused', () => (Date.now() - watchFrom > 3000 ? true : undefined), {
      timeoutMs: 10_000,
    });
    expect(scene.deliveries(text)).toHaveLength(atPause.length);
    expect(atPause.length).toBeLessThan(PAUSE[1] - PAUSE[0]);

    await scene.patchCampaign('pause', { suspend: false });
    const done = await scene.waitForPhase('pause', 'Completed');
    expect(done.status).toMatchObject({ sent: PAUSE[1] - PAUSE[0], failed: 0, inDoubt: 0 });
    const deliveries = scene.deliveries(text);
    const counts = perRecipient(deliveries);
    expect(counts.size).toBe(PAUSE[1] - PAUSE[0]);
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
    // The pace, from the delivery times: no sender ever faster than perSender a minute (10 s windows, plus
    // the bucket's one-second burst).
    const window = 10_000;
    const allowed = (perSender / 60) * (window / 1000) + perSender / 60;
    for (const from of new Set(deliveries.map((d) => d.from))) {
      const times = deliveries
        .filter((d) => d.from === from)
        .map((d) => d.at)
        .sort((a, b) => a - b);
      let start = 0;
      for (let end = 0; end < times.length; end++) {
        while ((times[end] ?? 0) - (times[start] ?? 0) > window) start++;
        expect(end - start + 1).toBeLessThanOrEqual(allowed);
      }
    }
  });

  it('pauses by itself when too many sends fail, and resumes when the spec changes', async () => {
    const text = 'auto-pause test message';
    await scene.recipientList('auto-list', range(...AUTO));
    await scene.createCampaign('auto', {
      senders: { names: ['bot-1'] },
      message: { text },
      recipients: { configMapRefs: [{ name: 'auto-list' }] },
      pace: { messagesPerMinute: 600, perSenderMessagesPerMinute: 600 },
      autoPause: { failureRatioPercent: 30, window: 20 },
    });
    const paused = await scene.waitForPhase('auto', 'Paused', 60_000);
    expect(paused.status?.conditions?.find((c) => c.type === 'Paused')).toMatchObject({
      status: 'True',
      reason: 'AutoPaused',
    });
    expect(paused.status?.pending ?? 0).toBeGreaterThan(0);
    await waitFor(
      'a Warning event AutoPaused',
      async () => {
        const events = await core.listNamespacedEvent({
          namespace: scene.namespace,
          fieldSelector: 'involvedObject.name=auto',
        });
        return events.items.some((e) => e.reason === 'AutoPaused' && e.type === 'Warning') ? true : undefined;
      },
      { timeoutMs: 15_000 },
    );

    await scene.patchCampaign('auto', { autoPause: { failureRatioPercent: 100, window: 20 } });
    const done = await scene.waitForPhase('auto', 'Completed');
    expect(done.status).toMatchObject({
      sent: AUTO[1] - AUTO[0] - AUTO_DEACTIVATED,
      failed: AUTO_DEACTIVATED,
    });
    expect(perRecipient(scene.deliveries(text)).size).toBe(AUTO[1] - AUTO[0] - AUTO_DEACTIVATED);
  });

  it('retries the failed recipients when asked, and nobody else', async () => {
    const text = 'retry test message';
    await scene.recipientList('retry-list', range(...RETRY));
    await scene.createCampaign('retry', {
      senders: { names: ['bot-1', 'bot-2'] },
      message: { text },
      recipients: { configMapRefs: [{ name: 'retry-list' }] },
      pace: { messagesPerMinute: 6000, perSenderMessagesPerMinute: 3000 },
    });
    const first = await scene.waitForPhase('retry', 'Completed');
    expect(first.status).toMatchObject({ sent: RETRY[1] - RETRY[0] - RETRY_BLOCKED, failed: RETRY_BLOCKED });
    expect(first.status?.failures).toEqual({ BlockedBySender: RETRY_BLOCKED });

    const world = World.open(scene.worldDir);
    for (const id of recipientIds(RETRY[0], RETRY[0] + RETRY_BLOCKED))
      for (const bot of [botName(0), botName(1)]) world.unblockUser(id, bot);
    await scene.patchCampaign('retry', { retry: { retryFailedRound: 1 } });
    const done = await waitFor(
      'the failed ones retried: Completed with all sent',
      async () => {
        const c = await scene.campaign('retry');
        return c.status?.phase === 'Completed' && c.status.sent === RETRY[1] - RETRY[0] ? c : undefined;
      },
      { timeoutMs: 60_000, onTimeout: scene.logs },
    );
    expect(done.status).toMatchObject({ failed: 0, retryFailedRound: 1 });
    expect(done.status?.failures ?? {}).toEqual({});
    const counts = perRecipient(scene.deliveries(text));
    expect(counts.size).toBe(RETRY[1] - RETRY[0]);
    expect([...counts.values()].every((n) => n === 1)).toBe(true);
  });
  it('stops sending within a second of the campaign being deleted, and takes its slices and metrics with it', async () => {
    const text = 'delete test message';
    await scene.recipientList('delete-list', range(...DELETE));
    await scene.createCampaign('gone', {
      senders: { names: ['bot-1', 'bot-2'] },
      message: { text },
      recipients: { configMapRefs: [{ name: 'delete-list' }] },
      pace: { messagesPerMinute: 1200, perSenderMessagesPerMinute: 600 },
    });
    await waitFor('some sends', () => (scene.deliveries(text).length >= 30 ? true : undefined), {
      timeoutMs: 60_000,
      onTimeout: scene.logs,
    });
    const deletedAt = Date.now();
    await custom.deleteNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: scene.namespace,
      plural: 'campaigns',
      name: 'gone',
    });
    // Its slices go with it (owner references), and the runtimes drop its series.
    await waitFor(
      'slices and metrics of the deleted campaign gone',
      async () => {
        const slices = await custom.listNamespacedCustomObject({
          group: GROUP,
          version: VERSION,
          namespace: scene.namespace,
          plural: 'campaignslices',
          labelSelector: `${LABEL_CAMPAIGN}=gone`,
        });
        const left = (slices as { items: unknown[] }).items.length;
        const series = metricSum(await runtimeMetrics(), 'tdlib_campaign_sends_total', { campaign: 'gone' });
        return left === 0 && series === 0 ? true : undefined;
      },
      { timeoutMs: 60_000, onTimeout: scene.logs },
    );
    const watchFrom = Date.now();
    await waitFor('three more seconds', () => (Date.now() - watchFrom > 3000 ? true : undefined), {
      timeoutMs: 10_000,
    });
    const deliveries = scene.deliveries(text);
    expect(Math.max(...deliveries.map((d) => d.at))).toBeLessThanOrEqual(deletedAt + 1000);
    expect(deliveries.length).toBeLessThan(DELETE[1] - DELETE[0]);
    expect([...perRecipient(deliveries).values()].every((n) => n === 1)).toBe(true);
  });
});
