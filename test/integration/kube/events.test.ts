/** EventRecorder against the real apiserver: aggregation into one Event, and the per-object write budget. */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { RestClient } from '../../../operator/kube/client.js';
import { EventRecorder } from '../../../operator/kube/events.js';
import { createRegistry, metricValue } from '../../../operator/kube/metrics.js';
import { Resources, type ApiObject } from '../../../operator/kube/resource.js';
import { adminKubeConfig, createTestNamespace } from '../../support/cluster.js';
import { testLogger } from './support.js';

interface CoreEvent extends ApiObject {
  involvedObject?: { kind?: string; name?: string; uid?: string };
  reason?: string;
  message?: string;
  type?: string;
  count?: number;
  source?: { component?: string; host?: string };
}

const logger = testLogger('events-test');
let rest: RestClient;
let namespace: string;

beforeAll(async () => {
  const kc = adminKubeConfig();
  rest = new RestClient(kc, { registry: createRegistry(), logger });
  namespace = await createTestNamespace(kc, 'kube-events');
});

afterAll(async () => {
  await rest.close();
});

async function eventsFor(name: string): Promise<CoreEvent[]> {
  const list = await rest.listAll<CoreEvent>(Resources.Event, {
    namespace,
    fieldSelector: `involvedObject.name=${name}`,
  });
  return list.items;
}

async function subject(name: string): Promise<ApiObject> {
  return rest.create(Resources.ConfigMap, {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name, namespace },
  });
}

describe('EventRecorder', () => {
  it('aggregates a hot loop of identical events into one Event with a count', async () => {
    const object = await subject('hot-loop');
    const registry = createRegistry();
    const recorder = new EventRecorder(rest, {
      component: 'tdlib-operator',
      host: 'test-pod',
      registry,
      logger,
    });
    const writesBefore = rest.writeCount();
    for (let i = 0; i < 500; i++)
      recorder.event(object, 'Warning', 'AuthFailed', 'API credentials were rejected');
    await recorder.flush();
    let events = await eventsFor('hot-loop');
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      type: 'Warning',
      reason: 'AuthFailed',
      message: 'API credentials were rejected',
      count: 500,
      involvedObject: { kind: 'ConfigMap', name: 'hot-loop', uid: object.metadata?.uid },
      source: { component: 'tdlib-operator', host: 'test-pod' },
    });
    expect(rest.writeCount() - writesBefore).toBe(1);

    // Later repeats patch the same Event.
    for (let i = 0; i < 5; i++) {
      recorder.event(object, 'Warning', 'AuthFailed', 'API credentials were rejected');
      await recorder.flush();
    }
    events = await eventsFor('hot-loop');
    expect(events).toHaveLength(1);
    expect(events[0]?.count).toBe(505);
    expect(await metricValue(registry, 'events_recorder_writes_total', { verb: 'patch' })).toBe(5);

    // A different message is a different Event.
    recorder.event(object, 'Normal', 'Authorized', 'logged in as @example');
    await recorder.close();
    events = await eventsFor('hot-loop');
    expect(events.map((e) => e.reason).sort()).toEqual(['AuthFailed', 'Authorized']);
  }, 30_000);

  it('caps the writes one object can cause; another object has its own budget', async () => {
    const object = await subject('budget');
    const recorder = new EventRecorder(rest, {
      component: 'tdlib-operator',
      burst: 3,
      refillIntervalMs: 3_600_000,
      logger,
    });
    const writesBefore = rest.writeCount();
    for (let i = 0; i < 10; i++) {
      // Distinct messages defeat aggregation: only the budget holds the writes back.
      recorder.event(object, 'Warning', 'FloodWait', `retry in ${i} s`);
      await recorder.flush();
    }
    expect(rest.writeCount() - writesBefore).toBe(3);
    expect(await eventsFor('budget')).toHaveLength(3);
    // Another object has its own budget.
    const other = await subject('budget-other');
    recorder.event(other, 'Normal', 'Placed', 'on runtime-0');
    await recorder.close();
    expect(await eventsFor('budget-other')).toHaveLength(1);
  }, 30_000);
});
