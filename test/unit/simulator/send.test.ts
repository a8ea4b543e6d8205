import { afterEach, describe, expect, it } from '@jest/globals';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { SimulatorBackend } from '../../../runtime/simulator/index.js';
import type { TdReceived } from '../../../runtime/tdlib/backend.js';
import { waitFor } from '../../cluster/wait.js';
import { makeWorld, type WorldFixture } from './support/harness.js';

const parameters = (directory: string, extra: number): string =>
  JSON.stringify({
    '@type': 'setTdlibParameters',
    database_directory: directory,
    database_encryption_key: Buffer.alloc(32, 7).toString('base64'),
    api_id: 94575,
    api_hash: 'a3406de8d171bb422bb6ddf3bbd800e2',
    system_language_code: 'en',
    device_model: 'test',
    application_version: '1.0',
    '@extra': extra,
  });

describe('td_send to the simulator', () => {
  let fixture: WorldFixture | undefined;
  let backend: SimulatorBackend | undefined;
  afterEach(async () => {
    await backend?.close();
    fixture?.cleanup();
  });

  it('only queues the request, as TDLib does: its disk work runs later, and answers keep their order', async () => {
    fixture = makeWorld();
    backend = new SimulatorBackend({ worldDir: fixture.dir });
    const received: TdReceived[] = [];
    backend.onReceive((batch) => received.push(...batch));
    const clients = Array.from({ length: 50 }, () => backend!.createClientId());
    const directory = (id: number): string => join(fixture!.dir, 'db', String(id));
    for (const id of clients) {
      backend.send(id, parameters(directory(id), id));
      backend.send(id, JSON.stringify({ '@type': 'testCallEmpty', '@extra': -id }));
    }
    // Nothing of the 50 logins' database writes ran inside the caller's turn.
    expect(clients.filter((id) => existsSync(directory(id)))).toEqual([]);

    const answers = (id: number): unknown[] =>
      received.filter((o) => o['@client_id'] === id && o['@extra'] !== undefined).map((o) => o['@extra']);
    await waitFor(
      'an answer to every request',
      () => (clients.every((id) => answers(id).length === 2) ? true : undefined),
      { timeoutMs: 10_000, intervalMs: 5 },
    );
    for (const id of clients) {
      expect(answers(id)).toEqual([id, -id]);
      expect(existsSync(join(directory(id), 'td.binlog'))).toBe(true);
    }
  });
});
