/**
 * The world shared between processes: several simulator processes (as runtime pods are in end-to-end
 * tests) on one world directory. Each scenario runs real child processes through the TypeScript loader.
 */
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { cpSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { TdObject } from '../../../runtime/tdlib/backend.js';
import { makeWorld, type WorldFixture } from '../../unit/simulator/support/harness.js';
import { runConversationChild, startConversation } from './support/child.js';
import type { Step, Transcript } from './support/conversation.js';

jest.setTimeout(120_000);

const params = (dir: string): Record<string, unknown> => ({
  '@type': 'setTdlibParameters',
  database_directory: dir,
  api_id: 1,
  api_hash: 'cross-process',
  system_language_code: 'en',
  device_model: 'pod',
  application_version: '1',
});

function loginSecondUser(db: string): Step[] {
  return [
    { op: 'client', name: 'a' },
    { op: 'call', client: 'a', label: 'params', request: params(db) },
    {
      op: 'call',
      client: 'a',
      label: 'phone',
      request: { '@type': 'setAuthenticationPhoneNumber', phone_number: '+15550100002' },
    },
    {
      op: 'call',
      client: 'a',
      label: 'code',
      request: { '@type': 'checkAuthenticationCode', code: '54321' },
    },
    { op: 'wait', client: 'a', label: 'ready', until: { authorizationState: 'authorizationStateReady' } },
  ];
}

function authStates(t: Transcript, client = 'a'): string[] {
  return (t.updates[client] ?? [])
    .filter((u) => u['@type'] === 'updateAuthorizationState')
    .map((u) => (u.authorization_state as TdObject)['@type'] as string);
}

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function liveHolders(fx: WorldFixture, authKey: string): string[] {
  const dir = join(fx.world.stateDir, 'live', authKey);
  return existsSync(dir) ? readdirSync(dir) : [];
}

describe('a world shared by several processes', () => {
  let fx: WorldFixture;

  beforeEach(() => {
    fx = makeWorld({ simulation: { poll_interval_ms: 20, heartbeat_interval_ms: 100, lease_ttl_ms: 2000 } });
  });

  afterEach(() => fx.cleanup());

  it('kills a session whose database was copied to a second live process (AUTH_KEY_DUPLICATED)', async () => {
    const original = join(fx.dir, 'pod-a');
    const copy = join(fx.dir, 'pod-b');
    const closedWait: Step = {
      op: 'wait',
      client: 'a',
      label: 'closed',
      until: { authorizationState: 'authorizationStateClosed' },
      timeoutMs: 60_000,
    };
    const a = startConversation('sim', [...loginSecondUser(original), closedWait], fx.dir);
    const session = await until('pod A to be logged in and live', () => {
      const s = fx.world.sessions().find((x) => x.user_id === 5550100002);
      return s !== undefined && liveHolders(fx, s.auth_key).length === 1 ? s : undefined;
    });
    cpSync(original, copy, { recursive: true });
    const b = startConversation(
      'sim',
      [
        { op: 'client', name: 'a' },
        { op: 'call', client: 'a', label: 'params', request: params(copy) },
        closedWait,
      ],
      fx.dir,
    );
    const [ta, tb] = await Promise.all([a.transcript, b.transcript]);
    for (const t of [ta, tb]) {
      expect(t.answers.closed).toMatchObject({ '@type': 'updateAuthorizationState' });
      expect(authStates(t).slice(-2)).toEqual(['authorizationStateLoggingOut', 'authorizationStateClosed']);
      expect(
        t.updates.a?.some(
          (u) => u['@type'] === 'updateServiceNotification' && u.type === 'AUTH_KEY_DROP_DUPLICATE',
        ),
      ).toBe(true);
    }
    expect(authStates(tb)).toEqual([
      'authorizationStateWaitTdlibParameters',
      'authorizationStateReady',
      'authorizationStateLoggingOut',
      'authorizationStateClosed',
    ]);
    expect(fx.world.session(session.auth_key)?.revoked?.reason).toBe('AUTH_KEY_DUPLICATED');
    expect(existsSync(join(original, 'td.binlog'))).toBe(false);
    expect(existsSync(join(copy, 'td.binlog'))).toBe(false);
    expect(liveHolders(fx, session.auth_key)).toEqual([]);
  });

  it('resumes Ready in a new process without a new login', async () => {
    const db = join(fx.dir, 'pod');
    const first = await runConversationChild(
      'sim',
      [...loginSecondUser(db), { op: 'close', client: 'a' }],
      fx.dir,
    );
    expect(authStates(first)).toContain('authorizationStateReady');
    const second = await runConversationChild(
      'sim',
      [
        { op: 'client', name: 'a' },
        { op: 'call', client: 'a', label: 'params', request: params(db) },
        { op: 'wait', client: 'a', label: 'ready', until: { authorizationState: 'authorizationStateReady' } },
        { op: 'call', client: 'a', label: 'me', request: { '@type': 'getMe' } },
      ],
      fx.dir,
    );
    expect(authStates(second).slice(0, 2)).toEqual([
      'authorizationStateWaitTdlibParameters',
      'authorizationStateReady',
    ]);
    expect(second.answers.me).toMatchObject({ '@type': 'user', id: 5550100002 });
  });

  it('does not treat a crashed process as alive: its database reopens elsewhere without a kill', async () => {
    const db = join(fx.dir, 'pod');
    const crashed = startConversation('sim', [...loginSecondUser(db), { op: 'pause', ms: 60_000 }], fx.dir);
    // Killed on purpose below: it never prints a transcript.
    crashed.transcript.catch(() => undefined);
    const session = await until('the first process to be live', () => {
      const s = fx.world.sessions().find((x) => x.user_id === 5550100002);
      return s !== undefined && liveHolders(fx, s.auth_key).length === 1 ? s : undefined;
    });
    crashed.child.process.kill('SIGKILL');
    await crashed.child.done;
    const restarted = await runConversationChild(
      'sim',
      [
        { op: 'client', name: 'a' },
        { op: 'call', client: 'a', label: 'params', request: params(db) },
        { op: 'wait', client: 'a', label: 'ready', until: { authorizationState: 'authorizationStateReady' } },
        // Proving that no kill comes needs a window: several duplicate checks (heartbeat 100 ms) run in it.
        { op: 'pause', ms: 600 },
        { op: 'call', client: 'a', label: 'me', request: { '@type': 'getMe' } },
      ],
      fx.dir,
    );
    expect(restarted.answers.params).toEqual({ '@type': 'ok' });
    expect(restarted.answers.me).toMatchObject({ '@type': 'user', id: 5550100002 });
    expect(authStates(restarted)).not.toContain('authorizationStateLoggingOut');
    expect(fx.world.session(session.auth_key)?.revoked).toBeUndefined();
  });

  it('re-sends a pending message after a SIGKILL in another process (message database), once, and reads it back', async () => {
    const db = join(fx.dir, 'pod');
    const withDb = { ...params(db), use_message_database: true };
    fx.world.setFaults({ latency_ms: { default: 0, methods: { sendMessage: 120_000 } } });
    const crashed = startConversation(
      'sim',
      [
        { op: 'client', name: 'a' },
        { op: 'call', client: 'a', label: 'params', request: withDb },
        ...loginSecondUser(db).slice(2),
        {
          op: 'call',
          client: 'a',
          label: 'chat',
          request: { '@type': 'searchPublicChat', username: 'alice_demo' },
        },
        {
          op: 'call',
          client: 'a',
          label: 'send',
          request: {
            '@type': 'sendMessage',
            chat_id: 5550100101,
            input_message_content: {
              '@type': 'inputMessageText',
              text: { '@type': 'formattedText', text: 'sent before the crash', entities: [] },
            },
          },
        },
        { op: 'pause', ms: 60_000 },
      ],
      fx.dir,
    );
    crashed.transcript.catch(() => undefined);
    await until('the send to be remembered in the database directory', () =>
      existsSync(join(db, 'td.pending')) ? true : undefined,
    );
    crashed.child.process.kill('SIGKILL');
    await crashed.child.done;
    expect(fx.world.deliveries()).toEqual([]);
    fx.world.setFaults({ latency_ms: { default: 0, methods: {} } });

    const resumed = await runConversationChild(
      'sim',
      [
        { op: 'client', name: 'a' },
        { op: 'call', client: 'a', label: 'params', request: withDb },
        {
          op: 'wait',
          client: 'a',
          label: 'sent',
          until: { update: 'updateMessageSendSucceeded' },
          timeoutMs: 20_000,
        },
        {
          op: 'call',
          client: 'a',
          label: 'history',
          request: {
            '@type': 'getChatHistory',
            chat_id: 5550100101,
            from_message_id: 0,
            offset: 0,
            limit: 10,
            only_local: false,
          },
        },
      ],
      fx.dir,
    );
    const updates = (resumed.updates.a ?? []).map((u) => u['@type']);
    expect(updates.indexOf('updateNewMessage')).toBeGreaterThan(-1);
    expect(updates.indexOf('updateNewMessage')).toBeLessThan(updates.indexOf('updateMessageSendSucceeded'));
    const sent = (resumed.answers.sent as TdObject).message as TdObject;
    expect(resumed.answers.history).toMatchObject({
      '@type': 'messages',
      total_count: 1,
      messages: [{ id: sent.id, content: { text: { text: 'sent before the crash' } } }],
    });
    const deliveries = fx.world.deliveries();
    expect(deliveries).toHaveLength(1);
    expect(deliveries[0]).toMatchObject({ from: 5550100002, to: 5550100101, message_id: sent.id });
    expect(existsSync(join(db, 'td.pending'))).toBe(false);
  });

  it('records every delivery from concurrent senders, countable from another process', async () => {
    const sends = (db: string, login: Step[], recipients: readonly string[], count: number): Step[] => {
      const steps: Step[] = [
        { op: 'client', name: 'a' },
        { op: 'call', client: 'a', label: 'params', request: params(db) },
        ...login,
      ];
      const ids = [5550100101, 5550100102];
      recipients.forEach((username, i) =>
        steps.push({
          op: 'call',
          client: 'a',
          label: `chat${i}`,
          request: { '@type': 'searchPublicChat', username },
        }),
      );
      for (let i = 0; i < count; i++) {
        steps.push({
          op: 'call',
          client: 'a',
          label: `send${i}`,
          noWait: true,
          request: {
            '@type': 'sendMessage',
            chat_id: ids[i % recipients.length],
            input_message_content: {
              '@type': 'inputMessageText',
              text: { '@type': 'formattedText', text: `message ${i}`, entities: [] },
            },
          },
        });
      }
      steps.push(
        { op: 'settle' },
        {
          op: 'wait',
          client: 'a',
          label: 'all_sent',
          until: { update: 'updateMessageSendSucceeded' },
          count,
          timeoutMs: 60_000,
        },
      );
      return steps;
    };
    const unlimited = { per_second: 1e6, burst: 1e6 };
    fx.world.setLimits({
      bot: { account: unlimited, chat: unlimited },
      user: { account: unlimited, chat: unlimited },
    });
    const bot = startConversation(
      'sim',
      sends(
        join(fx.dir, 'bot'),
        [
          {
            op: 'call',
            client: 'a',
            label: 'token',
            request: { '@type': 'checkAuthenticationBotToken', token: '7000000001:AAHdemo' },
          },
        ],
        ['alice_demo', 'bob_demo'],
        400,
      ),
      fx.dir,
    );
    const user = startConversation(
      'sim',
      sends(
        join(fx.dir, 'user'),
        [
          {
            op: 'call',
            client: 'a',
            label: 'phone',
            request: { '@type': 'setAuthenticationPhoneNumber', phone_number: '+15550100001' },
          },
          {
            op: 'call',
            client: 'a',
            label: 'code',
            request: { '@type': 'checkAuthenticationCode', code: '12345' },
          },
          {
            op: 'call',
            client: 'a',
            label: 'password',
            request: { '@type': 'checkAuthenticationPassword', password: 'correct horse' },
          },
        ],
        ['alice_demo'],
        300,
      ),
      fx.dir,
    );
    const counted = await fx.world.waitForDeliveries(700, undefined, { timeoutMs: 60_000 });
    await Promise.all([bot.transcript, user.transcript]);
    const all = fx.world.deliveries();
    expect(all).toHaveLength(700);
    expect(counted.length).toBe(700);
    const byKind = {
      bot: all.filter((d) => d.sender_kind === 'bot'),
      user: all.filter((d) => d.sender_kind === 'user'),
    };
    expect(byKind.bot).toHaveLength(400);
    expect(byKind.user).toHaveLength(300);
    expect(new Set(byKind.bot.map((d) => d.message_id)).size).toBe(400);
    expect(new Set(all.map((d) => d.pid)).size).toBe(2);
    expect(byKind.user.every((d) => d.from === 5550100001 && d.to === 5550100101)).toBe(true);
  });
});
