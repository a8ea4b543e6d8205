/**
 * Proxy failover as a pure decision: given the configured proxies (primary first, then failover entries in
 * order), what the health checks (pingProxy) observed for each, and the proxy in use, which one to use now
 * and a sentence that explains it for status.proxy.message.
 *
 * Rules:
 * - No proxies configured: connect directly.
 * - Stay on the proxy in use while it is healthy (fewer than `failAfter` consecutive failed pings): a
 *   single lost ping never moves a connection.
 * - When it fails `failAfter` pings in a row, move to the first (earliest) healthy entry.
 * - Move back up the list (to the primary, or to any failover entry earlier than the one in use) only once
 *   that entry has passed `recoverAfter` consecutive pings. Together with the previous rule this is the
 *   hysteresis: a proxy that answers every other ping can never pull the connection back and forth.
 * - When every entry is failing, keep the least bad one and say that all are failing: the one in use
 *   unless another has at least `failAfter` fewer consecutive failures; else the one with the fewest
 *   (the earliest on a tie).
 * An entry without observations yet counts as healthy (untested), so start-up picks the primary.
 */

export interface ProxyCandidate {
  /** Stable identity of the entry (e.g. 'primary', 'failover-0', or a hash of its settings). */
  id: string;
  /** How to name it to humans: "host:port". Never credentials. Defaults to the id. */
  label?: string;
}

export interface PingObservation {
  ok: boolean;
  /** When the ping finished: epoch milliseconds, a Date, or an RFC 3339 string. */
  at: number | Date | string;
  /** TDLib's error text when ok is false (e.g. "Connection refused"). */
  error?: string;
  /** Round trip when ok is true. */
  rttMs?: number;
}

export interface ProxyHealth {
  /** Failed pings in a row, up to now (0 after a success). */
  consecutiveFailures: number;
  /** Successful pings in a row, up to now (0 after a failure). */
  consecutiveSuccesses: number;
  /** The most recent ping. */
  lastPing?: PingObservation;
}

export interface SelectProxyInput<C extends ProxyCandidate = ProxyCandidate> {
  /** Primary first, then failover entries in order. Empty: no proxy configured. */
  candidates: readonly C[];
  /** Observations by candidate id; a candidate missing here has not been checked yet. */
  health: ReadonlyMap<string, ProxyHealth> | Readonly<Record<string, ProxyHealth>>;
  /** Id of the candidate in use, if any ('direct' or an id no longer configured count as none). */
  current?: string;
  /** Consecutive failed pings that make the proxy in use be dropped (default 2). */
  failAfter?: number;
  /** Consecutive successful pings an earlier entry needs before we move back to it (default 3). */
  recoverAfter?: number;
}

export type ProxySelectionReason =
  /** No proxy configured. */
  | 'Direct'
  /** Nothing in use yet (or the entry in use was removed from the spec): the earliest healthy one. */
  | 'Initial'
  /** The proxy in use is healthy; no change. */
  | 'Healthy'
  /** The proxy in use failed failAfter pings in a row; moved to the earliest healthy one. */
  | 'Failover'
  /** An earlier entry passed recoverAfter pings in a row; moved back to it. */
  | 'Recovered'
  /** Every entry is failing; keeping (or moving to) the least bad one. */
  | 'AllFailing';

export type ProxySelection<C extends ProxyCandidate = ProxyCandidate> =
  | {
      kind: 'direct';
      /** Always 'direct' (so `id` names the route whatever the kind; no candidate may use this id). */
      id: 'direct';
      reason: 'Direct';
      /** True when a proxy was in use before. */
      changed: boolean;
      message: string;
    }
  | {
      kind: 'proxy';
      reason: Exclude<ProxySelectionReason, 'Direct'>;
      /** The candidate to use. */
      candidate: C;
      /** Its id (same as candidate.id). */
      id: string;
      /** Its position: 0 = primary. */
      index: number;
      /** True when this differs from `current`: the caller must switch (enableProxy). */
      changed: boolean;
      /** True when every candidate is failing. */
      allFailing: boolean;
      message: string;
    };

export const DEFAULT_FAIL_AFTER = 2;
export const DEFAULT_RECOVER_AFTER = 3;

/** Decides which proxy to use; pure and deterministic. */
export function selectProxy<C extends ProxyCandidate>(input: SelectProxyInput<C>): ProxySelection<C> {
  const failAfter = Math.max(1, Math.floor(input.failAfter ?? DEFAULT_FAIL_AFTER));
  const recoverAfter = Math.max(1, Math.floor(input.recoverAfter ?? DEFAULT_RECOVER_AFTER));
  const { candidates } = input;
  const currentIndex = input.current === undefined ? -1 : candidates.findIndex((c) => c.id === input.current);
  const current = currentIndex >= 0 ? candidates[currentIndex] : undefined;

  if (candidates.length === 0) {
    const wasProxy = input.current !== undefined && input.current !== 'direct';
    return {
      kind: 'direct',
      id: 'direct',
      reason: 'Direct',
      changed: wasProxy,
      message: 'connecting directly: no proxy configured',
    };
  }

  const healthOf = (c: C): ProxyHealth => lookup(input.health, c.id) ?? NO_OBSERVATIONS;
  const healthy = (c: C): boolean => healthOf(c).consecutiveFailures < failAfter;
  const recovered = (c: C): boolean => healthy(c) && healthOf(c).consecutiveSuccesses >= recoverAfter;
  const label = (c: C): string => c.label ?? c.id;
  const choose = (
    index: number,
    reason: Exclude<ProxySelectionReason, 'Direct'>,
    message: string,
    allFailing = false,
  ): ProxySelection<C> => {
    const candidate = candidates[index] as C;
    return {
      kind: 'proxy',
      reason,
      candidate,
      id: candidate.id,
      index,
      changed: candidate.id !== input.current,
      allFailing,
      message,
    };
  };
  const failing = (c: C): string => {
    const h = healthOf(c);
    const error = h.lastPing && !h.lastPing.ok && h.lastPing.error ? `: ${h.lastPing.error}` : '';
    return `${label(c)} ${h.consecutiveFailures} failed ${h.consecutiveFailures === 1 ? 'ping' : 'pings'}${error}`;
  };
  const role = (index: number): string => (index === 0 ? 'primary' : `failover ${index}`);

  // Every entry failing: keep the least bad one, preferring the one in use, then the earliest.
  if (!candidates.some(healthy)) {
    const failures = candidates.map((c) => healthOf(c).consecutiveFailures);
    const fewest = Math.min(...failures);
    // Hysteresis here too: leave the one in use only for an entry that is clearly less bad (failAfter fewer
    // failures), not for one that merely happened to be pinged a moment earlier.
    const inUse = failures[currentIndex];
    const best = inUse !== undefined && inUse - fewest < failAfter ? currentIndex : failures.indexOf(fewest);
    const chosen = candidates[best] as C;
    const n = candidates.length;
    return choose(
      best,
      'AllFailing',
      `all ${n} ${n === 1 ? 'proxy is' : 'proxies are'} failing; using ${label(chosen)} (${role(best)}), ` +
        `the least bad: ${candidates.map(failing).join('; ')}`,
      true,
    );
  }

  // Nothing usable in use: start on the earliest healthy entry.
  if (current === undefined) {
    const index = candidates.findIndex(healthy);
    const chosen = candidates[index] as C;
    const skipped = candidates.slice(0, index);
    const why = skipped.length > 0 ? `; skipped ${skipped.map(failing).join('; ')}` : '';
    return choose(index, 'Initial', `using proxy ${label(chosen)} (${role(index)})${why}`);
  }

  if (healthy(current)) {
    // Healthy where we are: move up only to an earlier entry that has proven itself.
    const earlier = candidates.slice(0, currentIndex).findIndex(recovered);
    if (earlier >= 0) {
      const chosen = candidates[earlier] as C;
      const h = healthOf(chosen);
      return choose(
        earlier,
        'Recovered',
        `using proxy ${label(chosen)} (${role(earlier)}) again: it passed ${h.consecutiveSuccesses} ` +
          `consecutive pings; leaving ${label(current)} (${role(currentIndex)})`,
      );
    }
    const down = candidates.slice(0, currentIndex).filter((c) => !healthy(c));
    const why = down.length > 0 ? `; ${down.map(failing).join('; ')}` : '';
    return choose(currentIndex, 'Healthy', `using proxy ${label(current)} (${role(currentIndex)})${why}`);
  }

  // The proxy in use failed failAfter pings in a row: the earliest healthy entry takes over.
  const index = candidates.findIndex(healthy);
  const chosen = candidates[index] as C;
  const h = healthOf(current);
  const error = h.lastPing && !h.lastPing.ok && h.lastPing.error ? `: ${h.lastPing.error}` : '';
  return choose(
    index,
    'Failover',
    `using proxy ${label(chosen)} (${role(index)}); ${label(current)} dropped after ` +
      `${h.consecutiveFailures} failed pings${error}`,
  );
}

/**
 * Folds one ping result into a candidate's health (a convenience for the caller that keeps the map).
 */
export function recordPing(previous: ProxyHealth | undefined, ping: PingObservation): ProxyHealth {
  const base = previous ?? NO_OBSERVATIONS;
  return ping.ok
    ? { consecutiveFailures: 0, consecutiveSuccesses: base.consecutiveSuccesses + 1, lastPing: ping }
    : { consecutiveFailures: base.consecutiveFailures + 1, consecutiveSuccesses: 0, lastPing: ping };
}

const NO_OBSERVATIONS: ProxyHealth = { consecutiveFailures: 0, consecutiveSuccesses: 0 };

function lookup(
  health: ReadonlyMap<string, ProxyHealth> | Readonly<Record<string, ProxyHealth>>,
  id: string,
): ProxyHealth | undefined {
  if (health instanceof Map) return (health as ReadonlyMap<string, ProxyHealth>).get(id);
  const record = health as Readonly<Record<string, ProxyHealth>>;
  return Object.prototype.hasOwnProperty.call(record, id) ? record[id] : undefined;
}
