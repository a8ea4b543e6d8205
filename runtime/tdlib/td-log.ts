/**
 * TDLib log messages into our logger. TDLib's verbosity levels become logger levels, and TDLib's line
 * prefix ("[ 2][t 4][1700000000.1][Session.cpp:123][#1][!Td]\t") becomes fields instead of text.
 */
import type { Logger } from '../../operator/kube/logging.js';

/** verbosity: TDLib's level (0 fatal, 1 error, 2 warning, 3 info, 4 debug, 5+ verbose). */
export type TdLogHandler = (verbosity: number, message: string) => void;
export type TdLogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

export function tdLogLevel(verbosity: number): TdLogLevel {
  switch (verbosity) {
    case 0:
      return 'fatal';
    case 1:
      return 'error';
    case 2:
      return 'warn';
    case 3:
      return 'info';
    case 4:
      return 'debug';
    default:
      return 'trace';
  }
}

export interface ParsedTdLogLine {
  readonly text: string;
  /** "File.cpp:123" when TDLib included it. */
  readonly source?: string;
  /** TDLib's thread number. */
  readonly thread?: number;
}

const PREFIX = /^\[\s*\d+\]\[t\s*(\d+)\]\[[\d.]+\]\[([^\]]+)\](?:\[[^\]]*\])*\t?/;

export function parseTdLogLine(message: string): ParsedTdLogLine {
  const trimmed = message.replace(/\s+$/, '');
  const match = PREFIX.exec(trimmed);
  if (match === null) return { text: trimmed };
  return { text: trimmed.slice(match[0].length), source: match[2], thread: Number(match[1]) };
}

/** A TdLogHandler writing to `logger` (a child logger named "tdlib" is a good fit). */
export function tdLogHandler(logger: Logger): TdLogHandler {
  return (verbosity, message) => {
    const level = tdLogLevel(verbosity);
    if (!logger.isLevelEnabled(level)) return;
    const line = parseTdLogLine(message);
    logger[level]({ tdlib: { verbosity, source: line.source, thread: line.thread } }, line.text);
  };
}
