import type { Condition } from '../crds/index.js';

export type ConditionInput = Omit<Condition, 'lastTransitionTime'>;

/**
 * Returns the condition to write: lastTransitionTime moves only when the status changes (API conventions),
 * so re-applying the same observation is a no-op and costs no write.
 */
export function nextCondition(
  existing: readonly Condition[] | undefined,
  input: ConditionInput,
  now: Date,
): Condition {
  const previous = existing?.find((c) => c.type === input.type);
  const lastTransitionTime =
    previous && previous.status === input.status
      ? previous.lastTransitionTime
      : now.toISOString().replace(/\.\d{3}Z$/, 'Z');
  return { ...input, lastTransitionTime };
}

/** True when writing `next` would change nothing a reader can see. */
export function sameCondition(existing: readonly Condition[] | undefined, next: Condition): boolean {
  const previous = existing?.find((c) => c.type === next.type);
  return (
    previous !== undefined &&
    previous.status === next.status &&
    previous.reason === next.reason &&
    previous.message === next.message &&
    previous.observedGeneration === next.observedGeneration
  );
}
