import { Type, object, stringEnum } from './schema.js';

export const GROUP = 'telegram.tdlib-operator.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const CATEGORY = 'telegram';

/**
 * E.164, checked by CEL on the object that holds the number rather than on the string itself: errors of rules
 * on a scalar (and of `pattern`) echo the value, and phone numbers must never appear in errors.
 */
export const E164_REGEX = "'^\\\\+[1-9][0-9]{6,14}$'";
export const E164_MESSAGE =
  'must be an E.164 phone number: a plus sign and 7 to 15 digits, e.g. +12025550123';

export const phoneNumber = (description: string) => Type.String({ description, maxLength: 16 });

/**
 * Pools name the runtime StatefulSet `tdlib-runtime-<pool>` (crds/naming.ts runtimeName): a StatefulSet's
 * pods carry the label controller-revision-hash=`<statefulset>-<hash of up to 10 characters>`, so the
 * StatefulSet name may have at most 52 characters, which leaves 38 for the pool. Pod names
 * `tdlib-runtime-<pool>-<ordinal>` are then at most 56 characters, valid as a label value (the placement
 * label) with room for any ordinal.
 */
export const MAX_POOL_NAME = 38;

/**
 * TelegramAccount names are label values (the account label on its Lease and Secrets), so 63 at most; the
 * derived names (`tga-<name>`, `<name>-tdlib-key`, `<name>-tdlib-session`, `<name>-login-code`) are then
 * valid object names too.
 */
export const MAX_ACCOUNT_NAME = 63;

/*
 * Where rules sit. A `pattern`, a `format`, an `enum` or a CEL rule on a string prints the string back in
 * the API error ("Invalid value: \"<the value>\""); a CEL rule on the object that holds the string prints
 * only the rule's message, under the field named by fieldPath; `maxLength` prints only the limit. Every
 * field that may hold a secret by mistake (a token pasted where a Secret name goes, a proxy password in a
 * host name or link) is therefore checked from its parent object.
 */

/** A DNS-1123 subdomain, the form of Secret and ConfigMap names (RE2, as CEL's matches() reads it). */
export const DNS_SUBDOMAIN_REGEX = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';
/** A key of a Secret's or ConfigMap's data. */
export const DATA_KEY_REGEX = '^[-._a-zA-Z0-9]+$';

/**
 * CEL rules, for the object that holds `field`, that `field` (a Secret name) is a DNS subdomain. They print
 * no value: a bot token pasted where the Secret name goes must not come back in the error.
 */
export function secretNameRule(field: string, required: boolean, kind = 'Secret') {
  const check = `self.${field}.matches('${DNS_SUBDOMAIN_REGEX}')`;
  return {
    rule: required ? check : `!has(self.${field}) || ${check}`,
    message: `must be the name of a ${kind} in this namespace: lower-case letters, digits, "-" and ".", starting and ending with a letter or digit (e.g. telegram-api)${kind === 'Secret' ? '; a token or password goes into that Secret, never into this field' : ''}`,
    fieldPath: `.${field}`,
  };
}

/** CEL rule, for the object that holds `field`, that `field` is a valid data key (printing no value). */
export function dataKeyRule(field: string, example: string, kind = 'Secret') {
  return {
    rule: `!has(self.${field}) || self.${field}.matches('${DATA_KEY_REGEX}')`,
    message: `must be a key of the ${kind}'s data: letters, digits, "-", "_" and "." only (e.g. ${example})`,
    fieldPath: `.${field}`,
  };
}

export const poolName = Type.String({
  description: `Runtime pool that hosts this account; each pool is one runtime StatefulSet. A DNS label of at most ${MAX_POOL_NAME} characters. Defaults to "default".`,
  default: 'default',
  minLength: 1,
  maxLength: 63,
  // Pool names are not secret: these rules may print the value, which helps to spot the typo.
  'x-kubernetes-validations': [
    {
      rule: "self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",
      message:
        'must be a DNS label: lower-case letters, digits and "-", starting and ending with a letter or digit (e.g. default)',
    },
    {
      rule: `size(self) <= ${MAX_POOL_NAME}`,
      message: `must be at most ${MAX_POOL_NAME} characters: the pool's StatefulSet tdlib-runtime-<pool> and its pods' names must stay valid label values; choose a shorter pool name`,
    },
  ],
});

export const objectMeta = Type.Object({}, { description: 'Standard object metadata.' });

export const readyStatus = stringEnum(['True', 'False', 'Unknown'] as const, {
  description: 'Condition status.',
});

export const labelSelector = object(
  {
    matchLabels: Type.Optional(
      Type.Unsafe<Record<string, string>>({
        type: 'object',
        additionalProperties: { type: 'string' },
        description: 'Labels the selected objects must all have.',
      }),
    ),
    matchExpressions: Type.Optional(
      Type.Array(
        object(
          {
            key: Type.String({ description: 'Label key.', maxLength: 317 }),
            operator: stringEnum(['In', 'NotIn', 'Exists', 'DoesNotExist'] as const, {
              description: 'How the key relates to values.',
            }),
            values: Type.Optional(
              Type.Array(Type.String({ description: 'A label value.', maxLength: 63 }), {
                description: 'Values for In and NotIn.',
                maxItems: 64,
              }),
            ),
          },
          { description: 'A label selector requirement.' },
        ),
        { description: 'Label selector requirements, all of which must match.', maxItems: 16 },
      ),
    ),
  },
  { description: 'A standard Kubernetes label selector.', 'x-kubernetes-map-type': 'atomic' },
);

/** A reference to a whole Secret in the resource's own namespace, its name checked without echo. */
export function secretNameRef(description: string) {
  return object(
    {
      name: Type.String({
        description: 'Name of the Secret, in the same namespace as this resource.',
        minLength: 1,
        maxLength: 253,
      }),
    },
    { description, 'x-kubernetes-validations': [secretNameRule('name', true)] },
  );
}

/** A reference to one key of a Secret in the resource's own namespace, its name and key checked without echo. */
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
    {
      description,
      'x-kubernetes-validations': [secretNameRule('name', true), dataKeyRule('key', defaultKey)],
    },
  );
}
