import { EventEmitter } from 'node:events';
import {
  LISTENERS_METRIC,
  MAX_LISTENERS_WARNINGS_METRIC,
  listenerTotal,
  registerListenerMetrics,
} from '../../../operator/kube/listener-metrics.js';
import { createRegistry, metricValue } from '../../../operator/kube/metrics.js';

describe('event-listener metrics', () => {
  it('counts every listener of every event of an emitter', () => {
    const emitter = new EventEmitter();
    emitter.on('a', () => undefined);
    emitter.on('a', () => undefined);
    emitter.once('b', () => undefined);
    expect(listenerTotal(emitter)).toBe(3);
  });

  it('reports the listeners on process and on named emitters, at scrape time', async () => {
    const registry = createRegistry();
    const pool = new EventEmitter();
    registerListenerMetrics(registry, { emitters: () => [['pool', pool]] });
    const before = await metricValue(registry, LISTENERS_METRIC, { emitter: 'process' });
    const handler = (): void => undefined;
    process.on('SIGUSR2', handler);
    pool.on('x', handler);
    try {
      expect(await metricValue(registry, LISTENERS_METRIC, { emitter: 'process' })).toBe(before + 1);
      expect(await metricValue(registry, LISTENERS_METRIC, { emitter: 'pool' })).toBe(1);
    } finally {
      process.off('SIGUSR2', handler);
    }
  });

  it('counts MaxListenersExceededWarning, with one warning listener however many registries', async () => {
    const first = createRegistry();
    registerListenerMetrics(first);
    const warningListeners = process.listenerCount('warning');
    const second = createRegistry();
    registerListenerMetrics(second);
    expect(process.listenerCount('warning')).toBe(warningListeners);

    const before = await metricValue(second, MAX_LISTENERS_WARNINGS_METRIC);
    // Delivered as Node delivers it (jest's sandboxed process does not receive the real process's warnings).
    const warning = Object.assign(new Error('Possible EventEmitter memory leak detected'), {
      name: 'MaxListenersExceededWarning',
    });
    process.emit('warning', warning);
    process.emit('warning', Object.assign(new Error('other'), { name: 'DeprecationWarning' }));
    expect(await metricValue(second, MAX_LISTENERS_WARNINGS_METRIC)).toBe(before + 1);
    expect(await metricValue(first, MAX_LISTENERS_WARNINGS_METRIC)).toBe(before + 1);
  });
});
