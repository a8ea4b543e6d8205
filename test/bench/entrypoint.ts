/**
 * Benchmarks start the operator as the image does: through docker-entrypoint.sh, which sizes its V8 heap
 * from the container's memory limit. The limit is the chart's default; this checkout is the app directory.
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
  return {
    args: ['sh', resolve('docker-entrypoint.sh'), 'operator'],
    env: {
      PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}`,
      APP_DIR: resolve('.'),
      CGROUP_MEMORY_MAX: cgroupLimit,
      ...(nodeOptions ? { NODE_OPTIONS: nodeOptions } : {}),
    },
    limitMib,
  };
}
