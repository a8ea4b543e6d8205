/**
 * The proxies of one hosted client: spec.proxy (primary + failover) added to TDLib, checked with pingProxy,
 * and the one to use chosen by selectProxy (which keeps a healthy proxy and fails over only after repeated
 * failures). Removing spec.proxy removes them all and reconnects directly.
 */
import type { TelegramAccountSpec } from '../../crds/index.js';
import type { Logger } from '../../operator/kube/logging.js';
import { parseProxyLink, proxyLabel, toTdProxy, type ParsedProxy } from '../proxy/links.js';
import { DEFAULT_FAIL_AFTER, recordPing, selectProxy, type ProxyHealth } from '../proxy/select.js';
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

export class ProxyManager {
  private candidates: Candidate[] = [];
  private configured = '';
  private health = new Map<string, ProxyHealth>();
  private current?: string;
  private timer?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    private readonly client: TdClient,
    private readonly readSecret: SecretReader,
    private readonly logger: Logger,
    private readonly report: (proxy: { inUse: string; message?: string }) => void,
  ) {}

  private async candidate(entry: ProxyEntry, index: number): Promise<Candidate> {
    let proxy: ParsedProxy;
    if (entry.link) proxy = parseProxyLink(entry.link);
    else
      proxy = {
        type: entry.type ?? 'Socks5',
        server: entry.server ?? '',
        port: entry.port ?? 0,
        httpOnly: entry.httpOnly,
      };
    if (entry.credentialsSecretRef) {
      const data = (await this.readSecret(entry.credentialsSecretRef.name)) ?? {};
      if (proxy.type === 'MTProto') proxy = { ...proxy, secret: data.secret ?? proxy.secret };
      else
        proxy = {
          ...proxy,
          username: data.username ?? proxy.username,
          password: data.password ?? proxy.password,
        };
    }
    return { id: `${index}:${proxyLabel(proxy)}`, label: proxyLabel(proxy), proxy };
  }

  /** Applies spec.proxy (undefined = direct). Idempotent: an unchanged spec only re-checks health. */
  async apply(spec: ProxySpec | undefined): Promise<void> {
    const wanted = JSON.stringify(spec ?? null);
    if (wanted !== this.configured) {
      this.configured = wanted;
      for (const c of this.candidates)
        if (c.tdId !== undefined)
          await this.client
            .invokeUnchecked({ '@type': 'removeProxy', proxy_id: c.tdId })
            .catch(() => undefined);
      this.candidates = [];
      this.health.clear();
      this.current = undefined;
      clearTimeout(this.timer);
      if (!spec) {
        await this.client.invokeUnchecked({ '@type': 'disableProxy' }).catch(() => undefined);
        this.report({ inUse: 'direct', message: 'no proxy configured: connecting directly' });
        return;
      }
      const entries: ProxyEntry[] = [spec, ...(spec.failover ?? [])];
      for (const [i, entry] of entries.entries()) {
        const c = await this.candidate(entry, i);
        const added = (await this.client.invokeUnchecked({
          '@type': 'addProxy',
          proxy: toTdProxy(c.proxy),
          enable: false,
        })) as TdObject & { id?: number };
        c.tdId = added.id;
        this.candidates.push(c);
      }
      // Enough pings up front that a dead primary is never enabled first.
      for (let round = 1; round < DEFAULT_FAIL_AFTER; round++) await this.pingAll();
    }
    await this.check(spec?.checkIntervalSeconds ?? 60);
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
            recordPing(this.health.get(c.id), {
              ok: false,
              at,
              error: error instanceof Error ? error.message : String(error),
            }),
          );
        }
      }),
    );
  }

  private async check(intervalSeconds: number): Promise<void> {
    if (this.stopped || this.candidates.length === 0) return;
    await this.pingAll();
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
    clearTimeout(this.timer);
    this.timer = setTimeout(
      () =>
        void this.check(intervalSeconds).catch((e: unknown) =>
          this.logger.warn({ err: String(e) }, 'proxy check failed'),
        ),
      intervalSeconds * 1000,
    );
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }
}
