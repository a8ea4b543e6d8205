/**
 * The chart's values.schema.json: the shipped values.yaml passes it, bad values are refused with an error that
 * names the field, every key is typed and described, and the keys that become operator environment variables
 * allow exactly what the operator itself accepts (operator/config.ts), with the same defaults.
 */
import { readFileSync } from 'node:fs';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { parse } from 'yaml';
import { operatorConfigSchema } from '../../../operator/config.js';
import type { EnvKey } from '../../../operator/kube/env-config.js';

const CHART = 'charts/tdlib-operator';

interface SchemaNode {
  type?: string | string[];
  description?: string;
  properties?: Record<string, SchemaNode>;
  additionalProperties?: boolean | SchemaNode;
  items?: SchemaNode;
  minimum?: number;
  maximum?: number;
  enum?: unknown[];
  pattern?: string;
}
type Values = Record<string, unknown>;

const schema = JSON.parse(readFileSync(`${CHART}/values.schema.json`, 'utf8')) as SchemaNode & {
  $schema: string;
};
const defaults = (): Values => parse(readFileSync(`${CHART}/values.yaml`, 'utf8')) as Values;

let validate: ValidateFunction;
beforeAll(() => {
  // strict: a keyword the schema misspells (or that draft-07 lacks) is an error, not silently ignored.
  validate = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true }).compile(schema);
});

/** The values.yaml defaults with `path` (dot-separated) set to `value`. */
function withValue(path: string, value: unknown): Values {
  const values = defaults();
  const keys = path.split('.');
  let node = values;
  for (const key of keys.slice(0, -1)) node = node[key] as Values;
  node[keys[keys.length - 1] as string] = value;
  return values;
}

/** The schema node at a dot-separated values path. */
function nodeAt(path: string): SchemaNode {
  let node: SchemaNode | undefined = schema;
  for (const key of path.split('.')) node = node?.properties?.[key];
  if (!node) throw new Error(`values.schema.json has no ${path}`);
  return node;
}

const errorsOf = (values: Values): ErrorObject[] => (validate(values) ? [] : [...(validate.errors ?? [])]);

describe('charts/tdlib-operator/values.schema.json', () => {
  it('is draft-07 and accepts the shipped values.yaml', () => {
    expect(schema.$schema).toBe('http://json-schema.org/draft-07/schema#');
    expect(errorsOf(defaults())).toEqual([]);
  });

  it.each([
    ['replicas', 'two', '/replicas', 'type'],
    ['replicas', -1, '/replicas', 'minimum'],
    ['workers', 0, '/workers', 'minimum'],
    ['logLevel', 'verbose', '/logLevel', 'enum'],
    ['image.pullPolicy', 'Sometimes', '/image/pullPolicy', 'enum'],
    ['runtime.backend', 'tdlib', '/runtime/backend', 'enum'],
    ['runtime.accountsPerPod', '100', '/runtime/accountsPerPod', 'type'],
    ['runtime.storage.size', '1GB', '/runtime/storage/size', 'pattern'],
    ['leaderElection.enabled', 'yes', '/leaderElection/enabled', 'type'],
    ['ports.metrics', 70000, '/ports/metrics', 'maximum'],
    ['monitoring.serviceMonitor.interval', 'often', '/monitoring/serviceMonitor/interval', 'pattern'],
    [
      'monitoring.prometheusRule.excludeRules',
      'TDLibHighLatency',
      '/monitoring/prometheusRule/excludeRules',
      'type',
    ],
    ['podAnnotations', { a: 1 }, '/podAnnotations/a', 'type'],
  ])('refuses %s = %j, naming the field', (path, value, instancePath, keyword) => {
    const errors = errorsOf(withValue(path, value));
    expect(errors.map((e) => `${e.instancePath} ${e.keyword}`)).toContain(`${instancePath} ${keyword}`);
  });

  it.each([
    ['monitoring.serviceMonitr', '/monitoring'],
    ['monitoring.podMonitor.enable', '/monitoring/podMonitor'],
    ['runtime.accountPerPod', '/runtime'],
    ['replicaCount', ''],
  ])('refuses the unknown key %s, naming it', (path, instancePath) => {
    const errors = errorsOf(withValue(path, true));
    const unknown = path.split('.').pop();
    expect(errors).toContainEqual(
      expect.objectContaining({
        instancePath,
        keyword: 'additionalProperties',
        params: { additionalProperty: unknown },
      }),
    );
  });

  it('types and describes every key, and knows every key of values.yaml', () => {
    const problems: string[] = [];
    const walk = (node: SchemaNode, path: string): void => {
      if (node.type === undefined) problems.push(`${path}: no type`);
      if (!node.description) problems.push(`${path}: no description`);
      for (const [key, child] of Object.entries(node.properties ?? {})) walk(child, `${path}.${key}`);
    };
    for (const [key, child] of Object.entries(schema.properties ?? {})) walk(child, key);
    const unknown = (values: Values, node: SchemaNode, path: string): void => {
      for (const [key, value] of Object.entries(values)) {
        const child = node.properties?.[key];
        if (!child) {
          if (node.additionalProperties === false || node.properties)
            problems.push(`${path}${key}: in values.yaml, not in the schema`);
          continue;
        }
        if (value && typeof value === 'object' && !Array.isArray(value) && child.properties)
          unknown(value as Values, child, `${path}${key}.`);
      }
    };
    unknown(defaults(), schema, '');
    expect(problems).toEqual([]);
  });

  // Chart value -> the operator environment variable the Deployment sets from it (templates/deployment.yaml).
  const envOf: Array<[string, keyof typeof operatorConfigSchema]> = [
    ['watchNamespace', 'WATCH_NAMESPACE'],
    ['workers', 'WORKERS'],
    ['logLevel', 'LOG_LEVEL'],
    ['leaderElection.enabled', 'LEADER_ELECT'],
    ['leaderElection.leaseDurationSeconds', 'LEASE_DURATION_SECONDS'],
    ['leaderElection.renewDeadlineSeconds', 'RENEW_DEADLINE_SECONDS'],
    ['leaderElection.retryPeriodSeconds', 'RETRY_PERIOD_SECONDS'],
    ['ports.metrics', 'METRICS_PORT'],
    ['ports.health', 'HEALTH_PORT'],
    ['runtime.backend', 'RUNTIME_BACKEND'],
    ['runtime.accountsPerPod', 'RUNTIME_ACCOUNTS_PER_POD'],
    ['runtime.minReplicas', 'RUNTIME_MIN_REPLICAS'],
    ['runtime.maxReplicas', 'RUNTIME_MAX_REPLICAS'],
    ['runtime.podStartTimeoutSeconds', 'RUNTIME_POD_START_TIMEOUT_SECONDS'],
    ['runtime.storage.size', 'RUNTIME_STORAGE_SIZE'],
    ['runtime.storage.storageClass', 'RUNTIME_STORAGE_CLASS'],
    ['runtime.resources', 'RUNTIME_RESOURCES'],
    ['runtime.nodeSelector', 'RUNTIME_NODE_SELECTOR'],
    ['runtime.tolerations', 'RUNTIME_TOLERATIONS'],
    ['runtime.extraEnv', 'RUNTIME_EXTRA_ENV'],
    ['runtime.extraVolumes', 'RUNTIME_EXTRA_VOLUMES'],
    ['runtime.extraVolumeMounts', 'RUNTIME_EXTRA_VOLUME_MOUNTS'],
  ];

  it.each(envOf)('%s allows what the operator accepts for %s, with its default', (path, env) => {
    const node = nodeAt(path);
    const key: EnvKey = operatorConfigSchema[env];
    expect(node.type).toBe(key.type);
    expect(node.enum).toEqual(key.enum);
    // The chart may check more (a namespace name), never less.
    if (key.pattern !== undefined) expect(node.pattern).toBe(key.pattern);
    expect(node.maximum).toEqual(key.maximum);
    // A pod needs a fixed port; the operator also takes 0 (any free port) for tests.
    expect(node.minimum).toEqual(env.endsWith('_PORT') ? 1 : key.minimum);
    let value: unknown = defaults();
    for (const part of path.split('.')) value = (value as Values)[part];
    // JSON keys have no default in the operator: the chart's empty list or map means "not set".
    if (key.type === 'array' || key.type === 'object') expect(value).toEqual(key.type === 'array' ? [] : {});
    else expect(value).toEqual(key.default);
  });
});
