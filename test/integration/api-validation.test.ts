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

/**
 * [what is wrong, spec, texts the API server's message must contain (the field, and the fix), values that
 * may be secret and must appear nowhere in the error (message and details)]
 */
type BadCase = [string, Spec, string[], string[]?];

/** Things a new user pastes where they do not belong; each must be refused without being repeated. */
const BOT_TOKEN = '123456:ABC-DEF1234ghIkl-zyx57W2v1u123ew11';
const PASSWORD = 'Hunter2-Sw0rdfish';
const MTPROTO_SECRET = 'dd00112233445566778899aabbccddeeff';

const badAccounts: BadCase[] = [
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
  [
    'pool name too long for the StatefulSet and pod names',
    user({ runtimePool: 'p'.repeat(39) }),
    ['spec.runtimePool', 'at most 38 characters', 'choose a shorter pool name'],
  ],
  // Secret names: a DNS subdomain, checked from the parent so a pasted token is never repeated.
  [
    'bot token pasted as the bot token Secret name',
    bot({ botTokenSecretRef: { name: BOT_TOKEN } }),
    ['spec.botTokenSecretRef.name', 'must be the name of a Secret', 'never into this field'],
    [BOT_TOKEN, '123456', 'zyx57W2v1u123ew11'],
  ],
  [
    'API hash pasted as the API credentials Secret name',
    bot({ apiCredentialsSecretRef: { name: '0123456789ABCDEF0123456789abcdef' } }),
    ['spec.apiCredentialsSecretRef.name', 'must be the name of a Secret'],
    ['0123456789ABCDEF0123456789abcdef'],
  ],
  [
    '2FA password pasted as the password Secret name',
    user({ passwordSecretRef: { name: PASSWORD } }),
    ['spec.passwordSecretRef.name', 'must be the name of a Secret'],
    [PASSWORD],
  ],
  [
    'proxy password pasted as the proxy credentials Secret name',
    user({ proxy: { type: 'Socks5', server: 'p', port: 1080, credentialsSecretRef: { name: PASSWORD } } }),
    ['spec.proxy.credentialsSecretRef.name', 'must be the name of a Secret'],
    [PASSWORD],
  ],
  [
    'MTProto secret pasted as a failover credentials Secret name',
    user({
      proxy: {
        type: 'Socks5',
        server: 'p',
        port: 1080,
        failover: [
          { type: 'MTProto', server: 'q', port: 443, credentialsSecretRef: { name: `x_${MTPROTO_SECRET}` } },
        ],
      },
    }),
    ['spec.proxy.failover[0].credentialsSecretRef.name', 'must be the name of a Secret'],
    [MTPROTO_SECRET],
  ],
  // Secret keys: [-._a-zA-Z0-9]+, also from the parent.
  [
    'bot token pasted as the bot token key',
    bot({ botTokenSecretRef: { name: 'bot', key: BOT_TOKEN } }),
    ['spec.botTokenSecretRef.key', "must be a key of the Secret's data", 'e.g. token'],
    [BOT_TOKEN, '123456'],
  ],
  [
    'password pasted as the password key',
    user({ passwordSecretRef: { name: 'pw', key: `${PASSWORD}!` } }),
    ['spec.passwordSecretRef.key', "must be a key of the Secret's data"],
    [PASSWORD],
  ],
  [
    'api_id key with a slash',
    user({ apiCredentialsSecretRef: { name: 'api', apiIdKey: 'api/id' } }),
    ['spec.apiCredentialsSecretRef.apiIdKey', "must be a key of the Secret's data", 'e.g. api_id'],
  ],
  [
    'api_hash key with a space',
    user({ apiCredentialsSecretRef: { name: 'api', apiHashKey: `hash ${PASSWORD}` } }),
    ['spec.apiCredentialsSecretRef.apiHashKey', "must be a key of the Secret's data", 'e.g. api_hash'],
    [PASSWORD],
  ],
  [
    'empty api_id key',
    user({ apiCredentialsSecretRef: { name: 'api', apiIdKey: '' } }),
    ['spec.apiCredentialsSecretRef.apiIdKey', 'at least 1'],
  ],
  // Proxy servers: a host name or an IP address, nothing else.
  [
    'proxy server as a URL with user and password',
    user({ proxy: { type: 'Socks5', server: `socks5://alice:${PASSWORD}@proxy.example`, port: 1080 } }),
    ['spec.proxy.server', 'must be a host name or an IP address only', 'credentialsSecretRef'],
    [PASSWORD, 'alice'],
  ],
  [
    'proxy server with user:password@',
    user({ proxy: { type: 'Http', server: `alice:${PASSWORD}@proxy.example`, port: 8080 } }),
    ['spec.proxy.server', 'no user:password@'],
    [PASSWORD, 'alice'],
  ],
  [
    'proxy server with a port',
    user({ proxy: { type: 'Socks5', server: '192.0.2.10:1080', port: 1080 } }),
    ['spec.proxy.server', 'no :port (set port)'],
  ],
  [
    'proxy server with a path',
    user({ proxy: { type: 'Http', server: `proxy.example/${PASSWORD}`, port: 8080 } }),
    ['spec.proxy.server', 'no path'],
    [PASSWORD],
  ],
  [
    'failover server as a URL',
    user({
      proxy: {
        type: 'Socks5',
        server: 'p',
        port: 1080,
        failover: [{ type: 'Socks5', server: `socks5://bob:${PASSWORD}@q.example`, port: 1080 }],
      },
    }),
    ['spec.proxy.failover[0].server', 'must be a host name or an IP address only'],
    [PASSWORD, 'bob'],
  ],
  // Proxy links: no credentials inline.
  [
    'MTProto link with its secret',
    user({
      proxy: {
        link: `tg://proxy?server=p.example&port=443&secret=${MTPROTO_SECRET}`,
        credentialsSecretRef: { name: 'mt' },
      },
    }),
    ['spec.proxy.link', 'must not carry secret=, user= or pass=', 'credentialsSecretRef'],
    [MTPROTO_SECRET],
  ],
  [
    't.me SOCKS link with user and pass',
    user({ proxy: { link: `https://t.me/socks?server=s.example&port=1080&user=alice&pass=${PASSWORD}` } }),
    ['spec.proxy.link', 'must not carry secret=, user= or pass='],
    [PASSWORD, 'alice'],
  ],
  [
    'link with an upper-case PASS parameter',
    user({ proxy: { link: `tg://socks?server=s.example&port=1080&PASS=${PASSWORD}` } }),
    ['spec.proxy.link', 'must not carry secret=, user= or pass='],
    [PASSWORD],
  ],
  [
    'link with a %-escaped secret parameter name',
    user({
      proxy: {
        link: `tg://proxy?server=p.example&port=443&%73ecret=${MTPROTO_SECRET}`,
        credentialsSecretRef: { name: 'mt' },
      },
    }),
    ['spec.proxy.link', '%-escaped parameter names'],
    [MTPROTO_SECRET],
  ],
  [
    'failover link with a secret',
    user({
      proxy: {
        type: 'Socks5',
        server: 'p',
        port: 1080,
        failover: [
          {
            link: `tg://proxy?server=q&port=443&secret=${MTPROTO_SECRET}`,
            credentialsSecretRef: { name: 'mt' },
          },
        ],
      },
    }),
    ['spec.proxy.failover[0].link', 'must not carry secret='],
    [MTPROTO_SECRET],
  ],
  [
    'proxy link of the wrong kind carrying a password',
    user({ proxy: { link: `socks5://alice:${PASSWORD}@proxy.example:1080` } }),
    ['spec.proxy.link', 'tg://proxy?'],
    [PASSWORD, 'alice'],
  ],
  [
    'MTProto link without a credentials Secret',
    user({ proxy: { link: 'tg://proxy?server=p.example&port=443' } }),
    [
      'spec.proxy.credentialsSecretRef',
      'Required value',
      'MTProto (tg://proxy) link needs credentialsSecretRef',
    ],
  ],
  ['updates without a sink', bot({ updates: {} }), ['spec.updates.sink', 'Required value']],
  [
    'updates sink with neither ref nor uri',
    bot({ updates: { sink: {} } }),
    ['spec.updates.sink', 'needs ref (a Service in this namespace) or uri'],
  ],
  [
    'updates sink uri that is not a URL',
    bot({ updates: { sink: { uri: 'receiver:8080' } } }),
    ['spec.updates.sink.uri', 'absolute http:// or https:// URL'],
  ],
  [
    'updates sink uri of another scheme',
    bot({ updates: { sink: { uri: 'ftp://receiver.example/events' } } }),
    ['spec.updates.sink.uri', 'absolute http:// or https:// URL'],
  ],
  ...[
    'http://localhost:8080/',
    'http://127.0.0.1/',
    'http://[::1]/x',
    'http://169.254.169.254/latest/meta-data/',
    'https://[fe80::1]/',
    'http://0.0.0.0/',
    'http://metadata.google.internal/',
    'http://[fd00:ec2::254]/',
  ].map((uri): BadCase => [
    `updates sink uri ${uri}`,
    bot({ updates: { sink: { uri } } }),
    [
      'spec.updates.sink.uri',
      'must not point at a loopback, link-local, unspecified or cloud metadata address',
    ],
  ]),
  [
    'updates sink ref with an absolute uri',
    bot({ updates: { sink: { ref: { name: 'echo' }, uri: 'https://receiver.example/' } } }),
    ['spec.updates.sink.uri', 'with ref, uri may only be a path'],
  ],
  [
    'updates sink ref that is not a Service name',
    bot({ updates: { sink: { ref: { name: 'Echo_Receiver' } } } }),
    ['spec.updates.sink.ref.name', 'must be a Service name'],
  ],
  [
    'updates sink ref of another kind',
    bot({ updates: { sink: { ref: { kind: 'Deployment', name: 'echo' } } } }),
    ['spec.updates.sink.ref.kind', 'supported values: "Service"'],
  ],
  [
    'updates caBundle on plain http',
    bot({ updates: { sink: { uri: 'http://receiver.example/', caBundle: 'LS0t' } } }),
    ['spec.updates.sink.caBundle', 'use an https:// uri'],
  ],
  [
    'updates dead-letter sink at the metadata service',
    bot({ updates: { sink: { ref: { name: 'echo' } }, deadLetterSink: { uri: 'http://169.254.169.254/' } } }),
    ['spec.updates.deadLetterSink.uri', 'cloud metadata'],
  ],
  [
    'updates kind unknown',
    bot({ updates: { sink: { ref: { name: 'echo' } }, kinds: ['Typing'] } }),
    ['spec.updates.kinds[0]', 'supported values'],
  ],
  [
    'updates kind twice',
    bot({ updates: { sink: { ref: { name: 'echo' } }, kinds: ['MessageNew', 'MessageNew'] } }),
    ['spec.updates.kinds[1]', 'Duplicate value'],
  ],
  [
    'updates parallel chats out of range',
    bot({ updates: { sink: { ref: { name: 'echo' } }, maxParallelChats: 0 } }),
    ['spec.updates.maxParallelChats', 'greater than or equal to 1'],
  ],
  [
    'updates max backoff below the first backoff',
    bot({
      updates: { sink: { ref: { name: 'echo' } }, retry: { backoffSeconds: 30, maxBackoffSeconds: 10 } },
    }),
    ['spec.updates.retry.maxBackoffSeconds', 'at least backoffSeconds'],
  ],
  [
    'updates auth with neither a token nor a client certificate',
    bot({ updates: { sink: { ref: { name: 'echo' } }, auth: {} } }),
    ['spec.updates.auth', 'needs secretRef (a Secret value sent as a header) or clientCertificateSecretRef'],
  ],
  [
    'updates auth header without a token Secret',
    bot({
      updates: {
        sink: { uri: 'https://receiver.example/' },
        auth: { clientCertificateSecretRef: { name: 'client-tls' }, header: 'X-Token' },
      },
    }),
    ['spec.updates.auth.header', 'set secretRef or remove header'],
  ],
  [
    'updates client certificate Secret that is not a name',
    bot({
      updates: {
        sink: { uri: 'https://receiver.example/' },
        auth: { clientCertificateSecretRef: { name: 'Client TLS' } },
      },
    }),
    ['spec.updates.auth.clientCertificateSecretRef.name', 'must be the name of a Secret'],
  ],
  [
    'updates auth token pasted as the Secret name',
    bot({ updates: { sink: { ref: { name: 'echo' } }, auth: { secretRef: { name: BOT_TOKEN } } } }),
    ['spec.updates.auth.secretRef.name', 'never into this field'],
    [BOT_TOKEN],
  ],
  [
    'updates auth header that would replace the event',
    bot({
      updates: { sink: { ref: { name: 'echo' } }, auth: { secretRef: { name: 'tok' }, header: 'Ce-Id' } },
    }),
    ['spec.updates.auth.header', 'not Host, Content-Type or a ce- header'],
  ],
];

const campaign = (extra: Spec = {}): Spec => ({
  senders: { names: ['sender'] },
  message: { text: 'hello' },
  recipients: { usernames: ['alice_example'] },
  ...extra,
});

const badCampaigns: BadCase[] = [
  [
    'names and selector',
    campaign({ senders: { names: ['a'], selector: { matchLabels: { team: 'x' } } } }),
    ['spec.senders', 'exactly one of senders.names or senders.selector'],
  ],
  [
    'no senders',
    campaign({ senders: {} }),
    ['spec.senders', 'exactly one of senders.names or senders.selector'],
  ],
  ['no recipients', campaign({ recipients: {} }), ['spec.recipients', 'at least one recipient']],
  [
    'zero pace',
    campaign({ pace: { messagesPerMinute: 0 } }),
    ['spec.pace.messagesPerMinute', 'greater than or equal to 1'],
  ],
  [
    'schedule ends before it starts',
    campaign({ schedule: { startTime: '2026-12-01T10:00:00Z', endTime: '2026-12-01T09:00:00Z' } }),
    ['spec.schedule.endTime', 'after schedule.startTime'],
  ],
  [
    'lateness without a start',
    campaign({ schedule: { maxLatenessSeconds: 3600 } }),
    ['spec.schedule.maxLatenessSeconds', 'needs schedule.startTime'],
  ],
  [
    'window time not HH:MM',
    campaign({ schedule: { window: { timeZone: 'UTC', start: '9am', end: '18:00' } } }),
    ['spec.schedule.window.start', 'HH:MM'],
  ],
  [
    'unknown weekday',
    campaign({ schedule: { window: { timeZone: 'UTC', start: '09:00', end: '18:00', days: ['Monday'] } } }),
    ['spec.schedule.window.days[0]', 'Unsupported value'],
  ],
  [
    'bad username',
    campaign({ recipients: { usernames: ['ab'] } }),
    ['spec.recipients.usernames', 'must be a Telegram username'],
  ],
  [
    'bad chat username',
    campaign({ recipients: { chats: ['x'] } }),
    ['spec.recipients.chats', 'must be a public username'],
  ],
  [
    'bad recipient phone',
    campaign({ recipients: { phoneNumbers: ['555-0100'] } }),
    ['spec.recipients.phoneNumbers', 'E.164'],
  ],
  ['empty message', campaign({ message: { text: '' } }), ['spec.message.text', 'at least 1']],
  [
    'recipients ConfigMap name not a DNS subdomain',
    campaign({ recipients: { configMapRefs: [{ name: 'My_Recipients' }] } }),
    ['spec.recipients.configMapRefs[0].name', 'must be the name of a ConfigMap'],
  ],
  [
    'recipients ConfigMap key with a slash',
    campaign({ recipients: { configMapRefs: [{ name: 'recipients', key: 'a/b' }] } }),
    ['spec.recipients.configMapRefs[0].key', "must be a key of the ConfigMap's data"],
  ],
  [
    'account name longer than an account name can be',
    campaign({ senders: { names: ['a'.repeat(64)] } }),
    ['spec.senders.names[0]', 'Too long'],
  ],
  [
    'auto-pause ratio over 100',
    campaign({ autoPause: { failureRatioPercent: 101 } }),
    ['spec.autoPause.failureRatioPercent', 'less than or equal to 100'],
  ],
];

/** The API server's answer to a refused request: its message, and the whole Status as sent. */
function refusal(error: unknown): { message: string; body: string } {
  if (error instanceof k8s.ApiException) {
    const body: unknown = typeof error.body === 'string' ? JSON.parse(error.body) : error.body;
    return {
      message: (body as { message?: string }).message ?? String(error.body),
      body: JSON.stringify(body),
    };
  }
  throw error;
}

function messageOf(error: unknown): string {
  return refusal(error).message;
}

/** Phone numbers of the table (personal data): they never come back in an error either. */
const PHONES = /5550100001|555CALLNOW|555-0100/;

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

  const refused = (plural: string, kind: string, name: string, spec: Spec) =>
    create(plural, kind, name, spec).then(
      () => ({ message: 'accepted', body: 'accepted' }),
      (error: unknown) => refusal(error),
    );

  const expectRefused = (
    answer: { message: string; body: string },
    expected: string[],
    secrets: string[] = [],
  ): void => {
    for (const text of expected) expect(answer.message).toContain(text);
    // Nothing that may be secret comes back: not in the message, not in details.causes.
    expect(answer.body).toContain('"reason":"Invalid"');
    for (const value of secrets) expect(answer.body).not.toContain(value);
    expect(answer.body).not.toMatch(PHONES);
  };

  // A rest parameter: jest hands a `done` callback to a test function declaring more parameters than a row has.
  it.each(badAccounts)('TelegramAccount: %s', async (...[, spec, expected, secrets]: BadCase) => {
    expectRefused(await refused('telegramaccounts', 'TelegramAccount', 'bad', spec), expected, secrets);
  });

  it.each(badCampaigns)('Campaign: %s', async (...[, spec, expected, secrets]: BadCase) => {
    expectRefused(await refused('campaigns', 'Campaign', 'bad', spec), expected, secrets);
  });

  it('refuses account names longer than a label value, and takes one of 63 characters', async () => {
    expectRefused(await refused('telegramaccounts', 'TelegramAccount', 'a'.repeat(64), bot()), [
      'metadata.name',
      'at most 63 characters',
      'label value',
      'choose a shorter name',
    ]);
    await create('telegramaccounts', 'TelegramAccount', 'a'.repeat(63), bot());
  });

  it('takes every Secret name, key, proxy server and link form the runtime can use', async () => {
    await create(
      'telegramaccounts',
      'TelegramAccount',
      'valid-forms',
      user({
        apiCredentialsSecretRef: { name: 'telegram.api-1', apiIdKey: 'API_ID', apiHashKey: 'api.hash-2' },
        passwordSecretRef: { name: 'pw.v2', key: 'two-step_password.txt' },
        runtimePool: 'p'.repeat(38),
        proxy: {
          type: 'Socks5',
          server: 'proxy-1.example.com',
          port: 1080,
          credentialsSecretRef: { name: 'socks-creds' },
          failover: [
            { type: 'Http', server: '192.0.2.10', port: 8080, httpOnly: true },
            { type: 'Socks5', server: '2001:db8::10', port: 1080 },
            { type: 'MTProto', server: 'mt_proxy.example.', port: 443, credentialsSecretRef: { name: 'mt' } },
            { link: 'tg://socks?server=s.example&port=1080' },
            { link: 'https://t.me/proxy?server=p.example&port=443', credentialsSecretRef: { name: 'mt' } },
          ],
        },
      }),
    );
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
      bot({ proxy: { link: 'https://t.me/proxy?server=p&port=443', credentialsSecretRef: { name: 'mt' } } }),
      false,
    );
    await create(
      'telegramaccounts',
      'TelegramAccount',
      'valid-qr',
      user({ loginMethod: 'QR', phoneNumber: '+15550100002' }),
      false,
    );
    const withUpdates = (await create(
      'telegramaccounts',
      'TelegramAccount',
      'valid-updates',
      bot({
        updates: {
          sink: { ref: { name: 'echo' }, uri: '/events' },
          deadLetterSink: { uri: 'https://dead-letters.example.com/tdlib', caBundle: 'LS0tLS1CRUdJTg==' },
          auth: { secretRef: { name: 'receiver-token' } },
        },
      }),
      false,
    )) as { spec: Spec };
    expect(withUpdates.spec).toMatchObject({
      updates: {
        sink: { ref: { kind: 'Service', name: 'echo' }, uri: '/events' },
        kinds: ['MessageNew', 'MessageEdited', 'MessageDeleted', 'CallbackQuery'],
        maxParallelChats: 10,
        auth: { secretRef: { name: 'receiver-token', key: 'token' }, header: 'X-Tdlib-Operator-Token' },
      },
    });
    // Routable addresses, IPv6 included, and names that merely contain "localhost" are receivers.
    for (const [i, uri] of [
      'http://10.0.0.7:8080/hook',
      'https://[2001:db8::7]/e',
      'https://localhost.example.com/',
    ].entries())
      await create(
        'telegramaccounts',
        'TelegramAccount',
        `valid-sink-${i}`,
        bot({ updates: { sink: { uri } } }),
        false,
      );
    const c = (await create('campaigns', 'Campaign', 'valid', campaign(), false)) as { spec: Spec };
    expect(c.spec).toMatchObject({
      message: { text: 'hello', parseMode: 'Plain' },
      suspend: false,
      inDoubtPolicy: 'Skip',
    });
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

  it('freezes a campaign message once sending has started, but still takes new recipients', async () => {
    await create('campaigns', 'Campaign', 'frozen', campaign(), false);
    const patch = (body: Spec, subresource?: string) =>
      (subresource
        ? custom.patchNamespacedCustomObjectStatus(
            { group: GROUP, version: VERSION, namespace, plural: 'campaigns', name: 'frozen', body },
            k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
          )
        : custom.patchNamespacedCustomObject(
            { group: GROUP, version: VERSION, namespace, plural: 'campaigns', name: 'frozen', body },
            k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
          )
      ).then(
        () => 'accepted',
        (error: unknown) => messageOf(error),
      );
    // Before it started, the message may still be edited.
    expect(await patch({ spec: { message: { text: 'hello, world' } } })).toBe('accepted');
    expect(await patch({ status: { startedAt: '2026-11-28T10:00:00Z' } }, 'status')).toBe('accepted');
    const refusedEdit = await patch({ spec: { message: { text: 'something else' } } });
    expect(refusedEdit).toContain('spec.message cannot change once sending has started');
    expect(await patch({ spec: { recipients: { usernames: ['alice_example', 'bob_example'] } } })).toBe(
      'accepted',
    );
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
    expect(campaigns.spec.names.categories).toEqual(['telegram']);
    expect(campaigns.spec.versions[0]?.additionalPrinterColumns?.map((c) => c.name)).toEqual([
      'Phase',
      'Sent',
      'Failed',
      'Pending',
      'Total',
      'ETA',
      'Age',
    ]);
    const slices = await crds.readCustomResourceDefinition({ name: `campaignslices.${GROUP}` });
    expect(slices.spec.names.shortNames).toEqual(['tgcs']);
    // Internal: not listed by `kubectl get telegram`.
    expect(slices.spec.names.categories).toBeUndefined();
  });
});
