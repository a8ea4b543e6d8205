/**
 * From TelegramAccount.spec.updates to what the runtime delivers with: the kinds, the delivery policy and
 * the header that authenticates the account to its receiver. Pure: the sink's address and the header's
 * value are looked up by the caller (resolve.ts).
 */
import { DEFAULT_UPDATE_KINDS, type UpdatesSpec } from '../../crds/index.js';
import type { UpdateKind } from './cloudevents.js';
import { DEFAULT_POLICY, type DeliveryPolicy } from './delivery.js';

export const DEFAULT_AUTH_HEADER = 'X-Tdlib-Operator-Token';
export const DEFAULT_AUTH_KEY = 'token';

export function kindsOf(spec: UpdatesSpec): ReadonlySet<UpdateKind> {
  return new Set((spec.kinds ?? DEFAULT_UPDATE_KINDS) as UpdateKind[]);
}

export function policyOf(spec: UpdatesSpec): DeliveryPolicy {
  const life = spec.lifetimeSeconds ?? {};
  const messagesMs = (life.messages ?? DEFAULT_POLICY.lifetimeMs.MessageNew / 1000) * 1000;
  return {
    ...DEFAULT_POLICY,
    maxParallelChats: spec.maxParallelChats ?? DEFAULT_POLICY.maxParallelChats,
    initialBackoffMs: (spec.retry?.backoffSeconds ?? DEFAULT_POLICY.initialBackoffMs / 1000) * 1000,
    maxBackoffMs: (spec.retry?.maxBackoffSeconds ?? DEFAULT_POLICY.maxBackoffMs / 1000) * 1000,
    lifetimeMs: {
      MessageNew: messagesMs,
      MessageEdited: messagesMs,
      MessageDeleted: messagesMs,
      CallbackQuery: (life.callbackQueries ?? DEFAULT_POLICY.lifetimeMs.CallbackQuery / 1000) * 1000,
      ChatMember: (life.chatMembers ?? DEFAULT_POLICY.lifetimeMs.ChatMember / 1000) * 1000,
    },
  };
}
