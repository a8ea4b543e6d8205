/** `kubectl telegram` without process side effects: parse, connect, dispatch, map errors to exit codes. */
import { ApiError, RestClient, loadKubeConfig } from '../../operator/kube/client.js';
import type { Kubeconfig } from '../../operator/kube/kubeconfig.js';
import { createRegistry } from '../../operator/kube/metrics.js';
import { errorMessage } from '../../operator/kube/util.js';
import { USAGE, parseArgs, type Options } from './args.js';
import { CliError, ExitCode } from './errors.js';
import { describe } from './format.js';
import { Cleanups, PLUGIN_NAME, login, readAccount } from './login.js';
import type { Io } from './prompt.js';
import { DEFAULT_CHUNK_SIZE, campaignReport } from './report.js';
import { rollout } from './rollout.js';

export { Cleanups } from './login.js';

/** Runs one invocation; never throws: errors are printed to stderr and become the exit code. */
export async function run(argv: readonly string[], io: Io, cleanups = new Cleanups()): Promise<number> {
  let options: Options;
  try {
    options = parseArgs(argv);
  } catch (error) {
    io.stderr.write(`error: ${describeError(error)}\n`);
    return error instanceof CliError ? error.exitCode : ExitCode.Usage;
  }
  return execute(options, io, cleanups);
}

/** Runs parsed options (main parses first, so help and usage errors never load the Kubernetes client). */
export async function execute(options: Options, io: Io, cleanups = new Cleanups()): Promise<number> {
  let client: RestClient | undefined;
  try {
    if (options.command === 'help') {
      io.stdout.write(USAGE);
      return ExitCode.Ok;
    }
    const kc = kubeConfig(options);
    const namespace =
      options.namespace ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default';
    client = new RestClient(kc, {
      registry: createRegistry(),
      userAgent: PLUGIN_NAME,
      maxRetries: 3,
      requestTimeoutMs: 20_000,
    });
    if (options.command === 'campaign-report') {
      return await campaignReport(client, io, {
        namespace,
        name: options.campaign ?? '',
        output: options.output ?? 'csv',
        chunkSize: options.chunkSize ?? DEFAULT_CHUNK_SIZE,
      });
    }
    if (options.command === 'rollout') {
      return await rollout(
        client,
        io,
        {
          namespace,
          name: options.pool ?? '',
          action: options.rolloutAction ?? 'status',
          watch: options.watch ?? false,
          full: options.full ?? false,
          timeoutMs: options.timeoutMs,
        },
        cleanups,
      );
    }
    const name = options.account ?? '';
    if (options.command === 'status') {
      io.stdout.write(`${describe(await readAccount(client, namespace, name))}\n`);
      return ExitCode.Ok;
    }
    return await login(
      client,
      io,
      { namespace, name, code: options.code, timeoutMs: options.timeoutMs },
      cleanups,
    );
  } catch (error) {
    await cleanups.run();
    io.stderr.write(`error: ${describeError(error)}\n`);
    return error instanceof CliError ? error.exitCode : ExitCode.Failed;
  } finally {
    await client?.close();
  }
}

function kubeConfig(options: Options): Kubeconfig {
  let kc: Kubeconfig;
  try {
    kc = loadKubeConfig(options.kubeconfig);
  } catch (error) {
    throw new CliError(ExitCode.Failed, `cannot load kubeconfig: ${errorMessage(error)}`);
  }
  if (options.context !== undefined) {
    if (!kc.getContextObject(options.context)) {
      throw new CliError(
        ExitCode.Usage,
        `context ${JSON.stringify(options.context)} not found in the kubeconfig`,
      );
    }
    kc.setCurrentContext(options.context);
  }
  if (!kc.getCurrentCluster()) throw new CliError(ExitCode.Failed, 'the kubeconfig has no current cluster');
  return kc;
}

function describeError(error: unknown): string {
  if (error instanceof CliError) return error.message;
  if (error instanceof ApiError) {
    if (error.status === 401)
      return `the cluster refused the credentials (401 Unauthorized): ${error.message}`;
    if (error.status === 403) {
      return (
        `${error.message}\n(kubectl telegram login needs get/list/watch on telegramaccounts and ` +
        'create/get/list/watch/update/delete on secrets in the namespace)'
      );
    }
    return error.message;
  }
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH' || code === 'ETIMEDOUT') {
    return `cannot reach the cluster: ${errorMessage(error)}`;
  }
  return errorMessage(error);
}
