import { machineCores, machineCpuSeconds } from '../../bench/proc-cpu.js';

// The first lines of /proc/stat on a 2-core virtual machine (clock ticks of 1/100 s).
const STAT = [
  'cpu  926930 53 123270 1121867 9579 0 11097 72552 0 0',
  'cpu0 463000 20 61000 560000 4000 0 9000 36000 0 0',
].join('\n');

describe('the machine CPU from /proc/stat', () => {
  it('sorts the ticks into work done here, idle time and time stolen by the hypervisor', () => {
    const cpu = machineCpuSeconds(STAT);
    expect(cpu.busy).toBeCloseTo(9269.3 + 0.53 + 1232.7 + 0 + 110.97, 2);
    expect(cpu.idle).toBeCloseTo(11218.67 + 95.79, 2);
    expect(cpu.steal).toBeCloseTo(725.52, 2);
  });

  it('reads an older kernel line without the steal column as no steal', () => {
    expect(machineCpuSeconds('cpu  100 0 50 800 10 0 5').steal).toBe(0);
  });

  it('gives the cores of each kind used between two readings', () => {
    const before = machineCpuSeconds('cpu  1000 0 500 3000 0 0 0 100 0 0');
    const after = machineCpuSeconds('cpu  3400 0 900 3600 0 0 0 400 0 0');
    // Over 15 s: 28 s of work, 6 s idle, 3 s stolen.
    expect(machineCores(before, after, 15)).toEqual({ busy: 1.87, idle: 0.4, steal: 0.2 });
  });
});
