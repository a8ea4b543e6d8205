import { readFileSync } from 'node:fs';

/**
 * CPU seconds (user + system) a process has used, from /proc/<pid>/stat (clock ticks of 1/100 s); 0 once
 * the process is gone.
 */
export function processCpuSeconds(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The fields after the command name, which is in parentheses and may contain spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11] ?? 0) + Number(fields[12] ?? 0)) / 100;
  } catch {
    return 0;
  }
}

/** The whole machine's CPU seconds since boot, all cores summed, from the first line of /proc/stat. */
export interface MachineCpu {
  /** user, nice, system, irq and softirq: work done by this machine. */
  busy: number;
  /** idle and iowait: time nothing here ran. */
  idle: number;
  /** Time the hypervisor gave this machine's virtual CPUs to others while they had work: a slower day. */
  steal: number;
}

export function machineCpuSeconds(stat = readStat()): MachineCpu {
  const fields = (stat.split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
  const at = (i: number): number => (Number.isFinite(fields[i]) ? (fields[i] ?? 0) : 0) / 100;
  return { busy: at(0) + at(1) + at(2) + at(5) + at(6), idle: at(3) + at(4), steal: at(7) };
}

function readStat(): string {
  try {
    return readFileSync('/proc/stat', 'utf8');
  } catch {
    return '';
  }
}

/** Cores of each kind used between two readings `seconds` apart. */
export function machineCores(from: MachineCpu, to: MachineCpu, seconds: number): MachineCpu {
  const cores = (k: keyof MachineCpu): number => Number(((to[k] - from[k]) / seconds).toFixed(2));
  return { busy: cores('busy'), idle: cores('idle'), steal: cores('steal') };
}
