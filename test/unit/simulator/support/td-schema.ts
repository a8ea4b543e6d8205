/**
 * TDLib's object schema read from tdlib-types (node_modules/@prebuilt-tdlib/types/tdlib-types.d.ts, TDLib
 * 1.8.65 in tdl's notation) plus the 1.8.67 differences that matter to us, and a validator that walks an
 * object the way TDLib's JSON would be: every '@type' must be a known constructor, every required field
 * present with the right JSON type, no unknown fields, nested objects of a constructor the field allows.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

interface Field {
  readonly name: string;
  readonly optional: boolean;
  readonly type: string;
}

export interface TdSchema {
  readonly constructors: ReadonlyMap<string, readonly Field[]>;
  readonly unions: ReadonlyMap<string, readonly string[]>;
}

/** Renames between the 1.8.65 types and the 1.8.67 library (checked against libtdjson's strings). */
export const RENAMES_1_8_67: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  message: { is_paid_ton_suggested_post: 'is_paid_gram_suggested_post' },
};

let cached: TdSchema | undefined;

export function typesFile(): string {
  return createRequire(import.meta.url).resolve('@prebuilt-tdlib/types/tdlib-types.d.ts');
}

export function loadTdSchema(): TdSchema {
  if (cached !== undefined) return cached;
  const source = readFileSync(typesFile(), 'utf8').replace(/\/\*[\s\S]*?\*\//g, '');
  const constructors = new Map<string, Field[]>();
  for (const m of source.matchAll(/^ {2}export type (\w+) = \{\n([\s\S]*?)^ {2}\}/gm)) {
    const name = m[1] ?? '';
    if (name.endsWith('$Input') || name.startsWith('$')) continue;
    const fields: Field[] = [];
    for (const f of (m[2] ?? '').matchAll(/^ {4}(\w+)(\??): (.+),$/gm)) {
      const fieldName = f[1] ?? '';
      if (fieldName === '_') continue;
      const renamed = RENAMES_1_8_67[name]?.[fieldName] ?? fieldName;
      fields.push({ name: renamed, optional: f[2] === '?', type: (f[3] ?? '').trim() });
    }
    constructors.set(name, fields);
  }
  const unions = new Map<string, string[]>();
  for (const m of source.matchAll(/^ {2}export type (\w+) =\n((?: {4}\| \w+\n)+)/gm)) {
    const name = m[1] ?? '';
    if (name.endsWith('$Input')) continue;
    unions.set(
      name,
      [...(m[2] ?? '').matchAll(/\| (\w+)/g)].map((x) => x[1] ?? ''),
    );
  }
  for (const m of source.matchAll(/^ {2}export type (\w+) = (\w+)$/gm)) {
    const name = m[1] ?? '';
    if (!name.endsWith('$Input') && !unions.has(name)) unions.set(name, [m[2] ?? '']);
  }
  cached = { constructors, unions };
  return cached;
}

function allowedConstructors(schema: TdSchema, type: string): readonly string[] | undefined {
  if (schema.constructors.has(type)) return [type];
  return schema.unions.get(type);
}

/** Problems found in `value` as a `type` (a constructor or union name); [] when it conforms. */
export function validateTdObject(value: unknown, type?: string, path = '$'): string[] {
  const schema = loadTdSchema();
  const problems: string[] = [];
  const check = (v: unknown, t: string, at: string): void => {
    // Nullable array elements (messages.messages: Array<message | null>).
    const nullable = /^(.+) \| null$/.exec(t);
    if (nullable !== null) {
      if (v !== null) check(v, nullable[1] ?? '', at);
      return;
    }
    const array = /^Array<(.+)>$/.exec(t);
    if (array !== null) {
      if (!Array.isArray(v)) return void problems.push(`${at}: expected an array for ${t}`);
      v.forEach((item, i) => check(item, array[1] ?? '', `${at}[${i}]`));
      return;
    }
    if (t === 'number') {
      if (typeof v !== 'number') problems.push(`${at}: expected a number, got ${JSON.stringify(v)}`);
      return;
    }
    if (t === 'string' || t.startsWith('string /*')) {
      if (typeof v !== 'string') problems.push(`${at}: expected a string, got ${JSON.stringify(v)}`);
      return;
    }
    if (t === 'boolean') {
      if (typeof v !== 'boolean') problems.push(`${at}: expected a boolean, got ${JSON.stringify(v)}`);
      return;
    }
    const allowed = allowedConstructors(schema, t);
    if (allowed === undefined) return void problems.push(`${at}: unknown schema type ${t}`);
    if (typeof v !== 'object' || v === null || Array.isArray(v)) {
      return void problems.push(`${at}: expected an object of ${t}`);
    }
    const object = v as Record<string, unknown>;
    const tag = object['@type'];
    if (typeof tag !== 'string') return void problems.push(`${at}: missing '@type'`);
    if (!allowed.includes(tag)) return void problems.push(`${at}: '@type' ${tag} is not a ${t}`);
    const fields = schema.constructors.get(tag) ?? [];
    const known = new Set(fields.map((f) => f.name));
    for (const key of Object.keys(object)) {
      if (key === '@type' || key === '@extra' || key === '@client_id') continue;
      if (!known.has(key)) problems.push(`${at}.${key}: not a field of ${tag}`);
    }
    for (const field of fields) {
      const fv = object[field.name];
      if (fv === undefined || fv === null) {
        if (!field.optional) problems.push(`${at}.${field.name}: required field of ${tag} is missing`);
        continue;
      }
      check(fv, field.type, `${at}.${field.name}`);
    }
  };
  if (type !== undefined) {
    check(value, type, path);
  } else {
    const tag = (value as { '@type'?: unknown } | null)?.['@type'];
    check(value, typeof tag === 'string' ? tag : 'unknown', path);
  }
  return problems;
}

/** Every '@type' and field name used in `value`, for checking them against the real library's binary. */
export function namesIn(value: unknown, out = new Set<string>()): Set<string> {
  if (Array.isArray(value)) {
    for (const item of value) namesIn(item, out);
  } else if (typeof value === 'object' && value !== null) {
    for (const [key, v] of Object.entries(value)) {
      if (key === '@type' && typeof v === 'string') out.add(v);
      else if (!key.startsWith('@')) out.add(key);
      namesIn(v, out);
    }
  }
  return out;
}
