import * as k8s from '@kubernetes/client-node';
import { GROUP, VERSION } from '../../crds/index.js';
import { adminKubeConfig, createTestNamespace } from '../support/cluster.js';
import { installCrds } from '../support/crds.js';

type Spec = Record<string, unknown>;

const api = { secret: { name: 'api' } };
const user = (extra: Spec = {}): Spec => ({
  type: 'User',
  phoneNumber: '+15550100001',
  apiCredentialsSecretRef: api.secret,
  ...extra,
});
const bot = (extra: Spec = {}): Spec => ({
  type: 'Bot',
  botTokenSecretRef: { name: 'bot' },
  apiCredentialsSecretRef: api.secret,
  ...extra,
});
const withoutKey = (spec: Spec, key: string): Spec =>
  Object.fromEntries(Object.entries(spec).filter(([k]) => k !== key));

/** [what is wrong, spec, texts the API server's message must contain (the field, and the fix)] */
const badAccounts: Array<[string, Spec, string[]]> = [
  ['no type', withoutKey(user(), 'type'), ['spec.type', 'Required value']],
  ['unknown type', user({ type: 'Robot' }), ['spec.type', 'supported values: "User", "Bot"']],
  [
    'user without phone',
    withoutKey(user(), 'phoneNumber'),
    ['spec.phoneNumber', 'a User account needs spec.phoneNumber'],
  ],
  ['phone without plus', user({ phoneNumber: '15550100001' }), ['spec.phoneNumber', 'E.164']],
  ['phone starting with 0', user({ phoneNumber: '+05550100001' }), ['spec.phoneNumber', 'E.164']],
  ['phone with letters', user({ phoneNumber: '+1555CALLNOW' }), ['spec.phoneNumber', 'E.164']],
  ['phone too long', user({ phoneNumber: '+155501000011111' + '1' }), ['spec.phoneNumber', 'Too long']],
  [
    'bot without token',
    withoutKey(bot(), 'botTokenSecretRef'),
    ['spec.botTokenSecretRef', 'needs spec.botTokenSecretRef'],
  ],
  ['bot with phone', bot({ phoneNumber: '+15550100001' }), ['spec.phoneNumber', 'remove spec.phoneNumber']],
  [
    'bot with 2FA password',
    bot({ passwordSecretRef: { name: 'pw' } }),
    ['spec.passwordSecretRef', 'remove spec.passwordSecretRef'],
  ],
  [
    'user with bot token',
    user({ botTokenSecretRef: { name: 'bot' } }),
    ['spec.botTokenSecretRef', 'set type: Bot'],
  ],
  ['bot with QR login', bot({ loginMethod: 'QR' }), ['spec.loginMethod', 'QR is for User accounts only']],
  [
    'unknown login method',
    user({ loginMethod: 'SMS' }),
    ['spec.loginMethod', 'supported values: "Code", "QR"'],
  ],
  [
    'no API credentials',
    withoutKey(user(), 'apiCredentialsSecretRef'),
    ['spec.apiCredentialsSecretRef', 'Required value'],
  ],
  [
    'API credentials without name',
    user({ apiCredentialsSecretRef: {} }),
    ['spec.apiCredentialsSecretRef.name', 'Required value'],
  ],
  [
    'empty bot token Secret name',
    bot({ botTokenSecretRef: { name: '' } }),
    ['spec.botTokenSecretRef.name', 'at least 1'],
  ],
  [
    'proxy link and server',
    user({ proxy: { link: 'tg://proxy?server=a&port=1&secret=ab', server: 'a' } }),
    ['spec.proxy', 'either link, or type, server and port'],
  ],
  [
    'proxy without port',
    user({ proxy: { type: 'Socks5', server: 'proxy.example' } }),
    ['spec.proxy', 'type, server and port together'],
  ],
  [
    'proxy port out of range',
    user({ proxy: { type: 'Socks5', server: 'p', port: 70000 } }),
    ['spec.proxy.port', 'less than or equal to 65535'],
  ],
  [
    'MTProto without secret',
    user({ proxy: { type: 'MTProto', server: 'p', port: 443 } }),
    ['spec.proxy.credentialsSecretRef', 'needs credentialsSecretRef'],
  ],
  [
    'proxy link of the wrong kind',
    user({ proxy: { link: 'http://proxy.example:8080' } }),
    ['spec.proxy.link', 'tg://proxy?'],
  ],
  [
    'httpOnly on SOCKS5',
    user({ proxy: { type: 'Socks5', server: 'p', port: 1080, httpOnly: true } }),
    ['spec.proxy.httpOnly', 'Http proxies only'],
  ],
  [
    'bad failover entry',
    user({ proxy: { type: 'Socks5', server: 'p', port: 1080, failover: [{ server: 'q' }] } }),
    ['spec.proxy.failover[0]', 'type, server and port together'],
  ],
  [
    'proxy checked too often',
    user({ proxy: { type: 'Http', server: 'p', port: 8080, checkIntervalSeconds: 5 } }),
    ['spec.proxy.checkIntervalSeconds', 'greater than or equal to 10'],
  ],
  [
    'pool name not a DNS label',
    user({ runtimePool: 'Bad_Pool' }),
    ['spec.runtimePool', 'must be a DNS label'],
  ],
  [
    'unknown deletion policy',
    user({ deletionPolicy: 'Delete' }),
    ['spec.deletionPolicy', 'supported values: "LogOut", "KeepSession"'],
  ],
  ['suspend not a boolean', user({ suspend: 'yes' }), ['spec.suspend', 'boolean']],
];

const campaign = (extra: Spec = {}): Spec => ({
  accounts: { names: ['sender'] },
  message: { text: 'hello' },
  recipients: { usernames: ['alice_example'] },
  ...extra,
});

const badCampaigns: Array<[string, Spec, string[]]> = [
  [
    'names and selector',
    campaign({ accounts: { names: ['a'], selector: { matchLabels: { team: 'x' } } } }),
    ['spec.accounts', 'exactly one of accounts.names or accounts.selector'],
  ],
  [
    'no accounts',
    campaign({ accounts: {} }),
    ['spec.accounts', 'exactly one of accounts.names or accounts.selector'],
  ],
  ['no recipients', campaign({ recipients: {} }), ['spec.recipients', 'at least one recipient']],
  [
    'zero rate limit',
    campaign({ rateLimit: { messagesPerMinute: 0 } }),
    ['spec.rateLimit.messagesPerMinute', 'greater than or equal to 1'],
  ],
  [
    'window ends before it starts',
    campaign({ schedule: { startTime: '2026-12-01T10:00:00Z', endTime: '2026-12-01T09:00:00Z' } }),
    ['spec.schedule.endTime', 'after schedule.startTime'],
  ],
  [
    'bad username',
    campaign({ recipients: { usernames: ['ab'] } }),
    ['spec.recipients.usernames[0]', 'must be a Telegram username'],
  ],
  [
    'bad recipient phone',
    campaign({ recipients: { phoneNumbers: ['555-0100'] } }),
    ['spec.recipients.phoneNumbers', 'E.164'],
  ],
  ['empty message', campaign({ message: { text: '' } }), ['spec.message.text', 'at least 1']],
];

function messageOf(error: unknown): string {
  if (error instanceof k8s.ApiException) {
    const body: unknown = typeof error.body === 'string' ? JSON.parse(error.body) : error.body;
    return (body as { message?: string }).message ?? String(error.body);
  }
  throw error;
}

describe('the CRDs reject invalid resources with messages that name the field and the fix', () => {
  const kc = adminKubeConfig();
  const custom = kc.makeApiClient(k8s.CustomObjectsApi);
  let namespace = '';

  beforeAll(async () => {
    await installCrds(kc);
    namespace = await createTestNamespace(kc, 'validation');
  });

  const create = (plural: string, kind: string, name: string, spec: Spec, dryRun = true) =>
    custom.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace,
      plural,
      body: { apiVersion: `${GROUP}/${VERSION}`, kind, metadata: { name }, spec },
      dryRun: dryRun ? 'All' : undefined,
    });

  it.each(badAccounts)('TelegramAccount: %s', async (_what, spec, expected) => {
    const message = await create('telegramaccounts', 'TelegramAccount', 'bad', spec).then(
      () => 'accepted',
      (error: unknown) => messageOf(error),
    );
    for (const text of expected) expect(message).toContain(text);
    // Phone numbers never come back in errors (they are personal data).
    expect(message).not.toMatch(/5550100001|555CALLNOW|555-0100/);
  });

  it.each(badCampaigns)('Campaign: %s', async (_what, spec, expected) => {
    const message = await create('campaigns', 'Campaign', 'bad', spec).then(
      () => 'accepted',
      (error: unknown) => messageOf(error),
    );
    for (const text of expected) expect(message).toContain(text);
    expect(message).not.toMatch(/555-0100/);
  });

  it('accepts valid resources and fills in defaults', async () => {
    const created = (await create(
      'telegramaccounts',
      'TelegramAccount',
      'valid-user',
      user({ passwordSecretRef: { name: 'pw' } }),
      false,
    )) as {
      spec: Spec;
    };
    expect(created.spec).toMatchObject({
      runtimePool: 'default',
      deletionPolicy: 'KeepSession',
      loginMethod: 'Code',
      suspend: false,
      apiCredentialsSecretRef: { name: 'api', apiIdKey: 'api_id', apiHashKey: 'api_hash' },
      passwordSecretRef: { name: 'pw', key: 'password' },
    });
    await create(
      'telegramaccounts',
      'TelegramAccount',
      'valid-bot',
      bot({ proxy: { link: 'https://t.me/proxy?server=p&port=443&secret=ee00' } }),
      false,
    );
    await create(
      'telegramaccounts',
      'TelegramAccount',
      'valid-qr',
      user({ loginMethod: 'QR', phoneNumber: '+15550100002' }),
      false,
    );
    const c = (await create('campaigns', 'Campaign', 'valid', campaign(), false)) as { spec: Spec };
    expect(c.spec).toMatchObject({ message: { text: 'hello', parseMode: 'Plain' }, suspend: false });
  });

  it('refuses to change an account type or phone number after creation', async () => {
    await create(
      'telegramaccounts',
      'TelegramAccount',
      'immutable',
      user({ phoneNumber: '+15550100009' }),
      false,
    );
    const patch = (spec: Spec) =>
      custom
        .patchNamespacedCustomObject(
          {
            group: GROUP,
            version: VERSION,
            namespace,
            plural: 'telegramaccounts',
            name: 'immutable',
            body: { spec },
          },
          k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
        )
        .then(
          () => 'accepted',
          (error: unknown) => messageOf(error),
        );
    expect(await patch({ phoneNumber: '+15550100010' })).toContain('phoneNumber is immutable');
    expect(await patch({ type: 'Bot', phoneNumber: null, botTokenSecretRef: { name: 'bot' } })).toContain(
      'type is immutable',
    );
    expect(await patch({ suspend: true })).toBe('accepted');
  });

  it('shows printer columns and answers to the short names and the category', async () => {
    const crds = kc.makeApiClient(k8s.ApiextensionsV1Api);
    const account = await crds.readCustomResourceDefinition({ name: `telegramaccounts.${GROUP}` });
    expect(account.spec.names.shortNames).toEqual(['tga']);
    expect(account.spec.names.categories).toEqual(['telegram']);
    expect(account.spec.versions[0]?.additionalPrinterColumns?.map((c) => c.name)).toEqual([
      'Type',
      'Auth',
      'Ready',
      'Reason',
      'Pod',
      'Age',
    ]);
    const campaigns = await crds.readCustomResourceDefinition({ name: `campaigns.${GROUP}` });
    expect(campaigns.spec.names.shortNames).toEqual(['tgc']);
    expect(campaigns.spec.versions[0]?.additionalPrinterColumns?.map((c) => c.name)).toEqual([
      'Sent',
      'Failed',
      'Total',
      'Ready',
      'Age',
    ]);
  });
});
