/**
 * Per-request metrics hooks. TdClient calls `requestDone` once per request with its method, duration and
 * outcome; what is done with it (prom-client, in-memory stats for a benchmark) is up to the hook.
 */
import type { Counter, Histogram, Registry } from 'prom-client';
import { Counter as PromCounter, Histogram as PromHistogram } from 'prom-client';
import type { TelegramLimit } from './errors.js';

/** 'ok', TDLib's error code as text ('400', '429', ...), 'timeout' or 'closed'. */
export type TdRequestOutcome = string;

export interface TdRequestHooks {
  /** `telegramLimit` is set when the error is Telegram's limit on the account (flood wait, PEER_FLOOD). */
  requestDone(
    method: string,
    durationSeconds: number,
    outcome: TdRequestOutcome,
    telegramLimit?: TelegramLimit,
  ): void;
}

export interface MethodStats {
  count: number;
  errors: number;
  totalSeconds: number;
  maxSeconds: number;
}

/** In-memory aggregation: totals, errors by code, duration by method. For tests, benchmarks and debugging. */
export class TdRequestStats implements TdRequestHooks {
  total = 0;
  errors = 0;
  readonly errorsByCode = new Map<string, number>();
  readonly byMethod = new Map<string, MethodStats>();

  requestDone(method: string, durationSeconds: number, outcome: TdRequestOutcome): void {
    this.total++;
    let stats = this.byMethod.get(method);
    if (stats === undefined) {
      stats = { count: 0, errors: 0, totalSeconds: 0, maxSeconds: 0 };
      this.byMethod.set(method, stats);
    }
    stats.count++;
    stats.totalSeconds += durationSeconds;
    if (durationSeconds > stats.maxSeconds) stats.maxSeconds = durationSeconds;
    if (outcome !== 'ok') {
      this.errors++;
      stats.errors++;
      this.errorsByCode.set(outcome, (this.errorsByCode.get(outcome) ?? 0) + 1);
    }
  }
}

export interface TdPromMetrics {
  readonly duration: Histogram<'method'>;
  readonly requests: Counter<'method' | 'outcome'>;
  readonly errors: Counter<'method' | 'code' | 'telegram_limit'>;
}

/**
 * Registers the metric names dashboards and alerts already use (tdlib_request_duration_seconds,
 * tdlib_requests_total, tdlib_errors_total) on `registry`. Call once per registry.
 */
export function registerTdRequestMetrics(registry: Registry): TdPromMetrics {
  return {
    duration: new PromHistogram({
      name: 'tdlib_request_duration_seconds',
      help: 'Duration of TDLib requests from send to answer, by method',
      labelNames: ['method'],
      buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
      registers: [registry],
    }),
    requests: new PromCounter({
      name: 'tdlib_requests_total',
      help: 'TDLib requests answered, by method and outcome',
      labelNames: ['method', 'outcome'],
      registers: [registry],
    }),
    // telegram_limit (flood_wait, peer_flood) is present only on Telegram's limits on the account, which
    // say nothing about our version: an error ratio selects {telegram_limit=""} to leave them out.
    errors: new PromCounter({
      name: 'tdlib_errors_total',
      help: 'TDLib requests that failed, by method and error code (timeout and closed are local outcomes); telegram_limit (flood_wait, peer_flood) marks Telegram refusing for its limits',
      labelNames: ['method', 'code', 'telegram_limit'],
      registers: [registry],
    }),
  };
}

/** Hooks that feed the prom-client metrics from registerTdRequestMetrics. */
export function promRequestHooks(metrics: TdPromMetrics): TdRequestHooks {
  return {
    requestDone(method, durationSeconds, outcome, telegramLimit) {
      metrics.duration.observe({ method }, durationSeconds);
      metrics.requests.inc({ method, outcome: outcome === 'ok' ? 'ok' : 'error' });
      if (outcome !== 'ok')
        metrics.errors.inc(
          telegramLimit
            ? { method, code: outcome, telegram_limit: telegramLimit }
            : { method, code: outcome },
        );
    },
  };
}

/** Fans one request out to several hooks (e.g. Prometheus plus a benchmark's own stats). */
export function combineHooks(...hooks: TdRequestHooks[]): TdRequestHooks {
  return {
    requestDone(method, durationSeconds, outcome, telegramLimit) {
      for (const hook of hooks) hook.requestDone(method, durationSeconds, outcome, telegramLimit);
    },
  };
}
