/**
 * Plays the kubelet for every runtime pod kwok runs in a namespace, from the pod objects themselves: a pod
 * that kwok reports Ready gets a runtime process with what the pod spec asks for (pool, backend, memory
 * limit through the downward API, its uid, its ServiceAccount's token), a process whose pod goes away or is
 * being deleted gets SIGTERM (graceful termination), a process that exits is restarted after a back-off
 * (restartPolicy Always), and a recreated pod (new uid) gets a new process on the same volume.
 *
 * The pod's image tag selects how the runtime behaves, standing in for different builds of it: see
 * `imageBehaviour`.
 */
import { mkdirSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { parse, stringify } from 'yaml';
import { adminKubeConfig } from './cluster.js';
import { serviceAccountKubeconfig, startRuntimeProcess, type RuntimeProcess } from './runtime.js';

export interface Behaviour {
  /** A world file for this process only: the same world with other faults (its network is slower...). */
  faults?: Record<string, unknown>;
  nodeArgs?: string[];
  /** Exits at start (a build that does not start). */
  crash?: boolean;
}

/** What each image tag of the runtime does here; anything else behaves like a good build. */
export function imageBehaviour(image: string): Behaviour {
  const tag = image.slice(image.lastIndexOf(':') + 1);
  switch (tag) {
    case 'slow':
      // 600 ms on every request to Telegram.
      return {
        faults: { latency_ms: { default: 600, methods: {} }, error_rate: { default: 0, methods: {} } },
      };
    case 'failing':
      // One request in five fails with an error of our own making (not one of Telegram's limits), evenly
      // spaced: an analysis interval of a few requests still shows the rate (at random, 5% of a handful of
      // requests passed an interval by chance and the rollback took a third analysis).
      return {
        faults: {
          latency_ms: { default: 5, methods: {} },
          error_rate: { default: 0.2, methods: {} },
          error_spacing: 'even',
          error: { code: 500, message: 'Internal Server Error' },
        },
      };
    case 'flooding':
      // Telegram refuses 30% of requests with flood waits: the account's limits, not the build's fault.
      return {
        faults: {
          latency_ms: { default: 5, methods: {} },
          error_rate: { default: 0.3, methods: {} },
          error: { code: 429, message: 'Too Many Requests: retry after 1' },
        },
      };
    case 'leaky':
      // Memory grows by 64 MiB a second and is never freed.
      return {
        nodeArgs: [
          '--import',
          'data:text/javascript,globalThis.__leak=[];setInterval(()=>globalThis.__leak.push(Buffer.alloc(64<<20,1)),1000).unref()',
        ],
      };
    case 'crashing':
      return { crash: true };
    default:
      return {};
  }
}

interface Running {
  uid: string;
  image: string;
  process: RuntimeProcess;
  stopping: boolean;
}

export interface PodKubelet {
  /** Every process ever started, newest last. */
  processes(): RuntimeProcess[];
  /** The process running for `pod` now, if any. */
  running(pod: string): RuntimeProcess | undefined;
  logs(): string;
  /** Writes every process's output to `dir` (one file per process), for a person reading a failure. */
  saveLogs(dir: string): void;
  stop(): Promise<void>;
}

/** The port a runtime process reported it listens on, once it has. */
function reportedPort(process: RuntimeProcess): number | undefined {
  const m = process.output().match(/"port":(\d+)[^\n]*"msg":"runtime started"/);
  return m ? Number(m[1]) : undefined;
}

export function startPodKubelet(options: {
  namespace: string;
  worldDir: string;
  /** Kept up to date as a Prometheus file_sd file: every running runtime, labelled namespace and pod. */
  targetsFile?: string;
}): PodKubelet {
  const kc = adminKubeConfig();
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const { namespace, worldDir } = options;
  const running = new Map<string, Running>();
  const all: RuntimeProcess[] = [];
  const dataDirs = new Map<string, string>();
  const kubeconfigs = new Map<string, Promise<string>>();
  const worldFiles = new Map<string, string>();
  const restartAt = new Map<string, number>();
  let stopped = false;

  const worldFileFor = (tag: string, faults: Record<string, unknown>): string => {
    const known = worldFiles.get(tag);
    if (known) return known;
    const base = join(worldDir, 'world.yaml');
    let text: string;
    try {
      text = readFileSync(base, 'utf8');
    } catch {
      text = readFileSync(join(worldDir, 'world.json'), 'utf8');
    }
    const world = parse(text) as Record<string, unknown>;
    world.faults = faults;
    const dir = mkdtempSync(join(tmpdir(), `tdlib-operator-world-${tag}-`));
    const path = join(dir, 'world.yaml');
    writeFileSync(path, stringify(world, { aliasDuplicateObjects: false }));
    worldFiles.set(tag, path);
    return path;
  };

  const start = async (pod: k8s.V1Pod): Promise<void> => {
    const name = pod.metadata?.name ?? '';
    const container = pod.spec?.containers[0];
    const image = container?.image ?? '';
    const envOf = (key: string): string | undefined => container?.env?.find((e) => e.name === key)?.value;
    const serviceAccount = pod.spec?.serviceAccountName ?? 'default';
    let kubeconfig = kubeconfigs.get(serviceAccount);
    if (!kubeconfig) {
      kubeconfig = serviceAccountKubeconfig(kc, namespace, serviceAccount);
      kubeconfigs.set(serviceAccount, kubeconfig);
    }
    const behaviour = imageBehaviour(image);
    const tag = image.slice(image.lastIndexOf(':') + 1);
    let dataDir = dataDirs.get(name);
    if (!dataDir) {
      dataDir = mkdtempSync(join(tmpdir(), `tdlib-operator-data-${name}-`));
      dataDirs.set(name, dataDir);
    }
    const env: Record<string, string> = {
      POD_UID: pod.metadata?.uid ?? '',
      POD_IP: '127.0.0.1',
      RUNTIME_POOL: envOf('RUNTIME_POOL') ?? 'default',
      TDLIB_BACKEND: behaviour.crash
        ? 'a-build-that-does-not-start'
        : (envOf('TDLIB_BACKEND') ?? 'simulator'),
      RUNTIME_MEMORY_LIMIT_BYTES: String(container?.resources?.limits?.memory ?? ''),
    };
    if (behaviour.faults) env.TDLIB_SIMULATOR_WORLD_FILE = worldFileFor(tag, behaviour.faults);
    const process = startRuntimeProcess({
      pod: name,
      namespace,
      kubeconfig: await kubeconfig,
      worldDir,
      dataDir,
      env,
      nodeArgs: behaviour.nodeArgs,
    });
    all.push(process);
    running.set(name, { uid: pod.metadata?.uid ?? '', image, process, stopping: false });
  };

  const tick = async (): Promise<void> => {
    const pods = await core.listNamespacedPod({
      namespace,
      labelSelector: 'app.kubernetes.io/name=tdlib-runtime',
    });
    const seen = new Set<string>();
    for (const pod of pods.items) {
      const name = pod.metadata?.name ?? '';
      const current = running.get(name);
      const alive =
        current && current.process.child.exitCode === null && current.process.child.signalCode === null;
      if (pod.metadata?.deletionTimestamp) {
        if (current && alive && !current.stopping) {
          current.stopping = true;
          void current.process.stop('SIGTERM');
        }
        continue;
      }
      seen.add(name);
      if (current && current.uid !== pod.metadata?.uid) {
        // A new pod under the old name: the old container goes (if it still runs), a new one starts.
        if (alive && !current.stopping) {
          current.stopping = true;
          void current.process.stop('SIGTERM');
        }
        if (alive) continue;
        running.delete(name);
      } else if (current && !alive) {
        const at = restartAt.get(name);
        if (at === undefined) {
          restartAt.set(name, Date.now() + 2000);
          continue;
        }
        if (Date.now() < at) continue;
        restartAt.delete(name);
        running.delete(name);
      } else if (current) continue;
      const ready = pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
      if (ready) await start(pod);
    }
    for (const [name, current] of running)
      if (!seen.has(name) && !current.stopping) {
        current.stopping = true;
        void current.process.stop('SIGTERM');
      }
    if (options.targetsFile) {
      const targets = [...running.values()].flatMap((r) => {
        const port = reportedPort(r.process);
        const alive = r.process.child.exitCode === null && r.process.child.signalCode === null;
        return port && alive
          ? [{ targets: [`127.0.0.1:${port}`], labels: { namespace, pod: r.process.pod } }]
          : [];
      });
      writeFileSync(`${options.targetsFile}.tmp`, JSON.stringify(targets));
      renameSync(`${options.targetsFile}.tmp`, options.targetsFile);
    }
  };

  const loop = (async () => {
    while (!stopped) {
      try {
        await tick();
      } catch {
        // The next tick tries again (an API hiccup, a pod gone between list and start).
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  })();

  return {
    processes: () => [...all],
    running: (pod) => {
      const r = running.get(pod);
      return r && r.process.child.exitCode === null && r.process.child.signalCode === null
        ? r.process
        : undefined;
    },
    logs: () =>
      [...running.values()]
        .map((r) => `${r.process.pod} (${r.image}):\n${r.process.output().slice(-2500)}`)
        .join('\n---\n'),
    saveLogs: (dir) => {
      mkdirSync(dir, { recursive: true });
      all.forEach((p, i) =>
        writeFileSync(join(dir, `${String(i).padStart(3, '0')}-${p.pod}.log`), p.output()),
      );
    },
    stop: async () => {
      stopped = true;
      await loop;
      await Promise.all(all.map((p) => p.stop('SIGKILL')));
    },
  };
}
