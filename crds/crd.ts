import { CATEGORY, GROUP, VERSION } from './common.js';
import { PLACED_POD_FIELD } from './naming.js';
import {
  campaignPrinterColumns,
  campaignSpec,
  campaignStatus,
  campaignValidations,
  CAMPAIGN_KIND,
  CAMPAIGN_PLURAL,
} from './campaign.js';
import {
  campaignSlicePrinterColumns,
  campaignSliceSpec,
  campaignSliceStatus,
  CAMPAIGN_SLICE_KIND,
  CAMPAIGN_SLICE_PLURAL,
} from './campaign-slice.js';
import { undocumentedPaths, type CelRule, type TSchema } from './schema.js';
import {
  telegramAccountPrinterColumns,
  telegramAccountSpec,
  telegramAccountStatus,
  telegramAccountValidations,
  TELEGRAM_ACCOUNT_KIND,
  TELEGRAM_ACCOUNT_PLURAL,
} from './telegram-account.js';
import {
  runtimePoolPrinterColumns,
  runtimePoolSpec,
  runtimePoolStatus,
  runtimePoolValidations,
  RUNTIME_POOL_KIND,
  RUNTIME_POOL_PLURAL,
} from './runtime-pool.js';

interface CrdInput {
  kind: string;
  plural: string;
  singular: string;
  shortName: string;
  spec: TSchema;
  status: TSchema;
  printerColumns: ReadonlyArray<{
    name: string;
    type: string;
    jsonPath: string;
    description?: string;
    priority?: number;
  }>;
  description: string;
  /** CEL rules on the whole object: the only place where a rule can see metadata.name. */
  validations?: CelRule[];
  /** In `kubectl get telegram` (default true): internal kinds stay out. */
  inCategory?: boolean;
  /** Fields a list or watch may select on (`--field-selector`), beyond metadata.name and namespace. */
  selectableFields?: ReadonlyArray<{ jsonPath: string }>;
}

/** JSON round trip drops TypeBox's symbol keys and undefined values, leaving plain OpenAPI. */
function plain(schema: TSchema): unknown {
  return JSON.parse(JSON.stringify(schema));
}

function customResourceDefinition(input: CrdInput): Record<string, unknown> {
  const openAPIV3Schema = {
    type: 'object',
    description: input.description,
    required: ['spec'],
    ...(input.validations ? { 'x-kubernetes-validations': input.validations } : {}),
    properties: {
      apiVersion: { type: 'string', description: 'APIVersion of this representation of the object.' },
      kind: { type: 'string', description: 'Kind of the object.' },
      // A rule's fieldPath may point at metadata.name only if the schema declares it.
      metadata: input.validations
        ? { type: 'object', properties: { name: { type: 'string' } } }
        : { type: 'object' },
      spec: plain(input.spec),
      status: plain(input.status),
    },
  };
  const missing = undocumentedPaths(openAPIV3Schema).filter((path) => !path.startsWith('.metadata'));
  if (missing.length > 0)
    throw new Error(`${input.kind}: fields without a description: ${missing.join(', ')}`);
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${input.plural}.${GROUP}` },
    spec: {
      group: GROUP,
      names: {
        kind: input.kind,
        listKind: `${input.kind}List`,
        plural: input.plural,
        singular: input.singular,
        shortNames: [input.shortName],
        ...(input.inCategory === false ? {} : { categories: [CATEGORY] }),
      },
      scope: 'Namespaced',
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: input.printerColumns,
          ...(input.selectableFields ? { selectableFields: input.selectableFields } : {}),
          schema: { openAPIV3Schema },
        },
      ],
    },
  };
}

export function telegramAccountCrd(): Record<string, unknown> {
  return customResourceDefinition({
    kind: TELEGRAM_ACCOUNT_KIND,
    plural: TELEGRAM_ACCOUNT_PLURAL,
    singular: 'telegramaccount',
    shortName: 'tga',
    spec: telegramAccountSpec,
    status: telegramAccountStatus,
    printerColumns: telegramAccountPrinterColumns,
    // Each runtime watches the accounts placed on it by this field: placement is written once, in status.
    selectableFields: [{ jsonPath: `.${PLACED_POD_FIELD}` }],
    description: 'A Telegram login (user or bot) run by tdlib-operator on a runtime pod.',
    validations: telegramAccountValidations,
  });
}

export function campaignCrd(): Record<string, unknown> {
  return customResourceDefinition({
    kind: CAMPAIGN_KIND,
    plural: CAMPAIGN_PLURAL,
    singular: 'campaign',
    shortName: 'tgc',
    spec: campaignSpec,
    status: campaignStatus,
    printerColumns: campaignPrinterColumns,
    description: 'One message sent to many recipients from a set of TelegramAccounts.',
    validations: campaignValidations,
  });
}

export function campaignSliceCrd(): Record<string, unknown> {
  return customResourceDefinition({
    kind: CAMPAIGN_SLICE_KIND,
    plural: CAMPAIGN_SLICE_PLURAL,
    singular: 'campaignslice',
    shortName: 'tgcs',
    spec: campaignSliceSpec,
    status: campaignSliceStatus,
    printerColumns: campaignSlicePrinterColumns,
    description:
      "A slice of a Campaign's recipients and their delivery state (written by the operator and the sender's runtime; not edited by hand).",
    inCategory: false,
  });
}

export function runtimePoolCrd(): Record<string, unknown> {
  return customResourceDefinition({
    kind: RUNTIME_POOL_KIND,
    plural: RUNTIME_POOL_PLURAL,
    singular: 'telegramruntimepool',
    shortName: 'tgp',
    spec: runtimePoolSpec,
    status: runtimePoolStatus,
    printerColumns: runtimePoolPrinterColumns,
    description:
      'The runtime pods of one pool of TelegramAccounts, and how new runtime versions roll out to them (canary steps, analysis, automatic rollback).',
    validations: runtimePoolValidations,
  });
}

export const allCrds = (): Array<Record<string, unknown>> => [
  telegramAccountCrd(),
  campaignCrd(),
  campaignSliceCrd(),
  runtimePoolCrd(),
];
