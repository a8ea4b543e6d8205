import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';

/** A component process whose output goes to a log file a failing test can point at. */
export interface ManagedProcess {
  name: string;
  logFile: string;
  child: ChildProcess;
  /** Resolves with the exit code (or signal name) when the process ends. */
  exited: Promise<string>;
}

/**
 * Starts `command` so that it dies with us: setpriv --pdeathsig makes the kernel send SIGKILL to it when the
 * process that spawned it ends, even if that one was killed with SIGKILL and never ran its clean-up.
 */
export function startProcess(
  name: string,
  command: string,
  args: string[],
  logFile: string,
  env?: NodeJS.ProcessEnv,
): ManagedProcess {
  const fd = openSync(logFile, 'a');
  const child = spawn('setpriv', ['--pdeathsig', 'KILL', '--', command, ...args], {
    stdio: ['ignore', fd, fd],
    env: env ?? process.env,
    // Its own process group: Ctrl-C in a terminal signals the whole foreground group, and the API server
    // must outlive the operator and runtimes while they shut down gracefully. pdeathsig still ends it.
    detached: true,
  });
  closeSync(fd);
  const exited = new Promise<string>((resolve) => {
    child.once('exit', (code, signal) => resolve(signal ?? String(code)));
  });
  return { name, logFile, child, exited };
}

export function isRunning(process: ManagedProcess): boolean {
  return process.child.exitCode === null && process.child.signalCode === null;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
export async function stopProcess(managed: ManagedProcess, graceMs = 10_000): Promise<void> {
  if (!isRunning(managed)) return;
  managed.child.kill('SIGTERM');
  const timer = setTimeout(() => managed.child.kill('SIGKILL'), graceMs);
  await managed.exited;
  clearTimeout(timer);
}

export function tailLog(logFile: string, lines = 30): string {
  try {
    const text = readFileSync(logFile, 'utf8').trimEnd().split('\n');
    return text.slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Whether a process with this pid exists (signal 0 checks without signalling). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
