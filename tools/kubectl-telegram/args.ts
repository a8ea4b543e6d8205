/**
 * Command-line parsing for `kubectl telegram`. kubectl hands a plugin every argument after its name, global
 * flags included, so the plugin reads -n/--namespace, --kubeconfig and --context itself.
 */
import { CliError, ExitCode } from './errors.js';

export type Command = 'login' | 'status' | 'campaign-report' | 'rollout' | 'help';

/** What `kubectl telegram rollout <action> <pool>` does to a TelegramRuntimePool. */
export type RolloutAction = 'status' | 'promote' | 'pause' | 'resume' | 'undo';
export const ROLLOUT_ACTIONS: readonly RolloutAction[] = ['status', 'promote', 'pause', 'resume', 'undo'];

export interface Options {
  command: Command;
  account?: string;
  /** The Campaign of `campaign report`. */
  campaign?: string;
  namespace?: string;
  kubeconfig?: string;
  context?: string;
  /** The login code from --code (discouraged: it shows in the process list and shell history). */
  code?: string;
  /** login: how long to wait (default 5m); rollout status --watch: Infinity unless --timeout is given. */
  timeoutMs: number;
  /** campaign report: -o csv|json (default csv). */
  output?: OutputFormat;
  /** campaign report: CampaignSlices per list request (--chunk-size). */
  chunkSize?: number;
  /** rollout: the subcommand. */
  rolloutAction?: RolloutAction;
  /** rollout: the TelegramRuntimePool. */
  pool?: string;
  /** rollout status: wait until the rollout ends (--watch, -w). */
  watch?: boolean;
  /** rollout promote: skip every remaining pause, not only the current step's (--full). */
  full?: boolean;
}

/** Output formats of campaign report (here, not with the report: help must not load the API types). */
export type OutputFormat = 'csv' | 'json';
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['csv', 'json'];

export const DEFAULT_TIMEOUT_MS = 5 * 60_000;

export const USAGE = `kubectl telegram: log Telegram accounts (TelegramAccount resources) in from the command line,
report what a Campaign sent to whom, and follow and steer rollouts of TelegramRuntimePools.

Usage:
  kubectl telegram login <account> [-n namespace] [--code CODE] [--timeout 5m]
  kubectl telegram status <account> [-n namespace]
  kubectl telegram campaign report <campaign> [-n namespace] [-o csv|json]
  kubectl telegram rollout status <pool> [-n namespace] [-w] [--timeout 30m]
  kubectl telegram rollout pause|resume|promote|undo <pool> [-n namespace] [--full]
  kubectl telegram help

login   Shows the account's state and completes the interactive step of a User login: asks for the code
        Telegram sent (hidden input on a terminal, else one line from stdin) and hands it to the runtime
        through a short-lived Secret <account>-login-code, then waits for the result. For a QR login it
        prints the tg://login link to confirm from another device and waits until the account is Ready.
        The two-step verification password is never typed here: it comes from spec.passwordSecretRef.
status  Shows the account's authorization, connection, proxy and conditions.
campaign report
        One line per recipient of the Campaign, in slice order, then list order: recipient (as written:
        @username, +phone, user id, chat:@name), sender, outcome (Pending, InFlight, Sent, Failed, InDoubt;
        Invalid for a line that is not a recipient), reason, time (RFC 3339 UTC; empty when none). CSV with
        a header line (default) or -o json, one JSON object per line. Written as it is read, so it can be
        piped to head, grep or a file for campaigns of millions. It shows phone numbers: keep it private.
rollout How a new runtime version rolls out to a TelegramRuntimePool (tgp) in canary steps; the operator
        does the rollout, these commands read its status and signal it:
  status   Phase, stable and canary revisions, step, weight, accounts, pods, conditions and the last
           analyses. Exit code 0 when Healthy, 1 when Degraded (a version was rolled back), 0 while
           Progressing or Paused; with -w it waits until the rollout ends (Healthy: 0, Degraded: 1),
           printing each change of step, phase and message.
  pause    Holds the rollout at its current step (spec.rollout.paused: true); analysis and rollback go on.
  resume   Lets it go on (spec.rollout.paused: false).
  promote  Skips the pause of the current step; with --full, every remaining pause.
  undo     Moves the canary's accounts back to the stable version and marks the canary revision rolled
           back. It is not tried again until the spec changes: to retry the same image, change the spec
           (e.g. the same image under another tag, or by digest).

Flags:
  -n, --namespace NAME   namespace of the account (default: the kubeconfig context's, else "default")
      --kubeconfig PATH  kubeconfig file (default: $KUBECONFIG, in-cluster, ~/.kube/config)
      --context NAME     kubeconfig context to use
      --code CODE        the login code (prefer the prompt or stdin: arguments are visible to other users)
      --timeout DURATION how long to wait for the runtime, e.g. 90s, 5m, 1h30m (default 5m); for rollout
                         status -w, how long to wait for the rollout to end (default: no limit)
  -o, --output FORMAT    campaign report: csv (default) or json
      --chunk-size N     campaign report: CampaignSlices per list request (default 10)
  -w, --watch            rollout status: wait until the rollout is Healthy or Degraded
      --full             rollout promote: skip every remaining pause, not only the current step's
  -h, --help             this help

Exit codes: 0 done (logged in; report written, or its reader closed the pipe; rollout Healthy or still going
without -w; rollout signal written), 1 login failed (e.g. wrong code), rollout Degraded or nothing to promote
or undo, or an API error (e.g. not allowed), 2 usage error, 3 account, campaign or pool not found, 4 nothing
to log in (Bot account or suspended), 5 timed out, 6 account being deleted, 130 interrupted.
`;

/** Parses a duration: "90s", "5m", "1h30m", "1500ms", or a bare number of seconds. */
export function parseDuration(text: string): number {
  const trimmed = text.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const unitMs: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const part = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  let total = 0;
  let consumed = 0;
  for (let match = part.exec(trimmed); match; match = part.exec(trimmed)) {
    if (match.index !== consumed) break;
    total += Number(match[1]) * (unitMs[match[2] ?? ''] ?? 0);
    consumed = match.index + match[0].length;
  }
  if (trimmed.length === 0 || consumed !== trimmed.length) {
    throw new CliError(ExitCode.Usage, `invalid duration ${JSON.stringify(text)}: use e.g. 90s, 5m or 1h30m`);
  }
  if (total <= 0) throw new CliError(ExitCode.Usage, `duration ${JSON.stringify(text)} must be positive`);
  return Math.round(total);
}

const VALUE_FLAGS: Record<string, keyof Options> = {
  '-n': 'namespace',
  '--namespace': 'namespace',
  '--kubeconfig': 'kubeconfig',
  '--context': 'context',
  '--code': 'code',
  '--timeout': 'timeoutMs',
  '-o': 'output',
  '--output': 'output',
  '--chunk-size': 'chunkSize',
};

/** Flags without a value (`--watch=false` style is accepted too). */
const BOOLEAN_FLAGS: Record<string, 'watch' | 'full'> = {
  '-w': 'watch',
  '--watch': 'watch',
  '--full': 'full',
};

type FlagValues = Partial<Record<keyof Options, string>>;

/** Parses argv (without node and the script); throws CliError(Usage) with a message on bad input. */
export function parseArgs(argv: readonly string[]): Options {
  const positional: string[] = [];
  const values: FlagValues = {};
  const booleans: Partial<Record<'watch' | 'full', boolean>> = {};
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (arg === '-h' || arg === '--help') {
      help = true;
      continue;
    }
    if (arg.startsWith('-') && arg !== '-') {
      const eq = arg.indexOf('=');
      let flag = eq > 0 ? arg.slice(0, eq) : arg;
      let value = eq > 0 ? arg.slice(eq + 1) : undefined;
      // kubectl style -nNAMESPACE, -ojson
      if (/^-[no]./.test(flag)) {
        value = flag.slice(2);
        flag = flag.slice(0, 2);
      }
      const bool = BOOLEAN_FLAGS[flag];
      if (bool !== undefined) {
        if (value !== undefined && value !== 'true' && value !== 'false') {
          throw new CliError(ExitCode.Usage, `flag ${flag} takes no value (or =true, =false)`);
        }
        if (booleans[bool] !== undefined) throw new CliError(ExitCode.Usage, `flag ${flag} given twice`);
        booleans[bool] = value !== 'false';
        continue;
      }
      const key = VALUE_FLAGS[flag];
      if (key === undefined) throw new CliError(ExitCode.Usage, `unknown flag ${flag}\n\n${USAGE}`);
      if (value === undefined) {
        value = argv[i + 1];
        if (value === undefined) throw new CliError(ExitCode.Usage, `flag ${flag} needs a value`);
        i++;
      }
      if (values[key] !== undefined) throw new CliError(ExitCode.Usage, `flag ${flag} given twice`);
      values[key] = value;
      continue;
    }
    positional.push(arg);
  }

  if (help || positional[0] === undefined || positional[0] === 'help') {
    return { command: 'help', timeoutMs: DEFAULT_TIMEOUT_MS };
  }
  if (positional[0] === 'rollout') return parseRollout(positional.slice(1), values, booleans);
  if (booleans.watch !== undefined || booleans.full !== undefined) {
    throw new CliError(ExitCode.Usage, '--watch and --full apply to rollout only');
  }
  if (positional[0] === 'campaign') return parseCampaignReport(positional.slice(1), values);
  if (values.output !== undefined || values.chunkSize !== undefined) {
    throw new CliError(ExitCode.Usage, '--output and --chunk-size apply to campaign report only');
  }
  const [command, account, ...rest] = positional;
  if (command !== 'login' && command !== 'status') {
    throw new CliError(ExitCode.Usage, `unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
  }
  if (account === undefined || account === '') {
    throw new CliError(
      ExitCode.Usage,
      `${command} needs an account name: kubectl telegram ${command} <account>`,
    );
  }
  if (rest.length > 0) {
    // Not echoed: a login code typed as an extra argument must not end up in the terminal's scrollback twice.
    throw new CliError(
      ExitCode.Usage,
      `unexpected ${rest.length === 1 ? 'argument' : `${rest.length} arguments`} after the account name ` +
        '(the code goes in the prompt, on stdin, or after --code)',
    );
  }
  if (!isObjectName(account)) {
    throw new CliError(ExitCode.Usage, `${JSON.stringify(account)} is not a valid TelegramAccount name`);
  }
  if (values.code !== undefined && command !== 'login') {
    throw new CliError(ExitCode.Usage, '--code applies to login only');
  }
  return {
    command,
    account,
    namespace: values.namespace,
    kubeconfig: values.kubeconfig,
    context: values.context,
    code: values.code,
    timeoutMs: values.timeoutMs === undefined ? DEFAULT_TIMEOUT_MS : parseDuration(values.timeoutMs),
  };
}

function isObjectName(name: string): boolean {
  return /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(name) && name.length <= 253;
}

/** `campaign report <campaign>` (the words after "campaign"), with the flag values already read. */
function parseCampaignReport(words: readonly string[], values: FlagValues): Options {
  const [sub, campaign, ...rest] = words;
  if (sub !== 'report') {
    throw new CliError(
      ExitCode.Usage,
      `${sub === undefined ? 'campaign needs a subcommand' : `unknown campaign subcommand ${JSON.stringify(sub)}`}: ` +
        'kubectl telegram campaign report <campaign>',
    );
  }
  if (campaign === undefined || campaign === '') {
    throw new CliError(
      ExitCode.Usage,
      'campaign report needs a campaign name: kubectl telegram campaign report <campaign>',
    );
  }
  if (rest.length > 0) {
    throw new CliError(
      ExitCode.Usage,
      `unexpected ${rest.length === 1 ? 'argument' : `${rest.length} arguments`} after the campaign name`,
    );
  }
  if (!isObjectName(campaign)) {
    throw new CliError(ExitCode.Usage, `${JSON.stringify(campaign)} is not a valid Campaign name`);
  }
  if (values.code !== undefined) throw new CliError(ExitCode.Usage, '--code applies to login only');
  if (values.timeoutMs !== undefined)
    throw new CliError(ExitCode.Usage, '--timeout applies to login and rollout status --watch only');
  const output = values.output ?? 'csv';
  if (!isOutputFormat(output)) {
    throw new CliError(
      ExitCode.Usage,
      `unknown output format ${JSON.stringify(output)}: use ${OUTPUT_FORMATS.join(' or ')}`,
    );
  }
  const chunk = values.chunkSize;
  if (chunk !== undefined && !/^[1-9][0-9]{0,3}$/.test(chunk)) {
    throw new CliError(ExitCode.Usage, '--chunk-size must be a whole number from 1 to 9999');
  }
  return {
    command: 'campaign-report',
    campaign,
    namespace: values.namespace,
    kubeconfig: values.kubeconfig,
    context: values.context,
    timeoutMs: DEFAULT_TIMEOUT_MS,
    output,
    chunkSize: chunk === undefined ? undefined : Number(chunk),
  };
}

/** `rollout <action> <pool>` (the words after "rollout"), with the flag values already read. */
function parseRollout(
  words: readonly string[],
  values: FlagValues,
  booleans: Partial<Record<'watch' | 'full', boolean>>,
): Options {
  const [action, pool, ...rest] = words;
  const usage = `kubectl telegram rollout ${ROLLOUT_ACTIONS.join('|')} <pool>`;
  if (action === undefined || !isRolloutAction(action)) {
    throw new CliError(
      ExitCode.Usage,
      `${action === undefined ? 'rollout needs a subcommand' : `unknown rollout subcommand ${JSON.stringify(action)}`}: ${usage}`,
    );
  }
  if (pool === undefined || pool === '') {
    throw new CliError(
      ExitCode.Usage,
      `rollout ${action} needs a pool name: kubectl telegram rollout ${action} <pool> (kubectl get tgp lists them)`,
    );
  }
  if (rest.length > 0) {
    throw new CliError(
      ExitCode.Usage,
      `unexpected ${rest.length === 1 ? 'argument' : `${rest.length} arguments`} after the pool name`,
    );
  }
  if (!isObjectName(pool)) {
    throw new CliError(ExitCode.Usage, `${JSON.stringify(pool)} is not a valid TelegramRuntimePool name`);
  }
  if (values.code !== undefined) throw new CliError(ExitCode.Usage, '--code applies to login only');
  if (values.output !== undefined || values.chunkSize !== undefined) {
    throw new CliError(ExitCode.Usage, '--output and --chunk-size apply to campaign report only');
  }
  const watch = booleans.watch ?? false;
  const full = booleans.full ?? false;
  if (booleans.watch !== undefined && action !== 'status') {
    throw new CliError(ExitCode.Usage, '--watch applies to rollout status only');
  }
  if (booleans.full !== undefined && action !== 'promote') {
    throw new CliError(ExitCode.Usage, '--full applies to rollout promote only');
  }
  if (values.timeoutMs !== undefined && !(action === 'status' && watch)) {
    throw new CliError(
      ExitCode.Usage,
      '--timeout applies to rollout status --watch only (the other rollout commands do not wait)',
    );
  }
  return {
    command: 'rollout',
    rolloutAction: action,
    pool,
    namespace: values.namespace,
    kubeconfig: values.kubeconfig,
    context: values.context,
    watch,
    full,
    // A rollout's steps pause for hours (24h by default): like kubectl rollout status, no limit by default.
    timeoutMs: values.timeoutMs === undefined ? Number.POSITIVE_INFINITY : parseDuration(values.timeoutMs),
  };
}

function isRolloutAction(text: string): text is RolloutAction {
  return (ROLLOUT_ACTIONS as readonly string[]).includes(text);
}

function isOutputFormat(text: string): text is OutputFormat {
  return (OUTPUT_FORMATS as readonly string[]).includes(text);
}
