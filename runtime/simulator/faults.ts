/**
 * The world's fault knobs as one request sees them: added latency and injected errors, per method.
 */
import * as O from './objects.js';
import type { SimRuntime } from './runtime.js';

export function latencyOf(rt: SimRuntime, method: string): number {
  const latency = rt.view().config.faults.latency_ms;
  return latency.methods[method] ?? latency.default;
}

/**
 * How long a `close` takes (Closing -> Closed): only an explicit `latency_ms.methods.close`, never the default
 * latency (a close is local work, not a network request). Read again on every tick while a close is in
 * progress, so lowering the knob finishes a hanging close.
 */
export function closeLatencyOf(rt: SimRuntime): number {
  return rt.view().config.faults.latency_ms.methods.close ?? 0;
}

/** Per process, for error_spacing even: the fraction of an error owed so far. */
const owed = new WeakMap<SimRuntime, number>();

/**
 * Whether this request fails, at `rate`: at random (error_spacing random), or evenly, exactly one request in
 * every 1/rate of this process (error_spacing even: any window of 1/rate requests holds an error, so a small
 * sample still shows the rate).
 */
export function errorFires(rt: SimRuntime, rate: number): boolean {
  if (rate <= 0) return false;
  if (rt.view().config.faults.error_spacing !== 'even') return rt.random() < rate;
  const due = (owed.get(rt) ?? 0) + rate;
  const fires = due >= 1 - 1e-9;
  owed.set(rt, fires ? due - 1 : due);
  return fires;
}

/** An error answer chosen by the world's error_rate for this method, or undefined. */
export function injectedError(rt: SimRuntime, method: string): O.TdError | undefined {
  const faults = rt.view().config.faults;
  const rate = faults.error_rate.methods[method] ?? faults.error_rate.default;
  if (!errorFires(rt, rate)) return undefined;
  return O.error(faults.error.code, faults.error.message);
}
