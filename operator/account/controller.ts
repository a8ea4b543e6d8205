/**
 * Account reconciler (key: "namespace/name"): the per-account objects and the finalizer.
 *  - the session Secret: created with the database encryption key in it (one create per account), so the
 *    runtime needs only `get` and `update` on it, by name, and later holds the session backup beside the key.
 *    The key is generated once and never rewritten (a new key would make the session database unreadable);
 *    an account made by an earlier version keeps its separate key Secret, which is used as it is;
 *  - the account Lease (the session fence): the runtime creates it when it first takes it (owned as below),
 *    so an account costs the API server no write for it here; its ownership is settled here when the
 *    deletion policy changes;
 *  - a session Secret without a key gets one, but never while a session backup exists: that would orphan the
 *    session (an Event says how to recover). The cache holds the operator's Secrets as metadata only, so it
 *    is the runtime that finds a key missing (Authorized=False SessionKeyMissing, which Ready shows); only
 *    then is the Secret read here;
 *  - deletion per spec.deletionPolicy. LogOut: a finalizer waits for the runtime to log out, and the
 *    Secret(s) and Lease are owned by the account, so garbage collection removes them after. KeepSession (the
 *    default): no finalizer and nothing owned; the Secrets and the Lease outlive the account, so a
 *    TelegramAccount of the same name uses them again without a new login, and the Lease keeps fencing the
 *    session while the old pod is still closing it (an owned Lease would be collected at once, and a
 *    recreated account would get a free one while the old client still runs).
 */
import { randomBytes } from 'node:crypto';
import type { TelegramAccount } from '../../crds/index.js';
import type { RestClient } from '../kube/client.js';
import type { ObjectKey, ReconcileContext, ReconcileResult, Reconciler } from '../kube/controller.js';
import { ignoreNotFound, isAlreadyExists, isApiError, isConflict, isNotFound } from '../kube/errors.js';
import type { EventRecorder } from '../kube/events.js';
import type { Informer } from '../kube/reflector.js';
import type { OwnerReference } from '../kube/apply.js';
import type { SecretCache, SecretObject } from './secret-cache.js';
import { Resources, type ApiObject, type ApiObjectMeta } from '../kube/resource.js';
import {
  FINALIZER,
  LABEL_ACCOUNT,
  LABEL_MANAGED_BY,
  MANAGED_BY,
  OperatorReason,
  SESSION_KEY_BYTES,
  SESSION_SECRET_BACKUP_FIELD,
  SESSION_SECRET_KEY_FIELD,
  accountLeaseName,
  encryptionKeySecretName,
  logsOutOnDelete,
  ownedBy,
  sessionSecretName,
} from '../../crds/index.js';
import { TelegramAccountResource } from '../../crds/resources.js';
import type { LeaseObject } from '../kube/lease.js';
import { madeForAccount } from './inputs.js';
import { runtimeMissesKey } from './predicates.js';
import { planSessionKey } from './session-key.js';

export const FINALIZER_FIELD_MANAGER = 'tdlib-operator-finalizer';
/** How long a LogOut deletion waits for the runtime before it warns (it keeps waiting: the session is live). */
const LOGOUT_WARN_AFTER_MS = 5 * 60_000;

export interface AccountReconcilerDeps {
  rest: RestClient;
  accounts: Informer<TelegramAccount & ApiObject>;
  secrets: SecretCache;
  /** Leases the runtimes use (label app.kubernetes.io/managed-by=tdlib-runtime). */
  leases?: Informer<LeaseObject & ApiObject>;
  events: EventRecorder;
  now?: () => number;
}

export class AccountReconciler implements Reconciler {
  private readonly now: () => number;

  /**
   * Objects this process created that its cache has not shown yet, with when (controller-runtime's
   * expectations): the account is often reconciled again before the watch delivers them, and creating them
   * again costs a write that only returns 409.
   */
  private readonly created = new Map<string, number>();
  /** Watch events (the very objects the informer hands out) that only show what this process created. */
  private readonly ownCreates = new WeakSet<ApiObject>();

  constructor(private readonly deps: AccountReconcilerDeps) {
    this.now = deps.now ?? Date.now;
    const seen = (kind: string) => (type: string, object: ApiObject) => {
      const key = createdKey(kind, object.metadata?.namespace ?? '', object.metadata?.name ?? '');
      if (type === 'ADDED' && this.created.has(key)) this.ownCreates.add(object);
      this.created.delete(key);
    };
    deps.secrets.onEvent(seen('Secret'));
    deps.leases?.onEvent(seen('Lease'));
  }

  /**
   * Whether a watch event is the arrival of an object this process created, as it created it: the
   * reconcile that created it already did everything else, so the event needs none of its own.
   */
  ownCreateEcho(object: ApiObject): boolean {
    return this.ownCreates.has(object);
  }

  /** Created by this process and not yet in the cache (expectations older than a watch could lag are dropped). */
  private awaitingCache(kind: string, namespace: string, name: string): boolean {
    const key = createdKey(kind, namespace, name);
    const at = this.created.get(key);
    if (at === undefined) return false;
    if (this.now() - at < CREATE_EXPECTATION_MS) return true;
    this.created.delete(key);
    return false;
  }

  async reconcile(key: ObjectKey, context: ReconcileContext): Promise<ReconcileResult | void> {
    const account = this.deps.accounts.get(key.namespace, key.name);
    if (!account) return undefined;
    const hasFinalizer = (account.metadata.finalizers ?? []).includes(FINALIZER);
    if (account.metadata.deletionTimestamp) {
      return hasFinalizer ? this.finalize(account, context) : undefined;
    }
    const logOut = logsOutOnDelete(account);
    // Before anything is owned: a deletion from here on waits for the log-out.
    if (logOut && !hasFinalizer) await this.applyFinalizer(account, true, context.signal);
    await Promise.all([
      this.ensureSessionSecret(account, context.signal),
      this.settleLeaseOwnership(account, context.signal),
    ]);
    // After the Secrets and Lease were released: a deletion from here on keeps them.
    if (!logOut && hasFinalizer) await this.applyFinalizer(account, false, context.signal);
    return undefined;
  }

  /**
   * The session Secret, made with the database key in it (one create per account). The key is generated
   * once and never rewritten; an earlier version's separate key Secret is used as it is.
   */
  private async ensureSessionSecret(account: TelegramAccount, signal: AbortSignal): Promise<void> {
    const namespace = account.metadata.namespace ?? '';
    const name = account.metadata.name ?? '';
    const legacy = this.deps.secrets.get(namespace, encryptionKeySecretName(name));
    const legacyOurs = legacy !== undefined && this.ours(account, legacy);
    if (legacy && legacyOurs) await this.settleOwnership(account, Resources.Secret, legacy, signal);
    const session = this.deps.secrets.get(namespace, sessionSecretName(name));
    if (session && !this.ours(account, session)) return;
    if (!session) {
      const plan = planSessionKey(name, legacyOurs ? { keys: [] } : undefined, undefined);
      if (plan.action === 'create')
        await this.createSecret(account, sessionSecretName(name), plan.withKey ? newKey() : {}, signal);
      return;
    }
    await this.settleOwnership(account, Resources.Secret, session, signal);
    if (!legacyOurs && runtimeMissesKey(account)) await this.repairKey(account, signal);
  }

  /**
   * The runtime found no key in the session Secret: read it, and add a new key only if it holds no backup
   * either (a new key would make a backup unreadable).
   */
  private async repairKey(account: TelegramAccount, signal: AbortSignal): Promise<void> {
    const name = account.metadata.name ?? '';
    const session = await this.read(account.metadata.namespace ?? '', sessionSecretName(name), signal);
    if (!session || !madeForAccount(session.metadata?.labels, name)) return;
    const plan = planSessionKey(name, undefined, { keys: Object.keys(session.data ?? {}) });
    if (plan.action === 'keyMissing')
      this.deps.events.event(account, 'Warning', OperatorReason.SessionKeyMissing, plan.message);
    if (plan.action !== 'addKey') return;
    try {
      // The resourceVersion makes it conditional: a backup written meanwhile is never paired with a new key.
      await this.deps.rest.mergePatch(
        Resources.Secret,
        account.metadata.namespace ?? '',
        sessionSecretName(name),
        { metadata: { resourceVersion: session.metadata?.resourceVersion }, data: newKey() },
        { signal },
      );
    } catch (error) {
      if (!isConflict(error) && !isNotFound(error)) throw error; // the next event decides again
    }
  }

  /** A Secret with its content, which the cache does not hold for the operator's own Secrets. */
  private async read(
    namespace: string,
    name: string,
    signal: AbortSignal,
  ): Promise<SecretObject | undefined> {
    return this.deps.rest
      .get<SecretObject>(Resources.Secret, namespace, name, { signal })
      .catch(ignoreNotFound);
  }

  /** Made by tdlib-operator for an account of this name; anything else is never used (it could hold another session). */
  private ours(account: TelegramAccount, secret: SecretObject): boolean {
    if (madeForAccount(secret.metadata?.labels, account.metadata.name ?? '')) return true;
    this.deps.events.event(
      account,
      'Warning',
      'SecretNameTaken',
      `Secret ${secret.metadata?.name} exists but was not created by tdlib-operator for TelegramAccount ${account.metadata.name}; rename or delete it`,
    );
    return false;
  }

  /** The account Lease, once a runtime made it: owned by the account (collected with it) only under LogOut. */
  private async settleLeaseOwnership(account: TelegramAccount, signal: AbortSignal): Promise<void> {
    const existing = this.deps.leases?.get(
      account.metadata.namespace ?? '',
      accountLeaseName(account.metadata.name ?? ''),
    );
    if (existing) await this.settleOwnership(account, Resources.Lease, existing, signal);
  }

  private async finalize(
    account: TelegramAccount,
    context: ReconcileContext,
  ): Promise<ReconcileResult | void> {
    if (!logsOutOnDelete(account)) {
      // The finalizer of a LogOut account whose policy became KeepSession (or of an older operator version).
      const name = account.metadata.name ?? '';
      const namespace = account.metadata.namespace ?? '';
      for (const secret of [encryptionKeySecretName(name), sessionSecretName(name)]) {
        const existing = this.deps.secrets.get(namespace, secret);
        if (existing && this.ours(account, existing))
          await this.settleOwnership(account, Resources.Secret, existing, context.signal);
      }
      const lease = this.deps.leases?.get(namespace, accountLeaseName(name));
      if (lease) await this.settleOwnership(account, Resources.Lease, lease, context.signal);
      this.deps.events.event(
        account,
        'Normal',
        'SessionKept',
        'deletionPolicy KeepSession: the session backup Secret was kept',
      );
      await this.applyFinalizer(account, false, context.signal);
      return undefined;
    }
    // Only the runtime's LoggedOut says a session was ended. A Closed client (shutdown, suspend, a retry
    // of the log-out) still has its session; one that never logged in has no backup and no user.
    const state = account.status?.authorizationState;
    if (state === 'LoggedOut' || (await this.neverLoggedIn(account, context.signal))) {
      await this.applyFinalizer(account, false, context.signal);
      return undefined;
    }
    const deletedAt = Date.parse(account.metadata.deletionTimestamp ?? '');
    if (this.now() - deletedAt > LOGOUT_WARN_AFTER_MS) {
      this.deps.events.event(
        account,
        'Warning',
        'LogOutPending',
        'deletionPolicy LogOut: the runtime has not confirmed the log-out yet; check the runtime pod, or set deletionPolicy: KeepSession to delete without logging out',
      );
    }
    // The runtime's status write wakes us; the requeue covers a runtime that is gone.
    return { requeueAfterMs: 30_000 };
  }

  /** No backup and no sign of a login: there is no session to log out. */
  private async neverLoggedIn(account: TelegramAccount, signal: AbortSignal): Promise<boolean> {
    if (account.status?.user !== undefined || account.status?.authorizationState === 'Ready') return false;
    const namespace = account.metadata.namespace ?? '';
    const session = await this.read(namespace, sessionSecretName(account.metadata.name ?? ''), signal);
    return session?.data?.[SESSION_SECRET_BACKUP_FIELD] === undefined;
  }

  /** Adds or removes our finalizer with server-side apply: the finalizer list is a set, owned per manager. */
  private async applyFinalizer(
    account: TelegramAccount,
    present: boolean,
    signal: AbortSignal,
  ): Promise<void> {
    const metadata: Record<string, unknown> = {
      name: account.metadata.name,
      namespace: account.metadata.namespace,
    };
    if (present) metadata.finalizers = [FINALIZER];
    try {
      await this.deps.rest.applyPatch(
        TelegramAccountResource,
        { apiVersion: account.apiVersion, kind: account.kind, metadata },
        { fieldManager: FINALIZER_FIELD_MANAGER, force: true, signal },
      );
    } catch (error) {
      if (present || !(await this.gone(account, error, signal))) throw error;
    }
  }

  /**
   * Removing the last finalizer of a deleted object deletes it, so a later removal finds nothing: a 404,
   * or a 422 when server-side apply tries to create the object from a body without a spec.
   */
  private async gone(account: TelegramAccount, error: unknown, signal: AbortSignal): Promise<boolean> {
    if (isNotFound(error)) return true;
    if (!isApiError(error, 422)) return false;
    try {
      await this.deps.rest.get(
        TelegramAccountResource,
        account.metadata.namespace ?? '',
        account.metadata.name ?? '',
        { signal },
      );
      return false;
    } catch (readError) {
      return isNotFound(readError);
    }
  }

  private async createSecret(
    account: TelegramAccount,
    name: string,
    data: Record<string, string>,
    signal: AbortSignal,
  ): Promise<void> {
    const namespace = account.metadata.namespace ?? '';
    if (this.awaitingCache('Secret', namespace, name)) return;
    try {
      await this.deps.rest.create(
        Resources.Secret,
        {
          apiVersion: 'v1',
          kind: 'Secret',
          type: 'Opaque',
          metadata: {
            name,
            namespace,
            labels: { [LABEL_MANAGED_BY]: MANAGED_BY, [LABEL_ACCOUNT]: account.metadata.name ?? '' },
            ...ownedBy(account),
          },
          data,
        } as SecretObject,
        { signal },
      );
      this.created.set(createdKey('Secret', namespace, name), this.now());
    } catch (error) {
      if (!isAlreadyExists(error)) throw error; // the cache lagged behind an earlier create: nothing to do
    }
  }

  /**
   * Makes the account own `existing` exactly when its deletion policy is LogOut (see the file comment), and
   * drops references to earlier TelegramAccounts of this name: an account deleted and made again at once finds
   * its predecessor's objects before garbage collection does, and that reference would have them deleted
   * while this account uses them. Other owners' references are kept; the list is replaced whole.
   */
  private async settleOwnership(
    account: TelegramAccount,
    resource: typeof Resources.Secret | typeof Resources.Lease,
    existing: ApiObject & { metadata?: ApiObjectMeta & { ownerReferences?: OwnerReference[] } },
    signal: AbortSignal,
  ): Promise<void> {
    const uid = account.metadata.uid;
    const owners = existing.metadata?.ownerReferences ?? [];
    const earlier = (o: OwnerReference): boolean =>
      o.kind === account.kind && o.name === account.metadata.name && o.uid !== uid;
    const others = owners.filter((o) => o.uid !== uid && !earlier(o));
    const next = logsOutOnDelete(account) ? [...others, ...(ownedBy(account).ownerReferences ?? [])] : others;
    const uids = (refs: OwnerReference[]): string =>
      refs
        .map((o) => o.uid)
        .sort()
        .join();
    if (uids(owners) === uids(next)) return;
    try {
      await this.deps.rest.mergePatch(
        resource,
        existing.metadata?.namespace ?? '',
        existing.metadata?.name ?? '',
        { metadata: { ownerReferences: next.length > 0 ? next : null } },
        { signal },
      );
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }
}

/** Longer than a watch lags behind its writes when it is healthy. */
const CREATE_EXPECTATION_MS = 30_000;
const createdKey = (kind: string, namespace: string, name: string): string => `${kind}/${namespace}/${name}`;

const newKey = (): Record<string, string> => ({
  [SESSION_SECRET_KEY_FIELD]: randomBytes(SESSION_KEY_BYTES).toString('base64'),
});
