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
