#!/usr/bin/env node
/**
 * Entry point of the kubectl plugin (`kubectl telegram ...`; bin/kubectl-telegram runs the compiled file).
 * Arguments are parsed before the Kubernetes client is loaded, so help and usage errors answer at once.
 * Ctrl-C or SIGTERM while waiting deletes a login-code Secret the runtime has not used yet.
 */
import { USAGE, parseArgs, type Options } from './args.js';
import { CliError, ExitCode } from './errors.js';

async function main(argv: readonly string[]): Promise<number> {
  let options: Options;
  try {
    options = parseArgs(argv);
  } catch (error) {
    process.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n`);
    return error instanceof CliError ? error.exitCode : ExitCode.Usage;
  }
  if (options.command === 'help') {
    process.stdout.write(USAGE);
    return ExitCode.Ok;
  }

  const { Cleanups, execute } = await import('./cli.js');
  const cleanups = new Cleanups();
  const onSignal = (): void => {
    void cleanups.run().finally(() => {
      process.stderr.write('\ninterrupted\n');
      process.exit(ExitCode.Interrupted);
    });
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await execute(
      options,
      { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr },
      cleanups,
    );
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

const code = await main(process.argv.slice(2));
process.exitCode = code;
// Everything is closed by now; if some handle still lingers (a half-closed socket), do not hang on it.
setTimeout(() => process.exit(code), 2000).unref();
