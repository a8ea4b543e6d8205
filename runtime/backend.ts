/**
 * Picks the TdBackend from configuration: libtdjson through the addon, or the simulator. Each is loaded only
 * when selected: a production pod never loads the simulator, a simulator pod never loads libtdjson.
 */
import type { Logger } from '../operator/kube/logging.js';
import type { RuntimeConfig } from './config.js';
import type { TdBackend } from './tdlib/backend.js';

export async function createBackend(config: RuntimeConfig, logger: Logger): Promise<TdBackend> {
  if (config.TDLIB_BACKEND === 'simulator') {
    const { SimulatorBackend } = await import('./simulator/index.js');
    return new SimulatorBackend({
      worldDir: config.TDLIB_SIMULATOR_WORLD ?? '',
      worldFile: config.TDLIB_SIMULATOR_WORLD_FILE || undefined,
      logger: logger.child({ component: 'simulator' }),
    });
  }
  const addon = config.TDLIB_ADDON_PATH;
  const { NativeBackend } = await import('./tdlib/native-backend.js');
  return new NativeBackend({
    libraryPath: config.TDLIB_LIBRARY_PATH ?? (addon && !addon.endsWith('.node') ? addon : undefined),
    addonPath: addon?.endsWith('.node') ? addon : undefined,
    receiveTimeoutSeconds: config.TDLIB_POLL_INTERVAL_MS / 1000,
    onLog: (level, message) => {
      if (level <= 1) logger.error({ component: 'tdlib', level }, message);
      else if (level === 2) logger.warn({ component: 'tdlib', level }, message);
      else logger.debug({ component: 'tdlib', level }, message);
    },
  });
}
