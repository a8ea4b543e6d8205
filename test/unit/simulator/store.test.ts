import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readJson, writeJsonAtomic } from '../../../runtime/simulator/store/files.js';
import { JsonlAppender, JsonlReader } from '../../../runtime/simulator/store/jsonl.js';
import {
  InstanceRegistry,
  isInstanceLive,
  LeaseDir,
  LOCAL_HOST,
} from '../../../runtime/simulator/store/liveness.js';
import { DbLocks, withFileMutex } from '../../../runtime/simulator/store/locks.js';
import { SimRuntime } from '../../../runtime/simulator/runtime.js';
import { World } from '../../../runtime/simulator/world.js';

const own = { instance: 'me', pid: 100, host: 'h1' };
const record = (over: Partial<{ instance: string; pid: number; host: string }>) => ({
  instance: 'other',
  pid: 200,
  host: 'h1',
  started_at: 0,
  ...over,
});

describe('liveness rule', () => {
  it('uses pid liveness on the same host, heartbeat age elsewhere', () => {
    const alive = (pid: number): boolean => pid === 200;
    expect(isInstanceLive(record({}), 1000, 1500, 5000, own, alive, new Set())).toBe(true);
    expect(isInstanceLive(record({ pid: 300 }), 1000, 1500, 5000, own, alive, new Set())).toBe(false);
    expect(isInstanceLive(record({ host: 'h2', pid: 300 }), 1000, 1500, 5000, own, alive, new Set())).toBe(
      true,
    );
    expect(isInstanceLive(record({ host: 'h2' }), 1000, 7000, 5000, own, alive, new Set())).toBe(false);
  });

  it('treats a record with our pid as a previous incarnation unless this process registered it', () => {
    const alive = (): boolean => true;
    expect(isInstanceLive(record({ pid: 100 }), 1000, 1500, 5000, own, alive, new Set())).toBe(false);
    expect(isInstanceLive(record({ pid: 100 }), 1000, 1500, 5000, own, alive, new Set(['other']))).toBe(true);
    expect(isInstanceLive(record({ instance: 'me', pid: 1 }), 0, 1e9, 1, own, () => false, new Set())).toBe(
      true,
    );
  });
});

describe('shared state files', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sim-store-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('drops leases and database locks of dead instances, keeps live ones', () => {
    const mine = new InstanceRegistry(dir, 5000, 'mine');
    mine.register();
    writeJsonAtomic(join(dir, 'instances', 'ghost.json'), {
      instance: 'ghost',
      pid: 2 ** 22 + 12345,
      host: LOCAL_HOST,
      started_at: 0,
    });
    writeJsonAtomic(join(dir, 'instances', 'remote.json'), {
      instance: 'remote',
      pid: 1,
      host: 'elsewhere',
      started_at: 0,
    });
    const leases = new LeaseDir(join(dir, 'live'), mine);
    leases.acquire('key1', { instance: 'ghost', client_id: 1 });
    leases.acquire('key1', { instance: 'remote', client_id: 2 });
    leases.acquire('key1', { instance: 'mine', client_id: 3 });
    expect(
      leases
        .holders('key1')
        .map((h) => h.instance)
        .sort(),
    ).toEqual(['mine', 'remote']);
    const old = new Date(Date.now() - 60_000);
    utimesSync(join(dir, 'instances', 'remote.json'), old, old);
    const fresh = new InstanceRegistry(dir, 5000, 'observer');
    expect(new LeaseDir(join(dir, 'live'), fresh).holders('key1').map((h) => h.instance)).toEqual(['mine']);

    const locks = new DbLocks(dir, mine);
    expect(locks.acquire('/db/a', { instance: 'ghost', client_id: 1 })).toEqual({ ok: true });
    expect(locks.acquire('/db/a', { instance: 'mine', client_id: 2 })).toEqual({ ok: true });
    expect(locks.acquire('/db/a', { instance: 'mine', client_id: 3 })).toEqual({
      ok: false,
      holder: { instance: 'mine', client_id: 2 },
    });
    locks.release('/db/a', { instance: 'mine', client_id: 3 });
    expect(locks.acquire('/db/a', { instance: 'mine', client_id: 3 }).ok).toBe(false);
    locks.release('/db/a', { instance: 'mine', client_id: 2 });
    expect(locks.acquire('/db/a', { instance: 'mine', client_id: 3 }).ok).toBe(true);
    mine.unregister();
  });

  it('appends JSONL in batches and reads only complete new lines', () => {
    const path = join(dir, 'log.jsonl');
    const isNumberRecord = (v: unknown): v is { n: number } => typeof (v as { n?: unknown }).n === 'number';
    const a = new JsonlAppender(path);
    const b = new JsonlAppender(path);
    const reader = new JsonlReader(path, isNumberRecord);
    expect(reader.read()).toEqual([]);
    for (let i = 0; i < 3; i++) a.append({ n: i });
    b.append({ n: 100 });
    expect(reader.read()).toEqual([]);
    a.flush();
    b.flush();
    writeFileSync(path, '{"n": 7', { flag: 'a' });
    expect(reader.read().map((r) => r.n)).toEqual([0, 1, 2, 100]);
    writeFileSync(path, '}\n', { flag: 'a' });
    expect(reader.read().map((r) => r.n)).toEqual([7]);
    a.close();
    b.close();
  });

  it('writes delivery records that read back as the object that was recorded', () => {
    const world = World.create(join(dir, 'w'), { version: 1, users: [] });
    const rt = new SimRuntime(world, { now: () => 0 }, undefined);
    const delivery = {
      at: 1,
      from: 2,
      to: 3,
      chat_id: 3,
      message_id: 1048576,
      text: 'quote " backslash \\ newline \n emoji 😀',
      sender_kind: 'bot' as const,
      status: 'delivered' as const,
      auth_key: 'abcdef',
      pid: 4,
    };
    const withHistoryFields = {
      ...delivery,
      message_id: 2 * 1048576,
      date: 1_700_000_000,
      random_id: '-9223372036854775807',
      entities: [{ '@type': 'textEntity', offset: 0, length: 5, type: { '@type': 'textEntityTypeBold' } }],
    };
    rt.recordDelivery(delivery);
    rt.recordDelivery(withHistoryFields);
    rt.close();
    expect(world.deliveries()).toEqual([delivery, withHistoryFields]);
  });

  it('serializes read-modify-write with the file mutex and breaks stale locks', () => {
    const path = join(dir, 'counter.json');
    const lock = join(dir, 'counter.lock');
    for (let i = 0; i < 5; i++) {
      withFileMutex(lock, () =>
        writeJsonAtomic(path, { n: ((readJson(path) as { n?: number } | undefined)?.n ?? 0) + 1 }),
      );
    }
    expect(readJson(path)).toEqual({ n: 5 });
    withFileMutex(lock, () => {
      expect(() => withFileMutex(lock, () => 1, 50, 60_000)).toThrow(/timed out/);
    });
    // A lock left behind by a writer that crashed inside its critical section is broken after staleMs.
    mkdirSync(lock);
    expect(withFileMutex(lock, () => 42, 1000, 0)).toBe(42);
  });
});
