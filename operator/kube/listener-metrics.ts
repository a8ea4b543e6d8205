/**
 * Event-listener metrics, for leak hunting (npm run bench:soak): a listener added per reconcile, watch or
 * client and never removed shows up as a count that only grows, long before the memory it pins does.
 *
 * The count is partial by necessity: Node keeps no registry of emitters, so only emitters this process holds
 * a reference to can be counted. `process` is always counted (signal, exit, warning and uncaught-error
 * handlers accumulate there); callers may name more long-lived emitters. Sockets, streams, agents and
 * AbortSignals are not reachable from here; for those, Node's own alarm is counted instead: any
 * EventEmitter or EventTarget that passes its listener limit emits a MaxListenersExceededWarning on
 * `process`, wherever it lives.
 */
import type { EventEmitter } from 'node:events';
import { counter, gauge, type Registry } from './metrics.js';

export const LISTENERS_METRIC = 'nodejs_event_listeners';
export const MAX_LISTENERS_WARNINGS_METRIC = 'nodejs_max_listeners_exceeded_warnings_total';

/** Total listeners over every event name of `emitter`. */
export function listenerTotal(emitter: EventEmitter): number {
  let total = 0;
  for (const name of emitter.eventNames()) total += emitter.listenerCount(name);
  return total;
}

/**
 * One 'warning' listener per process, however many registries (tests start several operators in one
 * process): a listener per registry would itself grow the count this module watches.
 */
let maxListenersWarnings = 0;
let watching = false;

function watchWarnings(): void {
  if (watching) return;
  watching = true;
  // A 'warning' listener does not silence Node's own printing of the warning to stderr.
  process.on('warning', (warning) => {
    if (warning.name === 'MaxListenersExceededWarning') maxListenersWarnings++;
  });
}

export function registerListenerMetrics(
  registry: Registry,
  options: { emitters?: () => Iterable<readonly [string, EventEmitter]> } = {},
): void {
  watchWarnings();
  gauge<'emitter'>(registry, {
    name: LISTENERS_METRIC,
    help: 'Event listeners on the long-lived emitters this process can see (process and named ones); partial by design',
    labelNames: ['emitter'],
    collect() {
      this.reset();
      this.set({ emitter: 'process' }, listenerTotal(process));
      for (const [name, emitter] of options.emitters?.() ?? [])
        this.set({ emitter: name }, listenerTotal(emitter));
    },
  });
  counter(registry, {
    name: MAX_LISTENERS_WARNINGS_METRIC,
    help: 'MaxListenersExceededWarning warnings emitted by any EventEmitter or EventTarget of this process',
    // Read at scrape time from the process-wide count.
    collect() {
      this.reset();
      this.inc(maxListenersWarnings);
    },
  });
}
