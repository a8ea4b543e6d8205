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
  headers: Record<string, string>,
  signal?: AbortSignal,
): Promise<{ target: SinkTarget; uri: string } | UpdatesProblem> {
  const svc = sink.ref ? await service(deps, sink.ref.name, signal) : undefined;
  const resolved = resolveSink(field, sink, deps.namespace, svc);
  if ('reason' in resolved) return resolved;
  const ca = sink.caBundle ? Buffer.from(sink.caBundle, 'base64').toString('utf8') : undefined;
  return {
    uri: shownUri(resolved.uri),
    target: {
      url: resolved.uri,
      headers,
      post: httpPost({ ...(ca ? { ca } : {}), allowLoopback: deps.allowLoopback === true }),
    },
  };
}

async function authHeaders(
  deps: ResolveDeps,
  spec: UpdatesSpec,
  signal?: AbortSignal,
): Promise<Record<string, string> | UpdatesProblem> {
  const auth = spec.auth;
  if (!auth) return {};
  const name = auth.secretRef.name;
  const key = auth.secretRef.key ?? DEFAULT_AUTH_KEY;
  let data: Record<string, string> | undefined;
  try {
    data = await deps.secretData(name, signal);
  } catch (error) {
    if (isApiError(error, 403))
      return {
        reason: 'SecretNotReadable',
        message: `Secret "${name}" named by spec.updates.auth.secretRef may not be read by the runtime; label it: kubectl label secret ${name} -n ${deps.namespace} ${LABEL_SECRET_OPT_IN}=${SECRET_OPT_IN_VALUE}`,
      };
    throw error;
  }
  if (data === undefined)
    return {
      reason: 'SecretNotFound',
      message: `Secret "${name}" named by spec.updates.auth.secretRef does not exist in namespace "${deps.namespace}"; create it with key ${key}`,
    };
  const value = data[key]?.trim();
  if (value === undefined)
    return {
      reason: 'SecretKeyMissing',
      message: `Secret "${name}" named by spec.updates.auth.secretRef has no key ${key}; add it or set spec.updates.auth.secretRef.key`,
    };
  return { [(auth.header ?? DEFAULT_AUTH_HEADER).toLowerCase()]: value };
}

/** Never throws for a user's mistake; throws for API failures (the caller retries with backoff). */
export async function resolveUpdates(
  deps: ResolveDeps,
  spec: UpdatesSpec,
  signal?: AbortSignal,
): Promise<ResolvedUpdates> {
  try {
    const headers = await authHeaders(deps, spec, signal);
    if ('reason' in headers) return { problem: headers as UpdatesProblem };
    const sink = await target(deps, 'spec.updates.sink', spec.sink, headers, signal);
    if ('reason' in sink) return { problem: sink };
    const resolved: ResolvedUpdates = { sink: sink.target, sinkURI: sink.uri };
    if (spec.deadLetterSink) {
      const dead = await target(deps, 'spec.updates.deadLetterSink', spec.deadLetterSink, headers, signal);
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
