import {
  ProxyLinkError,
  parseProxyLink,
  proxyLabel,
  toTdProxy,
  toTdProxyType,
  type ParsedProxy,
} from '../../../runtime/proxy/links.js';
import {
  recordPing,
  selectProxy,
  type PingObservation,
  type ProxyCandidate,
  type ProxyHealth,
} from '../../../runtime/proxy/select.js';

const HEX_SECRET = '0123456789abcdef0123456789abcdef';
const DD_SECRET = `dd${HEX_SECRET}`;
const EE_SECRET = `ee${HEX_SECRET}${Buffer.from('example.com').toString('hex')}`;
const B64_SECRET = Buffer.from(`ee${HEX_SECRET}6578616d706c65`, 'hex').toString('base64url');

describe('parseProxyLink: accepted forms', () => {
  const mtproto = { type: 'MTProto', server: 'proxy.example.com', port: 443, secret: HEX_SECRET };

  it.each([
    `tg://proxy?server=proxy.example.com&port=443&secret=${HEX_SECRET}`,
    `tg://proxy/?server=proxy.example.com&port=443&secret=${HEX_SECRET}`,
    `TG://PROXY?server=proxy.example.com&port=443&secret=${HEX_SECRET}`,
    `https://t.me/proxy?server=proxy.example.com&port=443&secret=${HEX_SECRET}`,
    `https://t.me/proxy/?server=proxy.example.com&port=443&secret=${HEX_SECRET}`,
    `t.me/proxy?server=proxy.example.com&port=443&secret=${HEX_SECRET}`,
    `  tg://proxy?port=443&secret=${HEX_SECRET}&server=proxy.example.com  `,
  ])('MTProto %s', (link) => {
    expect(parseProxyLink(link)).toEqual(mtproto);
  });

  it.each([DD_SECRET, EE_SECRET, B64_SECRET])('MTProto secret forms: %s', (secret) => {
    expect(parseProxyLink(`tg://proxy?server=1.2.3.4&port=8888&secret=${secret}`).secret).toBe(secret);
  });

  it.each([
    ['tg://socks?server=s.example&port=1080&user=alice&pass=p%40ss', { username: 'alice', password: 'p@ss' }],
    [
      'https://t.me/socks?server=s.example&port=1080&user=alice&pass=pw',
      { username: 'alice', password: 'pw' },
    ],
    ['t.me/socks?server=s.example&port=1080', {}],
    ['tg://socks?server=s.example&port=1080&user=&pass=', {}],
  ])('SOCKS5 %s', (link, credentials) => {
    expect(parseProxyLink(link)).toEqual({ type: 'Socks5', server: 's.example', port: 1080, ...credentials });
  });

  it('accepts IPv4 and bracketed or bare IPv6 servers, and ignores unknown parameters', () => {
    expect(parseProxyLink('tg://socks?server=10.0.0.1&port=1&extra=1').server).toBe('10.0.0.1');
    expect(parseProxyLink('tg://socks?server=%5B2001:db8::1%5D&port=65535').server).toBe('2001:db8::1');
    expect(parseProxyLink('tg://socks?server=2001:db8::1&port=1080').server).toBe('2001:db8::1');
  });

  it("keeps '+' in base64 secrets (no form decoding)", () => {
    const secret = Buffer.from(`ee${HEX_SECRET}fbff`, 'hex').toString('base64');
    expect(secret).toMatch(/[+/]/);
    expect(parseProxyLink(`tg://proxy?server=p.example&port=443&secret=${secret}`).secret).toBe(secret);
  });
});

describe('parseProxyLink: rejected forms', () => {
  const PASSWORD = 'hunter2-very-secret';
  it.each([
    ['', /empty/],
    ['not a link', /whitespace/],
    ['ftp://t.me/proxy?server=a&port=1', /unsupported proxy link scheme/],
    ['http://t.me/proxy?server=a&port=1&secret=' + HEX_SECRET, /https/],
    ['https://example.com/proxy?server=a&port=1', /host must be t\.me/],
    ['https://t.me/joinchat?server=a&port=1', /path must be \/proxy or \/socks/],
    ['tg://resolve?domain=durov', /unsupported tg:\/\/ link/],
    ['tg://http?server=a&port=1', /unsupported tg:\/\/ link/],
    ['tg://socks', /no parameters/],
    ['tg://socks?port=1080', /no server/],
    ['tg://socks?server=a.example', /no port/],
    ['tg://socks?server=a.example&port=0', /port must be a number from 1 to 65535/],
    ['tg://socks?server=a.example&port=65536', /port must be/],
    ['tg://socks?server=a.example&port=80a', /port must be/],
    ['tg://socks?server=bad_host!&port=1080', /server is not a valid host/],
    ['tg://socks?server=a.example&server=b.example&port=1', /repeats the server parameter/],
    ['tg://proxy?server=a.example&port=443&secret=abcd', /unsupported length/],
    ['tg://proxy?server=a.example&port=443&secret=zz!', /hex or base64url/],
    [`tg://proxy?server=a.example&port=443&secret=${HEX_SECRET}&user=u&pass=${PASSWORD}`, /not user or pass/],
    [`tg://socks?server=a.example&port=1&secret=${HEX_SECRET}`, /not a secret/],
    [`tg://socks?server=a.example&port=1&pass=%ZZ${PASSWORD}`, /malformed %-escape/],
    [`https://user:${PASSWORD}@t.me/socks?server=a&port=1`, /user info/],
    [`tg://proxy?server=a.example&port=443&secret=${HEX_SECRET}#frag`, /fragment/],
    [`https://t.me:8443/proxy?server=a&port=1&secret=${HEX_SECRET}`, /port after t\.me/],
  ])('%s', (link, message) => {
    let thrown: unknown;
    try {
      parseProxyLink(link);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ProxyLinkError);
    const text = (thrown as Error).message;
    expect(text).toMatch(message);
    expect(text).not.toContain(PASSWORD);
    expect(text).not.toContain(HEX_SECRET);
    expect(text).not.toContain('abcd');
  });

  it('reads an MTProto link without a secret (the spec form: the secret comes from credentialsSecretRef), which cannot be used alone', () => {
    const parsed = parseProxyLink('tg://proxy?server=a.example&port=443');
    expect(parsed).toEqual({ type: 'MTProto', server: 'a.example', port: 443 });
    expect(() => toTdProxyType(parsed)).toThrow(/a\.example:443 has no secret/);
  });

  it('refuses overlong links', () => {
    expect(() => parseProxyLink(`tg://socks?server=a&port=1&x=${'a'.repeat(3000)}`)).toThrow(/longer than/);
  });
});

describe('toTdProxyType / toTdProxy', () => {
  it('builds TDLib proxy types with the @type tag', () => {
    expect(toTdProxyType({ type: 'Socks5', server: 's', port: 1 })).toEqual({
      '@type': 'proxyTypeSocks5',
      username: '',
      password: '',
    });
    expect(
      toTdProxyType({ type: 'Http', server: 'h', port: 8080, username: 'u', password: 'p', httpOnly: true }),
    ).toEqual({ '@type': 'proxyTypeHttp', username: 'u', password: 'p', http_only: true });
    expect(toTdProxyType({ type: 'Http', server: 'h', port: 8080 })).toEqual({
      '@type': 'proxyTypeHttp',
      username: '',
      password: '',
      http_only: false,
    });
    expect(toTdProxyType(parseProxyLink(`tg://proxy?server=m&port=443&secret=${DD_SECRET}`))).toEqual({
      '@type': 'proxyTypeMtproto',
      secret: DD_SECRET,
    });
  });

  it('builds the {server, port, type} proxy object addProxy takes since TDLib 1.8.61', () => {
    const p = parseProxyLink('tg://socks?server=s.example&port=1080&user=a&pass=b');
    expect(toTdProxy(p)).toEqual({
      '@type': 'proxy',
      server: 's.example',
      port: 1080,
      type: { '@type': 'proxyTypeSocks5', username: 'a', password: 'b' },
    });
  });

  it('refuses an MTProto proxy without a secret, without leaking anything', () => {
    const p: ParsedProxy = { type: 'MTProto', server: 'm.example', port: 443 };
    expect(() => toTdProxyType(p)).toThrow(/m\.example:443 has no secret/);
  });

  it('labels proxies as host:port, bracketing IPv6', () => {
    expect(proxyLabel({ server: 'a.example', port: 443 })).toBe('a.example:443');
    expect(proxyLabel({ server: '2001:db8::1', port: 1080 })).toBe('[2001:db8::1]:1080');
  });
});

describe('selectProxy', () => {
  const a: ProxyCandidate = { id: 'primary', label: 'a.example:443' };
  const b: ProxyCandidate = { id: 'failover-0', label: 'b.example:1080' };
  const c: ProxyCandidate = { id: 'failover-1', label: 'c.example:8080' };
  const candidates = [a, b, c];
  let clock = 0;
  const ok = (): PingObservation => ({ ok: true, at: ++clock, rttMs: 40 });
  const fail = (error = 'Connection refused'): PingObservation => ({ ok: false, at: ++clock, error });

  /** Drives a little simulation: ping results per round, the chosen proxy carried over. */
  class Sim {
    health = new Map<string, ProxyHealth>();
    current: string | undefined;
    history: string[] = [];
    lastMessage = '';
    constructor(readonly list: ProxyCandidate[] = candidates) {}
    round(results: Record<string, PingObservation>) {
      for (const [id, ping] of Object.entries(results))
        this.health.set(id, recordPing(this.health.get(id), ping));
      const decision = selectProxy({ candidates: this.list, health: this.health, current: this.current });
      if (decision.kind === 'proxy') this.current = decision.id;
      this.history.push(this.current ?? 'direct');
      this.lastMessage = decision.message;
      return decision;
    }
  }

  it('connects directly when no proxy is configured', () => {
    const d = selectProxy({ candidates: [], health: {} });
    expect(d).toMatchObject({ kind: 'direct', changed: false });
    expect(d.message).toMatch(/directly/);
    expect(selectProxy({ candidates: [], health: {}, current: 'primary' }).changed).toBe(true);
  });

  it('starts on the primary while nothing is known, and skips a primary already known to be down', () => {
    expect(selectProxy({ candidates, health: {} })).toMatchObject({
      kind: 'proxy',
      id: 'primary',
      index: 0,
      reason: 'Initial',
      changed: true,
      message: 'using proxy a.example:443 (primary)',
    });
    const health = {
      primary: { consecutiveFailures: 2, consecutiveSuccesses: 0, lastPing: fail('timeout') },
    };
    const d = selectProxy({ candidates, health });
    expect(d).toMatchObject({ id: 'failover-0', reason: 'Initial' });
    expect(d.message).toBe(
      'using proxy b.example:1080 (failover 1); skipped a.example:443 2 failed pings: timeout',
    );
  });

  it('fails over after failAfter consecutive failed pings (default 2), not after one', () => {
    const sim = new Sim();
    sim.round({ primary: ok() });
    expect(sim.round({ primary: fail() })).toMatchObject({
      id: 'primary',
      reason: 'Healthy',
      changed: false,
    });
    const d = sim.round({ primary: fail('Connection refused'), 'failover-0': ok() });
    expect(d).toMatchObject({ id: 'failover-0', reason: 'Failover', changed: true, allFailing: false });
    expect(d.message).toBe(
      'using proxy b.example:1080 (failover 1); a.example:443 dropped after 2 failed pings: Connection refused',
    );
  });

  it('honours a custom failAfter', () => {
    const health = { primary: { consecutiveFailures: 2, consecutiveSuccesses: 0 } };
    expect(selectProxy({ candidates, health, current: 'primary', failAfter: 3 }).id).toBe('primary');
    expect(selectProxy({ candidates, health, current: 'primary', failAfter: 2 }).id).toBe('failover-0');
  });

  it('skips failing failover entries and picks the earliest healthy one', () => {
    const health = {
      primary: { consecutiveFailures: 3, consecutiveSuccesses: 0, lastPing: fail() },
      'failover-0': { consecutiveFailures: 5, consecutiveSuccesses: 0, lastPing: fail() },
    };
    expect(selectProxy({ candidates, health, current: 'primary' })).toMatchObject({
      id: 'failover-1',
      index: 2,
      reason: 'Failover',
    });
  });

  it('does not flap: a proxy that loses every other ping keeps the connection', () => {
    const sim = new Sim();
    for (let i = 0; i < 20; i++) sim.round({ primary: i % 2 === 0 ? fail() : ok(), 'failover-0': ok() });
    expect(new Set(sim.history)).toEqual(new Set(['primary']));
  });

  it('does not flap back to a primary that answers intermittently after a failover', () => {
    const sim = new Sim();
    sim.round({ primary: fail(), 'failover-0': ok() });
    sim.round({ primary: fail(), 'failover-0': ok() });
    expect(sim.current).toBe('failover-0');
    // The primary answers now and then, never recoverAfter (3) times in a row.
    for (let i = 0; i < 12; i++) sim.round({ primary: i % 3 === 2 ? fail() : ok(), 'failover-0': ok() });
    expect(sim.history.slice(1)).toEqual(Array(13).fill('failover-0'));
  });

  it('returns to the primary only after recoverAfter consecutive good pings (default 3)', () => {
    const sim = new Sim();
    sim.round({ primary: fail(), 'failover-0': ok() });
    sim.round({ primary: fail(), 'failover-0': ok() });
    expect(sim.current).toBe('failover-0');
    expect(sim.round({ primary: ok(), 'failover-0': ok() })).toMatchObject({
      id: 'failover-0',
      changed: false,
    });
    expect(sim.lastMessage).toBe('using proxy b.example:1080 (failover 1)');
    expect(sim.round({ primary: ok(), 'failover-0': ok() }).id).toBe('failover-0');
    const back = sim.round({ primary: ok(), 'failover-0': ok() });
    expect(back).toMatchObject({ id: 'primary', reason: 'Recovered', changed: true });
    expect(back.message).toBe(
      'using proxy a.example:443 (primary) again: it passed 3 consecutive pings; leaving b.example:1080 (failover 1)',
    );
    expect(selectProxy({ candidates, health: sim.health, current: 'primary', recoverAfter: 5 }).id).toBe(
      'primary',
    );
  });

  it('moves up to an earlier failover entry once it has recovered, even while the primary is down', () => {
    const health = {
      primary: { consecutiveFailures: 9, consecutiveSuccesses: 0 },
      'failover-0': { consecutiveFailures: 0, consecutiveSuccesses: 3 },
      'failover-1': { consecutiveFailures: 0, consecutiveSuccesses: 9 },
    };
    expect(selectProxy({ candidates, health, current: 'failover-1' })).toMatchObject({
      id: 'failover-0',
      reason: 'Recovered',
    });
  });

  it('mentions failing earlier entries while staying on a healthy later one', () => {
    const health = {
      primary: { consecutiveFailures: 4, consecutiveSuccesses: 0, lastPing: fail('Host unreachable') },
      'failover-0': { consecutiveFailures: 0, consecutiveSuccesses: 4, lastPing: ok() },
    };
    expect(selectProxy({ candidates, health, current: 'failover-0' }).message).toBe(
      'using proxy b.example:1080 (failover 1); a.example:443 4 failed pings: Host unreachable',
    );
  });

  it('when all are failing, keeps the least bad one and says that all are failing', () => {
    const health = {
      primary: { consecutiveFailures: 6, consecutiveSuccesses: 0, lastPing: fail('timeout') },
      'failover-0': { consecutiveFailures: 2, consecutiveSuccesses: 0, lastPing: fail('refused') },
      'failover-1': { consecutiveFailures: 4, consecutiveSuccesses: 0, lastPing: fail('reset') },
    };
    const d = selectProxy({ candidates, health });
    expect(d).toMatchObject({ kind: 'proxy', id: 'failover-0', reason: 'AllFailing', allFailing: true });
    expect(d.message).toBe(
      'all 3 proxies are failing; using b.example:1080 (failover 1), the least bad: ' +
        'a.example:443 6 failed pings: timeout; b.example:1080 2 failed pings: refused; ' +
        'c.example:8080 4 failed pings: reset',
    );
    // The one in use stays unless another is clearly (failAfter) less bad.
    const close = { ...health, 'failover-1': { ...health['failover-1'], consecutiveFailures: 3 } };
    expect(selectProxy({ candidates, health: close, current: 'failover-1' })).toMatchObject({
      id: 'failover-1',
      changed: false,
      allFailing: true,
    });
    expect(selectProxy({ candidates, health, current: 'failover-1' })).toMatchObject({
      id: 'failover-0',
      changed: true,
    });
    expect(selectProxy({ candidates, health, current: 'primary' })).toMatchObject({
      id: 'failover-0',
      changed: true,
    });
  });

  it('all failing, pinged in turns: no flapping between dead proxies', () => {
    const sim = new Sim([a, b]);
    for (let i = 0; i < 10; i++) {
      sim.round({ primary: fail() });
      sim.round({ 'failover-0': fail() });
    }
    const switches = sim.history.filter((id, i) => i > 0 && id !== sim.history[i - 1]).length;
    expect(switches).toBeLessThanOrEqual(1);
    expect(sim.lastMessage).toMatch(/^all 2 proxies are failing/);
  });

  it('a single configured proxy that fails is kept, with an all-failing message', () => {
    const d = selectProxy({
      candidates: [a],
      health: { primary: { consecutiveFailures: 3, consecutiveSuccesses: 0, lastPing: fail('refused') } },
      current: 'primary',
    });
    expect(d).toMatchObject({ id: 'primary', changed: false, allFailing: true });
    expect(d.message).toBe(
      'all 1 proxy is failing; using a.example:443 (primary), the least bad: a.example:443 3 failed pings: refused',
    );
  });

  it('treats a current id that is no longer configured as nothing in use', () => {
    expect(selectProxy({ candidates, health: {}, current: 'removed' })).toMatchObject({
      id: 'primary',
      reason: 'Initial',
      changed: true,
    });
  });

  it('accepts health as a plain record and falls back to the id as label', () => {
    const d = selectProxy({
      candidates: [{ id: 'x' }],
      health: { x: { consecutiveFailures: 0, consecutiveSuccesses: 1 } },
    });
    expect(d.message).toBe('using proxy x (primary)');
  });

  it('recordPing counts streaks', () => {
    let h = recordPing(undefined, ok());
    h = recordPing(h, ok());
    expect(h).toMatchObject({ consecutiveSuccesses: 2, consecutiveFailures: 0 });
    h = recordPing(h, fail('x'));
    expect(h).toMatchObject({
      consecutiveSuccesses: 0,
      consecutiveFailures: 1,
      lastPing: { ok: false, error: 'x' },
    });
  });
});
