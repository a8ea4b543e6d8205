/**
 * Shell entry point of the test control plane.
 *   up    [--dir D] [--controllers] [--kwok-nodes N] [--real-node]
 *                                                     start a supervisor in the background, wait until ready
 *   serve [--dir D] [...]                             the supervisor itself (foreground; components die with it)
 *   down  [--dir D]                                   stop the supervisor and wait until every component is gone
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ControlPlane } from './control-plane.js';
import { processAlive } from './process.js';
import { RealNode } from './real-node.js';
import { waitFor } from './wait.js';

interface CliOptions {
  dir: string;
  controllers: boolean;
  kwokNodes: number;
  /** Also a real node: kubelet + containerd running pods (needs root; see real-node.ts). */
  realNode: boolean;
}

function parseArgs(argv: string[]): { command: string; options: CliOptions } {
  const [command = 'help', ...rest] = argv;
  const options: CliOptions = { dir: resolve('.cluster'), controllers: false, kwokNodes: 0, realNode: false };
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i];
    if (arg === '--dir') options.dir = resolve(rest[++i] ?? '.cluster');
    else if (arg === '--controllers') options.controllers = true;
    else if (arg === '--kwok-nodes') options.kwokNodes = Number(rest[++i] ?? '0');
    else if (arg === '--real-node') options.realNode = true;
    else
      throw new Error(
        `unknown argument "${arg}"; expected --dir, --controllers, --kwok-nodes or --real-node`,
      );
  }
  if (!Number.isInteger(options.kwokNodes) || options.kwokNodes < 0)
    throw new Error('--kwok-nodes takes a whole number >= 0');
  return { command, options };
}

const pidFile = (dir: string): string => join(dir, 'supervisor.pid');
const stateFile = (dir: string): string => join(dir, 'state.json');

async function serve(options: CliOptions): Promise<void> {
  mkdirSync(options.dir, { recursive: true });
  rmSync(stateFile(options.dir), { force: true });
  const workDir = join(options.dir, 'run');
  rmSync(workDir, { recursive: true, force: true });
  const plane = await ControlPlane.start({
    dir: workDir,
    controllers: options.controllers || options.realNode,
    kwokNodes: options.kwokNodes,
    kubeconfigPath: join(options.dir, 'kubeconfig'),
  });
  let node: RealNode | undefined;
  if (options.realNode) {
    try {
      node = await RealNode.start({
        dir: join(workDir, 'node'),
        kubeconfigPath: join(options.dir, 'kubeconfig'),
      });
    } catch (error) {
      await plane.stop();
      throw error;
    }
  }
  writeFileSync(
    stateFile(options.dir),
    JSON.stringify({ ...plane.info, pids: plane.pids(), supervisorPid: process.pid }, null, 2),
  );
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    void (node ? node.stop() : Promise.resolve())
      .then(() => plane.stop())
      .then(() => {
        rmSync(stateFile(options.dir), { force: true });
        rmSync(pidFile(options.dir), { force: true });
        process.exit(0);
      });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

async function up(options: CliOptions): Promise<void> {
  mkdirSync(options.dir, { recursive: true });
  if (existsSync(pidFile(options.dir))) {
    const pid = Number(readFileSync(pidFile(options.dir), 'utf8'));
    if (processAlive(pid))
      throw new Error(`a cluster is already running (supervisor pid ${pid}); run make cluster-down first`);
  }
  const log = join(options.dir, 'supervisor.log');
  const fd = openSync(log, 'w');
  const args = [
    fileURLToPath(import.meta.url),
    'serve',
    '--dir',
    options.dir,
    '--kwok-nodes',
    String(options.kwokNodes),
  ];
  if (options.controllers) args.push('--controllers');
  if (options.realNode) args.push('--real-node');
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  child.unref();
  writeFileSync(pidFile(options.dir), String(child.pid));
  const started = Date.now();
  await waitFor(
    'the control plane',
    () => {
      if (existsSync(stateFile(options.dir))) return true;
      if (child.pid !== undefined && !processAlive(child.pid)) throw new Error('the supervisor exited');
      return undefined;
    },
    {
      timeoutMs: 180_000,
      intervalMs: 250,
      onTimeout: () => `supervisor log: ${log}\n${readFileSync(log, 'utf8')}`,
    },
  ).catch((error: unknown) => {
    throw new Error(
      `${error instanceof Error ? error.message : String(error)}\nsupervisor log ${log}:\n${readFileSync(log, 'utf8')}`,
    );
  });
  const state = JSON.parse(readFileSync(stateFile(options.dir), 'utf8')) as {
    apiServerUrl: string;
    kubeconfigPath: string;
    logs: Record<string, string>;
  };
  console.log(`control plane up in ${((Date.now() - started) / 1000).toFixed(1)} s at ${state.apiServerUrl}`);
  console.log(`kubeconfig: ${state.kubeconfigPath}`);
  console.log(`logs: ${join(options.dir, 'run', 'logs')}`);
}

async function down(options: CliOptions): Promise<void> {
  if (!existsSync(pidFile(options.dir))) {
    console.log('no control plane is running');
    return;
  }
  const pid = Number(readFileSync(pidFile(options.dir), 'utf8'));
  const componentPids: number[] = existsSync(stateFile(options.dir))
    ? (JSON.parse(readFileSync(stateFile(options.dir), 'utf8')) as { pids: number[] }).pids
    : [];
  if (processAlive(pid)) process.kill(pid, 'SIGTERM');
  await waitFor(
    'every control plane process to exit',
    () => ([pid, ...componentPids].some(processAlive) ? undefined : true),
    {
      timeoutMs: 60_000,
      intervalMs: 200,
    },
  );
  rmSync(pidFile(options.dir), { force: true });
  console.log('control plane stopped; no process left');
}

async function main(): Promise<void> {
  const { command, options } = parseArgs(process.argv.slice(2));
  if (command === 'serve') return serve(options);
  if (command === 'up') return up(options);
  if (command === 'down') return down(options);
  console.log('usage: cli.js up|serve|down [--dir DIR] [--controllers] [--kwok-nodes N] [--real-node]');
  process.exitCode = command === 'help' ? 0 : 2;
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : String(error));
  process.exit(1);
});
