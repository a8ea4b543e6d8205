export * from './common.js';
export * from './kube-object.js';
export * from './telegram-account.js';
export * from './campaign.js';
export * from './conditions.js';
export * from './naming.js';
export * from './resources.js';
export { allCrds, campaignCrd, telegramAccountCrd } from './crd.js';
export type { Condition } from './schema.js';
