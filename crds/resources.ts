/** How the REST layer addresses our kinds (group, version, plural). */
import { CAMPAIGN_KIND, CAMPAIGN_PLURAL } from './campaign.js';
import { CAMPAIGN_SLICE_KIND, CAMPAIGN_SLICE_PLURAL } from './campaign-slice.js';
import { GROUP, VERSION } from './common.js';
import { TELEGRAM_ACCOUNT_KIND, TELEGRAM_ACCOUNT_PLURAL } from './telegram-account.js';
import type { ResourceDescriptor } from './kube-object.js';
import { RUNTIME_POOL_KIND, RUNTIME_POOL_PLURAL } from './runtime-pool.js';

export const TelegramAccountResource: ResourceDescriptor = {
  group: GROUP,
  version: VERSION,
  plural: TELEGRAM_ACCOUNT_PLURAL,
  kind: TELEGRAM_ACCOUNT_KIND,
  namespaced: true,
};

export const CampaignResource: ResourceDescriptor = {
  group: GROUP,
  version: VERSION,
  plural: CAMPAIGN_PLURAL,
  kind: CAMPAIGN_KIND,
  namespaced: true,
};

export const CampaignSliceResource: ResourceDescriptor = {
  group: GROUP,
  version: VERSION,
  plural: CAMPAIGN_SLICE_PLURAL,
  kind: CAMPAIGN_SLICE_KIND,
  namespaced: true,
};

export const RuntimePoolResource: ResourceDescriptor = {
  group: GROUP,
  version: VERSION,
  plural: RUNTIME_POOL_PLURAL,
  kind: RUNTIME_POOL_KIND,
  namespaced: true,
};
