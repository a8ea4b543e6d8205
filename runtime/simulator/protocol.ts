/**
 * The JSON side of td_send/td_execute: parsing request text and reading typed fields with the coercions
 * and error texts of TDLib's own JSON parser (td/telegram/td_api_json.cpp, tdutils JsonValue), e.g. an
 * int32 field accepts "5" as well as 5, a missing string is "", and a wrong type is
 * `Failed to parse JSON object as TDLib request: Expected String, but receive Number`.
 */
import { TD_FUNCTIONS } from './generated/td-functions.js';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** An error answer: thrown by handlers and turned into { '@type': 'error', code, message }. */
export class TdApiError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

export const PARSE_PREFIX = 'Failed to parse JSON object as TDLib request: ';

export function parseFailure(message: string): TdApiError {
  return new TdApiError(400, PARSE_PREFIX + message);
}

export type ParsedRequest =
  | {
      readonly ok: true;
      readonly request: JsonObject;
      readonly type: string;
      readonly extra: Json | undefined;
    }
  | { readonly ok: false; readonly error: TdApiError; readonly extra: Json | undefined };

function jsonTypeName(value: Json | undefined): string {
  if (value === null || value === undefined) return 'Null';
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  if (typeof value === 'number') return 'Number';
  if (typeof value === 'string') return 'String';
  if (Array.isArray(value)) return 'Array';
  return 'Object';
}

/** Parses request text the way td_json_client does, including which failures still carry '@extra'. */
export function parseRequest(text: string): ParsedRequest {
  let value: Json;
  try {
    value = JSON.parse(text) as Json;
  } catch (error) {
    const detail = text.trim() === '' ? 'Unexpected string end' : (error as Error).message;
    return {
      ok: false,
      error: new TdApiError(400, `Failed to parse request as JSON object: ${detail}`),
      extra: undefined,
    };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, error: new TdApiError(400, 'Expected a JSON object'), extra: undefined };
  }
  const extra = value['@extra'];
  const type = value['@type'];
  if (type === undefined) return { ok: false, error: parseFailure('Can\'t find field "@type"'), extra };
  if (typeof type !== 'string') {
    return {
      ok: false,
      error: parseFailure(
        typeof type === 'number'
          ? `Unknown constructor 0x${(type >>> 0).toString(16).padStart(8, '0')}`
          : `Expected String, but receive ${jsonTypeName(type)}`,
      ),
      extra,
    };
  }
  if (!TD_FUNCTIONS.has(type)) return { ok: false, error: parseFailure(`Unknown class "${type}"`), extra };
  return { ok: true, request: value, type, extra };
}

export function isJsonObject(value: Json | undefined): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function str(obj: JsonObject, field: string): string {
  const v = obj[field];
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string') throw parseFailure(`Expected String, but receive ${jsonTypeName(v)}`);
  return v;
}

function integer(v: Json | undefined, bits: 32 | 64): number {
  if (v === undefined || v === null) return 0;
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw parseFailure(`Expected Integer, but receive ${v}`);
    return v;
  }
  if (typeof v === 'string') {
    if (!/^-?[0-9]+$/.test(v)) throw parseFailure(`Can't parse as an integer string "${v}"`);
    const n = Number(v);
    if (bits === 32 && (n > 2147483647 || n < -2147483648)) throw parseFailure(`Can't parse "${v}" as int32`);
    return n;
  }
  throw parseFailure(`Expected Number, but receive ${jsonTypeName(v)}`);
}

export function int32(obj: JsonObject, field: string): number {
  return integer(obj[field], 32);
}

/** int53/int64 identifiers: numbers, or decimal strings (how int64 travels in TDLib's JSON). */
export function int53(obj: JsonObject, field: string): number {
  return integer(obj[field], 64);
}

export function bool(obj: JsonObject, field: string): boolean {
  const v = obj[field];
  if (v === undefined || v === null) return false;
  if (typeof v !== 'boolean') throw parseFailure(`Expected Bool, but receive ${jsonTypeName(v)}`);
  return v;
}

export function double(obj: JsonObject, field: string): number {
  const v = obj[field];
  if (v === undefined || v === null) return 0;
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v))) return Number(v);
  throw parseFailure(`Expected Number, but receive ${jsonTypeName(v)}`);
}

/** A nested object field; null when absent. `expected` restricts '@type' to the listed constructors. */
export function object(obj: JsonObject, field: string, expected?: readonly string[]): JsonObject | null {
  const v = obj[field];
  if (v === undefined || v === null) return null;
  if (!isJsonObject(v)) throw parseFailure(`Expected Object, but receive ${jsonTypeName(v)}`);
  const type = v['@type'];
  if (expected !== undefined) {
    if (typeof type !== 'string') throw parseFailure('Can\'t find field "@type"');
    if (!expected.includes(type)) throw parseFailure(`Unknown class "${type}"`);
  }
  return v;
}

export function array(obj: JsonObject, field: string): Json[] {
  const v = obj[field];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw parseFailure(`Expected Array, but receive ${jsonTypeName(v)}`);
  return v;
}

/** bytes fields are base64 in TDLib's JSON, checked in td::base64_decode's order: padding, length, alphabet. */
export function bytes(obj: JsonObject, field: string): Buffer {
  const v = str(obj, field);
  const body = v.replace(/=+$/, '');
  const padding = v.length - body.length;
  if (padding >= 3) throw parseFailure('Wrong string padding');
  if ((body.length + padding) % 4 !== 0) throw parseFailure('Wrong padding length');
  if (!/^[A-Za-z0-9+/]*$/.test(body)) throw parseFailure('Wrong character in the string');
  return Buffer.from(v, 'base64');
}

/** Strings TDLib receives must be valid UTF-8; lone surrogates in JSON text are not. */
export function isWellFormed(text: string): boolean {
  return !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(text);
}
