/** Small timing helpers shared by the REST client, reflector, leader elector and event recorder. */

/** Resolves after `ms`, or rejects with the signal's reason as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortReason(signal));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortReason(signal));
    };
    const timer = setTimeout(
      () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      },
      Math.max(0, ms),
    );
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** `promise`, or a rejection with the signal's reason as soon as `signal` aborts (the work itself goes on). */
export function abortable<T>(promise: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(abortReason(signal));
  return new Promise((resolve, reject) => {
    const onAbort = (): void => reject(abortReason(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}

/** Like sleep, but resolves (instead of rejecting) when the signal aborts: for loops that check a flag next. */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return sleep(ms, signal).catch(() => undefined);
}

function abortReason(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason;
  return reason instanceof Error ? reason : new Error('aborted');
}

/** `ms` scaled by a random factor in [1, 1 + factor): client-go's wait.Jitter, so clients don't sync up. */
export function jitter(ms: number, factor = 1): number {
  return ms * (1 + Math.random() * factor);
}

/**
 * Exponential backoff with jitter that resets after a quiet period (client-go's reflector uses 800 ms up to
 * 30 s, reset after 2 min without failures): a flapping connection backs off, a healthy one that fails once
 * a day starts from the initial delay again.
 */
export class Backoff {
  private current: number;
  private lastFailureAt = 0;

  constructor(
    private readonly initialMs = 800,
    private readonly maxMs = 30_000,
    private readonly resetAfterMs = 120_000,
    private readonly now: () => number = Date.now,
  ) {
    this.current = initialMs;
  }

  /** The delay to wait before the next attempt; each call doubles the following one. */
  next(): number {
    const now = this.now();
    if (this.lastFailureAt !== 0 && now - this.lastFailureAt > this.resetAfterMs)
      this.current = this.initialMs;
    this.lastFailureAt = now;
    const delay = Math.min(jitter(this.current, 1), this.maxMs);
    this.current = Math.min(this.current * 2, this.maxMs);
    return delay;
  }

  reset(): void {
    this.current = this.initialMs;
    this.lastFailureAt = 0;
  }
}

/** Counts concurrent holders; `acquire` waits in FIFO order once `limit` are held. */
export class Semaphore {
  private held = 0;
  private readonly waiters: Array<() => void> = [];

  constructor(private readonly limit: number) {}

  async acquire(signal?: AbortSignal): Promise<() => void> {
    if (this.held >= this.limit) {
      await new Promise<void>((resolve, reject) => {
        const wake = (): void => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        };
        const onAbort = (): void => {
          const index = this.waiters.indexOf(wake);
          if (index >= 0) this.waiters.splice(index, 1);
          reject(abortReason(signal));
        };
        this.waiters.push(wake);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    } else {
      this.held++;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiters.shift();
      // Hand the slot straight to the next waiter so `held` never drops below the real count.
      if (next) next();
      else this.held--;
    };
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Runs `fn` over `items` with at most `limit` in flight. Every item is tried; the first error is thrown once
 * all have finished, so one failed write does not stop the others of a reconcile.
 */
export async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const errors: unknown[] = [];
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      try {
        await fn(item);
      } catch (error) {
        errors.push(error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (errors.length > 0) throw errors[0];
}

/**
 * A signal that aborts after `ms` or when any of `signals` does, and the function that releases its timer.
 * Not AbortSignal.any([..., AbortSignal.timeout(ms)]): on Node 20 the timeout signal inside any() can be
 * garbage collected before it fires (nodejs/node#57736), and the deadline silently disappears.
 */
export function deadline(
  ms: number,
  ...signals: Array<AbortSignal | undefined>
): { signal: AbortSignal; clear: () => void } {
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new DOMException(`deadline of ${Math.round(ms)} ms passed`, 'TimeoutError')),
    Math.max(0, Math.ceil(ms)),
  );
  const listeners: Array<() => void> = [];
  for (const signal of signals) {
    if (!signal) continue;
    if (signal.aborted) controller.abort(signal.reason);
    const onAbort = (): void => controller.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    listeners.push(() => signal.removeEventListener('abort', onAbort));
  }
  return {
    signal: controller.signal,
    clear: () => {
      clearTimeout(timer);
      for (const remove of listeners) remove();
    },
  };
}
