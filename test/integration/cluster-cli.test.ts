import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { processAlive } from '../cluster/process.js';
import { K8S_VERSION } from '../cluster/versions.js';

const cli = resolve('dist/test/cluster/cli.js');

const alive = processAlive;

describe('cluster-up / cluster-down from the shell', () => {
  it('serves the pinned Kubernetes version to kubectl and leaves no process behind', () => {
    expect(existsSync(cli)).toBe(true); // `npm run build` comes first in make test
    const dir = mkdtempSync(join(tmpdir(), 'tdlib-operator-cli-'));
    execFileSync(process.execPath, [cli, 'up', '--dir', dir], { stdio: 'pipe', timeout: 180_000 });
    const state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as {
      pids: number[];
      supervisorPid: number;
    };
    try {
      const version = JSON.parse(
        execFileSync('kubectl', ['--kubeconfig', join(dir, 'kubeconfig'), 'get', '--raw', '/version'], {
          encoding: 'utf8',
        }),
      ) as { gitVersion: string };
      expect(version.gitVersion).toBe(K8S_VERSION);
      expect(state.pids.length).toBeGreaterThanOrEqual(2);
      expect([state.supervisorPid, ...state.pids].every(alive)).toBe(true);
    } finally {
      execFileSync(process.execPath, [cli, 'down', '--dir', dir], { stdio: 'pipe', timeout: 120_000 });
    }
    expect([state.supervisorPid, ...state.pids].filter(alive)).toEqual([]);
  });
});
