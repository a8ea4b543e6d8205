import { Type, conditions, object, stringEnum, type Static } from './schema.js';
import {
  API_VERSION,
  E164_MESSAGE,
  E164_REGEX,
  MAX_ACCOUNT_NAME,
  dataKeyRule,
  labelSelector,
  secretNameRule,
} from './common.js';
import type { KubeObject } from './kube-object.js';

export const CAMPAIGN_KIND = 'Campaign';
export const CAMPAIGN_PLURAL = 'campaigns';

const usernameRule = "'^@?[a-zA-Z][a-zA-Z0-9_]{3,31}$'";
const timeOfDay = "'^([01][0-9]|2[0-3]):[0-5][0-9]$'";

export const campaignSpec = object(
  {
    senders: object(
      {
        names: Type.Optional(
          Type.Array(
            Type.String({
              description: 'Name of a TelegramAccount in this namespace.',
              minLength: 1,
              maxLength: MAX_ACCOUNT_NAME,
            }),
            {
              description: 'TelegramAccounts that send, by name.',
              maxItems: 1000,
              'x-kubernetes-list-type': 'set',
            },
          ),
        ),
        selector: Type.Optional({ ...labelSelector, description: 'TelegramAccounts that send, by label.' }),
      },
      {
        description:
          'The TelegramAccounts that send: names or a label selector, exactly one. Only Ready accounts send; accounts that become Ready or stop being Ready while the campaign runs are taken in or out.',
        'x-kubernetes-validations': [
          {
            rule: 'has(self.names) != has(self.selector)',
            message: 'set exactly one of senders.names or senders.selector',
          },
          {
            rule: '!has(self.names) || size(self.names) > 0',
            message: 'senders.names must list at least one TelegramAccount',
            fieldPath: '.names',
          },
        ],
      },
    ),
    message: object(
      {
        text: Type.String({
          description: "Message text, up to 4096 characters after formatting (Telegram's limit).",
          minLength: 1,
          maxLength: 32768,
        }),
        parseMode: Type.Optional(
          stringEnum(['Plain', 'Markdown', 'HTML'] as const, {
            description:
              'How text is formatted, by TDLib itself: Plain, Markdown (MarkdownV2) or HTML. Defaults to Plain.',
            default: 'Plain',
          }),
        ),
        disableLinkPreview: Type.Optional(Type.Boolean({ description: 'Send without link previews.' })),
        silent: Type.Optional(Type.Boolean({ description: 'Deliver without a notification sound.' })),
        protectContent: Type.Optional(
          Type.Boolean({ description: 'Recipients cannot forward or save the message.' }),
        ),
      },
      {
        description:
          'The one message every recipient gets. It cannot change once sending has started (create a new Campaign instead).',
      },
    ),
    recipients: object(
      {
        usernames: Type.Optional(
          Type.Array(Type.String({ description: 'A public username, with or without "@".', maxLength: 33 }), {
            description: 'Users by username.',
            maxItems: 5000,
          }),
        ),
        phoneNumbers: Type.Optional(
          Type.Array(Type.String({ description: 'An E.164 phone number.', maxLength: 16 }), {
            description: 'Users by phone number (user senders only: imported as contacts first).',
            maxItems: 5000,
          }),
        ),
        userIds: Type.Optional(
          Type.Array(Type.Integer({ description: 'A Telegram user id.', minimum: 1, format: 'int64' }), {
            description: 'Users by Telegram user id (the sender must have seen the user before).',
            maxItems: 5000,
          }),
        ),
        chats: Type.Optional(
          Type.Array(
            Type.String({
              description: 'A public group or channel username, with or without "@".',
              maxLength: 33,
            }),
            {
              description: 'Public groups and channels the senders may post to (e.g. a bot in a group).',
              maxItems: 5000,
            },
          ),
        ),
        configMapRefs: Type.Optional(
          Type.Array(
            object(
              {
                name: Type.String({
                  description: 'Name of the ConfigMap in this namespace.',
                  minLength: 1,
                  maxLength: 253,
                }),
                key: Type.Optional(
                  Type.String({
                    description: 'Key holding one recipient per line. Defaults to "recipients".',
                    default: 'recipients',
                    maxLength: 253,
                  }),
                ),
              },
              {
                description: 'One ConfigMap key with a recipient per line.',
                'x-kubernetes-validations': [
                  secretNameRule('name', true, 'ConfigMap'),
                  dataKeyRule('key', 'recipients', 'ConfigMap'),
                ],
              },
            ),
            {
              description:
                'ConfigMaps with one recipient per line, for lists too long for this object: @username, +phone, a user id, or chat:@name for a public group or channel. Several ConfigMaps make lists of millions.',
              maxItems: 1000,
            },
          ),
        ),
      },
      {
        description:
          'Who receives the message. Duplicates across all lists are removed (and counted). Recipients may be added while the campaign runs; removing one does not unsend it.',
        'x-kubernetes-validations': [
          {
            rule: 'has(self.usernames) || has(self.phoneNumbers) || has(self.userIds) || has(self.chats) || has(self.configMapRefs)',
            message:
              'list at least one recipient in usernames, phoneNumbers, userIds or chats, or name configMapRefs',
          },
          {
            rule: `!has(self.phoneNumbers) || self.phoneNumbers.all(p, p.matches(${E164_REGEX}))`,
            message: `every entry of phoneNumbers ${E164_MESSAGE}`,
            fieldPath: '.phoneNumbers',
          },
          {
            rule: `!has(self.usernames) || self.usernames.all(u, u.matches(${usernameRule}))`,
            message:
              'every entry of usernames must be a Telegram username: 4-32 letters, digits or underscores, starting with a letter',
            fieldPath: '.usernames',
          },
          {
            rule: `!has(self.chats) || self.chats.all(u, u.matches(${usernameRule}))`,
            message:
              'every entry of chats must be a public username: 4-32 letters, digits or underscores, starting with a letter',
            fieldPath: '.chats',
          },
        ],
      },
    ),
    pace: Type.Optional(
      object(
        {
          messagesPerMinute: Type.Optional(
            Type.Integer({
              description: 'Campaign-wide sends per minute, shared by the active senders. Defaults to 60.',
              minimum: 1,
              maximum: 1_000_000,
              default: 60,
            }),
          ),
          perSenderMessagesPerMinute: Type.Optional(
            Type.Integer({
              description:
                'Sends per minute from one sender. Defaults to 20 (Telegram asks bots for about 30/s at most, users far less).',
              minimum: 1,
              maximum: 100_000,
              default: 20,
            }),
          ),
          perSenderDailyLimit: Type.Optional(
            Type.Integer({
              description:
                'Sends per sender per day (the day of schedule.window.timeZone, else UTC). No limit when unset.',
              minimum: 1,
              maximum: 10_000_000,
            }),
          ),
        },
        {
          description:
            'How fast to send. Telegram flood waits slow a sender further; they are always honoured.',
        },
      ),
    ),
    schedule: Type.Optional(
      object(
        {
          startTime: Type.Optional(
            Type.String({ description: 'Do not send before this time (RFC 3339).', format: 'date-time' }),
          ),
          endTime: Type.Optional(
            Type.String({
              description:
                'Stop sending at this time (RFC 3339); recipients not reached by then stay pending.',
              format: 'date-time',
            }),
          ),
          maxLatenessSeconds: Type.Optional(
            Type.Integer({
              description:
                'Do not start at all if the campaign could first start more than this long after startTime (e.g. it was restored from a backup days later).',
              minimum: 1,
            }),
          ),
          window: Type.Optional(
            object(
              {
                timeZone: Type.String({
                  description: 'IANA time zone, e.g. Europe/Berlin.',
                  minLength: 1,
                  maxLength: 64,
                }),
                start: Type.String({ description: 'Local time the window opens, HH:MM.', maxLength: 5 }),
                end: Type.String({
                  description:
                    'Local time the window closes, HH:MM (before start: the window runs past midnight).',
                  maxLength: 5,
                }),
                days: Type.Optional(
                  Type.Array(
                    stringEnum(['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'] as const, {
                      description: 'A weekday.',
                    }),
                    {
                      description: 'Days the window opens on. Defaults to every day.',
                      maxItems: 7,
                      'x-kubernetes-list-type': 'set',
                    },
                  ),
                ),
              },
              {
                description: 'A daily sending window in a time zone, on chosen weekdays.',
                'x-kubernetes-validations': [
                  {
                    rule: `self.start.matches(${timeOfDay})`,
                    message: 'window.start must be HH:MM (00:00-23:59)',
                    fieldPath: '.start',
                  },
                  {
                    rule: `self.end.matches(${timeOfDay})`,
                    message: 'window.end must be HH:MM (00:00-23:59)',
                    fieldPath: '.end',
                  },
                ],
              },
            ),
          ),
        },
        {
          description: 'When to send.',
          'x-kubernetes-validations': [
            {
              rule: '!has(self.startTime) || !has(self.endTime) || timestamp(self.endTime) > timestamp(self.startTime)',
              message: 'schedule.endTime must be after schedule.startTime',
              fieldPath: '.endTime',
            },
            {
              rule: '!has(self.maxLatenessSeconds) || has(self.startTime)',
              message: 'schedule.maxLatenessSeconds needs schedule.startTime',
              fieldPath: '.maxLatenessSeconds',
            },
          ],
        },
      ),
    ),
    retry: Type.Optional(
      object(
        {
          maxAttempts: Type.Optional(
            Type.Integer({
              description:
                'Attempts per recipient for transient failures before it counts as failed. Defaults to 3.',
              minimum: 1,
              maximum: 20,
              default: 3,
            }),
          ),
          backoffSeconds: Type.Optional(
            Type.Integer({
              description: 'First delay between attempts, doubled each time. Defaults to 30.',
              minimum: 1,
              maximum: 86400,
              default: 30,
            }),
          ),
          retryFailedRound: Type.Optional(
            Type.Integer({
              description:
                'Raise it (e.g. from 0 to 1) after the campaign completed to send again to the recipients that failed; delivered ones are never touched.',
              minimum: 0,
            }),
          ),
        },
        { description: 'Retry policy for failed sends (flood waits are always honoured on top).' },
      ),
    ),
    inDoubtPolicy: Type.Optional(
      stringEnum(['Skip', 'Resend'] as const, {
        description:
          'A send whose outcome was lost (the runtime died while it was in flight) and that cannot be checked against the chat history (bot senders): Skip counts it as inDoubt and never sends again (at most once, the default); Resend sends it again (at least once).',
        default: 'Skip',
      }),
    ),
    autoPause: Type.Optional(
      object(
        {
          failureRatioPercent: Type.Integer({
            description: 'Pause when more than this percentage of the last sends failed.',
            minimum: 1,
            maximum: 100,
          }),
          window: Type.Optional(
            Type.Integer({
              description: 'How many of the latest outcomes the ratio is taken over. Defaults to 100.',
              minimum: 10,
              maximum: 100_000,
              default: 100,
            }),
          ),
        },
        {
          description:
            'Pause by itself when too many sends fail (a bad list, a blocked sender). Resume with suspend: false after fixing it.',
        },
      ),
    ),
    suspend: Type.Optional(
      Type.Boolean({
        description:
          'Stops sending within a second (status says Paused once nothing more is sent); false resumes, repeating nobody.',
        default: false,
      }),
    ),
  },
  { description: 'One message to many recipients from a set of TelegramAccounts.' },
);

const counter = (description: string) => Type.Optional(Type.Integer({ description, minimum: 0 }));

export const campaignStatus = object(
  {
    observedGeneration: Type.Optional(
      Type.Integer({ description: 'The .metadata.generation last processed.', format: 'int64' }),
    ),
    phase: Type.Optional(
      stringEnum(['Pending', 'Scheduled', 'Running', 'Paused', 'Completed', 'Failed'] as const, {
        description:
          'Pending (planning), Scheduled (waiting for its start or window), Running, Paused (suspended, auto-paused or no sender can send), Completed (every recipient delivered, failed or in doubt), Failed (it cannot run: e.g. started too late).',
      }),
    ),
    total: counter('Recipients after duplicates were removed.'),
    duplicates: counter('Recipients listed more than once (removed).'),
    sent: counter('Recipients the message was delivered to.'),
    failed: counter('Recipients that cannot get it (final errors, or transient ones after every retry).'),
    pending: counter('Recipients not yet sent to (including ones waiting for a retry).'),
    inFlight: counter('Recipients being sent to right now.'),
    inDoubt: counter('Recipients whose send may or may not have been delivered (see inDoubtPolicy).'),
    failures: Type.Optional(
      Type.Unsafe<Record<string, number>>({
        type: 'object',
        additionalProperties: { type: 'integer' },
        description: 'Failed recipients by reason (UserDeactivated, PrivacyRestricted, ...).',
      }),
    ),
    senders: Type.Optional(
      Type.Array(
        object(
          {
            name: Type.String({ description: 'The TelegramAccount.', maxLength: 253 }),
            sent: Type.Integer({ description: 'Recipients it delivered to.', minimum: 0 }),
            state: stringEnum(['Sending', 'Idle', 'FloodWait', 'Parked', 'NotReady'] as const, {
              description:
                'Sending, Idle (nothing assigned), FloodWait (until `until`), Parked (why in `reason`), NotReady.',
            }),
            reason: Type.Optional(
              Type.String({ description: 'Why it is parked or not ready.', maxLength: 256 }),
            ),
            until: Type.Optional(
              Type.String({ description: 'Until when it waits (flood wait, park).', format: 'date-time' }),
            ),
          },
          { description: 'One sender.' },
        ),
        { description: 'Per-sender summary.', maxItems: 1000 },
      ),
    ),
    messagesPerMinute: counter('Sends per minute over the last minute.'),
    estimatedCompletionTime: Type.Optional(
      Type.String({
        description: 'When the pending recipients should be done at the current rate.',
        format: 'date-time',
      }),
    ),
    startedAt: Type.Optional(Type.String({ description: 'When sending started.', format: 'date-time' })),
    completedAt: Type.Optional(
      Type.String({ description: 'When every recipient was final.', format: 'date-time' }),
    ),
    retryFailedRound: Type.Optional(
      Type.Integer({ description: 'The spec.retry.retryFailedRound acted on.', minimum: 0 }),
    ),
    autoPausedGeneration: Type.Optional(
      Type.Integer({
        description:
          'Set when autoPause stopped the campaign, to the .metadata.generation of then: any later change of the spec resumes it.',
        format: 'int64',
      }),
    ),
    conditions: Type.Optional(conditions),
  },
  {
    description:
      'Counters and conditions, written by the operator only; per-recipient state lives in the CampaignSlices (kubectl telegram campaign report).',
  },
);

export type CampaignSpec = Static<typeof campaignSpec>;
export type CampaignStatus = Static<typeof campaignStatus>;
export type Campaign = KubeObject<CampaignSpec, CampaignStatus> & {
  apiVersion: typeof API_VERSION;
  kind: 'Campaign';
};

/** On the whole object: the message is frozen once sending started (status.startedAt set). */
export const campaignValidations = [
  {
    rule: '!has(oldSelf.status) || !has(oldSelf.status.startedAt) || self.spec.message == oldSelf.spec.message',
    message:
      'spec.message cannot change once sending has started (status.startedAt is set): recipients would get different messages; create a new Campaign',
    fieldPath: '.spec.message',
  },
];

export const campaignPrinterColumns = [
  { name: 'Phase', type: 'string', jsonPath: '.status.phase', description: 'Where the campaign is.' },
  { name: 'Sent', type: 'integer', jsonPath: '.status.sent', description: 'Delivered.' },
  { name: 'Failed', type: 'integer', jsonPath: '.status.failed', description: 'Cannot be delivered.' },
  { name: 'Pending', type: 'integer', jsonPath: '.status.pending', description: 'Not sent yet.' },
  { name: 'Total', type: 'integer', jsonPath: '.status.total', description: 'Recipients.' },
  {
    name: 'ETA',
    // A string, not a date: kubectl prints date columns as an age, and an age in the future as <invalid>.
    type: 'string',
    jsonPath: '.status.estimatedCompletionTime',
    description: 'Expected completion at the current rate.',
  },
  { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
];
