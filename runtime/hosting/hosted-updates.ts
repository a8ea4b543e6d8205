/**
 * The updates side of a hosted account: opens the account's outbox before its client starts, feeds it
 * the client's updates, looks up the sink again when the spec changes (and every minute, sooner while
 * something is wrong), and closes it before the session is backed up, so a move carries its marks.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { TelegramAccount } from '../../crds/index.js';
import type { Logger } from '../../operator/kube/logging.js';
import type { TdObject } from '../tdlib/backend.js';
import type { TdClient } from '../tdlib/client.js';
import { AccountUpdates, type UpdatesFigures } from '../updates/account-updates.js';
import { eventSource } from '../updates/cloudevents.js';
import type { Post } from '../updates/deliverer.js';
import { resolveUpdates, type ResolveDeps } from '../updates/resolve.js';
import { kindsOf, policyOf } from '../updates/settings.js';

const RESOLVE_EVERY_MS = 60_000;
const RESOLVE_PROBLEM_EVERY_MS = 10_000;

export interface HostedUpdatesDeps extends ResolveDeps {
  name: string;
  accountDir: string;
  databaseDir: string;
  logger: Logger;
  /** status.updates changed (undefined: spec.updates was removed). */
  changed: (figures: UpdatesFigures | undefined) => void;
  /** An Event on the account. */
  event: (type: 'Normal' | 'Warning', reason: string, message: string) => void;
  post?: Post;
}

export class HostedUpdates {
  private updates?: AccountUpdates;
  private resolvedFor?: string;
  private resolvedAt = 0;
  private problem = false;

  /**
   * status.updates as the previous host left it. Kept in this pod's writes until its own outbox opens
   * (one field manager writes it, whichever pod that is: leaving it out would erase it), and its
   * resumeFrom is where a fresh outbox here refills from.
   */
  private readonly inherited?: UpdatesFigures;

  constructor(
    private readonly deps: HostedUpdatesDeps,
    account: TelegramAccount,
  ) {
    const status = account.status?.updates;
    if (account.spec.updates && status)
      this.inherited = {
        ...status,
        delivered: status.delivered ?? 0,
        deadLettered: status.deadLettered ?? 0,
        dropped: status.dropped ?? 0,
        pending: status.pending ?? 0,
        retrying: 0,
        inherited: true,
      };
  }

  /** What status.updates says until this pod's outbox is open. */
  get initialFigures(): UpdatesFigures | undefined {
    return this.inherited;
  }

  /** When the sink should be looked up again (the account's reconcile is requeued for it). */
  get lookAgainInMs(): number | undefined {
    if (!this.updates) return undefined;
    const every = this.problem ? RESOLVE_PROBLEM_EVERY_MS : RESOLVE_EVERY_MS;
    return Math.max(0, Math.ceil(this.resolvedAt + every - performance.now()));
  }

  /**
   * Before the client's first request: the outbox is open and takes this client's updates. After a
   * restore from backup (another pod ran the account since), this pod's old outbox is stale: the other
   * pod delivered or refilled what it held, and the backup's marks say where to go on from.
   */
  async start(
    account: TelegramAccount,
    client: TdClient,
    restoredFromBackup: boolean,
    signal: AbortSignal,
  ): Promise<void> {
    if (!account.spec.updates) return this.remove();
    if (!this.updates && restoredFromBackup)
      rmSync(join(this.deps.accountDir, 'updates'), { recursive: true, force: true });
    if (!this.updates) {
      const status = this.inherited;
      this.updates = await AccountUpdates.open({
        dir: join(this.deps.accountDir, 'updates'),
        databaseDir: this.deps.databaseDir,
        source: eventSource(this.deps.namespace, this.deps.name),
        isUser: account.spec.type !== 'Bot',
        logger: this.deps.logger,
        onFigures: (figures) => this.deps.changed(figures),
        onHealth: (failing, message) =>
          this.deps.event(
            failing ? 'Warning' : 'Normal',
            failing ? 'UpdatesFailing' : 'UpdatesRecovered',
            message,
          ),
        ...(status?.resumeFrom ? { statusResumeFrom: status.resumeFrom } : {}),
        ...(status
          ? {
              seedCounts: {
                delivered: status.delivered ?? 0,
                deadLettered: status.deadLettered ?? 0,
                expired: status.dropped ?? 0,
              },
            }
          : {}),
        ...(this.deps.post ? { post: this.deps.post } : {}),
      });
      this.resolvedFor = undefined;
    }
    this.updates.attach(client);
    await this.reconcile(account, client, signal);
  }

  onUpdate(client: TdClient, update: TdObject): void {
    this.updates?.onUpdate(client, update);
  }

  /** Every reconcile of a running account: cheap unless the spec changed or a look-up is due. */
  async reconcile(account: TelegramAccount, client: TdClient, signal: AbortSignal): Promise<void> {
    const spec = account.spec.updates;
    if (!spec) return this.remove();
    const updates = this.updates;
    // Switched on while the client runs: from now on (nothing before was meant for a sink).
    if (!updates) return this.start(account, client, false, signal);
    const key = JSON.stringify(spec);
    const every = this.problem ? RESOLVE_PROBLEM_EVERY_MS : RESOLVE_EVERY_MS;
    if (key === this.resolvedFor && performance.now() - this.resolvedAt < every) return;
    const resolved = await resolveUpdates(this.deps, spec, signal);
    this.resolvedFor = key;
    this.resolvedAt = performance.now();
    if (resolved.problem && !this.problem)
      this.deps.event('Warning', resolved.problem.reason, resolved.problem.message);
    this.problem = resolved.problem !== undefined;
    updates.configure({ ...resolved, kinds: kindsOf(spec), policy: policyOf(spec) });
  }

  /** Every update taken so far is on disk and the state a move needs is beside the session. */
  async close(): Promise<void> {
    const updates = this.updates;
    if (!updates) return;
    this.updates = undefined;
    await updates.close();
  }

  /** spec.updates was removed: nothing is delivered any more (the outbox stays on disk). */
  private async remove(): Promise<void> {
    if (!this.updates) return;
    await this.close();
    this.deps.changed(undefined);
  }
}
