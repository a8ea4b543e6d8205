/**
 * Benchmarks start the operator and the runtime as the image does: through docker-entrypoint.sh, which sizes
 * the operator's V8 heap from the container's memory limit and limits glibc's malloc arenas for both. The
 * limit is the chart's default; this checkout is the app directory. A MALLOC_ARENA_MAX in the benchmark's
 * environment wins, as it does in a pod.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parse } from 'yaml';

/** resources.limits.memory of the chart's values ("512Mi", "1Gi"), in MiB. */
export function chartMemoryLimitMib(): number {
  const values = parse(readFileSync(resolve('charts/tdlib-operator/values.yaml'), 'utf8')) as {
    resources?: { limits?: { memory?: string } };
  };
  const limit = values.resources?.limits?.memory ?? '';
  const match = /^(\d+)(Mi|Gi)$/.exec(limit);
  if (!match)
    throw new Error(
      `charts/tdlib-operator/values.yaml: resources.limits.memory "${limit}" is not NMi or NGi`,
    );
  return Number(match[1]) * (match[2] === 'Gi' ? 1024 : 1);
}

/**
 * The command (after `setpriv --pdeathsig KILL --`) and environment that start the operator by the image's
 * entrypoint under the chart's memory limit; `nodeOptions` are further node options (NODE_OPTIONS).
 */
export function operatorByEntrypoint(
  dir: string,
  nodeOptions = '',
): { args: string[]; env: NodeJS.ProcessEnv; limitMib: number } {
  const limitMib = chartMemoryLimitMib();
  const cgroupLimit = join(dir, 'memory.max');
  writeFileSync(cgroupLimit, `${limitMib * 1048576}\n`);
  const started = byEntrypoint('operator', nodeOptions);
  return { args: started.args, env: { ...started.env, CGROUP_MEMORY_MAX: cgroupLimit }, limitMib };
}

/** The command (after `setpriv --pdeathsig KILL --`) and environment that start a process by the image's entrypoint. */
export function byEntrypoint(
  entry: 'operator' | 'runtime',
  nodeOptions = '',
): { args: string[]; env: NodeJS.ProcessEnv } {
  return {
    args: ['sh', resolve('docker-entrypoint.sh'), entry],
    env: {
      PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`,
      APP_DIR: resolve('.'),
      ...(nodeOptions ? { NODE_OPTIONS: nodeOptions } : {}),
    },
  };
}
