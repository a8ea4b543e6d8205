import type { TelegramAccount } from '../../../crds/index.js';
import { poolRelevantChange } from '../../../operator/pool/predicates.js';
import { accountLoopRelevant } from '../../../operator/account/predicates.js';

const account = (
  over: Partial<TelegramAccount['metadata']> = {},
  status?: TelegramAccount['status'],
): TelegramAccount => ({
  apiVersion: 'telegram.tdlib-operator.dev/v1alpha1',
  kind: 'TelegramAccount',
  metadata: {
    name: 'a',
    namespace: 'n',
    uid: 'u1',
    generation: 1,
    ...over,
  },
  spec: { type: 'Bot', apiCredentialsSecretRef: { name: 'api' } },
  status,
});

describe('poolRelevantChange', () => {
  it('ignores status-only writes', () => {
    const ready = {
      conditions: [
        { type: 'Ready', status: 'True' as const, reason: 'Ready', message: '', lastTransitionTime: 't' },
      ],
      placement: { pool: 'default', pod: 'p-0' },
    };
    expect(poolRelevantChange(account({}, { placement: ready.placement }), account({}, ready))).toBe(false);
  });

  it('reacts to a new spec, a moved placement, a deletion, finalizers and a lost placement write', () => {
    expect(poolRelevantChange(account(), account({ generation: 2 }))).toBe(true);
    expect(
      poolRelevantChange(
        account({}, { placement: { pool: 'default', pod: 'p-0' } }),
        account({}, { placement: { pool: 'default', pod: 'p-1' } }),
      ),
    ).toBe(true);
    expect(poolRelevantChange(account(), account({ deletionTimestamp: '2026-11-28T00:00:00Z' }))).toBe(true);
    expect(poolRelevantChange(account(), account({ finalizers: ['x'] }))).toBe(true);
    expect(
      poolRelevantChange(account({}, { placement: { pool: 'default', pod: 'p-0' } }), account({}, {})),
    ).toBe(true);
  });

  it("can leave the placement out, for telling the pool loop's own placement write from other changes", () => {
    const placed = account({}, { placement: { pool: 'default', pod: 'p-0' } });
    expect(poolRelevantChange(account(), placed, { placement: false })).toBe(false);
    expect(
      poolRelevantChange(account(), account({ generation: 2 }, placed.status), { placement: false }),
    ).toBe(true);
    const hosted = account({}, { ...placed.status, hostedBy: 'p-0' });
    expect(poolRelevantChange(account(), hosted, { placement: false })).toBe(true);
  });
});

describe('accountLoopRelevant', () => {
  it('lets through creations, deletions and the changes the account loop decides from', () => {
    expect(accountLoopRelevant('ADDED', account(), undefined)).toBe(true);
    expect(accountLoopRelevant('DELETED', account(), account())).toBe(true);
    expect(accountLoopRelevant('MODIFIED', account({ generation: 2 }), account())).toBe(true);
    expect(accountLoopRelevant('MODIFIED', account({ uid: 'u2' }), account())).toBe(true);
    expect(accountLoopRelevant('MODIFIED', account({ finalizers: ['x'] }), account())).toBe(true);
    expect(
      accountLoopRelevant('MODIFIED', account({ deletionTimestamp: '2026-11-30T00:00:00Z' }), account()),
    ).toBe(true);
  });

  it('ignores status writes, except while the account is being deleted (the log-out it waits for)', () => {
    const placed = { placement: { pool: 'default', pod: 'p-0' } };
    expect(accountLoopRelevant('MODIFIED', account({}, placed), account())).toBe(false);
    const deleting = { deletionTimestamp: '2026-11-30T00:00:00Z', finalizers: ['x'] };
    expect(
      accountLoopRelevant(
        'MODIFIED',
        account(deleting, { authorizationState: 'LoggedOut' }),
        account(deleting, { authorizationState: 'Ready' }),
      ),
    ).toBe(true);
  });

  it('lets through the runtime reporting a missing session key, once: the loop reads the Secret and may add a key', () => {
    const authorized = (status: 'True' | 'False', reason: string) => ({
      conditions: [
        { type: 'Authorized', status, reason, message: '', lastTransitionTime: '2026-11-30T00:00:00Z' },
      ],
    });
    const missing = account({}, authorized('False', 'SessionKeyMissing'));
    expect(accountLoopRelevant('MODIFIED', missing, account({}, authorized('False', 'Starting')))).toBe(true);
    expect(accountLoopRelevant('MODIFIED', missing, missing)).toBe(false);
    expect(accountLoopRelevant('MODIFIED', account({}, authorized('True', 'Authorized')), missing)).toBe(
      false,
    );
  });
});
