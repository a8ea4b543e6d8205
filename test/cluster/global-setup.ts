import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlPlane, type ControlPlaneOptions } from './control-plane.js';

/** Environment variable through which jest workers find the cluster the global setup started. */
export const CLUSTER_INFO_ENV = 'TDLIB_OPERATOR_TEST_CLUSTER';

interface GlobalWithPlane {
  __tdlibOperatorControlPlane?: ControlPlane;
}

/**
 * Starts a control plane for one jest run, unless USE_EXISTING_CLUSTER=true, in which case tests use the
 * cluster of $KUBECONFIG as is (a real cluster or `make cluster-up`).
 */
export async function startForJest(options: Omit<ControlPlaneOptions, 'dir'>, label: string): Promise<void> {
  if (process.env.USE_EXISTING_CLUSTER === 'true') {
    const kubeconfig = process.env.KUBECONFIG;
    if (!kubeconfig) throw new Error('USE_EXISTING_CLUSTER=true needs KUBECONFIG to name a kubeconfig file');
    const dir = mkdtempSync(join(tmpdir(), `tdlib-operator-${label}-`));
    writeFileSync(join(dir, 'info.json'), JSON.stringify({ kubeconfigPath: kubeconfig, existing: true }));
    process.env[CLUSTER_INFO_ENV] = join(dir, 'info.json');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), `tdlib-operator-${label}-`));
  const plane = await ControlPlane.start({ ...options, dir });
  (globalThis as GlobalWithPlane).__tdlibOperatorControlPlane = plane;
  const infoPath = join(dir, 'info.json');
  writeFileSync(infoPath, JSON.stringify({ ...plane.info, existing: false }, null, 2));
  process.env[CLUSTER_INFO_ENV] = infoPath;
  process.stderr.write(
    `\n[cluster] ${label} control plane ready in ${plane.info.startMs} ms at ${plane.info.apiServerUrl}; logs in ${dir}/logs\n`,
  );
}

export async function stopForJest(): Promise<void> {
  const holder = globalThis as GlobalWithPlane;
  await holder.__tdlibOperatorControlPlane?.stop();
  holder.__tdlibOperatorControlPlane = undefined;
}
