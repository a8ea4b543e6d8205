/**
 * Where the API server is and how to authenticate to it: a kubeconfig file (or a $KUBECONFIG list), or the
 * pod's ServiceAccount.
 *
 * Why not @kubernetes/client-node's KubeConfig for everything: its module imports every generated API
 * client, and V8 keeps their source text alive (14.6 MB of the operator's 93 MB live heap at 10,000
 * accounts, heap snapshot in docs/benchmarks.md). What the operator and the runtime use in production (a
 * ServiceAccount token and CA, or a kubeconfig with a token, a token file or a client certificate) is read
 * here with the `yaml` package. Whatever needs client-node's authenticators (exec plugins, auth-providers)
 * or its proxy agents (proxy-url) is handed to a KubeConfig built from the same entries, imported on first
 * use, so every kubeconfig kubectl accepts still works.
 */
import { existsSync, readFileSync } from 'node:fs';
import type https from 'node:https';
import { isIPv6 } from 'node:net';
import { homedir } from 'node:os';
import { delimiter, dirname, isAbsolute, join, resolve } from 'node:path';
import type { KubeConfig as ClientNodeKubeConfig } from '@kubernetes/client-node';
import { parse } from 'yaml';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** What the REST client needs to reach the API server; client-node's KubeConfig has the same shape. */
export interface ClusterAccess {
  getCurrentCluster(): KubeCluster | null;
  /** Sets TLS material and authentication (headers, or `auth` for basic) on request options. */
  applyToHTTPSOptions(opts: https.RequestOptions): Promise<void>;
}

export interface KubeCluster {
  readonly name: string;
  readonly server: string;
  readonly caData?: string;
  readonly caFile?: string;
  readonly skipTLSVerify: boolean;
  readonly tlsServerName?: string;
  readonly proxyUrl?: string;
}

export interface KubeUser {
  readonly name: string;
  readonly token?: string;
  readonly tokenFile?: string;
  readonly certData?: string;
  readonly certFile?: string;
  readonly keyData?: string;
  readonly keyFile?: string;
  readonly username?: string;
  readonly password?: string;
  readonly impersonateUser?: string;
  /** Raw `exec` and `auth-provider` stanzas: only client-node's authenticators run them. */
  readonly exec?: unknown;
  readonly authProvider?: unknown;
}

export interface KubeContext {
  readonly name: string;
  readonly cluster: string;
  readonly user?: string;
  readonly namespace?: string;
}

export interface KubeconfigEntries {
  clusters: KubeCluster[];
  users: KubeUser[];
  contexts: KubeContext[];
  currentContext?: string;
}

/** A kubeconfig that cannot be used: `source` is the file (or "in-cluster"); the message names the entry. */
export class KubeconfigError extends Error {
  constructor(
    readonly source: string,
    message: string,
  ) {
    super(`kubeconfig ${source}: ${message}`);
    this.name = 'KubeconfigError';
  }
}

type Fields = Record<string, unknown>;

/** Reads a file the kubeconfig points at (or the kubeconfig itself); errors name it, never its content. */
function readText(source: string, path: string, what?: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new KubeconfigError(source, `${what ? `${what} ${path} ` : ''}cannot be read (${code})`);
  }
}

function isFields(value: unknown): value is Fields {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Reads one optional string field; anything else present is an error naming the field. */
function stringField(source: string, entry: Fields, key: string, where: string): string | undefined {
  const value = entry[key];
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw new KubeconfigError(source, `${where}.${key} must be a string`);
  return value;
}

function namedEntries(source: string, doc: Fields, list: string, inner: string): Array<[string, Fields]> {
  const value = doc[list];
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new KubeconfigError(source, `${list} must be a list`);
  return value.map((item: unknown, index): [string, Fields] => {
    const where = `${list}[${index}]`;
    if (!isFields(item))
      throw new KubeconfigError(source, `${where} must be a mapping with name and ${inner}`);
    const name = item.name;
    if (typeof name !== 'string' || name === '')
      throw new KubeconfigError(source, `${where}.name is missing`);
    const body = item[inner] ?? {};
    if (!isFields(body)) throw new KubeconfigError(source, `${where}.${inner} must be a mapping`);
    return [name, body];
  });
}

/** Relative certificate and token paths are relative to the kubeconfig's own directory, as in kubectl. */
function pathField(source: string, baseDir: string | undefined, entry: Fields, key: string, where: string) {
  const value = stringField(source, entry, key, where);
  if (value === undefined || baseDir === undefined || isAbsolute(value)) return value;
  return resolve(baseDir, value);
}

/**
 * Parses one kubeconfig document. Pure: `baseDir` (the file's directory) anchors relative paths; nothing
 * is read from disk here, so a token file or certificate is read when a request needs it.
 */
export function parseKubeconfig(text: string, source: string, baseDir?: string): KubeconfigEntries {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (error) {
    throw new KubeconfigError(source, `not valid YAML (${(error as Error).message.split('\n')[0]})`);
  }
  if (doc === null || doc === undefined) doc = {};
  if (!isFields(doc)) throw new KubeconfigError(source, 'must be a mapping (kind: Config)');
  const clusters = namedEntries(source, doc, 'clusters', 'cluster').map(([name, c], i): KubeCluster => {
    const where = `clusters[${i}].cluster`;
    const server = stringField(source, c, 'server', where);
    if (!server) throw new KubeconfigError(source, `${where}.server is missing`);
    const skip = c['insecure-skip-tls-verify'];
    if (skip !== undefined && typeof skip !== 'boolean')
      throw new KubeconfigError(source, `${where}.insecure-skip-tls-verify must be true or false`);
    return {
      name,
      server: server.replace(/\/$/, ''),
      caData: stringField(source, c, 'certificate-authority-data', where),
      caFile: pathField(source, baseDir, c, 'certificate-authority', where),
      skipTLSVerify: skip === true,
      tlsServerName: stringField(source, c, 'tls-server-name', where),
      proxyUrl: stringField(source, c, 'proxy-url', where),
    };
  });
  const users = namedEntries(source, doc, 'users', 'user').map(([name, u], i): KubeUser => {
    const where = `users[${i}].user`;
    return {
      name,
      token: stringField(source, u, 'token', where),
      tokenFile: pathField(source, baseDir, u, 'tokenFile', where),
      certData: stringField(source, u, 'client-certificate-data', where),
      certFile: pathField(source, baseDir, u, 'client-certificate', where),
      keyData: stringField(source, u, 'client-key-data', where),
      keyFile: pathField(source, baseDir, u, 'client-key', where),
      username: stringField(source, u, 'username', where),
      password: stringField(source, u, 'password', where),
      impersonateUser: stringField(source, u, 'as', where),
      exec: u.exec ?? undefined,
      authProvider: u['auth-provider'] ?? undefined,
    };
  });
  const contexts = namedEntries(source, doc, 'contexts', 'context').map(([name, c], i): KubeContext => {
    const where = `contexts[${i}].context`;
    const cluster = stringField(source, c, 'cluster', where);
    if (!cluster) throw new KubeconfigError(source, `${where}.cluster is missing`);
    return {
      name,
      cluster,
      user: stringField(source, c, 'user', where),
      namespace: stringField(source, c, 'namespace', where),
    };
  });
  const current = stringField(source, doc, 'current-context', 'the document');
  return { clusters, users, contexts, currentContext: current };
}

/**
 * Merges a $KUBECONFIG list as kubectl does: the first file that names a cluster, user or context wins,
 * and so does the first current-context set.
 */
export function mergeKubeconfigs(files: KubeconfigEntries[]): KubeconfigEntries {
  const firstByName = <T extends { name: string }>(lists: T[][]): T[] => {
    const byName = new Map<string, T>();
    for (const list of lists)
      for (const item of list) if (!byName.has(item.name)) byName.set(item.name, item);
    return [...byName.values()];
  };
  return {
    clusters: firstByName(files.map((f) => f.clusters)),
    users: firstByName(files.map((f) => f.users)),
    contexts: firstByName(files.map((f) => f.contexts)),
    currentContext: files.find((f) => f.currentContext)?.currentContext,
  };
}

/** The pod's ServiceAccount, as client-go's InClusterConfig builds it. */
export function inClusterEntries(host: string, port: string, dir = SERVICE_ACCOUNT_DIR): KubeconfigEntries {
  const serverHost = isIPv6(host) ? `[${host}]` : host;
  const namespaceFile = join(dir, 'namespace');
  const namespace = existsSync(namespaceFile) ? readFileSync(namespaceFile, 'utf8').trim() : undefined;
  return {
    clusters: [
      {
        name: 'in-cluster',
        server: `https://${serverHost}:${port}`,
        caFile: join(dir, 'ca.crt'),
        skipTLSVerify: false,
      },
    ],
    users: [{ name: 'in-cluster', tokenFile: join(dir, 'token') }],
    contexts: [{ name: 'in-cluster', cluster: 'in-cluster', user: 'in-cluster', namespace }],
    currentContext: 'in-cluster',
  };
}

export class Kubeconfig implements ClusterAccess {
  private delegate?: Promise<ClientNodeKubeConfig>;

  constructor(
    private readonly entries: KubeconfigEntries,
    /** Names the config in errors: its file(s), or "in-cluster". */
    readonly source: string,
  ) {}

  getContexts(): readonly KubeContext[] {
    return this.entries.contexts;
  }

  getCurrentContext(): string | undefined {
    return this.entries.currentContext;
  }

  setCurrentContext(name: string): void {
    this.entries.currentContext = name;
    this.delegate = undefined;
  }

  getContextObject(name: string | undefined): KubeContext | null {
    return this.entries.contexts.find((c) => c.name === name) ?? null;
  }

  getCurrentCluster(): KubeCluster | null {
    const context = this.getContextObject(this.entries.currentContext);
    if (!context) return null;
    return this.entries.clusters.find((c) => c.name === context.cluster) ?? null;
  }

  getCurrentUser(): KubeUser | null {
    const context = this.getContextObject(this.entries.currentContext);
    if (!context?.user) return null;
    return this.entries.users.find((u) => u.name === context.user) ?? null;
  }

  async applyToHTTPSOptions(opts: https.RequestOptions): Promise<void> {
    const cluster = this.requireCluster();
    const user = this.getCurrentUser();
    if (cluster.proxyUrl || user?.exec !== undefined || user?.authProvider !== undefined) {
      await (await this.clientNode()).applyToHTTPSOptions(opts);
      return;
    }
    if (cluster.server.startsWith('http:') && !cluster.skipTLSVerify)
      throw new KubeconfigError(
        this.source,
        `cluster "${cluster.name}" has a plain http:// server; use https://, or set insecure-skip-tls-verify: true to accept an unencrypted connection`,
      );
    if (cluster.skipTLSVerify) opts.rejectUnauthorized = false;
    if (cluster.tlsServerName) opts.servername = cluster.tlsServerName;
    const ca = this.material(
      cluster.caData,
      cluster.caFile,
      `cluster "${cluster.name}" certificate-authority`,
    );
    if (ca) opts.ca = ca;
    if (!user) return;
    const what = `user "${user.name}"`;
    const cert = this.material(user.certData, user.certFile, `${what} client-certificate`);
    if (cert) opts.cert = cert;
    const key = this.material(user.keyData, user.keyFile, `${what} client-key`);
    if (key) opts.key = key;
    const headers: Record<string, string> = {};
    if (user.impersonateUser) headers['Impersonate-User'] = user.impersonateUser;
    // The token file is read on every call (the REST client calls this every 30 s), so a rotated
    // projected ServiceAccount token is picked up, as client-go does.
    const token =
      user.token ?? (user.tokenFile ? this.readFile(user.tokenFile, `${what} tokenFile`).trim() : '');
    if (token) headers.Authorization = `Bearer ${token}`;
    if (user.username) opts.auth = `${user.username}:${user.password ?? ''}`;
    opts.headers = { ...(opts.headers as Record<string, string> | undefined), ...headers };
  }

  private requireCluster(): KubeCluster {
    const contextName = this.entries.currentContext;
    if (!contextName)
      throw new KubeconfigError(
        this.source,
        'current-context is not set; set it (kubectl config use-context)',
      );
    const context = this.getContextObject(contextName);
    if (!context)
      throw new KubeconfigError(this.source, `current-context "${contextName}" is not in contexts`);
    const cluster = this.getCurrentCluster();
    if (!cluster)
      throw new KubeconfigError(
        this.source,
        `context "${contextName}" names cluster "${context.cluster}", which is not in clusters`,
      );
    if (context.user && !this.getCurrentUser())
      throw new KubeconfigError(
        this.source,
        `context "${contextName}" names user "${context.user}", which is not in users`,
      );
    return cluster;
  }

  /** Inline base64 data wins over a file, as in kubectl. Errors name the entry and the path, never content. */
  private material(data: string | undefined, file: string | undefined, what: string): Buffer | undefined {
    if (data) return Buffer.from(data, 'base64');
    if (file) return Buffer.from(this.readFile(file, what));
    return undefined;
  }

  private readFile(path: string, what: string): string {
    return readText(this.source, path, what);
  }

  /** client-node's KubeConfig over the same entries, for exec plugins, auth-providers and proxies. */
  private clientNode(): Promise<ClientNodeKubeConfig> {
    this.delegate ??= import('@kubernetes/client-node').then(({ KubeConfig }) => {
      const kc = new KubeConfig();
      kc.loadFromOptions({
        clusters: this.entries.clusters,
        users: this.entries.users.map((u) => ({
          ...u,
          token:
            u.token ??
            (u.tokenFile ? this.readFile(u.tokenFile, `user "${u.name}" tokenFile`).trim() : undefined),
        })),
        contexts: this.entries.contexts,
        currentContext: this.entries.currentContext,
      });
      return kc;
    });
    return this.delegate;
  }
}

function loadFiles(paths: string[]): Kubeconfig {
  const parsed = paths.map((path) => parseKubeconfig(readText(path, path), path, dirname(resolve(path))));
  return new Kubeconfig(mergeKubeconfigs(parsed), paths.join(delimiter));
}

/**
 * Loads cluster access: the explicit path, else $KUBECONFIG (a path list, merged as kubectl does), else the
 * in-cluster ServiceAccount, else ~/.kube/config.
 */
export function loadKubeConfig(path?: string): Kubeconfig {
  if (path) return loadFiles([path]);
  const list = (process.env.KUBECONFIG ?? '').split(delimiter).filter((p) => p !== '');
  if (list.length > 0) return loadFiles(list);
  const host = process.env.KUBERNETES_SERVICE_HOST;
  if (host && existsSync(join(SERVICE_ACCOUNT_DIR, 'token')))
    return new Kubeconfig(inClusterEntries(host, process.env.KUBERNETES_SERVICE_PORT ?? '443'), 'in-cluster');
  const home = join(homedir(), '.kube', 'config');
  if (existsSync(home)) return loadFiles([home]);
  throw new Error('no kubeconfig: pass a path, set KUBECONFIG, run in a pod, or create ~/.kube/config');
}
