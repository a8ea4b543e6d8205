import { planSessionKey } from '../../../operator/account/session-key.js';

const facts = (...keys: string[]) => ({ keys });

describe('planSessionKey: where an account keeps its database key', () => {
  it('creates the session Secret with a new key when the account has neither Secret', () => {
    expect(planSessionKey('alice', undefined, undefined)).toEqual({ action: 'create', withKey: true });
  });

  it('creates the session Secret without a key when an earlier version made a key Secret', () => {
    expect(planSessionKey('alice', facts('key'), undefined)).toEqual({ action: 'create', withKey: false });
  });

  it('leaves a session Secret alone when it holds a key, or the earlier key Secret does', () => {
    expect(planSessionKey('alice', undefined, facts('key', 'session'))).toEqual({ action: 'none' });
    expect(planSessionKey('alice', facts('key'), facts('session'))).toEqual({ action: 'none' });
    expect(planSessionKey('alice', facts('key'), facts())).toEqual({ action: 'none' });
  });

  it('adds a key to a session Secret that has neither key nor backup', () => {
    expect(planSessionKey('alice', undefined, facts())).toEqual({ action: 'addKey' });
  });

  it('never makes a new key for a backup whose key is gone, and says how to recover', () => {
    const plan = planSessionKey('alice', undefined, facts('session'));
    expect(plan.action).toBe('keyMissing');
    const message = plan.action === 'keyMissing' ? plan.message : '';
    expect(message).toContain('alice-tdlib-session');
    expect(message).toContain('alice-tdlib-key');
    expect(message).toMatch(/Restore the key .* or delete alice-tdlib-session/);
  });
});
