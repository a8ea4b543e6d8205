/**
 * tdlib_account_ready{account_namespace,account}: each TelegramAccount's Ready condition as 1 (True) or 0
 * (False, Unknown, not written yet), read from the cache at scrape time, the way kube-state-metrics reports
 * objects. Suspended accounts and accounts being deleted are left out: not Ready is what they are asked to
 * be. Every replica exports it once its cache has synced (followers keep warm caches), so a failover or a
 * rolling update leaves no gap in the series: aggregate with max by (account_namespace, account). The labels
 * are not `namespace`/`name`: a scrape gives every series the operator pod's own `namespace`.
 */
import type { TelegramAccount } from '../../crds/index.js';
import { ConditionType, findCondition } from '../../crds/index.js';
import { gauge, type Registry } from '../kube/metrics.js';

export function registerAccountMetrics(
  registry: Registry,
  accounts: { list(): readonly TelegramAccount[]; hasSynced(): boolean },
): void {
  gauge(registry, {
    name: 'tdlib_account_ready',
    help: 'TelegramAccount Ready condition: 1 True, 0 False/Unknown/not set; suspended and deleting accounts left out (every operator replica: aggregate with max)',
    labelNames: ['account_namespace', 'account'],
    collect() {
      this.reset();
      if (!accounts.hasSynced()) return;
      for (const account of accounts.list()) {
        if (account.spec.suspend === true || account.metadata.deletionTimestamp) continue;
        const ready = findCondition(account.status?.conditions, ConditionType.Ready)?.status === 'True';
        this.set(
          { account_namespace: account.metadata.namespace ?? '', account: account.metadata.name ?? '' },
          ready ? 1 : 0,
        );
      }
    },
  });
}
