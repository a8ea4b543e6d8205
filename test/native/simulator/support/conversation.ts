/**
 * Scripted conversations over any TdBackend, through the project's TdClient layer: the same script runs
 * against the simulator and against real libtdjson, and the transcripts (answers by label, updates by
 * client) are compared. Scripts are plain JSON so a child process can run them.
 */
import type { TdBackend, TdObject } from '../../../../runtime/tdlib/backend.js';
import { TdClientManager, type TdClient } from '../../../../runtime/tdlib/client.js';
import { TdError, TdTimeoutError } from '../../../../runtime/tdlib/errors.js';

export type Until =
  | { readonly authorizationState: string }
  | { readonly connectionState: string }
  | { readonly update: string };

export type Step =
  | { readonly op: 'client'; readonly name: string }
  | {
      readonly op: 'call';
      readonly client: string;
      readonly label: string;
      readonly request: Record<string, unknown>;
      readonly timeoutMs?: number;
      /** Send now, record the answer whenever it comes (collected by a later 'settle'). */
      readonly noWait?: boolean;
    }
  | {
      readonly op: 'wait';
      readonly client: string;
      readonly label: string;
      readonly until: Until;
      readonly timeoutMs?: number;
      /** Wait for this many matching updates (default 1); the label records the last. */
      readonly count?: number;
    }
  | { readonly op: 'execute'; readonly label: string; readonly request: Record<string, unknown> | string }
  | { readonly op: 'settle' }
  | { readonly op: 'close'; readonly client: string }
  /** Sleeps: for windows in which something must *not* happen, or for a process to stay alive. */
  | { readonly op: 'pause'; readonly ms: number };

export interface Transcript {
  readonly note: string;
  readonly answers: Record<string, TdObject>;
  readonly updates: Record<string, TdObject[]>;
}

function errorObject(error: unknown): TdObject {
  if (error instanceof TdError) return { '@type': 'error', code: error.code, message: error.message };
  if (error instanceof TdTimeoutError) return { '@type': 'timeout' };
  return { '@type': 'failure', message: error instanceof Error ? error.message : String(error) };
}

function strip(object: TdObject): TdObject {
  const { '@extra': _extra, '@client_id': _client, ...rest } = object as Record<string, unknown>;
  return rest as TdObject;
}

function matches(update: TdObject, until: Until): boolean {
  if ('update' in until) return update['@type'] === until.update;
  if ('authorizationState' in until) {
    return (
      update['@type'] === 'updateAuthorizationState' &&
      (update.authorization_state as TdObject)['@type'] === until.authorizationState
    );
  }
  return (
    update['@type'] === 'updateConnectionState' &&
    (update.state as TdObject)['@type'] === until.connectionState
  );
}

/**
 * libtdjson runs clients on a pool of at most 25 thread groups (TDLib's MultiImplPool: 5/4 of the
 * hardware threads, clamped to 8-20) and tears a group down, on the thread that called td_receive, when its
 * last client reports closed. After `destroy` that teardown can find actors of the destroyed client still
 * alive and abort the process (`ObjectPool.h: storage_count_.load() == 0`: once in 3,350 destroy cycles
 * measured here, and once in CI). One idle client bound to every group keeps each group alive until the
 * script is over (the process's thread count stays flat across closes), so no teardown races them.
 */
export const THREAD_GROUP_KEEPERS = 25;

export interface ConversationOptions {
  /** Idle clients that hold libtdjson's thread groups for the whole script (real TDLib only). */
  readonly keepers?: number;
}

async function startKeepers(manager: TdClientManager, count: number): Promise<TdClient[]> {
  const keepers: TdClient[] = [];
  for (let i = 0; i < count; i++) {
    const keeper = manager.createClient();
    // libtdjson binds a client to a thread group on its first request; a test method binds it and
    // opens nothing (no database, no network).
    await keeper.invokeUnchecked({ '@type': 'testCallEmpty' } as TdObject);
    keepers.push(keeper);
  }
  return keepers;
}

export async function runConversation(
  backend: TdBackend,
  steps: readonly Step[],
  note: string,
  options: ConversationOptions = {},
): Promise<Transcript> {
  const manager = new TdClientManager(backend, { defaultTimeoutMs: 20_000, closeTimeoutMs: 20_000 });
  const keepers = await startKeepers(manager, options.keepers ?? 0);
  const clients = new Map<string, TdClient>();
  const answers: Record<string, TdObject> = {};
  const updates: Record<string, TdObject[]> = {};
  const pending: Promise<void>[] = [];
  const client = (name: string): TdClient => {
    const c = clients.get(name);
    if (c === undefined) throw new Error(`script uses client ${name} before creating it`);
    return c;
  };
  try {
    for (const step of steps) {
      switch (step.op) {
        case 'client': {
          const c = manager.createClient();
          clients.set(step.name, c);
          const list: TdObject[] = (updates[step.name] = []);
          c.subscribe((u) => list.push(strip(u as unknown as TdObject)));
          break;
        }
        case 'call': {
          const promise = client(step.client)
            .invokeUnchecked(
              step.request as TdObject,
              step.timeoutMs === undefined ? {} : { timeoutMs: step.timeoutMs },
            )
            .then(
              (answer) => void (answers[step.label] = strip(answer)),
              (error: unknown) => void (answers[step.label] = errorObject(error)),
            );
          if (step.noWait === true) pending.push(promise);
          else await promise;
          break;
        }
        case 'wait': {
          const c = client(step.client);
          const list = updates[step.client] ?? [];
          const deadline = Date.now() + (step.timeoutMs ?? 10_000);
          const wanted = step.count ?? 1;
          for (;;) {
            const found = list.filter((u) => matches(u, step.until));
            if (found.length >= wanted) {
              answers[step.label] = found[wanted - 1] as TdObject;
              break;
            }
            if (Date.now() > deadline || c.state === 'closed') {
              answers[step.label] = { '@type': 'timeout' };
              break;
            }
            await new Promise((r) => setTimeout(r, 5));
          }
          break;
        }
        case 'execute': {
          const text = typeof step.request === 'string' ? step.request : JSON.stringify(step.request);
          answers[step.label] = strip(JSON.parse(backend.execute(text)) as TdObject);
          break;
        }
        case 'settle':
          await Promise.all(pending.splice(0));
          break;
        case 'close':
          await client(step.client)
            .close()
            .catch(() => undefined);
          break;
        case 'pause':
          await new Promise((r) => setTimeout(r, step.ms));
          break;
      }
    }
    await Promise.all(pending);
  } finally {
    const scripted = [...clients.values()];
    await Promise.all(scripted.map((c) => c.close().catch(() => undefined)));
    await Promise.all(keepers.map((c) => c.close().catch(() => undefined)));
    await manager.shutdown({ timeoutMs: 20_000 });
  }
  return { note, answers, updates };
}
