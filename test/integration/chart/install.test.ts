/**
 * charts/tdlib-operator on the real control plane: helm lint; helm template with default values and with every
 * option on, each object accepted by the API server (dry run, prometheus-operator's CRDs installed); the
 * kustomize overlay renders the same operator; helm install; the operator, run with the token of the chart's
 * ServiceAccount, reconciles a TelegramAccount (the chart's RBAC is enough); helm upgrade changes settings;
 * helm uninstall keeps the CRDs and the users' accounts.
 */
import { execFileSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { allCrds, GROUP, VERSION } from '../../../crds/index.js';
import { OPERATOR_CLUSTER_ROLE_RULES } from '../../../crds/operator-rbac.js';
import { runtimeLeasePolicy, runtimeLeasePolicyBinding } from '../../../crds/runtime-lease-policy.js';
import { loadOperatorConfig, operatorConfigSchema } from '../../../operator/config.js';
import { toolPath } from '../../cluster/tools.js';
import { waitFor } from '../../cluster/wait.js';
import { adminKubeConfig, createTestNamespace, testCluster } from '../../support/cluster.js';
import { installCrds } from '../../support/crds.js';
import { startOperatorProcess, type OperatorProcess } from '../../support/operator.js';
import { installMonitoringCrds } from '../../support/prometheus-operator.js';
import { getTelegramAccount, SECRET_OPT_IN, serviceAccountKubeconfig } from '../../support/runtime.js';

const CHART = resolve('charts/tdlib-operator');

interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [key: string]: unknown;
}
type Values = Record<string, unknown>;
interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: unknown;
}
interface Container {
  name: string;
  image: string;
  args?: string[];
  env: EnvVar[];
  ports: Array<{ name: string; containerPort: number }>;
  livenessProbe: { httpGet: { path: string; port: string } };
  readinessProbe: { httpGet: { path: string; port: string } };
  securityContext: Record<string, unknown>;
}
interface DeploymentShape {
  spec: {
    replicas: number;
    template: { spec: { securityContext: Record<string, unknown>; containers: Container[] } };
  };
}

function run(command: string, args: string[], input?: string): string {
  try {
    return execFileSync(command, args, {
      encoding: 'utf8',
      input,
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      maxBuffer: 64 * 1024 * 1024,
    });
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    throw new Error(`${command} ${args.join(' ')} failed:\n${stderr ?? ''}\n${(stdout ?? '').slice(-2000)}`);
  }
}

/** Every object of a multi-document YAML stream (helm template, kubectl kustomize). */
function objectsOf(yaml: string): KubeObject[] {
  return parseAllDocuments(yaml)
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(`rendered YAML does not parse: ${doc.errors[0]?.message}`);
      return doc.toJS() as KubeObject | null;
    })
    .filter((o): o is KubeObject => o !== null);
}

const kindsOf = (objects: KubeObject[]): string[] => objects.map((o) => o.kind).sort();
const only = (objects: KubeObject[], kind: string): KubeObject => {
  const found = objects.filter((o) => o.kind === kind);
  if (found.length !== 1) throw new Error(`expected one ${kind}, found ${found.length}`);
  return found[0] as KubeObject;
};
const operatorContainer = (deployment: KubeObject): Container => {
  const container = (deployment as unknown as DeploymentShape).spec.template.spec.containers[0];
  if (!container) throw new Error('the Deployment has no container');
  return container;
};
const envOf = (deployment: KubeObject): Record<string, string> =>
  Object.fromEntries(
    operatorContainer(deployment)
      .env.filter((e) => e.value !== undefined)
      .map((e) => [e.name, e.value ?? '']),
  );

/** A rule file as the alert-rule engineers write them: one alert, Prometheus templates in annotations. */
const FIXTURE_RULES: Record<string, Values> = {
  'TDLibFixtureA.yaml': {
    alert: 'TDLibFixtureA',
    expr: 'sum(rate(tdlib_errors_total[5m])) by (pod)\n  / sum(rate(tdlib_requests_total[5m])) by (pod) > 0.01',
    for: '10m',
    labels: { severity: 'warning' },
    annotations: {
      summary: 'Error ratio {{ $value | humanizePercentage }} on {{ $labels.pod }}',
      description: 'See {{ $labels.namespace }}.',
      runbook_url: 'https://example.invalid/docs/runbooks/TDLibFixtureA.md',
    },
  },
  'TDLibFixtureB.yaml': {
    alert: 'TDLibFixtureB',
    expr: 'up{job="tdlib"} == 0',
    for: '5m',
    labels: { severity: 'critical' },
    annotations: { summary: 'down', description: 'down', runbook_url: 'https://example.invalid/B.md' },
  },
};
const FIXTURE_DASHBOARD = `${JSON.stringify({ title: 'TDLib fixture', panels: [{ targets: [{ expr: 'sum(tdlib_active_clients)', legendFormat: '{{pod}}' }] }] }, null, 2)}\n`;

/** A copy of the chart whose prometheus_rules/ and dashboards/ hold exactly `rules` and `dashboards`. */
const work = mkdtempSync(join(tmpdir(), 'tdlib-chart-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function chartCopy(rules: Record<string, Values>, dashboards: Record<string, string>): string {
  const dir = join(mkdtempSync(join(work, 'chart-')), 'tdlib-operator');
  cpSync(CHART, dir, { recursive: true });
  for (const sub of ['prometheus_rules', 'dashboards']) {
    rmSync(join(dir, sub), { recursive: true, force: true });
    mkdirSync(join(dir, sub));
  }
  for (const [file, rule] of Object.entries(rules))
    writeFileSync(join(dir, 'prometheus_rules', file), `# ${file}\n${stringify(rule)}`);
  for (const [file, text] of Object.entries(dashboards)) writeFileSync(join(dir, 'dashboards', file), text);
  return dir;
}

const allOptions: Values = {
  replicas: 3,
  image: { repository: 'registry.example/tdlib-operator', tag: '9.9.9', pullPolicy: 'Always' },
  imagePullSecrets: ['regcred'],
  watchNamespace: 'team-a',
  workers: 4,
  logLevel: 'debug',
  leaderElection: {
    enabled: true,
    leaseDurationSeconds: 20,
    renewDeadlineSeconds: 15,
    retryPeriodSeconds: 3,
  },
  runtime: {
    image: { repository: 'registry.example/tdlib-runtime', tag: '9.9.8' },
    backend: 'simulator',
    accountsPerPod: 40,
    minReplicas: 2,
    maxReplicas: 9,
    podStartTimeoutSeconds: 300,
    storage: { size: '5Gi', storageClass: 'fast' },
  },
  extraEnv: [{ name: 'NODE_OPTIONS', value: '--max-old-space-size=400' }],
  ports: { metrics: 9090, health: 9091 },
  podAnnotations: { 'example.com/a': 'b' },
  podLabels: { team: 'platform' },
  priorityClassName: 'system-cluster-critical',
  nodeSelector: { 'kubernetes.io/os': 'linux' },
  tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'operators', effect: 'NoSchedule' }],
  topologySpreadConstraints: [
    {
      maxSkew: 1,
      topologyKey: 'topology.kubernetes.io/zone',
      whenUnsatisfiable: 'ScheduleAnyway',
      labelSelector: { matchLabels: { 'app.kubernetes.io/name': 'tdlib-operator' } },
    },
  ],
  serviceAccount: { create: true, name: 'tdlib-op', annotations: { 'example.com/role': 'x' } },
  service: { annotations: { 'example.com/scrape': 'true' } },
  podDisruptionBudget: { enabled: true, minAvailable: 2 },
  monitoring: {
    serviceMonitor: {
      enabled: true,
      additionalLabels: { release: 'kube-prometheus' },
      interval: '30s',
      scrapeTimeout: '10s',
      relabelings: [{ targetLabel: 'cluster', replacement: 'test' }],
      metricRelabelings: [{ sourceLabels: ['__name__'], regex: 'go_.*', action: 'drop' }],
    },
    podMonitor: {
      enabled: true,
      additionalLabels: { release: 'kube-prometheus' },
      interval: '15s',
      relabelings: [{ targetLabel: 'cluster', replacement: 'test' }],
    },
    prometheusRule: { enabled: true, additionalLabels: { release: 'kube-prometheus' }, excludeRules: [] },
    grafanaDashboard: {
      create: true,
      labels: { team: 'platform' },
      annotations: { grafana_folder: 'TDLib' },
    },
  },
  networkPolicy: {
    enabled: true,
    metricsFrom: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }],
    egress: {
      enabled: true,
      apiServerCIDRs: ['10.0.0.1/32'],
      apiServerPorts: [443, 6443],
      extra: [{ to: [{ ipBlock: { cidr: '192.0.2.0/24' } }], ports: [{ port: 3128, protocol: 'TCP' }] }],
    },
  },
};

describe('charts/tdlib-operator on the real control plane', () => {
  const kc = adminKubeConfig();
  const kubeconfig = testCluster().kubeconfigPath;
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const apps = kc.makeApiClient(k8s.AppsV1Api);
  const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  const apiext = kc.makeApiClient(k8s.ApiextensionsV1Api);
  let helm: (args: string[]) => string;
  let kubeVersion = '';
  let namespace = '';
  const release = `tdop-${process.pid}`;
  const fullname = `${release}-tdlib-operator`;

  const valuesFile = (name: string, values: Values): string => {
    const path = join(work, `${name}.yaml`);
    writeFileSync(path, stringify(values));
    return path;
  };
  const template = (chart: string, ns: string, extra: string[] = [], name = release): KubeObject[] =>
    objectsOf(helm(['template', name, chart, '-n', ns, '--kube-version', kubeVersion, ...extra]));
  const dryRun = (objects: KubeObject[]): string =>
    run(
      'kubectl',
      [
        '--kubeconfig',
        kubeconfig,
        'apply',
        '--dry-run=server',
        '--server-side',
        '--field-manager=chart-test',
        '-f',
        '-',
      ],
      objects.map((o) => `---\n${stringify(o)}`).join(''),
    );
  const expectAccepted = (objects: KubeObject[]): void => {
    const out = dryRun(objects);
    for (const o of objects) expect(out).toContain(`${o.metadata.name} serverside-applied (server dry run)`);
  };

  beforeAll(async () => {
    const helmBin = toolPath('helm');
    helm = (args) => run(helmBin, ['--kubeconfig', kubeconfig, ...args]);
    const version = JSON.parse(run('kubectl', ['--kubeconfig', kubeconfig, 'version', '-o', 'json'])) as {
      serverVersion: { gitVersion: string };
    };
    kubeVersion = version.serverVersion.gitVersion;
    await installCrds(kc);
    installMonitoringCrds(kubeconfig);
    namespace = await createTestNamespace(kc, 'chart');
  });

  it('passes helm lint, with default values and with every option on', () => {
    const lint = helm(['lint', CHART, '--strict', '--kube-version', kubeVersion]);
    expect(lint).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
    const all = helm([
      'lint',
      CHART,
      '--strict',
      '--kube-version',
      kubeVersion,
      '-f',
      valuesFile('all-options', allOptions),
    ]);
    expect(all).toMatch(/0 chart\(s\) failed/);
  });

  it('refuses values the schema forbids, naming the field', () => {
    expect(() => template(CHART, namespace, ['--set', 'replicas=two'])).toThrow(/replicas/);
    expect(() => template(CHART, namespace, ['--set', 'monitoring.serviceMonitr.enabled=true'])).toThrow(
      /serviceMonitr/,
    );
    expect(() =>
      template(CHART, namespace, ['--set', 'replicas=2', '--set', 'leaderElection.enabled=false']),
    ).toThrow(/leaderElection\.enabled/);
  });

  it('renders the operator with default values, and the API server accepts every object', () => {
    const objects = template(CHART, namespace);
    expect(kindsOf(objects)).toEqual(
      [
        'ClusterRole',
        'ClusterRoleBinding',
        ...allCrds().map(() => 'CustomResourceDefinition'),
        'Deployment',
        'PodDisruptionBudget',
        'Service',
        'ServiceAccount',
        'ValidatingAdmissionPolicy',
        'ValidatingAdmissionPolicyBinding',
      ].sort(),
    );
    // The runtime Lease admission policy, named after the release, and bound to itself.
    const policy = only(objects, 'ValidatingAdmissionPolicy');
    expect(policy).toEqual(runtimeLeasePolicy(policy.metadata.name));
    expect(only(objects, 'ValidatingAdmissionPolicyBinding')).toEqual(
      runtimeLeasePolicyBinding(policy.metadata.name),
    );
    expect(policy.metadata.name).toMatch(/-runtime-leases$/);
    for (const crd of objects.filter((o) => o.kind === 'CustomResourceDefinition'))
      expect(crd.metadata.annotations?.['helm.sh/resource-policy']).toBe('keep');
    expect((only(objects, 'ClusterRole') as unknown as { rules: unknown }).rules).toEqual(
      OPERATOR_CLUSTER_ROLE_RULES,
    );
    expect(
      (only(objects, 'PodDisruptionBudget') as unknown as { spec: { minAvailable: number } }).spec
        .minAvailable,
    ).toBe(1);

    const deployment = only(objects, 'Deployment');
    const shape = deployment as unknown as DeploymentShape;
    expect(shape.spec.replicas).toBe(2);
    const pod = shape.spec.template.spec;
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    const container = operatorContainer(deployment);
    expect(container.image).toBe('ghcr.io/tdlib-operator/tdlib-operator:0.1.0');
    expect(container.args).toEqual(['operator']);
    expect(container.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
    expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'health' });
    expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'health' });
    const ports = Object.fromEntries(container.ports.map((p) => [p.name, p.containerPort]));
    expect(ports).toEqual({
      metrics: operatorConfigSchema.METRICS_PORT.default,
      health: operatorConfigSchema.HEALTH_PORT.default,
    });

    // Every variable the chart sets is one the operator reads, and the operator accepts the values.
    const env = envOf(deployment);
    for (const e of container.env) expect(Object.keys(operatorConfigSchema)).toContain(e.name);
    const config = loadOperatorConfig(env);
    expect(config.LEADER_ELECT).toBe(true);
    expect(config.RUNTIME_IMAGE).toBe(container.image);
    expect(config.RUNTIME_BACKEND).toBe('native');
    expect(container.env.find((e) => e.name === 'POD_NAME')?.valueFrom).toEqual({
      fieldRef: { fieldPath: 'metadata.name' },
    });

    expectAccepted(objects);
  });

  it('renders every option, and the API server accepts every object (prometheus-operator CRDs installed)', () => {
    const values = valuesFile('all-options', allOptions);
    const objects = template(CHART, namespace, ['-f', values]);
    expect(kindsOf(objects)).toEqual(
      expect.arrayContaining([
        'ServiceMonitor',
        'PodMonitor',
        'PrometheusRule',
        'ConfigMap',
        'NetworkPolicy',
      ]),
    );
    const deployment = only(objects, 'Deployment');
    const env = envOf(deployment);
    const config = loadOperatorConfig(env);
    expect(config).toMatchObject({
      WATCH_NAMESPACE: 'team-a',
      WORKERS: 4,
      LOG_LEVEL: 'debug',
      LEASE_DURATION_SECONDS: 20,
      METRICS_PORT: 9090,
      HEALTH_PORT: 9091,
      RUNTIME_IMAGE: 'registry.example/tdlib-runtime:9.9.8',
      RUNTIME_BACKEND: 'simulator',
      RUNTIME_ACCOUNTS_PER_POD: 40,
      RUNTIME_MIN_REPLICAS: 2,
      RUNTIME_MAX_REPLICAS: 9,
      RUNTIME_POD_START_TIMEOUT_SECONDS: 300,
      RUNTIME_STORAGE_SIZE: '5Gi',
      RUNTIME_STORAGE_CLASS: 'fast',
    });
    expect(env.NODE_OPTIONS).toBe('--max-old-space-size=400');
    expect(operatorContainer(deployment).image).toBe('registry.example/tdlib-operator:9.9.9');
    const podMonitor = only(objects, 'PodMonitor') as unknown as {
      spec: { selector: unknown; namespaceSelector: unknown; podMetricsEndpoints: Array<{ port: string }> };
    };
    // The labels and port name operator/pool/desired.ts gives runtime pods.
    expect(podMonitor.spec.selector).toEqual({
      matchLabels: {
        'app.kubernetes.io/name': 'tdlib-runtime',
        'app.kubernetes.io/managed-by': 'tdlib-operator',
      },
    });
    expect(podMonitor.spec.namespaceSelector).toEqual({ matchNames: ['team-a'] });
    expect(podMonitor.spec.podMetricsEndpoints[0]?.port).toBe('http');
    const serviceMonitor = only(objects, 'ServiceMonitor') as unknown as {
      spec: { endpoints: Array<{ port: string }> };
    };
    expect(serviceMonitor.spec.endpoints[0]?.port).toBe('metrics');
    const service = only(objects, 'Service') as unknown as { spec: { ports: Array<{ name: string }> } };
    expect(service.spec.ports[0]?.name).toBe('metrics');
    expect(only(objects, 'ConfigMap').metadata.labels?.grafana_dashboard).toBe('1');
    // Whatever the chart ships in prometheus_rules/ and dashboards/ (possibly nothing yet) is in them.
    const shipped = (dir: string, ext: string): string[] =>
      existsSync(join(CHART, dir)) ? readdirSync(join(CHART, dir)).filter((f) => f.endsWith(ext)) : [];
    const rules = only(objects, 'PrometheusRule') as unknown as {
      spec: { groups: Array<{ rules: Values[] }> };
    };
    expect(rules.spec.groups[0]?.rules).toHaveLength(shipped('prometheus_rules', '.yaml').length);
    const data = (only(objects, 'ConfigMap') as unknown as { data: Record<string, string> }).data;
    expect(Object.keys(data).sort()).toEqual(shipped('dashboards', '.json').sort());

    expectAccepted(objects);
  });

  it('renders the send API gateway when asked (and the API server accepts it), never without a TLS Secret', () => {
    expect(() => template(CHART, namespace, ['--set', 'sendApi.enabled=true'])).toThrow(
      /sendApi\.tls\.secretName/,
    );
    const objects = template(CHART, namespace, [
      '--set',
      'sendApi.enabled=true',
      '--set',
      'sendApi.tls.secretName=gateway-tls',
    ]);
    const gateway = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'tdlib-send-gateway');
    const pod = (gateway as unknown as DeploymentShape | undefined)?.spec.template;
    // The pools' NetworkPolicy (operator/pool/desired.ts) admits pods by this label in the operator's namespace.
    expect(
      (gateway as unknown as { spec: { template: { metadata: { labels: Values } } } }).spec.template.metadata
        .labels['app.kubernetes.io/name'],
    ).toBe('tdlib-send-gateway');
    expect((pod?.spec.containers[0] as { args?: string[] } | undefined)?.args).toEqual(['gateway']);
    const roles = objects.filter((o) => o.kind === 'ClusterRole').map((o) => o.metadata.name);
    expect(roles).toContain(`${release}-tdlib-operator-send-gateway`);
    expect(
      objects
        .filter((o) => o.metadata.name === 'tdlib-send-gateway')
        .map((o) => o.kind)
        .sort(),
    ).toEqual(['Deployment', 'Service', 'ServiceAccount']);
    expectAccepted(objects);
  });

  it('wraps prometheus_rules/*.yaml into one group verbatim (Prometheus templates untouched), empty or not', () => {
    const values = valuesFile('all-options', allOptions);
    const withRules = template(chartCopy(FIXTURE_RULES, { 'fixture.json': FIXTURE_DASHBOARD }), namespace, [
      '-f',
      values,
    ]);
    const rule = only(withRules, 'PrometheusRule') as unknown as {
      spec: { groups: Array<{ name: string; rules: Values[] }> };
    };
    expect(rule.spec.groups).toHaveLength(1);
    expect(rule.spec.groups[0]?.rules).toEqual(Object.values(FIXTURE_RULES));
    const dashboards = only(withRules, 'ConfigMap') as unknown as { data: Record<string, string> };
    expect(dashboards.data).toEqual({ 'fixture.json': FIXTURE_DASHBOARD });
    expectAccepted(withRules);

    const excluded = template(chartCopy(FIXTURE_RULES, {}), namespace, [
      '-f',
      values,
      '--set',
      'monitoring.prometheusRule.excludeRules={TDLibFixtureA}',
    ]);
    const left = only(excluded, 'PrometheusRule') as unknown as {
      spec: { groups: Array<{ rules: Values[] }> };
    };
    expect(left.spec.groups[0]?.rules.map((r) => r.alert)).toEqual(['TDLibFixtureB']);

    const broken = chartCopy({}, {});
    writeFileSync(join(broken, 'prometheus_rules', 'Broken.yaml'), '- alert: A\n- alert: B\n');
    expect(() => template(broken, namespace, ['-f', values])).toThrow(
      /prometheus_rules\/Broken.yaml must hold one rule/,
    );

    const empty = template(chartCopy({}, {}), namespace, ['-f', values]);
    const none = only(empty, 'PrometheusRule') as unknown as { spec: { groups: Array<{ rules: Values[] }> } };
    expect(none.spec.groups[0]?.rules).toEqual([]);
    expect((only(empty, 'ConfigMap') as unknown as { data: unknown }).data).toEqual({});
    expectAccepted(empty);
  });

  it('config/default (kustomize) installs the same operator as the chart with default values', async () => {
    const system = 'tdlib-operator-system';
    await core.createNamespace({ body: { metadata: { name: system } } }).catch((error: unknown) => {
      if (!(error instanceof k8s.ApiException && error.code === 409)) throw error;
    });
    const kustomized = objectsOf(run('kubectl', ['kustomize', resolve('config/default')]));
    const charted = template(CHART, system, [], 'tdlib-operator');
    // Labels that only say who rendered it.
    const strip = (o: KubeObject): unknown =>
      JSON.parse(JSON.stringify(o), (key: string, value: unknown) =>
        key === 'helm.sh/chart' || key === 'app.kubernetes.io/managed-by' ? undefined : value,
      );
    for (const kind of ['Deployment', 'Service', 'PodDisruptionBudget'])
      expect({ kind, object: strip(only(kustomized, kind)) }).toEqual({
        kind,
        object: strip(only(charted, kind)),
      });
    expect((only(kustomized, 'ClusterRole') as unknown as { rules: unknown }).rules).toEqual(
      OPERATOR_CLUSTER_ROLE_RULES,
    );
    const binding = only(kustomized, 'ClusterRoleBinding') as unknown as { subjects: unknown };
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'tdlib-operator', namespace: system }]);
    expect(
      kustomized
        .filter((o) => o.kind === 'CustomResourceDefinition')
        .map((o) => o.metadata.name)
        .sort(),
    ).toEqual(
      allCrds()
        .map((c) => (c.metadata as { name: string }).name)
        .sort(),
    );
    expectAccepted(kustomized.filter((o) => o.kind !== 'Namespace'));
  });

  describe('helm install, the operator with the chart RBAC, helm upgrade, helm uninstall', () => {
    let operator: OperatorProcess | undefined;
    let apps_namespace = '';

    afterAll(async () => {
      await operator?.stop();
    });

    it('installs into a fresh namespace (the CRDs already there are adopted)', () => {
      // CRDs applied before (here: by the other suites) belong to no release; a user moving to the chart marks
      // them for adoption, as Helm requires, and the chart then manages them.
      for (const crd of allCrds()) {
        const name = `crd/${(crd.metadata as { name: string }).name}`;
        run('kubectl', [
          '--kubeconfig',
          kubeconfig,
          'label',
          name,
          'app.kubernetes.io/managed-by=Helm',
          '--overwrite',
        ]);
        run('kubectl', [
          '--kubeconfig',
          kubeconfig,
          'annotate',
          name,
          `meta.helm.sh/release-name=${release}`,
          `meta.helm.sh/release-namespace=${namespace}`,
          '--overwrite',
        ]);
      }
      const out = helm(['install', release, CHART, '-n', namespace]);
      // NOTES.txt: what to do next.
      expect(out).toContain(`kubectl -n ${namespace} rollout status deployment/${fullname}`);
      expect(out).toContain('kubectl telegram login <account>');
      const status = JSON.parse(helm(['status', release, '-n', namespace, '-o', 'json'])) as {
        info: { status: string };
      };
      expect(status.info.status).toBe('deployed');
    });

    it('creates the Deployment, ServiceAccount, ClusterRole and binding, PDB and metrics Service', async () => {
      const deployment = await apps.readNamespacedDeployment({ namespace, name: fullname });
      expect(deployment.spec?.replicas).toBe(2);
      await core.readNamespacedServiceAccount({ namespace, name: fullname });
      await core.readNamespacedService({ namespace, name: `${fullname}-metrics` });
      const role = await rbac.readClusterRole({ name: fullname });
      expect(role.metadata?.labels?.['app.kubernetes.io/instance']).toBe(release);
      const binding = await rbac.readClusterRoleBinding({ name: fullname });
      expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: fullname, namespace }]);
      const pdb = await kc
        .makeApiClient(k8s.PolicyV1Api)
        .readNamespacedPodDisruptionBudget({ namespace, name: fullname });
      expect(pdb.spec?.minAvailable).toBe(1);
    });

    it("the operator running with the chart's ServiceAccount token and settings reconciles a TelegramAccount", async () => {
      apps_namespace = await createTestNamespace(kc, 'chart-apps');
      const deployment = await apps.readNamespacedDeployment({ namespace, name: fullname });
      const env = Object.fromEntries(
        (deployment.spec?.template.spec?.containers[0]?.env ?? [])
          .filter((e) => e.value !== undefined)
          .map((e) => [e.name, e.value ?? '']),
      );
      operator = startOperatorProcess(await serviceAccountKubeconfig(kc, namespace, fullname), {
        ...env,
        // What the downward API gives a pod; the ports are free ones on this machine.
        POD_NAME: `${fullname}-test`,
        OPERATOR_NAMESPACE: namespace,
        WATCH_NAMESPACE: apps_namespace,
        METRICS_PORT: '0',
        HEALTH_PORT: '0',
      });
      for (const [name, data] of [
        ['telegram-api', { api_id: '12345', api_hash: '0123456789abcdef0123456789abcdef' }],
        ['news-bot-token', { token: '123456:AAAA-test-token' }],
      ] as const)
        await core.createNamespacedSecret({
          namespace: apps_namespace,
          body: { metadata: { name, labels: SECRET_OPT_IN }, stringData: data },
        });
      const sample = parse(readFileSync('config/samples/telegramaccount-bot.yaml', 'utf8')) as KubeObject;
      await custom.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: apps_namespace,
        plural: 'telegramaccounts',
        body: sample,
      });
      const account = await waitFor(
        'news-bot placed, with status.observedGeneration',
        async () => {
          const a = await getTelegramAccount(custom, apps_namespace, 'news-bot');
          const scheduled = a.status?.conditions?.find((c) => c.type === 'Scheduled');
          return a.status?.observedGeneration === a.metadata.generation && scheduled?.status === 'True'
            ? a
            : undefined;
        },
        { timeoutMs: 30_000, onTimeout: () => operator?.rawOutput().slice(-4000) ?? '' },
      );
      expect(account.status?.placement).toEqual({ pool: 'default', pod: 'tdlib-runtime-default-0' });
      // It created the runtime pool, granting its pods a Role (allowed only because it holds those rights).
      const sts = await apps.readNamespacedStatefulSet({
        namespace: apps_namespace,
        name: 'tdlib-runtime-default',
      });
      expect(sts.spec?.template.spec?.containers[0]?.image).toBe(
        'ghcr.io/tdlib-operator/tdlib-operator:0.1.0',
      );
      await rbac.readNamespacedRole({ namespace: apps_namespace, name: 'tdlib-runtime-default' });
      // Leader election in the release namespace, under the pod's identity.
      const lease = await kc
        .makeApiClient(k8s.CoordinationV1Api)
        .readNamespacedLease({ namespace, name: 'tdlib-operator-leader' });
      expect(lease.spec?.holderIdentity).toBe(`${fullname}-test`);
      const forbidden = operator.logs.filter((l) => JSON.stringify(l).includes('forbidden'));
      expect(forbidden).toEqual([]);
      expect(await operator.stop()).toBe(0);
      operator = undefined;
    });

    it('helm upgrade changes the Deployment', async () => {
      helm([
        'upgrade',
        release,
        CHART,
        '-n',
        namespace,
        '--set',
        'replicas=3',
        '--set',
        'runtime.accountsPerPod=7',
        '--set',
        'runtime.backend=simulator',
      ]);
      const deployment = await apps.readNamespacedDeployment({ namespace, name: fullname });
      expect(deployment.spec?.replicas).toBe(3);
      const env = deployment.spec?.template.spec?.containers[0]?.env ?? [];
      expect(env.find((e) => e.name === 'RUNTIME_ACCOUNTS_PER_POD')?.value).toBe('7');
      expect(env.find((e) => e.name === 'RUNTIME_BACKEND')?.value).toBe('simulator');
      const history = JSON.parse(helm(['history', release, '-n', namespace, '-o', 'json'])) as unknown[];
      expect(history).toHaveLength(2);
    });

    it('helm uninstall removes the operator but keeps the CRDs and the TelegramAccounts', async () => {
      helm(['uninstall', release, '-n', namespace]);
      await waitFor(
        'the Deployment gone',
        async () =>
          apps.readNamespacedDeployment({ namespace, name: fullname }).then(
            () => undefined,
            (error: unknown) => (error instanceof k8s.ApiException && error.code === 404 ? true : undefined),
          ),
        { timeoutMs: 30_000 },
      );
      await expect(rbac.readClusterRole({ name: fullname })).rejects.toMatchObject({ code: 404 });
      for (const crd of allCrds()) {
        const kept = await apiext.readCustomResourceDefinition({
          name: (crd.metadata as { name: string }).name,
        });
        expect(kept.metadata?.deletionTimestamp).toBeUndefined();
      }
      const account = await getTelegramAccount(custom, apps_namespace, 'news-bot');
      expect(account.metadata.deletionTimestamp).toBeUndefined();
      expect(account.status?.placement?.pod).toBe('tdlib-runtime-default-0');
    });
  });
});
