import { Type, conditions, object, stringEnum, type CelRule, type Static } from './schema.js';
import {
  API_VERSION,
  E164_MESSAGE,
  E164_REGEX,
  MAX_ACCOUNT_NAME,
  dataKeyRule,
  phoneNumber,
  poolName,
  secretKeyRef,
  secretNameRef,
  secretNameRule,
} from './common.js';
import type { KubeObject } from './kube-object.js';
import { updatesSpec, updatesStatus } from './updates.js';

export const TELEGRAM_ACCOUNT_KIND = 'TelegramAccount';
export const TELEGRAM_ACCOUNT_PLURAL = 'telegramaccounts';

/** A host name (letters, digits, "-", "_", dots) or IPv4 address, or an IPv6 address without brackets. */
const PROXY_HOST_REGEX =
  '^([a-zA-Z0-9_]([-a-zA-Z0-9_]*[a-zA-Z0-9_])?([.][a-zA-Z0-9_]([-a-zA-Z0-9_]*[a-zA-Z0-9_])?)*[.]?|([0-9a-fA-F]{0,4}:){2,7}([0-9a-fA-F]{0,4}|[0-9]{1,3}([.][0-9]{1,3}){3}))$';
const PROXY_LINK_REGEX = '^(tg://(proxy|socks)[?]|https://t[.]me/(proxy|socks)[?])';
/** Credentials inline in a link (also behind a %-escaped parameter name, which the runtime would decode). */
const PROXY_LINK_CREDENTIALS_REGEX = '(?i)[?&]([^=&#]*%|secret=|user=|pass=)';
const MTPROTO_LINK_REGEX = '^(tg://proxy|https://t[.]me/proxy)';
/** One proxy server: given either as a link or as type + server + port. */
const proxyServerProperties = {
  type: Type.Optional(
    stringEnum(['Socks5', 'Http', 'MTProto'] as const, {
      description: 'Proxy protocol. Not set when link is used.',
    }),
  ),
  server: Type.Optional(
    Type.String({
      description:
        'Host name or IP address of the proxy, nothing else: no scheme, no user:password@, no :port (see port).',
      minLength: 1,
      maxLength: 253,
    }),
  ),
  port: Type.Optional(
    Type.Integer({ description: 'TCP port of the proxy, 1-65535.', minimum: 1, maximum: 65535 }),
  ),
  link: Type.Optional(
    Type.String({
      description:
        'A tg://proxy, tg://socks, https://t.me/proxy or https://t.me/socks link with server and port, instead of type, server and port. Without secret=, user= or pass=: those go into the Secret named by credentialsSecretRef.',
      maxLength: 2048,
    }),
  ),
  credentialsSecretRef: Type.Optional(
    secretNameRef(
      'Secret with the proxy credentials: keys "username" and "password" for Socks5 and Http, "secret" for MTProto. Its owner must label it telegram.tdlib-operator.dev/usable-by-accounts=true.',
    ),
  ),
  httpOnly: Type.Optional(
    Type.Boolean({
      description: 'Http proxies only: use the proxy for HTTP requests only, not for TCP (CONNECT).',
    }),
  ),
};

/** Rules of one proxy entry, on the entry itself: a link or a server may hold credentials, never echoed. */
const proxyServerRules: CelRule[] = [
  {
    rule: `!has(self.link) || self.link.matches('${PROXY_LINK_REGEX}')`,
    message:
      'must be a tg://proxy?, tg://socks?, https://t.me/proxy? or https://t.me/socks? link; or use type, server and port',
    fieldPath: '.link',
  },
  {
    rule: `!has(self.link) || !self.link.matches('${PROXY_LINK_CREDENTIALS_REGEX}')`,
    message:
      'must not carry secret=, user= or pass= (nor %-escaped parameter names): the spec is readable by anyone who can read this TelegramAccount; remove them from the link and put them into the Secret named by credentialsSecretRef (key "secret" for tg://proxy, "username" and "password" for tg://socks)',
    fieldPath: '.link',
  },
  {
    rule: `!has(self.link) || !self.link.matches('${MTPROTO_LINK_REGEX}') || has(self.credentialsSecretRef)`,
    message: 'an MTProto (tg://proxy) link needs credentialsSecretRef naming a Secret with key "secret"',
    fieldPath: '.credentialsSecretRef',
    reason: 'FieldValueRequired',
  },
  {
    rule: `!has(self.server) || self.server.matches('${PROXY_HOST_REGEX}')`,
    message:
      'must be a host name or an IP address only (e.g. proxy.example.com, 192.0.2.10 or 2001:db8::10): no scheme such as socks5://, no user:password@ (credentials go into the Secret named by credentialsSecretRef), no :port (set port), no path',
    fieldPath: '.server',
  },
  {
    rule: 'has(self.link) ? !(has(self.type) || has(self.server) || has(self.port)) : (has(self.type) && has(self.server) && has(self.port))',
    message: 'set either link, or type, server and port together (not both)',
  },
  {
    rule: "!has(self.type) || self.type != 'MTProto' || has(self.credentialsSecretRef)",
    message: 'an MTProto proxy needs credentialsSecretRef naming a Secret with key "secret"',
    fieldPath: '.credentialsSecretRef',
    reason: 'FieldValueRequired',
  },
  {
    rule: "!has(self.httpOnly) || (has(self.type) && self.type == 'Http')",
    message: 'httpOnly applies to Http proxies only',
    fieldPath: '.httpOnly',
    reason: 'FieldValueForbidden',
  },
];

const proxyServer = object(proxyServerProperties, {
  description: 'A proxy server to reach Telegram through.',
  'x-kubernetes-validations': proxyServerRules,
});

const proxy = object(
  {
    ...proxyServerProperties,
    failover: Type.Optional(
      Type.Array(proxyServer, {
        description: 'Proxies tried in order when the primary one fails its health check (pingProxy).',
        maxItems: 8,
      }),
    ),
    checkIntervalSeconds: Type.Optional(
      Type.Integer({
        description: 'How often the proxy in use is checked with pingProxy, in seconds. Defaults to 60.',
        minimum: 10,
        maximum: 3600,
        default: 60,
      }),
    ),
  },
  {
    description: 'Proxy for this account, with optional failover. Removing it reconnects directly.',
    'x-kubernetes-validations': proxyServerRules,
  },
);

export const telegramAccountSpec = object(
  {
    type: stringEnum(['User', 'Bot'] as const, {
      description:
        'User logs in with a phone number (code, optional 2FA password, or QR); Bot logs in with a bot token.',
      'x-kubernetes-validations': [
        { rule: 'self == oldSelf', message: 'type is immutable; create a new TelegramAccount instead' },
      ],
    }),
    phoneNumber: Type.Optional(
      phoneNumber('Phone number of a User account, E.164 (e.g. +12025550123). Required for User.'),
    ),
    botTokenSecretRef: Type.Optional(
      secretKeyRef('Secret holding the bot token from @BotFather. Required for Bot.', 'token'),
    ),
    apiCredentialsSecretRef: object(
      {
        name: Type.String({
          description: 'Name of the Secret in this namespace.',
          minLength: 1,
          maxLength: 253,
        }),
        apiIdKey: Type.Optional(
          Type.String({
            description: 'Key holding api_id. Defaults to "api_id".',
            default: 'api_id',
            minLength: 1,
            maxLength: 253,
          }),
        ),
        apiHashKey: Type.Optional(
          Type.String({
            description: 'Key holding api_hash. Defaults to "api_hash".',
            default: 'api_hash',
            minLength: 1,
            maxLength: 253,
          }),
        ),
      },
      {
        description:
          'Secret with the Telegram API credentials (api_id and api_hash from my.telegram.org). Its owner must label it telegram.tdlib-operator.dev/usable-by-accounts=true.',
        'x-kubernetes-validations': [
          secretNameRule('name', true),
          dataKeyRule('apiIdKey', 'api_id'),
          dataKeyRule('apiHashKey', 'api_hash'),
        ],
      },
    ),
    passwordSecretRef: Type.Optional(
      secretKeyRef('Secret holding the two-step verification (2FA) password of a User account.', 'password'),
    ),
    loginMethod: Type.Optional(
      stringEnum(['Code', 'QR'] as const, {
        description:
          'How a User account logs in: Code (a code sent by Telegram, entered with `kubectl telegram login`) or QR (a link shown in status, confirmed from another device). Defaults to Code.',
        default: 'Code',
      }),
    ),
    proxy: Type.Optional(proxy),
    runtimePool: Type.Optional(poolName),
    deletionPolicy: Type.Optional(
      stringEnum(['LogOut', 'KeepSession'] as const, {
        description:
          'On delete: LogOut ends the Telegram session; KeepSession keeps the session backup Secret so the account can be recreated without a new login. Defaults to KeepSession, because a lost session needs a person to log in again.',
        default: 'KeepSession',
      }),
    ),
    suspend: Type.Optional(
      Type.Boolean({
        description: 'Stops the TDLib client and keeps the session; false resumes it. Defaults to false.',
        default: false,
      }),
    ),
    updates: Type.Optional(updatesSpec),
  },
  {
    description: 'Desired state of a Telegram login.',
    'x-kubernetes-validations': [
      {
        rule: "self.type != 'User' || has(self.phoneNumber)",
        message: 'a User account needs spec.phoneNumber (E.164, e.g. +12025550123)',
        fieldPath: '.phoneNumber',
        reason: 'FieldValueRequired',
      },
      {
        rule: `!has(self.phoneNumber) || self.phoneNumber.matches(${E164_REGEX})`,
        message: `phoneNumber ${E164_MESSAGE}`,
        fieldPath: '.phoneNumber',
      },
      {
        rule: "self.type != 'Bot' || has(self.botTokenSecretRef)",
        message: 'a Bot account needs spec.botTokenSecretRef naming the Secret that holds the bot token',
        fieldPath: '.botTokenSecretRef',
        reason: 'FieldValueRequired',
      },
      {
        rule: "self.type != 'Bot' || !has(self.phoneNumber)",
        message: 'a Bot account logs in with its token; remove spec.phoneNumber',
        fieldPath: '.phoneNumber',
        reason: 'FieldValueForbidden',
      },
      {
        rule: "self.type != 'Bot' || !has(self.passwordSecretRef)",
        message: 'a Bot account has no 2FA password; remove spec.passwordSecretRef',
        fieldPath: '.passwordSecretRef',
        reason: 'FieldValueForbidden',
      },
      {
        rule: "self.type != 'User' || !has(self.botTokenSecretRef)",
        message:
          'a User account logs in with its phone number; remove spec.botTokenSecretRef or set type: Bot',
        fieldPath: '.botTokenSecretRef',
        reason: 'FieldValueForbidden',
      },
      {
        rule: "self.type == 'User' || !has(self.loginMethod) || self.loginMethod == 'Code'",
        message: 'loginMethod QR is for User accounts only',
        fieldPath: '.loginMethod',
        reason: 'FieldValueForbidden',
      },
      {
        rule: '!has(oldSelf.phoneNumber) || (has(self.phoneNumber) && self.phoneNumber == oldSelf.phoneNumber)',
        message:
          'phoneNumber is immutable: the session belongs to that number; create a new TelegramAccount instead',
        fieldPath: '.phoneNumber',
      },
    ],
  },
);

export const telegramAccountStatus = object(
  {
    observedGeneration: Type.Optional(
      Type.Integer({
        description: 'The .metadata.generation the operator last processed (written by the operator).',
        format: 'int64',
      }),
    ),
    placement: Type.Optional(
      object(
        {
          pool: Type.String({ description: 'Runtime pool of the account.', maxLength: 63 }),
          pod: Type.String({ description: 'Runtime pod that hosts the account.', maxLength: 253 }),
        },
        { description: 'Where the account runs (written by the operator).' },
      ),
    ),
    hostedBy: Type.Optional(
      Type.String({
        description:
          'The runtime pod that wrote the runtime-owned fields below. Ready is True only while it equals placement.pod (written by the runtime).',
        maxLength: 253,
      }),
    ),
    authorizationState: Type.Optional(
      Type.String({
        description:
          'TDLib authorization state without its prefix: WaitTdlibParameters, WaitPhoneNumber, WaitCode, WaitPassword, WaitOtherDeviceConfirmation, Ready, LoggingOut, Closed (written by the runtime).',
        maxLength: 64,
      }),
    ),
    codeDelivery: Type.Optional(
      Type.String({
        description: 'How the login code was sent (e.g. TelegramMessage, Sms), while waiting for it.',
        maxLength: 64,
      }),
    ),
    qrCodeLink: Type.Optional(
      Type.String({
        description: 'tg://login link to confirm from another device, while a QR login waits.',
        maxLength: 512,
      }),
    ),
    user: Type.Optional(
      object(
        {
          id: Type.Integer({ description: 'Telegram user id.', format: 'int64' }),
          username: Type.Optional(Type.String({ description: 'Public username, if any.', maxLength: 64 })),
          firstName: Type.Optional(Type.String({ description: 'First name.', maxLength: 256 })),
          lastName: Type.Optional(Type.String({ description: 'Last name.', maxLength: 256 })),
          isBot: Type.Optional(Type.Boolean({ description: 'True for bot accounts.' })),
        },
        { description: 'The Telegram user this account is logged in as (written by the runtime).' },
      ),
    ),
    connectionState: Type.Optional(
      Type.String({
        description:
          'TDLib connection state: WaitingForNetwork, ConnectingToProxy, Connecting, Updating, Ready (written by the runtime).',
        maxLength: 64,
      }),
    ),
    proxy: Type.Optional(
      object(
        {
          inUse: Type.String({ description: 'The proxy in use (host:port) or "direct".', maxLength: 300 }),
          message: Type.Optional(
            Type.String({
              description: 'Why the proxy in use was chosen, or why another was dropped.',
              maxLength: 1024,
            }),
          ),
        },
        { description: 'Proxy state (written by the runtime).' },
      ),
    ),
    session: Type.Optional(
      object(
        {
          backupSecretName: Type.Optional(
            Type.String({ description: 'Secret that holds the encrypted session backup.', maxLength: 253 }),
          ),
          lastBackupTime: Type.Optional(
            Type.String({ description: 'When the session was last backed up.', format: 'date-time' }),
          ),
        },
        { description: 'Session backup state (written by the runtime).' },
      ),
    ),
    updates: Type.Optional(updatesStatus),
    conditions: Type.Optional(conditions),
  },
  {
    description:
      'Observed state. The operator writes placement, observedGeneration, Scheduled and Ready (logged in, connected, and served by the pod it is placed on); the runtime pod hosting the account writes the rest.',
  },
);

/**
 * Rules on the whole object (only there can CEL see metadata.name). The name is a label value on the
 * account's Lease and Secrets, so at most 63 characters.
 */
export const telegramAccountValidations: CelRule[] = [
  {
    rule: `self.metadata.name.size() <= ${MAX_ACCOUNT_NAME}`,
    message: `must be at most ${MAX_ACCOUNT_NAME} characters: the name is a label value on the account's Lease and Secrets; choose a shorter name`,
    fieldPath: '.metadata.name',
  },
];

export type TelegramAccountSpec = Static<typeof telegramAccountSpec>;
export type TelegramAccountStatus = Static<typeof telegramAccountStatus>;
export type TelegramAccount = KubeObject<TelegramAccountSpec, TelegramAccountStatus> & {
  apiVersion: typeof API_VERSION;
  kind: 'TelegramAccount';
};

export const telegramAccountPrinterColumns = [
  { name: 'Type', type: 'string', jsonPath: '.spec.type', description: 'User or Bot.' },
  {
    name: 'Auth',
    type: 'string',
    jsonPath: '.status.authorizationState',
    description: 'TDLib authorization state.',
  },
  {
    name: 'Ready',
    type: 'string',
    jsonPath: '.status.conditions[?(@.type=="Ready")].status',
    description: 'Logged in and connected.',
  },
  {
    name: 'Reason',
    type: 'string',
    jsonPath: '.status.conditions[?(@.type=="Ready")].reason',
    description: 'Why it is (not) ready.',
  },
  {
    name: 'Pod',
    type: 'string',
    jsonPath: '.status.placement.pod',
    description: 'Runtime pod hosting the account.',
  },
  { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
];
