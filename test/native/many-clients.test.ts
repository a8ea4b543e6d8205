import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { TdClientManager } from '../../runtime/tdlib/client.js';
import { NativeBackend } from '../../runtime/tdlib/native-backend.js';
import { initializeClient, mapLimit, tempDir, type TempDir } from './helpers/tdlib.js';

const CLIENTS = 1000;

describe(`${CLIENTS} clients in one process`, () => {
  let backend: NativeBackend;
  let manager: TdClientManager;
  let dir: TempDir;

  beforeAll(() => {
    dir = tempDir('tdlib-many');
    backend = new NativeBackend({ logVerbosity: 0 });
    manager = new TdClientManager(backend, { defaultTimeoutMs: 120_000, closeTimeoutMs: 120_000 });
  });

  afterAll(async () => {
    await manager.shutdown();
    dir.remove();
  });

  it('brings every client to authorizationStateWaitPhoneNumber, each with its own database', async () => {
    const clients = Array.from({ length: CLIENTS }, () => manager.createClient());
    expect(new Set(clients.map((c) => c.id)).size).toBe(CLIENTS);
    await mapLimit(clients, 200, (client) => initializeClient(client, path.join(dir.path, `c${client.id}`)));
    expect(
      clients.every((c) => c.authorizationState?.['@type'] === 'authorizationStateWaitPhoneNumber'),
    ).toBe(true);
    expect(backend.openClients).toBe(CLIENTS);
    // TDLib wrote a binlog per client: the databases really are on disk.
    const sample = clients[CLIENTS - 1];
    expect(readdirSync(path.join(dir.path, `c${sample?.id}`))).toContain('td_test.binlog');
  }, 170_000);

  it('closes all of them: each reaches authorizationStateClosed', async () => {
    const clients = [...manager.clients()];
    const result = await manager.closeAll({ timeoutMs: 120_000 });
    expect(result).toEqual({ closed: CLIENTS, notClosed: [] });
    expect(clients.every((c) => c.state === 'closed')).toBe(true);
    expect(clients.every((c) => c.authorizationState?.['@type'] === 'authorizationStateClosed')).toBe(true);
    expect(manager.size).toBe(0);
    expect(backend.openClients).toBe(0);
    expect(manager.pendingRequests).toBe(0);
  }, 130_000);
});
