/**
 * A CloudEvents receiver for tests: records every POST (CloudEvents binary mode), answers 2xx or, while
 * told to fail, 503. Listens on this machine's first non-loopback IPv4 address, because the runtime
 * refuses to post to loopback (and the CRD refuses a loopback uri).
 */
import { createServer, type Server } from 'node:http';
import { networkInterfaces } from 'node:os';

export interface ReceivedEvent {
  id: string;
  type: string;
  source: string;
  subject: string;
  headers: Record<string, string | string[] | undefined>;
  data: Record<string, unknown>;
  /** The answer the receiver gave. */
  status: number;
  at: number;
}

export interface UpdateReceiver {
  url: string;
  /** Every POST, in arrival order, including the ones answered with an error. */
  readonly received: ReceivedEvent[];
  /** The events answered 2xx, in arrival order. */
  accepted(): ReceivedEvent[];
  /** While set, every POST gets this status (e.g. 503) and is not accepted. */
  failWith(status: number | undefined): void;
  close(): Promise<void>;
}

export function routableAddress(): string {
  for (const addresses of Object.values(networkInterfaces()))
    for (const address of addresses ?? [])
      if (address.family === 'IPv4' && !address.internal) return address.address;
  throw new Error(
    'this machine has no non-loopback IPv4 address: the update sink tests need one (the runtime never posts to loopback)',
  );
}

export async function startUpdateReceiver(path = '/events'): Promise<UpdateReceiver> {
  const received: ReceivedEvent[] = [];
  let failing: number | undefined;
  const host = routableAddress();
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const status = request.method !== 'POST' || request.url !== path ? 404 : (failing ?? 202);
      let data: Record<string, unknown> = {};
      try {
        data = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
      } catch {
        data = {};
      }
      const header = (name: string): string => String(request.headers[name] ?? '');
      received.push({
        id: decodeURIComponent(header('ce-id')),
        type: header('ce-type'),
        source: decodeURIComponent(header('ce-source')),
        subject: decodeURIComponent(header('ce-subject')),
        headers: request.headers,
        data,
        status,
        at: Date.now(),
      });
      response.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://${host}:${port}${path}`,
    received,
    accepted: () => received.filter((e) => e.status >= 200 && e.status < 300),
    failWith: (status) => {
      failing = status;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
