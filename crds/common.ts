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

const dnsLabelRule = {
  rule: "self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",
  message:
    'must be a DNS label: lower-case letters, digits and "-", starting and ending with a letter or digit',
};

export const poolName = Type.String({
  description:
    'Runtime pool that hosts this account; each pool is one runtime StatefulSet. Defaults to "default".',
  default: 'default',
  minLength: 1,
  maxLength: 40,
  'x-kubernetes-validations': [dnsLabelRule],
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
