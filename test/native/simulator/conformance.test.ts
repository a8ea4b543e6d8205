/**
 * Conformance: the same scripted conversation against real libtdjson 1.8.67 (through the project's
 * NativeBackend, or tdl's addon until that is built) and against the simulator, compared answer by answer
 * and update type by update type. Only what TDLib can do offline is scripted: states up to
 * authorizationStateWaitPhoneNumber, test methods, proxies, options, td_execute, and errors.
 */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { World } from '../../../runtime/simulator/index.js';
import type { TdObject } from '../../../runtime/tdlib/backend.js';
import { runConversationChild } from './support/child.js';
import type { Step, Transcript } from './support/conversation.js';

jest.setTimeout(180_000);

const key = Buffer.from('conformance key').toString('base64');
const params = (dir: string, encryptionKey = key): Record<string, unknown> => ({
  '@type': 'setTdlibParameters',
  database_directory: dir,
  use_message_database: false,
  api_id: 94575,
  api_hash: 'a3406de8d171bb422bb6ddf3bbd800e2',
  system_language_code: 'en',
  device_model: 'conformance',
  application_version: '1.0',
  database_encryption_key: encryptionKey,
});
const socks = (server: string, port: number): Record<string, unknown> => ({
  '@type': 'proxy',
  server,
  port,
  type: { '@type': 'proxyTypeSocks5', username: '', password: '' },
});
const call = (
  client: string,
  label: string,
  request: Record<string, unknown>,
  extra: Partial<Step> = {},
): Step => ({ op: 'call', client, label, request, ...extra }) as Step;

/** Labels whose values legitimately differ (version strings, clocks): compared by type and fields only. */
const SHAPE_ONLY = new Set(['exec_commit_hash', 'commit_hash', 'unix_time']);

function script(root: string): Step[] {
  const db = join(root, 'db');
  return [
    { op: 'client', name: 'a' },
    call('a', 'version', { '@type': 'getOption', name: 'version' }),
    call('a', 'commit_hash', { '@type': 'getOption', name: 'commit_hash' }),
    call('a', 'state_before', { '@type': 'getAuthorizationState' }),
    call('a', 'send_before_params', { '@type': 'sendMessage', chat_id: 1 }),
    call('a', 'getMe_before_params', { '@type': 'getMe' }),
    call('a', 'square', { '@type': 'testSquareInt', x: 7 }),
    call('a', 'square_string_arg', { '@type': 'testSquareInt', x: '9' }),
    call('a', 'square_bad_arg', { '@type': 'testSquareInt', x: 'abc' }),
    call('a', 'call_string', { '@type': 'testCallString', x: 'hé 😀' }),
    call('a', 'call_string_bad', { '@type': 'testCallString', x: 5 }),
    call('a', 'call_empty', { '@type': 'testCallEmpty' }),
    call('a', 'vector_int', { '@type': 'testCallVectorInt', x: [1, 2, 3] }),
    call('a', 'vector_string_object', {
      '@type': 'testCallVectorStringObject',
      x: [{ '@type': 'testString', value: 'v' }],
    }),
    call('a', 'use_update', { '@type': 'testUseUpdate' }),
    call('a', 'return_error', {
      '@type': 'testReturnError',
      error: { '@type': 'error', code: 42, message: 'custom' },
    }),
    call('a', 'unknown_method', { '@type': 'nonexistentMethod' }),
    call(
      'a',
      'early_proxy',
      { '@type': 'addProxy', proxy: socks('127.0.0.1', 1080), enable: false, comment: 'early' },
      { noWait: true },
    ),
    call('a', 'bad_key', params(db, 'not base64!')),
    call('a', 'bad_key_char', params(db, 'not base64!!')),
    call('a', 'bad_key_padding', params(db, 'YQ===')),
    call('a', 'params', params(db)),
    { op: 'settle' },
    {
      op: 'wait',
      client: 'a',
      label: 'wait_phone',
      until: { authorizationState: 'authorizationStateWaitPhoneNumber' },
    },
    { op: 'client', name: 'lock' },
    call('lock', 'database_in_use', params(db), { timeoutMs: 30_000 }),
    { op: 'close', client: 'lock' },
    call('a', 'params_again', params(db)),
    call('a', 'unix_time', { '@type': 'getOption', name: 'unix_time' }),
    call('a', 'missing_option', { '@type': 'getOption', name: 'no_such_option_here' }),
    call('a', 'set_option', {
      '@type': 'setOption',
      name: 'ignore_background_updates',
      value: { '@type': 'optionValueBoolean', value: true },
    }),
    call('a', 'getMe_unauthorized', { '@type': 'getMe' }),
    call('a', 'send_unauthorized', { '@type': 'sendMessage', chat_id: 1 }),
    call('a', 'search_unauthorized', { '@type': 'searchPublicChat', username: 'durov' }),
    call('a', 'history_unauthorized', {
      '@type': 'getChatHistory',
      chat_id: 1,
      from_message_id: 0,
      offset: 0,
      limit: 0,
      only_local: false,
    }),
    call('a', 'search_messages_unauthorized', {
      '@type': 'searchChatMessages',
      chat_id: 1,
      query: 'x',
      limit: 0,
    }),
    call('a', 'message_by_date_unauthorized', { '@type': 'getChatMessageByDate', chat_id: 1, date: 0 }),
    call('a', 'code_unexpected', { '@type': 'checkAuthenticationCode', code: '1' }),
    call('a', 'password_unexpected', { '@type': 'checkAuthenticationPassword', password: '1' }),
    call('a', 'phone_empty', { '@type': 'setAuthenticationPhoneNumber', phone_number: '' }),
    call('a', 'proxy_null', { '@type': 'addProxy', proxy: null, enable: false, comment: '' }),
    call('a', 'proxy_no_server', { '@type': 'addProxy', proxy: socks('', 1080), enable: false, comment: '' }),
    call('a', 'proxy_bad_port', {
      '@type': 'addProxy',
      proxy: socks('1.2.3.4', 0),
      enable: false,
      comment: '',
    }),
    call('a', 'proxy_no_type', {
      '@type': 'addProxy',
      proxy: { '@type': 'proxy', server: 'x', port: 1, type: null },
      enable: false,
      comment: '',
    }),
    call('a', 'proxy_bad_secret', {
      '@type': 'addProxy',
      proxy: { '@type': 'proxy', server: 'x', port: 1, type: { '@type': 'proxyTypeMtproto', secret: 'zz' } },
      enable: false,
      comment: '',
    }),
    call('a', 'proxy_http', {
      '@type': 'addProxy',
      proxy: {
        '@type': 'proxy',
        server: '10.0.0.1',
        port: 8080,
        type: { '@type': 'proxyTypeHttp', username: 'u', password: 'p', http_only: false },
      },
      enable: false,
      comment: 'c1',
    }),
    call('a', 'proxy_mtproto', {
      '@type': 'addProxy',
      proxy: {
        '@type': 'proxy',
        server: '10.0.0.2',
        port: 443,
        type: { '@type': 'proxyTypeMtproto', secret: 'dd00112233445566778899aabbccddeeff' },
      },
      enable: false,
      comment: '',
    }),
    call('a', 'proxies', { '@type': 'getProxies' }),
    call('a', 'enable_unknown', { '@type': 'enableProxy', proxy_id: 999 }),
    call('a', 'remove_unknown', { '@type': 'removeProxy', proxy_id: 999 }),
    call('a', 'remove_first', { '@type': 'removeProxy', proxy_id: 2 }),
    call('a', 'disable', { '@type': 'disableProxy' }),
    call('a', 'proxies_after', { '@type': 'getProxies' }),
    { op: 'close', client: 'a' },

    { op: 'client', name: 'b' },
    call('b', 'wrong_key', params(db, Buffer.from('another key').toString('base64'))),
    call('b', 'empty_key', params(db, '')),
    call('b', 'state_after_wrong_key', { '@type': 'getAuthorizationState' }),
    call('b', 'right_key', params(db)),
    call('b', 'proxies_persisted', { '@type': 'getProxies' }),
    call('b', 'log_out', { '@type': 'logOut' }),
    { op: 'wait', client: 'b', label: 'b_closed', until: { authorizationState: 'authorizationStateClosed' } },

    { op: 'client', name: 'c' },
    call('c', 'c_params', params(join(root, 'db-destroy'))),
    call('c', 'destroy', { '@type': 'destroy' }),
    { op: 'wait', client: 'c', label: 'c_closed', until: { authorizationState: 'authorizationStateClosed' } },

    // The message database only changes what survives a restart: the same start as without it.
    { op: 'client', name: 'e' },
    call('e', 'message_db_params', { ...params(join(root, 'db-message-db')), use_message_database: true }),
    {
      op: 'wait',
      client: 'e',
      label: 'e_wait_phone',
      until: { authorizationState: 'authorizationStateWaitPhoneNumber' },
    },
    { op: 'close', client: 'e' },

    { op: 'client', name: 'd' },
    call('d', 'close_before_params', { '@type': 'close' }),
    { op: 'wait', client: 'd', label: 'd_closed', until: { authorizationState: 'authorizationStateClosed' } },

    { op: 'execute', label: 'exec_version', request: { '@type': 'getOption', name: 'version' } },
    { op: 'execute', label: 'exec_commit_hash', request: { '@type': 'getOption', name: 'commit_hash' } },
    { op: 'execute', label: 'exec_async_option', request: { '@type': 'getOption', name: 'unix_time' } },
    { op: 'execute', label: 'exec_async_method', request: { '@type': 'getMe' } },
    { op: 'execute', label: 'exec_test_method', request: { '@type': 'testSquareInt', x: 3 } },
    { op: 'execute', label: 'exec_unknown', request: { '@type': 'nonexistentMethod' } },
    { op: 'execute', label: 'exec_no_type', request: '{}' },
    { op: 'execute', label: 'exec_array', request: '[]' },
    {
      op: 'execute',
      label: 'exec_return_error',
      request: { '@type': 'testReturnError', error: { '@type': 'error', code: 42, message: 'm' } },
    },
    { op: 'execute', label: 'exec_return_null', request: { '@type': 'testReturnError', error: null } },
    {
      op: 'execute',
      label: 'exec_extra',
      request: { '@type': 'getTextEntities', text: 'x', '@extra': { n: [1] } },
    },
    { op: 'execute', label: 'exec_no_parse_mode', request: { '@type': 'parseTextEntities', text: 'x' } },
    {
      op: 'execute',
      label: 'exec_verbosity',
      request: { '@type': 'setLogVerbosityLevel', new_verbosity_level: 0 },
    },
    { op: 'execute', label: 'exec_get_verbosity', request: { '@type': 'getLogVerbosityLevel' } },
    {
      op: 'execute',
      label: 'exec_html',
      request: {
        '@type': 'parseTextEntities',
        text: '<b>Sale</b> at <a href="shop.example.com">our shop</a>!',
        parse_mode: { '@type': 'textParseModeHTML' },
      },
    },
    {
      op: 'execute',
      label: 'exec_markdown',
      request: {
        '@type': 'parseTextEntities',
        text: '*Sale* at [our shop](https://shop.example.com)\\!',
        parse_mode: { '@type': 'textParseModeMarkdown', version: 2 },
      },
    },
    {
      op: 'execute',
      label: 'exec_markdown_error',
      request: {
        '@type': 'parseTextEntities',
        text: 'a.b',
        parse_mode: { '@type': 'textParseModeMarkdown', version: 2 },
      },
    },
  ];
}

/** Field names and '@type's of an object tree, values replaced by their JSON type. */
function shape(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(shape);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([k]) => k !== '@extra' && k !== '@client_id')
        .map(([k, v]) => [k, k === '@type' ? v : shape(v)])
        .sort(([a], [b]) => String(a).localeCompare(String(b))),
    );
  }
  return typeof value;
}

function authStates(updates: readonly TdObject[]): string[] {
  return updates
    .filter((u) => u['@type'] === 'updateAuthorizationState')
    .map((u) => (u.authorization_state as TdObject)['@type']);
}

describe('simulator vs real libtdjson', () => {
  let root: string;
  let sim: Transcript;
  let real: Transcript;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'sim-conformance-'));
    const worldDir = join(root, 'world');
    World.create(worldDir, { version: 1, users: [] });
    [sim, real] = await Promise.all([
      runConversationChild('sim', script(join(root, 'sim')), worldDir),
      runConversationChild('real', script(join(root, 'real'))),
    ]);
  });

  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('ran the real side on libtdjson 1.8.67', () => {
    console.log(`reference backend: ${real.note}`);
    expect(real.answers.version).toEqual({ '@type': 'optionValueString', value: '1.8.67' });
    expect(Object.keys(sim.answers).sort()).toEqual(Object.keys(real.answers).sort());
  });

  it('gives the same answers, label by label', () => {
    const differences: string[] = [];
    // Each side ran in its own directory; paths in messages are compared relative to it.
    const relative = (value: unknown, side: string): unknown =>
      JSON.parse(
        JSON.stringify(value ?? null)
          .split(join(root, side))
          .join('<root>'),
      ) as unknown;
    for (const [label, raw] of Object.entries(real.answers)) {
      const expected = relative(raw, 'real');
      const actual = relative(sim.answers[label], 'sim');
      const a = SHAPE_ONLY.has(label) ? shape(actual) : actual;
      const b = SHAPE_ONLY.has(label) ? shape(expected) : expected;
      if (JSON.stringify(a) !== JSON.stringify(b)) {
        differences.push(`${label}:\n  sim:  ${JSON.stringify(actual)}\n  real: ${JSON.stringify(expected)}`);
      }
    }
    expect(differences).toEqual([]);
  });

  it('goes through the same authorization states on every client', () => {
    for (const name of Object.keys(real.updates)) {
      expect([name, authStates(sim.updates[name] ?? [])]).toEqual([
        name,
        authStates(real.updates[name] ?? []),
      ]);
    }
  });

  it("emits only update types TDLib emits, with TDLib's fields", () => {
    const realShapes = new Map<string, string>();
    for (const u of Object.values(real.updates).flat()) {
      if (u['@type'] === 'updateOption')
        realShapes.set(`updateOption:${String(u.name)}`, JSON.stringify(shape(u)));
      realShapes.set(
        String(u['@type']),
        JSON.stringify(
          shape({ '@type': u['@type'], ...Object.fromEntries(Object.keys(u).map((k) => [k, null])) }),
        ),
      );
    }
    const problems: string[] = [];
    for (const u of Object.values(sim.updates).flat()) {
      const type = String(u['@type']);
      const expected = realShapes.get(type);
      const actual = JSON.stringify(
        shape({ '@type': type, ...Object.fromEntries(Object.keys(u).map((k) => [k, null])) }),
      );
      if (expected === undefined) problems.push(`${type} is never sent by TDLib in this conversation`);
      else if (expected !== actual) problems.push(`${type} fields differ: sim ${actual} real ${expected}`);
      if (type === 'updateOption') {
        const option = realShapes.get(`updateOption:${String(u.name)}`);
        if (option !== undefined && option !== JSON.stringify(shape(u)))
          problems.push(`option ${String(u.name)} has another value type`);
      }
    }
    expect([...new Set(problems)]).toEqual([]);
  });

  it('orders close, logOut and destroy the same way', () => {
    const order = (t: Transcript, client: string): string[] =>
      (t.updates[client] ?? [])
        .filter((u) => u['@type'] === 'updateAuthorizationState')
        .map((u) => (u.authorization_state as TdObject)['@type'] as string)
        .slice(-3);
    for (const client of ['a', 'b', 'c', 'd'])
      expect([client, order(sim, client)]).toEqual([client, order(real, client)]);
  });
});
