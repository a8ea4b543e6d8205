/**
 * Pool reconciler (key: "namespace/pool"). Decides where each account of the pool runs and keeps the pool's
 * runtime workload in line with that decision. It is the only writer of the placement label and of the
 * operator's part of account status (placement, observedGeneration, Scheduled).
 */
import { setMaxListeners } from 'node:events';
import type { V1StatefulSet } from '@kubernetes/client-node';
import type { TelegramAccount } from '../../crds/index.js';
import {
  checkInputs,
  optedIn,
  referencedSecrets,
  type InputsCheck,
  type SecretFacts,
} from '../account/inputs.js';
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
  ConditionType,
  LABEL_ACCOUNT,
  LABEL_MANAGED_BY,
  MANAGED_BY,
  LABEL_PLACED_POD,
  LABEL_POOL,
  accountLeaseName,
  encryptionKeySecretName,
  findCondition,
  heartbeatLeaseOf,
  loginCodeSecretName,
  podOrdinal,
  runtimeName,
  runtimePodName,
  sessionSecretName,
} from '../../crds/index.js';
import { isAlreadyExists } from '../kube/errors.js';
import type { LeaseObject } from '../kube/lease.js';
import { PodLiveness } from './liveness.js';
import { place } from '../placement.js';
import { TelegramAccountResource } from '../../crds/resources.js';
import {
  desiredOperatorStatus,
  operatorStatusCurrent,
  statusApplyBody,
  type PlacementOutcome,
  type PodHealth,
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
/**
 * A runtime pod is dead once its heartbeat Lease has not changed for this many Lease durations. One is
 * enough: a runtime that cannot renew within a duration has already closed every client (its fence).
 */
export const HEARTBEAT_GRACE = 1;
/** A pod with accounts placed on it that no runtime process took the heartbeat of for this long is dead. */
export const POD_START_TIMEOUT_MS = 120_000;

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
  /** Leases the runtimes use (label app.kubernetes.io/managed-by=tdlib-runtime): heartbeats carry the pool label. */
  leases?: Informer<HeartbeatLease>;
  now?: () => Date;
  monotonic?: () => number;
  /** When the operator's own API trouble last ended (RestClient.apiTroubleEndedAt); default never. */
  apiTroubleEndedAt?: () => number;
  podStartTimeoutMs?: number;
}

export type HeartbeatLease = ApiObject & LeaseObject;

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
  private readonly liveness: PodLiveness;
  private readonly reportedDead = new Set<string>();
  /** Heartbeat Leases created by this process, until the informer shows them. */
  private readonly heartbeatsCreated = new Set<string>();

  constructor(private readonly deps: PoolReconcilerDeps) {
    this.now = deps.now ?? (() => new Date());
    this.monotonic = deps.monotonic ?? (() => performance.now());
    this.liveness = new PodLiveness({
      graceFactor: HEARTBEAT_GRACE,
      startTimeoutMs: deps.podStartTimeoutMs ?? POD_START_TIMEOUT_MS,
      apiTroubleEndedAt: deps.apiTroubleEndedAt ?? (() => 0),
      now: this.monotonic,
    });
  }

  async reconcile(key: ObjectKey, context: ReconcileContext): Promise<ReconcileResult | void> {
    const { namespace, name: pool } = key;
    const { config } = this.deps;
    // Every concurrent write listens on the same abort signal.
    setMaxListeners(WRITE_CONCURRENCY * 2 + 16, context.signal);
    const accounts = this.deps.accounts.byIndex(POOL_INDEX, `${namespace}/${pool}`);

    const inputs = new Map<string, InputsCheck>();
    const placeable: Array<{ key: string; pod?: number }> = [];
    const load = new Map<number, number>();
    for (const account of accounts) {
      const accountKey = account.metadata.name ?? '';
      const check =
        this.foreignKey(namespace, accountKey) ??
        checkInputs(account, (secret) => this.secretFacts(namespace, secret));
      inputs.set(accountKey, check);
      const current = this.currentPod(account);
      const ordinal = current === undefined ? undefined : podOrdinal(pool, current);
      if (ordinal !== undefined) load.set(ordinal, (load.get(ordinal) ?? 0) + 1);
      // An account being deleted keeps its pod so the runtime can log it out; one that runs logged in keeps
      // it too (a Secret deleted after login must not end a healthy session); other invalid inputs unplace.
      if (check.ok || account.metadata.deletionTimestamp || this.servedWhereItIs(account))
        placeable.push({ key: accountKey, pod: ordinal });
    }
    const health = this.podHealth(namespace, pool, load);
    const placement = place({
      accounts: placeable,
      accountsPerPod: config.RUNTIME_ACCOUNTS_PER_POD,
      minReplicas: placeable.length > 0 ? config.RUNTIME_MIN_REPLICAS : 0,
      maxReplicas: config.RUNTIME_MAX_REPLICAS,
      drainingPods: health.dead,
    });

    await this.applyWorkload(namespace, pool, accounts, placement.replicas, context.signal);
    await this.ensureHeartbeatLeases(namespace, pool, placement.replicas, context.signal);

    const now = this.now();
    const podHealth = (pod: string): PodHealth | undefined => health.byPod.get(pod);
    await forEachLimited(accounts, WRITE_CONCURRENCY, async (account) => {
      if (context.signal.aborted) return;
      const accountName = account.metadata.name ?? '';
      const check = inputs.get(accountName) ?? { ok: true };
      const ordinal = placement.assignments.get(accountName);
      const outcome: PlacementOutcome =
        ordinal !== undefined
          ? { pod: runtimePodName(pool, ordinal) }
          : { unplaced: check.ok ? 'PoolFull' : 'InputsInvalid' };
      // Status first: a pod declared dead shows its accounts Ready=Unknown before they are re-placed.
      await this.applyStatus(account, pool, check, outcome, podHealth, now, context.signal);
      await this.applyPlacementLabel(account, 'pod' in outcome ? outcome.pod : undefined, context.signal);
    });
    // Nothing announces that a heartbeat stopped changing: look again once it could have expired.
    return health.recheckMs !== undefined ? { requeueAfterMs: health.recheckMs } : undefined;
  }

  /** Logged in and connected on the pod it is placed on: a running session a Secret change must not stop. */
  private servedWhereItIs(account: TelegramAccount): boolean {
    const pod = account.metadata.labels?.[LABEL_PLACED_POD];
    return (
      pod !== undefined &&
      account.status?.hostedBy === pod &&
      findCondition(account.status?.conditions, ConditionType.Authorized)?.status === 'True'
    );
  }

  /**
   * Runtime pods of the pool and their health from their heartbeat Leases (see liveness.ts). Dead pods
   * get no accounts: theirs move. Logged once per death.
   */
  private podHealth(
    namespace: string,
    pool: string,
    load: ReadonlyMap<number, number>,
  ): { dead: Set<number>; byPod: Map<string, PodHealth>; recheckMs?: number } {
    const dead = new Set<number>();
    const byPod = new Map<string, PodHealth>();
    let recheckMs: number | undefined;
    const leases = new Map<number, HeartbeatLease>();
    for (const lease of this.deps.leases?.list(namespace) ?? []) {
      if (lease.metadata?.labels?.[LABEL_POOL] !== pool) continue;
      const ordinal = podOrdinal(pool, lease.metadata?.name ?? '');
      if (ordinal !== undefined) leases.set(ordinal, lease);
    }
    const ordinals = new Set([...leases.keys(), ...load.keys()]);
    for (const ordinal of ordinals) {
      const pod = runtimePodName(pool, ordinal);
      const id = `${namespace}/${pod}`;
      const hasAccounts = (load.get(ordinal) ?? 0) > 0;
      const judged = this.liveness.judge(id, leases.get(ordinal)?.spec, hasAccounts);
      byPod.set(pod, judged.health);
      if (judged.recheckMs !== undefined) recheckMs = Math.min(recheckMs ?? Infinity, judged.recheckMs);
      if (judged.health.state === 'dead') {
        dead.add(ordinal);
        if (!this.reportedDead.has(id)) {
          this.reportedDead.add(id);
          this.deps.logger?.warn(
            { pod, why: judged.health.why },
            'runtime pod declared dead: its accounts are Ready=Unknown and move to other pods',
          );
        }
      } else this.reportedDead.delete(id);
    }
    return { dead, byPod, recheckMs };
  }

  /**
   * Each pod's heartbeat Lease exists before its runtime starts: the runtime may take and renew it but not
   * create Leases (a create cannot be limited by name, and a runtime could then squat another's Lease).
   */
  private async ensureHeartbeatLeases(
    namespace: string,
    pool: string,
    replicas: number,
    signal: AbortSignal,
  ): Promise<void> {
    if (!this.deps.leases) return;
    for (let ordinal = 0; ordinal < replicas; ordinal++) {
      const name = runtimePodName(pool, ordinal);
      if (this.deps.leases.get(namespace, name) || this.heartbeatsCreated.has(`${namespace}/${name}`))
        continue;
      try {
        await this.deps.rest.create(
          Resources.Lease,
          {
            apiVersion: 'coordination.k8s.io/v1',
            kind: 'Lease',
            metadata: {
              name,
              namespace,
              labels: { [LABEL_MANAGED_BY]: 'tdlib-runtime', [LABEL_POOL]: pool },
            },
            spec: { leaseDurationSeconds: 15, leaseTransitions: 0 },
          },
          { signal },
        );
      } catch (error) {
        if (!isAlreadyExists(error)) throw error;
      }
      this.heartbeatsCreated.add(`${namespace}/${name}`);
    }
  }

  private secretFacts(namespace: string, secret: string): SecretFacts | undefined {
    const object = this.deps.secrets.get(namespace, secret);
    return object ? { keys: Object.keys(object.data ?? {}), labels: object.metadata?.labels } : undefined;
  }

  /**
   * A Secret named like the account's key Secret that the operator did not make for this account: running
   * with it would use someone else's key (and maybe session), so the account is not placed.
   */
  private foreignKey(namespace: string, account: string): InputsCheck | undefined {
    const name = encryptionKeySecretName(account);
    const labels = this.deps.secrets.get(namespace, name)?.metadata?.labels;
    if (labels === undefined && !this.deps.secrets.get(namespace, name)) return undefined;
    if (labels?.[LABEL_MANAGED_BY] === MANAGED_BY && labels[LABEL_ACCOUNT] === account) return undefined;
    return {
      ok: false,
      reason: 'SecretNameTaken',
      message: `Secret ${name} exists but was not created by tdlib-operator for this account (labels ${LABEL_MANAGED_BY}=${MANAGED_BY}, ${LABEL_ACCOUNT}=${account}); rename or delete it, or rename the account`,
    };
  }

  /**
   * What this pool's runtime pods still hold: account Leases (by account name) and heartbeats (as a pod
   * count), from the Lease cache.
   */
  private heldByPool(namespace: string, pool: string): { accounts: string[]; podCount: number } {
    const accounts: string[] = [];
    let podCount = 0;
    const prefix = `${runtimeName(pool)}-`;
    for (const lease of this.deps.leases?.list(namespace) ?? []) {
      const holder = lease.spec?.holderIdentity ?? '';
      if (!holder.startsWith(prefix)) continue;
      const holderPod = heartbeatLeaseOf(holder);
      if (podOrdinal(pool, holderPod) === undefined) continue;
      const account = lease.metadata?.labels?.[LABEL_ACCOUNT];
      if (account) accounts.push(account);
      else if (lease.metadata?.labels?.[LABEL_POOL] === pool) {
        const ordinal = podOrdinal(pool, lease.metadata?.name ?? '');
        if (ordinal !== undefined) podCount = Math.max(podCount, ordinal + 1);
      }
    }
    return { accounts, podCount };
  }

  /** The key Secret is gone while a backup exists: say so (the account reconciler refuses a new key). */
  private sessionKeyMissing(namespace: string, account: string): string | undefined {
    if (this.deps.secrets.get(namespace, encryptionKeySecretName(account))) return undefined;
    const session = this.deps.secrets.get(namespace, sessionSecretName(account));
    if (!session || !Object.keys(session.data ?? {}).includes('session')) return undefined;
    return `Secret ${encryptionKeySecretName(account)} (the session key) was deleted while Secret ${sessionSecretName(account)} holds a session backup: a new key would make that session unreadable. Restore the key Secret from your backup, or delete ${sessionSecretName(account)} to start over with a new login`;
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
    podHealth: (pod: string) => PodHealth | undefined,
    now: Date,
    signal: AbortSignal,
  ): Promise<void> {
    const desired = desiredOperatorStatus(
      account,
      {
        pool,
        inputs: check,
        outcome,
        podHealth,
        sessionKeyMissing: this.sessionKeyMissing(
          account.metadata.namespace ?? '',
          account.metadata.name ?? '',
        ),
      },
      now,
    );
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
    const placedHere = accounts.map((a) => a.metadata.name ?? '');
    const held = this.heldByPool(namespace, pool);
    // Accounts that left the pool keep their names in its Role until its pod let them go (backed up and
    // released): dropping them first would make that pod's last writes fail and strand the Lease.
    const names = [...new Set([...placedHere, ...held.accounts])];
    const settings: PoolSettings = {
      namespace,
      pool,
      replicas,
      image: this.deps.config.RUNTIME_IMAGE,
      storageSize: this.deps.config.RUNTIME_STORAGE_SIZE,
      storageClass: this.deps.config.RUNTIME_STORAGE_CLASS,
      backend: this.deps.config.RUNTIME_BACKEND === 'simulator' ? 'simulator' : 'native',
      // Only Secrets their owners opted in (a spec alone must not grant a runtime any Secret).
      inputSecretNames: accounts
        .flatMap((a) => referencedSecrets(a))
        .filter((secret) => optedIn(this.secretFacts(namespace, secret))),
      // Never a key Secret someone else made under that name (see foreignKey).
      keySecretNames: names.filter((n) => !this.foreignKey(namespace, n)).map(encryptionKeySecretName),
      loginCodeSecretNames: names.map(loginCodeSecretName),
      sessionSecretNames: names.map(sessionSecretName),
      accountNames: names,
      // The account Leases (the session fence) and each pod's heartbeat Lease.
      leaseNames: [
        ...names.map(accountLeaseName),
        ...Array.from({ length: Math.max(replicas, held.podCount) }, (_, i) => runtimePodName(pool, i)),
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
