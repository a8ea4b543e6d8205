/** The object envelope shared by our custom resources, without depending on a Kubernetes client library. */
export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: Array<{
    apiVersion: string;
    kind: string;
    name: string;
    uid: string;
    controller?: boolean;
    blockOwnerDeletion?: boolean;
  }>;
}

export interface KubeObject<Spec, Status> {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec: Spec;
  status?: Status;
}

/** What the REST layer needs to address a kind. Structural, so it lives with the API it describes. */
export interface ResourceDescriptor {
  /** '' for the core group. */
  group: string;
  version: string;
  /** The resource name in URLs, e.g. 'statefulsets'. */
  plural: string;
  kind: string;
  namespaced: boolean;
}
