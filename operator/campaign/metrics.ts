/**
 * Campaign status as metrics, read from the cache at scrape time (kube-state-metrics style), for alerts that
 * need the operator's view: a campaign auto-paused, or one that should send and does not.
 *   tdlib_campaign_phase{campaign_namespace,campaign,phase,reason} 1: status.phase, and the reason of the
 *     Progressing condition (Sending while it sends; else why not: AutoPaused, Suspended, NoSender, ...)
 *   tdlib_campaign_recipients{campaign_namespace,campaign,state} the status counters (sent, failed,
 *     pending, inFlight, inDoubt)
 * Every replica exports them once its cache has synced, so a failover leaves no gap: aggregate with max by
 * (campaign_namespace, campaign). The runtime exports its own per-campaign send metrics
 * (tdlib_campaign_sends_total, ...) under the runtime pod's namespace; these carry `campaign_namespace`
 * because a scrape gives every series the operator pod's own `namespace`.
 */
import type { Campaign } from '../../crds/index.js';
import { findCondition } from '../../crds/index.js';
import { gauge, type Registry } from '../kube/metrics.js';

const RECIPIENT_STATES = ['sent', 'failed', 'pending', 'inFlight', 'inDoubt'] as const;

export function registerCampaignMetrics(
  registry: Registry,
  campaigns: { list(): readonly Campaign[]; hasSynced(): boolean },
): void {
  const live = (): Campaign[] =>
    campaigns.hasSynced() ? campaigns.list().filter((c) => !c.metadata.deletionTimestamp) : [];
  const key = (c: Campaign): { campaign_namespace: string; campaign: string } => ({
    campaign_namespace: c.metadata.namespace ?? '',
    campaign: c.metadata.name ?? '',
  });
  gauge(registry, {
    name: 'tdlib_campaign_phase',
    help: 'Campaign phase (1), with the Progressing condition reason: Sending, or why it is not sending (AutoPaused, Suspended, NoSender, OutsideWindow, ...) (every operator replica: aggregate with max)',
    labelNames: ['campaign_namespace', 'campaign', 'phase', 'reason'],
    collect() {
      this.reset();
      for (const c of live()) {
        const reason = findCondition(c.status?.conditions, 'Progressing')?.reason ?? '';
        this.set({ ...key(c), phase: c.status?.phase ?? 'Pending', reason }, 1);
      }
    },
  });
  gauge(registry, {
    name: 'tdlib_campaign_recipients',
    help: 'Campaign recipients by state from its status: sent, failed, pending, inFlight, inDoubt (every operator replica: aggregate with max)',
    labelNames: ['campaign_namespace', 'campaign', 'state'],
    collect() {
      this.reset();
      for (const c of live())
        for (const state of RECIPIENT_STATES) this.set({ ...key(c), state }, c.status?.[state] ?? 0);
    },
  });
}
