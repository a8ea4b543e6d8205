/**
 * The send API's last hop, on its own port (the pool's NetworkPolicy lets only the gateway reach it):
 * POST /v1/namespaces/<ns>/telegramaccounts/<name>/messages, taken only with the gateway's token
 * (gateway-token.ts) and only for accounts this pod hosts.
 */
import express from 'express';
import { listen, type Listening } from './listening.js';
import type { DirectSendAnswer, DirectSends } from './sending/direct-sends.js';
import { validSendBody } from './sending/send-body.js';

export type SendServer = Listening;

function reply(res: express.Response, answer: DirectSendAnswer): void {
  if ('messageId' in answer) {
    res.status(200).json({ chatId: answer.chatId, messageId: answer.messageId, replayed: answer.replayed });
    return;
  }
  if (answer.retryAfterSeconds) res.set('retry-after', String(answer.retryAfterSeconds));
  res.status(answer.status).json({ reason: answer.reason, message: answer.message });
}

export async function startSendServer(options: {
  port: number;
  /** Undefined when the token is the gateway's, else why not. */
  check: (token: string) => Promise<string | undefined>;
  /** The account's sends while this pod hosts it. */
  of: (namespace: string, name: string) => Promise<DirectSends | undefined>;
}): Promise<SendServer> {
  const app = express();
  app.disable('x-powered-by');
  const path = '/v1/namespaces/:namespace/telegramaccounts/:name/messages';
  app.post(path, express.json({ limit: '64kb' }), (req, res) => {
    void (async () => {
      const token = /^Bearer (.+)$/.exec(req.get('authorization') ?? '')?.[1];
      const refused = token ? await options.check(token) : 'no bearer token';
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
      const direct = await options.of(String(req.params.namespace ?? ''), String(req.params.name ?? ''));
      if (!direct) {
        res.status(503).set('retry-after', '2').json({
          reason: 'NotHostedHere',
          message: 'the account is not hosted on this pod (it may be moving); retry',
        });
        return;
      }
      reply(res, await direct.send({ key, ...body }));
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
  return listen(app, options.port);
}
