/**
 * Pool reconciler (key: "namespace/pool"). Decides where each account of the pool runs and keeps the pool's
 * runtime workload in line with that decision. It is the only writer of the placement label and of the
 * operator's part of account status (placement, observedGeneration, Scheduled).
 */
import { setMaxListeners } from 'node:events';
import type { V1StatefulSet } from '@kubernetes/client-node';
import type { TelegramAccount } from '../../crds/index.js';
import { checkInputs, referencedSecrets, type InputsCheck } from '../account/inputs.js';
import type { OperatorConfig } from '../config.js';
import type { RestClient } from '../kube/client.js';
import type { ObjectKey, ReconcileContext, ReconcileResult, Reconciler } from '../kube/controller.js';
import type { EventRecorder } from '../kube/events.js';
import type { Logger } from '../kube/logging.js';
import type { Informer } from '../kube/reflector.js';
import { Resources, type ApiObject, type ResourceDescriptor } from '../kube/resource.js';
import { intentHash } from '../kube/apply.js';
import { forEachLimited } from '../kube/util.js';
import {
  LABEL_PLACED_POD,
  LABEL_POOL,
  accountLeaseName,
  encryptionKeySecretName,
  loginCodeSecretName,
  podOrdinal,
  runtimePodName,
  sessionSecretName,
} from '../../crds/naming.js';
import { place } from '../placement.js';
import { TelegramAccountResource } from '../../crds/resources.js';
import {
  desiredOperatorStatus,
  operatorStatusCurrent,
  statusApplyBody,
  type PlacementOutcome,
} from './account-status.js';
import {
  desiredPodDisruptionBudget,
  desiredRole,
  desiredRoleBinding,
  desiredService,
  desiredServiceAccount,
  desiredStatefulSet,
  type PoolSettings,
} from './desired.js';

export const PLACEMENT_FIELD_MANAGER = 'tdlib-operator-placement';
export const STATUS_FIELD_MANAGER = 'tdlib-operator';
export const WORKLOAD_FIELD_MANAGER = 'tdlib-operator-pool';
/** A runtime pod is dead once its heartbeat Lease has not changed for this many Lease durations. */
export const HEARTBEAT_GRACE = 2;

/** Index of accounts by "namespace/pool" on the account informer. */
export const POOL_INDEX = 'pool';
export const poolOf = (account: TelegramAccount): string => account.spec.runtimePool ?? 'default';
export const poolKeyOf = (account: TelegramAccount): string =>
  `${account.metadata.namespace ?? ''}/${poolOf(account)}`;

export interface PoolReconcilerDeps {
  rest: RestClient;
  accounts: Informer<TelegramAccount & ApiObject>;
  /** Secrets with their values blanked: only names and keys matter here. */
  secrets: Informer<ApiObject & { data?: Record<string, string> }>;
  statefulSets: Informer<V1StatefulSet & ApiObject>;
  events: EventRecorder;
  config: OperatorConfig;
  logger?: Logger;
  /** Heartbeat Leases of runtime pods (label app.kubernetes.io/managed-by=tdlib-runtime). */
  leases?: Informer<HeartbeatLease>;
  now?: () => Date;
  monotonic?: () => number;
}

export type HeartbeatLease = ApiObject & {
  spec?: { holderIdentity?: string | null; renewTime?: string | null; leaseDurationSeconds?: number };
};

/** Writes per account run with this much concurrency (the REST client bounds the total anyway). */
const WRITE_CONCURRENCY = 32;

export class PoolReconciler implements Reconciler {
  /**
   * Placements this process wrote, until the cache shows them. Without it a reconcile that runs before the
   * watch delivered our own label writes would see accounts as unplaced and might place them elsewhere.
   */
  private readonly written = new Map<string, string | undefined>();
  /** Hash of the last intent applied per workload object, so an unchanged pool costs no write. */
  private readonly appliedWorkload = new Map<string, string>();
  private readonly now: () => Date;
  private readonly monotonic: () => number;
  /** When each runtime heartbeat Lease was last seen to change, on our clock. */
  private readonly observedHeartbeats = new Map<string, { record: string; at: number }>();
  private readonly reportedDead = new Set<string>();

  constructor(private readonly deps: PoolReconcilerDeps) {
    this.now = deps.now ?? (() => new Date());
    this.monotonic = deps.monotonic ?? (() => performance.now());
  }

  async reconcile(key: ObjectKey, context: ReconcileContext): Promise<ReconcileResult | void> {
    const { namespace, name: pool } = key;
    const { config } = this.deps;
    // Every concurrent write listens on the same abort signal.
    setMaxListeners(WRITE_CONCURRENCY * 2 + 16, context.signal);
    const accounts = this.deps.accounts.byIndex(POOL_INDEX, `${namespace}/${pool}`);

    const inputs = new Map<string, InputsCheck>();
    const placeable: Array<{ key: string; pod?: number }> = [];
    for (const account of accounts) {
      const accountKey = account.metadata.name ?? '';
      const check = checkInputs(account, (secret) => this.secretKeys(namespace, secret));
      inputs.set(accountKey, check);
      const current = this.currentPod(account);
      const ordinal = current === undefined ? undefined : podOrdinal(pool, current);
      // An account being deleted keeps its pod so the runtime can log it out; invalid inputs unplace it.
      if (check.ok || account.metadata.deletionTimestamp) placeable.push({ key: accountKey, pod: ordinal });
    }
    const heartbeats = this.heartbeats(namespace, pool);
    const placement = place({
      accounts: placeable,
      accountsPerPod: config.RUNTIME_ACCOUNTS_PER_POD,
      minReplicas: placeable.length > 0 ? config.RUNTIME_MIN_REPLICAS : 0,
      maxReplicas: config.RUNTIME_MAX_REPLICAS,
      drainingPods: heartbeats.dead,
    });

    await this.applyWorkload(namespace, pool, accounts, placement.replicas, context.signal);

    const now = this.now();
    await forEachLimited(accounts, WRITE_CONCURRENCY, async (account) => {
      if (context.signal.aborted) return;
      const accountName = account.metadata.name ?? '';
      const check = inputs.get(accountName) ?? { ok: true };
      const ordinal = placement.assignments.get(accountName);
      const outcome: PlacementOutcome =
        ordinal !== undefined
          ? { pod: runtimePodName(pool, ordinal) }
          : { unplaced: check.ok ? 'PoolFull' : 'InputsInvalid' };
      await this.applyPlacementLabel(account, 'pod' in outcome ? outcome.pod : undefined, context.signal);
      await this.applyStatus(account, pool, check, outcome, now, context.signal);
    });
    // Nothing announces that a heartbeat stopped changing: look again once it could have expired.
    return heartbeats.live > 0 ? { requeueAfterMs: heartbeats.recheckMs } : undefined;
  }

  /**
   * Runtime pods of the pool whose heartbeat Lease has not changed for longer than its duration (judged on
   * our clock from when we last saw it change, as client-go does): they are dead, their accounts move.
   * A pod that never had a heartbeat is starting, not dead.
   */
  private heartbeats(
    namespace: string,
    pool: string,
  ): { dead: Set<number>; live: number; recheckMs: number } {
    const dead = new Set<number>();
    let live = 0;
    let recheckMs = 30_000;
    const nowMs = this.monotonic();
    for (const lease of this.deps.leases?.list(namespace) ?? []) {
      if (lease.metadata?.labels?.[LABEL_POOL] !== pool) continue;
      const ordinal = podOrdinal(pool, lease.metadata?.name ?? '');
      if (ordinal === undefined) continue;
      const spec = lease.spec ?? {};
      const id = `${namespace}/${lease.metadata?.name}`;
      const record = `${spec.holderIdentity ?? ''}|${spec.renewTime ?? ''}`;
      const seen = this.observedHeartbeats.get(id);
      if (seen?.record !== record) this.observedHeartbeats.set(id, { record, at: nowMs });
      // Twice the duration: a runtime busy starting a thousand clients may renew late; moving its accounts
      // would cost far more than a few seconds' later fail-over. (The account Leases still fence sessions.)
      const durationMs = (spec.leaseDurationSeconds ?? 15) * 1000 * HEARTBEAT_GRACE;
      const age = nowMs - (this.observedHeartbeats.get(id)?.at ?? nowMs);
      if (age > durationMs) {
        dead.add(ordinal);
        if (!this.reportedDead.has(id)) {
          this.reportedDead.add(id);
          this.deps.logger?.warn(
            { pod: lease.metadata?.name, unchangedForMs: Math.round(age), renewTime: spec.renewTime ?? null },
            'runtime pod heartbeat expired: moving its accounts to other pods',
          );
        }
      } else {
        this.reportedDead.delete(id);
        live++;
        recheckMs = Math.min(recheckMs, durationMs - age + 500);
      }
    }
    return { dead, live, recheckMs };
  }

  private secretKeys(namespace: string, secret: string): readonly string[] | undefined {
    const object = this.deps.secrets.get(namespace, secret);
    return object ? Object.keys(object.data ?? {}) : undefined;
  }

  private currentPod(account: TelegramAccount): string | undefined {
    const key = `${account.metadata.namespace}/${account.metadata.name}`;
    const label = account.metadata.labels?.[LABEL_PLACED_POD];
    if (this.written.has(key)) {
      const mine = this.written.get(key);
      if (mine === label) this.written.delete(key); // the cache caught up
      return mine;
    }
    return label;
  }

  private async applyPlacementLabel(
    account: TelegramAccount,
    pod: string | undefined,
    signal: AbortSignal,
  ): Promise<void> {
    const key = `${account.metadata.namespace}/${account.metadata.name}`;
    if (account.metadata.labels?.[LABEL_PLACED_POD] === pod) return;
    if (this.written.has(key) && this.written.get(key) === pod) return;
    const metadata: Record<string, unknown> = {
      name: account.metadata.name,
      namespace: account.metadata.namespace,
    };
    // Applying without the label removes it: we own it under this field manager.
    if (pod !== undefined) metadata.labels = { [LABEL_PLACED_POD]: pod };
    await this.deps.rest.applyPatch(
      TelegramAccountResource,
      { apiVersion: account.apiVersion, kind: account.kind, metadata },
      { fieldManager: PLACEMENT_FIELD_MANAGER, force: true, signal },
    );
    this.written.set(key, pod);
  }

  private async applyStatus(
    account: TelegramAccount,
    pool: string,
    check: InputsCheck,
    outcome: PlacementOutcome,
    now: Date,
    signal: AbortSignal,
  ): Promise<void> {
    const desired = desiredOperatorStatus(account, pool, check, outcome, now);
    if (operatorStatusCurrent(account, desired)) return;
    const wasScheduled = account.status?.conditions?.find((c) => c.type === 'Scheduled');
    await this.deps.rest.applyStatus(TelegramAccountResource, statusApplyBody(account, desired), {
      fieldManager: STATUS_FIELD_MANAGER,
      force: true,
      signal,
    });
    const scheduled = desired.conditions[0];
    if (
      scheduled &&
      scheduled.status === 'False' &&
      (wasScheduled?.reason !== scheduled.reason || wasScheduled.message !== scheduled.message)
    ) {
      this.deps.events.event(account, 'Warning', scheduled.reason, scheduled.message);
    }
  }

  private async applyWorkload(
    namespace: string,
    pool: string,
    accounts: readonly TelegramAccount[],
    replicas: number,
    signal: AbortSignal,
  ): Promise<void> {
    const names = accounts.map((a) => a.metadata.name ?? '');
    const settings: PoolSettings = {
      namespace,
      pool,
      replicas,
      image: this.deps.config.RUNTIME_IMAGE,
      storageSize: this.deps.config.RUNTIME_STORAGE_SIZE,
      storageClass: this.deps.config.RUNTIME_STORAGE_CLASS,
      backend: this.deps.config.RUNTIME_BACKEND === 'simulator' ? 'simulator' : 'native',
      secretNames: [
        ...accounts.flatMap((a) => referencedSecrets(a)),
        ...names.map(encryptionKeySecretName),
        ...names.map(loginCodeSecretName),
      ],
      sessionSecretNames: names.map(sessionSecretName),
      // The account Leases (the session fence) and each pod's heartbeat Lease.
      leaseNames: [
        ...names.map(accountLeaseName),
        ...Array.from({ length: replicas }, (_, i) => runtimePodName(pool, i)),
      ],
    };
    if (
      accounts.length === 0 &&
      !this.deps.statefulSets.get(namespace, desiredStatefulSet(settings).metadata?.name ?? '')
    )
      return;
    const objects: Array<[ResourceDescriptor, ApiObject]> = [
      [Resources.ServiceAccount, desiredServiceAccount(settings)],
      [Resources.Role, desiredRole(settings)],
      [Resources.RoleBinding, desiredRoleBinding(settings)],
      [Resources.Service, desiredService(settings)],
      [Resources.PodDisruptionBudget, desiredPodDisruptionBudget(settings)],
      [Resources.StatefulSet, desiredStatefulSet(settings)],
    ];
    for (const [resource, object] of objects) {
      const id = `${resource.kind}/${namespace}/${object.metadata?.name ?? ''}`;
      const hash = intentHash(object);
      const cachedSts =
        resource === Resources.StatefulSet
          ? this.deps.statefulSets.get(namespace, object.metadata?.name ?? '')
          : undefined;
      // The StatefulSet cache also catches edits or deletion by someone else; the others rely on the hash.
      const stsDrifted =
        resource === Resources.StatefulSet && (!cachedSts || cachedSts.spec?.replicas !== replicas);
      if (this.appliedWorkload.get(id) === hash && !stsDrifted) continue;
      await this.deps.rest.applyPatch(resource, object, {
        fieldManager: WORKLOAD_FIELD_MANAGER,
        force: true,
        signal,
      });
      this.appliedWorkload.set(id, hash);
    }
  }
}
