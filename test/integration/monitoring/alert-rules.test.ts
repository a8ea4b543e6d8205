/**
 * The shipped Prometheus alert rules (charts/tdlib-operator/prometheus_rules/<Alert>.yaml, one rule object per
 * file, wrapped into a PrometheusRule by the chart) against promtool, the Prometheus release the e2e tier runs:
 *   - each file is one alert with a severity, a summary, a description and a runbook_url whose
 *     docs/runbooks/<Alert>.md exists in this repository, and no Helm template syntax;
 *   - assembled into one group, `promtool check rules` accepts them;
 *   - every test file in test/monitoring/rule-tests passes `promtool test rules` against that group, and
 *     together they give every alert a case where it fires and one (exp_alerts: []) where it stays silent;
 *   - the tests can fail: the old rollout plan's latency rule and an absolute error rate fail them, and so does
 *     each rule made never to fire.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { parse, stringify } from 'yaml';
import { toolPath } from '../../cluster/tools.js';

const RULES_DIR = resolve('charts/tdlib-operator/prometheus_rules');
const TESTS_DIR = resolve('test/monitoring/rule-tests');
/** The name test files give in rule_files; the harness points it at the group it assembles. */
const ASSEMBLED = 'tdlib-operator.rules.yaml';
const REPO_URL = 'https://github.com/tdlib-operator/tdlib-operator/blob/main/';
const RULE_KEYS = ['alert', 'annotations', 'expr', 'for', 'labels'];
const ANNOTATION_KEYS = ['description', 'runbook_url', 'summary'];
const SEVERITIES = ['critical', 'warning', 'info'];
/** The only template actions allowed: Prometheus's own, on the alert's labels and value. */
const PROMETHEUS_TEMPLATE = /^\{\{\s*\$(?:labels\.[a-z_]+|value)(?:\s*\|\s*[a-zA-Z]+)?\s*\}\}$/;

type Yaml = Record<string, unknown>;

interface RuleFile {
  file: string;
  text: string;
  rule: Yaml;
  alert: string;
}

interface TestFile {
  file: string;
  doc: Yaml;
}

const isObject = (value: unknown): value is Yaml =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const yamlFiles = (dir: string): string[] =>
  readdirSync(dir)
    .filter((name) => name.endsWith('.yaml'))
    .sort()
    .map((name) => join(dir, name));

function loadRules(): RuleFile[] {
  return yamlFiles(RULES_DIR).map((file) => {
    const text = readFileSync(file, 'utf8');
    const rule: unknown = parse(text);
    if (!isObject(rule)) throw new Error(`${file}: not a YAML object`);
    return { file, text, rule, alert: typeof rule.alert === 'string' ? rule.alert : '' };
  });
}

function loadTests(): TestFile[] {
  return yamlFiles(TESTS_DIR).map((file) => {
    const doc: unknown = parse(readFileSync(file, 'utf8'));
    if (!isObject(doc)) throw new Error(`${file}: not a YAML object`);
    return { file, doc };
  });
}

/** What is wrong with one rule file (empty when nothing is). */
function ruleProblems({ file, text, rule, alert }: RuleFile): string[] {
  const problems: string[] = [];
  const name = basename(file, '.yaml');
  const keys = Object.keys(rule).sort();
  if (keys.join() !== RULE_KEYS.join())
    problems.push(`keys ${keys.join(', ')}, want ${RULE_KEYS.join(', ')}`);
  if (alert !== name) problems.push(`alert ${JSON.stringify(alert)} in a file named ${name}.yaml`);
  if (typeof rule.expr !== 'string' || rule.expr.trim() === '') problems.push('no expr');
  if (typeof rule.for !== 'string' || !/^\d+[smh]$/.test(rule.for)) problems.push(`for: ${String(rule.for)}`);
  const labels = isObject(rule.labels) ? rule.labels : {};
  if (Object.keys(labels).join() !== 'severity' || !SEVERITIES.includes(String(labels.severity)))
    problems.push(`labels ${JSON.stringify(labels)}: want only severity, one of ${SEVERITIES.join(', ')}`);
  const annotations = isObject(rule.annotations) ? rule.annotations : {};
  for (const key of ANNOTATION_KEYS) {
    const value = annotations[key];
    if (typeof value !== 'string' || value.trim() === '') problems.push(`annotation ${key} missing`);
  }
  const extra = Object.keys(annotations).filter((key) => !ANNOTATION_KEYS.includes(key));
  if (extra.length > 0) problems.push(`unexpected annotations ${extra.join(', ')}`);
  const runbook = annotations.runbook_url;
  const wanted = `${REPO_URL}docs/runbooks/${name}.md`;
  if (runbook !== wanted) problems.push(`runbook_url ${String(runbook)}, want ${wanted}`);
  else if (!existsSync(resolve(runbook.slice(REPO_URL.length))))
    problems.push(`${runbook.slice(REPO_URL.length)} does not exist`);
  for (const action of text.match(/\{\{.*?\}\}/g) ?? [])
    if (!PROMETHEUS_TEMPLATE.test(action)) problems.push(`template action ${action} is not $labels/$value`);
  if (/\{\{-|-\}\}|\.Values|\.Release|\binclude\b/.test(text)) problems.push('Helm template syntax');
  return problems;
}

function assemble(dir: string, rules: readonly Yaml[]): string {
  const path = join(dir, ASSEMBLED);
  writeFileSync(path, stringify({ groups: [{ name: 'tdlib-operator', rules }] }, { lineWidth: 0 }));
  return path;
}

/** A copy of a test file in `dir` whose rule_files is the assembled group at `rulesPath`. */
function stageTest(dir: string, test: TestFile, rulesPath: string): string {
  const path = join(dir, basename(test.file));
  writeFileSync(path, stringify({ ...test.doc, rule_files: [rulesPath] }, { lineWidth: 0 }));
  return path;
}

function promtool(args: string[]): Promise<{ code: number | string; output: string }> {
  return new Promise((done) => {
    execFile(toolPath('promtool'), args, { timeout: 60_000 }, (error, stdout, stderr) => {
      const output = `${stdout}${stderr}`;
      if (!error) done({ code: 0, output });
      else done({ code: error.code ?? error.signal ?? 'error', output: `${output}\n${error.message}` });
    });
  });
}

interface AlertCase {
  file: string;
  alertname: string;
  evalTime: string;
  firing: boolean;
  silent: boolean;
}

function alertCases(tests: readonly TestFile[]): AlertCase[] {
  const cases: AlertCase[] = [];
  for (const { file, doc } of tests) {
    for (const group of Array.isArray(doc.tests) ? doc.tests : []) {
      if (!isObject(group)) continue;
      for (const test of Array.isArray(group.alert_rule_test) ? group.alert_rule_test : []) {
        if (!isObject(test)) continue;
        const expected = test.exp_alerts;
        cases.push({
          file: basename(file),
          alertname: String(test.alertname),
          evalTime: String(test.eval_time),
          firing: Array.isArray(expected) && expected.length > 0,
          silent: Array.isArray(expected) && expected.length === 0,
        });
      }
    }
  }
  return cases;
}

describe('Prometheus alert rules', () => {
  const rules = loadRules();
  const tests = loadTests();
  const alerts = rules.map((r) => r.alert);
  let dir = '';
  let assembled = '';

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'alert-rules-'));
    assembled = assemble(
      dir,
      rules.map((r) => r.rule),
    );
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Runs every test file against `rulesPath`; resolves with promtool's result. */
  const testRules = (
    rulesPath: string,
    only: readonly TestFile[] = tests,
  ): Promise<{ code: number | string; output: string }> =>
    promtool(['test', 'rules', ...only.map((t) => stageTest(dir, t, rulesPath))]);

  /** The assembled group with one rule changed, in a directory of its own. */
  const mutated = (alert: string, change: Yaml): string => {
    const own = mkdtempSync(join(dir, 'mutated-'));
    return assemble(
      own,
      rules.map((r) => (r.alert === alert ? { ...r.rule, ...change } : r.rule)),
    );
  };

  it('ships the alerts the rollout plan and running accounts need', () => {
    expect(alerts).toEqual(
      expect.arrayContaining([
        'TDLibHighLatency',
        'TDLibHighErrorRate',
        'RuntimeMemoryHigh',
        'TelegramAccountNotReady',
        'TelegramSessionLost',
        'TDLibOperatorReconcileErrors',
        'TDLibOperatorWorkQueueBacklog',
        'TelegramCampaignAutoPaused',
        'TelegramCampaignSenderParked',
        'TelegramCampaignStalled',
      ]),
    );
  });

  it('every file is one alert with severity, summary, description and a runbook in the repository', () => {
    const problems = rules.flatMap((r) => ruleProblems(r).map((p) => `${basename(r.file)}: ${p}`));
    expect(problems).toEqual([]);
  });

  it('the assembled group passes promtool check rules', async () => {
    const result = await promtool(['check', 'rules', '--lint=all', '--lint-fatal', assembled]);
    expect(result.output).toContain(`SUCCESS: ${rules.length} rules found`);
    expect(result.code).toBe(0);
  });

  it('every test file names the assembled group', () => {
    for (const { file, doc } of tests)
      expect([basename(file), doc.rule_files]).toEqual([basename(file), [ASSEMBLED]]);
  });

  it('every test file passes promtool test rules', async () => {
    expect(tests.length).toBeGreaterThan(0);
    const result = await testRules(assembled);
    if (result.code !== 0) throw new Error(`promtool test rules failed:\n${result.output}`);
    expect(result.output.match(/SUCCESS/g)).toHaveLength(tests.length);
  });

  it('every alert has a case where it fires and one where it stays silent, and no test names another', () => {
    const cases = alertCases(tests);
    const unknown = cases
      .filter((c) => !alerts.includes(c.alertname))
      .map((c) => `${c.file}: ${c.alertname}`);
    expect(unknown).toEqual([]);
    const missing = alerts.flatMap((alert) => [
      ...(cases.some((c) => c.alertname === alert && c.firing) ? [] : [`${alert}: no case where it fires`]),
      ...(cases.some((c) => c.alertname === alert && c.silent)
        ? []
        : [`${alert}: no case where it stays silent (exp_alerts: [])`]),
    ]);
    expect(missing).toEqual([]);
  });

  it("fails the old plan's latency rule, a quantile of a name the histogram never exports", async () => {
    const old = mutated('TDLibHighLatency', {
      expr: 'histogram_quantile(0.95, tdlib_request_duration_seconds) > 0.5',
    });
    const test = tests.find((t) => basename(t.file) === 'TDLibHighLatency.yaml');
    if (!test) throw new Error('no TDLibHighLatency.yaml test file');
    const result = await testRules(old, [test]);
    expect(result.code).not.toBe(0);
    expect(result.output).toContain('alertname: TDLibHighLatency');
  });

  it('fails an absolute error rate (a flood-wait storm would roll back a good release)', async () => {
    const absolute = mutated('TDLibHighErrorRate', {
      expr: 'sum by (namespace, pod, instance) (rate(tdlib_errors_total[5m])) > 0.01',
    });
    const test = tests.find((t) => basename(t.file) === 'TDLibHighErrorRate.yaml');
    if (!test) throw new Error('no TDLibHighErrorRate.yaml test file');
    const result = await testRules(absolute, [test]);
    expect(result.code).not.toBe(0);
    expect(result.output).toContain('alertname: TDLibHighErrorRate');
  });

  it('fails every alert made never to fire', async () => {
    const cases = alertCases(tests);
    const passed: string[] = [];
    for (const alert of alerts) {
      const silenced = mutated(alert, { expr: 'vector(1) == 0' });
      const own = tests.filter((t) =>
        cases.some((c) => c.alertname === alert && c.file === basename(t.file)),
      );
      const result = await testRules(silenced, own);
      if (result.code === 0 || !result.output.includes(`alertname: ${alert}`)) passed.push(alert);
    }
    expect(passed).toEqual([]);
  });
});
