/**
 * The monitoring the chart ships, on a real Prometheus (the release `promtool test rules` uses) scraping the
 * operator and two runtime processes while two bot senders on two runtime pods run a campaign through the
 * simulator:
 *   - every shipped alert rule loads and evaluates without error (`for:` shortened to 5 s, expressions as
 *     shipped);
 *   - on normal traffic, with enough requests for the rules' traffic guard and Telegram flood waits making
 *     over 1% of the requests fail, TDLibHighLatency and TDLibHighErrorRate stay silent (not even pending):
 *     the flood waits carry telegram_limit and the error ratio leaves them out;
 *   - when the simulator slows searchPublicChat (a request the sender makes for every recipient),
 *     TDLibHighLatency fires for both runtime pods and TDLibHighErrorRate stays silent; when it fails half of
 *     them, TDLibHighErrorRate fires for both pods;
 *   - every tdlib_* metric exists on real series with its labels (plus the target's), and every tdlib_* name
 *     Prometheus knows is in this file's table;
 *   - every query of the Grafana dashboard parses and returns data, its template variables substituted; the
 *     only panel allowed to be empty is the memory-limit one (a process outside a container has no limit).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { GROUP, VERSION } from '../../crds/index.js';
import { World } from '../../runtime/simulator/world.js';
import { waitFor } from '../cluster/wait.js';
import { recipientName } from '../support/campaign-world.js';
import { startCampaignScene, type CampaignScene } from '../support/campaign-scene.js';
import { adminKubeConfig } from '../support/cluster.js';
import { OPERATOR_NAMESPACE } from '../support/operator.js';
import {
  assembleAlertRules,
  startPrometheus,
  type AssembledRules,
  type PrometheusServer,
  type Sample,
} from '../support/prometheus.js';

const DASHBOARD = resolve('charts/tdlib-operator/dashboards/tdlib-operator.json');
const RECIPIENTS = 1500;
const TEXT = 'Monitoring week: every dashboard panel lights up.';
const CAMPAIGN = 'monitored';
const OPERATOR_POD = 'tdlib-operator-0';
const FOR = '5s';
const LATENCY = 'TDLibHighLatency';
const ERROR_RATE = 'TDLibHighErrorRate';
/** The simulator's normal network: small latencies, no injected errors. */
const BASE_LATENCY = { default: 5, methods: { sendMessage: 20 } };
const NO_ERRORS = { default: 0, methods: {} };

/** Labels every series gets from its scrape target (what a PodMonitor or ServiceMonitor adds). */
const TARGET_LABELS = ['instance', 'job', 'namespace', 'pod'];

interface MetricSpec {
  job: 'tdlib-runtime' | 'tdlib-operator';
  labels: string[];
  /** Labels some series carry and others leave empty (Prometheus drops empty labels). */
  optional?: string[];
}

/** Every tdlib_* series either process exports, with its own labels. */
const METRICS: Record<string, MetricSpec> = {
  tdlib_request_duration_seconds_bucket: { job: 'tdlib-runtime', labels: ['method', 'le'] },
  tdlib_request_duration_seconds_count: { job: 'tdlib-runtime', labels: ['method'] },
  tdlib_request_duration_seconds_sum: { job: 'tdlib-runtime', labels: ['method'] },
  tdlib_requests_total: { job: 'tdlib-runtime', labels: ['method', 'outcome'] },
  tdlib_errors_total: { job: 'tdlib-runtime', labels: ['method', 'code'], optional: ['telegram_limit'] },
  tdlib_active_clients: { job: 'tdlib-runtime', labels: [] },
  tdlib_pending_requests: { job: 'tdlib-runtime', labels: [] },
  tdlib_hosted_accounts: { job: 'tdlib-runtime', labels: ['state'] },
  tdlib_sessions_total: { job: 'tdlib-runtime', labels: [] },
  tdlib_sessions_lost_total: { job: 'tdlib-runtime', labels: ['account', 'reason'] },
  tdlib_campaign_sends_total: { job: 'tdlib-runtime', labels: ['campaign', 'result'] },
  tdlib_campaign_flood_wait_seconds_total: { job: 'tdlib-runtime', labels: ['campaign'] },
  tdlib_version_info: { job: 'tdlib-runtime', labels: ['version', 'commit', 'backend'] },
  tdlib_account_ready: { job: 'tdlib-operator', labels: ['account_namespace', 'account'] },
  tdlib_campaign_phase: {
    job: 'tdlib-operator',
    labels: ['campaign_namespace', 'campaign', 'phase', 'reason'],
  },
  tdlib_campaign_recipients: { job: 'tdlib-operator', labels: ['campaign_namespace', 'campaign', 'state'] },
  tdlib_rollout_step: { job: 'tdlib-operator', labels: ['pool_namespace', 'pool'] },
  tdlib_rollout_canary_weight: { job: 'tdlib-operator', labels: ['pool_namespace', 'pool'] },
  tdlib_rollout_desired_weight: { job: 'tdlib-operator', labels: ['pool_namespace', 'pool'] },
  tdlib_rollout_degraded: { job: 'tdlib-operator', labels: ['pool_namespace', 'pool'] },
  tdlib_rollout_analyses_total: { job: 'tdlib-operator', labels: ['pool_namespace', 'pool', 'verdict'] },
  tdlib_rollout_rollbacks_total: { job: 'tdlib-operator', labels: ['pool_namespace', 'pool', 'reason'] },
};

/** tdlib_* metrics this scene cannot produce, and why. Keep it short. */
const ABSENT: Record<string, string> = {
  tdlib_runtime_memory_limit_bytes:
    'exported only under a container memory limit (cgroup); these processes have none',
  tdlib_campaign_parked_senders: 'a gauge of parked senders; Telegram parks none in this scene',
};

/** Dashboard panels allowed to return an empty vector here, and why. */
const EMPTY_PANELS: Record<string, string> = {
  'Memory of the container limit':
    'divides by tdlib_runtime_memory_limit_bytes, absent without a memory limit',
};

interface DashboardTarget {
  expr?: string;
  refId?: string;
  datasource?: { type?: string; uid?: string };
}

interface DashboardPanel {
  id?: number;
  type?: string;
  title?: string;
  gridPos?: { h: number; w: number; x: number; y: number };
  datasource?: { type?: string; uid?: string };
  targets?: DashboardTarget[];
  panels?: DashboardPanel[];
}

interface DashboardVariable {
  name: string;
  type: string;
  query?: string | { query?: string };
  allValue?: string;
  includeAll?: boolean;
}

interface Dashboard {
  uid?: string;
  title?: string;
  schemaVersion?: number;
  panels?: DashboardPanel[];
  templating?: { list?: DashboardVariable[] };
}

const loadDashboard = (): Dashboard => JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;

/** Every panel, rows' nested panels included. */
const allPanels = (panels: readonly DashboardPanel[] = []): DashboardPanel[] =>
  panels.flatMap((p) => [p, ...allPanels(p.panels)]);

/** Replaces Grafana's $var, ${var} and [[var]] with `values`; an unknown variable is an error. */
function substitute(expr: string, values: Record<string, string>): string {
  return expr.replace(
    /\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)/g,
    (whole, a?: string, b?: string, c?: string) => {
      const name = a ?? b ?? c ?? '';
      const value = values[name];
      if (value === undefined) throw new Error(`unknown template variable ${whole} in ${expr}`);
      return value;
    },
  );
}

const pods = (series: readonly Sample[]): string[] =>
  [...new Set(series.map((s) => s.metric.pod ?? ''))].sort();

describe('Prometheus scraping the operator and the runtimes, with the shipped rules and dashboard', () => {
  let scene: CampaignScene;
  let prometheus: PrometheusServer;
  let rules: AssembledRules;
  let world: World;
  let runtimePods: string[] = [];
  let dir = '';
  const timings: string[] = [];
  const started = Date.now();
  const mark = (what: string): void => {
    timings.push(`${what} at ${((Date.now() - started) / 1000).toFixed(1)} s`);
  };

  /** What to print when a wait times out: Prometheus's view of the alerts, and the processes' tails. */
  const why = async (): Promise<string> => {
    const alerts = await prometheus.query('ALERTS').catch((e: unknown) => String(e));
    return `${timings.join('\n')}\nALERTS: ${JSON.stringify(alerts)}\nprometheus:\n${prometheus.output().slice(-2000)}\n${scene.logs()}`;
  };

  /** Waits until `alert` fires (state firing in ALERTS) for every runtime pod. */
  const waitForFiring = async (alert: string, timeoutMs: number): Promise<Sample[]> => {
    try {
      return await waitFor(
        `${alert} firing for ${runtimePods.join(', ')}`,
        async () => {
          const firing = await prometheus.query(`ALERTS{alertname="${alert}", alertstate="firing"}`);
          return pods(firing).join() === runtimePods.join() ? firing : undefined;
        },
        { timeoutMs, intervalMs: 500 },
      );
    } catch (error) {
      throw new Error(`${error instanceof Error ? error.message : String(error)}\n${await why()}`);
    }
  };

  /** Every ALERTS series of `alerts` (pending or firing) Prometheus recorded in the last 10 minutes. */
  const everRaised = (alerts: readonly string[]): Promise<Sample[]> =>
    prometheus.query(`count_over_time(ALERTS{alertname=~"${alerts.join('|')}"}[10m])`);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tdlib-operator-prom-e2e-'));
    rules = assembleAlertRules(dir, FOR);
    scene = await startCampaignScene({
      prefix: 'prometheus',
      world: {
        recipients: RECIPIENTS,
        userSenders: 0,
        bot: true,
        bots: 2,
        limits: {
          user: { account: { per_second: 1000, burst: 1000 }, chat: { per_second: 10, burst: 10 } },
          bot: { account: { per_second: 1000, burst: 1000 }, chat: { per_second: 10, burst: 10 } },
          peer_flood: { max_new_strangers: 1_000_000, window_seconds: 86400 },
          // Slower than the senders' pace, and TDLib waits nothing out: every sender meets Telegram's flood
          // waits on searchPublicChat (429, telegram_limit="flood_wait") all along.
          search_public_chat: { per_second: 4, burst: 4 },
          tdlib_flood_wait_limit_seconds: 0,
        },
        faults: { latency_ms: BASE_LATENCY, error_rate: NO_ERRORS },
      },
      senders: [
        { name: 'bot-a', kind: 'bot', index: 0 },
        { name: 'bot-b', kind: 'bot', index: 1 },
      ],
      pods: 2,
      accountsPerPod: 1,
    });
    // The pool declared as it runs (the operator's defaults): rollout series exist at their idle values.
    await adminKubeConfig()
      .makeApiClient(k8s.CustomObjectsApi)
      .createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: scene.namespace,
        plural: 'telegramruntimepools',
        body: {
          apiVersion: `${GROUP}/${VERSION}`,
          kind: 'TelegramRuntimePool',
          metadata: { name: 'default' },
          spec: {
            image: 'ghcr.io/tdlib-operator/tdlib-operator:0.1.0',
            backend: 'simulator',
            accountsPerPod: 1,
          },
        },
      });
    world = World.open(scene.worldDir);
    runtimePods = scene.runtimes.map((r) => r.pod).sort();
    mark('scene up');
    const runtimeTargets = await Promise.all(
      scene.runtimes.map(async (r) => ({
        address: `127.0.0.1:${await r.port()}`,
        labels: { namespace: scene.namespace, pod: r.pod },
      })),
    );
    prometheus = await startPrometheus({
      dir,
      ruleFiles: [rules.path],
      jobs: [
        {
          job: 'tdlib-operator',
          targets: [
            {
              address: `127.0.0.1:${await scene.operator.metricsPort()}`,
              labels: { namespace: OPERATOR_NAMESPACE, pod: OPERATOR_POD },
            },
          ],
        },
        { job: 'tdlib-runtime', targets: runtimeTargets },
      ],
    });
    mark('prometheus up');
    await scene.recipientList(
      'monitored-list',
      Array.from({ length: RECIPIENTS }, (_, i) => `@${recipientName(i)}`),
    );
    await scene.createCampaign(CAMPAIGN, {
      senders: { selector: { matchLabels: { role: 'sender' } } },
      message: { text: TEXT },
      recipients: { configMapRefs: [{ name: 'monitored-list' }] },
      pace: { messagesPerMinute: 600, perSenderMessagesPerMinute: 300 },
      retry: { maxAttempts: 3, backoffSeconds: 1 },
    });
  });

  afterAll(async () => {
    await prometheus?.stop();
    await scene?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
    process.stdout.write(`prometheus e2e: ${timings.join('; ')}\n`);
  });

  it('scrapes the operator and both runtimes, and evaluates every shipped alert rule without error', async () => {
    const targets = await waitFor(
      'every target up',
      async () => {
        const active = await prometheus.targets();
        return active.length === 3 && active.every((t) => t.health === 'up') ? active : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 250, onTimeout: () => prometheus.output().slice(-2000) },
    );
    expect(targets.map((t) => `${t.labels.job} ${t.labels.pod}`).sort()).toEqual([
      `tdlib-operator ${OPERATOR_POD}`,
      ...runtimePods.map((p) => `tdlib-runtime ${p}`),
    ]);
    const evaluated = await waitFor(
      'every rule evaluated',
      async () => {
        const group = (await prometheus.rules()).find((g) => g.name === 'tdlib-operator');
        return group && group.rules.every((r) => r.health !== 'unknown') ? group.rules : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 250 },
    );
    expect(evaluated.map((r) => r.name).sort()).toEqual([...rules.alerts].sort());
    expect(evaluated.filter((r) => r.health !== 'ok').map((r) => `${r.name}: ${r.lastError}`)).toEqual([]);
    expect(rules.alerts).toEqual(expect.arrayContaining([LATENCY, ERROR_RATE]));
  });

  it('keeps TDLibHighLatency and TDLibHighErrorRate silent on normal traffic, flood waits included', async () => {
    // The rules' traffic guard (over 15 requests in 5 minutes) has held for 15 s on both pods (three times
    // the shortened `for`), and Telegram's flood waits fail over 1% of the requests: an error ratio that
    // counted them would fire.
    const guard = `count_over_time((sum by (pod) (rate(tdlib_requests_total[5m])) > 0.05)[15s:1s]) >= 14`;
    const floods = `sum by (pod) (rate(tdlib_errors_total{telegram_limit="flood_wait"}[5m])) / sum by (pod) (rate(tdlib_requests_total[5m])) > 0.01`;
    await waitFor(
      'steady traffic with flood waits on both runtime pods',
      async () => {
        const [held, flooded] = await Promise.all([prometheus.query(guard), prometheus.query(floods)]);
        return pods(held).join() === runtimePods.join() && pods(flooded).join() === runtimePods.join()
          ? true
          : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 500, onTimeout: () => timings.join('\n') },
    ).catch(async (error: unknown) => {
      throw new Error(`${error instanceof Error ? error.message : String(error)}\n${await why()}`);
    });
    mark('baseline traffic held');
    expect(await everRaised([LATENCY, ERROR_RATE])).toEqual([]);
    // The rules' own expressions, as Prometheus loaded them, select nothing now.
    const loaded = (await prometheus.rules()).flatMap((g) => g.rules);
    for (const name of [LATENCY, ERROR_RATE]) {
      const rule = loaded.find((r) => r.name === name);
      expect(rule?.health).toBe('ok');
      expect(await prometheus.query(rule?.query ?? '')).toEqual([]);
    }
    // The same ratio with Telegram's limits counted would be over the threshold on both pods.
    const counted = await prometheus.query(
      'sum by (pod) (rate(tdlib_errors_total[5m])) / sum by (pod) (rate(tdlib_requests_total[5m])) > 0.01',
    );
    expect(pods(counted)).toEqual(runtimePods);
  });

  it('fires TDLibHighLatency for both pods when the simulator slows searchPublicChat, and not the error alert', async () => {
    world.setFaults({ latency_ms: { default: 5, methods: { sendMessage: 20, searchPublicChat: 1500 } } });
    mark('latency injected');
    const firing = await waitForFiring(LATENCY, 90_000);
    mark(`${LATENCY} firing`);
    expect(
      firing.every((s) => s.metric.severity === 'warning' && s.metric.namespace === scene.namespace),
    ).toBe(true);
    // It was pending first: `for` held it back.
    const pending = await prometheus.query(
      `count_over_time(ALERTS{alertname="${LATENCY}", alertstate="pending"}[10m])`,
    );
    expect(pods(pending)).toEqual(runtimePods);
    // searchPublicChat is what got slow.
    const p95 = await prometheus.query(
      'histogram_quantile(0.95, sum by (le, method) (rate(tdlib_request_duration_seconds_bucket[5m]))) > 0.5',
    );
    expect(p95.map((s) => s.metric.method)).toEqual(['searchPublicChat']);
    expect(await everRaised([ERROR_RATE])).toEqual([]);
    world.setFaults({ latency_ms: BASE_LATENCY });
  });

  it('fires TDLibHighErrorRate for both pods when the simulator fails half the searchPublicChat requests', async () => {
    world.setFaults({ error_rate: { default: 0, methods: { searchPublicChat: 0.5 } } });
    mark('errors injected');
    const firing = await waitForFiring(ERROR_RATE, 90_000);
    mark(`${ERROR_RATE} firing`);
    expect(
      firing.every((s) => s.metric.severity === 'warning' && s.metric.namespace === scene.namespace),
    ).toBe(true);
    // Counted as our errors (no telegram_limit): the simulator's injected 500s.
    const codes = await prometheus.query(
      'sum by (code) (increase(tdlib_errors_total{telegram_limit="", method="searchPublicChat"}[5m])) > 0',
    );
    expect(codes.map((s) => s.metric.code)).toContain('500');
  });

  it('exports every tdlib_* metric on real series, with its labels', async () => {
    const problems: string[] = [];
    for (const [name, spec] of Object.entries(METRICS)) {
      const series = await prometheus.query(`{__name__="${name}"}`);
      if (series.length === 0) {
        problems.push(`${name}: no series`);
        continue;
      }
      const required = [...spec.labels, ...TARGET_LABELS].sort();
      const allowed = new Set(['__name__', ...required, ...(spec.optional ?? [])]);
      const seen = new Set<string>();
      for (const s of series) {
        const labels = Object.keys(s.metric);
        labels.forEach((l) => seen.add(l));
        const missing = required.filter((l) => !labels.includes(l));
        const extra = labels.filter((l) => !allowed.has(l));
        if (missing.length > 0 || extra.length > 0)
          problems.push(
            `${name}${JSON.stringify(s.metric)}: missing ${missing.join()} extra ${extra.join()}`,
          );
        if (s.metric.job !== spec.job) problems.push(`${name}: job ${s.metric.job}, want ${spec.job}`);
      }
      for (const l of spec.optional ?? []) if (!seen.has(l)) problems.push(`${name}: no series with ${l}`);
    }
    expect(problems).toEqual([]);
    // Flood waits are labelled as Telegram's limits; the injected errors are not.
    const limits = await prometheus.query('count by (telegram_limit) (tdlib_errors_total)');
    expect(limits.map((s) => s.metric.telegram_limit ?? '').sort()).toEqual(['', 'flood_wait']);
    // Every tdlib_* name Prometheus has is in METRICS or explained in ABSENT.
    const names = (await prometheus.query('count by (__name__) ({__name__=~"tdlib_.+"})')).map(
      (s) => s.metric.__name__ ?? '',
    );
    expect(names.filter((n) => !(n in METRICS))).toEqual([]);
    expect(Object.keys(ABSENT).filter((n) => names.includes(n))).toEqual([]);
  });

  it('answers every dashboard query with data, template variables substituted', async () => {
    const dashboard = loadDashboard();
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(39);
    const variables = dashboard.templating?.list ?? [];
    const datasource = variables.find((v) => v.type === 'datasource');
    expect(datasource).toMatchObject({ name: 'datasource', query: 'prometheus' });
    // The variables' own queries find this scene's namespace and pods.
    const namespaceVar = variables.find((v) => v.name === 'namespace');
    const podVar = variables.find((v) => v.name === 'pod');
    expect(namespaceVar?.type).toBe('query');
    expect(podVar?.type).toBe('query');
    const namespaces = await prometheus.query('count by (namespace) (tdlib_active_clients)');
    expect(namespaces.map((s) => s.metric.namespace)).toContain(scene.namespace);
    const values: Record<string, string> = {
      datasource: 'prometheus',
      namespace: scene.namespace,
      pod: podVar?.allValue ?? '.*',
      __rate_interval: '1m',
      __interval: '15s',
      __range: '1h',
    };

    const panels = allPanels(dashboard.panels);
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const queried = panels.filter((p) => p.type !== 'row');
    expect(queried.length).toBeGreaterThanOrEqual(20);
    const problems: string[] = [];
    const empty: string[] = [];
    for (const panel of queried) {
      const title = panel.title ?? `panel ${String(panel.id)}`;
      if (panel.datasource?.uid !== '${datasource}')
        problems.push(`${title}: datasource ${JSON.stringify(panel.datasource)}`);
      const grid = panel.gridPos;
      if (!grid || grid.x + grid.w > 24) problems.push(`${title}: gridPos ${JSON.stringify(grid)}`);
      if (!panel.targets?.length) problems.push(`${title}: no targets`);
      for (const target of panel.targets ?? []) {
        const label = `${title} [${target.refId ?? '?'}]`;
        if (!target.expr) {
          problems.push(`${label}: no expr`);
          continue;
        }
        const expr = substitute(target.expr, values);
        const result = await prometheus.tryQuery(expr);
        if (!result.ok) problems.push(`${label}: ${result.error}\n  ${expr}`);
        else if (result.series.length === 0) empty.push(title);
      }
    }
    expect(problems).toEqual([]);
    expect([...new Set(empty)].sort()).toEqual(Object.keys(EMPTY_PANELS).sort());
    // Among the data: the latency panels show the slowed method, the error panel the injected code.
    const p95 = await prometheus.query(
      substitute(
        queried.find((p) => p.title === 'P95 latency by method')?.targets?.[0]?.expr ?? 'vector(0)',
        values,
      ),
    );
    expect(p95.map((s) => s.metric.method)).toContain('searchPublicChat');
    const errors = await prometheus.query(
      substitute(
        queried.find((p) => p.title === 'Error ratio by code')?.targets?.[0]?.expr ?? 'vector(0)',
        values,
      ),
    );
    expect(errors.map((s) => s.metric.code)).toContain('500');
  });
});
