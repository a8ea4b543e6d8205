/**
 * The world file: who exists in the simulated Telegram, how they log in, what limits and faults apply.
 * Validated with ajv (structure, defaults) and then semantically (unique ids, resolvable references);
 * every error names the field, e.g. `users[2].login.code: must be string`.
 */
import { Ajv, type ErrorObject, type SchemaObject } from 'ajv';

export type UserRef = number | string;

export interface WorldUser {
  readonly id: number;
  readonly first_name: string;
  readonly last_name: string;
  readonly username?: string;
  readonly phone_number?: string;
  /** Present for accounts that log in with a phone number. */
  readonly login?: {
    readonly code: string;
    readonly password?: string;
    readonly password_hint: string;
    readonly has_recovery_email_address: boolean;
  };
  /** Present for bot accounts. */
  readonly bot?: { readonly token: string };
  readonly contacts: readonly UserRef[];
  readonly blocked: readonly UserRef[];
  readonly started_bots: readonly UserRef[];
  readonly deactivated: boolean;
  readonly premium: boolean;
  readonly privacy: {
    readonly find_by_phone_number: 'everybody' | 'contacts';
    readonly show_phone_number: 'everybody' | 'contacts' | 'nobody';
    readonly new_chats: 'everybody' | 'contacts_and_premium';
  };
}

/**
 * A public supergroup or channel. `id` is the supergroup identifier (chatTypeSupergroup.supergroup_id);
 * the chat identifier TDLib uses is -(10^12 + id), see supergroupChatId().
 */
export interface WorldChat {
  readonly id: number;
  readonly title: string;
  readonly username: string;
  readonly kind: 'supergroup' | 'channel';
  /** Users who joined: in a supergroup they may write, in a channel they only read. */
  readonly members: readonly UserRef[];
  /** Administrators (members too): the only ones who may post in a channel. */
  readonly admins: readonly UserRef[];
}

/** TDLib's ChannelId::MAX_CHANNEL_ID: 10^12 - 2^31. */
export const MAX_SUPERGROUP_ID = 1_000_000_000_000 - 2 ** 31;

/** The chat identifier TDLib gives a supergroup or channel (DialogId of a channel). */
export function supergroupChatId(supergroupId: number): number {
  return -1_000_000_000_000 - supergroupId;
}

export interface RateLimit {
  readonly per_second: number;
  readonly burst: number;
}

export interface SendLimits {
  readonly account: RateLimit;
  readonly chat: RateLimit;
}

export interface WorldLimits {
  readonly user: SendLimits;
  readonly bot: SendLimits;
  readonly peer_flood: { readonly max_new_strangers: number; readonly window_seconds: number };
  readonly search_public_chat: RateLimit;
  readonly search_user_by_phone_number: RateLimit;
  readonly import_contacts: RateLimit;
  /** getChatHistory, searchChatMessages and getChatMessageByDate share one bucket per account. */
  readonly history: RateLimit;
  readonly tdlib_flood_wait_limit_seconds: number;
}

export interface WorldProxy {
  readonly server: string;
  readonly port: number;
  readonly dead: boolean;
}

export interface WorldNetwork {
  readonly connect_delay_ms: number;
  readonly ping_ms: number;
  readonly proxies: readonly WorldProxy[];
  readonly dead_proxy_error: string;
}

export interface PerMethod {
  readonly default: number;
  readonly methods: Readonly<Record<string, number>>;
}

export interface WorldFaults {
  readonly disconnected: boolean;
  readonly latency_ms: PerMethod;
  readonly error_rate: PerMethod;
  /** random: each request fails with probability error_rate; even: exactly one in every 1/error_rate. */
  readonly error_spacing: 'random' | 'even';
  readonly error: { readonly code: number; readonly message: string };
}

export interface WorldSimulation {
  readonly poll_interval_ms: number;
  readonly heartbeat_interval_ms: number;
  readonly lease_ttl_ms: number;
  readonly qr_link_ttl_seconds: number;
  readonly code_length: number;
  readonly chat_updates: boolean;
  readonly blocked_sender_sees: 'error' | 'success';
}

export interface WorldConfig {
  readonly version: 1;
  readonly seed: number;
  readonly users: readonly WorldUser[];
  readonly chats: readonly WorldChat[];
  readonly limits: WorldLimits;
  readonly network: WorldNetwork;
  readonly faults: WorldFaults;
  readonly simulation: WorldSimulation;
}

const rate = (perSecond: number, burst: number): SchemaObject => ({
  type: 'object',
  additionalProperties: false,
  default: { per_second: perSecond, burst },
  properties: {
    per_second: { type: 'number', exclusiveMinimum: 0 },
    burst: { type: 'integer', minimum: 1 },
  },
  required: ['per_second', 'burst'],
});

const userRef: SchemaObject = { oneOf: [{ type: 'integer' }, { type: 'string', minLength: 1 }] };

const USERNAME_PATTERN = '^[A-Za-z][A-Za-z0-9_]{3,31}$';

const perMethod = (max?: number): SchemaObject => ({
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    default: { type: 'number', minimum: 0, ...(max === undefined ? {} : { maximum: max }), default: 0 },
    methods: {
      type: 'object',
      default: {},
      additionalProperties: { type: 'number', minimum: 0, ...(max === undefined ? {} : { maximum: max }) },
    },
  },
});

const sendLimits = (account: [number, number], chat: [number, number]): SchemaObject => ({
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: { account: rate(...account), chat: rate(...chat) },
});

/** JSON Schema of the world file; defaults are filled in by validation. */
export const WORLD_SCHEMA: SchemaObject = {
  type: 'object',
  additionalProperties: false,
  required: ['version', 'users'],
  properties: {
    version: { const: 1 },
    seed: { type: 'integer', default: 1 },
    users: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'first_name'],
        properties: {
          id: { type: 'integer', minimum: 1, maximum: 9007199254740991 },
          first_name: { type: 'string', minLength: 1, maxLength: 64 },
          last_name: { type: 'string', maxLength: 64, default: '' },
          username: { type: 'string', pattern: USERNAME_PATTERN },
          phone_number: { type: 'string', pattern: '^\\+?[0-9][0-9 ()-]{4,20}$' },
          login: {
            type: 'object',
            additionalProperties: false,
            required: ['code'],
            properties: {
              code: { type: 'string', pattern: '^[0-9]{4,8}$' },
              password: { type: 'string', minLength: 1 },
              password_hint: { type: 'string', default: '' },
              has_recovery_email_address: { type: 'boolean', default: false },
            },
          },
          bot: {
            type: 'object',
            additionalProperties: false,
            required: ['token'],
            properties: { token: { type: 'string', pattern: '^[0-9]+:[A-Za-z0-9_-]+$' } },
          },
          contacts: { type: 'array', items: userRef, default: [] },
          blocked: { type: 'array', items: userRef, default: [] },
          started_bots: { type: 'array', items: userRef, default: [] },
          deactivated: { type: 'boolean', default: false },
          premium: { type: 'boolean', default: false },
          privacy: {
            type: 'object',
            additionalProperties: false,
            default: {},
            properties: {
              find_by_phone_number: { enum: ['everybody', 'contacts'], default: 'everybody' },
              show_phone_number: { enum: ['everybody', 'contacts', 'nobody'], default: 'contacts' },
              new_chats: { enum: ['everybody', 'contacts_and_premium'], default: 'everybody' },
            },
          },
        },
      },
    },
    chats: {
      type: 'array',
      default: [],
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'title', 'username', 'kind'],
        properties: {
          id: { type: 'integer', minimum: 1, maximum: MAX_SUPERGROUP_ID - 1 },
          title: { type: 'string', minLength: 1, maxLength: 128 },
          username: { type: 'string', pattern: USERNAME_PATTERN },
          kind: { enum: ['supergroup', 'channel'] },
          members: { type: 'array', items: userRef, default: [] },
          admins: { type: 'array', items: userRef, default: [] },
        },
      },
    },
    limits: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        user: sendLimits([1, 20], [1, 5]),
        bot: sendLimits([30, 30], [1, 5]),
        peer_flood: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            max_new_strangers: { type: 'integer', minimum: 0, default: 50 },
            window_seconds: { type: 'integer', minimum: 1, default: 86400 },
          },
        },
        search_public_chat: rate(0.2, 20),
        search_user_by_phone_number: rate(0.1, 10),
        import_contacts: rate(0.05, 30),
        history: rate(50, 500),
        tdlib_flood_wait_limit_seconds: { type: 'number', minimum: 0, default: 60 },
      },
    },
    network: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        connect_delay_ms: { type: 'integer', minimum: 0, default: 50 },
        ping_ms: { type: 'number', minimum: 0, default: 40 },
        proxies: {
          type: 'array',
          default: [],
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['server', 'port'],
            properties: {
              server: { type: 'string', minLength: 1, maxLength: 255 },
              port: { type: 'integer', minimum: 1, maximum: 65535 },
              dead: { type: 'boolean', default: false },
            },
          },
        },
        dead_proxy_error: { type: 'string', minLength: 1, default: 'Connection refused' },
      },
    },
    faults: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        disconnected: { type: 'boolean', default: false },
        latency_ms: perMethod(),
        error_rate: perMethod(1),
        error_spacing: { type: 'string', enum: ['random', 'even'], default: 'random' },
        error: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            code: { type: 'integer', minimum: 100, maximum: 599, default: 500 },
            message: { type: 'string', minLength: 1, default: 'Internal Server Error' },
          },
        },
      },
    },
    simulation: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        poll_interval_ms: { type: 'integer', minimum: 10, maximum: 10000, default: 100 },
        heartbeat_interval_ms: { type: 'integer', minimum: 50, maximum: 60000, default: 1000 },
        lease_ttl_ms: { type: 'integer', minimum: 200, maximum: 600000, default: 5000 },
        qr_link_ttl_seconds: { type: 'integer', minimum: 1, default: 30 },
        code_length: { type: 'integer', minimum: 4, maximum: 8, default: 5 },
        chat_updates: { type: 'boolean', default: true },
        blocked_sender_sees: { enum: ['error', 'success'], default: 'error' },
      },
    },
  },
};

export class WorldConfigError extends Error {
  override readonly name = 'WorldConfigError';

  constructor(
    readonly source: string,
    readonly problems: readonly string[],
  ) {
    super(`invalid simulator world ${source}:\n  ${problems.join('\n  ')}`);
  }
}

/** "/users/2/login/code" -> "users[2].login.code" */
export function fieldPath(instancePath: string, child?: string): string {
  const parts = instancePath.split('/').slice(1);
  if (child !== undefined) parts.push(child);
  let out = '';
  for (const raw of parts) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (/^[0-9]+$/.test(part)) out += `[${part}]`;
    else out += out === '' ? part : `.${part}`;
  }
  return out === '' ? '(root)' : out;
}

function describe(error: ErrorObject): string {
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'additionalProperties':
      return `${fieldPath(error.instancePath, String(params.additionalProperty))}: unknown field`;
    case 'required':
      return `${fieldPath(error.instancePath, String(params.missingProperty))}: required field is missing`;
    case 'enum':
      return `${fieldPath(error.instancePath)}: must be one of ${JSON.stringify(params.allowedValues)}`;
    default:
      return `${fieldPath(error.instancePath)}: ${error.message ?? error.keyword}`;
  }
}

let compiled: ReturnType<Ajv['compile']> | undefined;

function validator(): ReturnType<Ajv['compile']> {
  compiled ??= new Ajv({ allErrors: true, useDefaults: true, strict: true, allowUnionTypes: true }).compile(
    WORLD_SCHEMA,
  );
  return compiled;
}

/** Phone numbers are compared as digits only, the way TDLib and Telegram normalize them. */
export function normalizePhone(phone: string): string {
  return phone.replace(/[^0-9]/g, '');
}

/**
 * Validates a parsed world file and returns it with every default filled in. Throws WorldConfigError with
 * one line per problem.
 */
export function validateWorld(input: unknown, source = 'world'): WorldConfig {
  const value: unknown = structuredClone(input);
  const validate = validator();
  if (!validate(value)) {
    const problems = (validate.errors ?? [])
      // oneOf failures repeat the branch errors; the branch errors say it better.
      .filter((error) => error.keyword !== 'oneOf')
      .map(describe);
    throw new WorldConfigError(source, [...new Set(problems)]);
  }
  const world = value as WorldConfig;
  const problems = semanticProblems(world);
  if (problems.length > 0) throw new WorldConfigError(source, problems);
  return world;
}

function semanticProblems(world: WorldConfig): string[] {
  const problems: string[] = [];
  const ids = new Map<number, number>();
  const usernames = new Map<string, number>();
  const phones = new Map<string, number>();
  const tokens = new Map<string, number>();
  world.users.forEach((user, index) => {
    const at = `users[${index}]`;
    const firstWithId = ids.get(user.id);
    if (firstWithId !== undefined) problems.push(`${at}.id: duplicate of users[${firstWithId}].id`);
    else ids.set(user.id, index);
    if (user.username !== undefined) {
      const key = user.username.toLowerCase();
      const other = usernames.get(key);
      if (other !== undefined) problems.push(`${at}.username: already used by users[${other}]`);
      else usernames.set(key, index);
    }
    if (user.phone_number !== undefined) {
      const key = normalizePhone(user.phone_number);
      const other = phones.get(key);
      if (other !== undefined) problems.push(`${at}.phone_number: already used by users[${other}]`);
      else phones.set(key, index);
    }
    if (user.login !== undefined && user.bot !== undefined) {
      problems.push(`${at}: a user cannot have both login (phone account) and bot (bot account)`);
    }
    if (user.login !== undefined && user.phone_number === undefined) {
      problems.push(`${at}.phone_number: required when login is set`);
    }
    if (user.bot !== undefined) {
      if (user.phone_number !== undefined) problems.push(`${at}.phone_number: bots have no phone number`);
      const other = tokens.get(user.bot.token);
      if (other !== undefined) problems.push(`${at}.bot.token: already used by users[${other}]`);
      else tokens.set(user.bot.token, index);
    }
  });
  const chatUsernames = new Map<string, number>();
  const resolves = (ref: UserRef): boolean =>
    typeof ref === 'number' ? ids.has(ref) : usernames.has(ref.replace(/^@/, '').toLowerCase());
  world.users.forEach((user, index) => {
    for (const field of ['contacts', 'blocked', 'started_bots'] as const) {
      user[field].forEach((ref, i) => {
        if (!resolves(ref)) problems.push(`users[${index}].${field}[${i}]: no user ${JSON.stringify(ref)}`);
      });
    }
  });
  const chatIds = new Map<number, number>();
  world.chats.forEach((chat, index) => {
    const at = `chats[${index}]`;
    const first = chatIds.get(chat.id);
    if (first !== undefined) problems.push(`${at}.id: duplicate of chats[${first}].id`);
    else chatIds.set(chat.id, index);
    // Users and chats share Telegram's username namespace: searchPublicChat finds either.
    const key = chat.username.toLowerCase();
    const user = usernames.get(key);
    const other = chatUsernames.get(key);
    if (user !== undefined) problems.push(`${at}.username: already used by users[${user}]`);
    else if (other !== undefined) problems.push(`${at}.username: already used by chats[${other}]`);
    else chatUsernames.set(key, index);
    for (const field of ['members', 'admins'] as const) {
      chat[field].forEach((ref, i) => {
        if (!resolves(ref)) problems.push(`${at}.${field}[${i}]: no user ${JSON.stringify(ref)}`);
      });
    }
  });
  world.network.proxies.forEach((proxy, index) => {
    if (
      world.network.proxies.findIndex((p) => p.server === proxy.server && p.port === proxy.port) !== index
    ) {
      problems.push(`network.proxies[${index}]: duplicate of an earlier proxy`);
    }
  });
  return problems;
}
