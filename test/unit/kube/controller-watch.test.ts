import type { Informer, InformerEventHandler } from '../../../operator/kube/reflector.js';
import { Controller } from '../../../operator/kube/controller.js';
import { createLogger } from '../../../operator/kube/logging.js';
import { createRegistry } from '../../../operator/kube/metrics.js';
import type { ApiObject } from '../../../operator/kube/resource.js';
import { waitFor } from '../../cluster/wait.js';

/** Only what Controller.watches uses of an informer: its event subscription. */
function fakeInformer(): { informer: Informer<ApiObject>; emit: InformerEventHandler<ApiObject> } {
  let handler: InformerEventHandler<ApiObject> = () => undefined;
  const informer = {
    onEvent: (h: InformerEventHandler<ApiObject>) => {
      handler = h;
      return () => undefined;
    },
  } as unknown as Informer<ApiObject>;
  return { informer, emit: (...args) => handler(...args) };
}

const object = (name: string): ApiObject => ({
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { name, namespace: 'ns' },
});

function controller(): Controller {
  return new Controller({
    name: 'watch-test',
    reconciler: { reconcile: async () => ({}) },
    logger: createLogger({ name: 'test', level: 'silent' }),
    registry: createRegistry(),
  });
}

describe('Controller.watches with coalesceMs', () => {
  it('delays a live event by the coalescing time, so a burst for one key is one queued key', async () => {
    const { informer, emit } = fakeInformer();
    const c = controller().watches(informer, () => [{ namespace: 'ns', name: 'pool' }], { coalesceMs: 100 });
    for (let i = 0; i < 50; i++) emit('ADDED', object(`s${i}`), undefined, { initial: false });
    expect(c.queue.len()).toBe(0);
    await waitFor('the key to become ready', () => (c.queue.len() === 1 ? true : undefined), {
      timeoutMs: 5000,
    });
    expect(c.queue.len()).toBe(1);
    c.queue.shutDown();
  });

  it('queues the first list at once, and without the option every event at once', () => {
    const { informer, emit } = fakeInformer();
    const coalesced = controller().watches(informer, () => [{ namespace: 'ns', name: 'a' }], {
      coalesceMs: 100,
    });
    emit('ADDED', object('s'), undefined, { initial: true });
    expect(coalesced.queue.len()).toBe(1);
    coalesced.queue.shutDown();
    const plain = fakeInformer();
    const direct = controller().watches(plain.informer, () => [{ namespace: 'ns', name: 'b' }]);
    plain.emit('ADDED', object('s'), undefined, { initial: false });
    expect(direct.queue.len()).toBe(1);
    direct.queue.shutDown();
  });
});
