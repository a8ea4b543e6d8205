/**
 * A simulator world for campaign tests: N recipient users, user senders that log in by code, a bot sender
 * every recipient started, and limits set per test. Also the scene around it: CRDs, a namespace, the
 * operator (simulator runtimes), the senders' Secrets and TelegramAccounts, and the runtime processes that
 * play the kwok pods.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';

export const RECIPIENT_BASE_ID = 6_000_000_000;
export const USER_SENDER_BASE_ID = 5_550_200_000;
export const BOT_SENDER_ID = 7_100_000_001;
export const BOT_SENDER_TOKEN = `${BOT_SENDER_ID}:AAcampaign-bot-token`;
export const SENDER_CODE = '24680';

export const recipientName = (i: number): string => `rcpt_${String(i).padStart(6, '0')}`;
export const botName = (b: number): string => (b === 0 ? 'campaign_sender_bot' : `campaign_sender_bot_${b}`);
export const botToken = (b: number): string =>
  b === 0 ? BOT_SENDER_TOKEN : `${BOT_SENDER_ID + b}:AAcampaign-bot-token-${b}`;
export const userSenderPhone = (i: number): string => `+1555020${String(i).padStart(4, '0')}`;

export interface CampaignWorldOptions {
  recipients: number;
  userSenders: number;
  /** Whether a bot sender exists (every recipient started it); `bots` for more than one. */
  bot: boolean;
  bots?: number;
  /** Extra fields for recipient i (deactivated, blocked, ...). */
  recipient?: (i: number) => Record<string, unknown>;
  /** Limits section of the world (defaults: generous, so only what a test sets up limits it). */
  limits?: Record<string, unknown>;
  faults?: Record<string, unknown>;
  /**
   * world.yaml (default) or world.json: a world of 100,000 recipients takes the YAML parser ~14 s and
   * ~2 GB in every process that opens it, JSON ~3 s.
   */
  format?: 'yaml' | 'json';
}

export function writeCampaignWorld(options: CampaignWorldOptions): string {
  const dir = mkdtempSync(join(tmpdir(), 'tdlib-operator-campaign-world-'));
  const users: Array<Record<string, unknown>> = [];
  for (let i = 0; i < options.userSenders; i++)
    users.push({
      id: USER_SENDER_BASE_ID + i,
      first_name: `Sender ${i}`,
      username: `sender_user_${i}`,
      phone_number: userSenderPhone(i),
      login: { code: SENDER_CODE },
    });
  const bots = Array.from({ length: options.bot ? (options.bots ?? 1) : 0 }, (_, b) => botName(b));
  bots.forEach((username, b) =>
    users.push({
      id: BOT_SENDER_ID + b,
      first_name: `Campaign Bot ${b}`,
      username,
      bot: { token: botToken(b) },
    }),
  );
  for (let i = 0; i < options.recipients; i++)
    users.push({
      id: RECIPIENT_BASE_ID + i,
      first_name: `Recipient ${i}`,
      username: recipientName(i),
      ...(bots.length > 0 ? { started_bots: [...bots] } : {}),
      ...options.recipient?.(i),
    });
  const world = {
    version: 1,
    seed: 7,
    users,
    limits: options.limits ?? {
      user: { account: { per_second: 1000, burst: 1000 }, chat: { per_second: 10, burst: 10 } },
      bot: { account: { per_second: 1000, burst: 1000 }, chat: { per_second: 10, burst: 10 } },
      peer_flood: { max_new_strangers: 1_000_000, window_seconds: 86400 },
      search_public_chat: { per_second: 1000, burst: 1000 },
      tdlib_flood_wait_limit_seconds: 60,
    },
    network: { connect_delay_ms: 50, ping_ms: 10 },
    faults: options.faults ?? {
      latency_ms: { default: 5, methods: { sendMessage: 20 } },
      error_rate: { default: 0 },
    },
    simulation: { chat_updates: false },
  };
  if (options.format === 'json') writeFileSync(join(dir, 'world.json'), JSON.stringify(world));
  else writeFileSync(join(dir, 'world.yaml'), stringify(world, { aliasDuplicateObjects: false }));
  return dir;
}
