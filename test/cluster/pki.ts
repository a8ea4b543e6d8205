import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Files of the test cluster's single CA, as kwokctl does: one CA signs serving and client certificates. */
export interface Pki {
  dir: string;
  caCert: string;
  caKey: string;
  /** Serving certificate of kube-apiserver, also the admin client certificate (O=system:masters). */
  adminCert: string;
  adminKey: string;
  /** Key pair that signs and verifies ServiceAccount tokens. */
  serviceAccountKey: string;
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Signs a client certificate for `user` in `groups`: the way tests act as a user other than admin. */
export function issueClientCert(pki: Pki, user: string, groups: string[]): { cert: string; key: string } {
  const base = join(pki.dir, `user-${user.replace(/[^a-zA-Z0-9_-]/g, '_')}`);
  const subject = [...groups.map((g) => `/O=${g}`), `/CN=${user}`].join('');
  openssl([
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-subj',
    subject,
    '-keyout',
    `${base}.key`,
    '-out',
    `${base}.csr`,
  ]);
  writeFileSync(
    `${base}.ext`,
    'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n',
  );
  openssl([
    'x509',
    '-req',
    '-in',
    `${base}.csr`,
    '-CA',
    pki.caCert,
    '-CAkey',
    pki.caKey,
    '-CAcreateserial',
    '-days',
    '365',
    '-extfile',
    `${base}.ext`,
    '-out',
    `${base}.crt`,
  ]);
  return { cert: `${base}.crt`, key: `${base}.key` };
}

export function createPki(dir: string): Pki {
  mkdirSync(dir, { recursive: true });
  const pki: Pki = {
    dir,
    caCert: join(dir, 'ca.crt'),
    caKey: join(dir, 'ca.key'),
    adminCert: join(dir, 'admin.crt'),
    adminKey: join(dir, 'admin.key'),
    serviceAccountKey: join(dir, 'sa.key'),
  };
  openssl([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '3650',
    '-subj',
    '/CN=tdlib-operator-test-ca',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
    '-keyout',
    pki.caKey,
    '-out',
    pki.caCert,
  ]);
  const csr = join(dir, 'admin.csr');
  const ext = join(dir, 'admin.ext');
  openssl([
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-subj',
    '/O=system:masters/CN=test-admin',
    '-keyout',
    pki.adminKey,
    '-out',
    csr,
  ]);
  writeFileSync(
    ext,
    [
      'basicConstraints=CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth,clientAuth',
      'subjectAltName=DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,' +
        // 10.0.0.1: the kubernetes Service (first address of --service-cluster-ip-range), which pods on the real
        // node reach through real-node.ts's DNAT rule.
        'DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:10.0.0.1',
      '',
    ].join('\n'),
  );
  openssl([
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    pki.caCert,
    '-CAkey',
    pki.caKey,
    '-CAcreateserial',
    '-days',
    '3650',
    '-extfile',
    ext,
    '-out',
    pki.adminCert,
  ]);
  openssl(['genrsa', '-out', pki.serviceAccountKey, '2048']);
  return pki;
}
