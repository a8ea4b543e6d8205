/**
 * Who is alive in the world. Every process that hosts simulated clients registers an instance file and
 * touches it on a heartbeat; marks it leaves elsewhere (session leases, database locks) name the instance,
 * so one liveness check covers them all and a crashed process never leaves a "live" mark behind for long:
 * on the same host a dead pid is noticed at once, on another host the heartbeat expires.
 */
import { hostname } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { ensureDir, isErrno, isRecord, readJson, writeJsonAtomic } from './files.js';

export interface InstanceRecord {
  readonly instance: string;
  readonly pid: number;
  readonly host: string;
  readonly started_at: number;
}

export const LOCAL_HOST = hostname();

/** Instances registered by this very process (several backends may share a process, e.g. in tests). */
const PROCESS_INSTANCES = new Set<string>();

export function newInstanceId(): string {
  return `${process.pid}-${randomBytes(6).toString('hex')}`;
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return isErrno(error, 'EPERM');
  }
}

/**
 * Pure liveness rule, separated for tests. A record with our own pid that this process did not register is
 * a previous incarnation of it (containers restart with the same pid), hence dead.
 */
export function isInstanceLive(
  record: InstanceRecord,
  heartbeatMs: number,
  now: number,
  ttlMs: number,
  own: { readonly instance: string; readonly pid: number; readonly host: string },
  alive: (pid: number) => boolean = pidAlive,
  ownProcess: ReadonlySet<string> = PROCESS_INSTANCES,
): boolean {
  if (record.instance === own.instance) return true;
  if (now - heartbeatMs > ttlMs) return false;
  if (record.host !== own.host) return true;
  if (record.pid === own.pid) return ownProcess.has(record.instance);
  return alive(record.pid);
}

function isInstanceRecord(value: unknown): value is InstanceRecord {
  return (
    isRecord(value) &&
    typeof value.instance === 'string' &&
    typeof value.pid === 'number' &&
    typeof value.host === 'string' &&
    typeof value.started_at === 'number'
  );
}

export class InstanceRegistry {
  readonly own: InstanceRecord;
  private readonly dir: string;
  /** Liveness answers are cached briefly: a tick may ask about the same instance for many sessions. */
  private cache = new Map<string, { live: boolean; at: number }>();

  constructor(
    stateDir: string,
    readonly ttlMs: number,
    instance: string = newInstanceId(),
  ) {
    this.dir = join(stateDir, 'instances');
    this.own = { instance, pid: process.pid, host: LOCAL_HOST, started_at: Date.now() };
  }

  private file(instance: string): string {
    return join(this.dir, `${instance}.json`);
  }

  register(): void {
    PROCESS_INSTANCES.add(this.own.instance);
    ensureDir(this.dir);
    writeJsonAtomic(this.file(this.own.instance), this.own);
  }

  heartbeat(): void {
    const now = new Date();
    try {
      utimesSync(this.file(this.own.instance), now, now);
    } catch (error) {
      // Someone reaped our file (we were stalled past the TTL); come back rather than stay invisible.
      if (!isErrno(error, 'ENOENT')) throw error;
      this.register();
    }
  }

  unregister(): void {
    PROCESS_INSTANCES.delete(this.own.instance);
    rmSync(this.file(this.own.instance), { force: true });
  }

  isLive(instance: string, now = Date.now()): boolean {
    if (instance === this.own.instance) return true;
    const cached = this.cache.get(instance);
    if (cached !== undefined && now - cached.at < 250) return cached.live;
    const live = this.check(instance, now);
    this.cache.set(instance, { live, at: now });
    return live;
  }

  private check(instance: string, now: number): boolean {
    const path = this.file(instance);
    let mtimeMs: number;
    try {
      mtimeMs = statSync(path).mtimeMs;
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return false;
      throw error;
    }
    const record = readJson(path);
    if (!isInstanceRecord(record)) return false;
    return isInstanceLive(record, mtimeMs, now, this.ttlMs, this.own);
  }

  /** Every instance file and whether it is live; for the world's inspection API. */
  list(now = Date.now()): { record: InstanceRecord; live: boolean }[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return [];
      throw error;
    }
    const out: { record: InstanceRecord; live: boolean }[] = [];
    for (const name of names) {
      if (!name.endsWith('.json')) continue;
      const record = readJson(join(this.dir, name));
      if (!isInstanceRecord(record)) continue;
      out.push({ record, live: this.isLive(record.instance, now) });
    }
    return out;
  }
}

export interface LeaseHolder {
  readonly instance: string;
  readonly client_id: number;
}

/**
 * Marks that a client uses a shared resource (an auth key): one empty file per holder in a directory per
 * resource. The file name carries the holder, so listing the directory is the whole read.
 */
export class LeaseDir {
  constructor(
    private readonly root: string,
    private readonly registry: InstanceRegistry,
  ) {}

  private dir(resource: string): string {
    return join(this.root, resource);
  }

  acquire(resource: string, holder: LeaseHolder): void {
    const dir = this.dir(resource);
    ensureDir(dir);
    writeFileSync(join(dir, `${holder.instance}.${holder.client_id}`), '');
  }

  release(resource: string, holder: LeaseHolder): void {
    rmSync(join(this.dir(resource), `${holder.instance}.${holder.client_id}`), { force: true });
  }

  /** Live holders of `resource`; marks of dead instances are removed on the way. */
  holders(resource: string, now = Date.now()): LeaseHolder[] {
    const dir = this.dir(resource);
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch (error) {
      if (isErrno(error, 'ENOENT')) return [];
      throw error;
    }
    const out: LeaseHolder[] = [];
    for (const name of names) {
      const dot = name.lastIndexOf('.');
      if (dot <= 0) continue;
      const holder = { instance: name.slice(0, dot), client_id: Number(name.slice(dot + 1)) };
      if (this.registry.isLive(holder.instance, now)) out.push(holder);
      else rmSync(join(dir, name), { force: true });
    }
    return out;
  }
}
