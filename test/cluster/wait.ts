/**
 * Polls `probe` until it returns a value other than undefined, or the deadline passes. Used for readiness of
 * processes and for test conditions: we wait on a condition, never for a fixed time.
 */
export async function waitFor<T>(
  description: string,
  probe: () => Promise<T | undefined> | T | undefined,
  options: { timeoutMs: number; intervalMs?: number; onTimeout?: () => string | Promise<string> },
): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  let interval = Math.min(options.intervalMs ?? 50, 50);
  const maxInterval = options.intervalMs ?? 500;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() >= deadline) {
      const detail = lastError instanceof Error ? `; last error: ${lastError.message}` : '';
      const extra = options.onTimeout ? `\n${await options.onTimeout()}` : '';
      throw new Error(`timed out after ${options.timeoutMs} ms waiting for ${description}${detail}${extra}`);
    }
    await new Promise((resolve) => setTimeout(resolve, interval));
    interval = Math.min(interval * 2, maxInterval);
  }
}
