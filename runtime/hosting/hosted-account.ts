/**
 * One account hosted on this pod, reconciled like any controller-runtime object: `reconcile()` looks at what
 * is wanted (run, log out, stop) and what is (fence, Lease, TDLib client, login state), takes the next step,
 * and returns when to look again; errors retry with the agent's per-account backoff. Nothing here waits on
 * TDLib inside a step: requests run in the background and their completion (like every TDLib update)
 * enqueues the account again, so no state is ever dropped and no worker is ever blocked.
 *
 * The order that keeps sessions safe:
 *   hold the account Lease (valid only while the pod's heartbeat is) -> wait the margin after a takeover ->
 *   restore the newer session (by epoch) -> start TDLib -> drive the login -> report status;
 *   stopping: close TDLib -> wait until it confirmed (the Lease is kept until then) -> back up (fenced,
 *   epoch-checked) -> release the Lease.
 * When the pod's fence lapses every client is closed at once; the account Lease is written again (a
 * conditional update) before TDLib may start again.
 */
import { join } from 'node:path';
import {
  AuthReason,
  RuntimeReason,
  accountLeaseName,
  LABEL_ACCOUNT,
  LABEL_MANAGED_BY,
  ownedBy,
  tdlibErrorReason,
  type TelegramAccount,
} from '../../crds/index.js';
import type { RestClient } from '../../operator/kube/client.js';
import type { EventRecorder } from '../../operator/kube/events.js';
import { LeaseLock } from '../../operator/kube/lease.js';
import type { Logger } from '../../operator/kube/logging.js';
import type { ApiObject } from '../../operator/kube/resource.js';
import { errorMessage, type Semaphore } from '../../operator/kube/util.js';
import { nextAuthAction, shortStateName } from '../auth/driver.js';
import type { TdFencedBackend, TdObject } from '../tdlib/backend.js';
import type { TdClient, TdClientManager } from '../tdlib/client.js';
import { TdClientClosedError, TdError, TdFenceError, TdTimeoutError } from '../tdlib/errors.js';
import type { Desire, StopReason } from './desire.js';
import { heartbeatLeaseOf, type HolderLiveness, type PodFence } from './fence.js';
import { ProxyConfigError, ProxyManager } from './proxies.js';
import { InputError, SecretInputs, type SecretObject } from './secret-inputs.js';
import { SessionLossDetector, type SessionLossReason } from './session-loss.js';
import { SessionStore, StaleBackupError } from './session-store.js';
import { HostedUpdates } from './hosted-updates.js';
import { DirectSends } from '../sending/direct-sends.js';
import { SendLedger } from '../sending/send-ledger.js';
import type { Post } from '../updates/deliverer.js';
import type { HostedView } from './status.js';

export interface HostedAccountDeps {
  rest: RestClient;
  /** The account Lease is written on the fence's own connection. */
  leaseRest: RestClient;
  manager: TdClientManager;
  /** The backend's own fence (native watchdog, simulator), if it has one. */
  fencedBackend?: TdFencedBackend;
  events: EventRecorder;
  logger: Logger;
  podFence: PodFence;
  liveness: HolderLiveness;
  /** Limits how many accounts of this process back up at once. */
  backups?: Semaphore;
  /**
   * The Secret reader of the account's namespace, shared by its accounts so that reads of one Secret (the
   * API credentials most accounts name) in flight at once are one GET. Without it the account has its own.
   */
  secretInputs?: SecretInputs;
  dataDir: string;
  applicationVersion: string;
  /** TESTS ONLY: no Lease at all, to show what the fence prevents. */
  unsafeNoFence?: boolean;
  /** A close TDLib has not confirmed after this long is reported (the Lease stays held meanwhile). */
  closeTimeoutMs: number;
  logOutTimeoutMs: number;
  /** Reconcile this account again (now, or after a delay). */
  enqueue: (afterMs?: number) => void;
  /** The view changed: the status writer decides whether that is a write. */
  report: (view: HostedView) => void;
  /** Writes the current view now and waits for it (before a Lease is released on log-out). */
  reportNow: (view: HostedView) => Promise<void>;
  /**
   * Before the client closes on purpose (move, suspend, shutdown, log-out): the account's campaign sends
   * finish and are recorded, so nothing it sent is left undecided.
   */
  drainSends?: () => Promise<void>;
  /** TDLib logged the session out without us asking (for tdlib_sessions_lost_total). */
  onSessionLost?: (reason: SessionLossReason) => void;
  /** LOCAL DEVELOPMENT ONLY: update sinks may resolve to loopback addresses. */
  updatesAllowLoopback?: boolean;
  /** TESTS ONLY: how the account's updates are posted. */
  updatesPost?: Post;
  /** TESTS ONLY: called once a send API request is on disk, before TDLib sends it. */
  afterSendAccepted?: () => void;
}

export interface StepResult {
  /** Nothing more to do for this account here: the agent forgets it. */
  done?: boolean;
  requeueAfterMs?: number;
}

/** How often a login waiting for a user's input looks at its Secret again. */
const INPUT_POLL_MS: Record<string, number> = {
  [AuthReason.WaitCode]: 2000,
  [AuthReason.WaitQrConfirmation]: 10_000,
};
const DEFAULT_INPUT_POLL_MS = 10_000;
/** First pause before a failed log-out is tried again (doubling, up to a minute). */
const LOGOUT_RETRY_MS = 5000;
/** TDLib errors that say the API credentials themselves are wrong: fixed only by a new Secret. */
const CREDENTIAL_ERRORS = new Set(['API_ID_INVALID', 'API_ID_PUBLISHED_FLOOD', 'API_HASH_INVALID']);

type ClientPhase = 'none' | 'open' | 'closing' | 'closed';

export class HostedAccount {
  readonly view: HostedView = {};
  private account: TelegramAccount;
  private readonly logger: Logger;
  private readonly lease: LeaseLock;
  private readonly store: SessionStore;
  private readonly inputs: SecretInputs;
  private readonly updates: HostedUpdates;
  private sends?: Promise<DirectSends>;
  /** We hold the account Lease (a successful write under our identity since the last lapse). */
  private holding = false;
  /** The fence lapsed since we took the Lease: write it again before TDLib may run. */
  private mustReacquire = false;
  /** A stop or log-out drained this account's campaign sends: none may start until it runs again. */
  private sendsStopping = false;
  private fenceEpoch = 0;
  private settleUntil = 0;
  private client?: TdClient;
  private key?: Buffer;
  private credentials?: { apiId: number; apiHash: string; version: string };
  private proxies?: ProxyManager;
  private readonly attempted = new Set<string>();
  /** The auth or log-out request in flight (its completion enqueues us). */
  private inFlight?: string;
  private closeRequestedAt?: number;
  private closeStuckReported = false;
  /** This tenure ran TDLib on a session worth saving (restored one, or logged in). */
  private sessionTouched = false;
  private initialBackupDone = false;
  private userChecked = false;
  private logOutSent = false;
  private sessionLoss = new SessionLossDetector();
  /** The last reconcile wanted a log-out: a LoggingOut TDLib resumes from its database is ours, not a loss. */
  private logOutWanted = false;
  /** Telegram ended this client's session (not a log-out of ours): its files must not be restored again. */
  private sessionLost = false;
  private logOutSentAt = 0;
  private logOutFailures = 0;
  /** A failed log-out is tried again (with a new client) no earlier than this. */
  private logOutRetryAt = 0;
  private unexpectedCloses = 0;
  /** The session belongs to another user than spec says: do not run it until something changes. */
  private mismatch?: string;
  private credentialsRejected = false;
  /** The spec.proxy text found unusable (the client is offline until spec.proxy changes). */
  private blockedSpec?: string;

  constructor(
    account: TelegramAccount,
    private readonly deps: HostedAccountDeps,
  ) {
    this.account = account;
    const name = account.metadata.name ?? '';
    const namespace = account.metadata.namespace ?? '';
    this.logger = deps.logger.child({ account: `${namespace}/${name}` });
    this.view.generation = account.metadata.generation;
    this.store = new SessionStore({ rest: deps.rest, namespace, account: name, dataDir: deps.dataDir });
    // Without the fence no backup is ever taken: the status then names no backup Secret.
    if (!deps.unsafeNoFence) this.view.session = { backupSecretName: this.store.secretName };
    this.inputs = deps.secretInputs ?? new SecretInputs(deps.rest, namespace);
    this.updates = new HostedUpdates(
      {
        rest: deps.rest,
        namespace,
        name,
        accountDir: this.store.accountDir,
        databaseDir: this.store.databaseDir,
        logger: this.logger,
        secretData: (secret, signal) => this.inputs.all(secret, signal),
        allowLoopback: deps.updatesAllowLoopback === true,
        ...(deps.updatesPost ? { post: deps.updatesPost } : {}),
        changed: (figures) => {
          this.view.updates = figures;
          this.changed();
        },
        event: (type, reason, message) =>
          this.deps.events.event(this.account as unknown as ApiObject, type, reason, message),
      },
      account,
    );
    this.view.updates = this.updates.initialFigures;
    this.lease = new LeaseLock({
      rest: deps.leaseRest,
      namespace,
      name: accountLeaseName(name),
      identity: deps.podFence.identity,
      durationSeconds: Math.round(deps.podFence.timing.durationMs / 1000),
      // Made when first taken (the create is the acquire). The pool's Role and the runtime Lease admission
      // policy allow it only once the operator placed the account on this pool. The owner is read at the
      // create, from the account as last seen: a deletionPolicy changed since hosting began decides it.
      ownerReferences: () => ownedBy(this.account).ownerReferences,
      // Tenures count from 1: epoch 0 is what a process holds before any tenure (fenceEpoch's initial
      // value), and the campaign senders tell a newer holder's slice writes by a greater epoch.
      createdEpoch: 1,
      labels: { [LABEL_MANAGED_BY]: 'tdlib-runtime', [LABEL_ACCOUNT]: name },
      annotations: { 'telegram.tdlib-operator.dev/valid-while': 'the holder pod heartbeat Lease is renewed' },
    });
  }

  get name(): string {
    return this.account.metadata.name ?? '';
  }

  get namespace(): string {
    return this.account.metadata.namespace ?? '';
  }

  /** The TDLib client id, while one exists (for the backend's deadlines). */
  get clientId(): number | undefined {
    return this.clientPhase() === 'none' || this.clientPhase() === 'closed' ? undefined : this.client?.id;
  }

  get holdsLease(): boolean {
    return this.holding;
  }

  /** The client while this account may send (logged in, fence valid, its session its own), else undefined. */
  sendingClient(): TdClient | undefined {
    const client = this.client;
    if (!client || client.state !== 'open' || this.gateReason() !== undefined || this.mismatch)
      return undefined;
    if (client.authorizationState?.['@type'] !== 'authorizationStateReady' || !this.userChecked)
      return undefined;
    return client;
  }

  myUserId(): number | undefined {
    return this.view.user?.id;
  }

  isBot(): boolean {
    return this.account.spec.type === 'Bot';
  }

  fenceValid(): boolean {
    return this.gateReason() === undefined;
  }

  stoppingSends(): boolean {
    return this.sendsStopping;
  }

  /** The account Lease's fencing epoch this process holds it under. */
  epoch(): number {
    return this.fenceEpoch;
  }

  private clientPhase(): ClientPhase {
    return this.client?.state ?? 'none';
  }

  private changed(): void {
    this.deps.report(this.view);
  }

  /** Synchronous, from the pod fence's lapse: close now (TDLib's `close` is the one request a fence lets through). */
  fenceLapsed(): void {
    if (this.deps.unsafeNoFence) return;
    if (this.holding) this.mustReacquire = true;
    if (this.clientPhase() === 'open') {
      this.logger.error('session fence lapsed: closing the client');
      this.requestClose();
    }
  }

  /** Why TDLib requests are refused now (the gate of this account's client), or undefined. */
  private gateReason(): string | undefined {
    if (this.deps.unsafeNoFence) return undefined;
    if (!this.deps.podFence.valid()) return 'the pod heartbeat Lease is not valid';
    if (!this.holding || this.mustReacquire) return `Lease ${accountLeaseName(this.name)} is not held`;
    return undefined;
  }

  async reconcile(
    account: TelegramAccount | undefined,
    desire: Desire,
    signal: AbortSignal,
  ): Promise<StepResult> {
    if (account) this.observe(account);
    this.logOutWanted = desire.kind === 'logout';
    if (!this.deps.unsafeNoFence && !this.deps.podFence.valid()) {
      this.fenceLapsed();
      // Nothing is allowed until the heartbeat is renewed; a stop must still let go of the Lease.
      if (desire.kind === 'stop' && this.clientPhase() !== 'open' && this.clientPhase() !== 'closing')
        return this.finishStop(desire.reason, signal);
      return { requeueAfterMs: 1000 };
    }
    if (desire.kind === 'stop') return this.stopStep(desire.reason, signal);
    // Running again (a stop was called off before the client closed): campaigns may send through it again.
    if (desire.kind === 'run') this.sendsStopping = false;
    if (!(await this.holdLease(signal))) return { requeueAfterMs: 1000 };
    const settle = this.settleUntil - performance.now();
    if (settle > 0) return { requeueAfterMs: Math.ceil(settle) };
    if (this.mismatch && desire.kind === 'run') {
      // Stays down until the user deletes the backup (or changes spec): then the local copy is set aside.
      if ((await this.store.backupEpoch(signal)) !== undefined) return { requeueAfterMs: 30_000 };
      this.store.setAsideLocal('mismatched');
      this.logger.warn('session backup deleted after a session mismatch: starting a new login');
      this.mismatch = undefined;
    }
    const phase = this.clientPhase();
    if (phase === 'none' || phase === 'closed') {
      if (phase === 'closed' && desire.kind === 'logout' && this.logOutSent) return this.finishLogOut(signal);
      if (phase === 'closed' && this.closeRequestedAt === undefined && this.sessionLost) {
        // Telegram ended the session: the files here and the backup hold a dead key, and restoring them would
        // lose it again at once, for ever. Set them aside and drop the backup: the next start logs in anew.
        this.sessionLost = false;
        this.client = undefined;
        this.store.removeLocal();
        if (!this.deps.unsafeNoFence)
          await this.store.discardBackup(
            this.fenceEpoch,
            () => {
              const refused = this.gateReason();
              if (refused) throw new StaleBackupError(`dropping the session backup refused: ${refused}`);
            },
            signal,
          );
        // The backup is gone: the status names its Secret but no backup time until the new login's first one.
        if (!this.deps.unsafeNoFence) this.view.session = { backupSecretName: this.store.secretName };
        // The new login is a new session: backed up as soon as it is Ready, like the first one.
        this.initialBackupDone = false;
        this.userChecked = false;
        this.changed();
        this.logger.warn('the lost session was removed and its backup dropped: starting a new login');
        return { requeueAfterMs: 1000 };
      }
      if (phase === 'closed' && this.closeRequestedAt === undefined) {
        // TDLib closed by itself (the session was ended elsewhere, AUTH_KEY_DUPLICATED...): start over, gently.
        this.unexpectedCloses++;
        this.client = undefined;
        return { requeueAfterMs: Math.min(60_000, 1000 * 2 ** Math.min(this.unexpectedCloses, 6)) };
      }
      const retryIn = this.logOutRetryAt - performance.now();
      if (desire.kind === 'logout' && retryIn > 0) return { requeueAfterMs: Math.ceil(retryIn) };
      return this.startClient(signal);
    }
    if (phase === 'closing') return { requeueAfterMs: 1000 };
    if (desire.kind === 'logout') return this.logOutStep(signal);
    return this.runStep(signal);
  }

  private observe(account: TelegramAccount): void {
    const specChanged = this.account.metadata.generation !== account.metadata.generation;
    this.account = account;
    if (specChanged) {
      this.view.generation = account.metadata.generation;
      // A new spec may fix what stopped the account (a mismatched session, a bad proxy).
      this.mismatch = undefined;
      this.changed();
    }
  }

  // ---- the fence ------------------------------------------------------------------------------------

  private async holdLease(signal: AbortSignal): Promise<boolean> {
    if (this.deps.unsafeNoFence) return true;
    if (this.holding && !this.mustReacquire) return true;
    const attempt = await this.lease.tryAcquireOrRenew({ signal, mayTakeOver: this.deps.liveness.rule });
    if (!attempt.held) {
      this.setWaiting(
        RuntimeReason.WaitingForLease,
        attempt.holder === ''
          ? `waiting for Lease ${accountLeaseName(this.name)}: another pod made it at the same moment`
          : `waiting for the previous host to let the session go (Lease ${accountLeaseName(this.name)} held by ${heartbeatLeaseOf(attempt.holder)})`,
      );
      return false;
    }
    // The holder check and the write happened after the fence was last checked: check it again.
    if (!this.deps.podFence.valid()) return false;
    const took = attempt.acquired && attempt.previousHolder !== '';
    if (took) {
      // The previous holder stopped no later than a margin before we could take it; wait one more.
      this.settleUntil = performance.now() + this.deps.podFence.timing.marginMs;
      this.logger.info(
        { from: heartbeatLeaseOf(attempt.previousHolder), epoch: attempt.epoch },
        'took over the session fence',
      );
    }
    this.holding = true;
    this.mustReacquire = false;
    this.fenceEpoch = attempt.epoch;
    this.updateDeadline();
    return true;
  }

  /** Mirrors the fence's validity into the backend's own watchdog for this client. */
  updateDeadline(): void {
    const id = this.clientId;
    if (id === undefined || !this.deps.fencedBackend || this.deps.unsafeNoFence) return;
    const remaining = this.gateReason() === undefined ? this.deps.podFence.remainingMs() : 0;
    this.deps.fencedBackend.setClientDeadline(id, remaining);
  }

  // ---- start ----------------------------------------------------------------------------------------

  private setWaiting(reason: string, message: string): void {
    if (this.view.authReason === reason && this.view.authMessage === message) return;
    this.view.authReason = reason;
    this.view.authMessage = message;
    this.changed();
  }

  private async startClient(signal: AbortSignal): Promise<StepResult> {
    this.setWaiting(RuntimeReason.Starting, 'starting the TDLib client');
    let sessionSecret: SecretObject | undefined;
    try {
      ({ key: this.key, sessionSecret } = await this.inputs.sessionKey(this.name, signal));
      this.credentials = await this.inputs.apiCredentials(this.account, signal);
    } catch (error) {
      if (error instanceof InputError) {
        this.setWaiting(error.reason, error.message);
        this.warnOnce(error.reason, error.message);
      }
      throw error;
    }
    // The Secret read for the key holds the backup too: one read instead of two.
    const restored = await this.store.restore(this.key, this.fenceEpoch, signal, { secret: sessionSecret });
    if (restored.unreadable) {
      this.warnOnce(
        RuntimeReason.BackupUnreadable,
        `the session backup in Secret ${this.store.secretName} cannot be read (${restored.unreadable}); using ${restored.choice === 'local' ? "this pod's local session" : 'a new login'}`,
      );
    }
    if (
      !this.deps.unsafeNoFence &&
      restored.backupEpoch !== undefined &&
      restored.backupEpoch >= this.fenceEpoch
    ) {
      // The Lease object was recreated since that backup: keep our epoch ahead of it, or we could never write.
      const raised = await this.lease.raiseEpoch(restored.backupEpoch + 1, signal);
      if (raised === undefined) {
        this.holding = false;
        return { requeueAfterMs: 1000 };
      }
      this.fenceEpoch = raised;
    }
    this.sessionTouched = restored.choice !== 'fresh';
    if (restored.choice === 'backup')
      this.logger.info({ epoch: restored.backupEpoch }, 'session restored from backup');
    const client = this.deps.manager.createClient({ gate: () => this.gateReason() });
    this.client = client;
    this.closeRequestedAt = undefined;
    this.closeStuckReported = false;
    this.inFlight = undefined;
    this.logOutSent = false;
    this.sessionLoss = new SessionLossDetector();
    this.userChecked = false;
    this.blockedSpec = undefined;
    this.view.connectionBlocked = undefined;
    this.attempted.clear();
    this.updateDeadline();
    // The outbox is open before the first update can arrive.
    await this.updates.start(this.account, client, restored.choice === 'backup', signal);
    client.subscribe((update) => this.onUpdate(client, update as TdObject));
    this.proxies = new ProxyManager(
      client,
      (name) => this.inputs.all(name),
      this.logger,
      (proxy) => {
        this.view.proxy = proxy;
        this.changed();
      },
    );
    // The first request starts the client; TDLib then reports authorizationStateWaitTdlibParameters.
    this.track(client, 'getOption', client.invokeUnchecked({ '@type': 'getOption', name: 'version' }));
    return {};
  }

  // ---- running --------------------------------------------------------------------------------------

  private async runStep(signal: AbortSignal): Promise<StepResult> {
    const client = this.client;
    const state = client?.authorizationState as TdObject | undefined;
    if (!client || !state || this.inFlight) return {};
    await this.updates.reconcile(this.account, client, signal);
    const lookAgain = this.updates.lookAgainInMs;
    // A sink or token that could not be looked up (a Role not updated yet, a Service still to come) is
    // looked up again without waiting for a change of the account.
    if (lookAgain !== undefined) this.deps.enqueue(lookAgain);
    // The proxy comes before anything that connects: a proxy that cannot be used keeps the client offline.
    if (this.blockedSpec !== JSON.stringify(this.account.spec.proxy ?? null)) await this.applyProxy(client);
    if (state['@type'] === 'authorizationStateReady') return this.afterLogin(client, signal);
    if (this.credentialsRejected) {
      const now = await this.inputs.apiCredentials(this.account, signal).catch(() => undefined);
      if (now && now.version !== this.credentials?.version) {
        // A fixed Secret: TDLib takes api_id/api_hash only at start, so start again with them.
        this.credentialsRejected = false;
        this.logger.info('API credentials Secret changed: restarting the client');
        this.requestClose();
        return {};
      }
      return { requeueAfterMs: DEFAULT_INPUT_POLL_MS };
    }
    const inputs = await this.inputs.authInputs(this.account, state['@type'], signal);
    const credentials = this.credentials;
    const action = nextAuthAction(state, inputs, this.attempted, () => ({
      databaseDirectory: this.store.databaseDir,
      filesDirectory: this.store.filesDir,
      databaseEncryptionKey: this.key?.toString('base64') ?? '',
      apiId: credentials?.apiId ?? 0,
      apiHash: credentials?.apiHash ?? '',
      applicationVersion: this.deps.applicationVersion,
    }));
    if (action.kind === 'wait') {
      // A TDLib error stays visible until a new input is tried (it says what to fix).
      if (!this.isErrorReason(this.view.authReason)) this.setWaiting(action.reason, action.message);
      return { requeueAfterMs: INPUT_POLL_MS[action.reason] ?? DEFAULT_INPUT_POLL_MS };
    }
    if (action.kind !== 'send') return {};
    if (action.attempt) this.attempted.add(action.attempt);
    if (action.request['@type'] === 'checkAuthenticationCode')
      await this.inputs.consumeLoginCode(this.name, signal);
    const method = String(action.request['@type']);
    this.track(client, method, client.invokeUnchecked(action.request), action.attempt);
    return {};
  }

  /** Runs `request` in the background; its end enqueues us, its error lands in the view. */
  private track(client: TdClient, method: string, request: Promise<TdObject>, attempt?: string): void {
    if (method !== 'getOption') this.inFlight = method;
    request.then(
      () => {
        if (this.inFlight === method) this.inFlight = undefined;
        if (this.client === client) this.deps.enqueue();
      },
      (error: unknown) => {
        if (this.inFlight === method) this.inFlight = undefined;
        if (this.client !== client) return;
        const retryInMs = this.onRequestError(method, error, attempt);
        this.deps.enqueue(retryInMs);
      },
    );
  }

  /** Returns when to try again (for errors that say nothing about the input), else undefined. */
  private onRequestError(method: string, error: unknown, attempt: string | undefined): number | undefined {
    if (error instanceof TdFenceError || error instanceof TdClientClosedError) return undefined;
    if (error instanceof TdTimeoutError) {
      if (attempt) this.attempted.delete(attempt);
      return 1000;
    }
    if (!(error instanceof TdError)) {
      this.logger.warn({ method, err: errorMessage(error) }, 'TDLib request failed');
      return 5000;
    }
    if (method === 'getOption') return undefined;
    const retryAfter = transientRetryAfterMs(error);
    if (retryAfter !== undefined) {
      // A flood wait or a server error says nothing about the input: try the same input again later.
      if (attempt) this.attempted.delete(attempt);
      this.logger.info(
        { tdlibCode: error.code, retryInMs: Math.round(retryAfter) },
        'login step throttled; retrying',
      );
      return retryAfter;
    }
    const reason = tdlibErrorReason(error.code, error.message);
    if (CREDENTIAL_ERRORS.has(reason)) {
      this.credentialsRejected = true;
      const ref = this.account.spec.apiCredentialsSecretRef;
      this.view.authReason = RuntimeReason.ApiCredentialsInvalid;
      this.view.authMessage = `Telegram rejected the API credentials (${reason}): fix Secret ${ref.name} keys ${ref.apiIdKey ?? 'api_id'} and ${ref.apiHashKey ?? 'api_hash'} (spec.apiCredentialsSecretRef) with the values from my.telegram.org; the client restarts when the Secret changes`;
    } else {
      // TDLib's message is the reason users search for (PHONE_CODE_INVALID, PASSWORD_HASH_INVALID, ...).
      this.view.authReason = reason;
      this.view.authMessage = `${method} failed: ${error.code} ${error.message}; waiting for a new input${this.inputHint(method)}`;
    }
    this.deps.events.event(
      this.account as unknown as ApiObject,
      'Warning',
      this.view.authReason,
      this.view.authMessage,
    );
    this.changed();
    return undefined;
  }

  private inputHint(method: string): string {
    const spec = this.account.spec;
    if (method === 'checkAuthenticationBotToken' && spec.botTokenSecretRef)
      return ` (Secret ${spec.botTokenSecretRef.name} key ${spec.botTokenSecretRef.key ?? 'token'}, spec.botTokenSecretRef)`;
    if (method === 'checkAuthenticationPassword' && spec.passwordSecretRef)
      return ` (Secret ${spec.passwordSecretRef.name} key ${spec.passwordSecretRef.key ?? 'password'}, spec.passwordSecretRef)`;
    if (method === 'setAuthenticationPhoneNumber') return ' (spec.phoneNumber)';
    if (method === 'checkAuthenticationCode') return ' (kubectl telegram login)';
    return '';
  }

  private isErrorReason(reason: string | undefined): boolean {
    return (
      reason !== undefined &&
      (/^[A-Z][A-Z0-9_]+$/.test(reason) ||
        /^Error\d{3}$/.test(reason) ||
        reason === RuntimeReason.ApiCredentialsInvalid)
    );
  }

  /**
   * Sends spec.proxy to TDLib (before anything connects: the first call comes before setTdlibParameters).
   * A proxy that cannot be used keeps the client offline (networkTypeNone), never silently direct.
   */
  private async applyProxy(client: TdClient): Promise<void> {
    const proxies = this.proxies;
    const spec = this.account.spec.proxy;
    if (!proxies || proxies.isConfigured(spec)) return;
    try {
      const answered = await proxies.configure(spec);
      this.blockedSpec = undefined;
      if (this.view.connectionBlocked) {
        this.view.connectionBlocked = undefined;
        void client
          .invokeUnchecked({ '@type': 'setNetworkType', type: { '@type': 'networkTypeOther' } })
          .catch(() => undefined);
        this.changed();
      }
      answered().catch((error: unknown) => {
        this.logger.warn({ err: errorMessage(error) }, 'applying the proxy settings failed; retrying');
        proxies.forget();
        this.deps.enqueue(5000);
      });
    } catch (error) {
      if (!(error instanceof ProxyConfigError)) throw error;
      void client
        .invokeUnchecked({ '@type': 'setNetworkType', type: { '@type': 'networkTypeNone' } })
        .catch(() => undefined);
      proxies.forget();
      const message = `${error.message}; the client stays offline until it is fixed`;
      if (this.view.connectionBlocked?.message !== message) {
        this.view.connectionBlocked = { reason: RuntimeReason.ProxyInvalid, message };
        this.view.proxy = { inUse: 'none', message };
        this.deps.events.event(
          this.account as unknown as ApiObject,
          'Warning',
          RuntimeReason.ProxyInvalid,
          message,
        );
        this.changed();
      }
      this.blockedSpec = JSON.stringify(spec ?? null);
    }
  }

  private async afterLogin(client: TdClient, signal: AbortSignal): Promise<StepResult> {
    if (!this.userChecked) {
      this.inFlight = 'getMe';
      let me: TdObject;
      try {
        me = await client.invokeUnchecked({ '@type': 'getMe' }, { timeoutMs: 30_000 });
      } finally {
        this.inFlight = undefined;
      }
      const user = me as TdObject & {
        id: number;
        first_name?: string;
        last_name?: string;
        phone_number?: string;
        usernames?: { active_usernames?: string[] };
        type?: { '@type'?: string };
      };
      const mismatch = await this.sessionMismatch(user, signal);
      if (mismatch) {
        this.mismatch = mismatch;
        this.view.authReason = RuntimeReason.SessionMismatch;
        this.view.authMessage = mismatch;
        this.deps.events.event(
          this.account as unknown as ApiObject,
          'Warning',
          RuntimeReason.SessionMismatch,
          mismatch,
        );
        this.requestClose();
        this.changed();
        return {};
      }
      this.userChecked = true;
      this.view.user = {
        id: user.id,
        username: user.usernames?.active_usernames?.[0],
        firstName: user.first_name || undefined,
        lastName: user.last_name || undefined,
        isBot: user.type?.['@type'] === 'userTypeBot',
      };
      this.changed();
    }
    if (!this.initialBackupDone) {
      // A fresh login is worth a backup at once: until then only this pod's volume could spare a new login.
      await this.backup(signal);
      this.initialBackupDone = true;
    }
    return {};
  }

  /** A message when the logged-in user is not the one spec names (never the numbers themselves). */
  private async sessionMismatch(
    user: { id: number; phone_number?: string },
    signal: AbortSignal,
  ): Promise<string | undefined> {
    const spec = this.account.spec;
    const secret = this.store.secretName;
    if (spec.type === 'User' && spec.phoneNumber && user.phone_number) {
      const digits = (s: string): string => s.replace(/\D/g, '');
      if (digits(spec.phoneNumber) !== digits(user.phone_number))
        return `the session is logged in with a different phone number than spec.phoneNumber; delete Secret ${secret} (and the account's local data) to log in again, or set spec.phoneNumber to the session's number`;
    }
    if (spec.type === 'Bot') {
      const token = await this.inputs.value(spec.botTokenSecretRef, 'token', signal);
      const botId = Number(token?.value.split(':')[0]);
      if (Number.isInteger(botId) && botId > 0 && botId !== user.id)
        return `the session belongs to another bot than the token in spec.botTokenSecretRef; delete Secret ${secret} to log in with the token, or restore the matching token`;
    }
    return undefined;
  }

  private async backup(signal: AbortSignal): Promise<void> {
    if (this.deps.unsafeNoFence || !this.key) return;
    const release = await this.deps.backups?.acquire(signal);
    try {
      const at = await this.store.backup(
        this.key,
        this.fenceEpoch,
        () => {
          const refused = this.gateReason();
          if (refused) throw new StaleBackupError(`session backup refused: ${refused}`);
        },
        signal,
      );
      if (at) {
        this.view.session = { backupSecretName: this.store.secretName, lastBackupTime: at };
        this.changed();
      }
    } catch (error) {
      if (error instanceof StaleBackupError) {
        this.logger.warn({ err: error.message }, 'session backup skipped');
        return;
      }
      this.warnOnce(
        'BackupFailed',
        `backing up the session to Secret ${this.store.secretName} failed: ${errorMessage(error)}; retrying`,
      );
      throw error;
    } finally {
      release?.();
    }
  }

  private warned = new Set<string>();

  private warnOnce(reason: string, message: string): void {
    const key = `${reason}:${message}`;
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.deps.events.event(this.account as unknown as ApiObject, 'Warning', reason, message);
  }

  // ---- TDLib updates ---------------------------------------------------------------------------------

  private onUpdate(client: TdClient, update: TdObject): void {
    if (this.client !== client) return;
    this.updates.onUpdate(client, update);
    const lost = this.sessionLoss.observe(update, this.logOutSent || this.logOutWanted);
    if (lost) {
      this.sessionLost = true;
      this.logger.warn({ reason: lost }, 'the Telegram session was lost: the account must log in again');
      this.deps.onSessionLost?.(lost);
    }
    switch (update['@type']) {
      case 'updateAuthorizationState': {
        const state = update.authorization_state as TdObject;
        const type = state['@type'];
        this.view.authorizationState = shortStateName(type);
        if (!this.mismatch && !this.credentialsRejected) {
          this.view.authReason = undefined;
          this.view.authMessage = undefined;
        }
        this.view.stoppedReason = undefined;
        if (type === 'authorizationStateWaitCode') {
          const info = state.code_info as { type?: { '@type'?: string } } | undefined;
          this.view.codeDelivery =
            (info?.type?.['@type'] ?? '').replace(/^authenticationCodeType/, '') || undefined;
        }
        if (type === 'authorizationStateWaitOtherDeviceConfirmation')
          this.view.qrCodeLink = String(state.link ?? '');
        if (type === 'authorizationStateReady') {
          this.sessionTouched = true;
          this.unexpectedCloses = 0;
        }
        if (type === 'authorizationStateClosed') this.view.connectionState = undefined;
        this.changed();
        this.deps.enqueue();
        break;
      }
      case 'updateConnectionState': {
        this.view.connectionState = shortStateName((update.state as TdObject)['@type']);
        this.changed();
        break;
      }
      default:
        break;
    }
  }

  // ---- log-out ---------------------------------------------------------------------------------------

  private async logOutStep(signal: AbortSignal): Promise<StepResult> {
    const client = this.client;
    const state = client?.authorizationState?.['@type'];
    if (!client || !state || this.inFlight) return {};
    // TDLib refuses logOut before it has its parameters: finish that step first.
    if (state === 'authorizationStateWaitTdlibParameters') return this.runStep(signal);
    if (state === 'authorizationStateClosing') return {};
    if (this.logOutSent) {
      // TDLib answers logOut at once and stays LoggingOut until Telegram confirmed it: that has a deadline too.
      const waited = performance.now() - this.logOutSentAt;
      if (waited < this.deps.logOutTimeoutMs)
        return { requeueAfterMs: Math.ceil(this.deps.logOutTimeoutMs - waited) };
      this.logOutFailed(client, `TDLib has not finished logging out within ${Math.round(waited / 1000)} s`);
      return {};
    }
    // Logging out without us asking (the session was ended elsewhere): TDLib closes by itself.
    if (state === 'authorizationStateLoggingOut') return {};
    this.sendsStopping = true;
    await this.deps.drainSends?.();
    this.logOutSent = true;
    this.logOutSentAt = performance.now();
    this.inFlight = 'logOut';
    client.invokeUnchecked({ '@type': 'logOut' }, { timeoutMs: this.deps.logOutTimeoutMs }).then(
      () => {
        this.inFlight = undefined;
        this.deps.enqueue();
      },
      (error: unknown) => {
        this.inFlight = undefined;
        if (this.client !== client) return;
        this.logOutFailed(client, errorMessage(error));
      },
    );
    return { requeueAfterMs: this.deps.logOutTimeoutMs };
  }

  /** Close and start over: a fresh client retries the log-out, after a growing pause. */
  private logOutFailed(client: TdClient, why: string): void {
    if (this.client !== client || !this.logOutSent) return;
    const message = `logOut failed: ${why}; closing the client and retrying`;
    this.logger.warn({ err: why }, 'logOut failed');
    this.deps.events.event(
      this.account as unknown as ApiObject,
      'Warning',
      RuntimeReason.LogOutFailed,
      message,
    );
    this.view.authReason = RuntimeReason.LogOutFailed;
    this.view.authMessage = message;
    this.changed();
    this.logOutSent = false;
    this.logOutFailures++;
    this.logOutRetryAt =
      performance.now() + Math.min(60_000, LOGOUT_RETRY_MS * 2 ** Math.min(this.logOutFailures - 1, 4));
    this.requestClose();
  }

  private async finishLogOut(signal: AbortSignal): Promise<StepResult> {
    await this.updates.close();
    await this.closeSends();
    this.store.removeLocal();
    this.view.authorizationState = 'LoggedOut';
    this.view.authReason = RuntimeReason.LoggedOut;
    this.view.authMessage = 'logged out: the Telegram session is ended';
    this.view.stoppedReason = RuntimeReason.LoggedOut;
    this.view.user = undefined;
    this.view.connectionState = undefined;
    await this.deps.reportNow(this.view);
    await this.release(signal);
    return { done: true };
  }

  // ---- stop ------------------------------------------------------------------------------------------

  private requestClose(): void {
    const client = this.client;
    if (!client || client.state !== 'open') return;
    this.proxies?.stop();
    this.closeRequestedAt = performance.now();
    client.close({ timeoutMs: 24 * 3600_000 }).then(
      () => this.deps.enqueue(),
      () => this.deps.enqueue(),
    );
  }

  private async stopStep(reason: StopReason, signal: AbortSignal): Promise<StepResult> {
    const phase = this.clientPhase();
    if (phase === 'open') {
      this.sendsStopping = true;
      if (this.gateReason() === undefined) await this.deps.drainSends?.();
      this.requestClose();
      return { requeueAfterMs: this.deps.closeTimeoutMs };
    }
    if (phase === 'closing') {
      const waited = performance.now() - (this.closeRequestedAt ?? performance.now());
      if (waited > this.deps.closeTimeoutMs && !this.closeStuckReported) {
        this.closeStuckReported = true;
        const message = `TDLib has not closed the client within ${Math.round(waited / 1000)} s; the session fence (Lease ${accountLeaseName(this.name)}) is kept until it does`;
        this.logger.error(message);
        this.deps.events.event(
          this.account as unknown as ApiObject,
          'Warning',
          RuntimeReason.Closing,
          message,
        );
      }
      return { requeueAfterMs: 1000 };
    }
    return this.finishStop(reason, signal);
  }

  /** TDLib is closed (or never ran): save the session, report, give the Lease back. */
  private async finishStop(reason: StopReason, signal: AbortSignal): Promise<StepResult> {
    // Before the backup: it carries the updates' marks to the pod that starts the account next.
    await this.updates.close();
    await this.closeSends();
    if (this.holding && this.sessionTouched && this.deps.podFence.valid() && !this.mustReacquire) {
      await this.backup(signal);
      this.sessionTouched = false;
    } else if (this.holding && this.sessionTouched) {
      this.logger.warn(
        'session not backed up: the fence is not valid; the local copy on this volume is kept',
      );
    }
    if (reason === 'suspended') {
      this.view.stoppedReason = RuntimeReason.Suspended;
      this.view.connectionState = undefined;
      this.changed();
      await this.deps.reportNow(this.view).catch(() => undefined);
    }
    await this.release(signal);
    return { done: true };
  }

  private async release(signal: AbortSignal): Promise<void> {
    this.proxies?.stop();
    if (!this.holding || this.deps.unsafeNoFence) return;
    await this.lease.release({ signal });
    this.holding = false;
    this.mustReacquire = false;
  }

  /** The send API's way through this account (its idempotency ledger opened on first use). */
  directSends(): Promise<DirectSends> {
    this.sends ??= SendLedger.open(this.store.accountDir).then(
      (ledger) =>
        new DirectSends({
          ledger,
          client: () => this.sendingClient(),
          myUserId: () => this.myUserId(),
          isBot: this.isBot(),
          execute: (request) => this.deps.manager.executeUnchecked(request),
          ...(this.deps.afterSendAccepted ? { afterAccept: this.deps.afterSendAccepted } : {}),
        }),
    );
    return this.sends;
  }

  private async closeSends(): Promise<void> {
    const sends = this.sends;
    this.sends = undefined;
    await (await sends)?.close();
  }

  /** For tests and shutdown diagnostics. */
  get databaseDir(): string {
    return join(this.store.databaseDir);
  }
}

/**
 * Milliseconds to wait before repeating a request that failed for a reason unrelated to its input
 * (429 "Too Many Requests: retry after N", FLOOD_WAIT_N, 5xx), or undefined for a definitive rejection.
 */
export function transientRetryAfterMs(error: TdError): number | undefined {
  const seconds = /retry after (\d+)|FLOOD_WAIT_(\d+)/i.exec(error.message);
  if (error.code === 429 || seconds)
    return (Number(seconds?.[1] ?? seconds?.[2] ?? 1) + Math.random()) * 1000;
  if (error.code >= 500) return 2000;
  return undefined;
}
