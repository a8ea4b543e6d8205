/**
 * The runtime takes send requests only from the send API gateway: each carries the gateway's
 * ServiceAccount token for the runtime's own audience, verified here against the cluster's service
 * account signing keys (the API server's public JWKS, which every ServiceAccount may read), with no API
 * call per request and no extra RBAC. Anything else gets 401: the runtime's port cannot be used to skip
 * the gateway's TokenReview and SubjectAccessReview.
 */
import { createPublicKey, verify, type JsonWebKey, type KeyObject } from 'node:crypto';

export const RUNTIME_SEND_AUDIENCE = 'tdlib-operator-runtime';

export interface Jwks {
  keys: Array<JsonWebKey & { kid?: string; alg?: string }>;
}

interface Claims {
  iss?: string;
  sub?: string;
  aud?: string | string[];
  exp?: number;
  nbf?: number;
}

const decode = (part: string): unknown => JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));

export class GatewayTokenVerifier {
  private keys = new Map<string, KeyObject>();
  private fetchedAt = 0;
  private fetching?: Promise<void>;

  constructor(
    private readonly options: {
      /** The API server's /openid/v1/jwks. */
      fetchJwks: () => Promise<Jwks>;
      /** system:serviceaccount:<namespace>:<name> of the gateway. */
      subject: string;
      audience?: string;
      now?: () => number;
    },
  ) {}

  /** Undefined when the token is the gateway's for this audience and valid now; else why not. */
  async check(token: string): Promise<string | undefined> {
    const parts = token.split('.');
    if (parts.length !== 3) return 'not a JWT';
    const [head, body, signature] = parts as [string, string, string];
    let header: { alg?: string; kid?: string };
    let claims: Claims;
    try {
      header = decode(head) as { alg?: string; kid?: string };
      claims = decode(body) as Claims;
    } catch {
      return 'not a JWT';
    }
    if (header.alg !== 'RS256' && header.alg !== 'ES256')
      return `unsupported algorithm ${String(header.alg)}`;
    let key = await this.key(header.kid ?? '');
    // Keys rotate: an unknown kid refreshes the set once (at most every 10 s).
    if (!key && this.now() - this.fetchedAt > 10_000) {
      await this.refresh();
      key = this.keys.get(header.kid ?? '');
    }
    if (!key) return 'signed by a key this cluster does not publish';
    const valid = verify(
      'sha256',
      Buffer.from(`${head}.${body}`),
      header.alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key,
      Buffer.from(signature, 'base64url'),
    );
    if (!valid) return 'bad signature';
    const now = this.now() / 1000;
    if (typeof claims.exp !== 'number' || claims.exp <= now) return 'expired';
    if (typeof claims.nbf === 'number' && claims.nbf > now + 60) return 'not valid yet';
    const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (!audiences.includes(this.options.audience ?? RUNTIME_SEND_AUDIENCE))
      return 'made for another audience';
    if (claims.sub !== this.options.subject) return `not the send API gateway (${String(claims.sub)})`;
    return undefined;
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  private async key(kid: string): Promise<KeyObject | undefined> {
    if (this.fetchedAt === 0) await this.refresh();
    return this.keys.get(kid);
  }

  private refresh(): Promise<void> {
    this.fetching ??= this.options
      .fetchJwks()
      .then((jwks) => {
        const keys = new Map<string, KeyObject>();
        for (const jwk of jwks.keys) keys.set(jwk.kid ?? '', createPublicKey({ key: jwk, format: 'jwk' }));
        this.keys = keys;
        this.fetchedAt = this.now();
      })
      .finally(() => {
        this.fetching = undefined;
      });
    return this.fetching;
  }
}
