import { Ajv, type ErrorObject } from 'ajv';

/** One configuration key read from the environment. */
export interface EnvKey {
  /** 'array' and 'object' are JSON text (lists and maps of Kubernetes objects a chart passes through). */
  type: 'string' | 'integer' | 'number' | 'boolean' | 'array' | 'object';
  description: string;
  default?: string | number | boolean;
  enum?: ReadonlyArray<string>;
  minimum?: number;
  maximum?: number;
  pattern?: string;
  /** Never echo the value in errors (tokens, keys). */
  secret?: boolean;
}

export type EnvSchema = Record<string, EnvKey>;

type ValueOf<K extends EnvKey> = K['type'] extends 'string'
  ? string
  : K['type'] extends 'boolean'
    ? boolean
    : K['type'] extends 'array'
      ? ReadonlyArray<Record<string, unknown>>
      : K['type'] extends 'object'
        ? Record<string, unknown>
        : number;
export type EnvConfig<S extends EnvSchema> = {
  [Name in keyof S]: S[Name] extends { default: unknown } ? ValueOf<S[Name]> : ValueOf<S[Name]> | undefined;
};

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

const TRUE = new Set(['true', '1', 'yes', 'on']);
const FALSE = new Set(['false', '0', 'no', 'off']);

function describe(error: ErrorObject, schema: EnvSchema, raw: Record<string, string | undefined>): string {
  const [key = '', ...path] = error.instancePath.replace(/^\//, '').split('/');
  const spec = schema[key];
  const got = spec?.secret ? '' : ` (got "${raw[key] ?? ''}")`;
  const hint = spec ? ` — ${spec.description}` : '';
  switch (error.keyword) {
    case 'type':
      if (path.length > 0)
        return `${key}: item ${path.join('.')} ${error.message ?? 'has the wrong type'}${hint}`;
      return `${key} must be ${spec?.type === 'integer' ? 'a whole number' : `a ${spec?.type}`}${got}${hint}`;
    case 'enum':
      return `${key} must be one of ${(spec?.enum ?? []).join(', ')}${got}`;
    case 'minimum':
    case 'maximum':
      return `${key} ${error.message ?? 'is out of range'}${got}${hint}`;
    case 'pattern':
      return `${key} has the wrong format${got}${hint}`;
    default:
      return `${key} ${error.message ?? 'is invalid'}${got}`;
  }
}

/**
 * Reads, converts and validates `schema`'s keys from `env` at start-up. Every problem is reported at once,
 * each naming its key, so a misconfigured pod fails its first start with a message that says what to fix.
 */
export function loadEnvConfig<S extends EnvSchema>(
  schema: S,
  env: NodeJS.ProcessEnv = process.env,
): EnvConfig<S> {
  const properties: Record<string, object> = {};
  const raw: Record<string, string | undefined> = {};
  const values: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [key, spec] of Object.entries(schema)) {
    const { secret: _secret, description, ...jsonSchema } = spec;
    properties[key] = {
      ...jsonSchema,
      description,
      // Lists hold objects (EnvVar, Volume, Toleration...): the API server validates their fields.
      ...(spec.type === 'array' && { items: { type: 'object' } }),
    };
    const text = env[key];
    raw[key] = text;
    if (text === undefined || text === '') continue;
    if (spec.type === 'boolean') {
      const lower = text.toLowerCase();
      if (TRUE.has(lower)) values[key] = true;
      else if (FALSE.has(lower)) values[key] = false;
      else problems.push(`${key} must be true or false${spec.secret ? '' : ` (got "${text}")`}`);
    } else if (spec.type === 'array' || spec.type === 'object') {
      try {
        values[key] = JSON.parse(text) as unknown;
      } catch (error) {
        // V8's message quotes the input: only for keys that may be shown.
        const why = spec.secret
          ? ''
          : `: ${error instanceof Error ? error.message : String(error)} (got "${text}")`;
        problems.push(`${key} must be JSON (${spec.type === 'array' ? 'a list' : 'an object'})${why}`);
      }
    } else if (spec.type === 'integer' || spec.type === 'number') {
      values[key] = /^-?\d+(\.\d+)?$/.test(text.trim()) ? Number(text) : text;
    } else {
      values[key] = text;
    }
  }
  const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false });
  const validate = ajv.compile({ type: 'object', properties });
  if (!validate(values))
    for (const error of validate.errors ?? []) problems.push(describe(error, schema, raw));
  if (problems.length > 0) throw new ConfigError(problems);
  return values as EnvConfig<S>;
}
