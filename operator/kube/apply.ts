/**
 * Helpers for server-side apply from reconcilers that write only when something changed (the target for an
 * idle operator is zero writes):
 *
 * - build the apply body (apiVersion/kind/metadata plus only the fields this manager owns);
 * - `isSubset(desired, current)` / `needsApply(current, desired)`: is every field of the intent already in
 *   the live (cached) object? Fields others added (defaults, other managers, status) don't count.
 * - an intent hash annotation for objects whose intent may *drop* fields: SSA removes fields a manager
 *   stops sending, which a subset check cannot see; the hash changes when the intent does.
 * - conditions with metav1 semantics (lastTransitionTime moves only when status changes), so recomputing
 *   the same conditions yields an equal status and no write.
 *
 * Caveat: compare canonical forms. The apiserver normalises some values (quantities like "1000m" -> "1",
 * int-or-string ports); an intent written in another form than the server stores never looks applied.
 */
import { createHash } from 'node:crypto';
import { apiVersionOf, type ApiObject, type ApiObjectMeta, type ResourceDescriptor } from './resource.js';

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface IntentMeta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  finalizers?: string[];
}

/** An SSA body: the descriptor's apiVersion/kind, the metadata given, and `fields` (spec, data, ...). */
export function applyIntent<T extends Record<string, unknown>>(
  resource: ResourceDescriptor,
  metadata: IntentMeta,
  fields: T,
): T & { apiVersion: string; kind: string; metadata: IntentMeta } {
  const meta: IntentMeta = { name: metadata.name };
  if (resource.namespaced) {
    if (!metadata.namespace) throw new Error(`${resource.kind} ${metadata.name} needs a namespace`);
    meta.namespace = metadata.namespace;
  }
  if (metadata.labels && Object.keys(metadata.labels).length > 0) meta.labels = metadata.labels;
  if (metadata.annotations && Object.keys(metadata.annotations).length > 0)
    meta.annotations = metadata.annotations;
  if (metadata.ownerReferences && metadata.ownerReferences.length > 0)
    meta.ownerReferences = metadata.ownerReferences;
  if (metadata.finalizers && metadata.finalizers.length > 0) meta.finalizers = metadata.finalizers;
  return { ...fields, apiVersion: apiVersionOf(resource), kind: resource.kind, metadata: meta };
}

/** A controller owner reference to `owner` (garbage collection deletes the dependent with its owner). */
export function ownerReference(
  owner: ApiObject,
  options: { controller?: boolean; blockOwnerDeletion?: boolean } = {},
): OwnerReference {
  const { apiVersion, kind } = owner;
  const name = owner.metadata?.name;
  const uid = owner.metadata?.uid;
  if (!apiVersion || !kind || !name || !uid)
    throw new Error('an owner needs apiVersion, kind, metadata.name and metadata.uid');
  return {
    apiVersion,
    kind,
    name,
    uid,
    controller: options.controller ?? true,
    blockOwnerDeletion: options.blockOwnerDeletion ?? true,
  };
}

/** Deep equality of JSON values (key order ignored, undefined properties treated as absent). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((item, i) => jsonEqual(item, b[i]));
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const aKeys = Object.keys(ao).filter((k) => ao[k] !== undefined);
  const bKeys = Object.keys(bo).filter((k) => bo[k] !== undefined);
  return aKeys.length === bKeys.length && aKeys.every((k) => jsonEqual(ao[k], bo[k]));
}

/** Keys that identify an element of a map-list (conditions by type, containers/env/volumes by name, ...). */
const LIST_MAP_KEYS = [
  'type',
  'name',
  'key',
  'containerPort',
  'mountPath',
  'devicePath',
  'ip',
  'topologyKey',
];

function listKey(item: unknown): [string, unknown] | undefined {
  if (item === null || typeof item !== 'object' || Array.isArray(item)) return undefined;
  const record = item as Record<string, unknown>;
  for (const key of LIST_MAP_KEYS) if (record[key] !== undefined) return [key, record[key]];
  return undefined;
}

/**
 * True when every field of `desired` is present in `current` with the same value. Objects recurse; lists
 * of keyed objects match elements by key (order ignored, extra elements in current allowed: other managers
 * own them); other lists must be equal. undefined in `desired` means "not part of the intent".
 */
export function isSubset(desired: unknown, current: unknown): boolean {
  if (desired === undefined) return true;
  if (desired === null || typeof desired !== 'object') return desired === current;
  if (current === null || typeof current !== 'object') return false;
  if (Array.isArray(desired)) {
    if (!Array.isArray(current)) return false;
    const keyed = desired.length > 0 && desired.every((item) => listKey(item) !== undefined);
    if (!keyed)
      return desired.length === current.length && desired.every((item, i) => isSubset(item, current[i]));
    return desired.every((item) => {
      const [key, value] = listKey(item) as [string, unknown];
      const match = current.find(
        (candidate) =>
          candidate !== null &&
          typeof candidate === 'object' &&
          (candidate as Record<string, unknown>)[key] === value,
      );
      return match !== undefined && isSubset(item, match);
    });
  }
  if (Array.isArray(current)) return false;
  const currentRecord = current as Record<string, unknown>;
  return Object.entries(desired as Record<string, unknown>).every(([key, value]) =>
    isSubset(value, currentRecord[key]),
  );
}

/** True when an apply of `desired` would change `current` (or current does not exist). apiVersion/kind ignored. */
export function needsApply<T extends ApiObject>(current: ApiObject | undefined, desired: T): boolean {
  if (!current) return true;
  const { apiVersion: _apiVersion, kind: _kind, ...intent } = desired;
  return !isSubset(intent, current);
}

/** True when `desired` status is already reflected in `current` status (subset semantics, see isSubset). */
export function isStatusEqual(current: unknown, desired: unknown): boolean {
  return isSubset(desired, current);
}

/** A stable hash of an intent (JSON with sorted keys), short enough for an annotation value. */
export function intentHash(intent: unknown): string {
  return createHash('sha256').update(canonicalJson(intent)).digest('hex').slice(0, 16);
}

function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record)
    .filter((k) => record[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(record[k])}`).join(',')}}`;
}

/**
 * Adds `annotation: hash(intent)` to the intent's metadata. Pair with `needsApplyWithHash`: an intent that
 * stops sending a field changes the hash, so the apply that removes the field is not skipped.
 */
export function withIntentHash<T extends ApiObject>(
  desired: T,
  annotation: string,
): T & { metadata: ApiObjectMeta & { annotations: Record<string, string> } } {
  const hash = intentHash(desired);
  const metadata = desired.metadata ?? {};
  return {
    ...desired,
    metadata: { ...metadata, annotations: { ...(metadata.annotations ?? {}), [annotation]: hash } },
  };
}

/** needsApply for intents built with withIntentHash: also true when the recorded hash differs. */
export function needsApplyWithHash(
  current: ApiObject | undefined,
  desired: ApiObject,
  annotation: string,
): boolean {
  if (!current) return true;
  const recorded = current.metadata?.annotations?.[annotation];
  const wanted = desired.metadata?.annotations?.[annotation];
  return recorded !== wanted || needsApply(current, desired);
}

// ---- conditions (k8s.io/apimachinery/pkg/api/meta SetStatusCondition semantics) -----------------------
