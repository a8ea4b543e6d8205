import path from 'node:path';
import * as tdl from 'tdl';
import { TDLIB_PARAMETERS, type BenchClient, type BenchImpl } from './impl.js';

export function createTdl(libraryPath: string): BenchImpl {
  tdl.configure({ tdjson: libraryPath, verbosityLevel: 0 });
  // tdl loads libtdjson lazily; load it now, as NativeBackend does, so memory baselines compare alike.
  tdl.execute({ _: 'getOption', name: 'version' });
  const clients: tdl.Client[] = [];
  return {
    name: 'tdl',
    bareClients(count) {
      return Array.from({ length: count }, (): BenchClient => {
        const client = tdl.createBareClient();
        clients.push(client);
        return {
          squareInt: async (x) => (await client.invoke({ _: 'testSquareInt', x })).value,
        };
      });
    },
    async initializedClients(count, dir) {
      const { api_id, api_hash, use_test_dc, database_encryption_key, ...rest } = TDLIB_PARAMETERS;
      await Promise.all(
        Array.from({ length: count }, (_, index) => {
          const directory = path.join(dir, String(index + 1));
          const client = tdl.createClient({
            apiId: api_id,
            apiHash: api_hash,
            useTestDc: use_test_dc,
            databaseEncryptionKey: database_encryption_key,
            databaseDirectory: directory,
            filesDirectory: directory,
            tdlibParameters: rest,
          });
          clients.push(client);
          return new Promise<void>((resolve, reject) => {
            client.on('error', reject);
            client.on('update', (update) => {
              if (
                update._ === 'updateAuthorizationState' &&
                update.authorization_state._ === 'authorizationStateWaitPhoneNumber'
              ) {
                resolve();
              }
            });
          });
        }),
      );
    },
    async closeAll() {
      await Promise.all(clients.map((client) => client.close()));
      clients.length = 0;
    },
  };
}
