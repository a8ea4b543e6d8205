/**
 * Where build-tools.sh puts promtool, prometheus and helm (the same cache as the control plane's binaries),
 * for tests that run them. A missing binary is an error that says how to build it.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { HELM_VERSION, PROMETHEUS_MODULE_VERSION } from './versions.js';

export type Tool = 'promtool' | 'prometheus' | 'helm';

export function toolsDir(): string {
  const root =
    process.env.TESTBIN_CACHE ??
    join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'tdlib-operator', 'testbin');
  return join(root, `tools-prometheus-${PROMETHEUS_MODULE_VERSION}-helm-${HELM_VERSION}`);
}

export function toolPath(tool: Tool): string {
  const path = join(toolsDir(), tool);
  if (!existsSync(path)) throw new Error(`${path} is missing: run make tools (test/cluster/build-tools.sh)`);
  return path;
}
