/**
 * CampaignSlice: a slice of one Campaign's recipients and the state of each (as EndpointSlices hold a
 * Service's endpoints). Owned by the Campaign; the operator writes spec (which recipients, which sender,
 * pace, pause), the runtime hosting the assigned sender writes status (the ledger), under that account's
 * session fence. Per-recipient state never goes into the Campaign itself (object size limit).
 */
import { Type, object, type Static } from './schema.js';
import { API_VERSION } from './common.js';
import type { KubeObject } from './kube-object.js';

export const CAMPAIGN_SLICE_KIND = 'CampaignSlice';
export const CAMPAIGN_SLICE_PLURAL = 'campaignslices';

export const campaignSliceSpec = object(
  {
    campaign: Type.String({ description: 'The Campaign this slice belongs to.', maxLength: 253 }),
    index: Type.Integer({ description: 'Position of the slice in the campaign (0, 1, ...).', minimum: 0 }),
    recipients: Type.String({
      description: 'The recipients, encoded (gzip of one normalized recipient per line, base64).',
      maxLength: 1_000_000,
    }),
    count: Type.Integer({ description: 'How many recipients the slice holds.', minimum: 0 }),
    sender: Type.Optional(
      Type.String({
        description: 'The TelegramAccount that sends this slice now (none: unassigned).',
        maxLength: 253,
      }),
    ),
    assignment: Type.Integer({
      description: 'Raised at every change of sender: a release in status refers to one assignment.',
      minimum: 0,
    }),
    paused: Type.Optional(
      Type.Boolean({ description: 'Send nothing (suspended, outside the schedule, auto-paused).' }),
    ),
    releaseRequested: Type.Optional(
      Type.Boolean({
        description:
          'The operator wants to give the slice to another sender: finish what is in flight, then release it.',
      }),
    ),
    messagesPerMinute: Type.Integer({ description: "The sender's pace for this campaign.", minimum: 1 }),
    retryFailedRound: Type.Optional(
      Type.Integer({ description: 'Failed recipients of earlier rounds are sent to again.', minimum: 0 }),
    ),
  },
  { description: 'Which recipients, who sends them, and how.' },
);

export const campaignSliceStatus = object(
  {
    assignment: Type.Optional(
      Type.Integer({ description: 'The spec.assignment this status was written for.', minimum: 0 }),
    ),
    sender: Type.Optional(Type.String({ description: 'The sender that wrote this status.', maxLength: 253 })),
    epoch: Type.Optional(
      Type.Integer({ description: "The sender's session fencing epoch when it wrote.", minimum: 0 }),
    ),
    ledger: Type.Optional(
      Type.String({
        description:
          'Per-recipient state, encoded (crds/campaign-ledger.ts): state, reason, attempts, sender, time.',
        maxLength: 1_500_000,
      }),
    ),
    reasons: Type.Optional(
      Type.Array(Type.String({ description: 'A reason.', maxLength: 128 }), {
        description: 'Reason table the ledger indexes.',
        maxItems: 255,
      }),
    ),
    senders: Type.Optional(
      Type.Array(Type.String({ description: 'A sender.', maxLength: 253 }), {
        description: 'Sender table the ledger indexes.',
        maxItems: 255,
      }),
    ),
    counts: Type.Optional(
      object(
        {
          pending: Type.Integer({ description: 'Not sent yet.', minimum: 0 }),
          inFlight: Type.Integer({ description: 'Being sent.', minimum: 0 }),
          sent: Type.Integer({ description: 'Delivered.', minimum: 0 }),
          failed: Type.Integer({ description: 'Final failures.', minimum: 0 }),
          inDoubt: Type.Integer({ description: 'Outcome unknown.', minimum: 0 }),
        },
        { description: 'Totals of the ledger (so the operator need not decode it to aggregate).' },
      ),
    ),
    failures: Type.Optional(
      Type.Unsafe<Record<string, number>>({
        type: 'object',
        additionalProperties: { type: 'integer' },
        description: 'Failed recipients by reason.',
      }),
    ),
    sentBySender: Type.Optional(
      Type.Unsafe<Record<string, number>>({
        type: 'object',
        additionalProperties: { type: 'integer' },
        description: 'Delivered recipients by sender.',
      }),
    ),
    released: Type.Optional(
      Type.Boolean({
        description: 'The sender stopped working this assignment and nothing of it is in flight.',
      }),
    ),
    paused: Type.Optional(Type.Boolean({ description: 'spec.paused is in effect: nothing more is sent.' })),
    parked: Type.Optional(
      object(
        {
          reason: Type.String({
            description: 'Why the sender cannot send (PeerFlood, FloodWait, LoggedOut...).',
            maxLength: 128,
          }),
          until: Type.Optional(Type.String({ description: 'Until when, if known.', format: 'date-time' })),
        },
        { description: 'The sender cannot send now.' },
      ),
    ),
    floodWaitUntil: Type.Optional(
      Type.String({
        description:
          'Telegram asked the sender to wait until then (a flood wait short enough to keep its slices).',
        format: 'date-time',
      }),
    ),
    retryFailedRound: Type.Optional(
      Type.Integer({ description: 'The spec.retryFailedRound acted on.', minimum: 0 }),
    ),
    lastSendTime: Type.Optional(
      Type.String({ description: 'When this slice last sent.', format: 'date-time' }),
    ),
    messagesPerMinute: Type.Optional(
      Type.Integer({ description: 'Sends over the last minute.', minimum: 0 }),
    ),
  },
  { description: 'The ledger of the slice, written by the runtime hosting the sender.' },
);

export type CampaignSliceSpec = Static<typeof campaignSliceSpec>;
export type CampaignSliceStatus = Static<typeof campaignSliceStatus>;
export type CampaignSlice = KubeObject<CampaignSliceSpec, CampaignSliceStatus> & {
  apiVersion: typeof API_VERSION;
  kind: 'CampaignSlice';
};

export const campaignSlicePrinterColumns = [
  { name: 'Campaign', type: 'string', jsonPath: '.spec.campaign', description: 'The campaign.' },
  { name: 'Sender', type: 'string', jsonPath: '.spec.sender', description: 'Who sends it.' },
  { name: 'Count', type: 'integer', jsonPath: '.spec.count', description: 'Recipients.' },
  { name: 'Sent', type: 'integer', jsonPath: '.status.counts.sent', description: 'Delivered.' },
  { name: 'Pending', type: 'integer', jsonPath: '.status.counts.pending', description: 'Not sent yet.' },
  { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
];
