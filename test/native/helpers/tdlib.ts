/**
 * Shared set-up for the native suite: real libtdjson, offline. Clients are initialized only as far as
 * authorizationStateWaitPhoneNumber, which TDLib reaches without the network.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TdClient } from '../../../runtime/tdlib/client.js';
import type { TdTypedRequest } from '../../../runtime/tdlib/client.js';

/** TDLib's public test credentials work offline; nothing here talks to Telegram. */
export const TEST_API_ID = 94575;
export const TEST_API_HASH = 'a3406de8d171bb422bb6ddf3bbd800e2';

export function tdlibParameters(databaseDirectory: string): TdTypedRequest<'setTdlibParameters'> {
  return {
    '@type': 'setTdlibParameters',
    use_test_dc: true,
    database_directory: databaseDirectory,
    files_directory: databaseDirectory,
    database_encryption_key: '',
    use_file_database: false,
    use_chat_info_database: false,
    use_message_database: false,
    use_secret_chats: false,
    api_id: TEST_API_ID,
    api_hash: TEST_API_HASH,
    system_language_code: 'en',
    device_model: 'tdlib-operator native tests',
    system_version: '',
    application_version: '0.1.0',
  };
}

/** Sends setTdlibParameters and waits for authorizationStateWaitPhoneNumber. */
export async function initializeClient(
  client: TdClient,
  databaseDirectory: string,
  timeoutMs = 60_000,
): Promise<void> {
  const waiting = client.waitForAuthorizationState('authorizationStateWaitPhoneNumber', { timeoutMs });
  await client.invoke(tdlibParameters(databaseDirectory), { timeoutMs });
  await waiting;
}

export interface TempDir {
  readonly path: string;
  remove(): void;
}

export function tempDir(prefix: string): TempDir {
  const dir = mkdtempSync(path.join(tmpdir(), `${prefix}-`));
  return { path: dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Runs `work` over `items` with at most `limit` in flight (bounded parallelism for many clients). */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index] as T);
    }
  });
  await Promise.all(runners);
  return results;
}
