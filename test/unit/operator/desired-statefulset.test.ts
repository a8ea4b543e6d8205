import {
  desiredNetworkPolicy,
  desiredStatefulSet,
  type StatefulSetSettings,
} from '../../../operator/pool/desired.js';
import type { PodTemplateSpec } from '../../../operator/pool/rollout/template.js';

const template: PodTemplateSpec = {
  image: 'img:1',
  backend: 'simulator',
  resources: { limits: { memory: '300Mi' } },
  storageSize: 'emptyDir',
  storageClass: '',
};
const settings = (t: PodTemplateSpec): StatefulSetSettings => ({
  namespace: 'ns',
  pool: 'default',
  set: 'stable',
  replicas: 1,
  template: t,
  revision: 'r1',
  operatorNamespace: 'tdlib-operator-system',
});
const podSpec = (t: PodTemplateSpec) => desiredStatefulSet(settings(t)).spec?.template.spec;

describe('desiredStatefulSet: the runtime pod', () => {
  it("appends the chart's extra env, volumes and mounts after the operator's own", () => {
    const spec = podSpec({
      ...template,
      extraEnv: [{ name: 'TDLIB_SIMULATOR_WORLD', value: '/world' }],
      extraVolumes: [{ name: 'world', hostPath: { path: '/srv/world', type: 'Directory' } }],
      extraVolumeMounts: [{ name: 'world', mountPath: '/world' }],
    });
    const container = spec?.containers[0];
    expect(container?.env?.at(-1)).toEqual({ name: 'TDLIB_SIMULATOR_WORLD', value: '/world' });
    expect(container?.env?.map((e) => e.name)).toContain('TDLIB_DATA_DIR');
    expect(container?.volumeMounts).toEqual([
      { name: 'tdlib-data', mountPath: '/var/lib/tdlib' },
      { name: 'world', mountPath: '/world' },
    ]);
    expect(spec?.volumes).toEqual([
      { name: 'tdlib-data', emptyDir: {} },
      { name: 'world', hostPath: { path: '/srv/world', type: 'Directory' } },
    ]);
  });

  it('has no pod volumes with a claim template and no extras, and the claim otherwise', () => {
    const set = desiredStatefulSet(settings({ ...template, storageSize: '1Gi' }));
    expect(set.spec?.template.spec?.volumes).toBeUndefined();
    expect(set.spec?.volumeClaimTemplates?.[0]?.metadata?.name).toBe('tdlib-data');
    const withExtra = desiredStatefulSet(
      settings({
        ...template,
        storageSize: '1Gi',
        extraVolumes: [{ name: 'ca', configMap: { name: 'ca' } }],
      }),
    );
    expect(withExtra.spec?.template.spec?.volumes).toEqual([{ name: 'ca', configMap: { name: 'ca' } }]);
  });

  it('takes resources, node selector and tolerations from the template', () => {
    const spec = podSpec({
      ...template,
      nodeSelector: { disk: 'ssd' },
      tolerations: [{ key: 'dedicated', operator: 'Exists', effect: 'NoSchedule' }],
    });
    expect(spec?.nodeSelector).toEqual({ disk: 'ssd' });
    expect(spec?.tolerations).toEqual([{ key: 'dedicated', operator: 'Exists', effect: 'NoSchedule' }]);
    expect(spec?.containers[0]?.resources).toEqual({ limits: { memory: '300Mi' } });
  });
});

describe('the send port', () => {
  it('is its own container port, and the runtime accepts only the gateway of the operator namespace there', () => {
    const container = podSpec(template)?.containers[0];
    expect(container?.ports).toEqual([
      { name: 'http', containerPort: 8080 },
      { name: 'send', containerPort: 8444 },
    ]);
    expect(container?.env).toEqual(
      expect.arrayContaining([
        { name: 'SEND_PORT', value: '8444' },
        {
          name: 'SEND_GATEWAY_SERVICE_ACCOUNT',
          value: 'system:serviceaccount:tdlib-operator-system:tdlib-send-gateway',
        },
      ]),
    );
  });

  it('is reachable only from the gateway pods; the http port from anywhere', () => {
    const policy = desiredNetworkPolicy(
      {
        namespace: 'apps',
        pool: 'default',
        inputSecretNames: [],
        keySecretNames: [],
        loginCodeSecretNames: [],
        sessionSecretNames: [],
        accountNames: [],
        leaseNames: [],
      },
      'ops',
    );
    expect(policy.metadata).toMatchObject({ name: 'tdlib-runtime-default', namespace: 'apps' });
    expect(policy.spec).toEqual({
      podSelector: {
        matchLabels: {
          'telegram.tdlib-operator.dev/pool': 'default',
          'app.kubernetes.io/name': 'tdlib-runtime',
        },
      },
      policyTypes: ['Ingress'],
      ingress: [
        { ports: [{ protocol: 'TCP', port: 'http' }] },
        {
          ports: [{ protocol: 'TCP', port: 'send' }],
          from: [
            {
              namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ops' } },
              podSelector: { matchLabels: { 'app.kubernetes.io/name': 'tdlib-send-gateway' } },
            },
          ],
        },
      ],
    });
  });
});
