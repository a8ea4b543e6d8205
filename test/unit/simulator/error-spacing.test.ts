import { errorFires } from '../../../runtime/simulator/faults.js';
import type { SimRuntime } from '../../../runtime/simulator/runtime.js';

const runtime = (spacing: 'random' | 'even', random = 0.5): SimRuntime =>
  ({
    view: () => ({ config: { faults: { error_spacing: spacing } } }),
    random: () => random,
  }) as unknown as SimRuntime;

describe('injected errors: error_spacing', () => {
  it('even: exactly one request in every 1/rate fails, so any 5 consecutive requests at 0.2 hold one error', () => {
    const rt = runtime('even');
    const fired = Array.from({ length: 100 }, () => errorFires(rt, 0.2));
    expect(fired.filter(Boolean)).toHaveLength(20);
    for (let i = 0; i + 5 <= fired.length; i++) expect(fired.slice(i, i + 5).filter(Boolean)).toHaveLength(1);
    const other = runtime('even');
    expect(Array.from({ length: 1000 }, () => errorFires(other, 0.05)).filter(Boolean)).toHaveLength(50);
  });

  it('random: compares the rate with the process random source; a rate of 0 never fires', () => {
    expect(errorFires(runtime('random', 0.1), 0.2)).toBe(true);
    expect(errorFires(runtime('random', 0.3), 0.2)).toBe(false);
    expect(errorFires(runtime('even'), 0)).toBe(false);
    expect(errorFires(runtime('random', 0), 0)).toBe(false);
  });
});
