/**
 * Runs the rollout analysis: scrapes every runtime pod's /metrics (the address each runtime advertises on its
 * heartbeat Lease) once per interval and compares the interval's deltas of canary and stable (analysis.ts).
 * The previous scrape is the baseline, kept in memory: after an operator restart the first interval only
 * takes a new baseline.
 */
import { analyze, type Gates, type PodScrape, type Verdict } from './analysis.js';
import { parsePrometheusText } from './metrics-text.js';

export interface ScrapeTarget {
  pod: string;
  set: 'stable' | 'canary';
  url: string;
}

export type FetchText = (url: string, signal: AbortSignal) => Promise<string>;

const fetchText: FetchText = async (url, signal) => {
  const response = await fetch(url, { signal });
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.text();
};

interface Baseline {
  revision: string;
  at: number;
  scrapes: PodScrape[];
}

export class RolloutAnalyzer {
  private readonly baselines = new Map<string, Baseline>();

  constructor(private readonly options: { fetch?: FetchText; timeoutMs?: number; now?: () => number } = {}) {}

  /** Milliseconds until the next analysis of `key` is due (0: now). */
  dueInMs(key: string, revision: string, intervalMs: number): number {
    const baseline = this.baselines.get(key);
    if (!baseline || baseline.revision !== revision) return 0;
    return Math.max(0, baseline.at + intervalMs - this.now());
  }

  /**
   * Scrapes when an interval has passed since the baseline: returns the verdict for that interval, or
   * undefined when this scrape only became the baseline (first one, or a new revision).
   */
  async run(
    key: string,
    revision: string,
    targets: readonly ScrapeTarget[],
    gates: Gates,
    intervalMs: number,
  ): Promise<Verdict | undefined> {
    if (this.dueInMs(key, revision, intervalMs) > 0) return undefined;
    const scrapes = await this.scrapeAll(targets);
    const previous = this.baselines.get(key);
    this.baselines.set(key, { revision, at: this.now(), scrapes });
    if (!previous || previous.revision !== revision) return undefined;
    return analyze(previous.scrapes, scrapes, gates);
  }

  /**
   * The same schedule for an analysis that needs no baseline of ours (a Prometheus query over the interval):
   * the first interval of a revision only starts the clock, since its window would hold traffic from before
   * the accounts moved.
   */
  async runQuery(
    key: string,
    revision: string,
    intervalMs: number,
    query: () => Promise<Verdict>,
  ): Promise<Verdict | undefined> {
    if (this.dueInMs(key, revision, intervalMs) > 0) return undefined;
    const previous = this.baselines.get(key);
    this.baselines.set(key, { revision, at: this.now(), scrapes: [] });
    if (!previous || previous.revision !== revision) return undefined;
    return query();
  }

  forget(key: string): void {
    this.baselines.delete(key);
  }

  private now(): number {
    return (this.options.now ?? (() => performance.now()))();
  }

  /** A pod that does not answer is left out of this interval (its heartbeat decides whether it is alive). */
  private async scrapeAll(targets: readonly ScrapeTarget[]): Promise<PodScrape[]> {
    const fetchIt = this.options.fetch ?? fetchText;
    const results = await Promise.all(
      targets.map(async (target): Promise<PodScrape | undefined> => {
        try {
          const text = await fetchIt(target.url, AbortSignal.timeout(this.options.timeoutMs ?? 5000));
          return { pod: target.pod, set: target.set, samples: parsePrometheusText(text) };
        } catch {
          return undefined;
        }
      }),
    );
    return results.filter((r): r is PodScrape => r !== undefined);
  }
}
