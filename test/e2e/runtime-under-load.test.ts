/**
 * The fence fails safe under load and the pod is not lost: 1,000 accounts start on one runtime while two
 * busy-looping processes hold both CPUs (`bench:runtime --accounts 1000 --burn-cpus 2`, its own control plane
 * and operator). Heartbeats and renewals run on their own connection and never wait behind the bulk of the
 * logins, so every account must end Ready. How often the fence lapsed or the pod was declared dead meanwhile
 * is reported (and recorded in docs/benchmarks.md), not asserted: a lapse is the fence failing safe, and the
 * run must recover from it by itself.
 */
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';

interface BenchResult {
  accounts: number;
  ready_seconds: number;
  burn_cpus: number;
  runtime_fence_lapses: number;
  pods_declared_dead: number;
  shutdown_seconds: number;
  shutdown_exit_code: number | null;
  runtime_process_warnings: string[];
  runtime_identity: string;
  runtime_forbidden_requests: number;
}

function runBench(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [resolve('dist/test/bench/runtime.js'), ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (output += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (output += c));
    child.once('exit', (code) => done({ code, output }));
  });
}

describe('a runtime under CPU load', () => {
  it('brings 1,000 accounts to Ready while both CPUs are busy with other work', async () => {
    const { code, output } = await runBench([
      '--accounts',
      '1000',
      '--burn-cpus',
      '2',
      '--idle-seconds',
      '1',
      '--json',
    ]);
    expect({ code, tail: code === 0 ? '' : output.slice(-4000) }).toEqual({ code: 0, tail: '' });
    const last = output.trim().split('\n').pop() ?? '{}';
    const result = JSON.parse(last) as BenchResult;
    expect(result.accounts).toBe(1000);
    expect(result.burn_cpus).toBe(2);
    // It ran as a pod does, under the Role the operator keeps for the pool, and that Role let it do everything
    // 1,000 accounts needed: not one request refused.
    expect(result.runtime_identity).toBe('ServiceAccount bench/tdlib-runtime-default');
    expect(result.runtime_forbidden_requests).toBe(0);
    // Then a drain of all 1,000 (the load is gone by then): a clean exit, and no Node warning in the pod's log
    // at any point, such as a listener leak reported by one shutdown deadline shared by every account.
    expect(result.shutdown_exit_code).toBe(0);
    expect(result.runtime_process_warnings).toEqual([]);
    process.stdout.write(
      `runtime under load: 1000 Ready in ${result.ready_seconds} s; fence lapses ${result.runtime_fence_lapses}, pods declared dead ${result.pods_declared_dead}; drained in ${result.shutdown_seconds} s\n`,
    );
  }, 1_200_000);
});
