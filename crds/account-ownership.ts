/**
 * What a TelegramAccount's per-account objects (session Secret, fence Lease) are collected with: the account,
 * only when deleting it must end the session too (deletionPolicy LogOut). Under KeepSession they outlive the
 * account, so a TelegramAccount of the same name uses them again. The operator makes the Secret and the
 * runtime the Lease; both ask here.
 */
import type { TelegramAccount } from './telegram-account.js';

export interface AccountOwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
}

export const logsOutOnDelete = (account: TelegramAccount): boolean =>
  (account.spec.deletionPolicy ?? 'KeepSession') === 'LogOut';

/** Owner reference to the account, only when deleting it must delete the object too (LogOut). */
export function ownedBy(account: TelegramAccount): { ownerReferences?: AccountOwnerReference[] } {
  if (!logsOutOnDelete(account)) return {};
  return {
    ownerReferences: [
      {
        apiVersion: account.apiVersion,
        kind: account.kind,
        name: account.metadata.name ?? '',
        uid: account.metadata.uid ?? '',
      },
    ],
  };
}
