/**
 * One account hosted on this pod, from fence to close. The order is what keeps sessions safe:
 *   hold the account Lease -> restore the session backup if it is newer -> start TDLib -> drive the login
 *   -> report status on transitions -> (on stop) close TDLib -> back up the session -> release the Lease.
 * Losing the Lease closes the client at once: another pod may be about to start the same session.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TelegramAccount } from '../../crds/index.js';
import type { RestClient } from '../../operator/kube/client.js';
import { isNotFound } from '../../operator/kube/errors.js';
import type { EventRecorder } from '../../operator/kube/events.js';
import type { Logger } from '../../operator/kube/logging.js';
import { Resources, type ApiObject } from '../../operator/kube/resource.js';
import {
  LABEL_ACCOUNT,
  LABEL_MANAGED_BY,
  accountLeaseName,
  encryptionKeySecretName,
  loginCodeSecretName,
  sessionSecretName,
} from '../../crds/naming.js';
import { nextAuthAction, shortStateName, type AuthInputs, type VersionedInput } from '../auth/driver.js';
import { packSession, unpackSession, SESSION_SECRET_KEY } from '../session/backup.js';
import type { TdObject } from '../tdlib/backend.js';
import type { TdClient, TdClientManager } from '../tdlib/client.js';
import { TdError } from '../tdlib/errors.js';
import { LeaseFence } from './lease.js';
import { ProxyManager } from './proxies.js';
import type { HostedView } from './status.js';

type SecretObject = ApiObject & { data?: Record<string, string> };

export const BACKUP_TIME_ANNOTATION = 'telegram.tdlib-operator.dev/backup-time';
/** TDLib keeps the session (auth key, DC options) in td.binlog; the simulator mirrors that file. */
export const SESSION_FILES = ['td.binlog'];
const LOCAL_BACKUP_MARK = '.backup-time';

export interface HostedAccountDeps {
  rest: RestClient;
  leaseRest: RestClient;
  manager: TdClientManager;
  events: EventRecorder;
  logger: Logger;
  podName: string;
  dataDir: string;
  leaseSeconds: number;
  applicationVersion: string;
  /** Test-only: run without the Lease fence, to show what the fence prevents. */
  unsafeNoFence?: boolean;
  /** Called whenever the view changed; the status writer decides whether that is a write. */
  onChange: (account: TelegramAccount, view: HostedView) => void;
}

export type StopReason = 'moved' | 'suspended' | 'deleted' | 'shutdown' | 'lease-lost';

export class HostedAccount {
  readonly view: HostedView = {};
  private client?: TdClient;
  private readonly fence?: LeaseFence;
  private readonly attempted = new Set<string>();
  private stopped = false;
  private started?: Promise<void>;
  private pollTimer?: NodeJS.Timeout;
  private driving = false;
  private key?: Buffer;
  private readonly logger: Logger;
  private backedUpOnce = false;
  private proxies?: ProxyManager;

  constructor(
    private account: TelegramAccount,
    private readonly deps: HostedAccountDeps,
  ) {
    const name = account.metadata.name ?? '';
    this.logger = deps.logger.child({ account: `${account.metadata.namespace}/${name}` });
    this.view.generation = account.metadata.generation;
    this.view.session = { backupSecretName: sessionSecretName(name) };
    if (!deps.unsafeNoFence)
      this.fence = new LeaseFence({
        rest: deps.leaseRest,
        namespace: account.metadata.namespace ?? '',
        name: accountLeaseName(name),
        holder: deps.podName,
        durationSeconds: deps.leaseSeconds,
        labels: { [LABEL_MANAGED_BY]: 'tdlib-runtime', [LABEL_ACCOUNT]: name },
        logger: this.logger,
        onLost: (reason) => {
          this.logger.error({ reason }, 'account lease lost: closing the client now');
          void this.stop('lease-lost');
        },
      });
  }

  get name(): string {
    return this.account.metadata.name ?? '';
  }

  get namespace(): string {
    return this.account.metadata.namespace ?? '';
  }

  /** True once TDLib is running for this account (past the fence). */
  get running(): boolean {
    return this.client !== undefined && this.client.state === 'open';
  }

  /** A newer version of the account arrived (spec change, deletion): re-drive with it. */
  update(account: TelegramAccount): void {
    this.account = account;
    if (this.view.generation !== account.metadata.generation) {
      this.view.generation = account.metadata.generation;
      this.changed();
      void this.applyProxies();
    }
    void this.drive();
  }

  start(): Promise<void> {
    this.started ??= this.run().catch((error: unknown) => {
      this.logger.error({ err: error instanceof Error ? error.message : String(error) }, 'hosting failed');
      this.view.authReason = 'HostingFailed';
      this.view.authMessage = error instanceof Error ? error.message : String(error);
      this.changed();
    });
    return this.started;
  }

  private changed(): void {
    this.deps.onChange(this.account, this.view);
  }

  private async run(): Promise<void> {
    if (this.fence) {
      let waitingReported = false;
      while (!this.stopped && !(await this.fence.tryAcquire())) {
        if (!waitingReported) {
          waitingReported = true;
          this.view.authReason = 'WaitingForLease';
          this.view.authMessage = 'waiting for the previous host to release the session (account Lease)';
          this.changed();
        }
        await new Promise((r) => setTimeout(r, 1000));
      }
      if (this.stopped) return;
    }
    this.key = await this.readKey();
    await this.restoreSession();
    if (this.stopped) return;
    const client = this.deps.manager.createClient();
    this.client = client;
    client.subscribe((update) => this.onUpdate(update as TdObject));
    // The first request starts the client; TDLib then reports authorizationStateWaitTdlibParameters.
    await client.invokeUnchecked({ '@type': 'getOption', name: 'version' }).catch(() => undefined);
    this.proxies = new ProxyManager(
      client,
      (name) => this.secretData(name),
      this.logger,
      (proxy) => {
        this.view.proxy = proxy;
        this.changed();
      },
    );
    await this.applyProxies();
  }

  private async readKey(): Promise<Buffer> {
    const secret = await this.deps.rest.get<SecretObject>(
      Resources.Secret,
      this.namespace,
      encryptionKeySecretName(this.name),
    );
    const key = Buffer.from(secret.data?.key ?? '', 'base64');
    if (key.length !== 32) throw new Error(`Secret ${encryptionKeySecretName(this.name)} has no 32-byte key`);
    return key;
  }

  private databaseDir(): string {
    return join(this.deps.dataDir, this.namespace, this.name, 'db');
  }

  /** Restores the backup when it is newer than what this pod's volume holds (or the volume holds nothing). */
  private async restoreSession(): Promise<void> {
    const secret = await this.deps.rest.get<SecretObject>(
      Resources.Secret,
      this.namespace,
      sessionSecretName(this.name),
    );
    const blob = secret.data?.[SESSION_SECRET_KEY];
    const backupTime = secret.metadata?.annotations?.[BACKUP_TIME_ANNOTATION] ?? '';
    if (!blob || !this.key) return;
    const dir = this.databaseDir();
    const markFile = join(dir, LOCAL_BACKUP_MARK);
    const localTime = existsSync(markFile) ? readFileSync(markFile, 'utf8') : '';
    const hasLocal = SESSION_FILES.some((f) => existsSync(join(dir, f)));
    if (hasLocal && localTime >= backupTime) return;
    mkdirSync(dir, { recursive: true });
    const restored = unpackSession(Buffer.from(blob, 'base64'), this.key, dir);
    writeFileSync(markFile, backupTime);
    this.logger.info({ files: restored.length }, 'session restored from backup');
  }

  /** Saves the session files to the account's session Secret (encrypted with the account key). */
  async backupSession(): Promise<void> {
    if (!this.key) return;
    const dir = this.databaseDir();
    if (!SESSION_FILES.some((f) => existsSync(join(dir, f)))) return;
    const blob = packSession(dir, SESSION_FILES, this.key);
    const at = new Date().toISOString();
    await this.deps.rest.mergePatch(Resources.Secret, this.namespace, sessionSecretName(this.name), {
      metadata: { annotations: { [BACKUP_TIME_ANNOTATION]: at } },
      data: { [SESSION_SECRET_KEY]: blob.toString('base64') },
    });
    writeFileSync(join(dir, LOCAL_BACKUP_MARK), at);
    this.view.session = {
      backupSecretName: sessionSecretName(this.name),
      lastBackupTime: at.replace(/\.\d{3}Z$/, 'Z'),
    };
    this.changed();
  }

  private onUpdate(update: TdObject): void {
    switch (update['@type']) {
      case 'updateAuthorizationState': {
        const state = update.authorization_state as TdObject;
        this.view.authorizationState = shortStateName(state['@type']);
        this.view.authReason = undefined;
        this.view.authMessage = undefined;
        if (state['@type'] === 'authorizationStateWaitCode') {
          const info = state.code_info as { type?: { '@type'?: string } } | undefined;
          this.view.codeDelivery =
            (info?.type?.['@type'] ?? '').replace(/^authenticationCodeType/, '') || undefined;
        }
        if (state['@type'] === 'authorizationStateWaitOtherDeviceConfirmation')
          this.view.qrCodeLink = String(state.link ?? '');
        if (state['@type'] === 'authorizationStateReady') void this.onReady();
        this.changed();
        void this.drive(state);
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

  private async onReady(): Promise<void> {
    try {
      const me = (await this.client?.invokeUnchecked({ '@type': 'getMe' })) as
        | {
            id: number;
            first_name?: string;
            last_name?: string;
            usernames?: { active_usernames?: string[] };
            type?: { '@type'?: string };
          }
        | undefined;
      if (me) {
        this.view.user = {
          id: me.id,
          username: me.usernames?.active_usernames?.[0],
          firstName: me.first_name || undefined,
          lastName: me.last_name || undefined,
          isBot: me.type?.['@type'] === 'userTypeBot',
        };
        this.changed();
      }
      // A fresh login is worth a backup at once: until then only this pod's volume could spare a new login.
      if (!this.backedUpOnce) {
        this.backedUpOnce = true;
        await this.backupSession();
      }
    } catch (error) {
      this.logger.warn(
        { err: error instanceof Error ? error.message : String(error) },
        'after-login steps failed',
      );
    }
  }

  private async applyProxies(): Promise<void> {
    try {
      await this.proxies?.apply(this.account.spec.proxy);
    } catch (error) {
      // A bad link or a missing credentials Secret: report it, keep the client running.
      this.view.proxy = {
        inUse: 'direct',
        message: `proxy not applied: ${error instanceof Error ? error.message : String(error)}`,
      };
      this.changed();
    }
  }

  private async secretData(name: string): Promise<Record<string, string> | undefined> {
    try {
      const secret = await this.deps.rest.get<SecretObject>(Resources.Secret, this.namespace, name);
      return Object.fromEntries(
        Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]),
      );
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  private async secretValue(
    ref: { name: string; key?: string } | undefined,
    defaultKey: string,
  ): Promise<VersionedInput | undefined> {
    if (!ref) return undefined;
    try {
      const secret = await this.deps.rest.get<SecretObject>(Resources.Secret, this.namespace, ref.name);
      const raw = secret.data?.[ref.key ?? defaultKey];
      if (raw === undefined) return undefined;
      return {
        value: Buffer.from(raw, 'base64').toString('utf8').trim(),
        version: `${ref.name}@${secret.metadata?.resourceVersion ?? ''}`,
      };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  private async inputs(stateType: string): Promise<AuthInputs> {
    const spec = this.account.spec;
    const inputs: AuthInputs = {
      type: spec.type,
      loginMethod: spec.loginMethod === 'QR' ? 'QR' : 'Code',
      phoneNumber: spec.phoneNumber,
    };
    if (stateType === 'authorizationStateWaitPhoneNumber' && spec.type === 'Bot')
      inputs.botToken = await this.secretValue(spec.botTokenSecretRef, 'token');
    if (stateType === 'authorizationStateWaitPassword')
      inputs.password = await this.secretValue(spec.passwordSecretRef, 'password');
    if (stateType === 'authorizationStateWaitCode')
      inputs.code = await this.secretValue({ name: loginCodeSecretName(this.name) }, 'code');
    return inputs;
  }

  private async apiCredentials(): Promise<{ apiId: number; apiHash: string }> {
    const ref = this.account.spec.apiCredentialsSecretRef;
    const id = await this.secretValue({ name: ref.name, key: ref.apiIdKey }, 'api_id');
    const hash = await this.secretValue({ name: ref.name, key: ref.apiHashKey }, 'api_hash');
    const apiId = Number(id?.value);
    if (!Number.isInteger(apiId) || apiId <= 0 || !hash?.value)
      throw new Error(
        `Secret ${ref.name} (spec.apiCredentialsSecretRef) needs a numeric api_id and an api_hash`,
      );
    return { apiId, apiHash: hash.value };
  }

  /** Runs one step of the login for the current state; never two at a time. */
  private async drive(
    state: TdObject | undefined = this.client?.authorizationState as TdObject | undefined,
  ): Promise<void> {
    if (!state || !this.client || this.stopped || this.driving) return;
    this.driving = true;
    clearTimeout(this.pollTimer);
    try {
      const inputs = await this.inputs(state['@type']);
      const credentials =
        state['@type'] === 'authorizationStateWaitTdlibParameters' ? await this.apiCredentials() : undefined;
      const action = nextAuthAction(state, inputs, this.attempted, () => ({
        databaseDirectory: this.databaseDir(),
        filesDirectory: join(this.deps.dataDir, this.namespace, this.name, 'files'),
        databaseEncryptionKey: this.key?.toString('base64') ?? '',
        apiId: credentials?.apiId ?? 0,
        apiHash: credentials?.apiHash ?? '',
        applicationVersion: this.deps.applicationVersion,
      }));
      if (action.kind === 'wait') {
        if (this.view.authReason !== action.reason && !this.isErrorReason(this.view.authReason)) {
          this.view.authReason = action.reason;
          this.view.authMessage = action.message;
          this.changed();
        }
        this.pollTimer = setTimeout(
          () => void this.drive(),
          state['@type'] === 'authorizationStateWaitCode' ? 1000 : 5000,
        );
        this.pollTimer.unref();
        return;
      }
      if (action.kind !== 'send') return;
      if (action.attempt) this.attempted.add(action.attempt);
      if (action.request['@type'] === 'checkAuthenticationCode') await this.consumeLoginCode();
      try {
        await this.client.invokeUnchecked(action.request);
      } catch (error) {
        if (!(error instanceof TdError)) throw error;
        const retryAfter = transientRetryAfterMs(error);
        if (retryAfter !== undefined) {
          // A flood wait or a server error says nothing about the input: try the same input again later.
          if (action.attempt) this.attempted.delete(action.attempt);
          this.logger.info({ code: error.code, retryInMs: retryAfter }, 'login step throttled; retrying');
          this.pollTimer = setTimeout(() => void this.drive(), retryAfter);
          this.pollTimer.unref();
          return;
        }
        // TDLib's message is the reason users search for (PHONE_CODE_INVALID, PASSWORD_HASH_INVALID, ...).
        this.view.authReason =
          error.message.replace(/[^A-Za-z0-9_]/g, '_').slice(0, 64) || `Error${error.code}`;
        this.view.authMessage = `${String(action.request['@type'])} failed: ${error.code} ${error.message}; waiting for a new input`;
        this.deps.events.event(
          this.account as unknown as ApiObject,
          'Warning',
          this.view.authReason,
          this.view.authMessage,
        );
        this.changed();
        this.pollTimer = setTimeout(() => void this.drive(), 1000);
        this.pollTimer.unref();
      }
    } catch (error) {
      this.logger.warn(
        { err: error instanceof Error ? error.message : String(error) },
        'login step failed; retrying',
      );
      this.pollTimer = setTimeout(() => void this.drive(), 5000);
      this.pollTimer.unref();
    } finally {
      this.driving = false;
    }
  }

  private isErrorReason(reason: string | undefined): boolean {
    return reason !== undefined && /^[A-Z0-9_]+$/.test(reason);
  }

  /** The login-code Secret is single-use: delete it before the code is tried, so it is never tried twice. */
  private async consumeLoginCode(): Promise<void> {
    await this.deps.rest
      .delete(Resources.Secret, this.namespace, loginCodeSecretName(this.name))
      .catch((error: unknown) => {
        if (!isNotFound(error)) throw error;
      });
  }

  /** deletionPolicy LogOut: end the Telegram session, then forget the backup. */
  async logOut(): Promise<void> {
    await this.start();
    const client = this.client;
    if (!client || client.state !== 'open') return;
    try {
      await client.invokeUnchecked({ '@type': 'logOut' });
    } catch (error) {
      this.logger.warn({ err: error instanceof Error ? error.message : String(error) }, 'logOut failed');
    }
    await client.closed;
    rmSync(join(this.deps.dataDir, this.namespace, this.name), { recursive: true, force: true });
    this.view.authorizationState = 'LoggedOut';
    this.view.user = undefined;
    this.view.stoppedReason = 'LoggedOut';
    this.changed();
    await this.release();
  }

  /** Closes TDLib, backs the session up (unless the Lease was lost: another pod may own it now), releases. */
  async stop(reason: StopReason): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.pollTimer);
    this.proxies?.stop();
    const client = this.client;
    if (client && client.state !== 'closed') {
      await client.close().catch((error: unknown) => {
        this.logger.warn(
          { err: error instanceof Error ? error.message : String(error) },
          'closing the client failed',
        );
      });
    }
    if (reason !== 'lease-lost' && this.view.authorizationState === 'Ready') {
      await this.backupSession().catch((error: unknown) => {
        this.logger.error(
          { err: error instanceof Error ? error.message : String(error) },
          'session backup failed',
        );
      });
    }
    if (reason === 'suspended') {
      this.view.stoppedReason = 'Suspended';
      this.view.connectionState = undefined;
      this.changed();
    }
    if (reason !== 'lease-lost') await this.release();
  }

  private async release(): Promise<void> {
    await this.fence?.release();
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
