import { accountsOfSecret } from '../../../operator/pool/secret-links.js';
import { LABEL_ACCOUNT, accountOfSessionSecretName } from '../../../crds/index.js';

const secret = (name: string, labels?: Record<string, string>) => ({
  metadata: { name, namespace: 'team-a', labels },
});

describe('accountsOfSecret: whose placement and grants a Secret can change', () => {
  it('names the accounts whose spec references it, looked up by namespace/name', () => {
    const asked: string[] = [];
    const found = accountsOfSecret(secret('api-credentials'), (key) => {
      asked.push(key);
      return key === 'team-a/api-credentials' ? ['alice', 'bob'] : [];
    });
    expect(asked).toEqual(['team-a/api-credentials']);
    expect(found.sort()).toEqual(['alice', 'bob']);
  });

  it('names the account it is labelled for', () => {
    expect(accountsOfSecret(secret('whatever', { [LABEL_ACCOUNT]: 'carol' }), () => [])).toEqual(['carol']);
  });

  it("names the account whose session or earlier key Secret it would be, even when it is someone else's", () => {
    expect(accountsOfSecret(secret('dave-tdlib-session'), () => [])).toEqual(['dave']);
    expect(accountsOfSecret(secret('erin-tdlib-key'), () => [])).toEqual(['erin']);
  });

  it('names each account once', () => {
    const found = accountsOfSecret(secret('frank-tdlib-session', { [LABEL_ACCOUNT]: 'frank' }), () => [
      'frank',
    ]);
    expect(found).toEqual(['frank']);
  });

  it('names nobody for an unrelated Secret', () => {
    expect(accountsOfSecret(secret('tls-cert'), () => [])).toEqual([]);
  });
});

describe('accountOfSessionSecretName', () => {
  it('inverts the session and key Secret names and nothing else', () => {
    expect(accountOfSessionSecretName('bot-1-tdlib-session')).toBe('bot-1');
    expect(accountOfSessionSecretName('bot-1-tdlib-key')).toBe('bot-1');
    expect(accountOfSessionSecretName('-tdlib-session')).toBeUndefined();
    expect(accountOfSessionSecretName('bot-1-tdlib-login-code')).toBeUndefined();
    expect(accountOfSessionSecretName('bot-1')).toBeUndefined();
  });
});
