import { loadEnvConfig, type EnvConfig } from '../operator/kube/env-config.js';

export const runtimeConfigSchema = {
  POD_NAME: {
    type: 'string',
    description: 'this runtime pod (downward API); accounts placed on it carry it as a label',
  },
  POD_NAMESPACE: { type: 'string', description: 'namespace of this runtime pod and its accounts' },
  POD_UID: {
    type: 'string',
    description: 'UID of this runtime pod (downward API): part of the session fence holder identity',
  },
  RUNTIME_POOL: { type: 'string', description: 'runtime pool of this pod', default: 'default' },
  POD_IP: {
    type: 'string',
    description:
      'IP of this pod (downward API): the runtime advertises http://POD_IP:HTTP_PORT/metrics on its heartbeat Lease for rollout analysis',
    default: '',
  },
  RUNTIME_METRICS_URL: {
    type: 'string',
    description: 'the /metrics address to advertise instead of the one built from POD_IP',
    default: '',
  },
  RUNTIME_MEMORY_LIMIT_BYTES: {
    type: 'string',
    description:
      "the container's memory limit (downward API limits.memory), used when the cgroup files do not tell",
    default: '',
  },
  KUBECONFIG: { type: 'string', description: 'kubeconfig file; in a pod the in-cluster config is used' },
  TDLIB_ENABLED: {
    type: 'boolean',
    description: 'run TDLib clients; false hosts accounts without starting them',
    default: true,
  },
  TDLIB_BACKEND: {
    type: 'string',
    description: 'native (libtdjson) or simulator',
    default: 'native',
    enum: ['native', 'simulator'],
  },
  TDLIB_ADDON_PATH: { type: 'string', description: 'the compiled addon (.node) or libtdjson.so to load' },
  TDLIB_LIBRARY_PATH: { type: 'string', description: 'libtdjson.so to load' },
  TDLIB_SIMULATOR_WORLD: { type: 'string', description: 'world directory of the simulator backend' },
  TDLIB_SIMULATOR_WORLD_FILE: {
    type: 'string',
    description:
      "this process's own world file (same world, other network conditions) instead of the world directory's",
    default: '',
  },
  TDLIB_DATA_DIR: {
    type: 'string',
    description: 'where TDLib databases live (the pod volume)',
    default: '/var/lib/tdlib',
  },
  TDLIB_SESSION_TTL_SECONDS: {
    type: 'integer',
    description: 'local session data not used for this long is removed from the pod volume',
    default: 604800,
    minimum: 60,
  },
  TDLIB_UPDATE_POLLING_ENABLED: {
    type: 'boolean',
    description: 'receive TDLib updates (the receive thread always runs; false only drops non-login updates)',
    default: true,
  },
  TDLIB_POLL_INTERVAL_MS: {
    type: 'integer',
    description: 'td_receive wait when idle, in ms',
    default: 100,
    minimum: 1,
    maximum: 10000,
  },
  HTTP_PORT: {
    type: 'integer',
    description: 'port of /healthz, /readyz and /metrics',
    default: 8080,
    minimum: 0,
    maximum: 65535,
  },
  RUNTIME_LEASE_SECONDS: {
    type: 'integer',
    description: 'duration of the account and pod Leases',
    default: 15,
    minimum: 2,
    maximum: 300,
  },
  RUNTIME_WORKERS: {
    type: 'integer',
    description: 'accounts reconciled at once (each step is short: TDLib requests run in the background)',
    default: 16,
    minimum: 1,
    maximum: 256,
  },
  SHUTDOWN_TIMEOUT_SECONDS: {
    type: 'integer',
    description: 'budget for closing every client on SIGTERM',
    default: 45,
    minimum: 1,
    maximum: 3600,
  },
  SEND_PORT: {
    type: 'integer',
    description: 'port of the send API’s last hop (the pool sets 8444; 0 picks a free one, for local runs)',
    default: 0,
    minimum: 0,
    maximum: 65535,
  },
  RUNTIME_SEND_URL: {
    type: 'string',
    description: 'the send endpoint address to advertise instead of the one built from POD_IP',
    default: '',
  },
  SEND_GATEWAY_SERVICE_ACCOUNT: {
    type: 'string',
    description:
      'the send API gateway’s identity (system:serviceaccount:<namespace>:<name>): the only caller of the runtime’s send endpoint',
    default: 'system:serviceaccount:tdlib-operator-system:tdlib-send-gateway',
  },
  RUNTIME_TEST_KILL_AFTER_SEND_ACCEPT: {
    type: 'boolean',
    description: 'TESTS ONLY: SIGKILL this process once a send is accepted, before TDLib sends it',
    default: false,
  },
  UPDATES_ALLOW_LOOPBACK: {
    type: 'boolean',
    description:
      'LOCAL DEVELOPMENT ONLY: let update sinks resolve to loopback addresses (never link-local or metadata)',
    default: false,
  },
  RUNTIME_UNSAFE_DISABLE_FENCE: {
    type: 'boolean',
    description: 'TESTS ONLY: run clients without the account Lease',
    default: false,
  },
  LOG_LEVEL: {
    type: 'string',
    description: 'pino log level',
    default: 'info',
    enum: ['trace', 'debug', 'info', 'warn', 'error', 'fatal'],
  },
} as const;

export type RuntimeConfig = EnvConfig<typeof runtimeConfigSchema>;

export function loadRuntimeConfig(
  env: NodeJS.ProcessEnv = process.env,
): RuntimeConfig & { POD_NAME: string; POD_NAMESPACE: string } {
  const config = loadEnvConfig(runtimeConfigSchema, env);
  const missing = (['POD_NAME', 'POD_NAMESPACE'] as const).filter((k) => !config[k]);
  if (missing.length > 0)
    throw new Error(
      `invalid configuration:\n  ${missing.map((k) => `${k} is required — ${runtimeConfigSchema[k].description}`).join('\n  ')}`,
    );
  if (config.TDLIB_BACKEND === 'simulator' && !config.TDLIB_SIMULATOR_WORLD)
    throw new Error(
      'invalid configuration:\n  TDLIB_SIMULATOR_WORLD is required when TDLIB_BACKEND=simulator',
    );
  return config as RuntimeConfig & { POD_NAME: string; POD_NAMESPACE: string };
}
