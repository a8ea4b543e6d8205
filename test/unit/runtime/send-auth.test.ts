import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import {
  GatewayTokenVerifier,
  RUNTIME_SEND_AUDIENCE,
  type Jwks,
} from '../../../runtime/sending/gateway-token.js';
import { validSendBody } from '../../../runtime/sending/send-body.js';

const GATEWAY = 'system:serviceaccount:tdlib-operator-system:tdlib-send-gateway';

function jwt(privateKey: KeyObject, kid: string, claims: Record<string, unknown>, alg = 'RS256'): string {
  const head = Buffer.from(JSON.stringify({ alg, kid })).toString('base64url');
  const body = Buffer.from(JSON.stringify(claims)).toString('base64url');
  const signature = sign('sha256', Buffer.from(`${head}.${body}`), privateKey).toString('base64url');
  return `${head}.${body}.${signature}`;
}

describe('GatewayTokenVerifier: only the gateway’s token for the runtime', () => {
  const cluster = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const now = 1_800_000_000;
  let fetches = 0;
  let published: Jwks;
  const verifier = () =>
    new GatewayTokenVerifier({
      fetchJwks: () => {
        fetches++;
        return Promise.resolve(published);
      },
      subject: GATEWAY,
      now: () => now * 1000,
    });
  const claims = (extra: Record<string, unknown> = {}) => ({
    iss: 'https://kubernetes.default.svc.cluster.local',
    sub: GATEWAY,
    aud: [RUNTIME_SEND_AUDIENCE],
    exp: now + 600,
    ...extra,
  });

  beforeEach(() => {
    fetches = 0;
    published = { keys: [{ ...cluster.publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'RS256' }] };
  });

  it('accepts the gateway’s valid token, fetching the keys once', async () => {
    const v = verifier();
    expect(await v.check(jwt(cluster.privateKey, 'k1', claims()))).toBeUndefined();
    expect(await v.check(jwt(cluster.privateKey, 'k1', claims()))).toBeUndefined();
    expect(fetches).toBe(1);
  });

  it('refuses another audience, another subject, an expired token, a foreign signature, garbage', async () => {
    const v = verifier();
    expect(await v.check(jwt(cluster.privateKey, 'k1', claims({ aud: ['tdlib-operator-send-api'] })))).toBe(
      'made for another audience',
    );
    expect(
      await v.check(jwt(cluster.privateKey, 'k1', claims({ sub: 'system:serviceaccount:apps:app' }))),
    ).toContain('not the send API gateway');
    expect(await v.check(jwt(cluster.privateKey, 'k1', claims({ exp: now - 1 })))).toBe('expired');
    expect(await v.check(jwt(other.privateKey, 'k1', claims()))).toBe('bad signature');
    expect(await v.check('not.a.jwt')).toBe('not a JWT');
    expect(await v.check(jwt(cluster.privateKey, 'k1', claims(), 'none'))).toContain('unsupported algorithm');
  });

  it('picks up a rotated key when a token names a kid it does not know', async () => {
    const v = verifier();
    expect(await v.check(jwt(cluster.privateKey, 'k1', claims()))).toBeUndefined();
    published = { keys: [{ ...other.publicKey.export({ format: 'jwk' }), kid: 'k2' }] };
    // Within 10 s of the last fetch an unknown kid is refused without asking again.
    expect(await v.check(jwt(other.privateKey, 'k2', claims()))).toContain('does not publish');
    expect(fetches).toBe(1);
  });
});

describe('validSendBody: every refusal names the field', () => {
  it('takes a minimal request and the optional fields', () => {
    expect(validSendBody({ to: ' @alice ', text: 'hi' }, 'k')).toEqual({ to: '@alice', text: 'hi' });
    expect(
      validSendBody(
        { to: '+15550100101', text: 'hi', parseMode: 'HTML', silent: true, replyToMessageId: 7 },
        'k',
      ),
    ).toMatchObject({ parseMode: 'HTML', silent: true, replyToMessageId: 7 });
    expect(validSendBody({ to: '@alice', text: 'fixed', editMessageId: 1048576 }, 'k')).toEqual({
      to: '@alice',
      text: 'fixed',
      editMessageId: 1048576,
    });
  });

  it.each([
    [{ to: '@a', text: 'x' }, '', 'Idempotency-Key'],
    [[], 'k', 'JSON object'],
    [{ to: '@a', text: 'x', chat: 1 }, 'k', 'unknown field chat'],
    [{ text: 'x' }, 'k', 'to:'],
    [{ to: '@a', text: '' }, 'k', 'text:'],
    [{ to: '@a', text: 'x'.repeat(4097) }, 'k', 'text:'],
    [{ to: '@a', text: 'x', parseMode: 'Html' }, 'k', 'parseMode:'],
    [{ to: '@a', text: 'x', silent: 'yes' }, 'k', 'silent:'],
    [{ to: '@a', text: 'x', replyToMessageId: -1 }, 'k', 'replyToMessageId:'],
    [{ to: '@a', text: 'x', editMessageId: 1.5 }, 'k', 'editMessageId:'],
    [{ to: '@a', text: 'x', editMessageId: '7' }, 'k', 'editMessageId:'],
    [{ to: '@a', text: 'x', editMessageId: 7, replyToMessageId: 3 }, 'k', 'replyToMessageId: applies to new'],
    [{ to: '@a', text: 'x', editMessageId: 7, silent: true }, 'k', 'silent: applies to new'],
  ])('%j with key %j: %s', (body, key, field) => {
    const result = validSendBody(body, key);
    expect('error' in result && result.error).toContain(field);
  });
});
