/**
 * resolveUpdates against the real API server: a Service ref becomes its cluster address (port, https by
 * appProtocol), the receiver token comes from its Secret, and every missing or unusable input is reported
 * with the field to fix instead of failing the account.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
    // A key named like a problem's field must read as data, not as a problem.
    stringData: { token: ' s3cret\n', other: 'x', reason: 'y' },
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

  it('presents the client certificate of spec.updates.auth.clientCertificateSecretRef to a receiver that requires one (mutual TLS)', async () => {
    const pki = makePki();
    const seen: string[] = [];
    const server: Server = createServer(
      {
        cert: pki.serverCert,
        key: pki.serverKey,
        ca: pki.caCert,
        requestCert: true,
        rejectUnauthorized: true,
      },
      (req, res) => {
        const peer = (req.socket as TLSSocket).getPeerCertificate();
        seen.push(String(peer.subject?.CN ?? ''));
        req.resume();
        req.on('end', () => res.writeHead(204).end());
      },
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      await rest.create<ApiObject>(Resources.Secret, {
        apiVersion: 'v1',
        kind: 'Secret',
        type: 'kubernetes.io/tls',
        metadata: { name: 'receiver-client-tls', namespace },
        stringData: { 'tls.crt': pki.clientCert, 'tls.key': pki.clientKey },
      } as ApiObject);
      const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/`;
      const sink = { uri: url, caBundle: Buffer.from(pki.caCert).toString('base64') };
      const local = { ...deps, allowLoopback: true };

      const withCertificate = await resolveUpdates(local, {
        sink,
        auth: { clientCertificateSecretRef: { name: 'receiver-client-tls' } },
      });
      expect(withCertificate.problem).toBeUndefined();
      const post = (target: typeof withCertificate.sink) => {
        if (!target?.post) throw new Error('no sink resolved');
        return target.post(url, {}, '{}', AbortSignal.timeout(10_000));
      };
      expect(await post(withCertificate.sink)).toEqual({ status: 204 });
      expect(seen).toEqual(['tdlib-runtime-client']);

      // Without it the receiver ends the handshake: nothing is delivered.
      const without = await resolveUpdates(local, { sink });
      const refused = await post(without.sink);
      expect(refused).toMatchObject({ error: expect.any(String) });
      expect(seen).toHaveLength(1);

      const plainHttp = await resolveUpdates(local, {
        sink: { uri: 'http://receiver.example.com/' },
        auth: { clientCertificateSecretRef: { name: 'receiver-client-tls' } },
      });
      expect(plainHttp.problem?.reason).toBe('SinkInvalid');
      expect(plainHttp.problem?.message).toContain('clientCertificateSecretRef');

      await rest.create<ApiObject>(Resources.Secret, {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'half-a-certificate', namespace },
        stringData: { 'tls.crt': pki.clientCert },
      } as ApiObject);
      const noKey = await resolveUpdates(local, {
        sink,
        auth: { clientCertificateSecretRef: { name: 'half-a-certificate' } },
      });
      expect(noKey.problem?.reason).toBe('SecretKeyMissing');
      expect(noKey.problem?.message).toContain('spec.updates.auth.clientCertificateSecretRef');
      expect(noKey.problem?.message).toContain('tls.key');
      expect(noKey.problem?.message).not.toContain('PRIVATE KEY');
      expect(noKey.problem?.message).not.toContain('BEGIN CERTIFICATE');
    } finally {
      await new Promise((resolve) => server.close(resolve));
      rmSync(pki.dir, { recursive: true, force: true });
    }
  });
});

/** A CA, a server certificate for 127.0.0.1 and a client certificate, all from that CA (openssl). */
function makePki(): {
  dir: string;
  caCert: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
} {
  const dir = mkdtempSync(join(tmpdir(), 'updates-mtls-'));
  const file = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(
    'req',
    '-x509',
    ...ec,
    '-days',
    '1',
    '-subj',
    '/CN=test-ca',
    '-keyout',
    file('ca.key'),
    '-out',
    file('ca.crt'),
  );
  for (const [name, subject, extension] of [
    ['server', '/CN=receiver', 'subjectAltName=IP:127.0.0.1'],
    ['client', '/CN=tdlib-runtime-client', 'extendedKeyUsage=clientAuth'],
  ] as const) {
    openssl('req', ...ec, '-subj', subject, '-keyout', file(`${name}.key`), '-out', file(`${name}.csr`));
    writeExtension(file(`${name}.ext`), extension);
    openssl(
      'x509',
      '-req',
      '-in',
      file(`${name}.csr`),
      '-CA',
      file('ca.crt'),
      '-CAkey',
      file('ca.key'),
      '-CAcreateserial',
      '-days',
      '1',
      '-extfile',
      file(`${name}.ext`),
      '-out',
      file(`${name}.crt`),
    );
  }
  const read = (name: string) => readFileSync(file(name), 'utf8');
  return {
    dir,
    caCert: read('ca.crt'),
    serverCert: read('server.crt'),
    serverKey: read('server.key'),
    clientCert: read('client.crt'),
    clientKey: read('client.key'),
  };
}

function writeExtension(path: string, line: string): void {
  writeFileSync(path, `${line}\n`);
}
