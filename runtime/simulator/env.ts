/**
 * Configuration from the environment, for the runtime process: TDLIB_BACKEND=simulator selects the
 * simulator, TDLIB_SIMULATOR_WORLD names the world directory, TDLIB_SIMULATOR_WORLD_FILE optionally a world
 * file elsewhere. Problems are reported naming the variable.
 */
import { existsSync, statSync } from 'node:fs';
import { findWorldFile } from './world.js';

export const SIMULATOR_ENV = {
  backend: 'TDLIB_BACKEND',
  world: 'TDLIB_SIMULATOR_WORLD',
  worldFile: 'TDLIB_SIMULATOR_WORLD_FILE',
} as const;

export interface SimulatorEnvOptions {
  readonly worldDir: string;
  readonly worldFile?: string;
}

/** undefined when TDLIB_BACKEND is not "simulator"; throws with the variable's name when it is misconfigured. */
export function simulatorOptionsFromEnv(
  env: NodeJS.ProcessEnv = process.env,
): SimulatorEnvOptions | undefined {
  const backend = env[SIMULATOR_ENV.backend];
  if (backend === undefined || backend === '' || backend === 'native') return undefined;
  if (backend !== 'simulator') {
    throw new Error(
      `${SIMULATOR_ENV.backend} must be "native" or "simulator", got ${JSON.stringify(backend)}`,
    );
  }
  const worldDir = env[SIMULATOR_ENV.world];
  if (worldDir === undefined || worldDir === '') {
    throw new Error(`${SIMULATOR_ENV.world} is required when ${SIMULATOR_ENV.backend}=simulator`);
  }
  if (!existsSync(worldDir) || !statSync(worldDir).isDirectory()) {
    throw new Error(`${SIMULATOR_ENV.world}=${worldDir} is not a directory`);
  }
  const worldFile = env[SIMULATOR_ENV.worldFile];
  if (worldFile !== undefined && worldFile !== '') {
    if (!existsSync(worldFile)) throw new Error(`${SIMULATOR_ENV.worldFile}=${worldFile} does not exist`);
    return { worldDir, worldFile };
  }
  if (findWorldFile(worldDir) === undefined) {
    throw new Error(`${SIMULATOR_ENV.world}=${worldDir} has no world.yaml, world.yml or world.json`);
  }
  return { worldDir };
}
