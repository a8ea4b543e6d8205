/**
 * TelegramAccount.spec.updates: where the account's incoming updates go (a sink, as Knative's Destination:
 * a Service of this namespace or a URI) and how they are delivered. The rules refuse sinks that would make
 * the runtime post an account's messages to itself, to the node or to a cloud metadata service.
 */
import { Type, object, stringEnum, type CelRule, type Static } from './schema.js';
import { secretKeyRef, secretNameRef } from './common.js';

export const UPDATE_KIND_VALUES = [
  'MessageNew',
  'MessageEdited',
  'MessageDeleted',
  'CallbackQuery',
  'ChatMember',
] as const;
/** The Bot API's default: everything but chat member changes, which a receiver asks for. */
export const DEFAULT_UPDATE_KINDS = ['MessageNew', 'MessageEdited', 'MessageDeleted', 'CallbackQuery'];

/** A DNS-1035 label: the form of Service names. */
const SERVICE_NAME_REGEX = '^[a-z]([-a-z0-9]*[a-z0-9])?$';
/** An HTTP header name (RFC 9110 token). */
const HEADER_NAME_REGEX = "^[-!#$%&'*+.^_`|~0-9A-Za-z]+$";
const MAX_URI = 1024;

/**
 * The sink's uri names no loopback, link-local, unspecified or metadata host: one rule per test, as CRD
 * rules cannot bind the parsed host to a name and one rule with all of them exceeds the cost budget.
 * The runtime checks the address it actually connects to as well (names can resolve to anything).
 */
/** Loopback, link-local and unspecified IP literals, and the AWS IPv6 metadata address, as a uri's host. */
const FORBIDDEN_IP_HOST =
  '(?i)^[a-z][-a-z0-9+.]*://([^/?#@]*@)?(127[.][0-9]+[.][0-9]+[.][0-9]+|169[.]254[.][0-9]+[.][0-9]+|0[.]0[.]0[.]0|[0-9]+|0x[0-9a-f]+|[[](::1?|(0{1,4}:){7}0{0,3}1|::ffff:(127|169[.]254)[.][0-9.]+|fe[89ab][0-9a-f]{0,2}:[^]]*|fd00:ec2::254)[]])([:/?#]|$)';
const FORBIDDEN_HOST_TESTS = [
  "!(url(self.uri).getHostname() in ['localhost', 'metadata.google.internal'])",
  "!url(self.uri).getHostname().endsWith('.localhost')",
  `!self.uri.matches('${FORBIDDEN_IP_HOST}')`,
];
const FORBIDDEN_HOST_MESSAGE =
  'must not point at a loopback, link-local, unspecified or cloud metadata address (localhost, 127.0.0.0/8, ::1, 169.254.0.0/16, fe80::/10, metadata.google.internal): the runtime would post the account’s messages to itself, its node or the cloud’s credentials service; use a Service (ref) or a routable address';

const sinkRules = (field: string): CelRule[] => [
  {
    rule: 'has(self.ref) || has(self.uri)',
    message: `${field} needs ref (a Service in this namespace) or uri (an http:// or https:// URL)`,
    reason: 'FieldValueRequired',
  },
  {
    rule: "!has(self.ref) || !has(self.uri) || self.uri.startsWith('/')",
    message: `with ref, uri may only be a path appended to the Service's address (e.g. /events); for a receiver outside the cluster remove ref`,
    fieldPath: '.uri',
  },
  {
    rule: "has(self.ref) || !has(self.uri) || (isURL(self.uri) && url(self.uri).getScheme() in ['http', 'https'] && url(self.uri).getHostname() != '')",
    message:
      'must be an absolute http:// or https:// URL with a host (e.g. https://receiver.example.com/events)',
    fieldPath: '.uri',
  },
  ...FORBIDDEN_HOST_TESTS.map((test) => ({
    rule: `has(self.ref) || !has(self.uri) || !isURL(self.uri) || (${test})`,
    message: FORBIDDEN_HOST_MESSAGE,
    fieldPath: '.uri',
  })),
  {
    rule: "!has(self.caBundle) || has(self.ref) || (has(self.uri) && self.uri.startsWith('https://'))",
    message: 'caBundle verifies an https:// receiver; use an https:// uri or remove caBundle',
    fieldPath: '.caBundle',
  },
];

const sink = (field: string, description: string) =>
  object(
    {
      ref: Type.Optional(
        object(
          {
            kind: Type.Optional(
              stringEnum(['Service'] as const, {
                description: 'Kind of the receiver. Only Service (core/v1), in this namespace.',
                default: 'Service',
              }),
            ),
            name: Type.String({
              description: 'Name of the Service in this namespace.',
              minLength: 1,
              maxLength: 63,
            }),
            port: Type.Optional(
              Type.Integer({
                description: "The Service's port to post to. Defaults to its first port.",
                minimum: 1,
                maximum: 65535,
              }),
            ),
          },
          {
            description: 'A Service in the same namespace as the account: its cluster address is the sink.',
            'x-kubernetes-validations': [
              {
                rule: `self.name.matches('${SERVICE_NAME_REGEX}')`,
                message:
                  'must be a Service name: lower-case letters, digits and "-", starting with a letter (e.g. echo-receiver)',
                fieldPath: '.name',
              },
            ],
          },
        ),
      ),
      uri: Type.Optional(
        Type.String({
          description:
            'An absolute http:// or https:// URL of the receiver; with ref, a path appended to the Service address.',
          minLength: 1,
          maxLength: MAX_URI,
        }),
      ),
      caBundle: Type.Optional(
        Type.String({
          description:
            'PEM certificates (base64-encoded, as in Knative) that an https:// receiver must present a certificate from. Defaults to the runtime image’s trusted roots.',
          maxLength: 65536,
        }),
      ),
    },
    { description, 'x-kubernetes-validations': sinkRules(field) },
  );

export const updatesSpec = object(
  {
    sink: sink('sink', 'Where the account’s updates are posted, as CloudEvents 1.0 in HTTP binary mode.'),
    kinds: Type.Optional(
      Type.Array(
        stringEnum(UPDATE_KIND_VALUES, {
          description: 'One kind of update.',
        }),
        {
          description: `Which updates to deliver: ${UPDATE_KIND_VALUES.join(', ')}. Defaults to all but ChatMember (as the Bot API).`,
          default: DEFAULT_UPDATE_KINDS,
          maxItems: UPDATE_KIND_VALUES.length,
          'x-kubernetes-list-type': 'set',
        },
      ),
    ),
    maxParallelChats: Type.Optional(
      Type.Integer({
        description:
          'Chats delivered at once; events of one chat always go one at a time, in order. Defaults to 10.',
        minimum: 1,
        maximum: 100,
        default: 10,
      }),
    ),
    retry: Type.Optional(
      object(
        {
          backoffSeconds: Type.Optional(
            Type.Integer({
              description: 'Wait after the first failed try; it doubles per failure. Defaults to 1.',
              minimum: 1,
              maximum: 60,
              default: 1,
            }),
          ),
          maxBackoffSeconds: Type.Optional(
            Type.Integer({
              description:
                'The doubling stops here; each wait is then a random value between it and twice it. Defaults to 60.',
              minimum: 1,
              maximum: 3600,
              default: 60,
            }),
          ),
        },
        {
          description:
            'How failed deliveries are retried (a Retry-After answer, up to an hour, overrides the backoff).',
          'x-kubernetes-validations': [
            {
              rule: '!has(self.backoffSeconds) || !has(self.maxBackoffSeconds) || self.maxBackoffSeconds >= self.backoffSeconds',
              message: 'maxBackoffSeconds must be at least backoffSeconds',
              fieldPath: '.maxBackoffSeconds',
            },
          ],
        },
      ),
    ),
    lifetimeSeconds: Type.Optional(
      object(
        {
          messages: Type.Optional(
            Type.Integer({
              description:
                'How long new, edited and deleted message events are tried for. Defaults to 86400 (a day, as the Bot API).',
              minimum: 60,
              maximum: 86400,
              default: 86400,
            }),
          ),
          callbackQueries: Type.Optional(
            Type.Integer({
              description:
                'How long a button press is tried for; Telegram stops accepting an answer soon after. Defaults to 150.',
              minimum: 5,
              maximum: 900,
              default: 150,
            }),
          ),
          chatMembers: Type.Optional(
            Type.Integer({
              description: 'How long chat member changes are tried for. Defaults to 86400.',
              minimum: 60,
              maximum: 86400,
              default: 86400,
            }),
          ),
        },
        { description: 'How long an event is tried before it is dead-lettered or dropped, per kind.' },
      ),
    ),
    deadLetterSink: Type.Optional(
      sink(
        'deadLetterSink',
        'Where events go that the sink refused (a 4xx other than 404, 408, 409 and 429) or that outlived their lifetime. Without it they are dropped (and counted).',
      ),
    ),
    auth: Type.Optional(
      object(
        {
          secretRef: Type.Optional(
            secretKeyRef(
              'Secret whose value is sent with every event, so the receiver can tell the account’s events from anyone else’s. Its owner must label it telegram.tdlib-operator.dev/usable-by-accounts=true.',
              'token',
            ),
          ),
          clientCertificateSecretRef: Type.Optional(
            secretNameRef(
              'A Secret holding tls.crt and tls.key (type kubernetes.io/tls, e.g. made by cert-manager): the client certificate the runtime presents to an https:// receiver that asks for one (mutual TLS). Its owner must label it telegram.tdlib-operator.dev/usable-by-accounts=true.',
            ),
          ),
          header: Type.Optional(
            Type.String({
              description: 'The header it is sent in. Defaults to X-Tdlib-Operator-Token.',
              default: 'X-Tdlib-Operator-Token',
              minLength: 1,
              maxLength: 128,
            }),
          ),
        },
        {
          description:
            'How the receiver authenticates the sender: a Secret value sent as a header, a client certificate (mutual TLS), or both.',
          'x-kubernetes-validations': [
            {
              rule: 'has(self.secretRef) || has(self.clientCertificateSecretRef)',
              message:
                'needs secretRef (a Secret value sent as a header) or clientCertificateSecretRef (a client certificate for mutual TLS), or both',
            },
            {
              rule: '!has(self.header) || has(self.secretRef)',
              message: 'header names where the secretRef value is sent; set secretRef or remove header',
              fieldPath: '.header',
            },
            {
              rule: `!has(self.header) || (self.header.matches("${HEADER_NAME_REGEX}") && !self.header.lowerAscii().startsWith('ce-') && self.header.lowerAscii() != 'content-type' && self.header.lowerAscii() != 'host')`,
              message:
                'must be an HTTP header name (letters, digits, "-"), not Host, Content-Type or a ce- header (those carry the event)',
              fieldPath: '.header',
            },
          ],
        },
      ),
    ),
  },
  {
    description:
      'Delivers what the account receives (messages, edits, deletions, button presses, member changes) to a receiver: at least once, in order within a chat, chats in parallel, from an outbox that survives restarts and moves.',
  },
);

export type UpdatesSpec = Static<typeof updatesSpec>;

const count = (description: string) => Type.Integer({ description, minimum: 0, format: 'int64' });

/** status.updates, written by the runtime hosting the account. */
export const updatesStatus = object(
  {
    sinkURI: Type.Optional(
      Type.String({
        description: 'The address events are posted to (spec.updates.sink resolved).',
        maxLength: 2048,
      }),
    ),
    deadLetterSinkURI: Type.Optional(
      Type.String({ description: 'The address of spec.updates.deadLetterSink, resolved.', maxLength: 2048 }),
    ),
    delivered: Type.Optional(count('Events the sink accepted (2xx).')),
    deadLettered: Type.Optional(count('Events the dead-letter sink accepted.')),
    dropped: Type.Optional(
      count(
        'Events given up (refused by the sink or past their lifetime) with no dead-letter sink to take them.',
      ),
    ),
    pending: Type.Optional(count('Events in the outbox, not yet delivered.')),
    retrying: Type.Optional(count('Pending events that failed at least once and wait for their next try.')),
    oldestUndeliveredTime: Type.Optional(
      Type.String({ description: 'When the oldest pending event entered the outbox.', format: 'date-time' }),
    ),
    resumeFrom: Type.Optional(
      Type.String({
        description:
          'Messages dated from here on may not have been delivered yet: a pod that starts the account without its outbox refills from here.',
        format: 'date-time',
      }),
    ),
    lastFailure: Type.Optional(
      object(
        {
          time: Type.String({ description: 'When it happened.', format: 'date-time' }),
          message: Type.String({
            description: 'What the sink answered, or why there was no answer.',
            maxLength: 256,
          }),
        },
        { description: 'The last failed delivery.' },
      ),
    ),
  },
  {
    description:
      'Delivery of the account’s updates (written by the runtime; counters are reported at most every 10 s).',
  },
);
