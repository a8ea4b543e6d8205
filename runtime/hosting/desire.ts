/** What the runtime wants for one account, as a pure function of the cached object: the level it steers to. */
import type { TelegramAccount } from '../../crds/index.js';

export type StopReason = 'suspended' | 'moved' | 'deleted' | 'disabled' | 'shutdown';

export type Desire = { kind: 'run' } | { kind: 'logout' } | { kind: 'stop'; reason: StopReason };

export function desireFor(
  account: TelegramAccount | undefined,
  podName: string,
  options: { tdlibEnabled: boolean; shuttingDown: boolean },
): Desire {
  if (options.shuttingDown) return { kind: 'stop', reason: 'shutdown' };
  // Gone from a cache that selects this pod's placement: deleted, or placed elsewhere.
  if (!account) return { kind: 'stop', reason: 'moved' };
  if (account.status?.placement?.pod !== podName) return { kind: 'stop', reason: 'moved' };
  if (account.metadata.deletionTimestamp)
    return account.spec.deletionPolicy === 'LogOut'
      ? { kind: 'logout' }
      : { kind: 'stop', reason: 'deleted' };
  if (account.spec.suspend) return { kind: 'stop', reason: 'suspended' };
  if (!options.tdlibEnabled) return { kind: 'stop', reason: 'disabled' };
  return { kind: 'run' };
}
