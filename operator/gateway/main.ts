/**
 * The send API gateway process (a Deployment of its own, any number of replicas, no leader): caches of
 * TelegramAccounts and runtime heartbeat Leases, and the HTTPS server of server.ts.
 */
import { readFileSync } from 'node:fs';
import { LABEL_MANAGED_BY, type TelegramAccount } from '../../crds/index.js';
import { TelegramAccountResource } from '../../crds/resources.js';
import { RestClient, loadKubeConfig } from '../kube/client.js';
import { ConfigError, loadEnvConfig } from '../kube/env-config.js';
import { createLogger } from '../kube/logging.js';
import { createRegistry } from '../kube/metrics.js';
import { Informer } from '../kube/reflector.js';
import { Resources, type ApiObject } from '../kube/resource.js';
import { SendAuthorizer, TokenAuthenticator } from './access.js';
import { startGateway, tokenFile } from './server.js';

export const gatewayConfigSchema = {
  KUBECONFIG: { type: 'string', description: 'kubeconfig file; in a pod the in-cluster config is used' },
  WATCH_NAMESPACE: { type: 'string', description: 'one namespace to serve, or all when empty', default: '' },
  GATEWAY_PORT: { type: 'integer', description: 'HTTPS port', default: 8443, minimum: 0, maximum: 65535 },
  GATEWAY_TLS_CERT_FILE: { type: 'string', description: 'serving certificate (PEM)', default: '' },
  GATEWAY_TLS_KEY_FILE: { type: 'string', description: 'serving key (PEM)', default: '' },
  GATEWAY_INSECURE_HTTP: {
    type: 'boolean',
    description: 'LOCAL DEVELOPMENT ONLY: serve plain HTTP when no certificate is given',
    default: false,
  },
  GATEWAY_RUNTIME_TOKEN_FILE: {
    type: 'string',
    description:
      'the gateway ServiceAccount token for the audience tdlib-operator-runtime (a projected volume)',
    default: '/var/run/secrets/tdlib-operator/runtime/token',
  },
  LOG_LEVEL: {
    type: 'string',
    description: 'pino log level',
    default: 'info',
    enum: ['trace', 'debug', 'info', 'warn', 'error', 'fatal'],
  },
} as const;

async function main(): Promise<void> {
  const config = loadEnvConfig(gatewayConfigSchema, process.env);
  if (!config.GATEWAY_INSECURE_HTTP && (!config.GATEWAY_TLS_CERT_FILE || !config.GATEWAY_TLS_KEY_FILE))
    throw new ConfigError([
      'GATEWAY_TLS_CERT_FILE and GATEWAY_TLS_KEY_FILE are required (the send API carries bearer tokens); GATEWAY_INSECURE_HTTP=true serves plain HTTP for local development only',
    ]);
  const logger = createLogger({ name: 'tdlib-send-gateway', level: config.LOG_LEVEL });
  const registry = createRegistry();
  const rest = new RestClient(loadKubeConfig(config.KUBECONFIG), {
    registry,
    logger,
    userAgent: 'tdlib-send-gateway',
  });
  const namespace = config.WATCH_NAMESPACE === '' ? undefined : config.WATCH_NAMESPACE;
  const accounts = new Informer<TelegramAccount>(rest, TelegramAccountResource, {
    name: 'telegramaccounts',
    namespace,
    logger,
    registry,
  });
  const leases = new Informer<ApiObject>(rest, Resources.Lease, {
    name: 'runtime-leases',
    namespace,
    labelSelector: `${LABEL_MANAGED_BY}=tdlib-runtime`,
    logger,
    registry,
  });
  accounts.start();
  leases.start();
  if (!(await accounts.waitForSync()) || !(await leases.waitForSync()))
    throw new Error('caches did not sync');
  const gateway = await startGateway({
    port: config.GATEWAY_PORT,
    authn: new TokenAuthenticator(rest),
    authz: new SendAuthorizer(rest),
    account: (ns, name) => accounts.get(ns, name),
    heartbeat: (ns, pod) => leases.get(ns, pod),
    runtimeToken: tokenFile(config.GATEWAY_RUNTIME_TOKEN_FILE),
    ...(config.GATEWAY_TLS_CERT_FILE
      ? {
          tls: {
            cert: readFileSync(config.GATEWAY_TLS_CERT_FILE, 'utf8'),
            key: readFileSync(config.GATEWAY_TLS_KEY_FILE, 'utf8'),
          },
        }
      : {}),
    logger,
  });
  logger.info({ port: gateway.port, tls: Boolean(config.GATEWAY_TLS_CERT_FILE) }, 'send API gateway started');
  const stop = (): void => {
    void Promise.all([gateway.close(), accounts.stop(), leases.stop()]).then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`tdlib-send-gateway: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(error instanceof ConfigError ? 2 : 1);
});
