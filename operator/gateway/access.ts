/**
 * Who is calling the send API, and may they send as this account: the kube-rbac-proxy pattern. A bearer
 * token is checked with a TokenReview for the API's own audience (a token made for the API server or for
 * another service is refused), and the caller's right with a SubjectAccessReview of `create` on
 * `telegramaccounts/messages` of that account, so the cluster's own RBAC (and any other authorizer)
 * decides. Answers are cached as kube-rbac-proxy does: tokens 2 minutes, allowed 5 minutes, denied 30 s.
 */
import { createHash } from 'node:crypto';
import { GROUP, TELEGRAM_ACCOUNT_PLURAL } from '../../crds/index.js';
import type { RestClient } from '../kube/client.js';
import { Resources, type ApiObject } from '../kube/resource.js';

export const SEND_API_AUDIENCE = 'tdlib-operator-send-api';
export const MESSAGES_SUBRESOURCE = 'messages';

export interface Caller {
  user: string;
  uid?: string;
  groups: string[];
  extra?: Record<string, string[]>;
}

/** A map whose entries expire, bounded in size (the oldest entries go first). */
export class ExpiringCache<V> {
  private readonly entries = new Map<string, { value: V; until: number }>();

  constructor(
    private readonly maxEntries: number,
    private readonly now: () => number = Date.now,
  ) {}

  get(key: string): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.until <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  set(key: string, value: V, ttlMs: number): void {
    this.entries.delete(key);
    if (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(key, { value, until: this.now() + ttlMs });
  }

  get size(): number {
    return this.entries.size;
  }
}

type TokenReview = ApiObject & {
  status?: {
    authenticated?: boolean;
    error?: string;
    audiences?: string[];
    user?: { username?: string; uid?: string; groups?: string[]; extra?: Record<string, string[]> };
  };
};

type AccessReview = ApiObject & { status?: { allowed?: boolean; denied?: boolean; reason?: string } };

const TOKEN_TTL_MS = 120_000;
const ALLOWED_TTL_MS = 300_000;
const DENIED_TTL_MS = 30_000;

/** TokenReview for the send API's audience; a failed review is not cached (the API server may be back). */
export class TokenAuthenticator {
  private readonly cache: ExpiringCache<Caller | null>;

  constructor(
    private readonly rest: RestClient,
    private readonly audience = SEND_API_AUDIENCE,
    now: () => number = Date.now,
  ) {
    this.cache = new ExpiringCache(10_000, now);
  }

  /** The caller, or undefined for a token that is not valid for this audience. */
  async authenticate(token: string, signal?: AbortSignal): Promise<Caller | undefined> {
    // Keyed by a hash: the cache never holds a usable token.
    const key = createHash('sha256').update(token).digest('hex');
    const cached = this.cache.get(key);
    if (cached !== undefined) return cached ?? undefined;
    const review = await this.rest.create<TokenReview>(
      Resources.TokenReview,
      { spec: { token, audiences: [this.audience] } } as TokenReview,
      { signal },
    );
    const user = review.status?.user;
    const valid =
      review.status?.authenticated === true &&
      (review.status.audiences ?? []).includes(this.audience) &&
      typeof user?.username === 'string';
    const caller: Caller | null = valid
      ? {
          user: user?.username ?? '',
          ...(user?.uid ? { uid: user.uid } : {}),
          groups: user?.groups ?? [],
          ...(user?.extra ? { extra: user.extra } : {}),
        }
      : null;
    this.cache.set(key, caller, TOKEN_TTL_MS);
    return caller ?? undefined;
  }
}

export interface AccessDecision {
  allowed: boolean;
  /** The authorizer's reason (RBAC gives none for a plain denial). */
  reason?: string;
}

/** SubjectAccessReview of `create telegramaccounts/messages` on one account. */
export class SendAuthorizer {
  private readonly cache: ExpiringCache<AccessDecision>;

  constructor(
    private readonly rest: RestClient,
    now: () => number = Date.now,
  ) {
    this.cache = new ExpiringCache(10_000, now);
  }

  async maySend(
    caller: Caller,
    namespace: string,
    account: string,
    signal?: AbortSignal,
  ): Promise<AccessDecision> {
    const key = JSON.stringify([caller.user, caller.uid, caller.groups, namespace, account]);
    const cached = this.cache.get(key);
    if (cached) return cached;
    const review = await this.rest.create<AccessReview>(
      Resources.SubjectAccessReview,
      {
        spec: {
          user: caller.user,
          ...(caller.uid ? { uid: caller.uid } : {}),
          groups: caller.groups,
          ...(caller.extra ? { extra: caller.extra } : {}),
          resourceAttributes: {
            namespace,
            verb: 'create',
            group: GROUP,
            resource: TELEGRAM_ACCOUNT_PLURAL,
            subresource: MESSAGES_SUBRESOURCE,
            name: account,
          },
        },
      } as AccessReview,
      { signal },
    );
    const decision: AccessDecision = {
      allowed: review.status?.allowed === true && review.status.denied !== true,
      ...(review.status?.reason ? { reason: review.status.reason } : {}),
    };
    this.cache.set(key, decision, decision.allowed ? ALLOWED_TTL_MS : DENIED_TTL_MS);
    return decision;
  }
}
