/**
 * prometheus-operator's CRDs (ServiceMonitor, PodMonitor, PrometheusRule) for tests that apply the chart's
 * monitoring objects. They come from the module zip of a pinned release, which the Go module proxy serves
 * (no registry or GitHub needed); `go mod download` caches it like every other module.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

export const PROMETHEUS_OPERATOR_MODULE = 'github.com/prometheus-operator/prometheus-operator';
/** Pinned: the proxy refuses some versions (see the packaging notes); v0.94.1 resolves. */
export const PROMETHEUS_OPERATOR_VERSION = 'v0.94.1';
export const MONITORING_CRDS = ['servicemonitors', 'podmonitors', 'prometheusrules'] as const;

/** The module's directory in the Go module cache, downloaded if missing. */
export function prometheusOperatorModuleDir(): string {
  const out = execFileSync(
    'go',
    ['mod', 'download', '-json', `${PROMETHEUS_OPERATOR_MODULE}@${PROMETHEUS_OPERATOR_VERSION}`],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const info = JSON.parse(out) as { Dir?: string; Error?: string };
  if (!info.Dir) throw new Error(`go mod download ${PROMETHEUS_OPERATOR_MODULE}: ${info.Error ?? out}`);
  return info.Dir;
}

/**
 * Applies the three CRDs server-side (the last-applied annotation of `kubectl apply` would not fit the larger
 * prometheus-operator CRDs) and waits until they are served.
 */
export function installMonitoringCrds(kubeconfig: string): void {
  const dir = join(prometheusOperatorModuleDir(), 'example', 'prometheus-operator-crd');
  const files = MONITORING_CRDS.map((plural) => join(dir, `monitoring.coreos.com_${plural}.yaml`));
  const kubectl = (args: string[]): string =>
    execFileSync('kubectl', ['--kubeconfig', kubeconfig, ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  kubectl([
    'apply',
    '--server-side',
    '--force-conflicts',
    '--field-manager=tdlib-operator-tests',
    ...files.flatMap((f) => ['-f', f]),
  ]);
  kubectl([
    'wait',
    '--for=condition=Established',
    '--timeout=30s',
    ...MONITORING_CRDS.map((plural) => `crd/${plural}.monitoring.coreos.com`),
  ]);
}
