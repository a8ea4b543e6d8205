import { describe, expect, it, jest } from '@jest/globals';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main as cli } from '../../../runtime/simulator/cli.js';
import { simulatorOptionsFromEnv } from '../../../runtime/simulator/env.js';
import { loadWorldFile, World } from '../../../runtime/simulator/world.js';
import { fieldPath, validateWorld, WorldConfigError } from '../../../runtime/simulator/world-schema.js';

function problems(input: unknown): string[] {
  try {
    validateWorld(input);
  } catch (error) {
    if (error instanceof WorldConfigError) return [...error.problems];
    throw error;
  }
  return [];
}

describe('world file validation', () => {
  it('fills defaults for everything optional', () => {
    const world = validateWorld({ version: 1, users: [{ id: 1, first_name: 'A' }] });
    expect(world.users[0]).toMatchObject({
      last_name: '',
      contacts: [],
      blocked: [],
      deactivated: false,
      privacy: { find_by_phone_number: 'everybody' },
    });
    expect(world.limits.bot.account).toEqual({ per_second: 30, burst: 30 });
    expect(world.limits.tdlib_flood_wait_limit_seconds).toBe(60);
    expect(world.faults).toMatchObject({ disconnected: false, latency_ms: { default: 0, methods: {} } });
    expect(world.simulation.poll_interval_ms).toBe(100);
  });

  it('names the field in every structural error', () => {
    expect(
      problems({
        version: 1,
        users: [{ id: 1, first_name: 'A', login: { code: 12345 }, logn: {} }, { first_name: 'B' }],
        limits: { user: { chat: { per_second: -1, burst: 1 } } },
        simulation: { blocked_sender_sees: 'maybe' },
      }),
    ).toEqual(
      expect.arrayContaining([
        'users[0].login.code: must be string',
        'users[0].logn: unknown field',
        'users[1].id: required field is missing',
        'limits.user.chat.per_second: must be > 0',
        'simulation.blocked_sender_sees: must be one of ["error","success"]',
      ]),
    );
  });

  it('checks what a schema cannot: uniqueness and references', () => {
    expect(
      problems({
        version: 1,
        users: [
          {
            id: 1,
            first_name: 'A',
            username: 'same_name',
            phone_number: '+1 555 0100',
            login: { code: '11111' },
          },
          { id: 1, first_name: 'B', username: 'Same_Name', phone_number: '+15550100' },
          {
            id: 3,
            first_name: 'C',
            login: { code: '11111' },
            bot: { token: '3:x' },
            blocked: ['@ghost', 99],
          },
        ],
      }),
    ).toEqual([
      'users[1].id: duplicate of users[0].id',
      'users[1].username: already used by users[0]',
      'users[1].phone_number: already used by users[0]',
      'users[2]: a user cannot have both login (phone account) and bot (bot account)',
      'users[2].phone_number: required when login is set',
      'users[2].blocked[0]: no user "@ghost"',
      'users[2].blocked[1]: no user 99',
    ]);
  });

  it('validates public chats: structure, unique ids and usernames (shared with users), member references', () => {
    const users = [
      { id: 1, first_name: 'A', username: 'alice_x' },
      { id: 2, first_name: 'B', username: 'bob_x' },
    ];
    const world = validateWorld({
      version: 1,
      users,
      chats: [{ id: 10, title: 'G', username: 'group_x', kind: 'supergroup', members: ['alice_x'] }],
    });
    expect(world.chats[0]).toEqual({
      id: 10,
      title: 'G',
      username: 'group_x',
      kind: 'supergroup',
      members: ['alice_x'],
      admins: [],
    });
    expect(validateWorld({ version: 1, users }).chats).toEqual([]);
    expect(world.limits.history).toEqual({ per_second: 50, burst: 500 });
    expect(
      problems({
        version: 1,
        users,
        chats: [
          { id: 0, title: '', username: 'x', kind: 'group', members: [{}] },
          { id: 11, title: 'T', kind: 'channel' },
          { id: 997852516352, title: 'T', username: 'too_big', kind: 'channel' },
        ],
      }),
    ).toEqual(
      expect.arrayContaining([
        'chats[0].id: must be >= 1',
        'chats[0].title: must NOT have fewer than 1 characters',
        'chats[0].username: must match pattern "^[A-Za-z][A-Za-z0-9_]{3,31}$"',
        'chats[0].kind: must be one of ["supergroup","channel"]',
        'chats[1].username: required field is missing',
        'chats[2].id: must be <= 997852516351',
      ]),
    );
    expect(
      problems({
        version: 1,
        users,
        chats: [
          { id: 10, title: 'G', username: 'group_x', kind: 'supergroup', members: ['@ghost'] },
          { id: 10, title: 'H', username: 'Group_X', kind: 'supergroup' },
          { id: 12, title: 'C', username: 'Alice_X', kind: 'channel', admins: [99] },
        ],
      }),
    ).toEqual([
      'chats[0].members[0]: no user "@ghost"',
      'chats[1].id: duplicate of chats[0].id',
      'chats[1].username: already used by chats[0]',
      'chats[2].username: already used by users[0]',
      'chats[2].admins[0]: no user 99',
    ]);
  });

  it('renders JSON pointers as field paths', () => {
    expect(fieldPath('/users/2/login/code')).toBe('users[2].login.code');
    expect(fieldPath('', 'version')).toBe('version');
    expect(fieldPath('')).toBe('(root)');
  });

  it('loads the sample world shipped for the demo', () => {
    const world = loadWorldFile(join(process.cwd(), 'config/samples/simulator-world.yaml'));
    const demo = world.users.find((u) => u.phone_number === '+15550100001');
    expect(demo?.login).toMatchObject({ code: '12345' });
    expect(demo?.login?.password).toBeDefined();
    expect(world.users.some((u) => u.bot !== undefined)).toBe(true);
    expect(
      world.users.filter((u) => u.username !== undefined && u.login === undefined && u.bot === undefined)
        .length,
    ).toBeGreaterThan(2);
  });
});

describe('world directory', () => {
  it('applies test-side edits as validated overrides visible to other readers', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sim-w-'));
    try {
      const writer = World.create(dir, {
        version: 1,
        users: [
          { id: 1, first_name: 'A', username: 'alice_x' },
          { id: 2, first_name: 'B' },
        ],
      });
      const reader = World.open(dir);
      writer.blockUser('@alice_x', 2);
      writer.setProxyDead('10.1.1.1', 1080);
      expect([...(reader.view().users.get(1)?.blockedIds ?? [])]).toEqual([2]);
      expect(reader.view().isProxyDead('10.1.1.1', 1080)).toBe(true);
      expect(() => writer.setFaults({ error_rate: { default: 2, methods: {} } })).toThrow(
        /faults.error_rate.default/,
      );
      writer.resetOverrides();
      expect(reader.view().users.get(1)?.blockedIds.size).toBe(0);
      expect(() => writer.blockUser('nobody_at_all', 1)).toThrow(/no user/);
      expect(() => writer.setChatMember('no_such_chat', 1, 'member')).toThrow(/no chat/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('edits chat membership: admins are members, a role replaces the previous one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sim-w-'));
    try {
      const world = World.create(dir, {
        version: 1,
        users: [
          { id: 1, first_name: 'A', username: 'alice_x' },
          { id: 2, first_name: 'B' },
        ],
        chats: [{ id: 7, title: 'C', username: 'chan_x', kind: 'channel', members: [2] }],
      });
      const chat = () => world.view().resolveChat('@chan_x');
      expect(chat()?.chatId).toBe(-1_000_000_000_007);
      expect(world.view().resolveChat(7)).toBe(chat());
      expect(world.view().resolveChat(-1_000_000_000_007)).toBe(chat());
      world.setChatMember('chan_x', '@alice_x', 'admin');
      expect([...(chat()?.memberIds ?? [])].sort()).toEqual([1, 2]);
      expect([...(chat()?.adminIds ?? [])]).toEqual([1]);
      world.setChatMember(7, 1, 'member');
      expect([...(chat()?.adminIds ?? [])]).toEqual([]);
      world.setChatMember(-1_000_000_000_007, 2, 'none');
      expect([...(chat()?.memberIds ?? [])]).toEqual([1]);
      world.resetOverrides();
      expect([...(chat()?.memberIds ?? [])]).toEqual([2]);
      // The same from a shell.
      const quiet = { ...process.env, TDLIB_SIMULATOR_WORLD: dir };
      const stderr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
      try {
        expect(cli(['chat-member', '@chan_x', 'alice_x', 'admin'], quiet)).toBe(0);
        expect([...(chat()?.adminIds ?? [])]).toEqual([1]);
        expect(cli(['chat-member', '-1000000000007', '1', 'none'], quiet)).toBe(0);
        expect([...(chat()?.memberIds ?? [])]).toEqual([2]);
        expect(cli(['chat-member', 'chan_x', '1', 'owner'], quiet)).toBe(2);
        expect(cli(['chat-member', 'nope_chat', '1', 'member'], quiet)).toBe(1);
      } finally {
        stderr.mockRestore();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('accepts YAML and reports parse errors with the file name', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sim-w-'));
    try {
      writeFileSync(join(dir, 'world.yaml'), 'version: 1\nusers:\n  - id: 5\n    first_name: Y\n');
      expect(World.open(dir).view().users.get(5)?.first_name).toBe('Y');
      writeFileSync(join(dir, 'world.yaml'), 'version: 1\nusers: [\n');
      expect(() => World.open(dir)).toThrow(/world.yaml/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads its configuration from the environment, naming the bad variable', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sim-w-'));
    try {
      expect(simulatorOptionsFromEnv({})).toBeUndefined();
      expect(simulatorOptionsFromEnv({ TDLIB_BACKEND: 'native' })).toBeUndefined();
      expect(() => simulatorOptionsFromEnv({ TDLIB_BACKEND: 'sim' })).toThrow(/TDLIB_BACKEND/);
      expect(() => simulatorOptionsFromEnv({ TDLIB_BACKEND: 'simulator' })).toThrow(
        /TDLIB_SIMULATOR_WORLD is required/,
      );
      expect(() =>
        simulatorOptionsFromEnv({ TDLIB_BACKEND: 'simulator', TDLIB_SIMULATOR_WORLD: dir }),
      ).toThrow(/no world.yaml/);
      writeFileSync(
        join(dir, 'world.yaml'),
        readFileSync(join(process.cwd(), 'config/samples/simulator-world.yaml'), 'utf8'),
      );
      expect(simulatorOptionsFromEnv({ TDLIB_BACKEND: 'simulator', TDLIB_SIMULATOR_WORLD: dir })).toEqual({
        worldDir: dir,
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
