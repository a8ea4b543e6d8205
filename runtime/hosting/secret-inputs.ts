/**
 * Reads what an account's Secrets hold for its TDLib client: the session key, the API credentials, the
 * login inputs (bot token, 2FA password, login code) and proxy credentials. Every failure names the Secret,
 * the key and the spec field to fix, and never the value.
 */
import {
  SESSION_KEY_BYTES,
  SESSION_SECRET_BACKUP_FIELD,
  SESSION_SECRET_KEY_FIELD,
  backupKeyMissingMessage,
  encryptionKeySecretName,
  loginCodeSecretName,
  sessionSecretName,
  type TelegramAccount,
} from '../../crds/index.js';
import type { RestClient } from '../../operator/kube/client.js';
import { isApiError, isNotFound } from '../../operator/kube/errors.js';
import { Resources, type ApiObject } from '../../operator/kube/resource.js';
import { abortable } from '../../operator/kube/util.js';
import type { AuthInputs, VersionedInput } from '../auth/driver.js';

export type SecretObject = ApiObject & { data?: Record<string, string> };

/** An input problem a user must fix: `reason` for the condition, `message` naming Secret, key and field. */
export class InputError extends Error {
  override readonly name = 'InputError';

  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

/** The key, and the session Secret as read for it (its backup is restored from the same read). */
export interface SessionKey {
  key: Buffer;
  sessionSecret: SecretObject | undefined;
}

export class SecretInputs {
  /**
   * Reads in flight by Secret name. A thousand accounts starting at once mostly share one API credentials
   * Secret: callers that ask while a read of it is under way take its answer instead of a GET each.
   */
  private readonly reading = new Map<string, Promise<SecretObject | undefined>>();

  constructor(
    private readonly rest: RestClient,
    private readonly namespace: string,
  ) {}

  private read(name: string, signal?: AbortSignal): Promise<SecretObject | undefined> {
    let shared = this.reading.get(name);
    if (!shared) {
      // Not bound to the first caller's signal: its abort must not fail the others (the client times out).
      const started = this.fetch(name).finally(() => {
        if (this.reading.get(name) === started) this.reading.delete(name);
      });
      this.reading.set(name, started);
      shared = started;
    }
    return abortable(shared, signal);
  }

  private async fetch(name: string): Promise<SecretObject | undefined> {
    try {
      return await this.rest.get<SecretObject>(Resources.Secret, this.namespace, name);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  private async readGranted(name: string, signal?: AbortSignal): Promise<SecretObject | undefined> {
    try {
      return await this.read(name, signal);
    } catch (error) {
      if (isApiError(error, 403)) return undefined;
      throw error;
    }
  }

  /**
   * The account's 32-byte database/backup key: in its session Secret, or (accounts made by an earlier
   * version) in its separate key Secret.
   */
  async sessionKey(account: string, signal?: AbortSignal): Promise<SessionKey> {
    const sessionName = sessionSecretName(account);
    const session = await this.read(sessionName, signal);
    let source = sessionName;
    let encoded = session?.data?.[SESSION_SECRET_KEY_FIELD];
    // Only an earlier version's account has a session Secret without a key; the pool's Role grants its key
    // Secret only where one exists, so a refusal means there is none.
    const legacyName = encryptionKeySecretName(account);
    const legacy = session && encoded === undefined ? await this.readGranted(legacyName, signal) : undefined;
    if (legacy) {
      source = legacyName;
      encoded = legacy.data?.[SESSION_SECRET_KEY_FIELD];
    }
    // The operator reads the Secret once this is reported: it adds a key unless a backup needs the old one.
    if (encoded === undefined && !legacy && session?.data?.[SESSION_SECRET_BACKUP_FIELD] !== undefined)
      throw new InputError('SessionKeyMissing', backupKeyMissingMessage(account));
    if (encoded === undefined)
      throw new InputError(
        'SessionKeyMissing',
        `Secret ${sessionName} has no key under "${SESSION_SECRET_KEY_FIELD}" yet (or does not exist), and there is no Secret ${legacyName}; the operator adds one only while no session backup exists`,
      );
    const key = Buffer.from(encoded ?? '', 'base64');
    if (key.length !== SESSION_KEY_BYTES)
      throw new InputError(
        'SessionKeyMissing',
        `Secret ${source} has no ${SESSION_KEY_BYTES}-byte key under "${SESSION_SECRET_KEY_FIELD}"; restore it from your backup`,
      );
    return { key, sessionSecret: session };
  }

  async value(
    ref: { name: string; key?: string } | undefined,
    defaultKey: string,
    signal?: AbortSignal,
  ): Promise<VersionedInput | undefined> {
    if (!ref) return undefined;
    return valueOf(await this.read(ref.name, signal), ref.name, ref.key ?? defaultKey);
  }

  /** All keys of a Secret as text (proxy credentials), or undefined if it does not exist. */
  async all(name: string, signal?: AbortSignal): Promise<Record<string, string> | undefined> {
    const secret = await this.read(name, signal);
    if (!secret) return undefined;
    return Object.fromEntries(
      Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]),
    );
  }

  /** api_id and api_hash, with the version they were read at (a changed Secret restarts the client). */
  async apiCredentials(
    account: TelegramAccount,
    signal?: AbortSignal,
  ): Promise<{ apiId: number; apiHash: string; version: string }> {
    const ref = account.spec.apiCredentialsSecretRef;
    const idKey = ref.apiIdKey ?? 'api_id';
    const hashKey = ref.apiHashKey ?? 'api_hash';
    const secret = await this.read(ref.name, signal);
    const id = valueOf(secret, ref.name, idKey);
    const hash = valueOf(secret, ref.name, hashKey);
    const apiId = Number(id?.value);
    if (!id || !Number.isInteger(apiId) || apiId <= 0 || apiId > 2 ** 31 - 1)
      throw new InputError(
        'ApiCredentialsInvalid',
        `Secret ${ref.name} key ${idKey} (spec.apiCredentialsSecretRef) must hold the numeric api_id from my.telegram.org`,
      );
    if (!hash?.value)
      throw new InputError(
        'ApiCredentialsInvalid',
        `Secret ${ref.name} key ${hashKey} (spec.apiCredentialsSecretRef) must hold the api_hash from my.telegram.org`,
      );
    return { apiId, apiHash: hash.value, version: `${id.version}` };
  }

  /** What the auth driver needs in `stateType`, read only when that state needs it. */
  async authInputs(account: TelegramAccount, stateType: string, signal?: AbortSignal): Promise<AuthInputs> {
    const spec = account.spec;
    const inputs: AuthInputs = {
      type: spec.type,
      loginMethod: spec.loginMethod === 'QR' ? 'QR' : 'Code',
      phoneNumber: spec.phoneNumber,
    };
    if (stateType === 'authorizationStateWaitPhoneNumber' && spec.type === 'Bot')
      inputs.botToken = await this.value(spec.botTokenSecretRef, 'token', signal);
    if (stateType === 'authorizationStateWaitPassword')
      inputs.password = await this.value(spec.passwordSecretRef, 'password', signal);
    if (stateType === 'authorizationStateWaitCode')
      inputs.code = await this.value(
        { name: loginCodeSecretName(account.metadata.name ?? '') },
        'code',
        signal,
      );
    return inputs;
  }

  /** The login-code Secret is single-use: deleted before the code is tried, so it is never tried twice. */
  async consumeLoginCode(account: string, signal?: AbortSignal): Promise<void> {
    try {
      await this.rest.delete(Resources.Secret, this.namespace, loginCodeSecretName(account), { signal });
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }
}

/** One key of a Secret as trimmed text, with the version it was read at. */
function valueOf(secret: SecretObject | undefined, name: string, key: string): VersionedInput | undefined {
  const raw = secret?.data?.[key];
  if (!secret || raw === undefined) return undefined;
  return {
    value: Buffer.from(raw, 'base64').toString('utf8').trim(),
    version: `${name}@${secret.metadata?.resourceVersion ?? ''}`,
  };
}
