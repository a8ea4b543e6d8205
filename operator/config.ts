import { ConfigError, loadEnvConfig, type EnvConfig } from './kube/env-config.js';

export const operatorConfigSchema = {
  KUBECONFIG: { type: 'string', description: 'kubeconfig file; in a pod the in-cluster config is used' },
  POD_NAME: {
    type: 'string',
    description: 'identity in leader election (the downward API sets it)',
    default: '',
  },
  OPERATOR_NAMESPACE: {
    type: 'string',
    description: 'namespace of the leader-election Lease',
    default: 'tdlib-operator-system',
  },
  WATCH_NAMESPACE: {
    type: 'string',
    description: 'only manage accounts in this namespace; empty means all',
    default: '',
  },
  LEADER_ELECT: {
    type: 'boolean',
    description: 'run leader election (turn off only with one replica)',
    default: true,
  },
  LEASE_DURATION_SECONDS: {
    type: 'integer',
    description: 'leader Lease duration',
    default: 15,
    minimum: 2,
    maximum: 300,
  },
  RENEW_DEADLINE_SECONDS: {
    type: 'integer',
    description: 'leader gives up if it cannot renew within this',
    default: 10,
    minimum: 1,
    maximum: 300,
  },
  RETRY_PERIOD_SECONDS: {
    type: 'integer',
    description: 'leader election retry period',
    default: 2,
    minimum: 1,
    maximum: 60,
  },
  WORKERS: {
    type: 'integer',
    description: 'concurrent reconciles per controller',
    default: 32,
    minimum: 1,
    maximum: 64,
  },
  METRICS_PORT: {
    type: 'integer',
    description: 'port of /metrics',
    default: 8080,
    minimum: 0,
    maximum: 65535,
  },
  HEALTH_PORT: {
    type: 'integer',
    description: 'port of /healthz and /readyz',
    default: 8081,
    minimum: 0,
    maximum: 65535,
  },
  RUNTIME_IMAGE: {
    type: 'string',
    description: 'container image of runtime pods',
    default: 'ghcr.io/tdlib-operator/tdlib-operator:0.1.0',
  },
  RUNTIME_ACCOUNTS_PER_POD: {
    type: 'integer',
    description: 'capacity of one runtime pod',
    default: 100,
    minimum: 1,
    maximum: 10000,
  },
  RUNTIME_MIN_REPLICAS: {
    type: 'integer',
    description: 'smallest size of a pool that has accounts',
    default: 1,
    minimum: 0,
    maximum: 1000,
  },
  RUNTIME_MAX_REPLICAS: {
    type: 'integer',
    description: 'largest size of a pool',
    default: 50,
    minimum: 1,
    maximum: 1000,
  },
  RUNTIME_STORAGE_SIZE: {
    type: 'string',
    description:
      'volume claim size for TDLib databases, or "emptyDir" (sessions then live only in their backups)',
    default: '1Gi',
    pattern: '^(emptyDir|[0-9]+(Ki|Mi|Gi|Ti))$',
  },
  RUNTIME_STORAGE_CLASS: {
    type: 'string',
    description: 'storage class of the volume claims; empty means the default',
    default: '',
  },
  RUNTIME_POD_START_TIMEOUT_SECONDS: {
    type: 'integer',
    description:
      'a runtime pod with accounts placed on it whose heartbeat Lease no runtime process took for this long is declared dead and its accounts move (a pod stuck Pending, an unbound volume claim)',
    default: 120,
    minimum: 5,
    maximum: 3600,
  },
  RUNTIME_BACKEND: {
    type: 'string',
    description: 'TDLib backend of runtime pods',
    default: 'native',
    enum: ['native', 'simulator'],
  },
  RUNTIME_NODE_SELECTOR: {
    type: 'object',
    description: 'node selector of runtime pods, JSON (a pool object may set its own)',
  },
  RUNTIME_TOLERATIONS: {
    type: 'array',
    description: 'tolerations of runtime pods, JSON list (a pool object may set its own)',
  },
  RUNTIME_RESOURCES: {
    type: 'object',
    description:
      'resources of the runtime container, JSON {"requests":{...},"limits":{...}} (a pool object may set its own)',
  },
  RUNTIME_EXTRA_ENV: {
    type: 'array',
    description: 'extra environment variables of the runtime container, JSON list of EnvVar',
    // Values may be credentials written inline: never echoed in a configuration error.
    secret: true,
  },
  RUNTIME_EXTRA_VOLUMES: {
    type: 'array',
    description: 'extra volumes of runtime pods, JSON list of Volume',
  },
  RUNTIME_EXTRA_VOLUME_MOUNTS: {
    type: 'array',
    description: 'extra volume mounts of the runtime container, JSON list of VolumeMount',
  },
  LOG_LEVEL: {
    type: 'string',
    description: 'pino log level',
    default: 'info',
    enum: ['trace', 'debug', 'info', 'warn', 'error', 'fatal'],
  },
} as const;

export type OperatorConfig = EnvConfig<typeof operatorConfigSchema>;

/** Names and paths the operator's own runtime pod template uses; extras that reuse them would break it. */
export const RESERVED_RUNTIME_ENV = [
  'POD_NAME',
  'POD_NAMESPACE',
  'POD_UID',
  'POD_IP',
  'RUNTIME_MEMORY_LIMIT_BYTES',
  'RUNTIME_POOL',
  'TDLIB_BACKEND',
  'TDLIB_DATA_DIR',
];
export const RESERVED_RUNTIME_VOLUME = 'tdlib-data';
export const RESERVED_RUNTIME_MOUNT_PATH = '/var/lib/tdlib';

/** What the schema cannot say about the runtime pod extras: each problem names the key and the fix. */
export function runtimeExtrasProblems(config: OperatorConfig): string[] {
  const problems: string[] = [];
  const nameOf = (item: Record<string, unknown>, field: string): string =>
    typeof item[field] === 'string' ? (item[field] as string) : '';
  (config.RUNTIME_EXTRA_ENV ?? []).forEach((item, i) => {
    const name = nameOf(item, 'name');
    if (name === '') problems.push(`RUNTIME_EXTRA_ENV: item ${i} needs a "name"`);
    else if (RESERVED_RUNTIME_ENV.includes(name))
      problems.push(`RUNTIME_EXTRA_ENV: ${name} is set by the operator; remove it from the list`);
  });
  const volumes = new Set<string>();
  (config.RUNTIME_EXTRA_VOLUMES ?? []).forEach((item, i) => {
    const name = nameOf(item, 'name');
    if (name === '') problems.push(`RUNTIME_EXTRA_VOLUMES: item ${i} needs a "name"`);
    else if (name === RESERVED_RUNTIME_VOLUME)
      problems.push(
        `RUNTIME_EXTRA_VOLUMES: ${name} is the operator's TDLib data volume; choose another name`,
      );
    volumes.add(name);
  });
  (config.RUNTIME_EXTRA_VOLUME_MOUNTS ?? []).forEach((item, i) => {
    const name = nameOf(item, 'name');
    const path = nameOf(item, 'mountPath');
    if (name === '' || path === '')
      problems.push(`RUNTIME_EXTRA_VOLUME_MOUNTS: item ${i} needs a "name" and a "mountPath"`);
    else if (!volumes.has(name))
      problems.push(
        `RUNTIME_EXTRA_VOLUME_MOUNTS: ${name} names no volume of RUNTIME_EXTRA_VOLUMES; add the volume or fix the name`,
      );
    else if (path === RESERVED_RUNTIME_MOUNT_PATH || path.startsWith(`${RESERVED_RUNTIME_MOUNT_PATH}/`))
      problems.push(
        `RUNTIME_EXTRA_VOLUME_MOUNTS: ${path} is inside the TDLib data volume (${RESERVED_RUNTIME_MOUNT_PATH}); mount it elsewhere`,
      );
  });
  return problems;
}

export function loadOperatorConfig(env: NodeJS.ProcessEnv = process.env): OperatorConfig {
  const config = loadEnvConfig(operatorConfigSchema, env);
  const problems = runtimeExtrasProblems(config);
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}
