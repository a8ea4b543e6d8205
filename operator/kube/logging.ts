import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

/**
 * Field names whose values must never reach a log line, whatever object carries them: login codes,
 * passwords, bot tokens, API hashes, phone numbers, session and key material.
 */
export const SECRET_FIELD_NAMES: readonly string[] = [
  'code',
  'password',
  'token',
  'bot_token',
  'botToken',
  'api_hash',
  'apiHash',
  'phone_number',
  'phoneNumber',
  'database_encryption_key',
  'encryptionKey',
  'session',
  'secret',
  'data',
];

function redactPaths(): string[] {
  const paths: string[] = [];
  for (const name of SECRET_FIELD_NAMES) {
    paths.push(name, `*.${name}`, `*.*.${name}`);
  }
  return paths;
}

/** Masks a phone number for humans: keeps the country prefix hint and the last two digits. */
export function maskPhone(phone: string): string {
  const digits = phone.replace(/\D/g, '');
  if (digits.length <= 4) return '***';
  return `+${digits.slice(0, 1)}***${digits.slice(-2)}`;
}

export interface LoggerConfig {
  level?: string;
  name: string;
  /** Where JSON lines go; defaults to stdout. Tests pass a stream to grep what was logged. */
  destination?: NodeJS.WritableStream;
}

export function createLogger(config: LoggerConfig): Logger {
  const options: LoggerOptions = {
    name: config.name,
    level: config.level ?? process.env.LOG_LEVEL ?? 'info',
    redact: { paths: redactPaths(), censor: '[REDACTED]' },
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return config.destination ? pino(options, config.destination) : pino(options);
}
