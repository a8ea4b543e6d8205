/** The operator process: validate configuration, run until SIGTERM or lost leadership. */
import { loadOperatorConfig } from './config.js';
import { ConfigError } from './kube/env-config.js';
import { createLogger } from './kube/logging.js';
import { startOperator } from './manager.js';

async function main(): Promise<void> {
  let config;
  try {
    config = loadOperatorConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`tdlib-operator: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const logger = createLogger({ name: 'tdlib-operator', level: config.LOG_LEVEL });
  const operator = await startOperator(config, logger);
  logger.info({ ports: operator.ports }, 'operator started');
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signalled) return;
    signalled = true;
    logger.info({ signal }, 'signal received');
    void operator.stop().then(() => process.exit(0));
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  const end = await operator.done;
  if (end === 'lost') {
    // client-go's contract: a replica that lost leadership exits, so it can never act on a stale view.
    logger.error('leadership lost: exiting');
    await operator.stop().catch(() => undefined);
    process.exit(1);
  }
}

main().catch((error: unknown) => {
  process.stderr.write(
    `tdlib-operator: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
});
