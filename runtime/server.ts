/**
 * The runtime pod's HTTP server: /healthz (alive), /readyz (caches synced, hosted clients loaded),
 * /metrics, and the send API's last hop (POST .../telegramaccounts/<name>/messages), which takes requests
 * only from the send API gateway (gateway-token.ts) and only for accounts this pod hosts.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import type { Registry } from '../operator/kube/metrics.js';
import type { DirectSendAnswer, DirectSends } from './sending/direct-sends.js';
import { validSendBody, type SendBody } from './sending/send-body.js';

export interface RuntimeServer {
  port: number;
  close(): Promise<void>;
}

export async function startRuntimeServer(options: {
  port: number;
  registry: Registry;
  ready: () => boolean;
  sends?: {
    /** Undefined when the token is the gateway's, else why not. */
    check: (token: string) => Promise<string | undefined>;
    /** The account's sends while this pod hosts it. */
    of: (namespace: string, name: string) => Promise<DirectSends | undefined>;
  };
}): Promise<RuntimeServer> {
  const app = express();
  app.disable('x-powered-by');
  const sends = options.sends;
  if (sends) {
    const path = '/v1/namespaces/:namespace/telegramaccounts/:name/messages';
    app.post(path, express.json({ limit: '64kb' }), (req, res) => {
      void (async () => {
        const token = /^Bearer (.+)$/.exec(req.get('authorization') ?? '')?.[1];
        const refused = token ? await sends.check(token) : 'no bearer token';
        if (refused) {
          res
            .status(401)
            .json({ reason: 'Unauthorized', message: `only the send API gateway may call this: ${refused}` });
          return;
        }
        const key = req.get('idempotency-key') ?? '';
        const body = validSendBody(req.body as unknown, key);
        if ('error' in body) {
          res.status(400).json({ reason: 'Invalid', message: body.error });
          return;
        }
        const direct = await sends.of(String(req.params.namespace ?? ''), String(req.params.name ?? ''));
        if (!direct) {
          res.status(503).set('retry-after', '2').json({
            reason: 'NotHostedHere',
            message: 'the account is not hosted on this pod (it may be moving); retry',
          });
          return;
        }
        reply(res, await direct.send(toDirectSend(key, body)));
      })().catch((error: unknown) => {
        res.status(500).json({ reason: 'InternalError', message: String((error as Error).message ?? error) });
      });
    });
    app.all(path, (_req, res) => {
      res
        .status(405)
        .set('allow', 'POST')
        .json({ reason: 'MethodNotAllowed', message: 'only POST sends a message' });
    });
  }
  app.get('/healthz', (_req, res) => {
    res.type('text/plain').send('ok\n');
  });
  app.get('/readyz', (_req, res) => {
    const ready = options.ready();
    res
      .status(ready ? 200 : 503)
      .type('text/plain')
      .send(ready ? 'ok\n' : 'not ready\n');
  });
  app.get('/metrics', async (_req, res) => {
    res.type(options.registry.contentType).send(await options.registry.metrics());
  });
  function reply(res: express.Response, answer: DirectSendAnswer): void {
    if ('messageId' in answer) {
      res.status(200).json({ chatId: answer.chatId, messageId: answer.messageId, replayed: answer.replayed });
      return;
    }
    if (answer.retryAfterSeconds) res.set('retry-after', String(answer.retryAfterSeconds));
    res.status(answer.status).json({ reason: answer.reason, message: answer.message });
  }
  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(options.port, () => resolve(s));
    s.once('error', reject);
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function toDirectSend(key: string, body: SendBody) {
  return { key, ...body };
}
