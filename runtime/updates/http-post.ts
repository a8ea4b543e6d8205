/**
 * The sink's HTTP POST: node's http/https with the address guard on every connection, the sink's CA
 * bundle and the account's client certificate for https, and no redirects (a receiver cannot send the
 * runtime elsewhere).
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { forbiddenLiteral, guardedLookup } from './address-guard.js';
import type { Post } from './deliverer.js';

export interface HttpPostOptions {
  /** PEM certificates an https receiver's certificate must chain to (default: Node's roots). */
  ca?: string;
  /** Local development only: lets the runtime post to 127.0.0.1 (never to link-local or metadata). */
  allowLoopback?: boolean;
  /** PEM certificate and key presented to an https receiver that asks for one (mutual TLS). */
  clientCertificate?: { cert: string; key: string };
}

export function httpPost(options: HttpPostOptions = {}): Post {
  const lookup = guardedLookup(options.allowLoopback);
  return (url, headers, body, signal) =>
    new Promise((resolve) => {
      let target: URL;
      try {
        target = new URL(url);
      } catch {
        resolve({ error: `not a URL: ${url}` });
        return;
      }
      const refused = forbiddenLiteral(target.hostname, options.allowLoopback);
      if (refused) {
        resolve({ error: refused });
        return;
      }
      const https = target.protocol === 'https:';
      const send = https ? httpsRequest : httpRequest;
      const request = send(
        target,
        {
          method: 'POST',
          headers: { ...headers, 'content-length': Buffer.byteLength(body) },
          lookup,
          signal,
          ...(https && options.ca ? { ca: options.ca } : {}),
          ...(https && options.clientCertificate
            ? { cert: options.clientCertificate.cert, key: options.clientCertificate.key }
            : {}),
        },
        (response) => {
          // The answer's status is all that counts; its body is drained so the connection is reused.
          response.resume();
          const retryAfter = response.headers['retry-after'];
          resolve({ status: response.statusCode ?? 0, ...(retryAfter ? { retryAfter } : {}) });
        },
      );
      request.on('error', (error) => resolve({ error: error.message }));
      request.end(body);
    });
}
