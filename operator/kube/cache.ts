/**
 * The informer's in-memory store: objects by "namespace/name", a built-in namespace index and named
 * secondary indexes (client-go's ThreadSafeStore + Indexers). Objects are pruned (managedFields and the
 * kubectl last-applied annotation dropped: about half of a typical object, and nothing a reconciler reads)
 * and deep-frozen before they go in: cached objects are shared by every reader, so a reconciler that mutates
 * one instead of building its desired state gets a TypeError at once rather than corrupting the cache.
 */
import { keyOfObject, type ApiObject } from './resource.js';

/** Values an object is indexed under (e.g. the runtime pod an account is placed on). */
export type IndexFunc<T> = (obj: T) => string[];

const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

/** Drops what a cache never needs; returns the same object (mutated) for freshly parsed API objects. */
export function pruneForCache<T extends ApiObject>(obj: T, options: { keepLastApplied?: boolean } = {}): T {
  const metadata = obj.metadata;
  if (metadata) {
    delete metadata.managedFields;
    if (!options.keepLastApplied && metadata.annotations && LAST_APPLIED in metadata.annotations) {
      delete metadata.annotations[LAST_APPLIED];
    }
  }
  return obj;
}

export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value as Record<string, unknown>)) deepFreeze(child);
  }
  return value;
}

interface Index<T> {
  fn: IndexFunc<T>;
  values: Map<string, Set<string>>;
}

export class Store<T extends ApiObject> {
  private readonly items = new Map<string, T>();
  private readonly namespaces = new Map<string, Set<string>>();
  private readonly indexes = new Map<string, Index<T>>();

  get size(): number {
    return this.items.size;
  }

  get(key: string): T | undefined {
    return this.items.get(key);
  }

  has(key: string): boolean {
    return this.items.has(key);
  }

  keys(): IterableIterator<string> {
    return this.items.keys();
  }

  /** Every object, or those of one namespace (served from the namespace index, not a scan). */
  list(namespace?: string): T[] {
    if (namespace === undefined) return [...this.items.values()];
    const keys = this.namespaces.get(namespace);
    if (!keys) return [];
    const result: T[] = [];
    for (const key of keys) {
      const item = this.items.get(key);
      if (item) result.push(item);
    }
    return result;
  }

  /** Inserts or replaces; returns the previous object. The object is frozen. */
  upsert(obj: T): T | undefined {
    const key = keyOfObject(obj);
    deepFreeze(obj);
    const old = this.items.get(key);
    if (old) this.unindex(key, old);
    this.items.set(key, obj);
    this.index(key, obj);
    return old;
  }

  remove(key: string): T | undefined {
    const old = this.items.get(key);
    if (!old) return undefined;
    this.unindex(key, old);
    this.items.delete(key);
    return old;
  }

  clear(): void {
    this.items.clear();
    this.namespaces.clear();
    for (const index of this.indexes.values()) index.values.clear();
  }

  /** Adds a named index over current and future objects. Re-adding a name replaces its function. */
  addIndex(name: string, fn: IndexFunc<T>): void {
    const index: Index<T> = { fn, values: new Map() };
    this.indexes.set(name, index);
    for (const [key, item] of this.items) addToIndex(index, key, item);
  }

  byIndex(name: string, value: string): T[] {
    const index = this.indexes.get(name);
    if (!index) throw new Error(`no index named ${name}`);
    const keys = index.values.get(value);
    if (!keys) return [];
    const result: T[] = [];
    for (const key of keys) {
      const item = this.items.get(key);
      if (item) result.push(item);
    }
    return result;
  }

  private index(key: string, obj: T): void {
    const namespace = obj.metadata?.namespace ?? '';
    let keys = this.namespaces.get(namespace);
    if (!keys) {
      keys = new Set();
      this.namespaces.set(namespace, keys);
    }
    keys.add(key);
    for (const index of this.indexes.values()) addToIndex(index, key, obj);
  }

  private unindex(key: string, obj: T): void {
    const namespace = obj.metadata?.namespace ?? '';
    const keys = this.namespaces.get(namespace);
    keys?.delete(key);
    if (keys?.size === 0) this.namespaces.delete(namespace);
    for (const index of this.indexes.values()) {
      for (const value of safeIndexValues(index.fn, obj)) {
        const set = index.values.get(value);
        set?.delete(key);
        if (set?.size === 0) index.values.delete(value);
      }
    }
  }
}

function addToIndex<T>(index: Index<T>, key: string, obj: T): void {
  for (const value of safeIndexValues(index.fn, obj)) {
    let set = index.values.get(value);
    if (!set) {
      set = new Set();
      index.values.set(value, set);
    }
    set.add(key);
  }
}

/** An index function that throws must not break the cache; the object is simply not indexed. */
function safeIndexValues<T>(fn: IndexFunc<T>, obj: T): string[] {
  try {
    return fn(obj);
  } catch {
    return [];
  }
}
