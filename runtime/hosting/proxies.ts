/**
 * The proxies of one hosted client: spec.proxy (primary + failover) added to TDLib with the primary enabled
 * at once (so the client never connects directly while health checks run), checked with pingProxy in the
 * background, and the one to use chosen by selectProxy (which keeps a healthy proxy and fails over only
 * after repeated failures). Removing spec.proxy removes them all and reconnects directly.
 *
 * A proxy that cannot be used as configured (a bad link, a missing credentials Secret or key) is a
 * ProxyConfigError naming the spec field; the caller then keeps the client offline rather than direct.
 */
import type { TelegramAccountSpec } from '../../crds/index.js';
import type { Logger } from '../../operator/kube/logging.js';
import { errorMessage } from '../../operator/kube/util.js';
import {
  ProxyLinkError,
  checkProxyServer,
  parseProxyLink,
  proxyLabel,
  toTdProxy,
  type ParsedProxy,
} from '../proxy/links.js';
import { DEFAULT_RECOVER_AFTER, recordPing, selectProxy, type ProxyHealth } from '../proxy/select.js';
import type { TdObject } from '../tdlib/backend.js';
import type { TdClient } from '../tdlib/client.js';

type ProxySpec = NonNullable<TelegramAccountSpec['proxy']>;
type ProxyEntry = Omit<ProxySpec, 'failover' | 'checkIntervalSeconds'>;

interface Candidate {
  id: string;
  label: string;
  proxy: ParsedProxy;
  tdId?: number;
}

export type SecretReader = (name: string) => Promise<Record<string, string> | undefined>;

/** spec.proxy cannot be used as written; `field` is the spec path to fix. Never carries a secret. */
export class ProxyConfigError extends Error {
  override readonly name = 'ProxyConfigError';

  constructor(
    readonly field: string,
    reason: string,
  ) {
    super(`${field}: ${reason}`);
  }
}

export class ProxyManager {
  private candidates: Candidate[] = [];
  private configured?: string;
  private health = new Map<string, ProxyHealth>();
  private current?: string;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private intervalSeconds = 60;
  private rounds = 0;

  constructor(
    private readonly client: TdClient,
    private readonly readSecret: SecretReader,
    private readonly logger: Logger,
    private readonly report: (proxy: { inUse: string; message?: string }) => void,
  ) {}

  /** True once `spec` (the same text) was configured successfully. */
  isConfigured(spec: ProxySpec | undefined): boolean {
    return this.configured === JSON.stringify(spec ?? null);
  }

  private async candidate(entry: ProxyEntry, index: number): Promise<Candidate> {
    const field = index === 0 ? 'spec.proxy' : `spec.proxy.failover[${index - 1}]`;
    let proxy: ParsedProxy;
    try {
      if (entry.link) proxy = parseProxyLink(entry.link);
      else
        proxy = {
          type: entry.type ?? 'Socks5',
          server: checkProxyServer(entry.server ?? ''),
          port: entry.port ?? 0,
          httpOnly: entry.httpOnly,
        };
    } catch (error) {
      if (error instanceof ProxyLinkError)
        throw new ProxyConfigError(`${field}.${entry.link ? 'link' : 'server'}`, error.message);
      throw error;
    }
    if (entry.credentialsSecretRef) {
      const secretField = `${field}.credentialsSecretRef`;
      const name = entry.credentialsSecretRef.name;
      const data = await this.readSecret(name);
      if (data === undefined)
        throw new ProxyConfigError(
          secretField,
          `Secret ${name} does not exist (or is not opted in for accounts)`,
        );
      if (proxy.type === 'MTProto') {
        if (!data.secret && !proxy.secret)
          throw new ProxyConfigError(secretField, `Secret ${name} has no key "secret" for the MTProto proxy`);
        proxy = { ...proxy, secret: data.secret ?? proxy.secret };
      } else {
        if (data.username === undefined && data.password === undefined)
          throw new ProxyConfigError(secretField, `Secret ${name} has neither "username" nor "password"`);
        proxy = {
          ...proxy,
          username: data.username ?? proxy.username,
          password: data.password ?? proxy.password,
        };
      }
    }
    try {
      toTdProxy(proxy);
    } catch (error) {
      if (error instanceof ProxyLinkError) throw new ProxyConfigError(field, error.message);
      throw error;
    }
    return { id: `${index}:${proxyLabel(proxy)}`, label: proxyLabel(proxy), proxy };
  }

  /**
   * Makes TDLib's proxy list match `spec` (undefined = direct), the primary enabled. Idempotent. Throws
   * ProxyConfigError when spec cannot be used. Every TDLib request goes out before this returns a
   * promise for their answers: sent before setTdlibParameters, TDLib applies them (in order) before it
   * connects, and waiting for their answers there would wait forever (TDLib answers them only after init).
   */
  async configure(spec: ProxySpec | undefined): Promise<() => Promise<void>> {
    const wanted = JSON.stringify(spec ?? null);
    if (wanted === this.configured) return async () => undefined;
    // Build every candidate first (Secret reads): a bad entry must not leave half a list behind.
    const entries: ProxyEntry[] = spec ? [spec, ...(spec.failover ?? [])] : [];
    const built: Candidate[] = [];
    for (const [i, entry] of entries.entries()) built.push(await this.candidate(entry, i));
    const sent: Array<Promise<unknown>> = [];
    for (const c of this.candidates)
      if (c.tdId !== undefined)
        sent.push(
          this.client.invokeUnchecked({ '@type': 'removeProxy', proxy_id: c.tdId }).catch(() => undefined),
        );
    this.candidates = built;
    this.health.clear();
    this.rounds = 0;
    clearTimeout(this.timer);
    this.configured = wanted;
    if (!spec) {
      this.current = undefined;
      sent.push(this.client.invokeUnchecked({ '@type': 'disableProxy' }));
      this.report({ inUse: 'direct', message: 'no proxy configured: connecting directly' });
      return async () => {
        await Promise.all(sent);
      };
    }
    const added = built.map((c, i) =>
      this.client
        .invokeUnchecked({ '@type': 'addProxy', proxy: toTdProxy(c.proxy), enable: i === 0 })
        .then((answer) => {
          c.tdId = (answer as TdObject & { id?: number }).id;
        }),
    );
    this.current = built[0]?.id;
    this.intervalSeconds = spec.checkIntervalSeconds ?? 60;
    this.report({ inUse: built[0]?.label ?? 'direct', message: 'using the primary proxy; checking health' });
    return async () => {
      await Promise.all([...sent, ...added]);
      this.scheduleCheck(0);
    };
  }

  /** Forget what was configured, so the next configure() applies spec again (after a failure). */
  forget(): void {
    this.configured = undefined;
  }

  private scheduleCheck(ms: number): void {
    clearTimeout(this.timer);
    if (this.stopped || this.candidates.length === 0) return;
    this.timer = setTimeout(
      () =>
        void this.check().catch((e: unknown) =>
          this.logger.warn({ err: errorMessage(e) }, 'proxy check failed'),
        ),
      ms,
    );
    this.timer.unref();
  }

  private async pingAll(): Promise<void> {
    await Promise.all(
      this.candidates.map(async (c) => {
        const at = Date.now();
        try {
          const answer = (await this.client.invokeUnchecked(
            { '@type': 'pingProxy', proxy: toTdProxy(c.proxy) },
            { timeoutMs: 15_000 },
          )) as TdObject & { seconds?: number };
          this.health.set(
            c.id,
            recordPing(this.health.get(c.id), { ok: true, at, rttMs: (answer.seconds ?? 0) * 1000 }),
          );
        } catch (error) {
          this.health.set(
            c.id,
            recordPing(this.health.get(c.id), { ok: false, at, error: errorMessage(error) }),
          );
        }
      }),
    );
  }

  private async check(): Promise<void> {
    if (this.stopped || this.candidates.length === 0) return;
    await this.pingAll();
    if (this.stopped) return;
    const selection = selectProxy({
      candidates: this.candidates,
      health: this.health,
      current: this.current,
    });
    if (selection.kind === 'proxy' && (selection.changed || this.current !== selection.id)) {
      const chosen = this.candidates.find((c) => c.id === selection.id);
      if (chosen?.tdId !== undefined)
        await this.client.invokeUnchecked({ '@type': 'enableProxy', proxy_id: chosen.tdId });
      this.current = selection.id;
      this.logger.info({ proxy: chosen?.label, reason: selection.reason }, 'proxy selected');
    }
    const inUse = this.candidates.find((c) => c.id === this.current)?.label ?? 'direct';
    this.report({ inUse, message: selection.message });
    // The first rounds come quickly, so a dead primary is left within seconds; then at the interval.
    this.rounds++;
    this.scheduleCheck(this.rounds < DEFAULT_RECOVER_AFTER ? 1000 : this.intervalSeconds * 1000);
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}
