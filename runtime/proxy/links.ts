/**
 * Proxy links as Telegram shares them, and the TDLib objects they become.
 *
 * Accepted forms (the same ones the CRD's CEL rule admits, plus t.me without a scheme):
 *   tg://proxy?server=HOST&port=PORT&secret=SECRET            MTProto
 *   tg://socks?server=HOST&port=PORT[&user=USER][&pass=PASS]   SOCKS5
 *   https://t.me/proxy?...   https://t.me/socks?...   t.me/proxy?...   t.me/socks?...
 *
 * Errors say what is wrong and never echo the link, the secret or the password: links are credentials.
 */
import type { Td, Wire } from '../tdlib/types.js';

export type ProxyKind = 'Socks5' | 'Http' | 'MTProto';

export interface ParsedProxy {
  type: ProxyKind;
  server: string;
  port: number;
  /** MTProto only: the proxy secret, hex or base64url, as given. */
  secret?: string;
  /** Socks5 and Http. */
  username?: string;
  /** Socks5 and Http. */
  password?: string;
  /** Http only: the proxy handles plain HTTP requests only, no CONNECT (TDLib's http_only). */
  httpOnly?: boolean;
}

/** TDLib's ProxyType as it crosses the JSON boundary ('@type' tag). */
export type TdProxyType = Wire<Td.ProxyType>;
/** TDLib's proxy object: what addProxy, editProxy and pingProxy take as `proxy` since TDLib 1.8.61. */
export type TdProxy = Wire<Td.proxy>;

export class ProxyLinkError extends Error {
  override readonly name = 'ProxyLinkError';
}

const MAX_LINK_LENGTH = 2048;
const HOSTNAME =
  /^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$/;
const IPV6 = /^[0-9A-Fa-f:.]+$/;

/** Parses a tg:// or t.me proxy link; throws ProxyLinkError saying what is wrong. */
export function parseProxyLink(link: string): ParsedProxy {
  if (typeof link !== 'string') throw new ProxyLinkError('proxy link must be a string');
  const text = link.trim();
  if (text.length === 0) throw new ProxyLinkError('proxy link is empty');
  if (text.length > MAX_LINK_LENGTH)
    throw new ProxyLinkError(`proxy link is longer than ${MAX_LINK_LENGTH} characters`);
  if (/\s/.test(text)) throw new ProxyLinkError('proxy link contains whitespace');

  const withScheme = /^t\.me\//i.test(text) ? `https://${text}` : text;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new ProxyLinkError(
      'proxy link is not a URL; expected tg://proxy?, tg://socks?, https://t.me/proxy? or https://t.me/socks?',
    );
  }

  const kind = linkKind(url);
  if (url.hash !== '') throw new ProxyLinkError('proxy link must not have a #fragment');
  const params = queryParams(url.search);

  const server = params.get('server');
  if (server === undefined || server === '') throw new ProxyLinkError(`${kind} link has no server parameter`);
  const port = params.get('port');
  if (port === undefined || port === '') throw new ProxyLinkError(`${kind} link has no port parameter`);

  const parsed: ParsedProxy = {
    type: kind === 'proxy' ? 'MTProto' : 'Socks5',
    server: checkServer(server),
    port: checkPort(port),
  };
  if (kind === 'proxy') {
    if (params.has('user') || params.has('pass'))
      throw new ProxyLinkError('MTProto (tg://proxy) link takes a secret, not user or pass');
    // A link without a secret is how a spec names an MTProto proxy: the secret comes from the Secret that
    // credentialsSecretRef names (a secret inside the spec would be readable by anyone who can read specs).
    const secret = params.get('secret');
    if (secret !== undefined && secret !== '') {
      checkSecret(secret);
      parsed.secret = secret;
    }
  } else {
    if (params.has('secret'))
      throw new ProxyLinkError('SOCKS5 (tg://socks) link takes user and pass, not a secret');
    const user = params.get('user');
    const pass = params.get('pass');
    if (user !== undefined && user !== '') parsed.username = checkCredential(user, 'user');
    if (pass !== undefined && pass !== '') parsed.password = checkCredential(pass, 'pass');
  }
  return parsed;
}

/** TDLib's proxyType object for a proxy (proxyTypeSocks5, proxyTypeHttp or proxyTypeMtproto). */
export function toTdProxyType(p: ParsedProxy): TdProxyType {
  switch (p.type) {
    case 'Socks5':
      return { '@type': 'proxyTypeSocks5', username: p.username ?? '', password: p.password ?? '' };
    case 'Http':
      return {
        '@type': 'proxyTypeHttp',
        username: p.username ?? '',
        password: p.password ?? '',
        http_only: p.httpOnly ?? false,
      };
    case 'MTProto':
      if (!p.secret) throw new ProxyLinkError(`MTProto proxy ${proxyLabel(p)} has no secret`);
      return { '@type': 'proxyTypeMtproto', secret: p.secret };
  }
}

/** The `proxy` argument of addProxy / editProxy / pingProxy (TDLib >= 1.8.61: {server, port, type}). */
export function toTdProxy(p: ParsedProxy): TdProxy {
  return { '@type': 'proxy', server: p.server, port: p.port, type: toTdProxyType(p) };
}

/** "host:port" ("[v6]:port" for IPv6): how a proxy is named in status, events and logs. Never credentials. */
export function proxyLabel(p: Pick<ParsedProxy, 'server' | 'port'>): string {
  return p.server.includes(':') ? `[${p.server}]:${p.port}` : `${p.server}:${p.port}`;
}

// ---- internals --------------------------------------------------------------------------------------

function linkKind(url: URL): 'proxy' | 'socks' {
  const expected = 'expected tg://proxy?, tg://socks?, https://t.me/proxy? or https://t.me/socks?';
  if (url.username !== '' || url.password !== '')
    throw new ProxyLinkError('proxy link must not carry user info before the host');
  if (url.protocol === 'tg:') {
    const host = url.hostname.toLowerCase();
    if (host !== 'proxy' && host !== 'socks') {
      throw new ProxyLinkError(`unsupported tg:// link: ${expected}`);
    }
    if (url.pathname !== '' && url.pathname !== '/')
      throw new ProxyLinkError(`tg://${host} link must not have a path`);
    if (url.port !== '') throw new ProxyLinkError(`tg://${host} link must not have a port after the host`);
    return host;
  }
  if (url.protocol === 'https:' || url.protocol === 'http:') {
    if (url.hostname.toLowerCase() !== 't.me')
      throw new ProxyLinkError(`proxy link host must be t.me; ${expected}`);
    if (url.protocol === 'http:') throw new ProxyLinkError('t.me proxy link must use https://, not http://');
    if (url.port !== '') throw new ProxyLinkError('t.me proxy link must not name a port after t.me');
    const path = url.pathname.replace(/\/$/, '').toLowerCase();
    if (path === '/proxy') return 'proxy';
    if (path === '/socks') return 'socks';
    throw new ProxyLinkError(`t.me link is not a proxy link: path must be /proxy or /socks; ${expected}`);
  }
  throw new ProxyLinkError(`unsupported proxy link scheme ${JSON.stringify(url.protocol)}; ${expected}`);
}

/**
 * Query parameters, percent-decoded without turning '+' into a space (base64 secrets may contain '+').
 * Repeated parameters are refused: which of two servers or secrets was meant is a guess.
 */
function queryParams(search: string): Map<string, string> {
  const params = new Map<string, string>();
  const query = search.startsWith('?') ? search.slice(1) : search;
  if (query === '') throw new ProxyLinkError('proxy link has no parameters (server, port, ...)');
  for (const part of query.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const rawName = eq < 0 ? part : part.slice(0, eq);
    const rawValue = eq < 0 ? '' : part.slice(eq + 1);
    let name: string;
    let value: string;
    try {
      name = decodeURIComponent(rawName).toLowerCase();
    } catch {
      throw new ProxyLinkError('proxy link has a malformed %-escape in a parameter name');
    }
    try {
      value = decodeURIComponent(rawValue);
    } catch {
      throw new ProxyLinkError(`proxy link parameter ${safeParamName(name)} has a malformed %-escape`);
    }
    if (params.has(name)) throw new ProxyLinkError(`proxy link repeats the ${safeParamName(name)} parameter`);
    params.set(name, value);
  }
  return params;
}

function safeParamName(name: string): string {
  return /^[a-z_]{1,16}$/.test(name) ? name : 'a';
}

/** A proxy host as TDLib takes it (host name, IPv4 or IPv6); the error never repeats the value. */
export function checkProxyServer(server: string): string {
  return checkServer(server);
}

function checkServer(server: string): string {
  let host = server;
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (host.includes(':')) {
    if (!IPV6.test(host) || host.length > 45)
      throw new ProxyLinkError('proxy link server is not a valid host name or IP address');
    return host;
  }
  if (!HOSTNAME.test(host))
    throw new ProxyLinkError('proxy link server is not a valid host name or IP address');
  return host;
}

function checkPort(port: string): number {
  if (!/^[0-9]{1,5}$/.test(port))
    throw new ProxyLinkError('proxy link port must be a number from 1 to 65535');
  const value = Number(port);
  if (value < 1 || value > 65535)
    throw new ProxyLinkError('proxy link port must be a number from 1 to 65535');
  return value;
}

/**
 * MTProto secrets: hex or base64/base64url; 16 raw bytes, 17 starting with 0xdd (random padding), or 18+
 * starting with 0xee (fake TLS, followed by the domain). The message never includes the secret.
 */
function checkSecret(secret: string): void {
  let raw: Buffer | undefined;
  if (/^[0-9a-fA-F]+$/.test(secret) && secret.length % 2 === 0) raw = Buffer.from(secret, 'hex');
  else if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(secret))
    raw = Buffer.from(secret.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  if (raw === undefined) throw new ProxyLinkError('MTProto secret must be hex or base64url');
  const first = raw[0];
  const ok =
    raw.length === 16 || (raw.length === 17 && first === 0xdd) || (raw.length >= 18 && first === 0xee);
  if (!ok) {
    throw new ProxyLinkError(
      `MTProto secret has an unsupported length or prefix (${raw.length} bytes; expected 16, 17 starting ` +
        'with dd, or 18+ starting with ee)',
    );
  }
}

function checkCredential(value: string, name: 'user' | 'pass'): string {
  if (value.length > 255) throw new ProxyLinkError(`proxy link ${name} is longer than 255 characters`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(value))
    throw new ProxyLinkError(`proxy link ${name} contains control characters`);
  return value;
}
