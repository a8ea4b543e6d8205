/** Exit codes of `kubectl telegram` (documented in the help text and the README). */
export const ExitCode = {
  Ok: 0,
  /** The login did not succeed (wrong or expired code, 2FA failure), or an API / connection error. */
  Failed: 1,
  Usage: 2,
  NotFound: 3,
  /** Nothing to log in: a Bot account (logs in with its token) or a suspended account. */
  NotApplicable: 4,
  Timeout: 5,
  /** The account has a deletionTimestamp. */
  Deleting: 6,
  Interrupted: 130,
} as const;

export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** An error that ends the command with a message and an exit code (never carries the login code). */
export class CliError extends Error {
  override readonly name = 'CliError';

  constructor(
    readonly exitCode: ExitCode,
    message: string,
  ) {
    super(message);
  }
}
