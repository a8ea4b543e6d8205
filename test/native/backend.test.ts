import { existsSync } from 'node:fs';
import { afterEach, describe, expect, it } from '@jest/globals';
import type { TdReceived } from '../../runtime/tdlib/backend.js';
import { TdClientManager } from '../../runtime/tdlib/client.js';
import { NativeBackend } from '../../runtime/tdlib/native-backend.js';

async function until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Closes raw client ids (no TdClient) and waits until TDLib reported every one closed. */
async function closeRaw(backend: NativeBackend, ids: readonly number[], seen: TdReceived[]): Promise<void> {
  for (const id of ids) backend.send(id, '{"@type":"close"}');
  await until(
    () =>
      ids.every((id) =>
        seen.some(
          (o) =>
            o['@client_id'] === id &&
            (o.authorization_state as { '@type'?: string } | undefined)?.['@type'] ===
              'authorizationStateClosed',
        ),
      ),
    20_000,
    'authorizationStateClosed',
  );
  await backend.close();
}

describe('NativeBackend', () => {
  let backend: NativeBackend | undefined;

  afterEach(async () => {
    await backend?.close();
    backend = undefined;
  });

  it('delivers answers in batches, one listener call for many objects', async () => {
    backend = new NativeBackend({ logVerbosity: 0 });
    const received: TdReceived[] = [];
    let calls = 0;
    backend.onReceive((batch) => {
      calls++;
      received.push(...batch);
    });
    const ids = [backend.createClientId(), backend.createClientId()];
    const total = 5000;
    for (let i = 0; i < total; i++) {
      backend.send(
        ids[i % 2] as number,
        JSON.stringify({ '@type': 'testSquareInt', x: i % 100, '@extra': i }),
      );
    }
    await until(() => received.filter((o) => o['@type'] === 'testInt').length === total, 30_000, 'answers');
    const answers = received.filter((o) => o['@type'] === 'testInt');
    expect(answers.every((o) => o.value === ((o['@extra'] as number) % 100) ** 2)).toBe(true);
    expect(answers.every((o) => o['@client_id'] === ids[(o['@extra'] as number) % 2])).toBe(true);
    expect(calls).toBeLessThan(total / 4);
    const stats = backend.receiverStats();
    expect(stats?.largestBatch).toBeGreaterThan(1);
    await closeRaw(backend, ids, received);
  });

  it('applies backpressure when JS falls behind, and loses nothing', async () => {
    backend = new NativeBackend({ logVerbosity: 0, receiver: { maxBatchObjects: 8, maxPendingBatches: 2 } });
    const received: TdReceived[] = [];
    backend.onReceive((batch) => received.push(...batch));
    const id = backend.createClientId();
    const total = 3000;
    for (let i = 0; i < total; i++) backend.send(id, `{"@type":"testSquareInt","x":3,"@extra":${i}}`);
    // Hold the JS thread: the receive thread can queue at most 2 batches of 8, then has to wait.
    const busyUntil = Date.now() + 300;
    while (Date.now() < busyUntil) {
      // spin
    }
    await until(() => received.filter((o) => o['@type'] === 'testInt').length === total, 30_000, 'answers');
    const stats = backend.receiverStats();
    expect(stats?.blockedMs).toBeGreaterThan(50);
    expect(stats?.largestBatch).toBeLessThanOrEqual(8);
    const extras = received.filter((o) => o['@type'] === 'testInt').map((o) => o['@extra'] as number);
    expect(new Set(extras).size).toBe(total);
    await closeRaw(backend, [id], received);
  });

  it('keeps request order per client across direct sends and the sender thread', async () => {
    backend = new NativeBackend({ logVerbosity: 0 });
    const received: TdReceived[] = [];
    backend.onReceive((batch) => received.push(...batch));
    const ids = [backend.createClientId(), backend.createClientId(), backend.createClientId()];
    const total = 6000;
    // TDLib answers test methods in the order a client received them, so answer order shows send order.
    // Over many turns, each turn's first request may go direct while the thread still sends the last
    // turn's: exactly the case where order could break.
    for (let i = 0; i < total; i++) {
      backend.send(ids[i % ids.length] as number, `{"@type":"testSquareInt","x":1,"@extra":${i}}`);
      if (i % 150 === 149) await new Promise((resolve) => setImmediate(resolve));
    }
    await until(() => received.filter((o) => o['@type'] === 'testInt').length === total, 30_000, 'answers');
    for (const id of ids) {
      const extras = received
        .filter((o) => o['@type'] === 'testInt' && o['@client_id'] === id)
        .map((o) => o['@extra'] as number);
      expect(extras).toEqual([...extras].sort((a, b) => a - b));
      expect(extras).toHaveLength(total / ids.length);
    }
    const sent = backend.senderStats();
    expect(sent.direct).toBeGreaterThanOrEqual(1);
    expect(sent.queued).toBeGreaterThan(total / 2);
    // The sender is its own thread of this process (profiles tell its CPU time apart by this id).
    expect(sent.threadId).not.toBe(process.pid);
    expect(existsSync(`/proc/self/task/${sent.threadId}`)).toBe(true);
    await closeRaw(backend, ids, received);
  });

  it('runs one receive loop per process: a second backend refuses to start while the first one runs', async () => {
    backend = new NativeBackend({ logVerbosity: 0 });
    const seen: TdReceived[] = [];
    backend.onReceive((batch) => seen.push(...batch));
    const id = backend.createClientId();
    const second = new NativeBackend({ logVerbosity: 0 });
    expect(() => second.createClientId()).toThrow(/receive loop is already running/);
    await closeRaw(backend, [id], seen);
    await second.close();

    // Once the first one is closed, a new backend in the same process works.
    const third = new NativeBackend({ logVerbosity: 0 });
    const manager = new TdClientManager(third);
    const client = manager.createClient();
    await expect(client.invoke({ '@type': 'testSquareInt', x: 4 })).resolves.toMatchObject({ value: 16 });
    await manager.shutdown();
  });

  it('refuses use after close with a clear error', async () => {
    backend = new NativeBackend({ logVerbosity: 0 });
    await backend.close();
    expect(() => backend?.createClientId()).toThrow('NativeBackend is closed');
    expect(() => backend?.send(1, '{"@type":"testCallEmpty"}')).toThrow('NativeBackend is closed');
  });
});
