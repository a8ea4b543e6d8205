/**
 * What the REST layer needs to address a kind: group/version/plural and whether it is namespaced. No
 * discovery: the operator talks to a fixed set of kinds, so hard-coded descriptors save a round trip and a
 * failure mode at start-up.
 */

/** The metadata fields this package reads. Structural, so client-node models and our CRD types both fit. */
export interface ApiObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  deletionTimestamp?: string | Date;
  managedFields?: unknown;
}

export interface ApiObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ApiObjectMeta;
}

import type { ResourceDescriptor } from '../../crds/kube-object.js';

export type { ResourceDescriptor };

/** 'v1' for core, 'apps/v1' otherwise: the value of `apiVersion` in objects of this kind. */
export function apiVersionOf(descriptor: ResourceDescriptor): string {
  return descriptor.group === '' ? descriptor.version : `${descriptor.group}/${descriptor.version}`;
}

function groupPrefix(descriptor: ResourceDescriptor): string {
  return descriptor.group === ''
    ? `/api/${descriptor.version}`
    : `/apis/${descriptor.group}/${descriptor.version}`;
}

/**
 * The collection URL path. For namespaced kinds an undefined or empty namespace means all namespaces
 * (list/watch only); cluster-scoped kinds ignore the namespace.
 */
export function collectionPath(descriptor: ResourceDescriptor, namespace?: string): string {
  const prefix = groupPrefix(descriptor);
  if (descriptor.namespaced && namespace) {
    return `${prefix}/namespaces/${encodeURIComponent(namespace)}/${descriptor.plural}`;
  }
  return `${prefix}/${descriptor.plural}`;
}

/** The URL path of one object, optionally of a subresource ('status', 'scale', ...). */
export function objectPath(
  descriptor: ResourceDescriptor,
  namespace: string | undefined,
  name: string,
  subresource?: string,
): string {
  if (descriptor.namespaced && !namespace) {
    throw new Error(`${descriptor.kind} is namespaced: a namespace is required to address ${name}`);
  }
  const base = `${collectionPath(descriptor, namespace)}/${encodeURIComponent(name)}`;
  return subresource ? `${base}/${subresource}` : base;
}

function core(kind: string, plural: string, namespaced = true): ResourceDescriptor {
  return { group: '', version: 'v1', plural, kind, namespaced };
}

/** Descriptors of the built-in kinds the operator and the runtime use. */
export const Resources = {
  Namespace: core('Namespace', 'namespaces', false),
  Node: core('Node', 'nodes', false),
  Secret: core('Secret', 'secrets'),
  ConfigMap: core('ConfigMap', 'configmaps'),
  Pod: core('Pod', 'pods'),
  Service: core('Service', 'services'),
  ServiceAccount: core('ServiceAccount', 'serviceaccounts'),
  /** core/v1 Event: what `kubectl describe` shows under "Events". */
  Event: core('Event', 'events'),
  /** events.k8s.io/v1 Event: the newer API over the same storage. */
  EventV1: { group: 'events.k8s.io', version: 'v1', plural: 'events', kind: 'Event', namespaced: true },
  StatefulSet: {
    group: 'apps',
    version: 'v1',
    plural: 'statefulsets',
    kind: 'StatefulSet',
    namespaced: true,
  },
  Role: {
    group: 'rbac.authorization.k8s.io',
    version: 'v1',
    plural: 'roles',
    kind: 'Role',
    namespaced: true,
  },
  RoleBinding: {
    group: 'rbac.authorization.k8s.io',
    version: 'v1',
    plural: 'rolebindings',
    kind: 'RoleBinding',
    namespaced: true,
  },
  /** authentication.k8s.io/v1 TokenReview: is this bearer token valid, for which audience, whose? */
  TokenReview: {
    group: 'authentication.k8s.io',
    version: 'v1',
    plural: 'tokenreviews',
    kind: 'TokenReview',
    namespaced: false,
  },
  /** authorization.k8s.io/v1 SubjectAccessReview: may this user do this (RBAC and every other authorizer)? */
  SubjectAccessReview: {
    group: 'authorization.k8s.io',
    version: 'v1',
    plural: 'subjectaccessreviews',
    kind: 'SubjectAccessReview',
    namespaced: false,
  },
  NetworkPolicy: {
    group: 'networking.k8s.io',
    version: 'v1',
    plural: 'networkpolicies',
    kind: 'NetworkPolicy',
    namespaced: true,
  },
  PodDisruptionBudget: {
    group: 'policy',
    version: 'v1',
    plural: 'poddisruptionbudgets',
    kind: 'PodDisruptionBudget',
    namespaced: true,
  },
  Lease: { group: 'coordination.k8s.io', version: 'v1', plural: 'leases', kind: 'Lease', namespaced: true },
  CustomResourceDefinition: {
    group: 'apiextensions.k8s.io',
    version: 'v1',
    plural: 'customresourcedefinitions',
    kind: 'CustomResourceDefinition',
    namespaced: false,
  },
} as const satisfies Record<string, ResourceDescriptor>;

/** "namespace/name", or "name" for cluster-scoped objects: the cache and work-queue key (client-go's format). */
export function objectKeyString(namespace: string | undefined, name: string): string {
  return namespace ? `${namespace}/${name}` : name;
}

/** The cache key of an object. */
export function keyOfObject(obj: ApiObject): string {
  const name = obj.metadata?.name;
  if (!name) throw new Error(`object of kind ${obj.kind ?? '?'} has no metadata.name`);
  return objectKeyString(obj.metadata?.namespace, name);
}
