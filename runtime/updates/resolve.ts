/**
 * Looks up what spec.updates names, on every reconcile of the account: the sink's and the dead-letter
 * sink's addresses (a Service ref needs the Service's ports) and the value of the header that
 * authenticates the account to its receiver. A problem is returned with a reason and a message naming the
 * field and the fix; the account keeps running and its events wait in the outbox meanwhile.
 */
import { LABEL_SECRET_OPT_IN, SECRET_OPT_IN_VALUE, type UpdatesSpec } from '../../crds/index.js';
import type { RestClient } from '../../operator/kube/client.js';
import { isApiError, isNotFound } from '../../operator/kube/errors.js';
import { Resources, type ApiObject } from '../../operator/kube/resource.js';
import { errorMessage } from '../../operator/kube/util.js';
import type { SinkTarget } from './deliverer.js';
import { httpPost } from './http-post.js';
import { DEFAULT_AUTH_HEADER, DEFAULT_AUTH_KEY } from './settings.js';
import { resolveSink, shownUri, type ServicePorts, type SinkSpec } from './sink.js';

export interface UpdatesProblem {
  reason: 'SinkNotFound' | 'SinkInvalid' | 'SecretNotFound' | 'SecretKeyMissing' | 'SecretNotReadable';
  message: string;
}

export interface ResolvedUpdates {
  sink?: SinkTarget;
  deadLetter?: SinkTarget;
  sinkURI?: string;
  deadLetterSinkURI?: string;
  problem?: UpdatesProblem;
}

export interface ResolveDeps {
  rest: RestClient;
  namespace: string;
  /** A Secret's data as text (undefined: no such Secret), or throws (403: not granted to the runtime). */
  secretData: (name: string, signal?: AbortSignal) => Promise<Record<string, string> | undefined>;
  /** Local development only (TDLIB_UPDATES_ALLOW_LOOPBACK): lets sinks resolve to 127.0.0.1. */
  allowLoopback?: boolean;
}

async function service(
  deps: ResolveDeps,
  name: string,
  signal?: AbortSignal,
): Promise<ServicePorts | undefined> {
  try {
    const svc = await deps.rest.get<ApiObject & { spec?: ServicePorts }>(
      Resources.Service,
      deps.namespace,
      name,
      {
        signal,
      },
    );
    return svc.spec ?? {};
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

async function target(
  deps: ResolveDeps,
  field: string,
  sink: SinkSpec,
  credentials: Credentials,
  signal?: AbortSignal,
): Promise<{ target: SinkTarget; uri: string } | UpdatesProblem> {
  const svc = sink.ref ? await service(deps, sink.ref.name, signal) : undefined;
  const resolved = resolveSink(field, sink, deps.namespace, svc);
  if ('reason' in resolved) return resolved;
  const client = credentials.clientCertificate;
  // A certificate over plain HTTP would never be shown: say so rather than send unauthenticated events.
  if (client && !resolved.uri.startsWith('https://'))
    return {
      reason: 'SinkInvalid',
      message: `${field} resolves to ${shownUri(resolved.uri)}, plain HTTP, where spec.updates.auth.clientCertificateSecretRef cannot be presented; use an https:// receiver (a uri, or a Service port with appProtocol: https) or remove clientCertificateSecretRef`,
    };
  const ca = sink.caBundle ? Buffer.from(sink.caBundle, 'base64').toString('utf8') : undefined;
  return {
    uri: shownUri(resolved.uri),
    target: {
      url: resolved.uri,
      headers: credentials.headers,
      post: httpPost({
        ...(ca ? { ca } : {}),
        ...(client ? { clientCertificate: client } : {}),
        allowLoopback: deps.allowLoopback === true,
      }),
    },
  };
}

/** What the receiver authenticates the account by: a header's value, a client certificate, or both. */
interface Credentials {
  headers: Record<string, string>;
  clientCertificate?: { cert: string; key: string };
}

/** A Secret's data, or the problem with it (missing, not opted in, a key missing), naming `field`. */
async function secretKeys(
  deps: ResolveDeps,
  field: string,
  name: string,
  keys: string[],
  signal?: AbortSignal,
): Promise<{ data: Record<string, string> } | UpdatesProblem> {
  let data: Record<string, string> | undefined;
  try {
    data = await deps.secretData(name, signal);
  } catch (error) {
    if (isApiError(error, 403))
      return {
        reason: 'SecretNotReadable',
        message: `Secret "${name}" named by ${field} may not be read by the runtime; label it: kubectl label secret ${name} -n ${deps.namespace} ${LABEL_SECRET_OPT_IN}=${SECRET_OPT_IN_VALUE}`,
      };
    throw error;
  }
  if (data === undefined)
    return {
      reason: 'SecretNotFound',
      message: `Secret "${name}" named by ${field} does not exist in namespace "${deps.namespace}"; create it with ${keys.length > 1 ? 'keys' : 'key'} ${keys.join(' and ')}`,
    };
  const missing = keys.filter((key) => data[key]?.trim() === undefined || data[key]?.trim() === '');
  if (missing.length > 0)
    return {
      reason: 'SecretKeyMissing',
      message: `Secret "${name}" named by ${field} has no key ${missing.join(' or ')}; add ${missing.length > 1 ? 'them' : 'it'}${field.endsWith('.secretRef') ? ` or set ${field}.key` : ''}`,
    };
  // Wrapped: a Secret may well hold a key named "reason".
  return { data };
}

async function credentials(
  deps: ResolveDeps,
  spec: UpdatesSpec,
  signal?: AbortSignal,
): Promise<Credentials | UpdatesProblem> {
  const auth = spec.auth;
  const found: Credentials = { headers: {} };
  if (auth?.secretRef) {
    const key = auth.secretRef.key ?? DEFAULT_AUTH_KEY;
    const read = await secretKeys(deps, 'spec.updates.auth.secretRef', auth.secretRef.name, [key], signal);
    if (!('data' in read)) return read;
    found.headers[(auth.header ?? DEFAULT_AUTH_HEADER).toLowerCase()] = (read.data[key] ?? '').trim();
  }
  if (auth?.clientCertificateSecretRef) {
    const field = 'spec.updates.auth.clientCertificateSecretRef';
    const read = await secretKeys(
      deps,
      field,
      auth.clientCertificateSecretRef.name,
      ['tls.crt', 'tls.key'],
      signal,
    );
    if (!('data' in read)) return read;
    found.clientCertificate = { cert: read.data['tls.crt'] ?? '', key: read.data['tls.key'] ?? '' };
  }
  return found;
}

/** Never throws for a user's mistake; throws for API failures (the caller retries with backoff). */
export async function resolveUpdates(
  deps: ResolveDeps,
  spec: UpdatesSpec,
  signal?: AbortSignal,
): Promise<ResolvedUpdates> {
  try {
    const found = await credentials(deps, spec, signal);
    if ('reason' in found) return { problem: found };
    const sink = await target(deps, 'spec.updates.sink', spec.sink, found, signal);
    if ('reason' in sink) return { problem: sink };
    const resolved: ResolvedUpdates = { sink: sink.target, sinkURI: sink.uri };
    if (spec.deadLetterSink) {
      const dead = await target(deps, 'spec.updates.deadLetterSink', spec.deadLetterSink, found, signal);
      if ('reason' in dead) return { ...resolved, problem: dead };
      resolved.deadLetter = dead.target;
      resolved.deadLetterSinkURI = dead.uri;
    }
    return resolved;
  } catch (error) {
    if (isApiError(error, 403))
      return {
        problem: {
          reason: 'SinkNotFound',
          message: `the runtime may not read the Service named by spec.updates (${errorMessage(error)}); the pool's Role grants get on services`,
        },
      };
    throw error;
  }
}
