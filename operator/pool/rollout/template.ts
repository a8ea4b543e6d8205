/**
 * What shapes a runtime pod (image, backend, resources, storage, scheduling), its revision, and the pool's
 * sizing and rollout settings with their defaults: pure, from a TelegramRuntimePool or, for a pool nobody
 * declared, from the operator's environment.
 */
import {
  DEFAULT_ROLLOUT_STEPS,
  DEFAULT_STEP_PAUSE,
  parseDurationMs,
  type TelegramRuntimePool,
} from '../../../crds/index.js';
import { intentHash } from '../../kube/apply.js';
import type { OperatorConfig } from '../../config.js';

export interface PodTemplateSpec {
  image: string;
  backend: 'native' | 'simulator';
  resources: { requests?: Record<string, string | number>; limits?: Record<string, string | number> };
  /** "emptyDir" or a claim size. */
  storageSize: string;
  storageClass: string;
  nodeSelector?: Record<string, string>;
  tolerations?: ReadonlyArray<Record<string, unknown>>;
  affinity?: Record<string, unknown>;
  priorityClassName?: string;
  /** The chart's runtime.extraEnv / extraVolumes / extraVolumeMounts, appended to the operator's own. */
  extraEnv?: ReadonlyArray<Record<string, unknown>>;
  extraVolumes?: ReadonlyArray<Record<string, unknown>>;
  extraVolumeMounts?: ReadonlyArray<Record<string, unknown>>;
}

export interface Sizing {
  accountsPerPod: number;
  minReplicas: number;
  maxReplicas: number;
}

export interface RolloutSettings {
  steps: ReadonlyArray<{ weight: number; pauseMs: number }>;
  paused: boolean;
  maxAccountsInMotion: number;
  intervalMs: number;
  startDeadlineMs: number;
  minRequests: number;
  maxErrorRatio: number;
  maxP95LatencyMs: number;
  maxMemoryRatio: number;
  countTelegramLimits: boolean;
  ignoredErrorCodes: readonly string[];
  /** Set when the gates' values come from this Prometheus instead of scraping the runtime pods. */
  prometheus?: PrometheusSettings;
}

/** spec.rollout.analysis.prometheus with its defaults. */
export interface PrometheusSettings {
  address: string;
  /** The label naming a runtime pod on its series (default "pod"). */
  podLabel: string;
  /** The label naming a runtime pod's namespace on its series (default "namespace"). */
  namespaceLabel: string;
}

export const DEFAULT_RESOURCES = {
  requests: { cpu: '100m', memory: '256Mi' },
  limits: { memory: '1Gi' },
};

/** A pool's effective settings; `rollout` is undefined for an implicit pool (updated in place, as before). */
export interface PoolDefinition {
  template: PodTemplateSpec;
  sizing: Sizing;
  rollout?: RolloutSettings;
}

/** Revision of a template: stable across key order, so only a real change starts a rollout. */
export function revisionOf(template: PodTemplateSpec): string {
  return intentHash(template).slice(0, 10);
}

const nonEmptyList = <T>(list: readonly T[] | undefined): readonly T[] | undefined =>
  list !== undefined && list.length > 0 ? list : undefined;
const nonEmptyMap = <T extends object>(map: T | undefined): T | undefined =>
  map !== undefined && Object.keys(map).length > 0 ? map : undefined;

/**
 * The template from the operator's environment. Keys left empty stay absent, so an operator upgrade that
 * adds a setting nobody uses does not change the revision of every pool (which would restart its pods).
 */
function environmentTemplate(config: OperatorConfig): PodTemplateSpec {
  const template: PodTemplateSpec = {
    image: config.RUNTIME_IMAGE,
    backend: config.RUNTIME_BACKEND === 'simulator' ? 'simulator' : 'native',
    resources: (nonEmptyMap(config.RUNTIME_RESOURCES) as PodTemplateSpec['resources']) ?? DEFAULT_RESOURCES,
    storageSize: config.RUNTIME_STORAGE_SIZE,
    storageClass: config.RUNTIME_STORAGE_CLASS,
  };
  const nodeSelector = nonEmptyMap(config.RUNTIME_NODE_SELECTOR);
  if (nodeSelector) template.nodeSelector = nodeSelector as Record<string, string>;
  const tolerations = nonEmptyList(config.RUNTIME_TOLERATIONS);
  if (tolerations) template.tolerations = tolerations;
  const extraEnv = nonEmptyList(config.RUNTIME_EXTRA_ENV);
  if (extraEnv) template.extraEnv = extraEnv;
  const extraVolumes = nonEmptyList(config.RUNTIME_EXTRA_VOLUMES);
  if (extraVolumes) template.extraVolumes = extraVolumes;
  const extraVolumeMounts = nonEmptyList(config.RUNTIME_EXTRA_VOLUME_MOUNTS);
  if (extraVolumeMounts) template.extraVolumeMounts = extraVolumeMounts;
  return template;
}

export function implicitPool(config: OperatorConfig): PoolDefinition {
  return {
    template: environmentTemplate(config),
    sizing: {
      accountsPerPod: config.RUNTIME_ACCOUNTS_PER_POD,
      minReplicas: config.RUNTIME_MIN_REPLICAS,
      maxReplicas: config.RUNTIME_MAX_REPLICAS,
    },
  };
}

/** The pool object's settings; what it leaves out comes from the operator's environment, then defaults. */
export function declaredPool(pool: TelegramRuntimePool, config: OperatorConfig): PoolDefinition {
  const spec = pool.spec;
  const base = implicitPool(config);
  const analysis = spec.rollout?.analysis ?? {};
  const template: PodTemplateSpec = {
    ...base.template,
    image: spec.image,
    backend: spec.backend === 'simulator' ? 'simulator' : 'native',
    resources: spec.resources ?? base.template.resources,
    storageSize: spec.storage?.size ?? base.template.storageSize,
    storageClass: spec.storage?.storageClassName ?? base.template.storageClass,
  };
  if (spec.nodeSelector) template.nodeSelector = spec.nodeSelector;
  if (spec.tolerations) template.tolerations = spec.tolerations;
  if (spec.affinity) template.affinity = spec.affinity;
  if (spec.priorityClassName) template.priorityClassName = spec.priorityClassName;
  const steps = spec.rollout?.steps ?? DEFAULT_ROLLOUT_STEPS.map((weight) => ({ weight, pause: undefined }));
  return {
    template,
    sizing: {
      accountsPerPod: spec.accountsPerPod ?? base.sizing.accountsPerPod,
      minReplicas: spec.minReplicas ?? base.sizing.minReplicas,
      maxReplicas: spec.maxReplicas ?? base.sizing.maxReplicas,
    },
    rollout: {
      steps: steps.map((s) => ({
        weight: s.weight,
        pauseMs: parseDurationMs(s.pause ?? DEFAULT_STEP_PAUSE) ?? 86_400_000,
      })),
      paused: spec.rollout?.paused ?? false,
      maxAccountsInMotion: spec.rollout?.maxAccountsInMotion ?? 10,
      intervalMs: Math.max(1000, parseDurationMs(analysis.interval) ?? 60_000),
      startDeadlineMs: parseDurationMs(analysis.startDeadline) ?? 300_000,
      minRequests: analysis.minRequests ?? 100,
      maxErrorRatio: analysis.maxErrorRatio ?? 0.01,
      maxP95LatencyMs: analysis.maxP95LatencyMs ?? 500,
      maxMemoryRatio: analysis.maxMemoryRatio ?? 0.8,
      countTelegramLimits: analysis.countTelegramLimits ?? false,
      ignoredErrorCodes: analysis.ignoredErrorCodes ?? [],
      ...(analysis.prometheus !== undefined && {
        prometheus: {
          address: analysis.prometheus.address,
          podLabel: analysis.prometheus.podLabel ?? 'pod',
          namespaceLabel: analysis.prometheus.namespaceLabel ?? 'namespace',
        },
      }),
    },
  };
}

/** The template a StatefulSet recorded (ANNOTATION_TEMPLATE), or undefined when absent or unreadable. */
export function parseRecordedTemplate(text: string | undefined): PodTemplateSpec | undefined {
  if (text === undefined) return undefined;
  try {
    const value = JSON.parse(text) as Partial<PodTemplateSpec>;
    if (typeof value.image !== 'string' || typeof value.storageSize !== 'string') return undefined;
    return value as PodTemplateSpec;
  } catch {
    return undefined;
  }
}
