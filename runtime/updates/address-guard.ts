/**
 * The runtime's own check of where it posts an account's updates: the CRD refuses obviously local sink
 * URIs, but a name can resolve to anything (and change between checks), so the address each connection is
 * about to use is checked too: never loopback, link-local, unspecified or a cloud metadata address.
 */
import { BlockList, isIP } from 'node:net';
import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions } from 'node:dns';

const forbidden = new BlockList();
forbidden.addSubnet('127.0.0.0', 8, 'ipv4');
forbidden.addSubnet('169.254.0.0', 16, 'ipv4');
forbidden.addSubnet('0.0.0.0', 8, 'ipv4');
forbidden.addAddress('::1', 'ipv6');
forbidden.addAddress('::', 'ipv6');
forbidden.addSubnet('fe80::', 10, 'ipv6');
forbidden.addAddress('fd00:ec2::254', 'ipv6');
// IPv4-mapped IPv6 forms of the same ranges.
forbidden.addSubnet('::ffff:127.0.0.0', 104, 'ipv6');
forbidden.addSubnet('::ffff:169.254.0.0', 112, 'ipv6');
forbidden.addSubnet('::ffff:0.0.0.0', 104, 'ipv6');

/** Why `address` must not receive an account's updates, or undefined when it may. */
export function forbiddenAddress(address: string): string | undefined {
  const family = isIP(address);
  if (family === 0) return `${address} is not an IP address`;
  return forbidden.check(address, family === 4 ? 'ipv4' : 'ipv6')
    ? `${address} is a loopback, link-local, unspecified or cloud metadata address`
    : undefined;
}

type LookupCallback = (
  error: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/**
 * A `lookup` for http.request and tls.connect that refuses forbidden addresses (`allowLoopback` lets a
 * local development setup post to 127.0.0.1; it never allows link-local or metadata addresses).
 */
export function guardedLookup(allowLoopback = false) {
  return (hostname: string, options: LookupAllOptions | object, callback: LookupCallback): void => {
    dnsLookup(hostname, { ...(options as object), all: true }, (error, addresses) => {
      if (error) return callback(error, []);
      for (const { address } of addresses) {
        const why = forbiddenAddress(address);
        const loopback = isLoopback(address);
        if (why && !(allowLoopback && loopback)) {
          const refusal: NodeJS.ErrnoException = new Error(`refusing to post updates to ${hostname}: ${why}`);
          refusal.code = 'EADDRNOTALLOWED';
          return callback(refusal, []);
        }
      }
      const all = (options as { all?: boolean }).all === true;
      const first = addresses[0];
      if (all) return callback(null, addresses);
      if (!first) return callback(new Error(`${hostname} has no address`), []);
      return callback(null, first.address, first.family);
    });
  };
}

const loopback = new BlockList();
loopback.addSubnet('127.0.0.0', 8, 'ipv4');
loopback.addAddress('::1', 'ipv6');
loopback.addSubnet('::ffff:127.0.0.0', 104, 'ipv6');

function isLoopback(address: string): boolean {
  const family = isIP(address);
  return family !== 0 && loopback.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/**
 * Why an IP-literal host must not be posted to (node connects to a literal without calling `lookup`), or
 * undefined for names and allowed literals.
 */
export function forbiddenLiteral(hostname: string, allowLoopback = false): string | undefined {
  const host = hostname.startsWith('[') ? hostname.slice(1, -1) : hostname;
  if (isIP(host) === 0) return undefined;
  const why = forbiddenAddress(host);
  return why && !(allowLoopback && isLoopback(host))
    ? `refusing to post updates to ${host}: ${why}`
    : undefined;
}
