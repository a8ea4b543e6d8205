import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { planSessionSweep, sweepSessionDirs } from '../../../runtime/hosting/session-sweep.js';

const DAY_S = 86_400;
const NOW = Date.UTC(2026, 10, 28, 12, 0, 0);

describe('planSessionSweep', () => {
  it('removes only directories not in use and older than the TTL, and touches the ones in use', () => {
    const plan = planSessionSweep(
      [
        { name: 'hosted-old', mtimeMs: NOW - 30 * DAY_S * 1000 },
        { name: 'moved-old', mtimeMs: NOW - 8 * DAY_S * 1000 },
        { name: 'moved-recent', mtimeMs: NOW - 6 * DAY_S * 1000 },
      ],
      (name) => name.startsWith('hosted'),
      NOW,
      7 * DAY_S,
    );
    expect(plan).toEqual({ touch: ['hosted-old'], remove: ['moved-old'] });
  });

  it('keeps a directory exactly at the TTL (removal needs strictly older)', () => {
    const plan = planSessionSweep([{ name: 'edge', mtimeMs: NOW - 60_000 }], () => false, NOW, 60);
    expect(plan.remove).toEqual([]);
  });
});

describe('sweepSessionDirs on a real directory', () => {
  let root: string;

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'session-sweep-'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  function sessionDir(name: string, ageSeconds: number): string {
    const dir = join(root, name);
    mkdirSync(join(dir, 'db'), { recursive: true });
    writeFileSync(join(dir, 'db', 'td.binlog'), 'session');
    const when = new Date(NOW - ageSeconds * 1000);
    utimesSync(dir, when, when);
    return dir;
  }

  it('deletes stale sessions of accounts gone from this pod, keeps and refreshes the rest', () => {
    const hosted = sessionDir('hosted', 30 * DAY_S);
    const stale = sessionDir('moved-away', 8 * DAY_S);
    const recent = sessionDir('moved-yesterday', DAY_S);
    writeFileSync(join(root, 'stray-file'), 'not a session directory');

    const removed = sweepSessionDirs(root, (name) => name === 'hosted', NOW, 7 * DAY_S);

    expect(removed).toEqual(['moved-away']);
    expect(existsSync(stale)).toBe(false);
    expect(existsSync(join(recent, 'db', 'td.binlog'))).toBe(true);
    expect(existsSync(join(root, 'stray-file'))).toBe(true);
    // The hosted account's age now counts from this sweep: a later sweep after it moves away waits a full TTL.
    expect(statSync(hosted).mtimeMs).toBe(NOW);
    expect(sweepSessionDirs(root, () => false, NOW + 7 * DAY_S * 1000, 7 * DAY_S)).toEqual([
      'moved-yesterday',
    ]);
    expect(sweepSessionDirs(root, () => false, NOW + 7 * DAY_S * 1000 + 1, 7 * DAY_S)).toEqual(['hosted']);
  });

  it('does nothing when the data directory does not exist yet', () => {
    expect(sweepSessionDirs(join(root, 'missing'), () => false, NOW, 60)).toEqual([]);
  });
});
