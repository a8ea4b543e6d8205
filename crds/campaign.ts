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

export const campaignSpec = object(
  {
    accounts: object(
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
        description: 'The TelegramAccounts that send this campaign: names or a label selector, exactly one.',
        'x-kubernetes-validations': [
          {
            rule: 'has(self.names) != has(self.selector)',
            message: 'set exactly one of accounts.names or accounts.selector',
          },
          {
            rule: '!has(self.names) || size(self.names) > 0',
            message: 'accounts.names must list at least one TelegramAccount',
            fieldPath: '.names',
          },
        ],
      },
    ),
    message: object(
      {
        text: Type.String({
          description: "Message text, up to 4096 characters (Telegram's limit).",
          minLength: 1,
          maxLength: 4096,
        }),
        parseMode: Type.Optional(
          stringEnum(['Plain', 'Markdown', 'HTML'] as const, {
            description: 'How text is formatted: Plain, Markdown (MarkdownV2) or HTML. Defaults to Plain.',
            default: 'Plain',
          }),
        ),
        disableLinkPreview: Type.Optional(Type.Boolean({ description: 'Send without link previews.' })),
      },
      { description: 'The one message every recipient gets.' },
    ),
    recipients: object(
      {
        usernames: Type.Optional(
          Type.Array(
            Type.String({
              description: 'A public username, with or without "@".',
              maxLength: 33,
              'x-kubernetes-validations': [
                {
                  rule: "self.matches('^@?[a-zA-Z][a-zA-Z0-9_]{3,31}$')",
                  message:
                    'must be a Telegram username: 4-32 letters, digits or underscores, starting with a letter',
                },
              ],
            }),
            { description: 'Recipients by username.', maxItems: 5000 },
          ),
        ),
        phoneNumbers: Type.Optional(
          Type.Array(Type.String({ description: 'An E.164 phone number.', maxLength: 16 }), {
            description: 'Recipients by phone number (imported as contacts first).',
            maxItems: 5000,
          }),
        ),
        userIds: Type.Optional(
          Type.Array(Type.Integer({ description: 'A Telegram user id.', minimum: 1, format: 'int64' }), {
            description: 'Recipients by Telegram user id.',
            maxItems: 5000,
          }),
        ),
        configMapRef: Type.Optional(
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
              description:
                'A ConfigMap with one recipient (@username, +phone or user id) per line, for long lists.',
              'x-kubernetes-validations': [
                secretNameRule('name', true, 'ConfigMap'),
                dataKeyRule('key', 'recipients', 'ConfigMap'),
              ],
            },
          ),
        ),
      },
      {
        description: 'Who receives the message.',
        'x-kubernetes-validations': [
          {
            rule: 'has(self.usernames) || has(self.phoneNumbers) || has(self.userIds) || has(self.configMapRef)',
            message:
              'list at least one recipient in usernames, phoneNumbers or userIds, or name a configMapRef',
          },
          {
            rule: `!has(self.phoneNumbers) || self.phoneNumbers.all(p, p.matches(${E164_REGEX}))`,
            message: `every entry of phoneNumbers ${E164_MESSAGE}`,
            fieldPath: '.phoneNumbers',
          },
        ],
      },
    ),
    rateLimit: Type.Optional(
      object(
        {
          messagesPerMinute: Type.Optional(
            Type.Integer({
              description: 'Campaign-wide sends per minute. Must be > 0. Defaults to 20.',
              minimum: 1,
              maximum: 100000,
              default: 20,
            }),
          ),
          perAccountMessagesPerMinute: Type.Optional(
            Type.Integer({
              description: 'Sends per minute from one account. Must be > 0. Defaults to 20.',
              minimum: 1,
              maximum: 10000,
              default: 20,
            }),
          ),
        },
        { description: 'Send rate limits; Telegram flood waits slow sending further.' },
      ),
    ),
    schedule: Type.Optional(
      object(
        {
          startTime: Type.Optional(
            Type.String({ description: 'Do not send before this time (RFC 3339).', format: 'date-time' }),
          ),
          endTime: Type.Optional(
            Type.String({ description: 'Stop sending at this time (RFC 3339).', format: 'date-time' }),
          ),
        },
        {
          description: 'Sending window.',
          'x-kubernetes-validations': [
            {
              rule: '!has(self.startTime) || !has(self.endTime) || timestamp(self.endTime) > timestamp(self.startTime)',
              message: 'schedule.endTime must be after schedule.startTime',
              fieldPath: '.endTime',
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
              description: 'Attempts per recipient before it counts as failed. Defaults to 3.',
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
        },
        { description: 'Retry policy for failed sends (flood waits are always honoured on top).' },
      ),
    ),
    suspend: Type.Optional(
      Type.Boolean({ description: 'Pauses sending; false resumes. Defaults to false.', default: false }),
    ),
  },
  { description: 'One message to many recipients from a set of TelegramAccounts.' },
);

export const campaignStatus = object(
  {
    observedGeneration: Type.Optional(
      Type.Integer({ description: 'The .metadata.generation last processed.', format: 'int64' }),
    ),
    total: Type.Optional(Type.Integer({ description: 'Recipients in the campaign.', minimum: 0 })),
    sent: Type.Optional(
      Type.Integer({ description: 'Recipients the message was delivered to.', minimum: 0 }),
    ),
    failed: Type.Optional(
      Type.Integer({ description: 'Recipients that failed after every retry.', minimum: 0 }),
    ),
    pending: Type.Optional(Type.Integer({ description: 'Recipients not yet sent to.', minimum: 0 })),
    startedAt: Type.Optional(Type.String({ description: 'When sending started.', format: 'date-time' })),
    completedAt: Type.Optional(
      Type.String({ description: 'When every recipient was sent to or failed.', format: 'date-time' }),
    ),
    conditions: Type.Optional(conditions),
  },
  {
    description:
      'Counters and conditions only: per-recipient state is never stored in the object (size limit).',
  },
);

export type CampaignSpec = Static<typeof campaignSpec>;
export type CampaignStatus = Static<typeof campaignStatus>;
export type Campaign = KubeObject<CampaignSpec, CampaignStatus> & {
  apiVersion: typeof API_VERSION;
  kind: 'Campaign';
};

export const campaignPrinterColumns = [
  { name: 'Sent', type: 'integer', jsonPath: '.status.sent', description: 'Delivered.' },
  { name: 'Failed', type: 'integer', jsonPath: '.status.failed', description: 'Failed after retries.' },
  { name: 'Total', type: 'integer', jsonPath: '.status.total', description: 'Recipients.' },
  {
    name: 'Ready',
    type: 'string',
    jsonPath: '.status.conditions[?(@.type=="Ready")].status',
    description: 'Running as desired.',
  },
  { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
];
