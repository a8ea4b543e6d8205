/**
 * A TCP proxy in front of the test kube-apiserver that makes the network between a client and the API slow
 * or silent, for tests of what a client does when its requests hang (Lease renewals that must not outlive
 * their deadline, a runtime whose heartbeat is slow).
 *
 * TLS passes through untouched: the client talks TLS to the real apiserver, whose serving certificate is
 * valid for 127.0.0.1 (test/cluster/pki.ts), which is where the proxy listens. `kubeConfigVia` and
 * `writeKubeconfigVia` give a client the same credentials with the proxy as its server.
 *
 * Controls (they apply to every connection, open or future):
 * - `delay(ms)`: each chunk of client -> server traffic is held `ms` after it reached the proxy (a slow
 *   path or an overloaded apiserver); answers are not delayed. Chunks keep their order.
 * - `pause()` / `resume()`: nothing moves in either direction; what arrives meanwhile is buffered and
 *   flows, in order, on resume (a partition that heals). A side that closes while paused closes the other
 *   side only after its buffered data was delivered, as a FIN behind data in flight would.
 * - `dropConnections()`: drops every open connection and keeps listening (clients reconnect).
 * - `close()`: stops listening and drops every connection.
 *
 * `lastClientDataAt` (performance.now() when client -> server bytes last reached the proxy, before any
 * delay) lets a test bound when a client sent its latest request without reaching into the client.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';

/** Something to deliver to one side: data, or the other side's end (FIN) or close. */
type Item = { data: Buffer; at: number } | { end: true; at: number } | { destroy: true; at: number };

/** One direction of one connection: a FIFO of items, delivered when due and not paused. */
class Lane {
  private readonly items: Item[] = [];
  private timer?: NodeJS.Timeout;
  private finished = false;

  constructor(
    private readonly target: Socket,
    /** How long an item is held after it arrived; undefined while nothing may move (paused). */
    private readonly holdMs: () => number | undefined,
  ) {}

  get buffered(): number {
    return this.items.reduce((sum, item) => sum + ('data' in item ? item.data.length : 0), 0);
  }

  push(item: Item): void {
    if (this.finished) return;
    this.items.push(item);
    this.pump();
  }

  /** Delivers every due item, in order; arms a timer for the next one that is not due yet. */
  pump(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    for (;;) {
      const hold = this.holdMs();
      const head = this.items[0];
      if (this.finished || hold === undefined || !head) return;
      const wait = head.at + hold - performance.now();
      if (wait > 0) {
        this.timer = setTimeout(() => this.pump(), Math.ceil(wait));
        return;
      }
      this.items.shift();
      if ('data' in head) {
        if (!this.target.destroyed) this.target.write(head.data);
      } else if ('end' in head) {
        this.target.end();
      } else {
        // The source is gone: close this side once what was written reached the kernel.
        this.finished = true;
        this.target.end(() => this.target.destroy());
      }
    }
  }

  discard(): void {
    clearTimeout(this.timer);
    this.items.length = 0;
    this.finished = true;
  }
}

interface Connection {
  client: Socket;
  upstream: Socket;
  toServer: Lane;
  toClient: Lane;
}

export class ApiProxy {
  private delayMs = 0;
  private paused = false;
  private lastClientData?: number;
  private readonly connections = new Set<Connection>();

  private constructor(
    private readonly server: Server,
    /** The port the proxy listens on, at 127.0.0.1. */
    readonly port: number,
    private readonly scheme: string,
  ) {}

  /** Starts a proxy on 127.0.0.1 (a free port) in front of `target` (e.g. the apiserver's https URL). */
  static async start(target: string | URL): Promise<ApiProxy> {
    const url = typeof target === 'string' ? new URL(target) : target;
    const targetPort = Number(url.port || (url.protocol === 'http:' ? 80 : 443));
    const targetHost = url.hostname.replace(/^\[|\]$/g, '');
    const server = createServer({ allowHalfOpen: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const proxy = new ApiProxy(server, (server.address() as AddressInfo).port, url.protocol);
    server.on('connection', (client: Socket) => proxy.accept(client, targetHost, targetPort));
    return proxy;
  }

  /** The server a client of the proxy uses: the target's scheme, 127.0.0.1 and the proxy's port. */
  get url(): string {
    return `${this.scheme}//127.0.0.1:${this.port}`;
  }

  /** performance.now() when client -> server bytes last reached the proxy (before any delay). */
  get lastClientDataAt(): number | undefined {
    return this.lastClientData;
  }

  /** Connections currently open through the proxy. */
  get openConnections(): number {
    return this.connections.size;
  }

  /** Bytes held by the proxy right now (delayed or paused), both directions. */
  get bufferedBytes(): number {
    let sum = 0;
    for (const c of this.connections) sum += c.toServer.buffered + c.toClient.buffered;
    return sum;
  }

  /**
   * Holds each chunk of client -> server traffic `ms` after it arrived (0: forward at once). Applies to
   * chunks still held, too: delay(0) releases them.
   */
  delay(ms: number): void {
    this.delayMs = Math.max(0, ms);
    this.pumpAll();
  }

  /** Stops forwarding in both directions; data that arrives meanwhile is kept for resume(). */
  pause(): void {
    this.paused = true;
  }

  /** Forwards everything buffered while paused (in order), then traffic flows again. */
  resume(): void {
    this.paused = false;
    this.pumpAll();
  }

  /**
   * Drops every open connection (buffered data is discarded) and keeps listening: a network blip that cuts
   * every watch and in-flight request at once, after which clients reconnect. Returns how many were dropped.
   */
  dropConnections(): number {
    const open = [...this.connections];
    for (const c of open) this.drop(c);
    return open.length;
  }

  /** Stops listening and drops every connection (buffered data is discarded). */
  async close(): Promise<void> {
    for (const c of [...this.connections]) this.drop(c);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private pumpAll(): void {
    for (const c of this.connections) {
      c.toServer.pump();
      c.toClient.pump();
    }
  }

  private accept(client: Socket, host: string, port: number): void {
    const upstream = connect({ host, port, allowHalfOpen: true });
    const connection: Connection = {
      client,
      upstream,
      toServer: new Lane(upstream, () => (this.paused ? undefined : this.delayMs)),
      toClient: new Lane(client, () => (this.paused ? undefined : 0)),
    };
    this.connections.add(connection);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    client.on('data', (data: Buffer) => {
      const at = performance.now();
      this.lastClientData = at;
      connection.toServer.push({ data, at });
    });
    upstream.on('data', (data: Buffer) => connection.toClient.push({ data, at: performance.now() }));
    // A side that ends or closes does so to the other side behind the data it sent before.
    client.on('end', () => connection.toServer.push({ end: true, at: performance.now() }));
    upstream.on('end', () => connection.toClient.push({ end: true, at: performance.now() }));
    client.on('close', () => {
      connection.toClient.discard();
      connection.toServer.push({ destroy: true, at: performance.now() });
      this.forgetIfClosed(connection);
    });
    upstream.on('close', () => {
      connection.toServer.discard();
      connection.toClient.push({ destroy: true, at: performance.now() });
      this.forgetIfClosed(connection);
    });
    // Errors end in 'close' (handled above); without a listener they would be thrown.
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
  }

  private forgetIfClosed(connection: Connection): void {
    if (connection.client.destroyed && connection.upstream.destroyed) this.connections.delete(connection);
  }

  private drop(connection: Connection): void {
    connection.toServer.discard();
    connection.toClient.discard();
    connection.client.destroy();
    connection.upstream.destroy();
    this.connections.delete(connection);
  }
}

/** A copy of `kc` whose current cluster is `proxy`, with the same CA and user credentials. */
export function kubeConfigVia(kc: KubeConfig, proxy: ApiProxy): KubeConfig {
  const cluster = kc.getCurrentCluster();
  const user = kc.getCurrentUser();
  if (!cluster || !user) throw new Error('kubeconfig has no current cluster or user');
  const copy = new KubeConfig();
  copy.loadFromOptions({
    clusters: [{ ...cluster, name: 'via-proxy', server: proxy.url }],
    users: [user],
    contexts: [{ name: 'via-proxy', cluster: 'via-proxy', user: user.name }],
    currentContext: 'via-proxy',
  });
  return copy;
}

/**
 * Writes a kubeconfig file for `kubeConfigVia(kc, proxy)` (for processes started by a test, e.g. a runtime
 * whose Lease renewals should be slow) and returns its path: `path`, or a new file in a temp directory.
 */
export function writeKubeconfigVia(kc: KubeConfig, proxy: ApiProxy, path?: string): string {
  const target = path ?? join(mkdtempSync(join(tmpdir(), 'tdlib-operator-api-proxy-')), 'kubeconfig');
  writeFileSync(target, kubeConfigVia(kc, proxy).exportConfig(), { mode: 0o600 });
  return target;
}
