/**
 * The send API gateway: `POST /v1/namespaces/<ns>/telegramaccounts/<name>/messages` with a ServiceAccount
 * token for the API's audience and an Idempotency-Key. In order: authenticate (TokenReview), authorize
 * (SubjectAccessReview of create telegramaccounts/messages on that account: only then is the account's
 * existence revealed), check the request, find the runtime pod hosting the account (its placement and the
 * address its heartbeat Lease advertises, from caches), and forward it there with the gateway's own token
 * for the runtime's audience. The runtime decides exactly once; the gateway keeps no state.
 */
import { readFileSync } from 'node:fs';
import {
  createServer as createHttpServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { ANNOTATION_SEND_URL, type TelegramAccount } from '../../crds/index.js';
import type { Logger } from '../kube/logging.js';
import type { ApiObject } from '../kube/resource.js';
import { errorMessage } from '../kube/util.js';
import type { SendAuthorizer, TokenAuthenticator } from './access.js';

export interface GatewayOptions {
  port: number;
  authn: Pick<TokenAuthenticator, 'authenticate'>;
  authz: Pick<SendAuthorizer, 'maySend'>;
  account: (namespace: string, name: string) => TelegramAccount | undefined;
  /** A runtime pod's heartbeat Lease. */
  heartbeat: (namespace: string, pod: string) => ApiObject | undefined;
  /** The gateway's token for the runtime's audience (re-read: projected tokens rotate). */
  runtimeToken: () => string;
  tls?: { cert: string; key: string };
  logger: Logger;
  /** Forwarding timeout; a send that outlives it is answered 504 and may still complete (retry with the key). */
  timeoutMs?: number;
}

export interface Gateway {
  port: number;
  close(): Promise<void>;
}

const PATH = '/v1/namespaces/:namespace/telegramaccounts/:name/messages';

function problem(
  res: express.Response,
  status: number,
  reason: string,
  message: string,
  retryAfter?: number,
): void {
  if (retryAfter !== undefined) res.set('retry-after', String(retryAfter));
  res.status(status).json({ reason, message });
}

/** The runtime pod's send endpoint, as its heartbeat Lease advertises it. */
export function runtimeBaseUrl(lease: ApiObject | undefined): string | undefined {
  const advertised = lease?.metadata?.annotations?.[ANNOTATION_SEND_URL];
  if (!advertised) return undefined;
  try {
    const url = new URL(advertised);
    return `${url.protocol}//${url.host}`;
  } catch {
    return undefined;
  }
}

export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const app = express();
  app.disable('x-powered-by');
  app.get('/healthz', (_req, res) => {
    res.type('text/plain').send('ok\n');
  });
  app.post(PATH, express.json({ limit: '64kb' }), (req, res) => {
    void handle(req, res).catch((error: unknown) => {
      options.logger.error({ err: errorMessage(error) }, 'send API request failed');
      if (!res.headersSent)
        problem(res, 500, 'InternalError', 'the gateway failed; retry with the same Idempotency-Key');
    });
  });
  app.all(PATH, (_req, res) => {
    res.set('allow', 'POST');
    problem(res, 405, 'MethodNotAllowed', 'only POST sends a message');
  });

  async function handle(req: express.Request, res: express.Response): Promise<void> {
    const namespace = String(req.params.namespace ?? '');
    const name = String(req.params.name ?? '');
    const token = /^Bearer (.+)$/.exec(req.get('authorization') ?? '')?.[1];
    const caller = token ? await options.authn.authenticate(token) : undefined;
    if (!caller) {
      res.set('www-authenticate', 'Bearer');
      problem(
        res,
        401,
        'Unauthorized',
        'send a ServiceAccount token made for the audience tdlib-operator-send-api (a projected token, or kubectl create token <sa> --audience tdlib-operator-send-api) as Authorization: Bearer',
      );
      return;
    }
    const decision = await options.authz.maySend(caller, namespace, name);
    if (!decision.allowed) {
      problem(
        res,
        403,
        'Forbidden',
        `${caller.user} may not create telegramaccounts/messages for ${name} in namespace ${namespace}; grant it with a Role (apiGroups: [telegram.tdlib-operator.dev], resources: [telegramaccounts/messages], verbs: [create])`,
      );
      return;
    }
    if (!req.get('idempotency-key')) {
      problem(
        res,
        400,
        'Invalid',
        'the Idempotency-Key header is required: 1-128 printable characters that name this message (e.g. a UUID), the same on every retry of it',
      );
      return;
    }
    const account = options.account(namespace, name);
    if (!account) {
      problem(res, 404, 'NotFound', `TelegramAccount ${name} does not exist in namespace ${namespace}`);
      return;
    }
    const ready = account.status?.conditions?.find((c) => c.type === 'Ready');
    const pod = account.status?.placement?.pod;
    const base = pod ? runtimeBaseUrl(options.heartbeat(namespace, pod)) : undefined;
    if (ready?.status !== 'True' || !pod || !base) {
      problem(
        res,
        503,
        'AccountNotReady',
        `TelegramAccount ${name} is not ready to send${ready ? ` (${ready.reason}: ${ready.message})` : ''}; retry with the same Idempotency-Key`,
        5,
      );
      return;
    }
    const answer = await forward(`${base}/v1/namespaces/${namespace}/telegramaccounts/${name}/messages`, req);
    res.status(answer.status);
    for (const header of ['retry-after', 'content-type'])
      if (answer.headers[header]) res.set(header, String(answer.headers[header]));
    res.send(answer.body);
  }

  function forward(
    url: string,
    req: express.Request,
  ): Promise<{ status: number; headers: IncomingMessage['headers']; body: Buffer }> {
    const body = JSON.stringify(req.body);
    return new Promise((resolve) => {
      const outgoing = httpRequest(
        url,
        {
          method: 'POST',
          headers: {
            authorization: `Bearer ${options.runtimeToken()}`,
            'idempotency-key': req.get('idempotency-key') ?? '',
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
          },
          signal: AbortSignal.timeout(options.timeoutMs ?? 150_000),
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () =>
            resolve({
              status: response.statusCode ?? 502,
              headers: response.headers,
              body: Buffer.concat(chunks),
            }),
          );
        },
      );
      outgoing.on('error', (error) =>
        resolve({
          status: 503,
          headers: { 'retry-after': '2', 'content-type': 'application/json' },
          body: Buffer.from(
            JSON.stringify({
              reason: 'RuntimeUnavailable',
              message: `the runtime pod hosting the account did not answer (${error.message}); the message may or may not have been accepted: retry with the same Idempotency-Key`,
            }),
          ),
        }),
      );
      outgoing.end(body);
    });
  }

  const server: Server = options.tls ? createHttpsServer(options.tls, app) : createHttpServer(app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, resolve);
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Reads a token file on every call, trimmed (kubelet rewrites projected tokens before they expire). */
export function tokenFile(path: string): () => string {
  return () => readFileSync(path, 'utf8').trim();
}
