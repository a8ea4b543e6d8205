/**
 * In-process harness for simulator tests: a fresh world directory per test, a SimulatorBackend wrapped so
 * that every object it emits is checked against TDLib's schema (see td-schema.ts), and the project's
 * TdClient layer on top, exactly as the runtime will use it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SimulatorBackend, World } from '../../../../runtime/simulator/index.js';
import type { TdBackend, TdBatchListener, TdObject } from '../../../../runtime/tdlib/backend.js';
import { TdClientManager, type TdClient } from '../../../../runtime/tdlib/client.js';
import { TdError } from '../../../../runtime/tdlib/errors.js';
import { validateTdObject } from './td-schema.js';

/** Knobs that make a world fast enough for tests (the defaults are tuned for demos). */
export const FAST_SIMULATION = {
  poll_interval_ms: 20,
  heartbeat_interval_ms: 50,
  lease_ttl_ms: 2000,
};

export const DEMO_USERS = [
  {
    id: 5550100001,
    first_name: 'Demo',
    last_name: 'User',
    username: 'demo_user',
    phone_number: '+15550100001',
    login: { code: '12345', password: 'correct horse', password_hint: 'horse' },
    contacts: [5550100101],
  },
  {
    id: 5550100002,
    first_name: 'Second',
    username: 'second_user',
    phone_number: '+15550100002',
    login: { code: '54321' },
  },
  {
    id: 7000000001,
    first_name: 'Demo Bot',
    username: 'demo_campaign_bot',
    bot: { token: '7000000001:AAHdemo' },
  },
  {
    id: 5550100101,
    first_name: 'Alice',
    username: 'alice_demo',
    phone_number: '+15550100101',
    started_bots: ['demo_campaign_bot'],
    contacts: [5550100001],
  },
  {
    id: 5550100102,
    first_name: 'Bob',
    username: 'bob_demo',
    phone_number: '+15550100102',
    started_bots: ['demo_campaign_bot'],
  },
  { id: 5550100103, first_name: 'Carol', username: 'carol_demo', phone_number: '+15550100103' },
];

export interface WorldFixture {
  readonly dir: string;
  readonly world: World;
  cleanup(): void;
}

export function makeWorld(overrides: Record<string, unknown> = {}): WorldFixture {
  const dir = mkdtempSync(join(tmpdir(), 'sim-world-'));
  const simulation = { ...FAST_SIMULATION, ...(overrides.simulation as Record<string, unknown> | undefined) };
  const world = World.create(dir, {
    version: 1,
    users: DEMO_USERS,
    network: { connect_delay_ms: 0 },
    ...overrides,
    simulation,
  });
  return { dir, world, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Wraps a backend so every emitted object is schema-checked; problems are collected, not thrown. */
export class CheckedBackend implements TdBackend {
  readonly problems: string[] = [];
  readonly seen: TdObject[] = [];

  constructor(readonly inner: TdBackend) {}

  get kind(): string {
    return this.inner.kind;
  }

  createClientId(): number {
    return this.inner.createClientId();
  }

  send(clientId: number, requestJson: string): void {
    this.inner.send(clientId, requestJson);
  }

  execute(requestJson: string): string {
    const answer = this.inner.execute(requestJson);
    this.check(JSON.parse(answer) as TdObject);
    return answer;
  }

  onReceive(listener: TdBatchListener): void {
    this.inner.onReceive((batch) => {
      for (const object of batch) this.check(object);
      listener(batch);
    });
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  private check(object: TdObject): void {
    this.seen.push(object);
    const type = object['@type'];
    // Answers to TDLib's own test methods and the few unions the types file names differently.
    const expected = type.startsWith('update') ? 'Update' : undefined;
    for (const problem of validateTdObject(object, expected)) this.problems.push(`${type}: ${problem}`);
  }
}

export interface Session {
  readonly backend: SimulatorBackend;
  readonly checked: CheckedBackend;
  readonly manager: TdClientManager;
  close(): Promise<void>;
}

export function startSession(dir: string, options: { readonly clock?: { now(): number } } = {}): Session {
  const backend = new SimulatorBackend({ worldDir: dir, ...options });
  const checked = new CheckedBackend(backend);
  const manager = new TdClientManager(checked, { defaultTimeoutMs: 10_000, closeTimeoutMs: 10_000 });
  return {
    backend,
    checked,
    manager,
    close: async () => {
      await manager.shutdown({ timeoutMs: 10_000 });
    },
  };
}

/**
 * Resolves once the backend sees the world as the world directory says it is now, i.e. after a test-side
 * edit (World.blockUser, setFaults...) reached it; simulators look at the directory every poll interval.
 */
export async function worldSynced(session: Session, fx: WorldFixture, timeoutMs = 5_000): Promise<void> {
  const expected = JSON.stringify(fx.world.view().config);
  const deadline = Date.now() + timeoutMs;
  while (JSON.stringify(session.backend.worldView().config) !== expected) {
    if (Date.now() > deadline) throw new Error('the backend did not pick up the world change in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Records a client's updates; waitFor() resolves on the first (past or future) update that matches. */
export class Recorder {
  readonly updates: TdObject[] = [];
  private readonly waiters: { match: (u: TdObject) => boolean; resolve: (u: TdObject) => void }[] = [];

  constructor(readonly client: TdClient) {
    client.subscribe((update) => {
      const object = update as unknown as TdObject;
      this.updates.push(object);
      for (const waiter of [...this.waiters]) {
        if (waiter.match(object)) {
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          waiter.resolve(object);
        }
      }
    });
  }

  waitFor(match: (u: TdObject) => boolean, timeoutMs = 5_000, since = 0): Promise<TdObject> {
    const found = this.updates.slice(since).find(match);
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(
          new Error(
            `no matching update within ${timeoutMs} ms; saw ${this.updates.map((u) => u['@type']).join(', ')}`,
          ),
        );
      }, timeoutMs);
      const waiter = {
        match,
        resolve: (u: TdObject) => {
          clearTimeout(timer);
          resolve(u);
        },
      };
      this.waiters.push(waiter);
    });
  }

  authStates(): string[] {
    return this.updates
      .filter((u) => u['@type'] === 'updateAuthorizationState')
      .map((u) => (u.authorization_state as TdObject)['@type']);
  }

  connectionStates(): string[] {
    return this.updates
      .filter((u) => u['@type'] === 'updateConnectionState')
      .map((u) => (u.state as TdObject)['@type']);
  }
}

export function isAuthState(type: string): (u: TdObject) => boolean {
  return (u) =>
    u['@type'] === 'updateAuthorizationState' && (u.authorization_state as TdObject)['@type'] === type;
}

export function isConnectionState(type: string): (u: TdObject) => boolean {
  return (u) => u['@type'] === 'updateConnectionState' && (u.state as TdObject)['@type'] === type;
}

export function params(databaseDirectory: string, key = ''): TdObject {
  return {
    '@type': 'setTdlibParameters',
    database_directory: databaseDirectory,
    database_encryption_key: key,
    api_id: 94575,
    api_hash: 'a3406de8d171bb422bb6ddf3bbd800e2',
    system_language_code: 'en',
    device_model: 'simulator-test',
    application_version: '1.0',
  };
}

/** The error TDLib answered with, or a failure if the call succeeded. */
export async function errorOf(promise: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof TdError) return { code: error.code, message: error.message };
    throw error;
  }
  throw new Error('expected a TDLib error, got a successful answer');
}

export async function loginUser(
  client: TdClient,
  phone: string,
  code: string,
  password?: string,
): Promise<void> {
  await client.invokeUnchecked({ '@type': 'setAuthenticationPhoneNumber', phone_number: phone });
  await client.invokeUnchecked({ '@type': 'checkAuthenticationCode', code });
  if (password !== undefined)
    await client.invokeUnchecked({ '@type': 'checkAuthenticationPassword', password });
}

export function textMessage(chatId: number, text: string, sendingId = 0): TdObject {
  return {
    '@type': 'sendMessage',
    chat_id: chatId,
    options: { '@type': 'messageSendOptions', sending_id: sendingId },
    input_message_content: {
      '@type': 'inputMessageText',
      text: { '@type': 'formattedText', text, entities: [] },
    },
  };
}

/** Resolves with the final outcome update (succeeded or failed) for the pending message `id`. */
export function outcomeOf(recorder: Recorder, pendingId: number, timeoutMs = 5_000): Promise<TdObject> {
  return recorder.waitFor(
    (u) =>
      (u['@type'] === 'updateMessageSendSucceeded' || u['@type'] === 'updateMessageSendFailed') &&
      u.old_message_id === pendingId,
    timeoutMs,
  );
}
