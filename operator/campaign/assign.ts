/**
 * Which sender sends which slice, as a pure function of the slices and the senders. The rules that keep
 * every recipient sent at most once while senders come and go:
 *  1. A slice changes sender only after its current sender released it (status.released for the current
 *     assignment: nothing of it in flight any more), or when that sender no longer exists at all.
 *  2. A slice whose sender cannot send (not Ready for a while, parked, no longer selected) is asked to be
 *     released (spec.releaseRequested); the sender finishes what is in flight, resolves it, and releases.
 *  3. A slice with work left and no sender goes to the eligible sender with the least work.
 *  4. An eligible sender with no work takes over one released-on-request slice of the busiest sender per
 *     pass, so senders that become Ready share the remaining work.
 * Recipients a sender left in doubt stay in doubt in the ledger (Telegram dedupes per sender account
 * only): a new sender never sends to them.
 */

export interface SliceView {
  name: string;
  index: number;
  sender?: string;
  assignment: number;
  releaseRequested: boolean;
  /** status.released for the current assignment. */
  released: boolean;
  /** Recipients still to send (pending, including ones waiting for a retry). */
  remaining: number;
}

export interface SenderView {
  name: string;
  /** May send now (Ready long enough, not parked, selected). */
  eligible: boolean;
  /** The account exists (a deleted sender releases nothing: its slices move without waiting). */
  exists: boolean;
}

export interface SliceAssignment {
  name: string;
  sender?: string;
  assignment: number;
  releaseRequested: boolean;
}

export function assignSlices(
  slices: readonly SliceView[],
  senders: readonly SenderView[],
): SliceAssignment[] {
  const byName = new Map(senders.map((s) => [s.name, s]));
  const eligible = senders
    .filter((s) => s.eligible)
    .map((s) => s.name)
    .sort();
  const load = new Map<string, number>(eligible.map((n) => [n, 0]));
  const out = new Map<string, SliceAssignment>();
  const ordered = [...slices].sort((a, b) => a.index - b.index);

  // Current holders keep what they may keep; the others are asked to let go (or lose it, if gone).
  const unassigned: SliceView[] = [];
  for (const slice of ordered) {
    const sender = slice.sender ? byName.get(slice.sender) : undefined;
    if (slice.sender && sender?.eligible && !(slice.releaseRequested && slice.released)) {
      out.set(slice.name, {
        name: slice.name,
        sender: slice.sender,
        assignment: slice.assignment,
        releaseRequested: slice.releaseRequested && slice.remaining > 0,
      });
      if (slice.remaining > 0) load.set(slice.sender, (load.get(slice.sender) ?? 0) + slice.remaining);
      continue;
    }
    const free = !slice.sender || slice.released || !sender?.exists;
    if (!free) {
      // Still held by a sender that cannot send: it must finish its in-flight sends and release first.
      out.set(slice.name, {
        name: slice.name,
        sender: slice.sender,
        assignment: slice.assignment,
        releaseRequested: slice.remaining > 0,
      });
      continue;
    }
    if (slice.remaining === 0) {
      out.set(slice.name, { ...pick(slice), releaseRequested: false });
      continue;
    }
    unassigned.push(slice);
  }

  for (const slice of unassigned) {
    const target = leastLoaded(eligible, load);
    if (!target) {
      out.set(slice.name, {
        name: slice.name,
        sender: undefined,
        assignment: slice.sender ? slice.assignment + 1 : slice.assignment,
        releaseRequested: false,
      });
      continue;
    }
    load.set(target, (load.get(target) ?? 0) + slice.remaining);
    out.set(slice.name, {
      name: slice.name,
      sender: target,
      // Always a new assignment, even back to the sender that released it: its release was for the old one,
      // and a sender never sends on an assignment it released.
      assignment: slice.assignment + 1,
      releaseRequested: false,
    });
  }

  // Share: an idle eligible sender gets one slice released from the busiest one (one per pass).
  const idle = eligible.filter((n) => (load.get(n) ?? 0) === 0);
  // Releases asked of eligible senders are shares still on their way to an idle one: one per idle sender at
  // a time, or a slow acknowledgement would strip the busiest sender one slice per pass.
  const sharesOnTheWay = ordered.filter((s) => {
    const a = out.get(s.name);
    return a?.releaseRequested && a.sender !== undefined && byName.get(a.sender)?.eligible;
  }).length;
  if (idle.length > sharesOnTheWay) {
    const busiest = [...load.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0];
    if (busiest && busiest[1] > 0) {
      const held = ordered.filter(
        (s) =>
          out.get(s.name)?.sender === busiest[0] && s.remaining > 0 && !out.get(s.name)?.releaseRequested,
      );
      const last = held[held.length - 1];
      if (held.length >= 2 && last)
        out.set(last.name, { ...(out.get(last.name) as SliceAssignment), releaseRequested: true });
    }
  }
  return ordered.map((s) => out.get(s.name) as SliceAssignment);
}

function pick(slice: SliceView): Omit<SliceAssignment, 'releaseRequested'> {
  return { name: slice.name, sender: slice.sender, assignment: slice.assignment };
}

function leastLoaded(eligible: readonly string[], load: ReadonlyMap<string, number>): string | undefined {
  let best: string | undefined;
  let bestLoad = Number.POSITIVE_INFINITY;
  for (const name of eligible) {
    const l = load.get(name) ?? 0;
    if (l < bestLoad) {
      best = name;
      bestLoad = l;
    }
  }
  return best;
}
