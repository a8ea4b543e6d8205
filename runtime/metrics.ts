/** Runtime metrics under the names the previous backend's alerts use (tdlib_*), plus auth and queue gauges. */
import { Counter, Gauge } from 'prom-client';
import type { Registry } from '../operator/kube/metrics.js';
import type { RuntimeAgent } from './agent.js';
import type { TdClientManager } from './tdlib/client.js';

export interface RuntimeMetrics {
  sessionsStarted: Counter;
}

export function registerRuntimeMetrics(
  registry: Registry,
  manager: () => TdClientManager | undefined,
  agent: () => RuntimeAgent | undefined,
): RuntimeMetrics {
  new Gauge({
    name: 'tdlib_active_clients',
    help: 'TDLib clients open in this process',
    registers: [registry],
    collect() {
      this.set(manager()?.size ?? 0);
    },
  });
  new Gauge({
    name: 'tdlib_pending_requests',
    help: 'TDLib requests sent and not yet answered (queue depth)',
    registers: [registry],
    collect() {
      this.set(manager()?.pendingRequests ?? 0);
    },
  });
  new Gauge({
    name: 'tdlib_hosted_accounts',
    help: 'Accounts hosted by this runtime, by authorization state',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      this.reset();
      for (const hosted of agent()?.hosted.values() ?? [])
        this.inc({ state: hosted.view.authorizationState ?? 'Starting' });
    },
  });
  new Gauge({
    name: 'runtime_status_writes_total',
    help: 'Status writes made by this runtime (server-side apply of the runtime-owned status)',
    registers: [registry],
    collect() {
      this.set(agent()?.status.writes ?? 0);
    },
  });
  return {
    sessionsStarted: new Counter({
      name: 'tdlib_sessions_total',
      help: 'TDLib sessions (clients) started',
      registers: [registry],
    }),
  };
}
