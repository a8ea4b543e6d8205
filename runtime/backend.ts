/** Picks the TdBackend from configuration: libtdjson through the addon, or the simulator. */
import type { Logger } from '../operator/kube/logging.js';
import type { RuntimeConfig } from './config.js';
import { SimulatorBackend } from './simulator/index.js';
import type { TdBackend } from './tdlib/backend.js';
import { NativeBackend } from './tdlib/native-backend.js';

export function createBackend(config: RuntimeConfig, logger: Logger): TdBackend {
  if (config.TDLIB_BACKEND === 'simulator') {
    return new SimulatorBackend({
      worldDir: config.TDLIB_SIMULATOR_WORLD ?? '',
      logger: logger.child({ component: 'simulator' }),
    });
  }
  const addon = config.TDLIB_ADDON_PATH;
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
