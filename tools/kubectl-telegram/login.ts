/**
 * `kubectl telegram login`: the one interactive step of a User login. The plugin never talks to Telegram;
 * it reads the account's status, and for a code hands it to the runtime through a short-lived Secret
 * `<account>-login-code` (owned by the account, so it never outlives it). The runtime reads `code`,
 * deletes the Secret, calls checkAuthenticationCode and writes the outcome into status, which is what the
 * plugin waits for and reports.
 *
 * The code only exists in memory and in that Secret: it is never printed, logged or put in an error.
 */
import {
  API_VERSION,
  ConditionType,
  TELEGRAM_ACCOUNT_KIND,
  isPasswordFailureReason,
  isTdlibErrorReason,
  type ObjectMeta,
  type TelegramAccount,
} from '../../crds/index.js';
import { isAlreadyExists, isConflict, isNotFound, type RestClient } from '../../operator/kube/client.js';
import { Resources, type ApiObject } from '../../operator/kube/resource.js';
import { LABEL_ACCOUNT, LABEL_MANAGED_BY, loginCodeSecretName } from '../../crds/naming.js';
import { TelegramAccountResource } from '../../crds/resources.js';
import { CliError, ExitCode } from './errors.js';
import { conditionOf, ref, summary, userText } from './format.js';
import { ObjectObserver, WaitTimeoutError } from './observe.js';
import { isInteractive, normalizeCode, readHidden, readLine, type Io } from './prompt.js';

/** The field manager and app.kubernetes.io/managed-by value of what the plugin creates. */
export const PLUGIN_NAME = 'kubectl-telegram';
/** Codes asked for in one interactive run before giving up. */
export const MAX_CODE_ATTEMPTS = 3;
/**
 * After the runtime consumed the code, how long to wait for status to move before taking the status as
 * it stands as the answer (a second identical rejection changes nothing a watch could see).
 */
export const RESULT_SETTLE_MS = 20_000;

export interface LoginOptions {
  namespace: string;
  name: string;
  code?: string;
  timeoutMs: number;
  settleMs?: number;
}

/** Async clean-up steps run on exit paths and on SIGINT/SIGTERM (delete our pending Secret, stop watches). */
export class Cleanups {
  private readonly steps = new Set<() => Promise<void>>();

  add(step: () => Promise<void>): () => void {
    this.steps.add(step);
    return () => this.steps.delete(step);
  }

  async run(): Promise<void> {
    const steps = [...this.steps];
    this.steps.clear();
    await Promise.all(steps.map((step) => step().catch(() => undefined)));
  }
}

interface CodeSecret extends ApiObject {
  metadata?: ObjectMeta;
  type?: string;
  data?: Record<string, string>;
}

class Deadline {
  at: number;
  constructor(readonly ms: number) {
    this.at = Date.now() + ms;
  }
  /** Time spent waiting for a person does not count against the wait for the cluster. */
  extend(ms: number): void {
    this.at += ms;
  }
}

/** Reads the account; a missing one is ExitCode.NotFound with a hint. */
export async function readAccount(
  client: RestClient,
  namespace: string,
  name: string,
): Promise<TelegramAccount> {
  try {
    return await client.get<TelegramAccount>(TelegramAccountResource, namespace, name);
  } catch (error) {
    if (isNotFound(error)) {
      throw new CliError(
        ExitCode.NotFound,
        `TelegramAccount ${namespace}/${name} not found (kubectl get telegramaccounts -n ${namespace} lists them)`,
      );
    }
    throw error;
  }
}

/** Refuses accounts a login makes no sense for: being deleted, Bot, suspended. */
function assertLoginApplies(account: TelegramAccount): void {
  if (account.metadata.deletionTimestamp) {
    throw new CliError(
      ExitCode.Deleting,
      `TelegramAccount ${ref(account)} is being deleted (since ${account.metadata.deletionTimestamp}); nothing to log in`,
    );
  }
  if (account.spec.type === 'Bot') {
    throw new CliError(
      ExitCode.NotApplicable,
      `TelegramAccount ${ref(account)} is a Bot account: it logs in with the token from spec.botTokenSecretRef; no login needed`,
    );
  }
  if (account.spec.suspend) {
    throw new CliError(
      ExitCode.NotApplicable,
      `TelegramAccount ${ref(account)} is suspended (spec.suspend: true): resume it first, then log in`,
    );
  }
}

/**
 * What the verdict on a code changes: the state, the Authorized condition, the code delivery. Not Ready,
 * which also moves with the connection and would end the wait before the verdict is in.
 */
function verdictFingerprint(account: TelegramAccount): string {
  const c = conditionOf(account, ConditionType.Authorized);
  return JSON.stringify([
    account.metadata.deletionTimestamp ?? null,
    account.status?.authorizationState ?? null,
    account.status?.codeDelivery ?? null,
    c ? [c.status, c.reason, c.message, c.lastTransitionTime] : null,
  ]);
}

/** What a person can observe changing; a wait ends when this does. */
function fingerprint(account: TelegramAccount): string {
  const s = account.status ?? {};
  const cond = (type: string) => {
    const c = conditionOf(account, type);
    return c ? [c.status, c.reason, c.message, c.lastTransitionTime] : null;
  };
  return JSON.stringify([
    account.metadata.deletionTimestamp ?? null,
    account.spec.suspend ?? false,
    s.authorizationState ?? null,
    s.codeDelivery ?? null,
    s.qrCodeLink ?? null,
    s.user ?? null,
    cond(ConditionType.Authorized),
    cond(ConditionType.Ready),
  ]);
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 === 0 ? `${m}m` : `${m}m${s % 60}s`;
  return m % 60 === 0 ? `${Math.floor(m / 60)}h` : `${Math.floor(m / 60)}h${m % 60}m`;
}

/** Runs the login; resolves with the exit code or throws CliError. */
export async function login(
  client: RestClient,
  io: Io,
  options: LoginOptions,
  cleanups: Cleanups,
): Promise<ExitCode> {
  const { namespace, name } = options;
  const say = (text: string) => io.stdout.write(`${text}\n`);
  const warn = (text: string) => io.stderr.write(`${text}\n`);
  const shown = new Set<string>();
  const once = (key: string, text: string) => {
    if (shown.has(key)) return;
    shown.add(key);
    say(text);
  };

  const initial = await readAccount(client, namespace, name);
  say(summary(initial));
  assertLoginApplies(initial);

  const interactive = options.code === undefined && isInteractive(io);
  const deadline = new Deadline(options.timeoutMs);
  const observer = new ObjectObserver<TelegramAccount>(
    client,
    TelegramAccountResource,
    namespace,
    name,
  ).start(initial);
  const dropObserver = cleanups.add(() => observer.stop());

  const timeout = (account: TelegramAccount, waitingFor: string): CliError => {
    const authorized = conditionOf(account, ConditionType.Authorized);
    const detail = authorized
      ? `; Authorized=${authorized.status} (${authorized.reason}: ${authorized.message})`
      : '';
    return new CliError(
      ExitCode.Timeout,
      `timed out after ${formatDuration(deadline.ms)} waiting for ${waitingFor}; authorization state is ` +
        `${account.status?.authorizationState ?? '(not reported)'}${detail}`,
    );
  };

  /** Waits until the account changes in a way a person would notice (or disappears). */
  const waitForChange = async (current: TelegramAccount, waitingFor: string): Promise<void> => {
    const seen = fingerprint(current);
    try {
      await observer.until(
        (s) => (s === null || fingerprint(s) !== seen ? true : undefined),
        deadline.at,
        waitingFor,
      );
    } catch (error) {
      if (error instanceof WaitTimeoutError) throw timeout(current, waitingFor);
      throw error;
    }
  };

  const obtainCode = async (attempt: number): Promise<string> => {
    if (attempt === 0 && options.code !== undefined) return normalizeCode(options.code);
    if (!interactive) return normalizeCode(await readLine(io));
    for (;;) {
      const started = Date.now();
      const prompt =
        attempt === 0 ? 'Login code: ' : `Login code (attempt ${attempt + 1} of ${MAX_CODE_ATTEMPTS}): `;
      const raw = await readHidden(io, prompt);
      deadline.extend(Date.now() - started);
      try {
        return normalizeCode(raw);
      } catch (error) {
        if (!(error instanceof CliError)) throw error;
        warn(error.message);
      }
    }
  };

  /** Hands one code over and waits for the runtime's verdict; prints it. */
  const submitCode = async (code: string, before: TelegramAccount): Promise<void> => {
    const secretName = loginCodeSecretName(name);
    const created = await putCodeSecret(client, before, code, say);
    const uid = created.metadata?.uid;
    const removeSecret = async () => {
      await client
        .delete(Resources.Secret, namespace, secretName, uid ? { preconditions: { uid } } : {})
        .catch(() => undefined);
    };
    const dropRemove = cleanups.add(removeSecret);
    say(`Code handed to the runtime (Secret ${namespace}/${secretName}); waiting for it to be used...`);

    const secrets = new ObjectObserver<CodeSecret>(client, Resources.Secret, namespace, secretName).start(
      created,
    );
    try {
      await secrets.until(
        (s) => (s === null || s.metadata?.uid !== uid ? true : undefined),
        deadline.at,
        `the runtime to pick up the code from Secret ${secretName}`,
      );
    } catch (error) {
      await removeSecret();
      if (!(error instanceof WaitTimeoutError)) throw error;
      const pod = before.status?.placement?.pod;
      throw new CliError(
        ExitCode.Timeout,
        `timed out after ${formatDuration(deadline.ms)}: the runtime did not pick up the code from Secret ` +
          `${secretName} ` +
          (pod
            ? `(the account is placed on pod ${pod}: is it running?)`
            : '(the account is not placed on a runtime pod: status.placement is empty)') +
          '; the Secret was deleted, run the command again',
      );
    } finally {
      dropRemove();
      await secrets.stop();
    }

    const seen = verdictFingerprint(before);
    const settleAt = Math.min(deadline.at, Date.now() + (options.settleMs ?? RESULT_SETTLE_MS));
    let after: TelegramAccount | null;
    try {
      after = await observer.until(
        (s) => (s === null || verdictFingerprint(s) !== seen ? s : undefined),
        settleAt,
        'the result',
      );
    } catch (error) {
      if (!(error instanceof WaitTimeoutError)) throw error;
      if (Date.now() >= deadline.at) throw timeout(before, 'the runtime to report the result of the code');
      after = observer.latest() ?? null;
    }
    if (after === null) return;
    const state = after.status?.authorizationState;
    if (state === 'Ready' || state === 'WaitPassword') {
      say('Code accepted.');
      return;
    }
    if (state !== 'WaitCode') return;
    const authorized = conditionOf(after, ConditionType.Authorized);
    if (authorized && authorized.status !== 'True' && isTdlibErrorReason(authorized.reason)) {
      // TDLib's error as the reason: PHONE_CODE_INVALID, PHONE_CODE_EXPIRED, ...
      warn(`Telegram did not accept the code: ${authorized.reason}: ${authorized.message}`);
    } else {
      const detail = authorized
        ? ` (Authorized=${authorized.status}: ${authorized.reason}: ${authorized.message})`
        : '';
      warn(`The runtime used the code, but the account still waits for a code${detail}`);
    }
    const delivery = after.status?.codeDelivery;
    if (delivery && delivery !== before.status?.codeDelivery) say(`A new code was sent via ${delivery}.`);
  };

  let attempts = 0;
  try {
    for (;;) {
      const current = observer.latest();
      if (current === null)
        throw new CliError(ExitCode.NotFound, `TelegramAccount ${namespace}/${name} was deleted`);
      const account = current ?? initial;
      assertLoginApplies(account);
      const state = account.status?.authorizationState;
      switch (state) {
        case 'Ready': {
          const user = userText(account);
          const ready = conditionOf(account, ConditionType.Ready);
          const readyNote =
            ready && ready.status !== 'True'
              ? ` (Ready=${ready.status}: ${ready.reason}: ${ready.message})`
              : '';
          say(`Logged in: ${ref(account)} is authorized${user ? ` as ${user}` : ''}.${readyNote}`);
          return ExitCode.Ok;
        }
        case 'WaitCode': {
          if (attempts >= MAX_CODE_ATTEMPTS) {
            throw new CliError(
              ExitCode.Failed,
              `giving up after ${attempts} codes; run the command again to retry`,
            );
          }
          if (attempts > 0 && !interactive) {
            throw new CliError(
              ExitCode.Failed,
              'the code was not accepted; run the command again with the new code',
            );
          }
          if (attempts > 0 && account.status?.codeDelivery) {
            once(`delivery:${attempts}`, `Enter the code Telegram sent via ${account.status.codeDelivery}.`);
          }
          const code = await obtainCode(attempts);
          attempts++;
          const fresh = observer.latest();
          if (fresh === null) continue;
          const before = fresh ?? account;
          if (before.status?.authorizationState !== 'WaitCode') continue; // logged in meanwhile (QR, another run)
          await submitCode(code, before);
          continue;
        }
        case 'WaitPassword': {
          const secretRef = account.spec.passwordSecretRef;
          if (!secretRef) {
            throw new CliError(
              ExitCode.Failed,
              `TelegramAccount ${ref(account)} has two-step verification, but spec.passwordSecretRef is not set: ` +
                'store the password in a Secret and set spec.passwordSecretRef; the runtime then completes the ' +
                'login (the password is never typed into kubectl telegram)',
            );
          }
          once(
            'password',
            `Two-step verification: the runtime enters the password from spec.passwordSecretRef (Secret ` +
              `${secretRef.name}, key ${secretRef.key ?? 'password'}); waiting for Ready...`,
          );
          const authorized = conditionOf(account, ConditionType.Authorized);
          if (authorized && authorized.status === 'False' && isPasswordFailureReason(authorized.reason)) {
            throw new CliError(
              ExitCode.Failed,
              `Telegram did not accept the two-step verification password from Secret ${secretRef.name}: ` +
                `${authorized.reason}: ${authorized.message}`,
            );
          }
          await waitForChange(account, 'the runtime to complete two-step verification');
          break;
        }
        case 'WaitOtherDeviceConfirmation': {
          const link = account.status?.qrCodeLink;
          if (link) {
            const first = ![...shown].some((k) => k.startsWith('qr:'));
            once(
              `qr:${link}`,
              first
                ? 'Confirm this login from a device where you are logged in to Telegram (Settings > Devices > ' +
                    `Link Desktop Device, scan a QR code of this link, or open it there):\n  ${link}`
                : `The QR login link was renewed:\n  ${link}`,
            );
          } else {
            once('qr-pending', 'Waiting for the runtime to publish the QR login link (status.qrCodeLink)...');
          }
          await waitForChange(account, 'the QR login to be confirmed');
          break;
        }
        default: {
          const pod = account.status?.placement?.pod;
          once(
            `state:${state ?? ''}:${pod ?? ''}`,
            state
              ? `Waiting for the runtime: authorization state is ${state}...`
              : pod
                ? `Waiting for the runtime on pod ${pod} to start the login...`
                : 'Waiting for the operator to place the account on a runtime pod...',
          );
          await waitForChange(account, 'the runtime to ask for a code');
        }
      }
    }
  } finally {
    dropObserver();
    await observer.stop();
  }
}

/**
 * Creates `<account>-login-code` (type Opaque, data.code, labelled and owned by the account). A Secret of
 * that name left from an earlier run is replaced; it never holds more than the latest code.
 */
async function putCodeSecret(
  client: RestClient,
  account: TelegramAccount,
  code: string,
  say: (text: string) => void,
): Promise<CodeSecret> {
  const accountName = account.metadata.name ?? '';
  const namespace = account.metadata.namespace ?? '';
  const uid = account.metadata.uid;
  if (!uid) throw new CliError(ExitCode.Failed, `TelegramAccount ${ref(account)} has no metadata.uid`);
  const name = loginCodeSecretName(accountName);
  const body: CodeSecret = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name,
      namespace,
      labels: { [LABEL_ACCOUNT]: accountName, [LABEL_MANAGED_BY]: PLUGIN_NAME },
      ownerReferences: [{ apiVersion: API_VERSION, kind: TELEGRAM_ACCOUNT_KIND, name: accountName, uid }],
    },
    type: 'Opaque',
    data: { code: Buffer.from(code, 'utf8').toString('base64') },
  };
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      return await client.create<CodeSecret>(Resources.Secret, body, { fieldManager: PLUGIN_NAME });
    } catch (error) {
      if (!isAlreadyExists(error)) throw error;
    }
    const existing = await client
      .get<CodeSecret>(Resources.Secret, namespace, name)
      .catch((error: unknown) => {
        if (isNotFound(error)) return undefined;
        throw error;
      });
    if (!existing) continue;
    if (attempt === 0) say(`Replacing Secret ${name} left from an earlier attempt.`);
    try {
      if (existing.type === undefined || existing.type === 'Opaque') {
        return await client.replace<CodeSecret>(
          Resources.Secret,
          { ...body, metadata: { ...body.metadata, resourceVersion: existing.metadata?.resourceVersion } },
          { fieldManager: PLUGIN_NAME },
        );
      }
      // A different type cannot be changed in place: delete exactly that object and create ours.
      const existingUid = existing.metadata?.uid;
      await client.delete(
        Resources.Secret,
        namespace,
        name,
        existingUid ? { preconditions: { uid: existingUid } } : {},
      );
    } catch (error) {
      if (!isConflict(error) && !isNotFound(error)) throw error;
    }
  }
  throw new CliError(
    ExitCode.Failed,
    `could not write Secret ${namespace}/${name}: it keeps changing (is another kubectl telegram login running for this account?)`,
  );
}
