/**
 * The Campaign controller's wiring (controller-runtime's SetupWithManager): its informers, its watches and
 * how events map to campaign keys. Slice status writes arrive about once a second per sender: they are
 * coalesced, so a campaign is reconciled at most a few times a second however many senders write.
 */
import type { Campaign, CampaignSlice, TelegramAccount } from '../../crds/index.js';
import { CampaignResource, CampaignSliceResource } from '../../crds/index.js';
import type { RestClient } from '../kube/client.js';
import { Controller, type ObjectKey } from '../kube/controller.js';
import type { EventRecorder } from '../kube/events.js';
import type { Logger } from '../kube/logging.js';
import type { Registry } from '../kube/metrics.js';
import { Informer } from '../kube/reflector.js';
import type { ApiObject } from '../kube/resource.js';
import { LABEL_CAMPAIGN } from '../../crds/index.js';
import { CAMPAIGN_SLICE_INDEX, CampaignReconciler, selectedSenders } from './controller.js';

const COALESCE_MS = 250;

/** What the manager does with an informer: start it, stop it, wait for it. */
export interface ManagedInformer {
  start(): void;
  stop(): Promise<void>;
  hasSynced(): boolean;
}

export interface CampaignSetup {
  controller: Controller;
  informers: ManagedInformer[];
  /** The Campaign cache (read by the campaign metrics). */
  campaigns: Informer<Campaign & ApiObject>;
}

export function setupCampaignController(deps: {
  rest: RestClient;
  namespace?: string;
  accounts: Informer<TelegramAccount & ApiObject>;
  events: EventRecorder;
  logger: Logger;
  registry: Registry;
  workers: number;
}): CampaignSetup {
  const { rest, namespace, logger, registry } = deps;
  const campaigns = new Informer<Campaign & ApiObject>(rest, CampaignResource, {
    name: 'campaigns',
    namespace,
    logger,
    registry,
  });
  const slices = new Informer<CampaignSlice & ApiObject>(rest, CampaignSliceResource, {
    name: 'campaignslices',
    namespace,
    labelSelector: LABEL_CAMPAIGN,
    logger,
    registry,
  });
  slices.addIndex(CAMPAIGN_SLICE_INDEX, (s) => [
    `${s.metadata.namespace}/${s.metadata.labels?.[LABEL_CAMPAIGN] ?? ''}`,
  ]);
  const controller = new Controller({
    name: 'campaign',
    reconciler: new CampaignReconciler({
      rest,
      campaigns,
      slices,
      accounts: deps.accounts,
      events: deps.events,
      logger,
    }),
    workers: deps.workers,
    logger,
    registry,
  })
    .for(campaigns)
    .watches(slices, () => [])
    .watches(deps.accounts, () => []);
  slices.onEvent((_type, slice, _old, meta) => {
    const campaign = slice.metadata.labels?.[LABEL_CAMPAIGN];
    if (campaign)
      controller.enqueue(
        { namespace: slice.metadata.namespace ?? '', name: campaign },
        meta.initial ? { priority: 'low' } : { afterMs: COALESCE_MS },
      );
  });
  // An account joining, leaving or changing readiness changes who may send.
  deps.accounts.onEvent((_type, account, _old, meta) => {
    if (meta.initial) return;
    const ns = account.metadata.namespace ?? '';
    const keys: ObjectKey[] = campaigns
      .list(ns)
      .filter(
        (c) => c.spec.senders.selector || selectedSenders(c, [account]).includes(account.metadata.name ?? ''),
      )
      .map((c) => ({ namespace: ns, name: c.metadata.name ?? '' }));
    for (const key of keys) controller.enqueue(key, { afterMs: COALESCE_MS });
  });
  return { controller, informers: [campaigns, slices], campaigns };
}
