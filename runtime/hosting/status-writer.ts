/**
 * Writes the runtime's part of account status with server-side apply, only when something a reader sees
 * changed, and coalesces bursts (TDLib often reports Connecting -> Updating -> Ready within milliseconds).
 */
import { API_VERSION, TELEGRAM_ACCOUNT_KIND, type TelegramAccount } from '../../crds/index.js';
import type { RestClient } from '../../operator/kube/client.js';
import { isNotFound } from '../../operator/kube/errors.js';
import type { Logger } from '../../operator/kube/logging.js';
import type { ApiObject } from '../../operator/kube/resource.js';
import { TelegramAccountResource } from '../../crds/resources.js';
import { RUNTIME_FIELD_MANAGER, desiredRuntimeStatus, statusFingerprint, type HostedView } from './status.js';

export class StatusWriter {
  private readonly written = new Map<string, string>();
  private readonly pending = new Map<string, { account: TelegramAccount; view: HostedView }>();
  private timer?: NodeJS.Timeout;
  private flushing?: Promise<void>;
  writes = 0;

  constructor(
    private readonly rest: RestClient,
    private readonly logger: Logger,
    private readonly coalesceMs = 50,
  ) {}

  report(account: TelegramAccount, view: HostedView): void {
    const key = `${account.metadata.namespace}/${account.metadata.name}`;
    this.pending.set(key, { account, view: { ...view } });
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, this.coalesceMs);
  }

  /** Writes everything pending now; resolves when done (used at shutdown). */
  async flush(): Promise<void> {
    await this.flushing;
    const batch = [...this.pending.entries()];
    this.pending.clear();
    this.flushing = Promise.all(batch.map(([key, { account, view }]) => this.write(key, account, view))).then(
      () => undefined,
    );
    await this.flushing;
  }

  /** Drops what was written for an account that no longer exists, so its memory is not kept forever. */
  forget(namespace: string, name: string): void {
    this.written.delete(`${namespace}/${name}`);
    this.pending.delete(`${namespace}/${name}`);
  }

  private async write(key: string, account: TelegramAccount, view: HostedView): Promise<void> {
    const status = desiredRuntimeStatus(view, account.status?.conditions, new Date());
    const fingerprint = statusFingerprint(status);
    if (this.written.get(key) === fingerprint) return;
    try {
      await this.rest.applyStatus(
        TelegramAccountResource,
        {
          apiVersion: API_VERSION,
          kind: TELEGRAM_ACCOUNT_KIND,
          metadata: { name: account.metadata.name, namespace: account.metadata.namespace },
          status,
        } as ApiObject,
        { fieldManager: RUNTIME_FIELD_MANAGER, force: true },
      );
      this.writes++;
      this.written.set(key, fingerprint);
    } catch (error) {
      if (isNotFound(error)) return;
      this.logger.warn(
        { account: key, err: error instanceof Error ? error.message : String(error) },
        'status write failed; retrying',
      );
      this.report(account, view);
    }
  }
}
