/**
 * TelegramRuntimePool: the runtime pods that host a namespace's accounts of one pool, and how a new runtime
 * version rolls out to them (canary steps by share of accounts, analysis gates, automatic rollback).
 * Accounts name their pool in spec.runtimePool; a pool without this object uses the operator's defaults.
 */
import { Type, conditions, object, stringEnum, type Static } from './schema.js';
import { API_VERSION, MAX_POOL_NAME } from './common.js';
import type { KubeObject } from './kube-object.js';

export const RUNTIME_POOL_KIND = 'TelegramRuntimePool';
export const RUNTIME_POOL_PLURAL = 'telegramruntimepools';

/** Go-style durations as Argo Rollouts and Flagger take them: 30s, 5m, 24h, 1h30m. */
export const DURATION_REGEX = '^([0-9]+(ms|s|m|h))+$';
const durationRule = (field: string, example: string) => ({
  rule: `!has(self.${field}) || self.${field}.matches('${DURATION_REGEX}')`,
  message: `must be a duration such as ${example}: a number and a unit (ms, s, m, h), possibly repeated (1h30m)`,
  fieldPath: `.${field}`,
});

/** Parses a duration DURATION_REGEX accepts into milliseconds (undefined for anything else). */
export function parseDurationMs(text: string | undefined): number | undefined {
  if (text === undefined || !new RegExp(DURATION_REGEX).test(text)) return undefined;
  const unit: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  for (const [, value, u] of text.matchAll(/([0-9]+)(ms|s|m|h)/g))
    total += Number(value) * (unit[u ?? ''] ?? 0);
  return total;
}

const quantity = Type.Unsafe<string | number>({
  'x-kubernetes-int-or-string': true,
  description: 'A Kubernetes quantity such as 500m, 256Mi or 1Gi.',
});
const resourceList = (description: string) =>
  Type.Unsafe<Record<string, string | number>>({
    type: 'object',
    additionalProperties: quantity,
    description,
  });
const preserved = (description: string) =>
  Type.Unsafe<Record<string, unknown>>({
    type: 'object',
    'x-kubernetes-preserve-unknown-fields': true,
    description,
  });

export const DEFAULT_ROLLOUT_STEPS = [10, 25, 50, 100] as const;
export const DEFAULT_STEP_PAUSE = '24h';

export const rolloutStep = object(
  {
    weight: Type.Integer({
      description:
        "Share of the pool's accounts, in percent, served by pods of the new version at this step.",
      minimum: 1,
      maximum: 100,
    }),
    pause: Type.Optional(
      Type.String({
        description:
          'How long the step holds once its weight is reached, with the analysis passing, before the next step. Defaults to 24h (the old rollout plan).',
        maxLength: 32,
      }),
    ),
  },
  { description: 'One canary step.', 'x-kubernetes-validations': [durationRule('pause', '24h')] },
);

export const runtimePoolSpec = object(
  {
    image: Type.String({ description: 'Container image of the runtime pods.', minLength: 1, maxLength: 512 }),
    backend: Type.Optional(
      stringEnum(['native', 'simulator'] as const, {
        description:
          'TDLib backend: native (libtdjson) or simulator (no network; for tests and demos). Defaults to native.',
        default: 'native',
      }),
    ),
    accountsPerPod: Type.Optional(
      Type.Integer({
        description: 'Accounts one pod hosts at most. Defaults to 100.',
        minimum: 1,
        maximum: 10000,
      }),
    ),
    minReplicas: Type.Optional(
      Type.Integer({
        description: 'Fewest pods while the pool has accounts. Defaults to 1.',
        minimum: 0,
        maximum: 1000,
      }),
    ),
    maxReplicas: Type.Optional(
      Type.Integer({ description: 'Most pods of one version. Defaults to 50.', minimum: 1, maximum: 1000 }),
    ),
    resources: Type.Optional(
      object(
        {
          requests: Type.Optional(resourceList('Requested resources (cpu, memory).')),
          limits: Type.Optional(
            resourceList('Resource limits; the memory gate compares against limits.memory.'),
          ),
        },
        {
          description:
            'Resources of the runtime container. Defaults to requests cpu 100m, memory 256Mi and a memory limit of 1Gi.',
        },
      ),
    ),
    storage: Type.Optional(
      object(
        {
          size: Type.Optional(
            Type.String({
              description:
                'Volume claim size for TDLib databases (e.g. 1Gi), or "emptyDir" (sessions then live only in their backups). Defaults to 1Gi.',
              pattern: '^(emptyDir|[0-9]+(Ki|Mi|Gi|Ti))$',
            }),
          ),
          storageClassName: Type.Optional(
            Type.String({
              description: 'Storage class of the claims; empty means the default.',
              maxLength: 253,
            }),
          ),
        },
        { description: 'Where TDLib databases live.' },
      ),
    ),
    nodeSelector: Type.Optional(
      Type.Unsafe<Record<string, string>>({
        type: 'object',
        additionalProperties: { type: 'string' },
        description: 'Node labels the runtime pods must run on.',
      }),
    ),
    tolerations: Type.Optional(
      Type.Array(preserved('A toleration (core/v1 Toleration).'), {
        description: 'Tolerations of the runtime pods.',
        maxItems: 64,
      }),
    ),
    affinity: Type.Optional(preserved('Affinity of the runtime pods (core/v1 Affinity).')),
    priorityClassName: Type.Optional(
      Type.String({ description: 'PriorityClass of the runtime pods.', maxLength: 253 }),
    ),
    rollout: Type.Optional(
      object(
        {
          steps: Type.Optional(
            Type.Array(rolloutStep, {
              description:
                'Canary steps in increasing weight, the last at 100. Defaults to 10, 25, 50, 100 with 24h pauses.',
              minItems: 1,
              maxItems: 20,
              'x-kubernetes-validations': [
                {
                  rule: 'self[size(self) - 1].weight == 100',
                  message: 'the last step must have weight 100 (the new version serves every account)',
                },
                {
                  rule: 'self.all(s, self.exists_one(t, t.weight == s.weight))',
                  message: 'step weights must differ from each other',
                },
              ],
            }),
          ),
          paused: Type.Optional(
            Type.Boolean({
              description:
                'Hold the rollout at its current step (kubectl telegram rollout pause/resume); analysis and rollback go on.',
            }),
          ),
          maxAccountsInMotion: Type.Optional(
            Type.Integer({
              description:
                'Most accounts being handed over between pods at once (each move closes, backs up and restores one session). Defaults to 10.',
              minimum: 1,
              maximum: 1000,
            }),
          ),
          analysis: Type.Optional(
            object(
              {
                interval: Type.Optional(
                  Type.String({
                    description: 'How often canary and stable are compared. Defaults to 1m.',
                    maxLength: 32,
                  }),
                ),
                minRequests: Type.Optional(
                  Type.Integer({
                    description:
                      'TDLib requests the canary must answer in an interval for the error and latency gates to count; below it the check is inconclusive and the step holds (an idle canary is not a failed one). Defaults to 100.',
                    minimum: 1,
                  }),
                ),
                maxErrorRatio: Type.Optional(
                  Type.Number({
                    description:
                      "Failed share of the canary's TDLib requests above which it is rolled back. Defaults to 0.01.",
                    minimum: 0,
                    maximum: 1,
                  }),
                ),
                maxP95LatencyMs: Type.Optional(
                  Type.Integer({
                    description:
                      "95th percentile of the canary's TDLib request latency above which it is rolled back. Defaults to 500.",
                    minimum: 1,
                  }),
                ),
                maxMemoryRatio: Type.Optional(
                  Type.Number({
                    description:
                      "Resident memory of a canary pod as a share of its container's memory limit above which it is rolled back. Defaults to 0.8.",
                    minimum: 0,
                    maximum: 1,
                  }),
                ),
                countTelegramLimits: Type.Optional(
                  Type.Boolean({
                    description:
                      "Count Telegram's limits on an account (flood waits, PEER_FLOOD) as errors. Defaults to false: they say nothing about the runtime's version.",
                  }),
                ),
                ignoredErrorCodes: Type.Optional(
                  Type.Array(
                    Type.String({
                      description: 'An error code as tdlib_errors_total labels it (e.g. 400, timeout).',
                      maxLength: 32,
                    }),
                    {
                      description: 'Error codes that never count against the canary.',
                      maxItems: 32,
                    },
                  ),
                ),
                startDeadline: Type.Optional(
                  Type.String({
                    description:
                      'How long a canary pod may take to start its runtime (take its heartbeat) before the version counts as failed (crash loop, image that does not start). Defaults to 5m.',
                    maxLength: 32,
                  }),
                ),
                prometheus: Type.Optional(
                  object(
                    {
                      address: Type.String({
                        description:
                          'URL of the Prometheus server (or another server of its query API, such as Thanos Query), e.g. http://prometheus-operated.monitoring.svc:9090; the operator runs instant queries on <address>/api/v1/query.',
                        minLength: 1,
                        maxLength: 512,
                      }),
                      podLabel: Type.Optional(
                        Type.String({
                          description:
                            'Label naming the runtime pod on its series, as the PodMonitor or ServiceMonitor scraping it sets it. Defaults to "pod".',
                          default: 'pod',
                          pattern: '^[a-zA-Z_][a-zA-Z0-9_]*$',
                          maxLength: 128,
                        }),
                      ),
                      namespaceLabel: Type.Optional(
                        Type.String({
                          description:
                            'Label naming the runtime pod\'s namespace on its series, as the PodMonitor or ServiceMonitor scraping it sets it. Defaults to "namespace".',
                          default: 'namespace',
                          pattern: '^[a-zA-Z_][a-zA-Z0-9_]*$',
                          maxLength: 128,
                        }),
                      ),
                    },
                    {
                      description:
                        "Take the gates' values from this Prometheus, which must scrape the runtime pods (the chart's PodMonitor), instead of scraping each runtime pod's /metrics: each interval, the increase over the interval of the canary pods' and the stable pods' series is queried. Unset: the operator scrapes the pods itself.",
                      'x-kubernetes-validations': [
                        {
                          rule: "self.address.startsWith('http://') || self.address.startsWith('https://')",
                          message:
                            'address must be an http:// or https:// URL of the Prometheus server, e.g. http://prometheus-operated.monitoring.svc:9090',
                          fieldPath: '.address',
                        },
                      ],
                    },
                  ),
                ),
              },
              {
                description:
                  "Gates: every interval the operator compares the canary with the stable version, from each runtime pod's /metrics or, with prometheus set, from Prometheus; a failed gate rolls back.",
                'x-kubernetes-validations': [
                  durationRule('interval', '1m'),
                  durationRule('startDeadline', '5m'),
                ],
              },
            ),
          ),
        },
        {
          description: 'How a new version (a change of image, backend, resources or pod settings) rolls out.',
        },
      ),
    ),
  },
  { description: 'The runtime pods of one pool and how new versions of them roll out.' },
);

const gateValues = object(
  {
    pods: Type.Integer({ description: 'Pods measured.', minimum: 0 }),
    requests: Type.Integer({ description: 'TDLib requests answered in the interval.', minimum: 0 }),
    errorRatio: Type.Optional(Type.Number({ description: 'Counted errors per request in the interval.' })),
    p95LatencyMs: Type.Optional(Type.Number({ description: 'P95 request latency in the interval, ms.' })),
    memoryRatio: Type.Optional(
      Type.Number({ description: 'Highest resident memory / memory limit of a pod.' }),
    ),
  },
  { description: 'What one version measured in the interval.' },
);

export const analysisRecord = object(
  {
    time: Type.String({ description: 'When the analysis ran.', format: 'date-time' }),
    step: Type.Integer({ description: 'Step index (0-based) it ran at.', minimum: 0 }),
    verdict: stringEnum(['Passed', 'Failed', 'Inconclusive'] as const, { description: 'The outcome.' }),
    source: Type.Optional(
      stringEnum(['Pods', 'Prometheus'] as const, {
        description: "Where the values came from: the runtime pods' /metrics, or the configured Prometheus.",
      }),
    ),
    metric: Type.Optional(
      Type.String({ description: 'The gate that decided a failure or inconclusive result.', maxLength: 64 }),
    ),
    message: Type.String({ description: 'Why, with the deciding value and threshold.', maxLength: 1024 }),
    canary: gateValues,
    stable: Type.Optional(gateValues),
  },
  { description: 'One comparison of canary and stable.' },
);
export type AnalysisRecord = Static<typeof analysisRecord>;

export const runtimePoolStatus = object(
  {
    observedGeneration: Type.Optional(
      Type.Integer({ description: 'The .metadata.generation last acted on.', format: 'int64', minimum: 0 }),
    ),
    phase: Type.Optional(
      stringEnum(['Healthy', 'Progressing', 'Paused', 'Degraded'] as const, {
        description:
          'Healthy (one version everywhere), Progressing, Paused, or Degraded (a version rolled back).',
      }),
    ),
    stableRevision: Type.Optional(
      Type.String({ description: 'Revision serving the accounts not on the canary.', maxLength: 64 }),
    ),
    stableImage: Type.Optional(Type.String({ description: 'Image of the stable revision.', maxLength: 512 })),
    canaryRevision: Type.Optional(Type.String({ description: 'Revision being rolled out.', maxLength: 64 })),
    canaryImage: Type.Optional(
      Type.String({ description: 'Image of the revision being rolled out.', maxLength: 512 }),
    ),
    rolledBackRevision: Type.Optional(
      Type.String({
        description:
          'The last revision rolled back; it is not tried again until the spec changes to another one.',
        maxLength: 64,
      }),
    ),
    currentStep: Type.Optional(
      Type.Integer({ description: 'Index (0-based) of the current step.', minimum: 0 }),
    ),
    stepStartedAt: Type.Optional(
      Type.String({ description: 'When the current step began.', format: 'date-time' }),
    ),
    stepReachedAt: Type.Optional(
      Type.String({
        description: "When the current step's weight was reached (its pause counts from here).",
        format: 'date-time',
      }),
    ),
    desiredWeight: Type.Optional(
      Type.Integer({ description: "The current step's weight, percent.", minimum: 0, maximum: 100 }),
    ),
    weight: Type.Optional(
      Type.Integer({
        description: 'Share of accounts hosted by canary pods now, percent.',
        minimum: 0,
        maximum: 100,
      }),
    ),
    rolloutStep: Type.Optional(
      Type.String({ description: 'The step for humans: 2/4 (25%), or - without a rollout.', maxLength: 32 }),
    ),
    replicas: Type.Optional(Type.Integer({ description: 'Runtime pods of both versions.', minimum: 0 })),
    readyPods: Type.Optional(
      Type.String({ description: 'Pods with a running runtime / pods, e.g. 3/3.', maxLength: 16 }),
    ),
    accounts: Type.Optional(Type.Integer({ description: 'Accounts of the pool.', minimum: 0 })),
    canaryAccounts: Type.Optional(
      Type.Integer({ description: 'Accounts hosted by canary pods.', minimum: 0 }),
    ),
    accountsInMotion: Type.Optional(
      Type.Integer({
        description: 'Accounts placed on a pod that does not hold their session yet.',
        minimum: 0,
      }),
    ),
    analyses: Type.Optional(
      Type.Array(analysisRecord, { description: 'The last analyses, newest last.', maxItems: 10 }),
    ),
    message: Type.Optional(
      Type.String({ description: 'What the rollout waits for, in words.', maxLength: 1024 }),
    ),
    conditions: Type.Optional(conditions),
  },
  { description: 'Written by the operator.' },
);

export type RuntimePoolSpec = Static<typeof runtimePoolSpec>;
export type RuntimePoolStatus = Static<typeof runtimePoolStatus>;
export type TelegramRuntimePool = KubeObject<RuntimePoolSpec, RuntimePoolStatus> & {
  apiVersion: typeof API_VERSION;
  kind: 'TelegramRuntimePool';
};

/**
 * Canary pods belong to a second StatefulSet `tdlib-canary-<pool>` (crds/naming.ts), so pool names keep the
 * limit accounts already check.
 */
export const runtimePoolValidations = [
  {
    rule: `size(self.metadata.name) <= ${MAX_POOL_NAME} && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')`,
    message: `the pool name must be a DNS label of at most ${MAX_POOL_NAME} characters (its StatefulSets and pods are named after it); accounts name it in spec.runtimePool`,
    fieldPath: '.metadata.name',
  },
  {
    rule: '!has(self.spec.minReplicas) || !has(self.spec.maxReplicas) || self.spec.minReplicas <= self.spec.maxReplicas',
    message: 'spec.minReplicas must not exceed spec.maxReplicas',
    fieldPath: '.spec.minReplicas',
  },
];

export const runtimePoolPrinterColumns = [
  {
    name: 'Image',
    type: 'string',
    jsonPath: '.spec.image',
    description: 'Runtime image (the desired version).',
  },
  {
    name: 'Ready',
    type: 'string',
    jsonPath: '.status.readyPods',
    description: 'Pods with a running runtime / pods.',
  },
  { name: 'Accounts', type: 'integer', jsonPath: '.status.accounts', description: 'Accounts of the pool.' },
  { name: 'Step', type: 'string', jsonPath: '.status.rolloutStep', description: 'Rollout step and weight.' },
  {
    name: 'Phase',
    type: 'string',
    jsonPath: '.status.phase',
    description: 'Healthy, Progressing, Paused or Degraded.',
    priority: 1,
  },
  { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
];

/** Annotations through which `kubectl telegram rollout` acts; each names the canary revision it is meant for. */
export const ANNOTATION_PROMOTE = 'telegram.tdlib-operator.dev/promote';
export const ANNOTATION_UNDO = 'telegram.tdlib-operator.dev/undo';
/** Value of ANNOTATION_PROMOTE: `<revision>/<step index>` skips that step's pause, `<revision>/full` every one. */
export const promoteToken = (revision: string, step: number | 'full'): string => `${revision}/${step}`;

export const RolloutConditionType = {
  Progressing: 'Progressing',
  Degraded: 'Degraded',
  RolledBack: 'RolledBack',
} as const;

export const RolloutReason = {
  NoRollout: 'NoRollout',
  StepProgressing: 'StepProgressing',
  MovingAccounts: 'MovingAccounts',
  WaitingForCanaryPods: 'WaitingForCanaryPods',
  StepPaused: 'StepPaused',
  AnalysisInconclusive: 'AnalysisInconclusive',
  ManuallyPaused: 'ManuallyPaused',
  Promoted: 'Promoted',
  AnalysisFailed: 'AnalysisFailed',
  ManualUndo: 'ManualUndo',
  RollingBack: 'RollingBack',
} as const;
