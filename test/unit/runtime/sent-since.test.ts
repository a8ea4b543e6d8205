/**
 * The history check that resolves a campaign send whose outcome was lost (a runtime killed between
 * sendMessage and its answer): it must find the account's own message in a private chat and a channel
 * post (which Telegram attributes to the channel, not to the admin), and must not find what was never sent.
 */
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { join } from 'node:path';
import { searchQueryOf, sentSince } from '../../../runtime/sending/telegram.js';
import type { TdClient } from '../../../runtime/tdlib/client.js';
import {
  loginUser,
  makeWorld,
  outcomeOf,
  params,
  Recorder,
  startSession,
  textMessage,
  type Session,
  type WorldFixture,
} from '../simulator/support/harness.js';

jest.setTimeout(20_000);

const ME = 5550100001;
const ALICE_CHAT = 5550100101;
const CHANNEL = -1_000_000_000_000 - 1002;
const UNLIMITED = { per_second: 1e6, burst: 1e6 };
const LONG_TEXT =
  'Spring sale: every plant in the greenhouse is half price until Sunday evening, come early for the best';

describe('sentSince: did this account already send the message?', () => {
  let fx: WorldFixture;
  let session: Session;
  let client: TdClient;
  let rec: Recorder;

  beforeEach(async () => {
    fx = makeWorld({
      chats: [{ id: 1002, title: 'Sim Channel', username: 'sim_channel', kind: 'channel', admins: [ME] }],
      limits: { user: { account: UNLIMITED, chat: UNLIMITED } },
    });
    session = startSession(fx.dir);
    client = session.manager.createClient();
    rec = new Recorder(client);
    await client.invokeUnchecked(params(join(fx.dir, 'db-me')));
    await loginUser(client, '+15550100001', '12345', 'correct horse');
  });

  afterEach(async () => {
    await session.close();
    fx.cleanup();
  });

  async function send(chatId: number, text: string): Promise<void> {
    const pending = await client.invokeUnchecked(textMessage(chatId, text));
    const outcome = await outcomeOf(rec, pending.id as number);
    expect(outcome['@type']).toBe('updateMessageSendSucceeded');
  }

  const nowSec = (): number => Math.floor(Date.now() / 1000);

  it('finds a message sent to a private chat, and only that exact text', async () => {
    await client.invokeUnchecked({ '@type': 'searchPublicChat', username: 'alice_demo' });
    const since = nowSec();
    expect(await sentSince(client, ALICE_CHAT, ME, LONG_TEXT, since)).toBe(false);
    await send(ALICE_CHAT, LONG_TEXT);
    expect(await sentSince(client, ALICE_CHAT, ME, LONG_TEXT, since)).toBe(true);
    // Same opening words, different message: not the campaign's.
    expect(await sentSince(client, ALICE_CHAT, ME, `${LONG_TEXT}!`, since)).toBe(false);
    // Sent long before the send in question began: an older campaign's message.
    expect(await sentSince(client, ALICE_CHAT, ME, LONG_TEXT, since + 3600)).toBe(false);
  });

  it('finds a channel post, which comes from the channel rather than from the admin', async () => {
    await client.invokeUnchecked({ '@type': 'searchPublicChat', username: 'sim_channel' });
    const since = nowSec();
    expect(await sentSince(client, CHANNEL, ME, LONG_TEXT, since)).toBe(false);
    await send(CHANNEL, LONG_TEXT);
    expect(await sentSince(client, CHANNEL, ME, LONG_TEXT, since)).toBe(true);
  });

  it('cannot tell (undefined) when the history is out of reach', async () => {
    expect(await sentSince(client, 42, ME, LONG_TEXT, nowSec())).toBeUndefined();
  });
});

describe('searchQueryOf', () => {
  it('keeps short texts whole', () => {
    expect(searchQueryOf('Hello there')).toBe('Hello there');
  });

  it('cuts long texts at a word boundary so no word is cut in half', () => {
    const query = searchQueryOf(LONG_TEXT);
    expect(query.length).toBeLessThanOrEqual(64);
    expect(LONG_TEXT.startsWith(query)).toBe(true);
    expect(LONG_TEXT[query.length]).toMatch(/\s/);
  });

  it('keeps a single overlong word as its first characters', () => {
    expect(searchQueryOf('x'.repeat(100))).toBe('x'.repeat(64));
  });
});
