/**
 * The runtime's Secret reader (runtime/hosting/secret-inputs.ts) against the real apiserver: the agent gives
 * all accounts of a namespace one reader, so accounts starting together that name one API credentials Secret
 * read it with one GET; a read after those finished goes to the API server again (nothing is kept), so a
 * fixed Secret is seen at the next read.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { API_VERSION, TELEGRAM_ACCOUNT_KIND, type TelegramAccount } from '../../../crds/index.js';
import { RestClient, type RequestOptions } from '../../../operator/kube/client.js';
import { createRegistry } from '../../../operator/kube/metrics.js';
import { Resources, type ApiObject, type ResourceDescriptor } from '../../../operator/kube/resource.js';
import { SecretInputs } from '../../../runtime/hosting/secret-inputs.js';
import { adminKubeConfig, createTestNamespace } from '../../support/cluster.js';
import { testLogger } from '../kube/support.js';

/** A real client that counts the GETs of each Secret it sends. */
class CountingClient extends RestClient {
  readonly secretGets = new Map<string, number>();

  override get<T extends ApiObject = ApiObject>(
    resource: ResourceDescriptor,
    namespace: string | undefined,
    name: string,
    options: RequestOptions & { subresource?: string } = {},
  ): Promise<T> {
    if (resource === Resources.Secret) this.secretGets.set(name, (this.secretGets.get(name) ?? 0) + 1);
    return super.get<T>(resource, namespace, name, options);
  }
}

const logger = testLogger('runtime-secret-inputs');
let rest: CountingClient;
let namespace: string;

beforeAll(async () => {
  rest = new CountingClient(adminKubeConfig(), { registry: createRegistry(), logger });
  namespace = await createTestNamespace(adminKubeConfig(), 'secret-inputs');
});

afterAll(async () => {
  await rest.close();
});

async function putCredentials(apiId: string): Promise<void> {
  const body = {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'api', namespace },
    stringData: { api_id: apiId, api_hash: 'a3406de8d171bb422bb6ddf3bbd800e2' },
  } as ApiObject;
  await rest.applyPatch(Resources.Secret, body, { fieldManager: 'test', force: true });
}

function bot(name: string): TelegramAccount {
  return {
    apiVersion: API_VERSION,
    kind: TELEGRAM_ACCOUNT_KIND,
    metadata: { name, namespace },
    spec: {
      type: 'Bot',
      botTokenSecretRef: { name: `${name}-token` },
      apiCredentialsSecretRef: { name: 'api' },
    },
  } as TelegramAccount;
}

describe('SecretInputs shared by the accounts of a namespace', () => {
  it('reads one API credentials Secret once for accounts starting together, and afresh afterwards', async () => {
    await putCredentials('94575');
    const inputs = new SecretInputs(rest, namespace);
    rest.secretGets.clear();
    const read = await Promise.all(
      Array.from({ length: 50 }, (_, i) => inputs.apiCredentials(bot(`bot-${i}`))),
    );
    expect(new Set(read.map((c) => c.apiId))).toEqual(new Set([94575]));
    expect(rest.secretGets.get('api')).toBe(1);

    // Nothing is kept once the reads finished: a changed Secret is what the next read gets.
    await putCredentials('94576');
    const again = await inputs.apiCredentials(bot('bot-late'));
    expect(again.apiId).toBe(94576);
    expect(again.version).not.toBe(read[0]?.version);
    expect(rest.secretGets.get('api')).toBe(2);
  });
});
