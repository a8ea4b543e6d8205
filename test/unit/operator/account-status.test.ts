import type { Condition, TelegramAccount } from '../../../crds/index.js';
import {
  desiredOperatorStatus,
  operatorStatusCurrent,
  type PodHealth,
  type StatusFacts,
} from '../../../operator/pool/account-status.js';

const NOW = new Date('2026-11-28T12:00:00.000Z');
const POD = 'tdlib-runtime-default-0';
const OTHER = 'tdlib-runtime-default-1';

type Status = NonNullable<TelegramAccount['status']>;

const condition = (
  type: string,
  status: Condition['status'],
  reason: string,
  observedGeneration = 3,
): Condition => ({
  type,
  status,
  reason,
  message: `${type}: ${reason}`,
  observedGeneration,
  lastTransitionTime: '2026-11-28T11:00:00Z',
});

/** The runtime's report: hostedBy plus its two conditions. */
const report = (
  hostedBy: string | undefined,
  authorized?: [Condition['status'], string, number?],
  connected?: [Condition['status'], string, number?],
): Status => ({
  hostedBy,
  conditions: [
    ...(authorized ? [condition('Authorized', authorized[0], authorized[1], authorized[2])] : []),
    ...(connected ? [condition('Connected', connected[0], connected[1], connected[2])] : []),
  ],
});

const account = (
  status?: Status,
  spec: Partial<TelegramAccount['spec']> = {},
  metadata: Partial<TelegramAccount['metadata']> = {},
): TelegramAccount => ({
  apiVersion: 'telegram.tdlib-operator.dev/v1alpha1',
  kind: 'TelegramAccount',
  metadata: { name: 'a', namespace: 'n', generation: 3, ...metadata },
  spec: { type: 'Bot', apiCredentialsSecretRef: { name: 'api' }, ...spec },
  status,
});

const alive: PodHealth = { state: 'alive' };
const facts = (over: Partial<StatusFacts> = {}, health: Record<string, PodHealth> = {}): StatusFacts => ({
  pool: 'default',
  inputs: { ok: true },
  outcome: { pod: POD },
  podHealth: (pod) => health[pod] ?? (pod === POD ? alive : undefined),
  ...over,
});

const ready = (a: TelegramAccount, f: StatusFacts = facts()) =>
  desiredOperatorStatus(a, f, NOW).conditions.find((c) => c.type === 'Ready');
const scheduled = (a: TelegramAccount, f: StatusFacts = facts()) =>
  desiredOperatorStatus(a, f, NOW).conditions.find((c) => c.type === 'Scheduled');

const servedHere = report(POD, ['True', 'Authorized'], ['True', 'Ready']);

describe('desiredOperatorStatus: Ready is derived, never copied', () => {
  it('is True only when the placement pod reports logged in and connected', () => {
    expect(ready(account(servedHere))).toMatchObject({
      status: 'True',
      reason: 'Ready',
      message: `logged in and connected on runtime pod ${POD}`,
    });
    expect(scheduled(account(servedHere))).toMatchObject({ status: 'True', reason: 'Placed' });
  });

  it('combines Authorized and Connected: either not True makes Ready False with its reason', () => {
    expect(ready(account(report(POD, ['False', 'WaitCode'], ['True', 'Ready'])))).toMatchObject({
      status: 'False',
      reason: 'WaitCode',
      message: 'Authorized: WaitCode',
    });
    expect(ready(account(report(POD, ['Unknown', 'Starting'], ['True', 'Ready'])))).toMatchObject({
      status: 'False',
      reason: 'Starting',
    });
    expect(ready(account(report(POD, ['True', 'Authorized'], ['False', 'Connecting'])))).toMatchObject({
      status: 'False',
      reason: 'Connecting',
      message: 'logged in; Connected: Connecting',
    });
    expect(ready(account(report(POD, ['False', 'WaitCode'], ['False', 'Connecting'])))).toMatchObject({
      status: 'False',
      reason: 'WaitCode',
    });
    // A report without the conditions yet.
    expect(ready(account(report(POD)))).toMatchObject({ status: 'False', reason: 'Starting' });
    expect(ready(account(report(POD, ['True', 'Authorized'])))).toMatchObject({
      status: 'False',
      reason: 'Unknown',
      message: 'logged in; connection state unknown',
    });
  });

  it('is Unknown WaitingForRuntime before the placement pod reported anything', () => {
    expect(ready(account())).toMatchObject({
      status: 'Unknown',
      reason: 'WaitingForRuntime',
      message: `placed on runtime pod ${POD}; waiting for it to report the account`,
    });
    expect(ready(account({ conditions: [condition('Authorized', 'True', 'Authorized')] }))).toMatchObject({
      status: 'Unknown',
      reason: 'WaitingForRuntime',
    });
  });

  it('is Unknown while the account moves: another pod reported it, however good that report is', () => {
    const moving = account(report(OTHER, ['True', 'Authorized'], ['True', 'Ready']));
    expect(ready(moving, facts({}, { [OTHER]: alive }))).toMatchObject({
      status: 'Unknown',
      reason: 'WaitingForRuntime',
      message: `moving from runtime pod ${OTHER} to ${POD}; waiting for ${POD} to serve the account`,
    });
    // The pod it came from was declared dead: RuntimeLost, naming both pods and why.
    const lost = ready(moving, facts({}, { [OTHER]: { state: 'dead', why: 'its heartbeat stopped' } }));
    expect(lost).toMatchObject({ status: 'Unknown', reason: 'RuntimeLost' });
    expect(lost?.message).toContain(OTHER);
    expect(lost?.message).toContain('its heartbeat stopped');
    expect(lost?.message).toContain(`moved to ${POD}`);
  });

  it('is Unknown RuntimeLost when the placement pod itself is dead, whatever it last reported', () => {
    const dead = facts({}, { [POD]: { state: 'dead', why: 'no heartbeat for 16 s' } });
    expect(ready(account(servedHere), dead)).toMatchObject({
      status: 'Unknown',
      reason: 'RuntimeLost',
      message: `runtime pod ${POD} was lost (no heartbeat for 16 s): the account's state is unknown`,
    });
    // A pod that is starting (no heartbeat yet) is not dead: its last report still counts.
    expect(ready(account(servedHere), facts({}, { [POD]: { state: 'starting' } }))?.status).toBe('True');
  });

  it("is False SessionKeyMissing with the runtime's message when the runtime finds no key for the session", () => {
    const noKey = report(POD, ['False', 'SessionKeyMissing'], ['False', 'Unknown']);
    expect(ready(account(noKey))).toMatchObject({
      status: 'False',
      reason: 'SessionKeyMissing',
      message: 'Authorized: SessionKeyMissing',
    });
  });

  it('is False Suspended while spec.suspend is true', () => {
    expect(ready(account(servedHere, { suspend: true }))).toMatchObject({
      status: 'False',
      reason: 'Suspended',
    });
  });

  it('is False Deleting during deletion, saying what the deletion policy waits for, before anything else', () => {
    const deleting = { deletionTimestamp: '2026-11-28T11:59:00Z' };
    const lost = facts({}, { [POD]: { state: 'dead', why: 'y' } });
    expect(ready(account(servedHere, { deletionPolicy: 'LogOut' }, deleting), lost)).toMatchObject({
      status: 'False',
      reason: 'Deleting',
      message: 'being deleted: waiting for the runtime to log the session out (deletionPolicy LogOut)',
    });
    expect(ready(account(servedHere, {}, deleting))?.message).toContain('KeepSession');
  });

  it('unplaced: Scheduled and Ready False with the reason, and no placement', () => {
    const inputs = {
      ok: false as const,
      reason: 'SecretNotOptedIn' as const,
      message: 'Secret "x" named by spec.botTokenSecretRef is not labelled ...',
    };
    const invalid = facts({ inputs, outcome: { unplaced: 'InputsInvalid' } });
    const status = desiredOperatorStatus(account(servedHere), invalid, NOW);
    expect(status.placement).toBeUndefined();
    expect(scheduled(account(servedHere), invalid)).toMatchObject({
      status: 'False',
      reason: 'SecretNotOptedIn',
      message: inputs.message,
    });
    expect(ready(account(servedHere), invalid)).toMatchObject({
      status: 'False',
      reason: 'SecretNotOptedIn',
      message: inputs.message,
    });
    const full = facts({ outcome: { unplaced: 'PoolFull' } });
    expect(scheduled(account(), full)).toMatchObject({ status: 'False', reason: 'PoolFull' });
    expect(scheduled(account(), full)?.message).toContain('RUNTIME_MAX_REPLICAS');
    expect(ready(account(), full)).toMatchObject({ status: 'False', reason: 'PoolFull' });
  });

  it('writes observedGeneration of the spec, and a Ready never newer than the generation the runtime reported on', () => {
    const newer = account(
      report(POD, ['True', 'Authorized', 2], ['True', 'Ready', 2]),
      {},
      { generation: 3 },
    );
    const status = desiredOperatorStatus(newer, facts(), NOW);
    expect(status.observedGeneration).toBe(3);
    expect(status.placement).toEqual({ pool: 'default', pod: POD });
    expect(status.conditions.find((c) => c.type === 'Scheduled')?.observedGeneration).toBe(3);
    expect(status.conditions.find((c) => c.type === 'Ready')?.observedGeneration).toBe(2);
    // Caught up: the generation itself (and never above it, whatever the runtime claims).
    const caughtUp = account(report(POD, ['True', 'Authorized', 3], ['True', 'Ready', 3]));
    expect(ready(caughtUp)?.observedGeneration).toBe(3);
    const ahead = account(report(POD, ['True', 'Authorized', 9], ['True', 'Ready', 9]));
    expect(ready(ahead)?.observedGeneration).toBe(3);
  });

  it('keeps lastTransitionTime while the status stays, and needs no write when nothing changed', () => {
    const first = desiredOperatorStatus(account(servedHere), facts(), NOW);
    const written = account({
      ...servedHere,
      ...first,
      conditions: [...(servedHere.conditions ?? []), ...first.conditions],
    });
    expect(operatorStatusCurrent(written, desiredOperatorStatus(written, facts(), new Date()))).toBe(true);
    const later = new Date(NOW.getTime() + 60_000);
    const lost = desiredOperatorStatus(written, facts({}, { [POD]: { state: 'dead', why: 'z' } }), later);
    expect(operatorStatusCurrent(written, lost)).toBe(false);
    expect(lost.conditions.find((c) => c.type === 'Ready')?.lastTransitionTime).toBe('2026-11-28T12:01:00Z');
    expect(lost.conditions.find((c) => c.type === 'Scheduled')?.lastTransitionTime).toBe(
      '2026-11-28T12:00:00Z',
    );
  });
});
