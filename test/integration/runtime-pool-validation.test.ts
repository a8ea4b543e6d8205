/**
 * TelegramRuntimePool as the API server takes it: the sample is accepted, and each mistake a user makes is
 * refused with the field and the fix in the message.
 */
import { readFileSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import { parse } from 'yaml';
import { GROUP, VERSION } from '../../crds/index.js';
import { adminKubeConfig, createTestNamespace } from '../support/cluster.js';
import { installCrds } from '../support/crds.js';

type Spec = Record<string, unknown>;
const kc = adminKubeConfig();
const custom = kc.makeApiClient(k8s.CustomObjectsApi);
let namespace = '';

const create = (name: string, spec: Spec): Promise<unknown> =>
  custom.createNamespacedCustomObject({
    group: GROUP,
    version: VERSION,
    namespace,
    plural: 'telegramruntimepools',
    body: { apiVersion: `${GROUP}/${VERSION}`, kind: 'TelegramRuntimePool', metadata: { name }, spec },
  });

const refusal = async (name: string, spec: Spec): Promise<string> => {
  try {
    await create(name, spec);
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
  throw new Error(`the API server accepted ${name}`);
};

beforeAll(async () => {
  await installCrds(kc);
  namespace = await createTestNamespace(kc, 'pool-validation');
});

const base = { image: 'ghcr.io/tdlib-operator/tdlib-operator:0.2.0' };

describe('TelegramRuntimePool validation', () => {
  it('accepts the sample, and fills in the defaults a user leaves out', async () => {
    const sample = parse(readFileSync('config/samples/runtime-pool.yaml', 'utf8')) as { spec: Spec };
    await create('default', sample.spec);
    await create('minimal', base);
    const minimal = (await custom.getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural: 'telegramruntimepools',
      name: 'minimal',
    })) as { spec: { backend?: string } };
    expect(minimal.spec.backend).toBe('native');
  });

  const bad: Array<[string, string, Spec, string[]]> = [
    ['no image', 'no-image', {}, ['spec.image', 'Required value']],
    [
      'last step below 100',
      'short',
      { ...base, rollout: { steps: [{ weight: 10 }, { weight: 50 }] } },
      ['spec.rollout.steps', 'the last step must have weight 100'],
    ],
    [
      'the same weight twice',
      'twice',
      { ...base, rollout: { steps: [{ weight: 50 }, { weight: 50 }, { weight: 100 }] } },
      ['spec.rollout.steps', 'step weights must differ'],
    ],
    [
      'a pause that is not a duration',
      'pause',
      { ...base, rollout: { steps: [{ weight: 100, pause: 'one day' }] } },
      ['spec.rollout.steps[0].pause', 'must be a duration such as 24h'],
    ],
    [
      'an interval that is not a duration',
      'interval',
      { ...base, rollout: { analysis: { interval: '60' } } },
      ['spec.rollout.analysis.interval', 'must be a duration such as 1m'],
    ],
    [
      'an error ratio given in percent',
      'percent',
      { ...base, rollout: { analysis: { maxErrorRatio: 1 + 0.5 } } },
      ['spec.rollout.analysis.maxErrorRatio', 'less than or equal to 1'],
    ],
    [
      'more pods at least than at most',
      'replicas',
      { ...base, minReplicas: 5, maxReplicas: 2 },
      ['spec.minReplicas', 'must not exceed spec.maxReplicas'],
    ],
    [
      'a Prometheus address without a scheme',
      'prom-scheme',
      { ...base, rollout: { analysis: { prometheus: { address: 'prometheus.monitoring:9090' } } } },
      ['spec.rollout.analysis.prometheus.address', 'http:// or https://'],
    ],
    [
      'a Prometheus without an address',
      'prom-missing',
      { ...base, rollout: { analysis: { prometheus: {} } } },
      ['spec.rollout.analysis.prometheus.address', 'Required value'],
    ],
    [
      'a name too long for its pods',
      'a-pool-name-that-is-much-too-long-for-its-pods',
      base,
      ['metadata.name', 'at most 38 characters'],
    ],
  ];
  it.each(bad)('refuses %s, naming the field and the fix', async (_what, name, spec, texts) => {
    const message = await refusal(name, spec);
    for (const text of texts) expect(message).toContain(text);
  });
});
