/**
 * What the API server itself allows for the kinds of writes the operator and the runtime make, measured in
 * the benchmark's own run on its own control plane: a tight client (one keep-alive agent, `inFlight`
 * requests always outstanding, no rate limit, no cache, no JSON beyond the body) does each kind of write
 * `count` times in a scratch namespace, which is emptied again before the benchmark proper starts.
 *
 * The ceiling for a workload is the rate of its write mix: if a fraction f_k of its writes are of kind k and
 * the tight client does k at r_k per second, the mix runs at 1 / sum(f_k / r_k) writes per second.
 *
 * One pass over the kinds varies by a fifth or more from the next on this machine, in the same control plane
 * (session 27: status applies at 387-554/s in four passes), so the kinds are measured in `rounds` passes, each
 * on its own objects, and each kind's ceiling is its median; each pass's own mix ceiling is kept, so a ratio
 * can be given with the spread of its ceiling.
 *
 * Given the API server's pid, it also reads what each kind cost the API server in CPU per write: a
 * workload's own cost per write against that tells whether it is held back by what it asks of the API server
 * or by how much of the machine the API server gets while it runs.
 *
 * The tight client authenticates as the benchmarked processes do, with a ServiceAccount token, and is
 * authorized by RBAC (a binding to cluster-admin): the admin certificate would cost the API server a chain
 * check per request and skip authorization, and the ratio would compare unlike requests.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { API_VERSION, type TelegramAccount } from '../../crds/index.js';
import { desiredOperatorStatus, statusApplyBody } from '../../operator/pool/account-status.js';
import { processCpuSeconds } from './proc-cpu.js';
import type { Pki } from '../cluster/pki.js';
import { waitFor } from '../cluster/wait.js';

export type WriteKind =
  | 'account-create'
  | 'account-labels'
  | 'account-status'
  | 'secret-create'
  | 'secret-update'
  | 'lease-create'
  | 'lease-update';
export const WRITE_KINDS: readonly WriteKind[] = [
  'account-create',
  'account-labels',
  'account-status',
  'secret-create',
  'secret-update',
  'lease-create',
  'lease-update',
];

export interface CeilingOptions {
  apiServerUrl: string;
  pki: Pki;
  namespace: string;
  /** Writes of each kind. */
  count: number;
  /** Requests kept in flight. */
  inFlight: number;
  /** Passes over all the kinds (one after the other, each on new objects); each kind's result is the median. */
  rounds: number;
  /** The API server's process, to read its CPU time around each kind. */
  apiServerPid?: number;
}

/** Writes per second of each kind. */
export type KindRates = Record<WriteKind, number>;

export interface Ceiling {
  /** Each kind's median over the rounds. */
  rates: KindRates;
  /** The API server's CPU milliseconds per write of each kind, the median over the rounds (with apiServerPid only). */
  apiCpuMsPerWrite: Partial<Record<WriteKind, number>>;
  /** Each round's rates, in the order measured. */
  roundRates: KindRates[];
}

/** The middle value (the mean of the two middle ones for an even count); NaN for none. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] ?? Number.NaN)
    : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/** Each kind's median over the rounds that measured it. */
export function medianByKind<K extends string>(
  rounds: readonly Partial<Record<K, number>>[],
): Partial<Record<K, number>> {
  const kinds = new Set(rounds.flatMap((r) => Object.keys(r) as K[]));
  const result: Partial<Record<K, number>> = {};
  for (const kind of kinds) {
    const values = rounds.map((r) => r[kind]).filter((v): v is number => v !== undefined);
    result[kind] = median(values);
  }
  return result;
}

export interface Call {
  method: 'POST' | 'PATCH' | 'DELETE' | 'GET';
  path: string;
  body?: unknown;
  contentType?: string;
}

class TightClient {
  private readonly agent: Agent;
  private readonly base: URL;

  /** With `token`, requests carry it as a bearer token; without, they present the admin certificate. */
  constructor(
    apiServerUrl: string,
    pki: Pki,
    inFlight: number,
    private readonly token?: string,
  ) {
    this.base = new URL(apiServerUrl);
    this.agent = new Agent({
      keepAlive: true,
      maxSockets: inFlight,
      ca: readFileSync(pki.caCert),
      ...(token === undefined && { cert: readFileSync(pki.adminCert), key: readFileSync(pki.adminKey) }),
    });
  }

  call(c: Call): Promise<{ status: number; body: string }> {
    const payload = c.body === undefined ? undefined : JSON.stringify(c.body);
    return new Promise((resolve, reject) => {
      const req = request(
        {
          agent: this.agent,
          host: this.base.hostname,
          port: this.base.port,
          method: c.method,
          path: c.path,
          headers: {
            Accept: 'application/json',
            'User-Agent': 'api-ceiling',
            ...(this.token !== undefined && { Authorization: `Bearer ${this.token}` }),
            ...(payload !== undefined && {
              'Content-Type': c.contentType ?? 'application/json',
              'Content-Length': Buffer.byteLength(payload),
            }),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
          );
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** Runs `count` calls with `inFlight` outstanding; returns calls per second. Any non-2xx fails the run. */
async function rate(
  client: TightClient,
  count: number,
  inFlight: number,
  make: (i: number) => Call,
): Promise<number> {
  let next = 0;
  const started = performance.now();
  const worker = async (): Promise<void> => {
    for (let i = next++; i < count; i = next++) {
      const response = await client.call(make(i));
      if (response.status < 200 || response.status > 299)
        throw new Error(
          `${make(i).method} ${make(i).path}: HTTP ${response.status} ${response.body.slice(0, 300)}`,
        );
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return count / ((performance.now() - started) / 1000);
}

const GROUP_PATH = `/apis/${API_VERSION}`;
const APPLY = 'application/apply-patch+yaml';
const MERGE = 'application/merge-patch+json';

const CEILING_IDENTITY = 'api-ceiling';

/**
 * A token of the ceiling's own ServiceAccount (in `default`, bound to cluster-admin), made with the admin
 * certificate; returned once RBAC (served from an informer cache) lets it list namespaces.
 */
async function ceilingToken(options: CeilingOptions): Promise<string> {
  const admin = new TightClient(options.apiServerUrl, options.pki, 1);
  try {
    const created = (r: { status: number; body: string }): void => {
      if (r.status !== 201 && r.status !== 409) throw new Error(`HTTP ${r.status} ${r.body.slice(0, 300)}`);
    };
    const account = `/api/v1/namespaces/default/serviceaccounts`;
    created(
      await admin.call({ method: 'POST', path: account, body: { metadata: { name: CEILING_IDENTITY } } }),
    );
    created(
      await admin.call({
        method: 'POST',
        path: '/apis/rbac.authorization.k8s.io/v1/clusterrolebindings',
        body: {
          metadata: { name: CEILING_IDENTITY },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'cluster-admin' },
          subjects: [{ kind: 'ServiceAccount', name: CEILING_IDENTITY, namespace: 'default' }],
        },
      }),
    );
    const issued = await admin.call({
      method: 'POST',
      path: `${account}/${CEILING_IDENTITY}/token`,
      body: { spec: { expirationSeconds: 3600 } },
    });
    const token = (JSON.parse(issued.body) as { status?: { token?: string } }).status?.token;
    if (!token)
      throw new Error(`no token for ServiceAccount default/${CEILING_IDENTITY}: HTTP ${issued.status}`);
    const probe = new TightClient(options.apiServerUrl, options.pki, 1, token);
    try {
      await waitFor(
        `ServiceAccount default/${CEILING_IDENTITY} to be authorized`,
        async () =>
          (await probe.call({ method: 'GET', path: '/api/v1/namespaces?limit=1' })).status === 200 ||
          undefined,
        { timeoutMs: 30_000, intervalMs: 100 },
      );
    } finally {
      probe.close();
    }
    return token;
  } finally {
    admin.close();
  }
}

/** Measures each kind of write; leaves the scratch namespace empty and deleted. */
export async function measureApiCeiling(options: CeilingOptions): Promise<Ceiling> {
  const { namespace, rounds } = options;
  if (!Number.isInteger(rounds) || rounds < 1)
    throw new Error(`rounds must be a whole number >= 1, not ${rounds}`);
  const client = new TightClient(
    options.apiServerUrl,
    options.pki,
    options.inFlight,
    await ceilingToken(options),
  );
  const accounts = `${GROUP_PATH}/namespaces/${namespace}/telegramaccounts`;
  try {
    await client.call({
      method: 'POST',
      path: '/api/v1/namespaces',
      body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } },
    });
    const roundRates: KindRates[] = [];
    const roundCpu: Ceiling['apiCpuMsPerWrite'][] = [];
    for (let round = 0; round < rounds; round++) {
      const measured = await measureRound(client, options, round);
      roundRates.push(measured.rates);
      roundCpu.push(measured.apiCpuMsPerWrite);
    }
    return {
      rates: medianByKind(roundRates) as KindRates,
      apiCpuMsPerWrite: medianByKind(roundCpu),
      roundRates,
    };
  } finally {
    // Emptied before the benchmark proper, so the namespace controller's cleanup does not compete with it.
    for (const path of [
      accounts,
      `/api/v1/namespaces/${namespace}/secrets`,
      `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`,
    ]) {
      await client.call({ method: 'DELETE', path });
      await waitFor(
        `${path} empty`,
        async () => {
          const list = await client.call({ method: 'GET', path: `${path}?limit=1` });
          return (JSON.parse(list.body) as { items?: unknown[] }).items?.length === 0 ? true : undefined;
        },
        { timeoutMs: 120_000, intervalMs: 500 },
      );
    }
    await client.call({ method: 'DELETE', path: `/api/v1/namespaces/${namespace}` });
    client.close();
  }
}

/**
 * The status apply the operator sends for an account it has just placed on a pod that has not reported it
 * yet (placement, Scheduled, Ready=Unknown), made by the operator's own functions: the ceiling's write is the
 * operator's write, not a smaller one (one condition fewer cost the API server about 9 % less, session 31).
 */
export function operatorStatusApply(name: string, namespace: string, now: Date): Call {
  const account: TelegramAccount = {
    apiVersion: API_VERSION,
    kind: 'TelegramAccount',
    metadata: { name, namespace, generation: 1 },
    spec: { type: 'Bot', botTokenSecretRef: { name: 'bot' }, apiCredentialsSecretRef: { name: 'api' } },
  };
  const status = desiredOperatorStatus(
    account,
    {
      pool: 'alpha',
      inputs: { ok: true },
      outcome: { pod: 'tdlib-runtime-alpha-0' },
      podHealth: () => ({ state: 'alive' }),
    },
    now,
  );
  return {
    method: 'PATCH',
    path: `${GROUP_PATH}/namespaces/${namespace}/telegramaccounts/${name}/status?fieldManager=api-ceiling&force=true`,
    contentType: APPLY,
    body: statusApplyBody(account, status),
  };
}

/** One pass over every kind, on objects of its own (named after the round). */
async function measureRound(
  client: TightClient,
  options: CeilingOptions,
  round: number,
): Promise<{ rates: KindRates; apiCpuMsPerWrite: Ceiling['apiCpuMsPerWrite'] }> {
  const { count, inFlight, namespace, apiServerPid } = options;
  const name = (i: number): string => `ceiling-${round}-${String(i).padStart(6, '0')}`;
  const accounts = `${GROUP_PATH}/namespaces/${namespace}/telegramaccounts`;
  const rates = {} as KindRates;
  const apiCpuMsPerWrite: Ceiling['apiCpuMsPerWrite'] = {};
  const measure = async (kind: WriteKind, make: (i: number) => Call): Promise<void> => {
    const before = processCpuSeconds(apiServerPid);
    rates[kind] = await rate(client, count, inFlight, make);
    if (apiServerPid !== undefined)
      apiCpuMsPerWrite[kind] = ((processCpuSeconds(apiServerPid) - before) * 1000) / count;
  };
  await measure('account-create', (i) => ({
    method: 'POST',
    path: accounts,
    body: {
      apiVersion: API_VERSION,
      kind: 'TelegramAccount',
      metadata: { name: name(i), namespace },
      spec: { type: 'Bot', botTokenSecretRef: { name: 'bot' }, apiCredentialsSecretRef: { name: 'api' } },
    },
  }));
  await measure('account-labels', (i) => ({
    method: 'PATCH',
    path: `${accounts}/${name(i)}?fieldManager=api-ceiling&force=true`,
    contentType: APPLY,
    body: {
      apiVersion: API_VERSION,
      kind: 'TelegramAccount',
      metadata: {
        name: name(i),
        namespace,
        labels: { 'bench.tdlib-operator.dev/placed': 'tdlib-runtime-alpha-0' },
      },
    },
  }));
  const placedAt = new Date();
  await measure('account-status', (i) => operatorStatusApply(name(i), namespace, placedAt));
  await measure('secret-create', (i) => ({
    method: 'POST',
    path: `/api/v1/namespaces/${namespace}/secrets`,
    body: {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: name(i), namespace },
      data: { key: randomBytes(32).toString('base64') },
    },
  }));
  // A session backup: the runtime replaces the Secret's data.
  await measure('secret-update', (i) => ({
    method: 'PATCH',
    path: `/api/v1/namespaces/${namespace}/secrets/${name(i)}`,
    contentType: MERGE,
    body: { data: { session: randomBytes(2048).toString('base64') } },
  }));
  await measure('lease-create', (i) => ({
    method: 'POST',
    path: `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases`,
    body: { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: name(i), namespace } },
  }));
  // A take-over: the holder and its times change.
  await measure('lease-update', (i) => ({
    method: 'PATCH',
    path: `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases/${name(i)}`,
    contentType: MERGE,
    body: {
      spec: {
        holderIdentity: `tdlib-runtime-alpha-0/uid/${String(i)}`,
        leaseDurationSeconds: 15,
        acquireTime: new Date().toISOString().replace('Z', '000Z'),
        renewTime: new Date().toISOString().replace('Z', '000Z'),
      },
    },
  }));
  return { rates, apiCpuMsPerWrite };
}

/** The kind of an audited write ("verb resource[/subresource]"), or undefined for other writes. */
export function kindOfAudited(verb: string, resource: string): WriteKind | undefined {
  if (resource === 'telegramaccounts' && verb === 'create') return 'account-create';
  if (resource === 'telegramaccounts' && (verb === 'patch' || verb === 'update')) return 'account-labels';
  if (resource === 'telegramaccounts/status') return 'account-status';
  if (resource === 'secrets' && verb === 'create') return 'secret-create';
  if (resource === 'secrets' && (verb === 'update' || verb === 'patch')) return 'secret-update';
  if (resource === 'leases' && verb === 'create') return 'lease-create';
  if (resource === 'leases' && (verb === 'update' || verb === 'patch')) return 'lease-update';
  return undefined;
}

/**
 * The ceiling of a write mix: 1 / sum(f_k / r_k) over the kinds measured. Writes of other kinds (pool
 * objects, Events: a few per pool, not per account) count at the mix's own average cost.
 */
export function mixCeiling(counts: Partial<Record<WriteKind, number>>, rates: KindRates): number {
  const total = WRITE_KINDS.reduce((sum, k) => sum + (counts[k] ?? 0), 0);
  if (total === 0) return 0;
  const secondsPerWrite = WRITE_KINDS.reduce((sum, k) => sum + (counts[k] ?? 0) / total / rates[k], 0);
  return 1 / secondsPerWrite;
}

/** The ceiling of a write mix at each round's rates: how far the ceiling itself moved within the run. */
export function mixCeilingByRound(
  counts: Partial<Record<WriteKind, number>>,
  roundRates: readonly KindRates[],
): number[] {
  return roundRates.map((rates) => mixCeiling(counts, rates));
}

/** A workload's rate against each round's ceiling: a line to print and the figures for the JSON result. */
export function roundsReport(
  achieved: number,
  roundCeilings: readonly number[],
): {
  text: string;
  figures: {
    api_ceiling_rounds: number;
    api_ceiling_writes_per_s_by_round: number[];
    ceiling_ratio_by_round: number[];
  };
} {
  return {
    text: roundCeilings.map((c) => `${c.toFixed(0)} (${(achieved / c).toFixed(2)})`).join(', '),
    figures: {
      api_ceiling_rounds: roundCeilings.length,
      api_ceiling_writes_per_s_by_round: roundCeilings.map((c) => Number(c.toFixed(1))),
      ceiling_ratio_by_round: roundCeilings.map((c) => Number((achieved / c).toFixed(3))),
    },
  };
}

/**
 * What a write mix would cost the API server in CPU milliseconds per account at the ceiling's cost per write
 * of each kind; writes of kinds not measured are left out (a few per pool, not per account).
 */
export function mixCpuMsPerAccount(
  counts: Partial<Record<WriteKind, number>>,
  apiCpuMsPerWrite: Partial<Record<WriteKind, number>>,
  accounts: number,
): number {
  if (accounts <= 0) return 0;
  return WRITE_KINDS.reduce((sum, k) => sum + ((counts[k] ?? 0) * (apiCpuMsPerWrite[k] ?? 0)) / accounts, 0);
}

/** Counts audited writes in [from, to) by "user verb resource", e.g. "tdlib-operator patch telegramaccounts/status". */
export function writesByResource(
  auditLog: string,
  from: number,
  to: number,
  onlyAgent?: string,
): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const line of readFileSync(auditLog, 'utf8').split('\n')) {
    if (!line) continue;
    const event = JSON.parse(line) as {
      stage: string;
      verb: string;
      user?: { username?: string };
      userAgent?: string;
      objectRef?: { resource?: string; subresource?: string };
      requestReceivedTimestamp: string;
    };
    if (event.stage !== 'ResponseComplete') continue;
    const at = Date.parse(event.requestReceivedTimestamp);
    if (at < from || at >= to) continue;
    const agent = (event.userAgent ?? '').split('/')[0] ?? '';
    if (onlyAgent !== undefined && agent !== onlyAgent) continue;
    const resource = `${event.objectRef?.resource ?? ''}${event.objectRef?.subresource ? `/${event.objectRef.subresource}` : ''}`;
    const key = `${agent} ${event.verb} ${resource}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

/** One process's audited writes in [from, to): by kind, per account by "verb resource", and in total. */
export function auditedWrites(
  auditLog: string,
  from: number,
  to: number,
  agent: string,
  accounts: number,
): { byKind: Partial<Record<WriteKind, number>>; perAccount: Record<string, number>; total: number } {
  const byKind: Partial<Record<WriteKind, number>> = {};
  const perAccount: Record<string, number> = {};
  let total = 0;
  for (const [key, count] of Object.entries(writesByResource(auditLog, from, to, agent))) {
    const [, verb = '', resource = ''] = key.split(' ');
    total += count;
    perAccount[`${verb} ${resource}`] = Number((count / accounts).toFixed(3));
    const kind = kindOfAudited(verb, resource);
    if (kind) byKind[kind] = (byKind[kind] ?? 0) + count;
  }
  return { byKind, perAccount, total };
}
