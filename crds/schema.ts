/**
 * Builders for Kubernetes structural schemas that also carry their TypeScript type (TypeBox), so one
 * definition yields both the CRD's openAPIV3Schema and the types the operator and runtime compile against.
 */
import {
  Type,
  type TSchema,
  type SchemaOptions,
  type Static,
  type TObject,
  type TProperties,
} from '@sinclair/typebox';

export { Type };
export type { Static, TSchema };

/** A CEL rule checked by the API server (x-kubernetes-validations). */
export interface CelRule {
  rule: string;
  message: string;
  /** Points the error at a field, relative to the schema that carries the rule. */
  fieldPath?: string;
  reason?: 'FieldValueInvalid' | 'FieldValueRequired' | 'FieldValueForbidden' | 'FieldValueDuplicate';
}

export interface KubeSchemaOptions extends SchemaOptions {
  description: string;
  'x-kubernetes-validations'?: CelRule[];
}

/** A string limited to `values`; structural schemas have no `const`, so this is an enum, typed as a union. */
export function stringEnum<T extends string>(
  values: readonly T[],
  options: KubeSchemaOptions & { default?: T },
) {
  return Type.Unsafe<T>({ type: 'string', enum: [...values], ...options });
}

export function object<P extends TProperties>(properties: P, options: KubeSchemaOptions): TObject<P> {
  return Type.Object(properties, options);
}

/** A reference to one key of a Secret in the resource's own namespace. */
export function secretKeyRef(description: string, defaultKey: string) {
  return object(
    {
      name: Type.String({
        description: 'Name of the Secret, in the same namespace as this resource.',
        minLength: 1,
        maxLength: 253,
      }),
      key: Type.Optional(
        Type.String({
          description: `Key in the Secret's data. Defaults to "${defaultKey}".`,
          default: defaultKey,
          minLength: 1,
          maxLength: 253,
        }),
      ),
    },
    { description },
  );
}

/** The standard Kubernetes condition (metav1.Condition), as a map list keyed by type. */
export const condition = object(
  {
    type: Type.String({ description: 'Type of condition in CamelCase, e.g. Ready.', maxLength: 316 }),
    status: stringEnum(['True', 'False', 'Unknown'] as const, {
      description: 'Status of the condition: True, False or Unknown.',
    }),
    observedGeneration: Type.Optional(
      Type.Integer({
        description: 'The .metadata.generation the condition was set for.',
        minimum: 0,
        format: 'int64',
      }),
    ),
    lastTransitionTime: Type.String({
      description: 'Last time the condition changed status.',
      format: 'date-time',
    }),
    reason: Type.String({
      description: 'Machine-readable reason for the last transition, in CamelCase.',
      maxLength: 1024,
      minLength: 1,
    }),
    message: Type.String({ description: 'Human-readable details of the last transition.', maxLength: 32768 }),
  },
  { description: 'An observation of one aspect of the resource.' },
);
export type Condition = Static<typeof condition>;

export const conditions = Type.Array(condition, {
  description: 'Conditions of the resource, one per type.',
  maxItems: 16,
  'x-kubernetes-list-type': 'map',
  'x-kubernetes-list-map-keys': ['type'],
});

/** Walks a schema and lists paths of properties that lack a description (the generator refuses them). */
export function undocumentedPaths(schema: unknown, path = ''): string[] {
  if (schema === null || typeof schema !== 'object') return [];
  const node = schema as {
    description?: unknown;
    properties?: Record<string, unknown>;
    items?: unknown;
    additionalProperties?: unknown;
  };
  const missing: string[] = [];
  if (path !== '' && typeof node.description !== 'string') missing.push(path);
  for (const [name, child] of Object.entries(node.properties ?? {}))
    missing.push(...undocumentedPaths(child, `${path}.${name}`));
  if (node.items && typeof node.items === 'object') {
    const items = node.items as { properties?: Record<string, unknown> };
    for (const [name, child] of Object.entries(items.properties ?? {}))
      missing.push(...undocumentedPaths(child, `${path}[].${name}`));
  }
  return missing;
}
