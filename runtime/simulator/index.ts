/**
 * The Telegram network simulator: a TdBackend for offline demos and end-to-end tests, and the World API the
 * test side uses to act as Telegram (confirm QR logins, block users, kill proxies, count deliveries).
 * See docs/simulator.md.
 */
export { SimulatorBackend, type SimulatorBackendOptions } from './backend.js';
export {
  World,
  WorldView,
  loadWorldFile,
  qrTokenOf,
  type ChatRole,
  type ChatView,
  type Delivery,
  type QrTokenRecord,
  type SessionRecord,
  type WorldEvent,
} from './world.js';
export {
  supergroupChatId,
  validateWorld,
  WorldConfigError,
  WORLD_SCHEMA,
  type WorldChat,
  type WorldConfig,
  type WorldUser,
} from './world-schema.js';
export { simulatorOptionsFromEnv, SIMULATOR_ENV } from './env.js';
