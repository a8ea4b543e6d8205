/**
 * The runtime in process, for the integration tier (a real apiserver, no kwok, so no pods run): the test
 * plays the runtime pod `tdlib-runtime-<pool>-<n>` by building what runtime/main.ts builds — a RestClient and
 * a separate one for Leases, an EventRecorder, the SimulatorBackend, a TdClientManager and the RuntimeAgent —
 * with small Lease durations, so the session fence, backups, stops and recoveries can be driven and observed
 * step by step. The agent authenticates as its pool's ServiceAccount, which the real operator (a child
 * process) creates with the pool's Role, Leases, key and session Secrets and the placement label.
 */
import { randomUUID } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import * as k8s from '@kubernetes/client-node';
import { parse, stringify } from 'yaml';
import {
  API_VERSION,
  TELEGRAM_ACCOUNT_KIND,
  TelegramAccountResource,
  accountLeaseName,
  runtimePodName,
  sessionSecretName,
  type TelegramAccount,
} from '../../crds/index.js';
import { RestClient, loadKubeConfig, type WriteOptions } from '../../operator/kube/client.js';
import type { Controller } from '../../operator/kube/controller.js';
import { isAlreadyExists, isNotFound } from '../../operator/kube/errors.js';
import { EventRecorder } from '../../operator/kube/events.js';
import type { LeaseObject } from '../../operator/kube/lease.js';
import { createLogger } from '../../operator/kube/logging.js';
import { createRegistry } from '../../operator/kube/metrics.js';
import { Resources, type ApiObject, type ResourceDescriptor } from '../../operator/kube/resource.js';
import { RuntimeAgent } from '../../runtime/agent.js';
import { loadRuntimeConfig } from '../../runtime/config.js';
import { SimulatorBackend } from '../../runtime/simulator/backend.js';
import { World } from '../../runtime/simulator/world.js';
import { TdClientManager } from '../../runtime/tdlib/client.js';
import { waitFor } from '../cluster/wait.js';
import { createTestNamespace, testCluster } from './cluster.js';
import { installCrds } from './crds.js';
import { metricSum, operatorKubeconfig, startOperatorProcess, type OperatorProcess } from './operator.js';
import { DEMO_API_CREDENTIALS, SECRET_OPT_IN, serviceAccountKubeconfig } from './runtime.js';

export type Account = TelegramAccount & ApiObject;
export type SecretObject = ApiObject & { data?: Record<string, string> };
export type LeaseApiObject = LeaseObject & ApiObject;
export interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  verbs: string[];
}
export type RoleObject = ApiObject & { rules?: PolicyRule[] };
type AccessReview = ApiObject & { status?: { allowed?: boolean } };
const SelfSubjectAccessReview: ResourceDescriptor = {
  group: 'authorization.k8s.io',
  version: 'v1',
  plural: 'selfsubjectaccessreviews',
  kind: 'SelfSubjectAccessReview',
  namespaced: false,
};
export interface EventObject extends ApiObject {
  type?: string;
  reason?: string;
  message?: string;
  count?: number;
  involvedObject?: { name?: string; kind?: string };
  source?: { component?: string };
}

/** The suspended account that keeps the pool from emptying (bot 1). */
export const ANCHOR = 'anchor';
/** The demo world's bot is bot 1; the test world adds bots 2..BOTS, one per test that needs a fresh one. */
export const BOTS = 24;
export const botUserId = (n: number): number => 7000000000 + n;
export const botToken = (n: number): string =>
  n === 1 ? '7000000001:AAH-demo-simulator-token' : `${botUserId(n)}:AAH-agent-test-bot-${n}`;

/**
 * A private copy of the demo world (config/samples/simulator-world.yaml) with BOTS - 1 more bots, so every
 * test logs in its own bot and the world's logins, log-outs and sessions of one test are its own.
 */
export function agentWorld(): string {
  const dir = mkdtempSync(join(tmpdir(), 'tdlib-agent-world-'));
  cpSync(resolve('config/samples/simulator-world.yaml'), join(dir, 'world.yaml'));
  const world = parse(readFileSync(join(dir, 'world.yaml'), 'utf8')) as {
    users: Array<Record<string, unknown>>;
  };
  for (let n = 2; n <= BOTS; n++)
    world.users.push({
      id: botUserId(n),
      first_name: `Agent Test Bot ${n}`,
      username: `agent_test_${n}_bot`,
      bot: { token: botToken(n) },
    });
  writeFileSync(join(dir, 'world.yaml'), stringify(world));
  return dir;
}

/** A RestClient whose writes can be held by the test (a slow apiserver for exactly the requests it picks). */
export class GatedRestClient extends RestClient {
  /** Called before every PUT and POST; the write goes out when the returned promise resolves. */
  beforeWrite?: (resource: ResourceDescriptor, obj: ApiObject) => Promise<void> | void;

  override async create<T extends ApiObject = ApiObject>(
    resource: ResourceDescriptor,
    obj: T,
    options: WriteOptions = {},
  ): Promise<T> {
    await this.beforeWrite?.(resource, obj);
    return super.create<T>(resource, obj, options);
  }

  override async replace<T extends ApiObject = ApiObject>(
    resource: ResourceDescriptor,
    obj: T,
    options: WriteOptions & { subresource?: string } = {},
  ): Promise<T> {
    await this.beforeWrite?.(resource, obj);
    return super.replace<T>(resource, obj, options);
  }
}

/**
 * Records every write the agent sends to one Lease (the holder it writes, '' for a release; the first may
 * be the create that takes it), for
 * AgentOptions.beforeWrite. With `holdFirst`, the first one waits until `letGo()`: an acquisition in flight.
 */
export class LeaseWrites {
  readonly holders: string[] = [];
  private reachedFirst = false;
  private release!: () => void;
  private readonly gate = new Promise<void>((resolve) => (this.release = resolve));

  constructor(
    private readonly leaseName: string,
    private readonly holdFirst = false,
  ) {}

  /** The held first write has been sent to us (and waits). */
  get reached(): boolean {
    return this.reachedFirst;
  }

  letGo(): void {
    this.release();
  }

  readonly beforeWrite = async (resource: ResourceDescriptor, obj: ApiObject): Promise<void> => {
    if (resource.kind !== 'Lease' || obj.metadata?.name !== this.leaseName) return;
    this.holders.push((obj as LeaseObject).spec?.holderIdentity ?? '');
    if (this.holdFirst && this.holders.length === 1) {
      this.reachedFirst = true;
      await this.gate;
    }
  };
}

export interface AgentOptions {
  namespace: string;
  kubeconfig: string;
  worldDir: string;
  pool?: string;
  /** Default tdlib-runtime-<pool>-0. */
  pod?: string;
  /** The pod's volume; a fresh directory by default. Pass the previous one to model a restarted container. */
  dataDir?: string;
  leaseSeconds?: number;
  /** Installed on the Lease client before the agent starts (see GatedRestClient.beforeWrite). */
  beforeWrite?: GatedRestClient['beforeWrite'];
}

export interface InProcessAgent {
  readonly pod: string;
  readonly dataDir: string;
  readonly agent: RuntimeAgent;
  readonly backend: SimulatorBackend;
  readonly manager: TdClientManager;
  /** The Lease client, whose PUTs a test may hold (GatedRestClient.beforeWrite). */
  readonly leaseRest: GatedRestClient;
  /** Reconciles of accounts the agent ran so far (controller_runtime_reconcile_total). */
  reconciles: () => Promise<number>;
  /** This incarnation's holder identity (`<pod>/<uid>/<nonce>`). */
  readonly identity: string;
  /** Every JSON log line so far. */
  logs: () => string;
  /** SIGTERM: agent.shutdown (close, back up, release), then close what main.ts closes. */
  stop: (budgetMs?: number) => Promise<{ unfinished: number }>;
  /**
   * A crash (SIGKILL): the controller loops stop, the heartbeat is abandoned (neither renewed nor released),
   * the backend goes away without closing its clients, the connections drop. Nothing is backed up or released.
   */
  crash: () => Promise<void>;
}

/** Builds and starts what runtime/main.ts builds, in this process. Resolves once the heartbeat is held. */
export async function startAgent(options: AgentOptions): Promise<InProcessAgent> {
  const pool = options.pool ?? 'default';
  const pod = options.pod ?? runtimePodName(pool, 0);
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), `tdlib-agent-data-${pod}-`));
  const config = loadRuntimeConfig({
    POD_NAME: pod,
    POD_NAMESPACE: options.namespace,
    POD_UID: randomUUID(),
    RUNTIME_POOL: pool,
    TDLIB_BACKEND: 'simulator',
    TDLIB_SIMULATOR_WORLD: options.worldDir,
    TDLIB_DATA_DIR: dataDir,
    RUNTIME_LEASE_SECONDS: String(options.leaseSeconds ?? 3),
    RUNTIME_WORKERS: '4',
    LOG_LEVEL: 'info',
  });
  let output = '';
  const logger = createLogger({
    name: 'tdlib-runtime',
    level: config.LOG_LEVEL,
    destination: new Writable({
      write(chunk: Buffer | string, _encoding, done) {
        output += chunk.toString();
        done();
      },
    }),
  }).child({ pod });
  const registry = createRegistry();
  const rest = new RestClient(loadKubeConfig(options.kubeconfig), {
    registry,
    logger,
    userAgent: `tdlib-runtime/${pod}`,
  });
  const leaseRest = new GatedRestClient(loadKubeConfig(options.kubeconfig), {
    registry: createRegistry(),
    logger,
    maxConcurrentRequests: 16,
    userAgent: `tdlib-runtime/${pod}/leases`,
  });
  leaseRest.beforeWrite = options.beforeWrite;
  const events = new EventRecorder(rest, { component: 'tdlib-runtime', host: pod, logger, registry });
  const backend = new SimulatorBackend({
    worldDir: options.worldDir,
    logger: logger.child({ component: 'simulator' }),
  });
  const manager = new TdClientManager(backend);
  const agent = new RuntimeAgent({
    rest,
    leaseRest,
    manager,
    events,
    logger,
    registry,
    config,
    applicationVersion: '0.1.0-agent-test',
  });
  let started: true | undefined;
  let startError: unknown;
  void agent.start().then(
    () => (started = true),
    (error: unknown) => (startError = error),
  );
  const closeConnections = async (): Promise<void> => {
    await events.close();
    await rest.close();
    await leaseRest.close();
  };
  try {
    // Started once the heartbeat is held (after a previous holder let it go, or it expired).
    await waitFor(
      'the agent to start',
      () => {
        if (startError !== undefined) throw startError;
        return started;
      },
      { timeoutMs: 30_000, onTimeout: () => output.slice(-3000) },
    );
  } catch (error) {
    await agent.shutdown(1000).catch(() => undefined);
    await backend.close();
    await closeConnections();
    throw error;
  }
  return {
    pod,
    dataDir,
    agent,
    backend,
    manager,
    leaseRest,
    reconciles: async () =>
      metricSum(await registry.metrics(), 'controller_runtime_reconcile_total', {
        controller: 'runtime-accounts',
      }),
    identity: agent.fence.identity,
    logs: () => output,
    stop: async (budgetMs = 20_000) => {
      const result = await agent.shutdown(budgetMs);
      await manager.closeAll({ timeoutMs: 10_000 });
      await backend.close();
      await closeConnections();
      return result;
    },
    crash: async () => {
      // The agent's work loops, as a dead process has none (private: nothing else may stop them alone).
      await (agent as unknown as { controller: Controller }).controller.stop();
      await agent.accounts.stop();
      // The campaign runner's watches too: left running, they kept the test process alive after the run.
      await agent.campaigns.abandon();
      await agent.fence.abandon();
      await backend.close();
      await rest.close();
      await leaseRest.close();
    },
  };
}

/**
 * One namespace with the CRDs, a private world, the operator running as its ServiceAccount (a child process,
 * restartable), the Secrets the accounts name (opted in), and helpers to drive and observe accounts.
 */
export class AgentScene {
  readonly kc: k8s.KubeConfig;
  /** Admin access for the test's own reads and writes. */
  readonly rest: RestClient;
  operator?: OperatorProcess;
  private operatorConfig = '';
  private runtimeConfig = '';
  private readonly agents: InProcessAgent[] = [];

  private constructor(
    readonly namespace: string,
    readonly worldDir: string,
    kc: k8s.KubeConfig,
  ) {
    this.kc = kc;
    this.rest = new RestClient(loadKubeConfig(testCluster().kubeconfigPath), { registry: createRegistry() });
  }

  static async start(kc: k8s.KubeConfig, prefix: string): Promise<AgentScene> {
    await installCrds(kc);
    const namespace = await createTestNamespace(kc, prefix);
    const scene = new AgentScene(namespace, agentWorld(), kc);
    scene.operatorConfig = await operatorKubeconfig();
    scene.startOperator();
    await scene.createSecret('api', DEMO_API_CREDENTIALS);
    for (let n = 1; n <= BOTS; n++) await scene.createSecret(`bot-${n}`, { token: botToken(n) });
    // A suspended account that stays: the pool never empties between tests, so its Role keeps naming pod 0's
    // heartbeat Lease (an empty pool's Role does not, and a stopping agent could not release it: the pod would
    // then be declared dead and the next test's accounts placed elsewhere).
    await scene.createBot(ANCHOR, 1, { suspend: true });
    return scene;
  }

  get world(): World {
    return World.open(this.worldDir);
  }

  startOperator(): OperatorProcess {
    this.operator = startOperatorProcess(this.operatorConfig, {
      WATCH_NAMESPACE: this.namespace,
      RUNTIME_BACKEND: 'simulator',
    });
    return this.operator;
  }

  async stopOperator(): Promise<void> {
    await this.operator?.stop();
    this.operator = undefined;
  }

  /** The pool's ServiceAccount (created by the operator once an account of the pool exists). */
  async runtimeKubeconfig(pool = 'default'): Promise<string> {
    if (!this.runtimeConfig)
      this.runtimeConfig = await serviceAccountKubeconfig(this.kc, this.namespace, `tdlib-runtime-${pool}`);
    return this.runtimeConfig;
  }

  async startAgent(options: Partial<AgentOptions> = {}): Promise<InProcessAgent> {
    const agent = await startAgent({
      namespace: this.namespace,
      kubeconfig: await this.runtimeKubeconfig(options.pool),
      worldDir: this.worldDir,
      ...options,
    });
    this.agents.push(agent);
    return agent;
  }

  /** Stops (gracefully) every agent a test left running, e.g. after it failed. */
  async stopAgents(): Promise<void> {
    for (const agent of this.agents.splice(0)) await agent.stop(5000).catch(() => undefined);
  }

  /**
   * After each test, also one that failed half-way: no agent left running, the operator running, the world
   * without test-side faults.
   */
  async afterTest(): Promise<void> {
    await this.stopAgents();
    if (!this.operator) this.startOperator();
    this.world.resetOverrides();
  }

  /** Stops every agent still running, the operator, and the admin client. */
  async close(): Promise<void> {
    await this.stopAgents();
    await this.stopOperator();
    await this.rest.close();
  }

  /** Stops (gracefully) one agent started through the scene. */
  async stopAgent(agent: InProcessAgent, budgetMs?: number): Promise<{ unfinished: number }> {
    this.agents.splice(this.agents.indexOf(agent), 1);
    return agent.stop(budgetMs);
  }

  async crashAgent(agent: InProcessAgent): Promise<void> {
    this.agents.splice(this.agents.indexOf(agent), 1);
    await agent.crash();
  }

  diagnostics(): string {
    const hosted = (a: InProcessAgent): string =>
      [...a.agent.hosted.entries()]
        .map(
          ([id, h]) => `${id}: client ${h.clientId ?? '-'} lease ${h.holdsLease} ${JSON.stringify(h.view)}`,
        )
        .join('\n');
    const agents = this.agents
      .map((a) => `--- agent ${a.pod}:\n${a.logs().slice(-6000)}\n--- hosted:\n${hosted(a)}`)
      .join('\n');
    return `${agents}\n--- operator:\n${this.operator?.rawOutput().slice(-3000) ?? '(not running)'}`;
  }

  // ---- objects ------------------------------------------------------------------------------------

  async createSecret(name: string, stringData: Record<string, string>, optIn = true): Promise<void> {
    const data = Object.fromEntries(
      Object.entries(stringData).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
    );
    try {
      await this.rest.create(Resources.Secret, {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name, namespace: this.namespace, labels: optIn ? SECRET_OPT_IN : {} },
        data,
      } as SecretObject);
    } catch (error) {
      if (!isAlreadyExists(error)) throw error;
    }
  }

  /** A bot account of bot `n` (its token Secret is `bot-<n>`). */
  async createBot(name: string, n: number, spec: Record<string, unknown> = {}): Promise<Account> {
    return this.rest.create(TelegramAccountResource, {
      apiVersion: API_VERSION,
      kind: TELEGRAM_ACCOUNT_KIND,
      metadata: { name, namespace: this.namespace },
      spec: {
        type: 'Bot',
        botTokenSecretRef: { name: `bot-${n}` },
        apiCredentialsSecretRef: { name: 'api' },
        ...spec,
      },
    } as ApiObject) as Promise<Account>;
  }

  account(name: string): Promise<Account> {
    return this.rest.get<Account>(TelegramAccountResource, this.namespace, name);
  }

  async accountOrUndefined(name: string): Promise<Account | undefined> {
    try {
      return await this.account(name);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  patchSpec(name: string, spec: Record<string, unknown>): Promise<Account> {
    return this.rest.mergePatch<Account>(TelegramAccountResource, this.namespace, name, { spec });
  }

  /** Places the account on `pod` as the operator does (status.placement): only while the operator is stopped. */
  placeOn(name: string, pod: string): Promise<Account> {
    const pool = /^tdlib-(?:runtime|canary)-(.+)-\d+$/.exec(pod)?.[1] ?? 'default';
    return this.rest.mergePatch<Account>(
      TelegramAccountResource,
      this.namespace,
      name,
      { status: { placement: { pool, pod } } },
      { subresource: 'status' },
    );
  }

  /** Deletes an account and, while the operator runs, waits until its finalizer let it go. */
  async deleteAccount(name: string, options: { wait?: boolean } = {}): Promise<void> {
    try {
      await this.rest.delete(TelegramAccountResource, this.namespace, name);
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
    if (!this.operator || options.wait === false) return;
    await waitFor(`${name} deleted`, async () => ((await this.accountOrUndefined(name)) ? undefined : true), {
      timeoutMs: 30_000,
      onTimeout: () => this.diagnostics(),
    });
  }

  /**
   * Rewrites the pool's Role (as someone editing it, or RBAC not yet propagated would) and returns what puts
   * the operator's rules back. The operator re-applies its Role only when its intent changes (accounts of the
   * pool come or go), so a test keeps the pool's accounts unchanged meanwhile.
   */
  async editRuntimeRole(
    change: (rules: PolicyRule[]) => PolicyRule[],
    pool = 'default',
  ): Promise<() => Promise<void>> {
    const name = `tdlib-runtime-${pool}`;
    const role = await this.rest.get<RoleObject>(Resources.Role, this.namespace, name);
    const original = role.rules ?? [];
    await this.rest.replace(Resources.Role, { ...role, rules: change(structuredClone(original)) });
    return async () => {
      const current = await this.rest.get<RoleObject>(Resources.Role, this.namespace, name);
      await this.rest.replace(Resources.Role, { ...current, rules: original });
    };
  }

  /** What the apiserver answers the pool's ServiceAccount now (a SelfSubjectAccessReview as that account). */
  async runtimeMay(
    verb: string,
    resource: string,
    name: string,
    group = '',
    subresource?: string,
  ): Promise<boolean> {
    const rest = new RestClient(loadKubeConfig(await this.runtimeKubeconfig()), {
      registry: createRegistry(),
    });
    try {
      const review = await rest.create<AccessReview>(SelfSubjectAccessReview, {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SelfSubjectAccessReview',
        metadata: {},
        spec: { resourceAttributes: { namespace: this.namespace, verb, group, resource, subresource, name } },
      } as AccessReview);
      return review.status?.allowed === true;
    } finally {
      await rest.close();
    }
  }

  lease(name: string): Promise<LeaseApiObject> {
    return this.rest.get<LeaseApiObject>(Resources.Lease, this.namespace, name);
  }

  accountLease(account: string): Promise<LeaseApiObject> {
    return this.lease(accountLeaseName(account));
  }

  secret(name: string): Promise<SecretObject> {
    return this.rest.get<SecretObject>(Resources.Secret, this.namespace, name);
  }

  async secretOrUndefined(name: string): Promise<SecretObject | undefined> {
    try {
      return await this.secret(name);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  sessionSecret(account: string): Promise<SecretObject> {
    return this.secret(sessionSecretName(account));
  }

  /** Events about `involved` (an account name), optionally of one reason. */
  async events(involved: string, reason?: string): Promise<EventObject[]> {
    const list = await this.rest.list<EventObject>(Resources.Event, { namespace: this.namespace });
    return list.items.filter(
      (e) => e.involvedObject?.name === involved && (reason === undefined || e.reason === reason),
    );
  }

  // ---- waits --------------------------------------------------------------------------------------

  /** The first Event about `involved` with `reason` whose message passes `test`. */
  waitForEvent(
    involved: string,
    reason: string,
    test: (e: EventObject) => boolean = () => true,
    timeoutMs = 30_000,
  ): Promise<EventObject> {
    return waitFor(
      `Event ${reason} about ${involved}`,
      async () => (await this.events(involved, reason)).find(test),
      { timeoutMs, intervalMs: 250, onTimeout: () => this.diagnostics() },
    );
  }

  waitForAccount(
    name: string,
    what: string,
    test: (a: Account) => boolean,
    timeoutMs = 30_000,
  ): Promise<Account> {
    return waitFor(
      `${name}: ${what}`,
      async () => {
        const a = await this.account(name);
        return test(a) ? a : undefined;
      },
      { timeoutMs, intervalMs: 200, onTimeout: () => this.diagnostics() },
    );
  }

  /**
   * Placed on `pod`, with the session Secret (holding the key) the operator makes, and the pool's Role naming
   * the account Lease, which the runtime then may create.
   */
  async waitForPlacement(name: string, pod = runtimePodName('default', 0)): Promise<Account> {
    const account = await this.waitForAccount(
      name,
      `placed on ${pod}`,
      (a) => a.status?.placement?.pod === pod,
    );
    const role = pod.replace(/-\d+$/, '');
    await waitFor(
      `${name}: session Secret with its key, and Role ${role} naming its Lease`,
      async () =>
        (await this.secretOrUndefined(sessionSecretName(name)))?.data?.key &&
        (await this.roleNamesLease(role, accountLeaseName(name)))
          ? true
          : undefined,
      { timeoutMs: 20_000, onTimeout: () => this.diagnostics() },
    );
    return account;
  }

  private async roleNamesLease(role: string, lease: string): Promise<boolean> {
    const rules = (
      await this.rest.get<RoleObject>(Resources.Role, this.namespace, role).catch(() => undefined)
    )?.rules;
    return (
      rules?.some(
        (r) =>
          r.resources?.includes('leases') && r.verbs.includes('update') && r.resourceNames?.includes(lease),
      ) ?? false
    );
  }

  waitForReady(name: string, pod = runtimePodName('default', 0), timeoutMs = 30_000): Promise<Account> {
    return this.waitForAccount(
      name,
      `Ready on ${pod}`,
      (a) => condition(a, 'Ready')?.status === 'True' && a.status?.hostedBy === pod,
      timeoutMs,
    );
  }

  /** The session Secret once it holds a backup: its resourceVersion and annotations. */
  waitForBackup(name: string, newerThan?: string): Promise<SecretObject> {
    return waitFor(
      `${name}: a session backup${newerThan ? ` newer than resourceVersion ${newerThan}` : ''}`,
      async () => {
        const secret = await this.sessionSecret(name);
        if (!secret.data?.session) return undefined;
        if (newerThan !== undefined && Number(secret.metadata?.resourceVersion) <= Number(newerThan))
          return undefined;
        return secret;
      },
      { timeoutMs: 30_000, intervalMs: 200, onTimeout: () => this.diagnostics() },
    );
  }

  // ---- the world ----------------------------------------------------------------------------------

  /** The bot's server-side sessions (auth keys) in the world. */
  sessionsOf(userId: number): ReturnType<World['sessions']> {
    return this.world.sessions().filter((s) => s.user_id === userId);
  }

  /** Clients that hold a live lease on `authKey` right now (authorized and connected). */
  liveHolders(authKey: string): string[] {
    try {
      return readdirSync(this.world.path('live', authKey));
    } catch {
      return [];
    }
  }

  worldEvents(type: string, userId?: number): ReturnType<World['events']> {
    return this.world
      .events()
      .filter((e) => e.type === type && (userId === undefined || e.user_id === userId));
  }
}

export function condition(
  account: TelegramAccount | undefined,
  type: string,
): { status: string; reason: string; message: string } | undefined {
  return account?.status?.conditions?.find((c) => c.type === type);
}

/** Holder of a Lease ('' when free). */
export const holderOf = (lease: LeaseObject): string => lease.spec?.holderIdentity ?? '';

/** The etcd revision an object was last written at (comparable across objects of one cluster). */
export const revision = (object: ApiObject): number => Number(object.metadata?.resourceVersion);
