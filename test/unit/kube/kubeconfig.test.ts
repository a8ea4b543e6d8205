/**
 * The kubeconfig loader: the entries kubectl writes, the $KUBECONFIG merge rules, the pod's ServiceAccount,
 * what reaches a request (TLS material, bearer token, basic auth), and errors that name the field at fault
 * without echoing a secret.
 */
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import type https from 'node:https';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { afterEach, describe, expect, it } from '@jest/globals';
import {
  Kubeconfig,
  KubeconfigError,
  inClusterEntries,
  loadKubeConfig,
  mergeKubeconfigs,
  parseKubeconfig,
} from '../../../operator/kube/kubeconfig.js';

const savedEnv = { ...process.env };
afterEach(() => {
  process.env = { ...savedEnv };
});

function scratch(): string {
  return mkdtempSync(join(tmpdir(), 'kubeconfig-test-'));
}

function config(lines: string[]): string {
  return `${lines.join('\n')}\n`;
}

const minimal = (server: string, user: Record<string, unknown> = {}): string =>
  JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'c', cluster: { server } }],
    users: [{ name: 'u', user }],
    contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u', namespace: 'team' } }],
    'current-context': 'ctx',
  });

async function optionsOf(kc: Kubeconfig): Promise<https.RequestOptions> {
  const opts: https.RequestOptions = {};
  await kc.applyToHTTPSOptions(opts);
  return opts;
}

describe('parseKubeconfig', () => {
  it('reads the entries kubectl writes, with relative file paths anchored at the file', () => {
    const entries = parseKubeconfig(
      config([
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        '- name: dev',
        '  cluster:',
        '    server: https://10.0.0.1:6443/',
        '    certificate-authority: pki/ca.crt',
        '    tls-server-name: kubernetes',
        'users:',
        '- name: admin',
        '  user:',
        '    client-certificate: pki/admin.crt',
        '    client-key: /abs/admin.key',
        '    tokenFile: token',
        'contexts:',
        '- name: dev',
        '  context: {cluster: dev, user: admin, namespace: apps}',
        'current-context: dev',
      ]),
      '/cfg/kubeconfig',
      '/cfg',
    );
    expect(entries.clusters).toEqual([
      {
        name: 'dev',
        server: 'https://10.0.0.1:6443',
        caData: undefined,
        caFile: '/cfg/pki/ca.crt',
        skipTLSVerify: false,
        tlsServerName: 'kubernetes',
        proxyUrl: undefined,
      },
    ]);
    expect(entries.users[0]).toMatchObject({
      certFile: '/cfg/pki/admin.crt',
      keyFile: '/abs/admin.key',
      tokenFile: '/cfg/token',
    });
    expect(entries.contexts).toEqual([{ name: 'dev', cluster: 'dev', user: 'admin', namespace: 'apps' }]);
    expect(entries.currentContext).toBe('dev');
  });

  it('names the field at fault', () => {
    const parseOf = (text: string) => () => parseKubeconfig(text, '/cfg/k');
    expect(parseOf('clusters:\n- name: c\n  cluster: {}\n')).toThrow(
      'kubeconfig /cfg/k: clusters[0].cluster.server is missing',
    );
    expect(parseOf('clusters:\n- cluster: {server: https://x}\n')).toThrow('clusters[0].name is missing');
    expect(parseOf('contexts:\n- name: a\n  context: {user: u}\n')).toThrow(
      'contexts[0].context.cluster is missing',
    );
    expect(parseOf('users:\n- name: u\n  user: {token: [1]}\n')).toThrow(
      'users[0].user.token must be a string',
    );
    expect(parseOf('clusters: {}\n')).toThrow('clusters must be a list');
    expect(
      parseOf('clusters:\n- name: c\n  cluster: {server: https://x, insecure-skip-tls-verify: "yes"}\n'),
    ).toThrow('clusters[0].cluster.insecure-skip-tls-verify must be true or false');
    expect(parseOf('a: [\n')).toThrow(/kubeconfig \/cfg\/k: not valid YAML/);
    expect(parseOf('- 1\n')).toThrow(KubeconfigError);
  });

  it('accepts an empty file as a config with nothing in it', () => {
    expect(parseKubeconfig('', 'empty')).toEqual({
      clusters: [],
      users: [],
      contexts: [],
      currentContext: undefined,
    });
  });
});

describe('mergeKubeconfigs', () => {
  it('keeps the first entry of each name and the first current-context, as kubectl merges $KUBECONFIG', () => {
    const first = parseKubeconfig(minimal('https://first'), 'a');
    const second = parseKubeconfig(
      JSON.stringify({
        clusters: [
          { name: 'c', cluster: { server: 'https://second' } },
          { name: 'other', cluster: { server: 'https://other' } },
        ],
        contexts: [{ name: 'o', context: { cluster: 'other' } }],
        'current-context': 'o',
      }),
      'b',
    );
    const merged = mergeKubeconfigs([{ ...first, currentContext: undefined }, second]);
    expect(merged.clusters.map((c) => c.server)).toEqual(['https://first', 'https://other']);
    expect(merged.currentContext).toBe('o');
    expect(mergeKubeconfigs([first, second]).currentContext).toBe('ctx');
  });
});

describe('Kubeconfig.applyToHTTPSOptions', () => {
  it('sets the CA, client certificate and key from files, and a bearer token read from the token file each time', async () => {
    const dir = scratch();
    writeFileSync(join(dir, 'ca.crt'), 'CA PEM');
    writeFileSync(join(dir, 'tls.crt'), 'CERT PEM');
    writeFileSync(join(dir, 'tls.key'), 'KEY PEM');
    writeFileSync(join(dir, 'token'), 'first-token\n');
    writeFileSync(
      join(dir, 'kubeconfig'),
      JSON.stringify({
        clusters: [{ name: 'c', cluster: { server: 'https://api', 'certificate-authority': 'ca.crt' } }],
        users: [
          {
            name: 'u',
            user: { 'client-certificate': 'tls.crt', 'client-key': 'tls.key', tokenFile: 'token' },
          },
        ],
        contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u' } }],
        'current-context': 'ctx',
      }),
    );
    const kc = loadKubeConfig(join(dir, 'kubeconfig'));
    const opts = await optionsOf(kc);
    expect(String(opts.ca)).toBe('CA PEM');
    expect(String(opts.cert)).toBe('CERT PEM');
    expect(String(opts.key)).toBe('KEY PEM');
    expect(opts.headers).toEqual({ Authorization: 'Bearer first-token' });
    expect(opts.rejectUnauthorized).toBeUndefined();

    // A projected ServiceAccount token is rotated in place: the next call sees the new one.
    writeFileSync(join(dir, 'token'), 'second-token');
    expect((await optionsOf(kc)).headers).toEqual({ Authorization: 'Bearer second-token' });
  });

  it('prefers inline data to files, and passes skip-verify, the TLS server name, basic auth and impersonation', async () => {
    const kc = new Kubeconfig(
      parseKubeconfig(
        JSON.stringify({
          clusters: [
            {
              name: 'c',
              cluster: {
                server: 'https://api',
                'certificate-authority-data': Buffer.from('INLINE CA').toString('base64'),
                'certificate-authority': '/does/not/exist',
                'insecure-skip-tls-verify': true,
                'tls-server-name': 'kube',
              },
            },
          ],
          users: [{ name: 'u', user: { username: 'ann', password: 'pw', as: 'bob' } }],
          contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u' } }],
          'current-context': 'ctx',
        }),
        'inline',
      ),
      'inline',
    );
    const opts = await optionsOf(kc);
    expect(String(opts.ca)).toBe('INLINE CA');
    expect(opts.rejectUnauthorized).toBe(false);
    expect(opts.servername).toBe('kube');
    expect(opts.auth).toBe('ann:pw');
    expect(opts.headers).toEqual({ 'Impersonate-User': 'bob' });
  });

  it('refuses a plain http:// server unless insecure-skip-tls-verify says so', async () => {
    const plain = new Kubeconfig(parseKubeconfig(minimal('http://127.0.0.1:8080'), 'k'), 'k');
    await expect(optionsOf(plain)).rejects.toThrow(
      'kubeconfig k: cluster "c" has a plain http:// server; use https://, or set insecure-skip-tls-verify: true',
    );
    const allowed = parseKubeconfig(minimal('http://127.0.0.1:8080'), 'k');
    allowed.clusters = allowed.clusters.map((c) => ({ ...c, skipTLSVerify: true }));
    await expect(optionsOf(new Kubeconfig(allowed, 'k'))).resolves.toMatchObject({
      rejectUnauthorized: false,
    });
  });

  it('says which context, cluster or user is missing, and which file cannot be read, never a secret', async () => {
    const noContext = parseKubeconfig(minimal('https://api'), 'k');
    noContext.currentContext = undefined;
    await expect(optionsOf(new Kubeconfig(noContext, 'k'))).rejects.toThrow(
      'kubeconfig k: current-context is not set',
    );
    const kc = new Kubeconfig(parseKubeconfig(minimal('https://api', { token: 'sekret' }), 'k'), 'k');
    kc.setCurrentContext('elsewhere');
    await expect(optionsOf(kc)).rejects.toThrow('current-context "elsewhere" is not in contexts');

    const wrongUser = parseKubeconfig(minimal('https://api', { token: 'sekret' }), 'k');
    wrongUser.contexts = [{ name: 'ctx', cluster: 'c', user: 'nobody' }];
    const message = await optionsOf(new Kubeconfig(wrongUser, 'k')).then(
      () => 'resolved',
      (error: unknown) => (error as Error).message,
    );
    expect(message).toBe('kubeconfig k: context "ctx" names user "nobody", which is not in users');
    expect(message).not.toContain('sekret');
    const wrongCluster = parseKubeconfig(minimal('https://api'), 'k');
    wrongCluster.contexts = [{ name: 'ctx', cluster: 'gone', user: 'u' }];
    await expect(optionsOf(new Kubeconfig(wrongCluster, 'k'))).rejects.toThrow(
      'context "ctx" names cluster "gone", which is not in clusters',
    );

    const missingFile = new Kubeconfig(
      parseKubeconfig(minimal('https://api', { tokenFile: '/nonexistent/token' }), 'k'),
      'k',
    );
    await expect(optionsOf(missingFile)).rejects.toThrow(
      'kubeconfig k: user "u" tokenFile /nonexistent/token cannot be read (ENOENT)',
    );
  });

  it('runs an exec credential plugin through client-node, loaded only then', async () => {
    const dir = scratch();
    const plugin = join(dir, 'plugin.mjs');
    writeFileSync(
      plugin,
      `process.stdout.write(JSON.stringify({apiVersion:'client.authentication.k8s.io/v1',kind:'ExecCredential',status:{token:'from-exec'}}));\n`,
    );
    const kc = new Kubeconfig(
      parseKubeconfig(
        minimal('https://api', {
          exec: { apiVersion: 'client.authentication.k8s.io/v1', command: process.execPath, args: [plugin] },
        }),
        'k',
      ),
      'k',
    );
    const opts = await optionsOf(kc);
    expect((opts.headers as Record<string, string>).Authorization).toBe('Bearer from-exec');
  });
});

describe('loadKubeConfig', () => {
  it('merges the $KUBECONFIG list and exposes the current context for the CLI', () => {
    const dir = scratch();
    writeFileSync(join(dir, 'a'), minimal('https://a'));
    writeFileSync(
      join(dir, 'b'),
      JSON.stringify({ clusters: [{ name: 'b', cluster: { server: 'https://b' } }] }),
    );
    delete process.env.KUBERNETES_SERVICE_HOST;
    process.env.KUBECONFIG = [join(dir, 'absent'), ''].join(delimiter);
    expect(() => loadKubeConfig()).toThrow('absent: cannot be read (ENOENT)');
    process.env.KUBECONFIG = [join(dir, 'a'), join(dir, 'b')].join(delimiter);
    const kc = loadKubeConfig();
    expect(kc.getCurrentCluster()?.server).toBe('https://a');
    expect(kc.getContextObject(kc.getCurrentContext())?.namespace).toBe('team');
    expect(kc.source).toBe([join(dir, 'a'), join(dir, 'b')].join(delimiter));
  });

  it('builds the in-cluster config from the ServiceAccount directory, bracketing an IPv6 host', async () => {
    const dir = scratch();
    mkdirSync(join(dir, 'sa'));
    writeFileSync(join(dir, 'sa', 'token'), 'pod-token');
    writeFileSync(join(dir, 'sa', 'ca.crt'), 'POD CA');
    writeFileSync(join(dir, 'sa', 'namespace'), 'tdlib-system\n');
    const kc = new Kubeconfig(inClusterEntries('fd00::1', '443', join(dir, 'sa')), 'in-cluster');
    expect(kc.getCurrentCluster()?.server).toBe('https://[fd00::1]:443');
    expect(kc.getContextObject(kc.getCurrentContext())?.namespace).toBe('tdlib-system');
    const opts = await optionsOf(kc);
    expect(String(opts.ca)).toBe('POD CA');
    expect(opts.headers).toEqual({ Authorization: 'Bearer pod-token' });
    expect(new Kubeconfig(inClusterEntries('10.96.0.1', '6443', dir), 'x').getCurrentCluster()?.server).toBe(
      'https://10.96.0.1:6443',
    );
  });
});
