/**
 * The image's entrypoint sizes the operator's V8 heap from the container's memory limit and limits glibc's
 * malloc arenas for every process it starts. Run with a `node`
 * on PATH that prints what it was given, and cgroup files of our making.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const entrypoint = resolve('docker-entrypoint.sh');

function run(
  args: string[],
  env: Record<string, string>,
): { argv: string; nodeOptions: string; arenas: string } {
  const dir = mkdtempSync(join(tmpdir(), 'entrypoint-'));
  const node = join(dir, 'node');
  writeFileSync(
    node,
    '#!/bin/sh\necho "argv=$*"\necho "NODE_OPTIONS=${NODE_OPTIONS:-}"\necho "MALLOC_ARENA_MAX=${MALLOC_ARENA_MAX:-}"\n',
  );
  chmodSync(node, 0o755);
  const out = execFileSync('sh', [entrypoint, ...args], {
    env: {
      PATH: `${dir}:/usr/bin:/bin`,
      CGROUP_MEMORY_MAX: join(dir, 'absent'),
      CGROUP_V1_MEMORY_LIMIT: join(dir, 'absent'),
      ...env,
    },
    encoding: 'utf8',
  });
  const line = (key: string): string =>
    out
      .split('\n')
      .find((l) => l.startsWith(`${key}=`))
      ?.slice(key.length + 1) ?? '';
  return { argv: line('argv'), nodeOptions: line('NODE_OPTIONS'), arenas: line('MALLOC_ARENA_MAX') };
}

function limitFile(content: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'cgroup-')), 'memory.max');
  writeFileSync(file, `${content}\n`);
  return file;
}

describe('docker-entrypoint.sh: the operator heap follows the memory limit', () => {
  it('gives the old space half of a cgroup v2 limit and semi-spaces of a thirty-second of it', () => {
    const { argv, nodeOptions } = run(['operator'], { CGROUP_MEMORY_MAX: limitFile(String(512 * 1048576)) });
    expect(argv).toBe('/app/dist/operator/main.js');
    expect(nodeOptions).toBe('--max-old-space-size=256 --max-semi-space-size=16');
  });

  it.each([
    [64, '--max-old-space-size=32 --max-semi-space-size=4'],
    [256, '--max-old-space-size=128 --max-semi-space-size=8'],
    [4096, '--max-old-space-size=2048 --max-semi-space-size=16'],
  ])('keeps semi-spaces between 4 and 16 MiB (a %i MiB limit)', (mib, expected) => {
    expect(run(['operator'], { CGROUP_MEMORY_MAX: limitFile(String(mib * 1048576)) }).nodeOptions).toBe(
      expected,
    );
  });

  it('reads a cgroup v1 limit, and treats v1 "unlimited" and v2 "max" as no limit', () => {
    expect(run([], { CGROUP_V1_MEMORY_LIMIT: limitFile(String(1024 * 1048576)) }).nodeOptions).toBe(
      '--max-old-space-size=512 --max-semi-space-size=16',
    );
    expect(run([], { CGROUP_V1_MEMORY_LIMIT: limitFile('9223372036854771712') }).nodeOptions).toBe('');
    expect(run([], { CGROUP_MEMORY_MAX: limitFile('max') }).nodeOptions).toBe('');
  });

  it('keeps a heap size the user set in NODE_OPTIONS, and adds to other options', () => {
    const limit = limitFile(String(512 * 1048576));
    expect(
      run(['operator'], { CGROUP_MEMORY_MAX: limit, NODE_OPTIONS: '--max-old-space-size=900' }).nodeOptions,
    ).toBe('--max-old-space-size=900');
    expect(
      run(['operator'], { CGROUP_MEMORY_MAX: limit, NODE_OPTIONS: '--trace-warnings' }).nodeOptions,
    ).toBe('--max-old-space-size=256 --max-semi-space-size=16 --trace-warnings');
  });

  it('leaves the runtime heap alone', () => {
    const { argv, nodeOptions } = run(['runtime'], { CGROUP_MEMORY_MAX: limitFile(String(512 * 1048576)) });
    expect(argv).toBe('/app/dist/runtime/main.js');
    expect(nodeOptions).toBe('');
  });
});

describe('docker-entrypoint.sh: two malloc arenas per process', () => {
  it.each([['operator'], ['runtime'], ['gateway']])('starts the %s with MALLOC_ARENA_MAX=2', (entry) => {
    expect(run([entry], {}).arenas).toBe('2');
  });

  it('keeps a MALLOC_ARENA_MAX the user set', () => {
    expect(run(['runtime'], { MALLOC_ARENA_MAX: '8' }).arenas).toBe('8');
  });
});
