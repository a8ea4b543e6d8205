/**
 * Resolves an account's update sink to the URL the runtime posts to (status.updates.sinkURI), as Knative
 * resolves a Destination: a Service ref becomes its cluster DNS name and port, with the uri as a path; an
 * absolute uri is used as it is. Pure: the caller looks the Service up.
 */
export interface SinkSpec {
  ref?: { kind?: string; name: string; port?: number };
  uri?: string;
  caBundle?: string;
}

export interface ServicePorts {
  ports?: Array<{ port: number; name?: string; appProtocol?: string }>;
}

export type SinkResolution = { uri: string } | { reason: 'SinkNotFound' | 'SinkInvalid'; message: string };

export function resolveSink(
  field: string,
  sink: SinkSpec,
  namespace: string,
  service: ServicePorts | undefined,
  clusterDomain = 'cluster.local',
): SinkResolution {
  if (!sink.ref) {
    if (!sink.uri) return { reason: 'SinkInvalid', message: `${field} has neither ref nor uri` };
    return { uri: sink.uri };
  }
  const name = sink.ref.name;
  if (!service)
    return {
      reason: 'SinkNotFound',
      message: `Service ${name} (${field}.ref) does not exist in namespace ${namespace}; create it or fix the name`,
    };
  const ports = service.ports ?? [];
  const port = sink.ref.port ?? ports[0]?.port;
  if (port === undefined)
    return { reason: 'SinkInvalid', message: `Service ${name} (${field}.ref) has no ports; give it one` };
  if (sink.ref.port !== undefined && !ports.some((p) => p.port === sink.ref?.port))
    return {
      reason: 'SinkInvalid',
      message: `Service ${name} has no port ${sink.ref.port} (${field}.ref.port); it has ${ports.map((p) => p.port).join(', ') || 'none'}`,
    };
  // A Service port that says it speaks TLS, or a CA bundle to check it with, means https.
  const tls =
    sink.caBundle !== undefined || ports.find((p) => p.port === port)?.appProtocol?.toLowerCase() === 'https';
  const scheme = tls ? 'https' : 'http';
  const defaultPort = tls ? 443 : 80;
  const host = `${name}.${namespace}.svc.${clusterDomain}`;
  const path = sink.uri ?? '/';
  return {
    uri: `${scheme}://${host}${port === defaultPort ? '' : `:${port}`}${path.startsWith('/') ? path : `/${path}`}`,
  };
}

/**
 * A sink address as status, conditions and Events show it: credentials in its userinfo
 * (https://user:password@host/) are masked, never echoed.
 */
export function shownUri(uri: string): string {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return uri.replace(/\/\/[^/?#]*@/, '//***@');
  }
  if (!url.username && !url.password) return uri;
  url.username = '***';
  url.password = '';
  return url.toString();
}
