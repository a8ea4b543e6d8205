/**
 * tdlib_runtime_memory_limit_bytes: the container's cgroup memory limit, the denominator of the
 * RuntimeMemoryHigh alert; absent (never 0) when the process has no limit.
 */
import { describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import { cgroupMemoryLimitBytes, registerRuntimeMetrics } from '../../../runtime/metrics.js';

const V2 = '/sys/fs/cgroup/memory.max';
const V1 = '/sys/fs/cgroup/memory/memory.limit_in_bytes';

function files(contents: Record<string, string>): (path: string) => string {
  return (path) => {
    const text = contents[path];
    if (text === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
    return text;
  };
}

describe('cgroupMemoryLimitBytes', () => {
  it('reads cgroup v2 memory.max', () => {
    expect(cgroupMemoryLimitBytes(files({ [V2]: '536870912\n' }))).toBe(536_870_912);
  });
  it('is undefined for "max" (no limit), without looking at v1', () => {
    expect(cgroupMemoryLimitBytes(files({ [V2]: 'max\n', [V1]: '1048576\n' }))).toBeUndefined();
  });
  it('falls back to cgroup v1 memory.limit_in_bytes', () => {
    expect(cgroupMemoryLimitBytes(files({ [V1]: '268435456\n' }))).toBe(268_435_456);
  });
  it("is undefined for v1's unlimited value, garbage, or no cgroup files", () => {
    expect(cgroupMemoryLimitBytes(files({ [V1]: '9223372036854771712\n' }))).toBeUndefined();
    expect(cgroupMemoryLimitBytes(files({ [V2]: 'lots\n' }))).toBeUndefined();
    expect(cgroupMemoryLimitBytes(files({}))).toBeUndefined();
  });
});

describe('tdlib_runtime_memory_limit_bytes', () => {
  const none = (): undefined => undefined;

  it('exports the limit, read again at each scrape', async () => {
    const registry = new Registry();
    let limit = 512 * 1024 * 1024;
    registerRuntimeMetrics(registry, none, none, { memoryLimitBytes: () => limit });
    expect(await registry.getSingleMetricAsString('tdlib_runtime_memory_limit_bytes')).toMatch(
      /^tdlib_runtime_memory_limit_bytes 536870912$/m,
    );
    limit = 1024 * 1024 * 1024;
    expect(await registry.getSingleMetricAsString('tdlib_runtime_memory_limit_bytes')).toMatch(
      /^tdlib_runtime_memory_limit_bytes 1073741824$/m,
    );
  });

  it('is not registered without a limit (a 0 would make the memory ratio +Inf)', async () => {
    const registry = new Registry();
    registerRuntimeMetrics(registry, none, none, { memoryLimitBytes: none });
    expect(registry.getSingleMetric('tdlib_runtime_memory_limit_bytes')).toBeUndefined();
    expect(await registry.metrics()).toContain('tdlib_active_clients 0');
  });
});
