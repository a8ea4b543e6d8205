/**
 * The operator's view of Secrets, from two caches split by the managed-by label, so that every Secret is
 * in exactly one:
 * - the Secrets it made for accounts (session and earlier key Secrets) as metadata only: names, labels,
 *   owners. Their content is a key and a session backup of up to 1 MiB that the runtime rewrites; none of it
 *   is the operator's business, and a full watch would send and parse every backup (with 64 KB backups it
 *   took the operator from 204 to 353 MB, docs/benchmarks.md). What a loop must know of their content it
 *   reads when it needs it, or learns from the runtime, which reads them anyway.
 * - every other Secret (API credentials, tokens, passwords, proxy credentials that users make) with its key
 *   names, which the pool loop checks against the spec, and its values blanked.
 */
import type { Registry } from 'prom-client';
import { LABEL_MANAGED_BY, MANAGED_BY } from '../../crds/index.js';
import type { OwnerReference } from '../kube/apply.js';
import type { RestClient } from '../kube/client.js';
import type { Logger } from '../kube/logging.js';
import { Informer, type InformerEventHandler } from '../kube/reflector.js';
import { Resources, type ApiObject, type ApiObjectMeta } from '../kube/resource.js';

export type SecretObject = ApiObject & {
  metadata?: ApiObjectMeta & { ownerReferences?: OwnerReference[] };
  data?: Record<string, string>;
  type?: string;
};

/** Values are never needed by the operator's loops: blank them, so the cache holds key names only. */
export function blankSecretValues(secret: SecretObject): SecretObject {
  if (!secret.data) return secret;
  return { ...secret, data: Object.fromEntries(Object.keys(secret.data).map((k) => [k, ''])) };
}

export class SecretCache {
  readonly informers: readonly Informer<SecretObject>[];

  constructor(
    /** The Secrets the operator made for accounts, metadata only. */
    readonly made: Informer<SecretObject>,
    /** Every other Secret, with key names and no values. */
    readonly others: Informer<SecretObject>,
  ) {
    this.informers = [made, others];
  }

  get(namespace: string, name: string): SecretObject | undefined {
    return this.made.get(namespace, name) ?? this.others.get(namespace, name);
  }

  onEvent(handler: InformerEventHandler<SecretObject>): () => void {
    const off = this.informers.map((informer) => informer.onEvent(handler));
    return () => off.forEach((stop) => stop());
  }
}

export function secretCache(
  rest: RestClient,
  options: { namespace?: string; logger: Logger; registry?: Registry },
): SecretCache {
  const made = new Informer<SecretObject>(rest, Resources.Secret, {
    ...options,
    name: 'account-secrets',
    labelSelector: `${LABEL_MANAGED_BY}=${MANAGED_BY}`,
    metadataOnly: true,
  });
  const others = new Informer<SecretObject>(rest, Resources.Secret, {
    ...options,
    name: 'secrets',
    labelSelector: `${LABEL_MANAGED_BY}!=${MANAGED_BY}`,
    transform: blankSecretValues,
  });
  return new SecretCache(made, others);
}
