import {
  CAMPAIGN_KIND,
  CAMPAIGN_PLURAL,
  GROUP,
  TELEGRAM_ACCOUNT_KIND,
  TELEGRAM_ACCOUNT_PLURAL,
  VERSION,
} from '../crds/index.js';
import type { ResourceDescriptor } from './kube/resource.js';

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
