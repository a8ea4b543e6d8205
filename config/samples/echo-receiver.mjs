// A receiver of a TelegramAccount's updates (docs/updates.md) that answers every text message it is sent
// through the send API (docs/send-api.md): plain Node, no dependencies.
//
// The reply's Idempotency-Key is made from the event's id, so when the runtime delivers an event again
// (at least once) the gateway answers the first reply instead of sending a second one.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

const port = Number(process.env.PORT ?? 8080);
// e.g. https://tdlib-send-gateway.tdlib-operator-system.svc:8443; the gateway's CA via NODE_EXTRA_CA_CERTS.
const gateway = process.env.SEND_API_URL;
const tokenFile = process.env.SEND_API_TOKEN_FILE ?? '/var/run/secrets/send-api/token';
// The value of the account's spec.updates.auth Secret, which the runtime sends in X-Tdlib-Operator-Token.
const expectedAuth = process.env.UPDATES_AUTH_FILE
  ? readFileSync(process.env.UPDATES_AUTH_FILE, 'utf8').trim()
  : '';
if (!gateway)
  throw new Error(
    'SEND_API_URL is required: the send API gateway, e.g. https://tdlib-send-gateway.tdlib-operator-system.svc:8443',
  );

async function reply(event, source, id) {
  // source: /namespaces/<namespace>/telegramaccounts/<name>, the account that received the message.
  const response = await fetch(`${gateway}/v1${source}/messages`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${readFileSync(tokenFile, 'utf8').trim()}`,
      'idempotency-key': `echo-${id}`,
      'content-type': 'application/json',
    },
    body: JSON.stringify({
      to: String(event.chat_id),
      text: `echo: ${event.content.text.text}`,
      replyToMessageId: event.message_id,
    }),
  });
  return {
    status: response.status,
    retryAfter: response.headers.get('retry-after'),
    body: await response.text(),
  };
}

const server = createServer((req, res) => {
  let body = '';
  req.setEncoding('utf8').on('data', (chunk) => (body += chunk));
  req.on('end', async () => {
    if (expectedAuth && req.headers['x-tdlib-operator-token'] !== expectedAuth)
      return res.writeHead(401).end();
    const type = req.headers['ce-type'];
    const event = JSON.parse(body || '{}');
    if (type !== 'dev.tdlib-operator.telegram.message.new' || event.content?.['@type'] !== 'messageText')
      return res.writeHead(204).end();
    try {
      const answer = await reply(event, String(req.headers['ce-source']), String(req.headers['ce-id']));
      console.log(`${req.headers['ce-id']}: replied, ${answer.status} ${answer.body}`);
      // Not now (flood wait, account not ready, gateway down): let the runtime deliver the event again later.
      if (answer.status === 429 || answer.status >= 500)
        return res.writeHead(503, answer.retryAfter ? { 'retry-after': answer.retryAfter } : {}).end();
      res.writeHead(204).end();
    } catch (error) {
      console.log(
        `${req.headers['ce-id']}: the send API did not answer (${error.message}); asking for a retry`,
      );
      res.writeHead(503).end();
    }
  });
});
server.listen(port, () =>
  console.log(`echo receiver listening on :${server.address().port}, replying through ${gateway}`),
);
