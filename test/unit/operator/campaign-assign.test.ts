/**
 * Which sender sends which slice (operator/campaign/assign.ts), as senders come and go. The safety rule the
 * whole campaign's "at most once" rests on: a slice changes sender only once its sender released it (nothing
 * of it in flight) or no longer exists; every change of sender is a new assignment, so a release written for
 * an old assignment is never read as one for the new.
 */
import {
  assignSlices,
  type SenderView,
  type SliceAssignment,
  type SliceView,
} from '../../../operator/campaign/assign.js';

const slice = (name: string, index: number, over: Partial<SliceView> = {}): SliceView => ({
  name,
  index,
  assignment: 0,
  releaseRequested: false,
  released: false,
  remaining: 100,
  ...over,
});
const ready = (name: string): SenderView => ({ name, eligible: true, exists: true });
const notReady = (name: string): SenderView => ({ name, eligible: false, exists: true });
const deleted = (name: string): SenderView => ({ name, eligible: false, exists: false });

const loadOf = (out: readonly SliceAssignment[], views: readonly SliceView[]): Record<string, number> => {
  const load: Record<string, number> = {};
  out.forEach((a, i) => {
    if (a.sender) load[a.sender] = (load[a.sender] ?? 0) + (views[i]?.remaining ?? 0);
  });
  return load;
};

describe('assignSlices: placing work', () => {
  it('gives each unassigned slice to the eligible sender with the least work, as a new assignment', () => {
    const views = [
      slice('s0', 0, { remaining: 300 }),
      slice('s1', 1),
      slice('s2', 2),
      slice('s3', 3),
      slice('s4', 4, { remaining: 0 }),
    ];
    const out = assignSlices(views, [ready('b'), ready('a'), notReady('c')]);
    expect(out.map((o) => [o.name, o.sender, o.assignment, o.releaseRequested])).toEqual([
      ['s0', 'a', 1, false],
      ['s1', 'b', 1, false],
      ['s2', 'b', 1, false],
      ['s3', 'b', 1, false],
      // Nothing left to send: nobody needs it.
      ['s4', undefined, 0, false],
    ]);
    expect(loadOf(out, views)).toEqual({ a: 300, b: 300 });
  });

  it('answers one assignment per slice, in slice order, whatever order the slices came in', () => {
    const views = [slice('s2', 2), slice('s0', 0), slice('s1', 1)];
    const out = assignSlices(views, [ready('a')]);
    expect(out.map((o) => o.name)).toEqual(['s0', 's1', 's2']);
  });

  it('leaves slices where they are while their senders may send, counting their work', () => {
    const views = [
      slice('s0', 0, { sender: 'a', assignment: 4, remaining: 500 }),
      slice('s1', 1, { sender: 'b', assignment: 2, remaining: 10 }),
      slice('s2', 2, { sender: 'b', assignment: 7, remaining: 0 }),
      slice('new', 3, { remaining: 50 }),
    ];
    const out = assignSlices(views, [ready('a'), ready('b')]);
    expect(out).toEqual([
      { name: 's0', sender: 'a', assignment: 4, releaseRequested: false },
      { name: 's1', sender: 'b', assignment: 2, releaseRequested: false },
      { name: 's2', sender: 'b', assignment: 7, releaseRequested: false },
      // b has less work than a: the new slice goes there.
      { name: 'new', sender: 'b', assignment: 1, releaseRequested: false },
    ]);
  });

  it('leaves work unassigned when nobody can send, with a new assignment if it had a sender', () => {
    const out = assignSlices(
      [slice('fresh', 0), slice('orphan', 1, { sender: 'gone', assignment: 3 })],
      [notReady('a'), deleted('gone')],
    );
    expect(out).toEqual([
      { name: 'fresh', sender: undefined, assignment: 0, releaseRequested: false },
      { name: 'orphan', sender: undefined, assignment: 4, releaseRequested: false },
    ]);
  });
});

describe('assignSlices: the release handshake', () => {
  it.each<[string, SenderView, Partial<SliceView>, SliceAssignment]>([
    [
      'not Ready: asked to release, kept',
      notReady('a'),
      {},
      { name: 's', sender: 'a', assignment: 3, releaseRequested: true },
    ],
    [
      'not Ready, asked already, not released yet: still kept',
      notReady('a'),
      { releaseRequested: true },
      { name: 's', sender: 'a', assignment: 3, releaseRequested: true },
    ],
    [
      'not Ready, released: moves on, as a new assignment',
      notReady('a'),
      { releaseRequested: true, released: true },
      { name: 's', sender: 'b', assignment: 4, releaseRequested: false },
    ],
    [
      'deleted: moves on without a release it can never give',
      deleted('a'),
      {},
      { name: 's', sender: 'b', assignment: 4, releaseRequested: false },
    ],
    [
      'not Ready with nothing left to send: neither asked nor moved',
      notReady('a'),
      { remaining: 0 },
      { name: 's', sender: 'a', assignment: 3, releaseRequested: false },
    ],
    [
      'Ready again before it released: keeps it, and the request stands',
      ready('a'),
      { releaseRequested: true },
      { name: 's', sender: 'a', assignment: 3, releaseRequested: true },
    ],
    [
      'Ready, asked, finished its work meanwhile: the request is dropped',
      ready('a'),
      { releaseRequested: true, remaining: 0 },
      { name: 's', sender: 'a', assignment: 3, releaseRequested: false },
    ],
  ])('a slice whose sender is %s', (_, holder, over, expected) => {
    const out = assignSlices([slice('s', 0, { sender: 'a', assignment: 3, ...over })], [holder, ready('b')]);
    expect(out).toEqual([expected]);
  });

  it('never moves a slice its sender still holds, however idle the others are', () => {
    const holders: SenderView[] = [notReady('a'), ready('a')];
    for (const holder of holders)
      for (const releaseRequested of [false, true])
        for (const remaining of [0, 1, 100]) {
          const views = [
            slice('s0', 0, { sender: 'a', assignment: 2, releaseRequested, remaining }),
            slice('s1', 1, { sender: 'a', assignment: 2, releaseRequested, remaining }),
          ];
          const out = assignSlices(views, [holder, ready('b'), ready('c')]);
          for (const o of out) {
            expect(o.sender).toBe('a');
            expect(o.assignment).toBe(2);
          }
        }
  });

  it('moves a released slice to the sender with the least work, not back to a busy one', () => {
    const out = assignSlices(
      [
        slice('s0', 0, { sender: 'a', assignment: 1, remaining: 200 }),
        slice('s1', 1, { sender: 'c', assignment: 5, releaseRequested: true, released: true, remaining: 40 }),
      ],
      [ready('a'), ready('b'), notReady('c')],
    );
    expect(out[1]).toEqual({ name: 's1', sender: 'b', assignment: 6, releaseRequested: false });
  });

  // A regression at HEAD (3fb2699): the slice went back at the same assignment, which its status still said
  // was released, so the runtime never worked it again and the next pass kept it there.
  it('gives a released slice back to its old sender only as a new assignment', () => {
    const out = assignSlices(
      [slice('s', 0, { sender: 'a', assignment: 3, releaseRequested: true, released: true })],
      [ready('a')],
    );
    expect(out[0]?.sender).toBe('a');
    expect(out[0]?.assignment).toBeGreaterThan(3);
  });
});

describe('assignSlices: sharing with a sender that became Ready', () => {
  it('asks the busiest sender to release its last slice with work, and no more while that share is on its way', () => {
    const views = [
      slice('s0', 0, { sender: 'a', assignment: 1 }),
      slice('s1', 1, { sender: 'a', assignment: 1 }),
      slice('s2', 2, { sender: 'a', assignment: 1 }),
      slice('s3', 3, { sender: 'a', assignment: 1, remaining: 0 }),
      slice('s4', 4, { sender: 'b', assignment: 1, remaining: 50 }),
    ];
    const out = assignSlices(views, [ready('a'), ready('b'), ready('c')]);
    expect(out.map((o) => [o.name, o.sender, o.assignment, o.releaseRequested])).toEqual([
      ['s0', 'a', 1, false],
      ['s1', 'a', 1, false],
      ['s2', 'a', 1, true],
      ['s3', 'a', 1, false],
      ['s4', 'b', 1, false],
    ]);
    // While a has not released, later passes ask nothing more of it: one idle sender, one share.
    const views2 = views.map((v, i) => ({ ...v, releaseRequested: out[i]?.releaseRequested ?? false }));
    const second = assignSlices(views2, [ready('a'), ready('b'), ready('c')]);
    expect(second).toEqual(out);
    // Two idle senders: two shares on their way, one at a time per pass.
    const twoIdle = [ready('a'), ready('b'), ready('c'), ready('d')];
    const third = assignSlices(views2, twoIdle);
    expect(third.filter((o) => o.releaseRequested).map((o) => o.name)).toEqual(['s1', 's2']);
    const views3 = views.map((v, i) => ({ ...v, releaseRequested: third[i]?.releaseRequested ?? false }));
    expect(assignSlices(views3, twoIdle)).toEqual(third);
  });

  it('leaves a sender with a single slice alone', () => {
    const out = assignSlices(
      [slice('s0', 0, { sender: 'a', assignment: 1, remaining: 1000 })],
      [ready('a'), ready('b')],
    );
    expect(out).toEqual([{ name: 's0', sender: 'a', assignment: 1, releaseRequested: false }]);
  });

  it('asks nothing when no sender is idle', () => {
    const out = assignSlices(
      [
        slice('s0', 0, { sender: 'a', assignment: 1 }),
        slice('s1', 1, { sender: 'a', assignment: 1 }),
        slice('s2', 2, { sender: 'b', assignment: 1, remaining: 1 }),
      ],
      [ready('a'), ready('b'), notReady('c')],
    );
    expect(out.some((o) => o.releaseRequested)).toBe(false);
  });

  it('hands the released slice to the idle sender, and then the work is shared', () => {
    const senders = [ready('a'), ready('b')];
    let views = [
      slice('s0', 0, { sender: 'a', assignment: 1 }),
      slice('s1', 1, { sender: 'a', assignment: 1 }),
    ];
    const asked = assignSlices(views, senders);
    expect(asked[1]?.releaseRequested).toBe(true);
    // The sender finishes what it has in flight and releases.
    views = views.map((v, i) => ({ ...v, releaseRequested: asked[i]?.releaseRequested ?? false }));
    views[1] = { ...(views[1] as SliceView), released: true };
    const moved = assignSlices(views, senders);
    expect(moved).toEqual([
      { name: 's0', sender: 'a', assignment: 1, releaseRequested: false },
      { name: 's1', sender: 'b', assignment: 2, releaseRequested: false },
    ]);
  });
});

describe('assignSlices over many passes', () => {
  function rng(seed: number): (n: number) => number {
    let s = seed;
    return (n) => {
      s = (s * 1103515245 + 12345) % 2 ** 31;
      return s % n;
    };
  }

  /**
   * One operator pass, checked, then what the runtimes do until the next: a sender that exists acknowledges a
   * release request (some time), one that may send works its slice unless it released it.
   */
  function pass(views: SliceView[], senders: SenderView[], random: (n: number) => number): SliceView[] {
    const byName = new Map(senders.map((s) => [s.name, s]));
    const out = assignSlices(views, senders);
    expect(out).toHaveLength(views.length);
    return views.map((before, i) => {
      const after = out[i] as SliceAssignment;
      expect(after.name).toBe(before.name);
      if (after.sender !== before.sender) {
        // Safety: the old sender can no longer send any of it.
        const old = before.sender ? byName.get(before.sender) : undefined;
        expect(!before.sender || before.released || !old?.exists).toBe(true);
        // A new holder is one that may send.
        if (after.sender) expect(byName.get(after.sender)?.eligible).toBe(true);
      }
      // A released assignment is over: the slice is only ever sent again under a new one.
      if (before.released && after.sender && before.remaining > 0)
        expect(after.assignment).toBeGreaterThan(before.assignment);
      if (after.sender !== before.sender && before.sender)
        expect(after.assignment).toBeGreaterThan(before.assignment);
      expect(after.assignment).toBeGreaterThanOrEqual(before.assignment);
      if (after.releaseRequested) {
        expect(after.sender).toBeDefined();
        expect(before.remaining).toBeGreaterThan(0);
      }

      // A status says released only for the assignment it was written for.
      const sameAssignment = after.assignment === before.assignment && after.sender === before.sender;
      let released = sameAssignment && before.released;
      const holder = after.sender ? byName.get(after.sender) : undefined;
      if (after.releaseRequested && holder?.exists && random(2) === 0) released = true;
      let remaining = before.remaining;
      if (holder?.eligible && !released && !after.releaseRequested && remaining > 0)
        remaining = Math.max(0, remaining - 1 - random(3));
      return {
        ...before,
        sender: after.sender,
        assignment: after.assignment,
        releaseRequested: after.releaseRequested,
        released,
        remaining,
      };
    });
  }

  it.each([1, 2, 3, 4, 5, 6])(
    'moves slices only when released or their sender is gone, and finishes once senders settle (seed %i)',
    (seed) => {
      const random = rng(seed);
      const names = ['a', 'b', 'c', 'd'];
      const exists = new Set(names);
      let views: SliceView[] = Array.from({ length: 8 }, (_, i) => slice(`s${i}`, i, { remaining: 60 }));
      // Senders come and go: Ready or not, and now and then one is deleted or created again.
      for (let round = 0; round < 150; round++) {
        if (random(20) === 0) {
          const n = names[random(names.length)] ?? 'a';
          if (exists.has(n)) exists.delete(n);
          else exists.add(n);
        }
        const senders = names.map((n) => ({
          name: n,
          eligible: exists.has(n) && random(3) > 0,
          exists: exists.has(n),
        }));
        views = pass(views, senders, random);
      }
      // Then the ones that exist stay Ready (at least one): every recipient gets sent.
      if (exists.size === 0) exists.add('a');
      const settled = names.map((n) => ({ name: n, eligible: exists.has(n), exists: exists.has(n) }));
      for (let round = 0; round < 500 && views.some((v) => v.remaining > 0); round++)
        views = pass(views, settled, random);
      expect(views.filter((v) => v.remaining > 0)).toEqual([]);
    },
  );
});
