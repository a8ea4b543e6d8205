/**
 * The send API gateway as a process (what its Deployment runs), serving HTTPS with a certificate made here
 * for 127.0.0.1, and a client that calls it as a workload would: a bearer token and an Idempotency-Key.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { request as requestHttp } from 'node:http';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { waitFor } from '../cluster/wait.js';

const gatewayMain = resolve('dist/operator/gateway/main.js');

export interface GatewayProcess {
  url: string;
  ca: string;
  /** The gateway's certificate and key (PEM), for a reference server that presents the same. */
  tls: { cert: string; key: string };
  child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

export async function startGatewayProcess(options: {
  kubeconfig: string;
  namespace: string;
  /** The gateway's own token for the runtime audience. */
  runtimeToken: string;
}): Promise<GatewayProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'tdlib-send-gateway-'));
  const cert = join(dir, 'tls.crt');
  const key = join(dir, 'tls.key');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=tdlib-send-gateway',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { stdio: 'ignore' },
  );
  const tokenPath = join(dir, 'runtime-token');
  writeFileSync(tokenPath, options.runtimeToken, { mode: 0o600 });
  const child = spawn(process.execPath, [gatewayMain], {
    env: {
      ...process.env,
      KUBECONFIG: options.kubeconfig,
      WATCH_NAMESPACE: options.namespace,
      GATEWAY_PORT: '0',
      GATEWAY_TLS_CERT_FILE: cert,
      GATEWAY_TLS_KEY_FILE: key,
      GATEWAY_RUNTIME_TOKEN_FILE: tokenPath,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr?.setEncoding('utf8').on('data', (c: string) => (out += c));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const port = await waitFor(
    'the send API gateway to listen',
    () => out.match(/"port":(\d+)[^\n]*"msg":"send API gateway started"/)?.[1],
    { timeoutMs: 30_000, onTimeout: () => out.slice(-3000) },
  );
  return {
    url: `https://127.0.0.1:${port}`,
    ca: readFileSync(cert, 'utf8'),
    tls: { cert: readFileSync(cert, 'utf8'), key: readFileSync(key, 'utf8') },
    child,
    output: () => out,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

export interface SendAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Record<string, unknown>;
}

/** One HTTPS request to the gateway (or, with `insecure`, to anything over http). */
export function callSendApi(
  url: string,
  options: { method?: string; token?: string; key?: string; body?: unknown; ca?: string },
): Promise<SendAnswer> {
  const payload = options.body === undefined ? '' : JSON.stringify(options.body);
  const target = new URL(url);
  const send = target.protocol === 'https:' ? request : (requestHttp as typeof request);
  return new Promise((resolvePromise, reject) => {
    const req = send(
      target,
      {
        method: options.method ?? 'POST',
        ...(options.ca ? { ca: options.ca } : {}),
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(payload),
          ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
          ...(options.key ? { 'idempotency-key': options.key } : {}),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (c: string) => (text += c));
        res.on('end', () => {
          let body: Record<string, unknown> = {};
          try {
            body = JSON.parse(text) as Record<string, unknown>;
          } catch {
            body = { text };
          }
          resolvePromise({ status: res.statusCode ?? 0, headers: res.headers, body });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}
