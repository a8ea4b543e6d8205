/**
 * A thin REST layer over the kube-apiserver: get/list/create/replace/delete, server-side apply and patches,
 * plus the raw streaming request the reflector builds watches on.
 *
 * Why node:https and not the global fetch: Node's fetch (undici) cannot present the client certificate a
 * kubeconfig may carry unless the `undici` package supplies a dispatcher, and that is not a dependency; an
 * https.Agent built from the kubeconfig's TLS material is what client-node itself hands to node-fetch. We
 * keep two agents: one for ordinary requests (bounded, keep-alive) and one for watches, so thousands of
 * long-lived watch sockets can never starve reconcilers of connections (HTTP/1.1 has no multiplexing).
 *
 * Every attempt is counted in rest_client_requests_total{code,method,host} and timed in
 * rest_client_request_duration_seconds{verb,host} (client-go's names). 429 and 5xx-with-Retry-After are
 * retried after the delay the server asked for, a bounded number of times (client-go's checkWait).
 */
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import tlsModule from 'node:tls';
import type { Counter, Histogram, Registry } from 'prom-client';
import { ApiError, apiErrorFrom, isGone, parseRetryAfter } from './errors.js';
import type { ClusterAccess } from './kubeconfig.js';
import type { Logger } from './logging.js';
import { counter, defaultRegistry, histogram } from './metrics.js';
import {
  apiVersionOf,
  collectionPath,
  objectPath,
  type ApiObject,
  type ResourceDescriptor,
} from './resource.js';
import { Semaphore, deadline, jitter, sleep } from './util.js';

export { ApiError } from './errors.js';
export {
  apiErrorFrom,
  ignoreNotFound,
  isAlreadyExists,
  isApiError,
  isConflict,
  isGone,
  isNotFound,
  isTooManyRequests,
  parseRetryAfter,
} from './errors.js';
export { loadKubeConfig, type ClusterAccess } from './kubeconfig.js';

export interface RestClientOptions {
  registry?: Registry;
  logger?: Logger;
  /** Concurrent non-watch requests (default 64); more wait their turn instead of opening sockets. */
  maxConcurrentRequests?: number;
  /** Retries of 429 / 5xx-with-Retry-After responses (default 5). */
  maxRetries?: number;
  /** Upper bound on one Retry-After wait (default 30 s). */
  maxRetryAfterMs?: number;
  /** Timeout of one non-watch request attempt (default 30 s). */
  requestTimeoutMs?: number;
  /** A request slower than this counts as API trouble (see apiTroubleEndedAt); default 5 s. */
  slowRequestMs?: number;
  userAgent?: string;
}

export interface RequestOptions {
  signal?: AbortSignal;
}

export interface ListOptions extends RequestOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Page size (the apiserver may return fewer). */
  limit?: number;
  continue?: string;
  resourceVersion?: string;
  resourceVersionMatch?: 'Exact' | 'NotOlderThan';
  /** Only each object's metadata (PartialObjectMetadata): what a cache needs when the content is not its business. */
  metadataOnly?: boolean;
}

export interface ObjectList<T> {
  apiVersion?: string;
  kind?: string;
  metadata: { resourceVersion?: string; continue?: string; remainingItemCount?: number };
  items: T[];
}

export interface WriteOptions extends RequestOptions {
  fieldManager?: string;
  dryRun?: boolean;
}

export interface ApplyOptions extends RequestOptions {
  /** One field manager per control loop: SSA tracks field ownership by it. */
  fieldManager: string;
  /** Take over fields another manager owns (default true: the controller is the authority for its fields). */
  force?: boolean;
  dryRun?: boolean;
}

export interface DeleteOptions extends RequestOptions {
  propagationPolicy?: 'Foreground' | 'Background' | 'Orphan';
  gracePeriodSeconds?: number;
  /** Delete only this incarnation / version of the object. */
  preconditions?: { uid?: string; resourceVersion?: string };
}

export interface WatchRequestOptions extends RequestOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  resourceVersion?: string;
  allowWatchBookmarks?: boolean;
  timeoutSeconds?: number;
  /** Events carry only each object's metadata (PartialObjectMetadata), as in ListOptions. */
  metadataOnly?: boolean;
}

export type JsonPatchOperation =
  | { op: 'add' | 'replace' | 'test'; path: string; value: unknown }
  | { op: 'remove'; path: string }
  | { op: 'move' | 'copy'; from: string; path: string };

/**
 * The apiserver converts objects to PartialObjectMetadata before it serializes them, so the content never
 * crosses the wire (client-go's metadata client asks the same way). Plain JSON stays acceptable: a server
 * that cannot convert sends whole objects, whose metadata is the same.
 */
const METADATA_LIST_ACCEPT =
  'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1, application/json';
const METADATA_ACCEPT = 'application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1, application/json';

type Query = Record<string, string | number | boolean | undefined>;

interface RawRequest extends RequestOptions {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  query?: Query;
  body?: unknown;
  contentType?: string;
  /** What the answer may be (default application/json; /openid/v1/jwks answers application/jwk-set+json). */
  accept?: string;
}

interface Connection {
  baseUrl: URL;
  agent: http.Agent;
  watchAgent: http.Agent;
  transport: typeof http | typeof https;
}

interface RestMetrics {
  requests: Counter<'code' | 'method' | 'host'>;
  duration: Histogram<'verb' | 'host'>;
  retries: Counter<'code' | 'method' | 'host'>;
}

function restMetrics(registry: Registry): RestMetrics {
  return {
    requests: counter(registry, {
      name: 'rest_client_requests_total',
      help: 'Number of HTTP requests, partitioned by status code, method, and host.',
      labelNames: ['code', 'method', 'host'],
    }),
    duration: histogram(registry, {
      name: 'rest_client_request_duration_seconds',
      help: 'Request latency in seconds (until response headers for watches). Broken down by verb and host.',
      labelNames: ['verb', 'host'],
      buckets: [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60],
    }),
    retries: counter(registry, {
      name: 'rest_client_request_retries_total',
      help: 'Number of request retries, partitioned by status code, method, and host.',
      labelNames: ['code', 'method', 'host'],
    }),
  };
}

/** Auth headers are re-read this often, so rotated ServiceAccount tokens and exec credentials are picked up. */
const AUTH_REFRESH_MS = 30_000;

export class RestClient {
  private connection?: Promise<Connection>;
  private authHeaders?: { at: number; headers: Promise<Record<string, string>> };
  private readonly metrics: RestMetrics;
  private readonly limiter: Semaphore;
  private readonly maxRetries: number;
  private readonly maxRetryAfterMs: number;
  private readonly requestTimeoutMs: number;
  private readonly userAgent: string;
  private writes = 0;
  private requestsSent = 0;
  private troubleEndedAt = 0;

  constructor(
    readonly kubeConfig: ClusterAccess,
    private readonly options: RestClientOptions = {},
  ) {
    this.metrics = restMetrics(options.registry ?? defaultRegistry());
    this.limiter = new Semaphore(options.maxConcurrentRequests ?? 64);
    this.maxRetries = options.maxRetries ?? 5;
    this.maxRetryAfterMs = options.maxRetryAfterMs ?? 30_000;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.userAgent = options.userAgent ?? 'tdlib-operator';
  }

  /** Write requests (anything but GET) sent so far, retries included: the benchmark's API-writes counter. */
  writeCount(): number {
    return this.writes;
  }

  /** Every request attempt sent so far. */
  requestCount(): number {
    return this.requestsSent;
  }

  /**
   * When (performance.now ms, 0 = never) the last sign of API trouble ended: a request that failed on the
   * network, got 5xx/429, or took longer than slowRequestMs (a paused or overloaded apiserver). Whoever
   * judges "unchanged for N seconds" from watched objects must not count time during which it could not see.
   */
  apiTroubleEndedAt(): number {
    return this.troubleEndedAt;
  }

  /** The apiserver host (for logs and metric labels). */
  async host(): Promise<string> {
    return (await this.connect()).baseUrl.host;
  }

  /** Closes idle keep-alive sockets and all watch sockets (process shutdown, tests). */
  async close(): Promise<void> {
    if (!this.connection) return;
    const { agent, watchAgent } = await this.connection;
    agent.destroy();
    watchAgent.destroy();
    this.connection = undefined;
  }

  // ---- typed verbs ----------------------------------------------------------------------------------

  get<T extends ApiObject = ApiObject>(
    resource: ResourceDescriptor,
    namespace: string | undefined,
    name: string,
    options: RequestOptions & { subresource?: string } = {},
  ): Promise<T> {
    return this.json<T>({
      method: 'GET',
      path: objectPath(resource, namespace, name, options.subresource),
      ...options,
    });
  }

  /** One page of a list. */
  async list<T extends ApiObject = ApiObject>(
    resource: ResourceDescriptor,
    options: ListOptions = {},
  ): Promise<ObjectList<T>> {
    const list = await this.json<ObjectList<T>>({
      method: 'GET',
      path: collectionPath(resource, options.namespace),
      query: {
        labelSelector: options.labelSelector,
        fieldSelector: options.fieldSelector,
        limit: options.limit,
        continue: options.continue,
        resourceVersion: options.resourceVersion,
        resourceVersionMatch: options.resourceVersionMatch,
      },
      accept: options.metadataOnly ? METADATA_LIST_ACCEPT : undefined,
      signal: options.signal,
    });
    // An empty PartialObjectMetadataList comes with "items": null.
    return list.items ? list : { ...list, items: [] };
  }

  /**
   * Lists every page (limit + continue, default 500 per page). If a continue token expires mid-way (410), it
   * falls back to one unpaginated list, as client-go's pager does, rather than paging forever behind a fast
   * compaction. `onPage` lets a caller process (and drop) pages as they come; `restart` is true for the
   * unpaginated list of that fallback, which replaces every page before it (a later snapshot).
   */
  async listAll<T extends ApiObject = ApiObject>(
    resource: ResourceDescriptor,
    options: Omit<ListOptions, 'continue'> & { onPage?: (items: T[], restart: boolean) => void } = {},
  ): Promise<{ items: T[]; resourceVersion: string }> {
    const items: T[] = [];
    const limit = options.limit ?? 500;
    let token: string | undefined;
    let resourceVersion = '';
    for (;;) {
      let page: ObjectList<T>;
      try {
        page = await this.list<T>(resource, { ...options, limit, continue: token });
      } catch (error) {
        if (token !== undefined && isGone(error)) {
          const full = await this.list<T>(resource, { ...options, limit: undefined, continue: undefined });
          options.onPage?.(full.items, true);
          return { items: full.items, resourceVersion: full.metadata.resourceVersion ?? '' };
        }
        throw error;
      }
      if (options.onPage) options.onPage(page.items, false);
      else for (const item of page.items) items.push(item);
      resourceVersion = page.metadata.resourceVersion ?? resourceVersion;
      token = page.metadata.continue || undefined;
      if (!token) return { items, resourceVersion };
    }
  }

  create<T extends ApiObject = ApiObject>(
    resource: ResourceDescriptor,
    obj: T,
    options: WriteOptions = {},
  ): Promise<T> {
    return this.json<T>({
      method: 'POST',
      path: collectionPath(resource, resource.namespaced ? requireNamespace(resource, obj) : undefined),
      query: writeQuery(options),
      body: withTypeMeta(resource, obj),
      signal: options.signal,
    });
  }

  /**
   * PUT: a full update. With metadata.resourceVersion set the apiserver applies it only if the object is
   * unchanged since that version (409 Conflict otherwise): optimistic concurrency, as leader election needs.
   */
  replace<T extends ApiObject = ApiObject>(
    resource: ResourceDescriptor,
    obj: T,
    options: WriteOptions & { subresource?: string } = {},
  ): Promise<T> {
    return this.json<T>({
      method: 'PUT',
      path: objectPath(resource, namespaceOf(resource, obj), requireName(obj), options.subresource),
      query: writeQuery(options),
      body: withTypeMeta(resource, obj),
      signal: options.signal,
    });
  }

  async delete(
    resource: ResourceDescriptor,
    namespace: string | undefined,
    name: string,
    options: DeleteOptions = {},
  ): Promise<void> {
    const body: Record<string, unknown> = { apiVersion: 'v1', kind: 'DeleteOptions' };
    if (options.propagationPolicy) body.propagationPolicy = options.propagationPolicy;
    if (options.gracePeriodSeconds !== undefined) body.gracePeriodSeconds = options.gracePeriodSeconds;
    if (options.preconditions) body.preconditions = options.preconditions;
    await this.json<unknown>({
      method: 'DELETE',
      path: objectPath(resource, namespace, name),
      body,
      signal: options.signal,
    });
  }

  /**
   * Server-side apply: the body is the caller's intent (only the fields it manages), sent as JSON (a subset of
   * YAML) with content type application/apply-patch+yaml. apiVersion/kind are filled from the descriptor.
   */
  applyPatch<T extends ApiObject = ApiObject>(
    resource: ResourceDescriptor,
    obj: ApiObject,
    options: ApplyOptions,
  ): Promise<T> {
    return this.apply<T>(resource, obj, options, undefined);
  }

  /** Server-side apply of the status subresource (spec fields in `obj` are ignored by the apiserver). */
  applyStatus<T extends ApiObject = ApiObject>(
    resource: ResourceDescriptor,
    obj: ApiObject,
    options: ApplyOptions,
  ): Promise<T> {
    return this.apply<T>(resource, obj, options, 'status');
  }

  /** JSON merge patch (RFC 7386): null deletes a key, arrays are replaced whole. */
  mergePatch<T extends ApiObject = ApiObject>(
    resource: ResourceDescriptor,
    namespace: string | undefined,
    name: string,
    patch: unknown,
    options: WriteOptions & { subresource?: string } = {},
  ): Promise<T> {
    return this.json<T>({
      method: 'PATCH',
      path: objectPath(resource, namespace, name, options.subresource),
      query: writeQuery(options),
      body: patch,
      contentType: 'application/merge-patch+json',
      signal: options.signal,
    });
  }

  /** JSON patch (RFC 6902); a `test` op makes it conditional (e.g. remove a finalizer only if still at index i). */
  jsonPatch<T extends ApiObject = ApiObject>(
    resource: ResourceDescriptor,
    namespace: string | undefined,
    name: string,
    operations: JsonPatchOperation[],
    options: WriteOptions & { subresource?: string } = {},
  ): Promise<T> {
    return this.json<T>({
      method: 'PATCH',
      path: objectPath(resource, namespace, name, options.subresource),
      query: writeQuery(options),
      body: operations,
      contentType: 'application/json-patch+json',
      signal: options.signal,
    });
  }

  /**
   * Opens a watch and returns the response stream once the apiserver answered 200 (line-delimited JSON
   * events; see watch.ts). Non-200 answers throw ApiError (410 included). Not retried here: the reflector
   * owns reconnects, backoff and relists.
   */
  async watch(resource: ResourceDescriptor, options: WatchRequestOptions): Promise<IncomingMessage> {
    const query: Query = {
      watch: 'true',
      allowWatchBookmarks: options.allowWatchBookmarks ?? true,
      resourceVersion: options.resourceVersion,
      timeoutSeconds: options.timeoutSeconds,
      labelSelector: options.labelSelector,
      fieldSelector: options.fieldSelector,
    };
    const connection = await this.connect();
    const response = await this.attempt(
      connection,
      {
        method: 'GET',
        path: collectionPath(resource, options.namespace),
        query,
        accept: options.metadataOnly ? METADATA_ACCEPT : undefined,
        signal: options.signal,
      },
      true,
    );
    if (response.statusCode !== 200) {
      const body = await readBody(response);
      throw apiErrorFrom(
        response.statusCode ?? 0,
        body,
        `WATCH ${collectionPath(resource, options.namespace)}`,
        secondsOf(parseRetryAfter(header(response, 'retry-after'))),
      );
    }
    return response;
  }

  /** Any JSON request (escape hatch for paths without a descriptor, e.g. /version, /readyz). */
  async request<T>(request: RawRequest): Promise<T> {
    return this.json<T>(request);
  }

  // ---- internals ------------------------------------------------------------------------------------

  private apply<T>(
    resource: ResourceDescriptor,
    obj: ApiObject,
    options: ApplyOptions,
    subresource: string | undefined,
  ): Promise<T> {
    if (!options.fieldManager) throw new Error('server-side apply needs a fieldManager');
    return this.json<T>({
      method: 'PATCH',
      path: objectPath(resource, namespaceOf(resource, obj), requireName(obj), subresource),
      query: {
        fieldManager: options.fieldManager,
        force: options.force ?? true,
        dryRun: options.dryRun ? 'All' : undefined,
      },
      body: withTypeMeta(resource, obj),
      contentType: 'application/apply-patch+yaml',
      signal: options.signal,
    });
  }

  private async json<T>(request: RawRequest): Promise<T> {
    const connection = await this.connect();
    const release = await this.limiter.acquire(request.signal);
    try {
      for (let attempt = 0; ; attempt++) {
        let response: IncomingMessage;
        // Each attempt's own timeout covers the answer's body too. Held as a timer: see deadline() for why
        // not AbortSignal.timeout inside AbortSignal.any.
        const limit = deadline(this.requestTimeoutMs, request.signal);
        let status: number;
        let text: string;
        try {
          try {
            response = await this.attempt(connection, request, false, limit.signal);
          } catch (error) {
            if (attempt < 3 && retryableNetworkError(error, request.method) && !request.signal?.aborted) {
              this.metrics.retries.inc({
                code: '<error>',
                method: request.method,
                host: connection.baseUrl.host,
              });
              await sleep(jitter(200 * 2 ** attempt), request.signal);
              continue;
            }
            throw error;
          }
          status = response.statusCode ?? 0;
          text = await readBody(response);
        } finally {
          limit.clear();
        }
        if (status >= 200 && status < 300) {
          return (text.length > 0 ? JSON.parse(text) : undefined) as T;
        }
        const retryAfterMs = parseRetryAfter(header(response, 'retry-after'));
        // client-go's checkWait: 429 always means "not processed, try later" (default 1 s); a 5xx is retried
        // only when the server said when (Retry-After), since otherwise a write may have been applied.
        const retryable = status === 429 || (status >= 500 && retryAfterMs !== undefined);
        if (retryable && attempt < this.maxRetries && !request.signal?.aborted) {
          // Never sooner than asked; up to 25% later so throttled clients don't all return in the same instant.
          const wait = Math.min(jitter(retryAfterMs ?? 1000, 0.25), this.maxRetryAfterMs);
          this.metrics.retries.inc({
            code: String(status),
            method: request.method,
            host: connection.baseUrl.host,
          });
          this.options.logger?.debug(
            { status, path: request.path, waitMs: wait, attempt },
            'apiserver asked to retry',
          );
          await sleep(wait, request.signal);
          continue;
        }
        throw apiErrorFrom(status, text, `${request.method} ${request.path}`, secondsOf(retryAfterMs));
      }
    } finally {
      release();
    }
  }

  /** Sends one request and resolves with the response once headers arrived (body unread). */
  private async attempt(
    connection: Connection,
    request: RawRequest,
    streaming: boolean,
    attemptSignal?: AbortSignal,
  ): Promise<IncomingMessage> {
    const url = new URL(connection.baseUrl.pathname.replace(/\/$/, '') + request.path, connection.baseUrl);
    for (const [key, value] of Object.entries(request.query ?? {})) {
      if (value !== undefined && value !== '') url.searchParams.set(key, String(value));
    }
    const payload = request.body === undefined ? undefined : Buffer.from(JSON.stringify(request.body));
    const headers: Record<string, string> = {
      ...(await this.auth()),
      Accept: request.accept ?? 'application/json',
      'User-Agent': this.userAgent,
    };
    if (payload) {
      headers['Content-Type'] = request.contentType ?? 'application/json';
      headers['Content-Length'] = String(payload.length);
    }
    const signal = attemptSignal ?? request.signal;
    const host = connection.baseUrl.host;
    const started = process.hrtime.bigint();
    this.requestsSent++;
    if (request.method !== 'GET') this.writes++;
    try {
      const response = await new Promise<IncomingMessage>((resolve, reject) => {
        const req = connection.transport.request(
          url,
          {
            method: request.method,
            headers,
            agent: streaming ? connection.watchAgent : connection.agent,
            signal,
          },
          resolve,
        );
        req.on('error', reject);
        req.end(payload);
      });
      this.metrics.requests.inc({ code: String(response.statusCode ?? 0), method: request.method, host });
      const code = response.statusCode ?? 0;
      if (code >= 500 || code === 429) this.troubleEndedAt = performance.now();
      return response;
    } catch (error) {
      this.metrics.requests.inc({ code: '<error>', method: request.method, host });
      if (!request.signal?.aborted) this.troubleEndedAt = performance.now();
      throw error;
    } finally {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      this.metrics.duration.observe({ verb: request.method, host }, seconds);
      if (!streaming && seconds * 1000 > (this.options.slowRequestMs ?? 5000))
        this.troubleEndedAt = performance.now();
    }
  }

  private connect(): Promise<Connection> {
    this.connection ??= this.buildConnection().catch((error: unknown) => {
      this.connection = undefined;
      throw error;
    });
    return this.connection;
  }

  private async buildConnection(): Promise<Connection> {
    const cluster = this.kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error('kubeconfig has no current cluster');
    const baseUrl = new URL(cluster.server);
    const tls: https.RequestOptions = {};
    await this.kubeConfig.applyToHTTPSOptions(tls);
    const transport = baseUrl.protocol === 'http:' ? http : https;
    // A proxy (cluster.proxyUrl) needs client-node's proxy agent; otherwise build keep-alive agents with
    // the kubeconfig's TLS material. keepAlive also turns on TCP keepalive probes, which is what detects a
    // silently dead watch connection at the socket level (the watchdog catches the rest).
    const proxyAgent = cluster.proxyUrl && tls.agent instanceof http.Agent ? tls.agent : undefined;
    // One TLS context for every connection: given the PEM material instead, each new connection parses the
    // CA, certificate and key again (2-3 ms of the event loop each; 144 ms while a runtime opened its
    // connections at start, profiled).
    const secureContext =
      transport === https && !proxyAgent
        ? tlsModule.createSecureContext({
            ca: tls.ca,
            cert: tls.cert,
            key: tls.key,
            pfx: tls.pfx,
            passphrase: tls.passphrase,
          })
        : undefined;
    const makeAgent = (maxSockets: number): http.Agent => {
      if (proxyAgent) return proxyAgent;
      const common = { keepAlive: true, keepAliveMsecs: 15_000, maxSockets, maxFreeSockets: 32 };
      if (transport === http) return new http.Agent(common);
      return new https.Agent({
        ...common,
        secureContext,
        rejectUnauthorized: tls.rejectUnauthorized,
        servername: tls.servername ?? cluster.tlsServerName,
      });
    };
    return {
      baseUrl,
      agent: makeAgent((this.options.maxConcurrentRequests ?? 64) + 8),
      watchAgent: makeAgent(Infinity),
      transport,
    };
  }

  /** Authorization headers from the kubeconfig (bearer token, exec plugin, basic), cached briefly. */
  private auth(): Promise<Record<string, string>> {
    const now = Date.now();
    if (!this.authHeaders || now - this.authHeaders.at > AUTH_REFRESH_MS) {
      const headers = (async () => {
        const opts: https.RequestOptions = {};
        await this.kubeConfig.applyToHTTPSOptions(opts);
        const result: Record<string, string> = {};
        for (const [key, value] of Object.entries(opts.headers ?? {})) {
          if (typeof value === 'string' || typeof value === 'number') result[key] = String(value);
        }
        if (opts.auth) result.Authorization = `Basic ${Buffer.from(opts.auth).toString('base64')}`;
        // applyToHTTPSOptions builds a throwaway agent each call; destroy it so it holds nothing.
        if (opts.agent instanceof http.Agent) opts.agent.destroy();
        return result;
      })();
      this.authHeaders = { at: now, headers };
      headers.catch(() => {
        this.authHeaders = undefined;
      });
    }
    return this.authHeaders.headers;
  }
}

function header(response: IncomingMessage, name: string): string | undefined {
  const value = response.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function secondsOf(ms: number | undefined): number | undefined {
  return ms === undefined ? undefined : Math.ceil(ms / 1000);
}

async function readBody(response: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of response) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Connection refused means the request never reached a server: safe to resend for every verb. Resets and
 * timeouts may hit after the server acted, so only idempotent verbs are resent (a POST could create twice).
 */
function retryableNetworkError(error: unknown, method: RawRequest['method']): boolean {
  if (error instanceof ApiError) return false;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ECONNREFUSED') return true;
  if (method === 'POST') return false;
  return code === 'ECONNRESET' || code === 'EPIPE' || code === 'ETIMEDOUT' || code === 'ECONNABORTED';
}

function writeQuery(options: WriteOptions): Query {
  return { fieldManager: options.fieldManager, dryRun: options.dryRun ? 'All' : undefined };
}

function requireName(obj: ApiObject): string {
  const name = obj.metadata?.name;
  if (!name) throw new Error(`object of kind ${obj.kind ?? '?'} has no metadata.name`);
  return name;
}

function requireNamespace(resource: ResourceDescriptor, obj: ApiObject): string {
  const namespace = obj.metadata?.namespace;
  if (!namespace) throw new Error(`${resource.kind} ${obj.metadata?.name ?? ''} needs metadata.namespace`);
  return namespace;
}

function namespaceOf(resource: ResourceDescriptor, obj: ApiObject): string | undefined {
  return resource.namespaced ? requireNamespace(resource, obj) : undefined;
}

/** Sets apiVersion/kind from the descriptor when absent (SSA and create require them). */
function withTypeMeta(resource: ResourceDescriptor, obj: ApiObject): ApiObject {
  if (obj.apiVersion && obj.kind) return obj;
  return { ...obj, apiVersion: obj.apiVersion ?? apiVersionOf(resource), kind: obj.kind ?? resource.kind };
}
