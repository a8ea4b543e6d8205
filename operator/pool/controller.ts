/**
 * Pool reconciler (key: "namespace/pool"). Decides where each account of the pool runs and keeps the pool's
 * runtime workload in line with that decision. It is the only writer of the operator's part of account
 * status (placement, observedGeneration, Scheduled, Ready); runtimes select their accounts by placement.
 */
import type { V1StatefulSet } from '@kubernetes/client-node';
import type {
  AnalysisRecord,
  RuntimePoolStatus,
  TelegramAccount,
  TelegramRuntimePool,
} from '../../crds/index.js';
import {
  checkInputs,
  madeForAccount,
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
import { Semaphore, forEachLimited } from '../kube/util.js';
import {
  ANNOTATION_METRICS_URL,
  ANNOTATION_PROMOTE,
  ANNOTATION_TEMPLATE,
  ANNOTATION_UNDO,
  ConditionType,
  LABEL_ACCOUNT,
  LABEL_MANAGED_BY,
  MANAGED_BY,
  LEGACY_LABEL_PLACED_POD,
  LABEL_POOL,
  accountLeaseName,
  canaryName,
  canaryPodName,
  canaryPodOrdinal,
  encryptionKeySecretName,
  findCondition,
  heartbeatLeaseOf,
  loginCodeSecretName,
  podOrdinal,
  runtimeName,
  runtimePodName,
  sessionSecretName,
} from '../../crds/index.js';
import { isAlreadyExists, isNotFound } from '../kube/errors.js';
import type { LeaseObject } from '../kube/lease.js';
import type { SecretCache } from '../account/secret-cache.js';
import { SECRET_INDEX, accountsOfSecret } from './secret-links.js';
import { POOL_COALESCE_MS, poolRelevantChange } from './predicates.js';
import { PodLiveness } from './liveness.js';
import { place } from '../placement.js';
import { RuntimePoolResource, TelegramAccountResource } from '../../crds/resources.js';
import { RolloutAnalyzer, type ScrapeTarget } from './rollout/analyzer.js';
import { PrometheusAnalysis, podRegexes, rolloutQueries } from './rollout/prometheus-analysis.js';
import type { RolloutMetrics } from './rollout/metrics.js';
import { planRollout, type RolloutPlan } from './rollout/plan.js';
import { MAX_ANALYSES, desiredPoolStatus, memoryFromStatus } from './rollout/pool-status.js';
import { chooseCanaryAccounts, type SplitAccount } from './rollout/split.js';
import {
  declaredPool,
  implicitPool,
  parseRecordedTemplate,
  revisionOf,
  type PodTemplateSpec,
} from './rollout/template.js';
import {
  desiredOperatorStatus,
  type OperatorStatus,
  operatorStatusCurrent,
  statusApplyBody,
  type PlacementOutcome,
  type PodHealth,
} from './account-status.js';
import {
  desiredPodDisruptionBudget,
  desiredNetworkPolicy,
  desiredRole,
  desiredRoleBinding,
  desiredService,
  desiredServiceAccount,
  desiredStatefulSet,
  type PodSet,
  type PoolSettings,
} from './desired.js';

export const PLACEMENT_FIELD_MANAGER = 'tdlib-operator-placement';
export const STATUS_FIELD_MANAGER = 'tdlib-operator';
export const WORKLOAD_FIELD_MANAGER = 'tdlib-operator-pool';
export const ROLLOUT_FIELD_MANAGER = 'tdlib-operator-rollout';
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
  /** Secrets without values: names, labels and (for those users make) key names are all that matter here. */
  secrets: SecretCache;
  statefulSets: Informer<V1StatefulSet & ApiObject>;
  /** Declared pools; a pool without an object uses the operator's environment and updates in place. */
  pools?: Informer<TelegramRuntimePool & ApiObject>;
  rolloutMetrics?: RolloutMetrics;
  /** Reads a runtime pod's /metrics for the rollout analysis (default: fetch). */
  scrape?: (url: string, signal: AbortSignal) => Promise<string>;
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
export const WRITE_CONCURRENCY = 32;

/** The pool's two StatefulSets' pods: which set and ordinal a pod name is. */
function podSets(pool: string): { locate(pod: string): { set: PodSet; ordinal: number } | undefined } {
  return {
    locate(pod) {
      const stable = podOrdinal(pool, pod);
      if (stable !== undefined) return { set: 'stable', ordinal: stable };
      const canary = canaryPodOrdinal(pool, pod);
      return canary !== undefined ? { set: 'canary', ordinal: canary } : undefined;
    },
  };
}

/** The promote annotation, when it names `revision`: a step index whose pause to skip, or every pause. */
export function parsePromote(value: string | undefined, revision: string): number | 'full' | undefined {
  if (!value?.startsWith(`${revision}/`)) return undefined;
  const what = value.slice(revision.length + 1);
  if (what === 'full') return 'full';
  return /^(0|[1-9][0-9]*)$/.test(what) ? Number(what) : undefined;
}

export class PoolReconciler implements Reconciler {
  /**
   * Placements this process wrote, until the cache shows them. Without it a reconcile that runs before the
   * watch delivered our own status writes would see accounts as unplaced and might place them elsewhere.
   */
  private readonly written = new Map<string, string | undefined>();
  /**
   * The status last applied per account and the resourceVersion it was decided on: while the cache still
   * shows that version, the same decision is not written again (a pool run before the watch caught up).
   */
  private readonly statusApplied = new Map<string, { basedOn: string; status: OperatorStatus }>();
  /** Hash of the last intent applied per workload object, so an unchanged pool costs no write. */
  private readonly appliedWorkload = new Map<string, string>();
  /** What the Role last applied per pool lists (see applyWorkload). */
  private readonly roleInputsApplied = new Map<string, string>();
  private readonly now: () => Date;
  private readonly monotonic: () => number;
  private readonly liveness: PodLiveness;
  private readonly reportedDead = new Set<string>();
  /**
   * Account status writes in flight across all pools' runs. Each run's own limit alone let three pools
   * keep 96 writes queued in the REST client, ahead of the account loop's Secret and Lease creates: those
   * then finished 17 s after the last placement (10,000 accounts, docs/benchmarks.md session 16).
   */
  private readonly accountWrites = new Semaphore(WRITE_CONCURRENCY);
  /** Heartbeat Leases created by this process, until the informer shows them. */
  private readonly heartbeatsCreated = new Set<string>();
  /** The template last written to each stable StatefulSet at a promotion, until the cache shows it. */
  private readonly stableWritten = new Map<string, PodTemplateSpec>();
  /** Rollout memory and analyses as this process last decided them (the status cache may lag behind). */
  private readonly poolMemory = new Map<string, ReturnType<typeof memoryFromStatus>>();
  private readonly poolAnalyses = new Map<string, AnalysisRecord[]>();
  private readonly poolStatusWritten = new Map<string, string>();
  /** Canary pod liveness by start deadline (the deadline is a per-pool setting). */
  private readonly canaryLiveness = new Map<number, PodLiveness>();
  private readonly analyzer: RolloutAnalyzer;
  private readonly prometheus = new PrometheusAnalysis();
  private readonly countersBorn = new Set<string>();
  /**
   * What each account's Secrets say, by account, with the spec (uid and generation) it was derived for:
   * status writes leave it alone, a new spec or a change of one of its Secrets derives it again, so a run
   * derives only what changed.
   */
  private readonly derived = new Map<string, { spec: string; inputs: DerivedInputs }>();
  /** The facts under which an account object's status was last found current: no need to decide it again. */
  private readonly statusCurrentUnder = new WeakMap<TelegramAccount, StatusFacts>();
  /** Per Secret event object: the pools whose accounts' inputs it changed (see secretChanged). */
  private readonly poolsBySecretEvent = new WeakMap<ApiObject, ObjectKey[]>();

  constructor(private readonly deps: PoolReconcilerDeps) {
    this.now = deps.now ?? (() => new Date());
    this.monotonic = deps.monotonic ?? (() => performance.now());
    this.liveness = new PodLiveness({
      graceFactor: HEARTBEAT_GRACE,
      startTimeoutMs: deps.podStartTimeoutMs ?? POD_START_TIMEOUT_MS,
      apiTroubleEndedAt: deps.apiTroubleEndedAt ?? (() => 0),
      now: this.monotonic,
    });
    this.analyzer = new RolloutAnalyzer({ fetch: deps.scrape, now: this.monotonic });
    // What was written for an account deleted before the cache showed it is of no use any more.
    deps.accounts.onEvent((type, account) => {
      if (type !== 'DELETED') return;
      const key = `${account.metadata.namespace}/${account.metadata.name}`;
      this.statusApplied.delete(key);
      this.written.delete(key);
      this.derived.delete(key);
    });
    deps.secrets.onEvent((type, secret, old) => {
      // Accounts read a Secret's key names and labels, never its values: a new value (a rotated token, a
      // session backup) changes nothing they derive, however many accounts share the Secret.
      if (type === 'MODIFIED' && old && sameSecretFacts(old, secret)) {
        this.poolsBySecretEvent.set(secret, []);
        return;
      }
      this.secretChanged(secret);
    });
  }

  /**
   * What an account's Secrets say is derived again at each event of one of them; when it comes out the
   * same (the account loop creating the session Secret the pool already expected, a token rotated in
   * place) the old result is kept, so nothing decided from it is decided again, and no pool runs for it.
   */
  private secretChanged(secret: ApiObject): void {
    const namespace = secret.metadata?.namespace ?? '';
    const referencing = (key: string): string[] =>
      this.deps.accounts.byIndex(SECRET_INDEX, key).map((a) => a.metadata.name ?? '');
    const pools = new Map<string, ObjectKey>();
    for (const name of accountsOfSecret(secret, referencing)) {
      const account = this.deps.accounts.get(namespace, name);
      if (!account) continue;
      const key = `${namespace}/${name}`;
      const before = this.derived.get(key);
      this.derived.delete(key);
      const fresh = this.derive(account);
      if (before?.spec === specIdentity(account) && sameDerivedInputs(before.inputs, fresh)) {
        this.derived.set(key, before);
        continue;
      }
      pools.set(poolKeyOf(account), { namespace, name: poolOf(account) });
    }
    this.poolsBySecretEvent.set(secret, [...pools.values()]);
  }

  /**
   * The pools a Secret event (this very object, as the informer handed it out) changed inputs of. Read
   * once: for a MODIFIED event the watch maps the previous object too, whose own event was read already
   * and says nothing about this one.
   */
  poolsOfSecretEvent(secret: ApiObject): ObjectKey[] {
    const pools = this.poolsBySecretEvent.get(secret) ?? [];
    this.poolsBySecretEvent.delete(secret);
    return pools;
  }

  /**
   * Whether an account event is only this loop's own placement write coming back from the watch: the
   * run that wrote it decided everything else from the same inputs, so it needs no run of its own
   * (with it, each of a burst's status writes queued another pass over the whole pool).
   */
  ownPlacementEcho(old: TelegramAccount, current: TelegramAccount): boolean {
    const key = `${current.metadata.namespace}/${current.metadata.name}`;
    const pod = current.status?.placement?.pod;
    return (
      pod !== undefined &&
      this.written.has(key) &&
      this.written.get(key) === pod &&
      !poolRelevantChange(old, current, { placement: false })
    );
  }

  async reconcile(key: ObjectKey, context: ReconcileContext): Promise<ReconcileResult | void> {
    const { namespace, name: pool } = key;
    const { config } = this.deps;
    const poolKey = `${namespace}/${pool}`;
    const declared = this.deps.pools?.get(namespace, pool);
    const definition = declared ? declaredPool(declared, config) : implicitPool(config);
    const { sizing } = definition;
    const accounts = this.deps.accounts.byIndex(POOL_INDEX, poolKey);
    const sets = podSets(pool);

    const inputs = new Map<string, InputsCheck>();
    const placeable: SplitAccount[] = [];
    const loadByPod = new Map<string, number>();
    const placedBefore = new Map<string, string | undefined>();
    const holders = this.accountHolders(namespace);
    for (const account of accounts) {
      const accountKey = account.metadata.name ?? '';
      const { check } = this.derive(account);
      inputs.set(accountKey, check);
      const current = this.currentPod(account);
      placedBefore.set(accountKey, current);
      const where = current === undefined ? undefined : sets.locate(current);
      if (where && current) loadByPod.set(current, (loadByPod.get(current) ?? 0) + 1);
      // An account being deleted keeps its pod so the runtime can log it out; one that runs logged in keeps
      // it too (a Secret deleted after login must not end a healthy session); other invalid inputs unplace.
      if (check.ok || account.metadata.deletionTimestamp || this.servedWhereItIs(account)) {
        const holder = holders.get(accountKey);
        placeable.push({
          key: accountKey,
          set: where?.set,
          ordinal: where?.ordinal,
          // Handed over once the pod it is placed on holds its session; a suspended one holds none.
          settled:
            current !== undefined && (holder === current || (!holder && account.spec.suspend === true)),
        });
      }
    }
    const health = this.podHealth(namespace, pool, loadByPod);
    const deadIn = (set: PodSet): Set<number> =>
      new Set(
        [...health.dead].flatMap((pod) => {
          const where = sets.locate(pod);
          return where?.set === set ? [where.ordinal] : [];
        }),
      );

    // Versions: the stable StatefulSet records the template it runs; the spec names the desired one.
    const stableId = `${namespace}/${runtimeName(pool)}`;
    const stableSts = this.deps.statefulSets.get(namespace, runtimeName(pool));
    const canarySts = this.deps.statefulSets.get(namespace, canaryName(pool));
    const recorded =
      this.stableWritten.get(stableId) ??
      parseRecordedTemplate(stableSts?.metadata?.annotations?.[ANNOTATION_TEMPLATE]);
    // A pool without an object is updated in place, as before pools could be declared; an existing
    // StatefulSet from before revisions were recorded runs what the environment described.
    const stableTemplate =
      definition.rollout === undefined || !stableSts
        ? definition.template
        : (recorded ?? implicitPool(config).template);
    const specRevision = revisionOf(definition.template);
    let stableRevision = revisionOf(stableTemplate);

    let plan: RolloutPlan | undefined;
    let canaryChosen = new Set<string>();
    const rollout = definition.rollout;
    const now = this.now();
    let analyses: AnalysisRecord[] = [];
    let canaryStartRecheckMs: number | undefined;
    if (declared && rollout) {
      this.bornAtZero(namespace, pool);
      const memory = this.poolMemory.get(poolKey) ?? memoryFromStatus(declared.status);
      analyses = [...(this.poolAnalyses.get(poolKey) ?? declared.status?.analyses ?? [])];
      const onCanary = placeable.filter((a) => a.set === 'canary');
      const canaryReplicas = canarySts?.spec?.replicas ?? 0;
      const canaryJudged = this.judgeCanaryPods(namespace, pool, canaryReplicas, rollout.startDeadlineMs);
      canaryStartRecheckMs = canaryJudged.recheckMs;
      const analysing =
        specRevision !== stableRevision &&
        memory.rolledBackRevision !== specRevision &&
        memory.canaryRevision === specRevision &&
        onCanary.some((a) => a.settled);
      if (analysing) {
        const prometheus = rollout.prometheus;
        const verdict = prometheus
          ? await this.analyzer.runQuery(poolKey, specRevision, rollout.intervalMs, () => {
              const pods = podRegexes(pool);
              const queries = rolloutQueries({
                namespace,
                canaryPodRegex: pods.canary,
                stablePodRegex: pods.stable,
                windowSeconds: rollout.intervalMs / 1000,
                gates: rollout,
                podLabel: prometheus.podLabel,
                namespaceLabel: prometheus.namespaceLabel,
              });
              return this.prometheus.run(prometheus.address, queries, rollout);
            })
          : await this.analyzer.run(
              poolKey,
              specRevision,
              this.scrapeTargets(namespace, pool),
              rollout,
              rollout.intervalMs,
            );
        if (verdict) {
          const record: AnalysisRecord = {
            time: now.toISOString(),
            step: memory.currentStep ?? 0,
            verdict: verdict.verdict,
            source: prometheus ? 'Prometheus' : 'Pods',
            message: verdict.message.slice(0, 1024),
            canary: verdict.canary,
            ...(verdict.metric ? { metric: verdict.metric } : {}),
            ...(verdict.stable ? { stable: verdict.stable } : {}),
          };
          analyses = [...analyses, record].slice(-MAX_ANALYSES);
          this.poolAnalyses.set(poolKey, analyses);
          this.deps.rolloutMetrics?.analyses.inc({
            pool_namespace: namespace,
            pool,
            verdict: verdict.verdict,
          });
          if (verdict.verdict !== 'Passed')
            this.deps.logger?.info({ pool: poolKey, verdict: record }, 'rollout analysis');
        }
      } else if (memory.canaryRevision !== specRevision) this.analyzer.forget(poolKey);
      const latest = analyses.at(-1);
      const promote = parsePromote(declared.metadata.annotations?.[ANNOTATION_PROMOTE], specRevision);
      plan = planRollout(
        memory,
        {
          now,
          specRevision,
          stableRevision,
          accounts: placeable.length,
          canaryAccounts: onCanary.length,
          canaryHosted: onCanary.filter((a) => a.settled).length,
          inMotion: placeable.filter((a) => a.set !== undefined && !a.settled).length,
          canaryPods: canaryReplicas,
          canaryPodsAlive:
            canaryReplicas > 0 &&
            canaryJudged.alive >= canaryReplicas &&
            canaryReplicas * sizing.accountsPerPod >=
              Math.ceil(((rollout.steps[memory.currentStep ?? 0]?.weight ?? 100) * placeable.length) / 100),
          canaryPodFailure: canaryJudged.failure,
          // Analyses of an earlier rollout say nothing about this one.
          analysis: memory.canaryRevision === specRevision ? latest : undefined,
          promote,
          undo: declared.metadata.annotations?.[ANNOTATION_UNDO] === specRevision,
        },
        rollout,
      );
      if (plan.memory.canaryRevision !== memory.canaryRevision) {
        // A new rollout starts with no analyses of its own.
        analyses = [];
        this.poolAnalyses.set(poolKey, analyses);
      }
      this.poolMemory.set(poolKey, plan.memory);
      canaryChosen = chooseCanaryAccounts({
        accounts: placeable,
        target: plan.canaryTarget,
        moveToCanary: plan.moveToCanary,
        maxInMotion: rollout.maxAccountsInMotion,
      });
      for (const event of plan.events)
        this.deps.events.event(declared, event.type, event.reason, event.message);
      if (plan.rolledBack)
        this.deps.rolloutMetrics?.rollbacks.inc({
          pool_namespace: namespace,
          pool,
          reason: plan.rolledBack.reason,
        });
    }

    const stableAccounts = placeable.filter((a) => !canaryChosen.has(a.key));
    const canaryAccounts = placeable.filter((a) => canaryChosen.has(a.key));
    const stablePlacement = place({
      accounts: stableAccounts.map((a) => ({ key: a.key, pod: a.set === 'stable' ? a.ordinal : undefined })),
      accountsPerPod: sizing.accountsPerPod,
      minReplicas: stableAccounts.length > 0 ? sizing.minReplicas : 0,
      maxReplicas: sizing.maxReplicas,
      drainingPods: deadIn('stable'),
    });
    const canaryPlacement = place({
      accounts: canaryAccounts.map((a) => ({ key: a.key, pod: a.set === 'canary' ? a.ordinal : undefined })),
      accountsPerPod: sizing.accountsPerPod,
      minReplicas: plan ? Math.ceil(plan.canaryCapacityFor / sizing.accountsPerPod) : 0,
      maxReplicas: sizing.maxReplicas,
      drainingPods: deadIn('canary'),
    });
    // A pod stays until it let go of every session it holds (sends drained and recorded, session backed up):
    // scaling it away in the middle of a handover would cut that short. Dead pods hold nothing worth waiting for.
    const holding = (set: PodSet): number =>
      Math.max(
        0,
        ...[...holders.values()].map((pod) => {
          const where = health.dead.has(pod) ? undefined : sets.locate(pod);
          return where?.set === set ? where.ordinal + 1 : 0;
        }),
      );
    stablePlacement.replicas = Math.max(stablePlacement.replicas, holding('stable'));
    canaryPlacement.replicas = Math.max(canaryPlacement.replicas, holding('canary'));
    const podOf = (accountName: string): string | undefined => {
      const stable = stablePlacement.assignments.get(accountName);
      if (stable !== undefined) return runtimePodName(pool, stable);
      const canary = canaryPlacement.assignments.get(accountName);
      return canary !== undefined ? canaryPodName(pool, canary) : undefined;
    };

    let stableApplied = stableTemplate;
    if (plan?.finalize) {
      // The last step passed: the stable pods take the new template (they host no account now), and the
      // accounts move back to them from the next reconcile on.
      stableApplied = definition.template;
      this.stableWritten.set(stableId, definition.template);
      stableRevision = specRevision;
    } else if (recorded && stableSts) {
      const cached = parseRecordedTemplate(stableSts.metadata?.annotations?.[ANNOTATION_TEMPLATE]);
      if (cached && revisionOf(cached) === revisionOf(recorded)) this.stableWritten.delete(stableId);
    }
    await this.applyWorkload(
      namespace,
      pool,
      accounts,
      [
        { set: 'stable', replicas: stablePlacement.replicas, template: stableApplied },
        {
          set: 'canary',
          replicas: canaryPlacement.replicas,
          template: definition.template,
          skipIfAbsent: canaryPlacement.replicas === 0,
        },
      ],
      context.signal,
    );
    await this.ensureHeartbeatLeases(
      namespace,
      pool,
      [
        ...Array.from({ length: stablePlacement.replicas }, (_, i) => runtimePodName(pool, i)),
        ...Array.from({ length: canaryPlacement.replicas }, (_, i) => canaryPodName(pool, i)),
      ],
      context.signal,
    );

    const podHealth = (pod: string): PodHealth | undefined => health.byPod.get(pod);
    let moved = false;
    await forEachLimited(accounts, WRITE_CONCURRENCY, async (account) => {
      if (context.signal.aborted) return;
      const accountName = account.metadata.name ?? '';
      const check = inputs.get(accountName) ?? this.derive(account).check;
      const pod = podOf(accountName);
      const outcome: PlacementOutcome =
        pod !== undefined ? { pod } : { unplaced: check.ok ? 'PoolFull' : 'InputsInvalid' };
      // One write: placement, Scheduled and Ready (a pod declared dead shows Ready=Unknown as it moves).
      if (pod !== placedBefore.get(accountName)) moved = true;
      await this.applyStatus(account, pool, this.derive(account), outcome, podHealth, now, context.signal);
      await this.dropLegacyPlacementLabel(account, context.signal);
    });

    let requeueAfterMs = health.recheckMs;
    const earliest = (ms: number | undefined): void => {
      if (ms !== undefined) requeueAfterMs = Math.min(requeueAfterMs ?? Infinity, ms);
    };
    // This run judged pods and planned the rollout from the placement it found; what it moved is judged in
    // one more run (a pod's start clock begins when accounts land on it). Its own placement writes coming
    // back from the watch do not run the pool (ownPlacementEcho): a burst of them used to, once each.
    if (moved) earliest(POOL_COALESCE_MS);
    if (declared && plan && rollout) {
      const alive = [...health.byPod.entries()].filter(([, h]) => h.state === 'alive').length;
      await this.applyPoolStatus(
        declared,
        desiredPoolStatus({
          pool: declared,
          plan,
          settings: rollout,
          stable: { revision: stableRevision, template: stableApplied },
          canary: { revision: specRevision, template: definition.template },
          counts: {
            replicas: stablePlacement.replicas + canaryPlacement.replicas,
            alivePods: Math.min(alive, stablePlacement.replicas + canaryPlacement.replicas),
            accounts: placeable.length,
            canaryAccounts: placeable.filter((a) => a.set === 'canary').length,
            canaryHosted: placeable.filter((a) => a.set === 'canary' && a.settled).length,
            inMotion: placeable.filter((a) => a.set !== undefined && !a.settled).length,
          },
          analyses,
          now,
        }),
        context.signal,
      );
      earliest(plan.requeueAfterMs);
      earliest(canaryStartRecheckMs);
      if (plan.phase === 'Progressing' || plan.phase === 'Paused')
        earliest(Math.max(250, this.analyzer.dueInMs(poolKey, specRevision, rollout.intervalMs)));
    }
    // Nothing announces that a heartbeat stopped changing: look again once it could have expired.
    return requeueAfterMs !== undefined ? { requeueAfterMs } : undefined;
  }

  /** Rollout counters exist from a pool's first reconcile, so a first analysis or rollback shows in rate(). */
  private bornAtZero(namespace: string, pool: string): void {
    const metrics = this.deps.rolloutMetrics;
    const key = `${namespace}/${pool}`;
    if (!metrics || this.countersBorn.has(key)) return;
    this.countersBorn.add(key);
    for (const verdict of ['Passed', 'Failed', 'Inconclusive'])
      metrics.analyses.inc({ pool_namespace: namespace, pool, verdict }, 0);
    for (const reason of ['AnalysisFailed', 'ManualUndo'])
      metrics.rollbacks.inc({ pool_namespace: namespace, pool, reason }, 0);
  }

  /** Logged in and connected on the pod it is placed on: a running session a Secret change must not stop. */
  private servedWhereItIs(account: TelegramAccount): boolean {
    const pod = account.status?.placement?.pod;
    return (
      pod !== undefined &&
      account.status?.hostedBy === pod &&
      findCondition(account.status?.conditions, ConditionType.Authorized)?.status === 'True'
    );
  }

  /** The pod holding each account's session Lease, by account name (from the Lease cache). */
  private accountHolders(namespace: string): Map<string, string> {
    const holders = new Map<string, string>();
    for (const lease of this.deps.leases?.list(namespace) ?? []) {
      const account = lease.metadata?.labels?.[LABEL_ACCOUNT];
      const holder = lease.spec?.holderIdentity;
      if (account && holder) holders.set(account, heartbeatLeaseOf(holder));
    }
    return holders;
  }

  /**
   * Runtime pods of the pool (both StatefulSets) and their health from their heartbeat Leases (see
   * liveness.ts). Dead pods get no accounts: theirs move. Logged once per death.
   */
  private podHealth(
    namespace: string,
    pool: string,
    loadByPod: ReadonlyMap<string, number>,
  ): { dead: Set<string>; byPod: Map<string, PodHealth>; recheckMs?: number } {
    const sets = podSets(pool);
    const dead = new Set<string>();
    const byPod = new Map<string, PodHealth>();
    let recheckMs: number | undefined;
    const leases = new Map<string, HeartbeatLease>();
    for (const lease of this.deps.leases?.list(namespace) ?? []) {
      if (lease.metadata?.labels?.[LABEL_POOL] !== pool) continue;
      const name = lease.metadata?.name ?? '';
      if (sets.locate(name)) leases.set(name, lease);
    }
    for (const pod of new Set([...leases.keys(), ...loadByPod.keys()])) {
      const id = `${namespace}/${pod}`;
      const hasAccounts = (loadByPod.get(pod) ?? 0) > 0;
      const judged = this.liveness.judge(id, leases.get(pod)?.spec, hasAccounts);
      byPod.set(pod, judged.health);
      if (judged.recheckMs !== undefined) recheckMs = Math.min(recheckMs ?? Infinity, judged.recheckMs);
      if (judged.health.state === 'dead') {
        dead.add(pod);
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
   * The canary pods the rollout asked for, judged on the rollout's start deadline: one that never took its
   * heartbeat within it (a crash loop, an image that does not start) or stopped renewing it fails the
   * version, whether or not accounts were moved there yet.
   */
  private judgeCanaryPods(
    namespace: string,
    pool: string,
    replicas: number,
    startDeadlineMs: number,
  ): { alive: number; failure?: string; recheckMs?: number } {
    let liveness = this.canaryLiveness.get(startDeadlineMs);
    if (!liveness) {
      liveness = new PodLiveness({
        graceFactor: HEARTBEAT_GRACE,
        startTimeoutMs: startDeadlineMs,
        apiTroubleEndedAt: this.deps.apiTroubleEndedAt ?? (() => 0),
        now: this.monotonic,
      });
      this.canaryLiveness.set(startDeadlineMs, liveness);
    }
    let alive = 0;
    let failure: string | undefined;
    let recheckMs: number | undefined;
    for (let ordinal = 0; ordinal < replicas; ordinal++) {
      const pod = canaryPodName(pool, ordinal);
      const judged = liveness.judge(
        `canary/${namespace}/${pod}`,
        this.deps.leases?.get(namespace, pod)?.spec,
        true,
      );
      if (judged.health.state === 'alive') alive += 1;
      if (judged.health.state === 'dead')
        failure ??= `canary pod ${pod} runs no runtime: ${judged.health.why}`;
      if (judged.recheckMs !== undefined) recheckMs = Math.min(recheckMs ?? Infinity, judged.recheckMs);
    }
    // Pods above the size no longer count: their clocks restart if they are needed again.
    for (let ordinal = replicas; ordinal < replicas + 50; ordinal++)
      liveness.forget(`canary/${namespace}/${canaryPodName(pool, ordinal)}`);
    return { alive, failure, recheckMs };
  }

  /** Each runtime pod's /metrics, as it advertises on its heartbeat Lease. */
  private scrapeTargets(namespace: string, pool: string): ScrapeTarget[] {
    const sets = podSets(pool);
    const targets: ScrapeTarget[] = [];
    for (const lease of this.deps.leases?.list(namespace) ?? []) {
      if (lease.metadata?.labels?.[LABEL_POOL] !== pool || !lease.spec?.holderIdentity) continue;
      const name = lease.metadata?.name ?? '';
      const where = sets.locate(name);
      const url = lease.metadata?.annotations?.[ANNOTATION_METRICS_URL];
      if (where && url) targets.push({ pod: name, set: where.set, url });
    }
    return targets;
  }

  private async applyPoolStatus(
    pool: TelegramRuntimePool,
    status: RuntimePoolStatus,
    signal: AbortSignal,
  ): Promise<void> {
    const id = `${pool.metadata.namespace}/${pool.metadata.name}`;
    const hash = intentHash(status);
    if (this.poolStatusWritten.get(id) === hash) return;
    await this.deps.rest.applyStatus(
      RuntimePoolResource,
      {
        apiVersion: pool.apiVersion,
        kind: pool.kind,
        metadata: { name: pool.metadata.name, namespace: pool.metadata.namespace },
        status,
      } as ApiObject,
      { fieldManager: ROLLOUT_FIELD_MANAGER, force: true, signal },
    );
    this.poolStatusWritten.set(id, hash);
  }

  /**
   * Each pod's heartbeat Lease exists before its runtime starts: the runtime may take and renew it but not
   * create Leases (a create cannot be limited by name, and a runtime could then squat another's Lease).
   */
  private async ensureHeartbeatLeases(
    namespace: string,
    pool: string,
    pods: readonly string[],
    signal: AbortSignal,
  ): Promise<void> {
    const leases = this.deps.leases;
    if (!leases) return;
    const missing = pods.filter(
      (name) => !leases.get(namespace, name) && !this.heartbeatsCreated.has(`${namespace}/${name}`),
    );
    // Side by side: a pool scaled from zero to 34 pods waited 34 round trips (3 s under load) here before
    // its accounts were placed.
    await forEachLimited(missing, WRITE_CONCURRENCY, async (name) => {
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
    });
  }

  /**
   * What the account's Secrets say about it (placement inputs, a missing key, what its runtime may be
   * granted), derived again only when the account or one of its Secrets changed.
   */
  private derive(account: TelegramAccount): DerivedInputs {
    const namespace = account.metadata.namespace ?? '';
    const name = account.metadata.name ?? '';
    const key = `${namespace}/${name}`;
    const spec = specIdentity(account);
    const known = this.derived.get(key);
    if (known?.spec === spec) return known.inputs;
    const facts = (secret: string): SecretFacts | undefined => this.secretFacts(namespace, secret);
    const session = facts(sessionSecretName(name));
    const fresh: DerivedInputs = {
      check: this.foreignKey(namespace, name) ?? checkInputs(account, facts),
      readableSecrets: referencedSecrets(account).filter((secret) => optedIn(facts(secret))),
      legacyKey: this.legacyKey(namespace, name) !== undefined,
      sessionGrantable: !session || madeForAccount(session.labels, name),
    };
    this.derived.set(key, { spec, inputs: fresh });
    return fresh;
  }

  private secretFacts(namespace: string, secret: string): SecretFacts | undefined {
    const object = this.deps.secrets.get(namespace, secret);
    return object ? { keys: Object.keys(object.data ?? {}), labels: object.metadata?.labels } : undefined;
  }

  /**
   * A Secret named like the account's session (or earlier key) Secret that the operator did not make for
   * this account: running with it would use someone else's key and maybe session, so the account is not
   * placed.
   */
  private foreignKey(namespace: string, account: string): InputsCheck | undefined {
    for (const name of [sessionSecretName(account), encryptionKeySecretName(account)]) {
      const facts = this.secretFacts(namespace, name);
      if (!facts || madeForAccount(facts.labels, account)) continue;
      return {
        ok: false,
        reason: 'SecretNameTaken',
        message: `Secret ${name} exists but was not created by tdlib-operator for this account (labels ${LABEL_MANAGED_BY}=${MANAGED_BY}, ${LABEL_ACCOUNT}=${account}); rename or delete it, or rename the account`,
      };
    }
    return undefined;
  }

  /** The earlier version's separate key Secret, when it exists and is ours. */
  private legacyKey(namespace: string, account: string): SecretFacts | undefined {
    const facts = this.secretFacts(namespace, encryptionKeySecretName(account));
    return facts && madeForAccount(facts.labels, account) ? facts : undefined;
  }

  /**
   * What this pool's runtime pods (both StatefulSets) still hold: account Leases (by account name) and
   * heartbeats (pod names), from the Lease cache.
   */
  private heldByPool(namespace: string, pool: string): { accounts: string[]; pods: string[] } {
    const sets = podSets(pool);
    const accounts: string[] = [];
    const pods: string[] = [];
    for (const lease of this.deps.leases?.list(namespace) ?? []) {
      const holder = lease.spec?.holderIdentity ?? '';
      if (!holder || !sets.locate(heartbeatLeaseOf(holder))) continue;
      const account = lease.metadata?.labels?.[LABEL_ACCOUNT];
      if (account) accounts.push(account);
      else if (lease.metadata?.labels?.[LABEL_POOL] === pool && sets.locate(lease.metadata?.name ?? ''))
        pods.push(lease.metadata?.name ?? '');
    }
    return { accounts, pods };
  }

  private currentPod(account: TelegramAccount): string | undefined {
    const key = `${account.metadata.namespace}/${account.metadata.name}`;
    const placed = account.status?.placement?.pod;
    if (this.written.has(key)) {
      const mine = this.written.get(key);
      if (mine === placed) this.written.delete(key); // the cache caught up
      return mine;
    }
    return placed;
  }

  /** Removes the placement label an earlier version wrote (we own it under this manager): once per account. */
  private async dropLegacyPlacementLabel(account: TelegramAccount, signal: AbortSignal): Promise<void> {
    if (account.metadata.labels?.[LEGACY_LABEL_PLACED_POD] === undefined) return;
    await this.accountWrite(signal, () =>
      this.deps.rest.applyPatch(
        TelegramAccountResource,
        {
          apiVersion: account.apiVersion,
          kind: account.kind,
          metadata: { name: account.metadata.name, namespace: account.metadata.namespace },
        },
        { fieldManager: PLACEMENT_FIELD_MANAGER, force: true, signal },
      ),
    );
  }

  /** One write to an account, under the limit all pools' runs share (an account found current waits for none). */
  private async accountWrite<T>(signal: AbortSignal, write: () => Promise<T>): Promise<T> {
    const release = await this.accountWrites.acquire(signal);
    try {
      return await write();
    } finally {
      release();
    }
  }

  private async applyStatus(
    account: TelegramAccount,
    pool: string,
    derived: DerivedInputs,
    outcome: PlacementOutcome,
    podHealth: (pod: string) => PodHealth | undefined,
    now: Date,
    signal: AbortSignal,
  ): Promise<void> {
    // Everything the desired status is a function of (the clock only stamps transitions).
    const hostedBy = account.status?.hostedBy;
    const facts: StatusFacts = {
      pool,
      derived,
      placedOn: 'pod' in outcome ? outcome.pod : outcome.unplaced,
      podHealth: healthFingerprint('pod' in outcome ? podHealth(outcome.pod) : undefined),
      hostedByHealth: healthFingerprint(hostedBy ? podHealth(hostedBy) : undefined),
    };
    if (sameStatusFacts(this.statusCurrentUnder.get(account), facts)) return;
    const desired = desiredOperatorStatus(
      account,
      {
        pool,
        inputs: derived.check,
        outcome,
        podHealth,
      },
      now,
    );
    if (operatorStatusCurrent(account, desired)) {
      this.statusCurrentUnder.set(account, facts);
      return;
    }
    const key = `${account.metadata.namespace}/${account.metadata.name}`;
    const basedOn = account.metadata.resourceVersion ?? '';
    const applied = this.statusApplied.get(key);
    if (applied && applied.basedOn !== basedOn)
      this.statusApplied.delete(key); // the cache moved on
    else if (applied && operatorStatusCurrent({ ...account, status: applied.status }, desired)) return;
    const wasScheduled = account.status?.conditions?.find((c) => c.type === 'Scheduled');
    try {
      await this.accountWrite(signal, () =>
        this.deps.rest.applyStatus(TelegramAccountResource, statusApplyBody(account, desired), {
          fieldManager: STATUS_FIELD_MANAGER,
          force: true,
          signal,
        }),
      );
    } catch (error) {
      // Deleted since the cache showed it: its DELETED event runs the pool again; the others' writes go on.
      if (isNotFound(error)) return;
      throw error;
    }
    this.statusApplied.set(key, { basedOn, status: desired });
    this.written.set(key, desired.placement?.pod);
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
    statefulSets: ReadonlyArray<{
      set: PodSet;
      replicas: number;
      template: PodTemplateSpec;
      /** Not created while it would have no pods (the canary StatefulSet between rollouts). */
      skipIfAbsent?: boolean;
    }>,
    signal: AbortSignal,
  ): Promise<void> {
    const placedHere = accounts.map((a) => a.metadata.name ?? '');
    const held = this.heldByPool(namespace, pool);
    // Accounts that left the pool keep their names in its Role until its pod let them go (backed up and
    // released): dropping them first would make that pod's last writes fail and strand the Lease.
    const names = [...new Set([...placedHere, ...held.accounts])];
    const podNames = statefulSets.flatMap((s) =>
      Array.from({ length: s.replicas }, (_, i) =>
        s.set === 'stable' ? runtimePodName(pool, i) : canaryPodName(pool, i),
      ),
    );
    const derived = new Map(accounts.map((a) => [a.metadata.name ?? '', this.derive(a)]));
    // Accounts that left the pool (or were deleted) but are still held here are looked up directly.
    const legacyKey = (n: string): boolean => derived.get(n)?.legacyKey ?? !!this.legacyKey(namespace, n);
    const sessionGrantable = (n: string): boolean => {
      const known = derived.get(n);
      if (known) return known.sessionGrantable;
      const facts = this.secretFacts(namespace, sessionSecretName(n));
      return !facts || madeForAccount(facts.labels, n);
    };
    const settings: PoolSettings = {
      namespace,
      pool,
      // Only Secrets their owners opted in (a spec alone must not grant a runtime any Secret).
      inputSecretNames: [...derived.values()].flatMap((d) => d.readableSecrets),
      // Only earlier versions' key Secrets that exist and are ours (new accounts keep the key in the session
      // Secret; see foreignKey).
      keySecretNames: names.filter(legacyKey).map(encryptionKeySecretName),
      loginCodeSecretNames: names.map(loginCodeSecretName),
      sessionSecretNames: names.filter(sessionGrantable).map(sessionSecretName),
      accountNames: names,
      // The account Leases (the session fence) and each pod's heartbeat Lease.
      leaseNames: [...names.map(accountLeaseName), ...new Set([...podNames, ...held.pods])],
    };
    const present = (set: PodSet): boolean =>
      this.deps.statefulSets.get(namespace, set === 'stable' ? runtimeName(pool) : canaryName(pool)) !==
      undefined;
    if (accounts.length === 0 && !present('stable') && !present('canary')) return;
    // The Role lists every account's names: building and hashing it costs more than the rest of a run, so
    // it is built only when what it lists changed.
    const roleInputs = [
      settings.accountNames,
      settings.inputSecretNames,
      settings.keySecretNames,
      settings.sessionSecretNames,
      settings.leaseNames,
    ]
      .map((list) => list.join(','))
      .join('|');
    const poolKey = `${namespace}/${pool}`;
    const roleCurrent = this.roleInputsApplied.get(poolKey) === roleInputs;
    const objects: Array<[ResourceDescriptor, ApiObject, number | undefined]> = [
      [Resources.ServiceAccount, desiredServiceAccount(settings), undefined],
      ...(roleCurrent
        ? []
        : ([[Resources.Role, desiredRole(settings), undefined]] as Array<
            [ResourceDescriptor, ApiObject, number | undefined]
          >)),
      [Resources.RoleBinding, desiredRoleBinding(settings), undefined],
      [Resources.Service, desiredService(settings), undefined],
      [Resources.PodDisruptionBudget, desiredPodDisruptionBudget(settings), undefined],
      [
        Resources.NetworkPolicy,
        desiredNetworkPolicy(settings, this.deps.config.OPERATOR_NAMESPACE),
        undefined,
      ],
    ];
    for (const s of statefulSets) {
      if (s.skipIfAbsent && !present(s.set)) continue;
      const desired = desiredStatefulSet({
        namespace,
        pool,
        set: s.set,
        replicas: s.replicas,
        template: s.template,
        revision: revisionOf(s.template),
        operatorNamespace: this.deps.config.OPERATOR_NAMESPACE,
      });
      objects.push([Resources.StatefulSet, desired, s.replicas]);
    }
    for (const [resource, object, replicas] of objects) {
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
    this.roleInputsApplied.set(poolKey, roleInputs);
  }
}

/** What an account's Secrets say about it. */
interface DerivedInputs {
  check: InputsCheck;
  /** Referenced Secrets its owner opted in, so the runtime may read them. */
  readableSecrets: string[];
  /** The earlier version's key Secret exists and is ours. */
  legacyKey: boolean;
  /** No session Secret yet, or one we made for this account (never grant someone else's). */
  sessionGrantable: boolean;
}

/** What an account's operator status is decided from, besides the account object itself. */
interface StatusFacts {
  pool: string;
  derived: DerivedInputs;
  placedOn: string;
  podHealth: string;
  hostedByHealth: string;
}

/** The same key names and labels: all that derived inputs read of a Secret. */
function sameSecretFacts(a: ApiObject & { data?: Record<string, string> }, b: typeof a): boolean {
  const keys = (x: typeof a): string =>
    Object.keys(x.data ?? {})
      .sort()
      .join('\n');
  const labels = (x: typeof a): string =>
    Object.entries(x.metadata?.labels ?? {})
      .map(([k, v]) => `${k}=${v}`)
      .sort()
      .join('\n');
  return keys(a) === keys(b) && labels(a) === labels(b);
}

/** Which spec of which object an account is: derived inputs read only the spec (and Secrets, and the name). */
function specIdentity(account: TelegramAccount): string {
  // Without a generation any change may be a spec change.
  const { uid, generation, resourceVersion } = account.metadata;
  return `${uid ?? ''}/${generation ?? `rv ${resourceVersion ?? ''}`}`;
}

function sameDerivedInputs(a: DerivedInputs, b: DerivedInputs): boolean {
  const sameCheck =
    a.check.ok === b.check.ok &&
    (a.check.ok || b.check.ok || (a.check.reason === b.check.reason && a.check.message === b.check.message));
  return (
    sameCheck &&
    a.legacyKey === b.legacyKey &&
    a.sessionGrantable === b.sessionGrantable &&
    a.readableSecrets.join('\n') === b.readableSecrets.join('\n')
  );
}

function sameStatusFacts(a: StatusFacts | undefined, b: StatusFacts): boolean {
  return (
    a !== undefined &&
    a.derived === b.derived &&
    a.pool === b.pool &&
    a.placedOn === b.placedOn &&
    a.podHealth === b.podHealth &&
    a.hostedByHealth === b.hostedByHealth
  );
}

function healthFingerprint(health: PodHealth | undefined): string {
  if (!health) return '-';
  return health.state === 'dead' ? `dead:${health.why}` : health.state;
}
