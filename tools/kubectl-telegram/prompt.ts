/**
 * Reading the login code: hidden input on a terminal (raw mode, nothing echoed, like sudo), else the first
 * line of stdin. The code only ever lives in memory; it is never written to any stream.
 */
import { createInterface } from 'node:readline';
import { CliError, ExitCode } from './errors.js';

export interface Input extends NodeJS.ReadableStream {
  isTTY?: boolean;
  setRawMode?(mode: boolean): unknown;
}

export interface Io {
  stdin: Input;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/** True when the code can be asked for more than once (a person at a terminal). */
export function isInteractive(io: Io): boolean {
  return io.stdin.isTTY === true && typeof io.stdin.setRawMode === 'function';
}

/** Prompts on stderr and reads a line without echoing it. Ctrl-C ends with ExitCode.Interrupted. */
export function readHidden(io: Io, prompt: string): Promise<string> {
  const stdin = io.stdin;
  io.stderr.write(prompt);
  return new Promise<string>((resolve, reject) => {
    let value = '';
    const finish = (error?: CliError): void => {
      stdin.removeListener('data', onData);
      stdin.removeListener('end', onEnd);
      stdin.setRawMode?.(false);
      stdin.pause();
      io.stderr.write('\n');
      if (error) reject(error);
      else resolve(value);
    };
    const onEnd = (): void => finish(new CliError(ExitCode.Failed, 'no code entered (end of input)'));
    const onData = (chunk: Buffer | string): void => {
      for (const char of chunk.toString()) {
        if (char === '\r' || char === '\n') return finish();
        if (char === '\u0003') return finish(new CliError(ExitCode.Interrupted, 'interrupted'));
        if (char === '\u0004') {
          if (value === '') return finish(new CliError(ExitCode.Failed, 'no code entered (end of input)'));
          return finish();
        }
        if (char === '\u007f' || char === '\b') value = value.slice(0, -1);
        else if (char === '\u0015')
          value = ''; // Ctrl-U
        else if (char >= ' ') value += char;
      }
    };
    stdin.setRawMode?.(true);
    stdin.setEncoding('utf8');
    stdin.on('data', onData);
    stdin.on('end', onEnd);
    stdin.resume();
  });
}

/** Reads the first line of a non-terminal stdin (a pipe or a file). */
export function readLine(io: Io): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: io.stdin, terminal: false, crlfDelay: Infinity });
    let settled = false;
    rl.once('line', (line) => {
      settled = true;
      rl.close();
      resolve(line);
    });
    rl.once('close', () => {
      if (!settled)
        reject(
          new CliError(
            ExitCode.Failed,
            'no code on stdin: pass it with --code, pipe it in, or run on a terminal',
          ),
        );
    });
  });
}

/**
 * Normalizes what a person typed: spaces and dashes dropped ("12 345", "12-345"). Login codes are short
 * runs of letters and digits; anything else is refused without repeating it.
 */
export function normalizeCode(raw: string): string {
  const code = raw.replace(/[\s-]/g, '');
  if (code === '') throw new CliError(ExitCode.Failed, 'no code entered');
  if (!/^[0-9A-Za-z]{3,32}$/.test(code)) {
    throw new CliError(
      ExitCode.Failed,
      'that does not look like a login code (expected 3 to 32 letters or digits, usually 5 digits)',
    );
  }
  return code;
}
