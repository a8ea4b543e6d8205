import type { Condition, TelegramAccount } from '../../../crds/index.js';
import {
  desiredOperatorStatus,
  operatorStatusCurrent,
  type PodHealth,
  type StatusFacts,
} from '../../../operator/pool/account-status.js';
import {
  desiredRuntimeStatus,
  withReady,
  type HostedView,
  type RuntimeStatus,
} from '../../../runtime/hosting/status.js';

const PLACED = new Date('2026-11-28T11:00:00Z');
const NOW = new Date('2026-11-28T12:00:00Z');
const POD = 'tdlib-runtime-default-0';

/** An account as the operator leaves it when it places it on POD, before the pod reports anything. */
function placed(
  spec: Partial<TelegramAccount['spec']> = {},
  metadata: Partial<TelegramAccount['metadata']> = {},
): TelegramAccount {
  const account: TelegramAccount = {
    apiVersion: 'telegram.tdlib-operator.dev/v1alpha1',
    kind: 'TelegramAccount',
    metadata: { name: 'a', namespace: 'n', generation: 3, ...metadata },
    spec: { type: 'Bot', apiCredentialsSecretRef: { name: 'api' }, ...spec },
  };
  const operator = desiredOperatorStatus(account, facts(), PLACED);
  return { ...account, status: { ...operator } };
}

function facts(health: PodHealth = { state: 'alive' }): StatusFacts {
  return {
    pool: 'default',
    inputs: { ok: true },
    outcome: { pod: POD },
    podHealth: (pod) => (pod === POD ? health : undefined),
  };
}

/** What server-side apply makes of the runtime's apply: its fields set, conditions merged by type. */
function applied(account: TelegramAccount, status: RuntimeStatus): TelegramAccount {
  const byType = new Map<string, Condition>();
  for (const c of account.status?.conditions ?? []) byType.set(c.type, c);
  for (const c of status.conditions) byType.set(c.type, c);
  return { ...account, status: { ...account.status, ...status, conditions: [...byType.values()] } };
}

/** The hosting pod's report on `account`, as its status writer computes it, applied. */
function reported(account: TelegramAccount, view: HostedView): TelegramAccount {
  const status = withReady(desiredRuntimeStatus(view, account.status?.conditions, NOW, POD), account, NOW);
  return applied(account, status);
}

const ready = (account: TelegramAccount): Condition | undefined =>
  account.status?.conditions?.find((c) => c.type === 'Ready');

const operatorWrites = (account: TelegramAccount, health?: PodHealth): boolean =>
  !operatorStatusCurrent(account, desiredOperatorStatus(account, facts(health), NOW));

describe('withReady: the Ready a hosting pod writes is the one the operator would', () => {
  it('before any report the operator wrote Ready Unknown (WaitingForRuntime); the first report replaces it', () => {
    const before = placed();
    expect(ready(before)).toMatchObject({ status: 'Unknown', reason: 'WaitingForRuntime' });
    const after = reported(before, {
      generation: 3,
      authorizationState: 'Ready',
      connectionState: 'Ready',
      user: { id: 1, username: 'bot', isBot: true },
    });
    expect(ready(after)).toMatchObject({
      status: 'True',
      reason: 'Ready',
      message: `logged in and connected on runtime pod ${POD}`,
      observedGeneration: 3,
      lastTransitionTime: '2026-11-28T12:00:00Z',
    });
    // The operator, knowing the pod alive, finds the status current: the start cost one status apply.
    expect(operatorWrites(after)).toBe(false);
  });

  it.each<
    [string, Partial<TelegramAccount['spec']>, Partial<TelegramAccount['metadata']>, HostedView, string]
  >([
    [
      'waiting for a login code',
      { type: 'User' },
      {},
      { generation: 3, authorizationState: 'WaitCode', authReason: 'WaitCode' },
      'WaitCode',
    ],
    [
      'logged in, not connected',
      {},
      {},
      { generation: 3, authorizationState: 'Ready', connectionState: 'Connecting' },
      'Connecting',
    ],
    [
      'suspended',
      { suspend: true },
      {},
      { generation: 3, authorizationState: 'Ready', stoppedReason: 'Suspended' },
      'Suspended',
    ],
    [
      'being deleted',
      {},
      { deletionTimestamp: NOW.toISOString() },
      { generation: 3, authorizationState: 'Ready', connectionState: 'Ready' },
      'Deleting',
    ],
  ])(
    '%s: Ready False as the operator derives it, so it writes nothing',
    (_case, spec, metadata, view, reason) => {
      const after = reported(placed(spec, metadata), view);
      expect(ready(after)).toMatchObject({ status: 'False', reason });
      expect(operatorWrites(after)).toBe(false);
    },
  );

  it("carries the generation the pod acted on, not the account's newer one", () => {
    const after = reported(placed({}, { generation: 4 }), {
      generation: 3,
      authorizationState: 'Ready',
      connectionState: 'Ready',
    });
    expect(ready(after)).toMatchObject({ status: 'True', observedGeneration: 3 });
    expect(operatorWrites(after)).toBe(false);
  });

  it('where the operator knows more (the pod declared dead), it writes Ready Unknown over the pod’s', () => {
    const after = reported(placed(), {
      generation: 3,
      authorizationState: 'Ready',
      connectionState: 'Ready',
    });
    const dead: PodHealth = { state: 'dead', why: 'heartbeat Lease not renewed for 40s' };
    expect(operatorWrites(after, dead)).toBe(true);
    const desired = desiredOperatorStatus(after, facts(dead), NOW);
    expect(desired.conditions.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'Unknown',
      reason: 'RuntimeLost',
    });
  });

  it('keeps the transition time while Ready stays as it was', () => {
    const view: HostedView = { generation: 3, authorizationState: 'Ready', connectionState: 'Ready' };
    const first = reported(placed(), view);
    const status = withReady(
      desiredRuntimeStatus(view, first.status?.conditions, new Date('2026-11-28T13:00:00Z'), POD),
      first,
      new Date('2026-11-28T13:00:00Z'),
    );
    expect(status.conditions.find((c) => c.type === 'Ready')?.lastTransitionTime).toBe(
      '2026-11-28T12:00:00Z',
    );
  });
});
