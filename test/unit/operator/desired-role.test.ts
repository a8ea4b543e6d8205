import type { V1PolicyRule } from '@kubernetes/client-node';
import { desiredRole, type PoolSettings } from '../../../operator/pool/desired.js';

const settings = (over: Partial<PoolSettings> = {}): PoolSettings => ({
  namespace: 'team',
  pool: 'default',
  inputSecretNames: ['api', 'bot', 'api'],
  keySecretNames: ['a-tdlib-key', 'b-tdlib-key'],
  loginCodeSecretNames: ['a-login-code', 'b-login-code'],
  sessionSecretNames: ['a-tdlib-session', 'b-tdlib-session'],
  accountNames: ['b', 'a'],
  leaseNames: ['tga-a', 'tga-b', 'tdlib-runtime-default-0', 'tdlib-runtime-default-1'],
  ...over,
});

/** What `verb` on `resource` (group-qualified resources are matched by plural only) is granted on. */
function granted(rules: V1PolicyRule[], resource: string, verb: string): string[] {
  return rules
    .filter((r) => r.resources?.includes(resource) && (r.verbs.includes(verb) || r.verbs.includes('*')))
    .flatMap((r) => (r.resourceNames && r.resourceNames.length > 0 ? r.resourceNames : ['<any>']));
}

describe('desiredRole: the runtime gets what it needs, by name wherever Kubernetes allows it', () => {
  const rules = desiredRole(settings()).rules ?? [];

  it('creates Leases (names are checked by the admission policy); updates only the pool account and heartbeat Leases; reads any', () => {
    // RBAC cannot name what may be created; crds/runtime-lease-policy.ts admits only names listed for update.
    expect(granted(rules, 'leases', 'create')).toEqual(['<any>']);
    expect(granted(rules, 'leases', 'delete')).toEqual([]);
    expect(granted(rules, 'leases', 'patch')).toEqual([]);
    expect(granted(rules, 'leases', 'update')).toEqual([
      'tdlib-runtime-default-0',
      'tdlib-runtime-default-1',
      'tga-a',
      'tga-b',
    ]);
    expect(granted(rules, 'leases', 'get')).toEqual(['<any>']);
  });

  it('deletes only login-code Secrets; updates only session backups; reads only the named Secrets; never lists', () => {
    expect(granted(rules, 'secrets', 'delete')).toEqual(['a-login-code', 'b-login-code']);
    expect(granted(rules, 'secrets', 'update')).toEqual(['a-tdlib-session', 'b-tdlib-session']);
    expect(granted(rules, 'secrets', 'get').sort()).toEqual(
      [
        'a-login-code',
        'a-tdlib-key',
        'a-tdlib-session',
        'api',
        'b-login-code',
        'b-tdlib-key',
        'b-tdlib-session',
        'bot',
      ].sort(),
    );
    for (const verb of ['list', 'watch', 'create', 'patch', 'deletecollection'])
      expect(granted(rules, 'secrets', verb)).toEqual([]);
  });

  it('patches status only of the pool accounts, by name; lists and watches accounts; never writes their spec', () => {
    expect(granted(rules, 'telegramaccounts/status', 'patch')).toEqual(['a', 'b']);
    expect(granted(rules, 'telegramaccounts/status', 'update')).toEqual([]);
    expect(granted(rules, 'telegramaccounts', 'get')).toEqual(expect.arrayContaining(['a', 'b']));
    expect(granted(rules, 'telegramaccounts', 'watch')).toEqual(['<any>']);
    for (const verb of ['create', 'update', 'patch', 'delete'])
      expect(granted(rules, 'telegramaccounts', verb)).toEqual([]);
  });

  it('grants nothing by name when there is nothing to name (an empty resourceNames would mean every object)', () => {
    const empty =
      desiredRole(
        settings({
          inputSecretNames: [],
          keySecretNames: [],
          loginCodeSecretNames: [],
          sessionSecretNames: [],
          accountNames: [],
          leaseNames: [],
        }),
      ).rules ?? [];
    expect(empty.some((r) => r.resourceNames !== undefined && r.resourceNames.length === 0)).toBe(false);
    expect(granted(empty, 'secrets', 'get')).toEqual([]);
    expect(granted(empty, 'leases', 'update')).toEqual([]);
    expect(granted(empty, 'telegramaccounts/status', 'patch')).toEqual([]);
  });

  it('is the same object for the same accounts in any order (no spurious writes)', () => {
    const shuffled = settings({
      inputSecretNames: ['bot', 'api'],
      accountNames: ['a', 'b'],
      keySecretNames: ['b-tdlib-key', 'a-tdlib-key'],
    });
    expect(desiredRole(shuffled)).toEqual(desiredRole(settings()));
    expect(rules.some((r) => r.verbs.includes('*') || r.resources?.includes('*'))).toBe(false);
  });
});
