/**
 * The operator's object-state metrics behind the account and campaign alerts: tdlib_account_ready,
 * tdlib_campaign_phase and tdlib_campaign_recipients, read from the cache at scrape time once it has synced.
 */
import { describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import type { Campaign, TelegramAccount } from '../../../crds/index.js';
import { registerAccountMetrics } from '../../../operator/account/metrics.js';
import { registerCampaignMetrics } from '../../../operator/campaign/metrics.js';

const T = '2026-11-28T10:00:00Z';

function account(
  name: string,
  ready: 'True' | 'False' | 'Unknown' | undefined,
  extra: { suspend?: boolean; deleting?: boolean } = {},
): TelegramAccount {
  return {
    apiVersion: 'telegram.tdlib-operator.dev/v1alpha1',
    kind: 'TelegramAccount',
    metadata: {
      name,
      namespace: 'team',
      ...(extra.deleting ? { deletionTimestamp: T } : {}),
    },
    spec: { type: 'Bot', ...(extra.suspend ? { suspend: true } : {}) },
    ...(ready
      ? {
          status: {
            conditions: [{ type: 'Ready', status: ready, reason: 'X', message: '', lastTransitionTime: T }],
          },
        }
      : {}),
  } as unknown as TelegramAccount;
}

function campaign(name: string, status: Record<string, unknown> | undefined, deleting = false): Campaign {
  return {
    apiVersion: 'telegram.tdlib-operator.dev/v1alpha1',
    kind: 'Campaign',
    metadata: { name, namespace: 'team', ...(deleting ? { deletionTimestamp: T } : {}) },
    spec: {},
    ...(status ? { status } : {}),
  } as unknown as Campaign;
}

async function samples(registry: Registry, name: string): Promise<string[]> {
  return (await registry.getSingleMetricAsString(name))
    .split('\n')
    .filter((line) => line.startsWith(`${name}{`))
    .sort();
}

describe('tdlib_account_ready', () => {
  it('1 for Ready=True, 0 otherwise; suspended and deleting accounts left out', async () => {
    const registry = new Registry();
    const accounts = [
      account('ready', 'True'),
      account('waiting', 'False'),
      account('lost', 'Unknown'),
      account('new', undefined),
      account('paused', 'False', { suspend: true }),
      account('going', 'False', { deleting: true }),
    ];
    registerAccountMetrics(registry, { list: () => accounts, hasSynced: () => true });
    expect(await samples(registry, 'tdlib_account_ready')).toEqual([
      'tdlib_account_ready{account_namespace="team",account="lost"} 0',
      'tdlib_account_ready{account_namespace="team",account="new"} 0',
      'tdlib_account_ready{account_namespace="team",account="ready"} 1',
      'tdlib_account_ready{account_namespace="team",account="waiting"} 0',
    ]);
  });

  it('is empty until the cache has synced, then follows it', async () => {
    const registry = new Registry();
    let synced = false;
    const accounts = [account('a', 'True')];
    registerAccountMetrics(registry, { list: () => accounts, hasSynced: () => synced });
    expect(await samples(registry, 'tdlib_account_ready')).toEqual([]);
    synced = true;
    accounts.push(account('b', 'False'));
    expect(await samples(registry, 'tdlib_account_ready')).toHaveLength(2);
    accounts.splice(0, 2);
    expect(await samples(registry, 'tdlib_account_ready')).toEqual([]);
  });
});

describe('tdlib_campaign_phase and tdlib_campaign_recipients', () => {
  const progressing = (reason: string): unknown[] => [
    {
      type: 'Progressing',
      status: reason === 'Sending' ? 'True' : 'False',
      reason,
      message: '',
      lastTransitionTime: T,
    },
  ];

  it('phase with the Progressing reason, and the status counters', async () => {
    const registry = new Registry();
    const campaigns = [
      campaign('spring', {
        phase: 'Running',
        sent: 6120,
        failed: 14,
        pending: 3866,
        inFlight: 0,
        inDoubt: 0,
        conditions: progressing('Sending'),
      }),
      campaign('summer', {
        phase: 'Paused',
        sent: 10,
        failed: 40,
        pending: 50,
        conditions: progressing('AutoPaused'),
      }),
      campaign('fresh', undefined),
      campaign('gone', { phase: 'Completed' }, true),
    ];
    registerCampaignMetrics(registry, { list: () => campaigns, hasSynced: () => true });
    expect(await samples(registry, 'tdlib_campaign_phase')).toEqual([
      'tdlib_campaign_phase{campaign_namespace="team",campaign="fresh",phase="Pending",reason=""} 1',
      'tdlib_campaign_phase{campaign_namespace="team",campaign="spring",phase="Running",reason="Sending"} 1',
      'tdlib_campaign_phase{campaign_namespace="team",campaign="summer",phase="Paused",reason="AutoPaused"} 1',
    ]);
    const recipients = await samples(registry, 'tdlib_campaign_recipients');
    expect(recipients).toHaveLength(15);
    expect(recipients).toEqual(
      expect.arrayContaining([
        'tdlib_campaign_recipients{campaign_namespace="team",campaign="spring",state="sent"} 6120',
        'tdlib_campaign_recipients{campaign_namespace="team",campaign="spring",state="pending"} 3866',
        'tdlib_campaign_recipients{campaign_namespace="team",campaign="summer",state="failed"} 40',
        'tdlib_campaign_recipients{campaign_namespace="team",campaign="summer",state="inDoubt"} 0',
        'tdlib_campaign_recipients{campaign_namespace="team",campaign="fresh",state="pending"} 0',
      ]),
    );
  });

  it('is empty until the cache has synced', async () => {
    const registry = new Registry();
    registerCampaignMetrics(registry, {
      list: () => [campaign('spring', { phase: 'Running' })],
      hasSynced: () => false,
    });
    expect(await samples(registry, 'tdlib_campaign_phase')).toEqual([]);
    expect(await samples(registry, 'tdlib_campaign_recipients')).toEqual([]);
  });
});
