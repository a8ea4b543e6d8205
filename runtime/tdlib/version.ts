/**
 * Which TDLib this process loaded: td_execute getOption "version" and "commit_hash" (both synchronous),
 * logged at start and exported as tdlib_version_info{version,commit,backend} 1, so a rollout can be checked
 * against the library actually loaded rather than the one the image was meant to ship.
 */
import { Gauge, type Registry } from 'prom-client';
import type { TdBackend } from './backend.js';

export interface TdlibVersion {
  /** TDLib's version, e.g. "1.8.67"; "unknown" when the backend cannot tell. */
  readonly version: string;
  /** The commit TDLib was built from; "unknown" when the backend cannot tell. */
  readonly commit: string;
}

const UNKNOWN = 'unknown';

function stringOption(backend: Pick<TdBackend, 'execute'>, name: string): string {
  try {
    const answer = JSON.parse(backend.execute(JSON.stringify({ '@type': 'getOption', name }))) as unknown;
    if (typeof answer === 'object' && answer !== null && '@type' in answer && 'value' in answer) {
      const { '@type': type, value } = answer;
      if (type === 'optionValueString' && typeof value === 'string' && value !== '') return value;
    }
  } catch {
    // not JSON, or the backend threw: the version stays unknown rather than stopping the runtime
  }
  return UNKNOWN;
}

export function tdlibVersion(backend: Pick<TdBackend, 'execute'>): TdlibVersion {
  return { version: stringOption(backend, 'version'), commit: stringOption(backend, 'commit_hash') };
}

/** tdlib_version_info: always 1, the loaded TDLib in its labels. */
export function registerTdlibVersionMetric(registry: Registry, backend: string, loaded: TdlibVersion): Gauge {
  const gauge = new Gauge({
    name: 'tdlib_version_info',
    help: 'TDLib loaded by this runtime process (value 1): its version, commit and backend (native or simulator)',
    labelNames: ['version', 'commit', 'backend'] as const,
    registers: [registry],
  });
  gauge.set({ version: loaded.version, commit: loaded.commit, backend }, 1);
  return gauge;
}
