/** The runtime pod process: validate configuration, host the accounts placed on this pod, exit 0 on SIGTERM. */
import { RestClient, loadKubeConfig } from '../operator/kube/client.js';
import { EventRecorder } from '../operator/kube/events.js';
import { registerListenerMetrics } from '../operator/kube/listener-metrics.js';
import { createLogger } from '../operator/kube/logging.js';
import { createRegistry } from '../operator/kube/metrics.js';
import { RuntimeAgent } from './agent.js';
import { createBackend } from './backend.js';
import { loadRuntimeConfig } from './config.js';
import { cgroupMemoryLimitBytes, quantityBytes, registerRuntimeMetrics } from './metrics.js';
import { startRuntimeServer } from './server.js';
import { startSendServer } from './send-server.js';
import { GatewayTokenVerifier, type Jwks } from './sending/gateway-token.js';
import { TdClientManager } from './tdlib/client.js';
import { promRequestHooks, registerTdRequestMetrics } from './tdlib/metrics-hooks.js';
import { registerTdlibVersionMetric, tdlibVersion } from './tdlib/version.js';

const APPLICATION_VERSION = '0.1.0';

async function main(): Promise<void> {
  let config;
  try {
    config = loadRuntimeConfig();
  } catch (error) {
    process.stderr.write(`tdlib-runtime: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(2);
  }
  const logger = createLogger({ name: 'tdlib-runtime', level: config.LOG_LEVEL }).child({
    pod: config.POD_NAME,
  });
  if (!config.TDLIB_UPDATE_POLLING_ENABLED)
    logger.warn('TDLIB_UPDATE_POLLING_ENABLED=false: only login and connection updates are handled');
  const registry = createRegistry({ defaultMetrics: true });
  registerListenerMetrics(registry);
  const rest = new RestClient(loadKubeConfig(config.KUBECONFIG), {
    registry,
    logger,
    userAgent: `tdlib-runtime/${config.POD_NAME}`,
  });
  // Leases (the session fences and the pod heartbeat) get their own connections and request slots: a
  // renewal must never wait behind the bulk of a thousand clients starting, or the pod looks dead.
  const leaseRest = new RestClient(loadKubeConfig(config.KUBECONFIG), {
    registry: createRegistry(),
    logger,
    maxConcurrentRequests: 16,
    userAgent: `tdlib-runtime/${config.POD_NAME}/leases`,
  });
  const events = new EventRecorder(rest, {
    component: 'tdlib-runtime',
    host: config.POD_NAME,
    logger,
    registry,
  });
  const backend = await createBackend(config, logger);
  const tdlib = tdlibVersion(backend);
  registerTdlibVersionMetric(registry, backend.kind, tdlib);
  const manager = new TdClientManager(backend, {
    hooks: promRequestHooks(registerTdRequestMetrics(registry)),
  });
  const agent = new RuntimeAgent({
    rest,
    leaseRest,
    manager,
    events,
    logger,
    registry,
    config,
    applicationVersion: APPLICATION_VERSION,
  });
  registerRuntimeMetrics(
    registry,
    () => manager,
    () => agent,
    { memoryLimitBytes: () => cgroupMemoryLimitBytes() ?? quantityBytes(config.RUNTIME_MEMORY_LIMIT_BYTES) },
  );
  const gateway = new GatewayTokenVerifier({
    fetchJwks: () =>
      rest.request<Jwks>({ method: 'GET', path: '/openid/v1/jwks', accept: 'application/jwk-set+json' }),
    subject: config.SEND_GATEWAY_SERVICE_ACCOUNT,
  });
  const server = await startRuntimeServer({
    port: config.HTTP_PORT,
    registry,
    ready: () => agent.ready(),
  });
  const sendServer = await startSendServer({
    port: config.SEND_PORT,
    check: (token) => gateway.check(token),
    of: (namespace, name) =>
      agent.hosted.get(`${namespace}/${name}`)?.directSends() ?? Promise.resolve(undefined),
  });
  const metricsUrl =
    config.RUNTIME_METRICS_URL ||
    (config.POD_IP
      ? `http://${config.POD_IP.includes(':') ? `[${config.POD_IP}]` : config.POD_IP}:${server.port}/metrics`
      : '');
  if (metricsUrl) agent.advertiseMetrics(metricsUrl);
  const sendUrl =
    config.RUNTIME_SEND_URL ||
    (config.POD_IP
      ? `http://${config.POD_IP.includes(':') ? `[${config.POD_IP}]` : config.POD_IP}:${sendServer.port}`
      : '');
  if (sendUrl) agent.advertiseSendApi(sendUrl);
  logger.info(
    { port: server.port, backend: backend.kind, tdlibVersion: tdlib.version, tdlibCommit: tdlib.commit },
    'runtime started',
  );

  let shuttingDown = false;
  const shutdown = async (signal: string): Promise<void> => {
    if (shuttingDown) return;
    shuttingDown = true;
    logger.info({ signal }, 'shutting down: closing clients, backing up sessions, releasing leases');
    const budgetMs = config.SHUTDOWN_TIMEOUT_SECONDS * 1000;
    const deadline = setTimeout(() => {
      logger.error('shutdown budget exceeded');
      process.exit(1);
    }, budgetMs);
    // Most of the budget for closing, backing up and releasing; the rest for the stragglers' close below.
    const { unfinished } = await agent.shutdown(budgetMs * 0.7);
    if (unfinished > 0)
      logger.error(
        { unfinished },
        'some accounts did not stop in time: their Leases expire instead of being released',
      );
    const result = await manager.closeAll({ timeoutMs: 10_000 });
    if (result.notClosed.length > 0)
      logger.error({ notClosed: result.notClosed.length }, 'clients did not close');
    await backend.close();
    await events.close();
    await server.close();
    await sendServer.close();
    await rest.close();
    await leaseRest.close();
    clearTimeout(deadline);
    logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  await agent.start();
  logger.info('hosting accounts');
}

main().catch((error: unknown) => {
  process.stderr.write(
    `tdlib-runtime: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
});
