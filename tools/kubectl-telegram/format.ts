/** How `kubectl telegram` describes a TelegramAccount to a person. Never prints secrets or codes. */
import { ConditionType, type Condition, type TelegramAccount } from '../../crds/index.js';
import { maskPhone } from '../../operator/kube/logging.js';

export function conditionOf(account: TelegramAccount, type: string): Condition | undefined {
  return account.status?.conditions?.find((c) => c.type === type);
}

export function ref(account: TelegramAccount): string {
  return `${account.metadata.namespace ?? ''}/${account.metadata.name ?? ''}`;
}

function conditionText(c: Condition | undefined, type: string): string {
  if (!c) return `${type}=(not reported)`;
  const detail = [c.reason, c.message].filter((s) => s && s.length > 0).join(': ');
  return detail ? `${type}=${c.status} (${detail})` : `${type}=${c.status}`;
}

/** "Alice Smith (@alice, id 12345)", or undefined before the runtime reported the user. */
export function userText(account: TelegramAccount): string | undefined {
  const user = account.status?.user;
  if (!user) return undefined;
  const name = [user.firstName, user.lastName].filter((s) => s && s.length > 0).join(' ');
  const details = [user.username ? `@${user.username}` : undefined, `id ${user.id}`]
    .filter(Boolean)
    .join(', ');
  return name ? `${name} (${details})` : details;
}

/** One line: the state at a glance (used by login before it acts). */
export function summary(account: TelegramAccount): string {
  const state = account.status?.authorizationState ?? '(not reported yet)';
  let line =
    `TelegramAccount ${ref(account)} (${account.spec.type}): authorization ${state}, ` +
    conditionText(conditionOf(account, ConditionType.Ready), 'Ready');
  if (state === 'WaitCode' && account.status?.codeDelivery) {
    line += `\nThe code was sent via ${account.status.codeDelivery}.`;
  }
  return line;
}

/** A few lines for `kubectl telegram status`. */
export function describe(account: TelegramAccount): string {
  const s = account.status ?? {};
  const rows: Array<[string, string | undefined]> = [
    ['Account', `${ref(account)}`],
    ['Type', account.spec.type],
    ['Phone', account.spec.phoneNumber ? maskPhone(account.spec.phoneNumber) : undefined],
    ['Login method', account.spec.type === 'User' ? (account.spec.loginMethod ?? 'Code') : undefined],
    ['Suspended', account.spec.suspend ? 'yes' : undefined],
    [
      'Deleting',
      account.metadata.deletionTimestamp ? `since ${account.metadata.deletionTimestamp}` : undefined,
    ],
    ['Placement', s.placement ? `pool ${s.placement.pool}, pod ${s.placement.pod}` : '(not placed yet)'],
    ['Authorization', s.authorizationState ?? '(not reported yet)'],
    ['Code sent via', s.authorizationState === 'WaitCode' ? s.codeDelivery : undefined],
    ['QR login link', s.authorizationState === 'WaitOtherDeviceConfirmation' ? s.qrCodeLink : undefined],
    ['User', userText(account)],
    ['Connection', s.connectionState],
    ['Proxy', s.proxy ? [s.proxy.inUse, s.proxy.message].filter(Boolean).join(': ') : undefined],
    [
      'Session backup',
      s.session?.lastBackupTime
        ? `${s.session.backupSecretName ?? ''} at ${s.session.lastBackupTime}`
        : undefined,
    ],
  ];
  const width = Math.max(...rows.map(([k]) => k.length)) + 2;
  const lines = rows
    .filter((row): row is [string, string] => row[1] !== undefined && row[1] !== '')
    .map(([k, v]) => `${`${k}:`.padEnd(width)}${v}`);
  const conditions = s.conditions ?? [];
  if (conditions.length > 0) {
    lines.push('Conditions:');
    const typeWidth = Math.max(...conditions.map((c) => c.type.length)) + 2;
    const reasonWidth = Math.max(...conditions.map((c) => c.reason.length)) + 2;
    for (const c of conditions) {
      lines.push(
        `  ${c.type.padEnd(typeWidth)}${c.status.padEnd(8)}${c.reason.padEnd(reasonWidth)}${c.message}`.trimEnd(),
      );
    }
  }
  const hint = nextStep(account);
  if (hint) lines.push(`Next step: ${hint}`);
  return lines.join('\n');
}

/** What the user should do now, if anything. */
export function nextStep(account: TelegramAccount): string | undefined {
  const name = account.metadata.name ?? '';
  const ns = account.metadata.namespace ?? '';
  if (account.metadata.deletionTimestamp) return undefined;
  if (account.spec.suspend)
    return `resume it: kubectl patch tga ${name} -n ${ns} --type merge -p '{"spec":{"suspend":false}}'`;
  switch (account.status?.authorizationState) {
    case 'WaitCode':
      return `enter the code Telegram sent: kubectl telegram login ${name} -n ${ns}`;
    case 'WaitOtherDeviceConfirmation':
      return 'confirm the QR login link above from a device where you are logged in';
    case 'WaitPassword':
      return account.spec.passwordSecretRef
        ? undefined
        : 'the account has two-step verification: set spec.passwordSecretRef to a Secret holding the password';
    default:
      return undefined;
  }
}
