/**
 * The JS work any promise-based TDLib binding does per request, with TDLib and native code taken out:
 * JSON.stringify of the request, a pending entry keyed by '@extra', a promise, and answers arriving as
 * batches of JSON text (as our receive thread delivers them) that are parsed and routed back. Run through
 * the same workload code as the real sides, it gives the lowest JS-side CPU per request that the pipelined
 * figure could ever reach; the answers are produced here instead of by TDLib, which costs a little extra.
 */
import type { BenchClient } from './impl.js';

interface Answer {
  readonly '@type': string;
  readonly value: number;
  readonly '@extra': number;
}

/** Objects per batch: what our receive thread delivers under this load (objects_per_batch ≈ 37). */
const BATCH_OBJECTS = 37;

export function createJsFloorClients(count: number): BenchClient[] {
  const pending = new Map<number, (answer: Answer) => void>();
  const answers: string[] = [];
  let nextExtra = 1;
  let pumping = false;

  // One batch per event-loop turn, like the real receive path.
  const pump = (): void => {
    const texts = answers.splice(0, BATCH_OBJECTS);
    const batch = JSON.parse(`[${texts.join(',')}]`) as Answer[];
    for (const answer of batch) {
      const resolve = pending.get(answer['@extra']);
      pending.delete(answer['@extra']);
      resolve?.(answer);
    }
    if (answers.length > 0) setImmediate(pump);
    else pumping = false;
  };

  const invoke = (
    clientId: number,
    request: { readonly '@type': string; readonly x: number },
  ): Promise<Answer> => {
    const extra = nextExtra++;
    const json = JSON.stringify(request);
    // Stands in for td_send: TDLib would parse `json`; here the answer is made up front instead.
    answers.push(
      `{"@type":"testInt","value":${request.x * request.x},"@client_id":${clientId},"@extra":${extra}}`,
    );
    if (json.length === 0) throw new Error('empty request');
    if (!pumping) {
      pumping = true;
      setImmediate(pump);
    }
    return new Promise((resolve) => pending.set(extra, resolve));
  };

  return Array.from({ length: count }, (_, index): BenchClient => ({
    squareInt: async (x) => (await invoke(index + 1, { '@type': 'testSquareInt', x })).value,
  }));
}
