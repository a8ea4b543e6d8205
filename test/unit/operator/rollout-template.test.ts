/**
 * A pool's effective settings and its revision: what a TelegramRuntimePool leaves out comes from the
 * operator's environment, then defaults; only what shapes a pod changes the revision (and starts a rollout).
 */
import { describe, expect, it } from '@jest/globals';
import {
  API_VERSION,
  parseDurationMs,
  type RuntimePoolSpec,
  type TelegramRuntimePool,
} from '../../../crds/index.js';
import { loadOperatorConfig } from '../../../operator/config.js';
import {
  DEFAULT_RESOURCES,
  declaredPool,
  implicitPool,
  parseRecordedTemplate,
  revisionOf,
  type PodTemplateSpec,
} from '../../../operator/pool/rollout/template.js';

const configEnv = {
  RUNTIME_IMAGE: 'registry.example/runtime:1.0',
  RUNTIME_ACCOUNTS_PER_POD: '40',
  RUNTIME_MIN_REPLICAS: '2',
  RUNTIME_MAX_REPLICAS: '9',
  RUNTIME_STORAGE_SIZE: '2Gi',
  RUNTIME_STORAGE_CLASS: 'fast',
};
const config = loadOperatorConfig(configEnv);

const pool = (spec: RuntimePoolSpec): TelegramRuntimePool => ({
  apiVersion: API_VERSION,
  kind: 'TelegramRuntimePool',
  metadata: { name: 'main', namespace: 'ns', generation: 1 },
  spec,
});

const HOUR = 3_600_000;

describe('parseDurationMs', () => {
  it('reads Go-style durations, units repeated', () => {
    expect(parseDurationMs('24h')).toBe(24 * HOUR);
    expect(parseDurationMs('1h30m')).toBe(1.5 * HOUR);
    expect(parseDurationMs('5m')).toBe(300_000);
    expect(parseDurationMs('90s')).toBe(90_000);
    expect(parseDurationMs('250ms')).toBe(250);
    expect(parseDurationMs('1m30s')).toBe(90_000);
    expect(parseDurationMs('0s')).toBe(0);
  });

  it('rejects anything else', () => {
    for (const bad of [undefined, '', '5', '1d', '1.5h', 'm5', '5 m', '-5m', '5M', 'h'])
      expect(parseDurationMs(bad)).toBeUndefined();
  });
});

describe('declaredPool', () => {
  it('fills what the pool leaves out from the environment, then the documented defaults', () => {
    const definition = declaredPool(pool({ image: 'registry.example/runtime:2.0' }), config);
    expect(definition.template).toEqual({
      image: 'registry.example/runtime:2.0',
      backend: 'native',
      resources: DEFAULT_RESOURCES,
      storageSize: '2Gi',
      storageClass: 'fast',
    });
    expect(DEFAULT_RESOURCES).toEqual({
      requests: { cpu: '100m', memory: '256Mi' },
      limits: { memory: '1Gi' },
    });
    expect(definition.sizing).toEqual({ accountsPerPod: 40, minReplicas: 2, maxReplicas: 9 });
    expect(definition.rollout).toEqual({
      steps: [10, 25, 50, 100].map((weight) => ({ weight, pauseMs: 24 * HOUR })),
      paused: false,
      maxAccountsInMotion: 10,
      intervalMs: 60_000,
      startDeadlineMs: 300_000,
      minRequests: 100,
      maxErrorRatio: 0.01,
      maxP95LatencyMs: 500,
      maxMemoryRatio: 0.8,
      countTelegramLimits: false,
      ignoredErrorCodes: [],
    });
  });

  it('takes every setting the pool declares', () => {
    const definition = declaredPool(
      pool({
        image: 'img:3',
        backend: 'simulator',
        accountsPerPod: 5,
        minReplicas: 0,
        maxReplicas: 3,
        resources: { limits: { memory: '2Gi' } },
        storage: { size: 'emptyDir', storageClassName: '' },
        nodeSelector: { pool: 'tdlib' },
        tolerations: [{ key: 'dedicated', operator: 'Exists' }],
        affinity: { nodeAffinity: {} },
        priorityClassName: 'high',
        rollout: {
          steps: [
            { weight: 5, pause: '30m' },
            { weight: 50, pause: '1h30m' },
            { weight: 100, pause: '0s' },
          ],
          paused: true,
          maxAccountsInMotion: 3,
          analysis: {
            interval: '30s',
            startDeadline: '10m',
            minRequests: 20,
            maxErrorRatio: 0.05,
            maxP95LatencyMs: 800,
            maxMemoryRatio: 0.9,
            countTelegramLimits: true,
            ignoredErrorCodes: ['400'],
          },
        },
      }),
      config,
    );
    expect(definition.template).toEqual({
      image: 'img:3',
      backend: 'simulator',
      resources: { limits: { memory: '2Gi' } },
      storageSize: 'emptyDir',
      storageClass: '',
      nodeSelector: { pool: 'tdlib' },
      tolerations: [{ key: 'dedicated', operator: 'Exists' }],
      affinity: { nodeAffinity: {} },
      priorityClassName: 'high',
    });
    expect(definition.sizing).toEqual({ accountsPerPod: 5, minReplicas: 0, maxReplicas: 3 });
    expect(definition.rollout).toEqual({
      steps: [
        { weight: 5, pauseMs: 30 * 60_000 },
        { weight: 50, pauseMs: 1.5 * HOUR },
        { weight: 100, pauseMs: 0 },
      ],
      paused: true,
      maxAccountsInMotion: 3,
      intervalMs: 30_000,
      startDeadlineMs: 600_000,
      minRequests: 20,
      maxErrorRatio: 0.05,
      maxP95LatencyMs: 800,
      maxMemoryRatio: 0.9,
      countTelegramLimits: true,
      ignoredErrorCodes: ['400'],
    });
  });

  it('defaults a step without a pause to 24h and never analyses more often than every second', () => {
    const rollout = declaredPool(
      pool({
        image: 'img',
        rollout: { steps: [{ weight: 50 }, { weight: 100, pause: '2h' }], analysis: { interval: '10ms' } },
      }),
      config,
    ).rollout;
    expect(rollout?.steps).toEqual([
      { weight: 50, pauseMs: 24 * HOUR },
      { weight: 100, pauseMs: 2 * HOUR },
    ]);
    expect(rollout?.intervalMs).toBe(1000);
  });
});

describe('implicitPool', () => {
  it("is the operator's environment, updated in place (no rollout settings)", () => {
    expect(implicitPool(config)).toEqual({
      template: {
        image: 'registry.example/runtime:1.0',
        backend: 'native',
        resources: DEFAULT_RESOURCES,
        storageSize: '2Gi',
        storageClass: 'fast',
      },
      sizing: { accountsPerPod: 40, minReplicas: 2, maxReplicas: 9 },
    });
    expect(implicitPool(loadOperatorConfig({ RUNTIME_BACKEND: 'simulator' })).template.backend).toBe(
      'simulator',
    );
  });

  it('takes scheduling, resources and extra env and volumes from the environment (JSON), empty ones absent', () => {
    const env = {
      RUNTIME_NODE_SELECTOR: '{"disk":"ssd"}',
      RUNTIME_TOLERATIONS: '[{"key":"dedicated","operator":"Exists","effect":"NoSchedule"}]',
      RUNTIME_RESOURCES: '{"limits":{"memory":"300Mi"}}',
      RUNTIME_EXTRA_ENV: '[{"name":"TDLIB_SIMULATOR_WORLD","value":"/world"}]',
      RUNTIME_EXTRA_VOLUMES: '[{"name":"world","hostPath":{"path":"/srv/world"}}]',
      RUNTIME_EXTRA_VOLUME_MOUNTS: '[{"name":"world","mountPath":"/world"}]',
    };
    const template = implicitPool(loadOperatorConfig(env)).template;
    expect(template).toMatchObject({
      nodeSelector: { disk: 'ssd' },
      tolerations: [{ key: 'dedicated', operator: 'Exists', effect: 'NoSchedule' }],
      resources: { limits: { memory: '300Mi' } },
      extraEnv: [{ name: 'TDLIB_SIMULATOR_WORLD', value: '/world' }],
      extraVolumes: [{ name: 'world', hostPath: { path: '/srv/world' } }],
      extraVolumeMounts: [{ name: 'world', mountPath: '/world' }],
    });
    // A declared pool keeps the extras and overrides what it sets itself.
    const declared = declaredPool(
      pool({ image: 'img:2', nodeSelector: { zone: 'a' } }),
      loadOperatorConfig(env),
    ).template;
    expect(declared.nodeSelector).toEqual({ zone: 'a' });
    expect(declared.extraVolumes).toEqual(template.extraVolumes);
    expect(declared.tolerations).toEqual(template.tolerations);
    // What the chart renders for its empty defaults changes nothing, so upgrading restarts no pod.
    const empty = implicitPool(
      loadOperatorConfig({
        ...configEnv,
        RUNTIME_NODE_SELECTOR: '{}',
        RUNTIME_TOLERATIONS: '[]',
        RUNTIME_EXTRA_ENV: '[]',
      }),
    ).template;
    expect(revisionOf(empty)).toBe(revisionOf(implicitPool(config).template));
  });

  it('refuses extras that would break the pod, naming the key and the fix', () => {
    expect(() => loadOperatorConfig({ RUNTIME_EXTRA_ENV: '[{"name":"POD_IP","value":"1"}]' })).toThrow(
      /RUNTIME_EXTRA_ENV: POD_IP is set by the operator; remove it/,
    );
    expect(() => loadOperatorConfig({ RUNTIME_EXTRA_ENV: '{"name":"A"}' })).toThrow(
      /RUNTIME_EXTRA_ENV must be a array/,
    );
    // An inline value may be a credential: a malformed list is refused without quoting it.
    const malformed = () =>
      loadOperatorConfig({ RUNTIME_EXTRA_ENV: '[{"name":"TOKEN","value":"s3cr3t-value"' });
    expect(malformed).toThrow(/RUNTIME_EXTRA_ENV must be JSON \(a list\)/);
    expect(malformed).not.toThrow(/s3cr3t/);
    expect(() => loadOperatorConfig({ RUNTIME_EXTRA_ENV: '{"value":"s3cr3t-value"}' })).not.toThrow(/s3cr3t/);
    expect(() => loadOperatorConfig({ RUNTIME_TOLERATIONS: '[{"key":"a"' })).toThrow(
      /RUNTIME_TOLERATIONS must be JSON \(a list\)/,
    );
    expect(() => loadOperatorConfig({ RUNTIME_TOLERATIONS: '["a"]' })).toThrow(
      /RUNTIME_TOLERATIONS: item 0 must be object/,
    );
    expect(() =>
      loadOperatorConfig({ RUNTIME_EXTRA_VOLUME_MOUNTS: '[{"name":"world","mountPath":"/world"}]' }),
    ).toThrow(/RUNTIME_EXTRA_VOLUME_MOUNTS: world names no volume of RUNTIME_EXTRA_VOLUMES/);
    expect(() =>
      loadOperatorConfig({
        RUNTIME_EXTRA_VOLUMES: '[{"name":"x","emptyDir":{}}]',
        RUNTIME_EXTRA_VOLUME_MOUNTS: '[{"name":"x","mountPath":"/var/lib/tdlib/x"}]',
      }),
    ).toThrow(/inside the TDLib data volume/);
    expect(() =>
      loadOperatorConfig({ RUNTIME_EXTRA_VOLUMES: '[{"name":"tdlib-data","emptyDir":{}}]' }),
    ).toThrow(/tdlib-data is the operator's TDLib data volume; choose another name/);
  });

  it('has the revision of a pool declared with the same settings, so declaring it starts no rollout', () => {
    const declared = declaredPool(pool({ image: config.RUNTIME_IMAGE }), config);
    expect(revisionOf(declared.template)).toBe(revisionOf(implicitPool(config).template));
  });
});

describe('revisionOf', () => {
  const template: PodTemplateSpec = {
    image: 'img:1',
    backend: 'native',
    resources: { requests: { cpu: '100m', memory: '256Mi' }, limits: { memory: '1Gi' } },
    storageSize: '1Gi',
    storageClass: '',
    nodeSelector: { a: '1', b: '2' },
  };

  it('is a short stable id that does not depend on key order', () => {
    const reordered: PodTemplateSpec = {
      nodeSelector: { b: '2', a: '1' },
      storageClass: '',
      storageSize: '1Gi',
      resources: { limits: { memory: '1Gi' }, requests: { memory: '256Mi', cpu: '100m' } },
      backend: 'native',
      image: 'img:1',
    };
    expect(revisionOf(template)).toMatch(/^[0-9a-f]{10}$/);
    expect(revisionOf(reordered)).toBe(revisionOf(template));
    expect(revisionOf({ ...template, priorityClassName: undefined })).toBe(revisionOf(template));
  });

  it('changes with the image, the resources and the other pod settings', () => {
    const base = revisionOf(template);
    const changed: PodTemplateSpec[] = [
      { ...template, image: 'img:2' },
      { ...template, backend: 'simulator' },
      { ...template, resources: { ...template.resources, limits: { memory: '2Gi' } } },
      { ...template, resources: { ...template.resources, requests: { cpu: '200m', memory: '256Mi' } } },
      { ...template, storageSize: '2Gi' },
      { ...template, nodeSelector: { a: '1' } },
      { ...template, priorityClassName: 'high' },
    ];
    const revisions = changed.map(revisionOf);
    expect(revisions).not.toContain(base);
    expect(new Set(revisions).size).toBe(changed.length);
  });

  it('does not change with rollout or sizing settings', () => {
    const a = declaredPool(pool({ image: 'img', accountsPerPod: 5 }), config);
    const b = declaredPool(
      pool({
        image: 'img',
        accountsPerPod: 50,
        maxReplicas: 3,
        rollout: { paused: true, steps: [{ weight: 100 }], maxAccountsInMotion: 1 },
      }),
      config,
    );
    expect(revisionOf(a.template)).toBe(revisionOf(b.template));
  });
});

describe('parseRecordedTemplate', () => {
  const template = declaredPool(
    pool({ image: 'img:1', nodeSelector: { zone: 'a' }, resources: { limits: { memory: '3Gi' } } }),
    config,
  ).template;

  it('reads back what a StatefulSet recorded, with the same revision', () => {
    const recorded = parseRecordedTemplate(JSON.stringify(template));
    expect(recorded).toEqual(template);
    expect(revisionOf(recorded!)).toBe(revisionOf(template));
  });

  it('is undefined when absent or unreadable', () => {
    expect(parseRecordedTemplate(undefined)).toBeUndefined();
    expect(parseRecordedTemplate('')).toBeUndefined();
    expect(parseRecordedTemplate('{not json')).toBeUndefined();
    expect(parseRecordedTemplate('null')).toBeUndefined();
    expect(parseRecordedTemplate('"img:1"')).toBeUndefined();
    expect(parseRecordedTemplate(JSON.stringify({ storageSize: '1Gi' }))).toBeUndefined();
    expect(parseRecordedTemplate(JSON.stringify({ image: 'img:1' }))).toBeUndefined();
    expect(parseRecordedTemplate(JSON.stringify({ image: 1, storageSize: '1Gi' }))).toBeUndefined();
  });
});
