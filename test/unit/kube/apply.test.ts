import { describe, expect, it } from '@jest/globals';
import {
  applyIntent,
  isStatusEqual,
  isSubset,
  needsApply,
  needsApplyWithHash,
  ownerReference,
  withIntentHash,
} from '../../../operator/kube/apply.js';
import { Resources } from '../../../operator/kube/resource.js';

describe('isSubset / needsApply', () => {
  const live = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: 's',
      namespace: 'ns',
      uid: 'u1',
      labels: { app: 'x', other: 'y' },
      resourceVersion: '5',
    },
    spec: {
      clusterIP: '10.0.0.7',
      ports: [
        { name: 'metrics', port: 9090, protocol: 'TCP', targetPort: 9090 },
        { name: 'grpc', port: 50051, protocol: 'TCP', targetPort: 50051 },
      ],
      selector: { app: 'x' },
    },
  };

  it('ignores fields the server or other managers added, and keyed list order', () => {
    const intent = applyIntent(
      Resources.Service,
      { name: 's', namespace: 'ns', labels: { app: 'x' } },
      {
        spec: {
          ports: [
            { name: 'grpc', port: 50051 },
            { name: 'metrics', port: 9090 },
          ],
          selector: { app: 'x' },
        },
      },
    );
    expect(needsApply(live, intent)).toBe(false);
  });

  it('sees a changed value, a missing key, a missing keyed element and a missing object', () => {
    const base = { metadata: { name: 's', namespace: 'ns' } };
    expect(needsApply(live, { ...base, spec: { selector: { app: 'z' } } })).toBe(true);
    expect(needsApply(live, { ...base, metadata: { ...base.metadata, labels: { team: 'a' } } })).toBe(true);
    expect(needsApply(live, { ...base, spec: { ports: [{ name: 'admin', port: 8080 }] } } as never)).toBe(
      true,
    );
    expect(needsApply(undefined, base)).toBe(true);
  });

  it('compares unkeyed lists exactly', () => {
    expect(isSubset({ args: ['a', 'b'] }, { args: ['a', 'b'] })).toBe(true);
    expect(isSubset({ args: ['a'] }, { args: ['a', 'b'] })).toBe(false);
    expect(isSubset({ args: ['b', 'a'] }, { args: ['a', 'b'] })).toBe(false);
  });

  it('treats status conditions as a map keyed by type', () => {
    const current = {
      placement: 'pod-0',
      conditions: [
        {
          type: 'Ready',
          status: 'True',
          reason: 'Up',
          message: '',
          lastTransitionTime: '2026-01-01T00:00:00Z',
        },
        {
          type: 'Scheduled',
          status: 'True',
          reason: 'Placed',
          message: 'on pod-0',
          lastTransitionTime: '2026-01-01T00:00:00Z',
        },
      ],
    };
    const desired = {
      placement: 'pod-0',
      conditions: [
        {
          type: 'Scheduled',
          status: 'True',
          reason: 'Placed',
          message: 'on pod-0',
          lastTransitionTime: '2026-01-01T00:00:00Z',
        },
      ],
    };
    expect(isStatusEqual(current, desired)).toBe(true);
    expect(isStatusEqual(current, { ...desired, placement: 'pod-1' })).toBe(false);
  });
});

describe('intent hash', () => {
  it('changes when the intent drops a field, which a subset check alone cannot see', () => {
    const annotation = 'tdlib-operator.dev/intent';
    const plainBefore = { metadata: { name: 'a', namespace: 'n', labels: { x: '1', y: '2' } } };
    const plainAfter = { metadata: { name: 'a', namespace: 'n', labels: { x: '1' } } };
    // Without a hash, dropping label y looks "already applied" (y is still live), so SSA never removes it.
    expect(needsApply({ ...plainBefore, metadata: { ...plainBefore.metadata, uid: 'u' } }, plainAfter)).toBe(
      false,
    );
    const before = withIntentHash(plainBefore, annotation);
    const after = withIntentHash(plainAfter, annotation);
    // The live object as written by the first apply.
    const live = { ...before, metadata: { ...before.metadata, uid: 'u' } };
    expect(needsApplyWithHash(live, after, annotation)).toBe(true);
    expect(needsApplyWithHash(live, before, annotation)).toBe(false);
    // Key order does not change the hash.
    const reordered = withIntentHash(
      { metadata: { labels: { y: '2', x: '1' }, namespace: 'n', name: 'a' } },
      annotation,
    );
    expect(reordered.metadata?.annotations?.[annotation]).toBe(before.metadata?.annotations?.[annotation]);
  });
});

describe('ownerReference', () => {
  it('needs identity fields and defaults to a blocking controller reference', () => {
    expect(ownerReference({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'a', uid: 'u' } })).toEqual({
      apiVersion: 'v1',
      kind: 'Secret',
      name: 'a',
      uid: 'u',
      controller: true,
      blockOwnerDeletion: true,
    });
    expect(() => ownerReference({ kind: 'Secret', metadata: { name: 'a' } })).toThrow(/uid/);
  });
});
