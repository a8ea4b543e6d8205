/**
 * resolveUpdates against the real API server: a Service ref becomes its cluster address (port, https by
 * appProtocol), the receiver token comes from its Secret, and every missing or unusable input is reported
 * with the field to fix instead of failing the account.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { RestClient } from '../../../operator/kube/client.js';
import { createRegistry } from '../../../operator/kube/metrics.js';
import { Resources, type ApiObject } from '../../../operator/kube/resource.js';
import { SecretInputs } from '../../../runtime/hosting/secret-inputs.js';
import { resolveUpdates, type ResolveDeps } from '../../../runtime/updates/resolve.js';
import { adminKubeConfig, createTestNamespace } from '../../support/cluster.js';
import { testLogger } from '../kube/support.js';

const logger = testLogger('updates-resolve');
let rest: RestClient;
let namespace: string;
let deps: ResolveDeps;

beforeAll(async () => {
  const kc = adminKubeConfig();
  rest = new RestClient(kc, { registry: createRegistry(), logger });
  namespace = await createTestNamespace(kc, 'updates-resolve');
  const inputs = new SecretInputs(rest, namespace);
  deps = { rest, namespace, secretData: (name, signal) => inputs.all(name, signal) };
  await rest.create<ApiObject>(Resources.Service, {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'echo', namespace },
    spec: {
      ports: [
        { name: 'http', port: 8080, targetPort: 8080 },
        { name: 'tls', port: 8443, targetPort: 8443, appProtocol: 'https' },
      ],
    },
  } as ApiObject);
  await rest.create<ApiObject>(Resources.Secret, {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'receiver-token', namespace },
    stringData: { token: ' s3cret\n', other: 'x' },
  } as ApiObject);
});

afterAll(async () => {
  await rest.close();
});

describe('resolveUpdates', () => {
  it('resolves a Service ref to its cluster address, first port by default, with the path', async () => {
    const resolved = await resolveUpdates(deps, { sink: { ref: { name: 'echo' }, uri: '/telegram' } });
    expect(resolved.problem).toBeUndefined();
    expect(resolved.sinkURI).toBe(`http://echo.${namespace}.svc.cluster.local:8080/telegram`);
    expect(resolved.sink?.url).toBe(resolved.sinkURI);
  });

  it('uses https for a port whose appProtocol says so, and resolves the dead-letter sink too', async () => {
    const resolved = await resolveUpdates(deps, {
      sink: { ref: { name: 'echo', port: 8443 } },
      deadLetterSink: { uri: 'https://dead.example.com/letters' },
    });
    expect(resolved.sinkURI).toBe(`https://echo.${namespace}.svc.cluster.local:8443/`);
    expect(resolved.deadLetterSinkURI).toBe('https://dead.example.com/letters');
  });

  it('sends the token from its Secret (trimmed) in the header asked for', async () => {
    const resolved = await resolveUpdates(deps, {
      sink: { uri: 'https://receiver.example.com/' },
      auth: { secretRef: { name: 'receiver-token' }, header: 'Authorization-Token' },
    });
    expect(resolved.sink?.headers).toEqual({ 'authorization-token': 's3cret' });
  });

  it('reports a missing Service, a missing port, a missing Secret and a missing key, naming the field', async () => {
    const missingService = await resolveUpdates(deps, { sink: { ref: { name: 'nope' } } });
    expect(missingService.problem).toEqual({
      reason: 'SinkNotFound',
      message: `Service nope (spec.updates.sink.ref) does not exist in namespace ${namespace}; create it or fix the name`,
    });
    const missingPort = await resolveUpdates(deps, { sink: { ref: { name: 'echo', port: 9 } } });
    expect(missingPort.problem?.reason).toBe('SinkInvalid');
    expect(missingPort.problem?.message).toContain('spec.updates.sink.ref.port');
    const missingDead = await resolveUpdates(deps, {
      sink: { ref: { name: 'echo' } },
      deadLetterSink: { ref: { name: 'gone' } },
    });
    expect(missingDead.sinkURI).toBeDefined();
    expect(missingDead.problem?.message).toContain('spec.updates.deadLetterSink.ref');
    const missingSecret = await resolveUpdates(deps, {
      sink: { uri: 'https://receiver.example.com/' },
      auth: { secretRef: { name: 'no-such-secret' } },
    });
    expect(missingSecret.problem?.reason).toBe('SecretNotFound');
    expect(missingSecret.problem?.message).toContain('spec.updates.auth.secretRef');
    const missingKey = await resolveUpdates(deps, {
      sink: { uri: 'https://receiver.example.com/' },
      auth: { secretRef: { name: 'receiver-token', key: 'password' } },
    });
    expect(missingKey.problem).toMatchObject({ reason: 'SecretKeyMissing' });
    expect(missingKey.problem?.message).not.toContain('s3cret');
  });
});
