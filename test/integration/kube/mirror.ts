/**
 * A small real controller for the integration suites: for every ConfigMap "src-<x>" labelled
 * suite=<suite>, it server-side-applies "mirror-<x>" with the same data, and deletes the mirror when the
 * source goes. It reads only from caches and writes only when the mirror differs (intent hash included),
 * so an idle controller makes no writes.
 */
import { applyIntent, needsApplyWithHash, withIntentHash } from '../../../operator/kube/apply.js';
import { RestClient, ignoreNotFound } from '../../../operator/kube/client.js';
import { Controller, type ObjectKey, type ReconcileResult } from '../../../operator/kube/controller.js';
import type { Logger } from '../../../operator/kube/logging.js';
import type { Registry } from '../../../operator/kube/metrics.js';
import { Informer } from '../../../operator/kube/reflector.js';
import { Resources } from '../../../operator/kube/resource.js';

export interface ConfigMap {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    resourceVersion?: string;
    managedFields?: unknown;
  };
  data?: Record<string, string>;
}

export const FIELD_MANAGER = 'mirror-controller';
const HASH = 'test.tdlib-operator.dev/intent';

export interface Mirror {
  controller: Controller;
  sources: Informer<ConfigMap>;
  mirrors: Informer<ConfigMap>;
  /** Reconciles done, per key, in order. */
  reconciled: string[];
  /** Hook run at the start of each reconcile (tests inject failures, delays, checks). */
  before: (key: ObjectKey) => Promise<ReconcileResult | void> | ReconcileResult | void;
  start(): Promise<void>;
  stop(): Promise<void>;
}

export function createMirror(options: {
  rest: RestClient;
  namespace: string;
  suite: string;
  logger: Logger;
  registry: Registry;
  workers?: number;
  name?: string;
}): Mirror {
  const { rest, namespace, suite, logger, registry } = options;
  const sources = new Informer<ConfigMap>(rest, Resources.ConfigMap, {
    namespace,
    labelSelector: `suite=${suite},role=source`,
    logger,
    name: `${suite}-sources`,
    registry,
  });
  const mirrors = new Informer<ConfigMap>(rest, Resources.ConfigMap, {
    namespace,
    labelSelector: `suite=${suite},role=mirror`,
    logger,
    name: `${suite}-mirrors`,
    registry,
  });
  const mirror: Mirror = {
    controller: undefined as unknown as Controller,
    sources,
    mirrors,
    reconciled: [],
    before: () => undefined,
    async start() {
      sources.start();
      mirrors.start();
      await mirror.controller.start();
    },
    async stop() {
      await mirror.controller.stop();
      await sources.dispose();
      await mirrors.dispose();
    },
  };
  mirror.controller = new Controller({
    name: options.name ?? suite,
    workers: options.workers ?? 2,
    logger,
    registry,
    reconciler: {
      async reconcile(key) {
        mirror.reconciled.push(`${key.namespace}/${key.name}`);
        const early = await mirror.before(key);
        if (early) return early;
        const mirrorName = key.name.replace(/^src-/, 'mirror-');
        const source = sources.get(key.namespace, key.name);
        if (!source) {
          if (mirrors.get(key.namespace, mirrorName)) {
            await rest.delete(Resources.ConfigMap, key.namespace, mirrorName).catch(ignoreNotFound);
          }
          return;
        }
        const desired = withIntentHash(
          applyIntent(
            Resources.ConfigMap,
            { name: mirrorName, namespace: key.namespace, labels: { suite, role: 'mirror' } },
            {
              data: { ...(source.data ?? {}) },
            },
          ),
          HASH,
        );
        if (needsApplyWithHash(mirrors.get(key.namespace, mirrorName), desired, HASH)) {
          await rest.applyPatch(Resources.ConfigMap, desired, { fieldManager: FIELD_MANAGER });
        }
      },
    },
  });
  mirror.controller
    .watches(sources, (obj) => [{ namespace: obj.metadata?.namespace ?? '', name: obj.metadata?.name ?? '' }])
    .watches(mirrors, (obj) => [
      {
        namespace: obj.metadata?.namespace ?? '',
        name: (obj.metadata?.name ?? '').replace(/^mirror-/, 'src-'),
      },
    ]);
  return mirror;
}

/** Sources and mirrors as the apiserver has them: converged when every src-x has mirror-x with equal data. */
export async function converged(rest: RestClient, namespace: string, suite: string): Promise<boolean> {
  const list = await rest.listAll<ConfigMap>(Resources.ConfigMap, {
    namespace,
    labelSelector: `suite=${suite}`,
  });
  const byName = new Map(list.items.map((o) => [o.metadata?.name ?? '', o]));
  const sources = list.items.filter((o) => o.metadata?.labels?.role === 'source');
  const mirrors = list.items.filter((o) => o.metadata?.labels?.role === 'mirror');
  if (sources.length !== mirrors.length) return false;
  return sources.every((s) => {
    const m = byName.get((s.metadata?.name ?? '').replace(/^src-/, 'mirror-'));
    return m !== undefined && JSON.stringify(m.data ?? {}) === JSON.stringify(s.data ?? {});
  });
}

export function source(
  namespace: string,
  suite: string,
  name: string,
  data: Record<string, string>,
): ConfigMap {
  return { metadata: { name: `src-${name}`, namespace, labels: { suite, role: 'source' } }, data };
}
