import path from 'node:path';
import { TdClientManager } from '../../../runtime/tdlib/client.js';
import { NativeBackend } from '../../../runtime/tdlib/native-backend.js';
import { TDLIB_PARAMETERS, type BenchClient, type BenchImpl } from './impl.js';

export function createOurs(libraryPath: string): BenchImpl {
  // Knobs for experiments (the reported figures use the defaults): TDJSON_BENCH_MAX_BATCH_OBJECTS,
  // TDJSON_BENCH_DIRECT_SENDS_PER_TURN (0 = every request through the sender thread, Infinity = none).
  const env = process.env;
  const backend = new NativeBackend({
    libraryPath,
    logVerbosity: 0,
    receiver: env.TDJSON_BENCH_MAX_BATCH_OBJECTS
      ? { maxBatchObjects: Number(env.TDJSON_BENCH_MAX_BATCH_OBJECTS) }
      : {},
    ...(env.TDJSON_BENCH_DIRECT_SENDS_PER_TURN
      ? { directSendsPerTurn: Number(env.TDJSON_BENCH_DIRECT_SENDS_PER_TURN) }
      : {}),
  });
  const manager = new TdClientManager(backend, { defaultTimeoutMs: 600_000, closeTimeoutMs: 600_000 });
  return {
    name: 'ours',
    bareClients(count) {
      return Array.from({ length: count }, (): BenchClient => {
        const client = manager.createClient();
        return {
          squareInt: async (x) => (await client.invoke({ '@type': 'testSquareInt', x })).value,
        };
      });
    },
    async initializedClients(count, dir) {
      const clients = Array.from({ length: count }, () => manager.createClient());
      await Promise.all(
        clients.map(async (client) => {
          const ready = client.waitForAuthorizationState('authorizationStateWaitPhoneNumber', {
            timeoutMs: 600_000,
          });
          const directory = path.join(dir, String(client.id));
          await client.invoke({
            '@type': 'setTdlibParameters',
            ...TDLIB_PARAMETERS,
            database_directory: directory,
            files_directory: directory,
          });
          await ready;
        }),
      );
    },
    threadRole(tid, name) {
      if (name === 'tdjson-receive') return 'receive';
      return tid === backend.senderStats().threadId ? 'send' : 'tdlib';
    },
    diagnostics() {
      const receiver = backend.receiverStats();
      const sender = backend.senderStats();
      return {
        batches: receiver?.batches,
        objects_per_batch: receiver
          ? Math.round((receiver.objects / Math.max(1, receiver.batches)) * 10) / 10
          : 0,
        largest_batch: receiver?.largestBatch,
        wakeups: receiver?.wakeups,
        receiver_blocked_ms: receiver ? Math.round(receiver.blockedMs) : 0,
        sent_direct: sender.direct,
        sent_queued: sender.queued,
      };
    },
    async closeAll() {
      const result = await manager.shutdown({ timeoutMs: 600_000 });
      if (result.notClosed.length > 0) throw new Error(`${result.notClosed.length} clients did not close`);
    },
  };
}
