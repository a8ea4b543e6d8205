/**
 * Follows one object (by namespace and name) for as long as the command waits: list + watch with a field
 * selector, re-listing when the watch ends or breaks; or, when the user may get but not list/watch that
 * kind (a least-privilege Role), polling with GET. Callers wait on a predicate with a deadline.
 */
import { isApiError, isNotFound, type RestClient } from '../../operator/kube/client.js';
import type { ApiObject, ResourceDescriptor } from '../../operator/kube/resource.js';
import { errorMessage, sleep } from '../../operator/kube/util.js';
import { watchEvents } from '../../operator/kube/watch.js';

export class WaitTimeoutError extends Error {
  override readonly name = 'WaitTimeoutError';
}

export interface ObserverOptions {
  /** GET interval when list/watch is forbidden (default 1 s). */
  pollIntervalMs?: number;
  /** Server-side timeout of one watch request (default 60 s); the observer re-lists after it. */
  watchTimeoutSeconds?: number;
}

/** The latest observation: the object, null when it does not exist, undefined before the first answer. */
export type Observation<T> = T | null | undefined;

export class ObjectObserver<T extends ApiObject> {
  private state: Observation<T>;
  private fatal: Error | undefined;
  private lastError: unknown;
  private readonly waiters = new Set<() => void>();
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;

  constructor(
    private readonly client: RestClient,
    private readonly resource: ResourceDescriptor,
    private readonly namespace: string,
    private readonly name: string,
    private readonly options: ObserverOptions = {},
  ) {}

  /** Starts following; seeds the state with `initial` when the caller has just read the object. */
  start(initial?: T | null): this {
    if (initial !== undefined) this.state = initial;
    this.running ??= this.run();
    return this;
  }

  async stop(): Promise<void> {
    this.abort.abort();
    this.notify();
    await this.running;
  }

  latest(): Observation<T> {
    return this.state;
  }

  /**
   * Resolves with the first non-undefined result of `check` on the latest state (checked now and after
   * every change). Rejects with WaitTimeoutError at the deadline (epoch ms), or with a fatal API error
   * (401/403 on GET).
   */
  async until<R>(check: (state: T | null) => R | undefined, deadline: number, what: string): Promise<R> {
    for (;;) {
      if (this.fatal) throw this.fatal;
      if (this.state !== undefined) {
        const result = check(this.state);
        if (result !== undefined) return result;
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        const detail =
          this.lastError === undefined ? '' : ` (last API error: ${errorMessage(this.lastError)})`;
        throw new WaitTimeoutError(`timed out waiting for ${what}${detail}`);
      }
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          this.waiters.delete(done);
          resolve();
        };
        const timer = setTimeout(done, remaining);
        this.waiters.add(done);
      });
      if (this.abort.signal.aborted && !this.fatal) throw new WaitTimeoutError(`stopped waiting for ${what}`);
    }
  }

  private set(value: T | null): void {
    this.state = value;
    this.notify();
  }

  private notify(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    const fieldSelector = `metadata.name=${this.name}`;
    let mode: 'watch' | 'poll' = 'watch';
    let failures = 0;
    while (!signal.aborted) {
      try {
        if (mode === 'watch') {
          const list = await this.client.list<T>(this.resource, {
            namespace: this.namespace,
            fieldSelector,
            signal,
          });
          this.set(list.items[0] ?? null);
          const stream = await this.client.watch(this.resource, {
            namespace: this.namespace,
            fieldSelector,
            resourceVersion: list.metadata.resourceVersion,
            allowWatchBookmarks: true,
            timeoutSeconds: this.options.watchTimeoutSeconds ?? 60,
            signal,
          });
          try {
            for await (const event of watchEvents<T>(stream)) {
              failures = 0;
              if (event.type === 'ADDED' || event.type === 'MODIFIED') this.set(event.object);
              else if (event.type === 'DELETED') this.set(null);
              else if (event.type === 'ERROR') break; // expired resourceVersion and the like: re-list
            }
          } finally {
            stream.destroy();
          }
        } else {
          const current = await this.client
            .get<T>(this.resource, this.namespace, this.name, { signal })
            .catch((error: unknown) => {
              if (isNotFound(error)) return null;
              throw error;
            });
          this.set(current);
          failures = 0;
          await sleep(this.options.pollIntervalMs ?? 1000, signal);
        }
      } catch (error) {
        if (signal.aborted) return;
        if (isApiError(error, 401) || (isApiError(error, 403) && mode === 'poll')) {
          this.fatal = error as Error;
          this.notify();
          return;
        }
        if (isApiError(error, 403) || isApiError(error, 405)) {
          mode = 'poll';
          continue;
        }
        this.lastError = error;
        failures++;
        await sleep(Math.min(250 * 2 ** Math.min(failures, 5), 5000), signal).catch(() => undefined);
      }
    }
  }
}
