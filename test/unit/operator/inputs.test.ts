import { LABEL_ACCOUNT, LABEL_MANAGED_BY, MANAGED_BY, type TelegramAccount } from '../../../crds/index.js';
import {
  madeForAccount,
  checkInputs,
  optedIn,
  referencedSecrets,
  secretNeeds,
  type SecretFacts,
} from '../../../operator/account/inputs.js';

const OPT_IN = { 'telegram.tdlib-operator.dev/usable-by-accounts': 'true' };

const account = (spec: Partial<TelegramAccount['spec']> = {}): TelegramAccount => ({
  apiVersion: 'telegram.tdlib-operator.dev/v1alpha1',
  kind: 'TelegramAccount',
  metadata: { name: 'a', namespace: 'team' },
  spec: {
    type: 'Bot',
    apiCredentialsSecretRef: { name: 'api' },
    botTokenSecretRef: { name: 'bot' },
    ...spec,
  },
});

/** A Secret cache: name -> facts. */
const cache =
  (secrets: Record<string, SecretFacts>) =>
  (name: string): SecretFacts | undefined =>
    secrets[name];
const usable = (...keys: string[]): SecretFacts => ({ keys, labels: OPT_IN });
const complete = {
  api: usable('api_id', 'api_hash'),
  bot: usable('token'),
};

describe('madeForAccount', () => {
  const ours = { [LABEL_MANAGED_BY]: MANAGED_BY, [LABEL_ACCOUNT]: 'alice' };

  it('is true only for Secrets tdlib-operator labelled for exactly this account', () => {
    expect(madeForAccount(ours, 'alice')).toBe(true);
    expect(madeForAccount(ours, 'bob')).toBe(false);
    expect(madeForAccount({ ...ours, [LABEL_MANAGED_BY]: 'helm' }, 'alice')).toBe(false);
    expect(madeForAccount({ [LABEL_ACCOUNT]: 'alice' }, 'alice')).toBe(false);
    expect(madeForAccount(undefined, 'alice')).toBe(false);
  });
});

describe('optedIn', () => {
  it('is true only for the label with value "true"', () => {
    expect(optedIn(usable())).toBe(true);
    expect(optedIn(undefined)).toBe(false);
    expect(optedIn({ keys: [] })).toBe(false);
    expect(optedIn({ keys: [], labels: { 'telegram.tdlib-operator.dev/usable-by-accounts': 'yes' } })).toBe(
      false,
    );
    expect(optedIn({ keys: [], labels: { 'usable-by-accounts': 'true' } })).toBe(false);
  });
});

describe('checkInputs', () => {
  it('accepts an account whose Secrets exist, opted in, with the keys it names', () => {
    expect(checkInputs(account(), cache(complete))).toEqual({ ok: true });
    expect(
      checkInputs(
        account({
          apiCredentialsSecretRef: { name: 'api', apiIdKey: 'id', apiHashKey: 'hash' },
          botTokenSecretRef: { name: 'bot', key: 'bot-token' },
        }),
        cache({ api: usable('id', 'hash'), bot: usable('bot-token') }),
      ),
    ).toEqual({ ok: true });
  });

  it('refuses a Secret without the opt-in label, with the kubectl command that opts it in, and never its values', () => {
    const result = checkInputs(
      account(),
      cache({ ...complete, bot: { keys: ['token'], labels: { a: 'b' } } }),
    );
    expect(result).toEqual({
      ok: false,
      reason: 'SecretNotOptedIn',
      message:
        'Secret "bot" named by spec.botTokenSecretRef is not labelled telegram.tdlib-operator.dev/usable-by-accounts=true, so runtime pods may not read it; if it is meant for this account, label it: kubectl label secret bot -n team telegram.tdlib-operator.dev/usable-by-accounts=true',
    });
  });

  it('checks the opt-in before the keys, so a Secret that is not offered reveals nothing about its keys', () => {
    const result = checkInputs(account(), cache({ ...complete, bot: { keys: ['other'] } }));
    expect(result).toMatchObject({ ok: false, reason: 'SecretNotOptedIn' });
    expect(result.ok ? '' : result.message).not.toContain('other');
  });

  it('names the missing Secret, the field and the keys it needs', () => {
    expect(checkInputs(account(), cache({ bot: usable('token') }))).toEqual({
      ok: false,
      reason: 'SecretNotFound',
      message:
        'Secret "api" named by spec.apiCredentialsSecretRef does not exist in namespace "team"; create it with keys api_id and api_hash',
    });
    expect(checkInputs(account(), cache({ api: usable('api_id', 'api_hash') }))).toMatchObject({
      reason: 'SecretNotFound',
      message: expect.stringContaining('spec.botTokenSecretRef') as unknown as string,
    });
  });

  it('names a missing key and where to set another key name', () => {
    expect(checkInputs(account(), cache({ ...complete, api: usable('api_id') }))).toEqual({
      ok: false,
      reason: 'SecretKeyMissing',
      message:
        'Secret "api" named by spec.apiCredentialsSecretRef has no key api_hash; add it or set the key name in spec.apiCredentialsSecretRef',
    });
  });

  it('needs the 2FA password and every proxy credentials Secret (failover included) to be opted in too', () => {
    const user = account({
      type: 'User',
      phoneNumber: '+15550100001',
      botTokenSecretRef: undefined,
      passwordSecretRef: { name: 'pw' },
      proxy: {
        type: 'Socks5',
        server: 'p',
        port: 1080,
        credentialsSecretRef: { name: 'socks' },
        failover: [{ type: 'MTProto', server: 'q', port: 443, credentialsSecretRef: { name: 'mt' } }],
      },
    });
    const all = { api: complete.api, pw: usable('password'), socks: usable(), mt: usable() };
    expect(checkInputs(user, cache(all))).toEqual({ ok: true });
    expect(checkInputs(user, cache({ ...all, pw: { keys: ['password'] } }))).toMatchObject({
      reason: 'SecretNotOptedIn',
      message: expect.stringContaining('spec.passwordSecretRef') as unknown as string,
    });
    expect(checkInputs(user, cache({ ...all, socks: { keys: ['username', 'password'] } }))).toMatchObject({
      reason: 'SecretNotOptedIn',
      message: expect.stringContaining('spec.proxy.credentialsSecretRef') as unknown as string,
    });
    expect(checkInputs(user, cache({ ...all, mt: { keys: ['secret'] } }))).toMatchObject({
      reason: 'SecretNotOptedIn',
      message: expect.stringContaining('spec.proxy.failover[0].credentialsSecretRef') as unknown as string,
    });
    expect(secretNeeds(user).map((n) => n.field)).toEqual([
      'spec.apiCredentialsSecretRef',
      'spec.passwordSecretRef',
      'spec.proxy.credentialsSecretRef',
      'spec.proxy.failover[0].credentialsSecretRef',
    ]);
  });

  it('grants the updates token and client certificate Secrets without holding the account back for them', () => {
    const needs = secretNeeds(
      account({
        updates: {
          sink: { uri: 'https://receiver.example/' },
          auth: { secretRef: { name: 'receiver-token' }, clientCertificateSecretRef: { name: 'client-tls' } },
        },
      }),
    ).filter((n) => n.field.startsWith('spec.updates'));
    expect(needs).toEqual([
      { secret: 'receiver-token', keys: ['token'], field: 'spec.updates.auth.secretRef', optional: true },
      {
        secret: 'client-tls',
        keys: ['tls.crt', 'tls.key'],
        field: 'spec.updates.auth.clientCertificateSecretRef',
        optional: true,
      },
    ]);
  });

  it('lists every referenced Secret once', () => {
    expect(
      referencedSecrets(
        account({ botTokenSecretRef: { name: 'shared' }, apiCredentialsSecretRef: { name: 'shared' } }),
      ),
    ).toEqual(['shared']);
  });
});
