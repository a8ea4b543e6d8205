import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { UpdateEvent } from '../../../runtime/updates/cloudevents.js';
import { Outbox, replay } from '../../../runtime/updates/outbox.js';

const event = (chat: number, message: number): UpdateEvent => ({
  kind: 'MessageNew',
  id: `${chat}:${message}:new`,
  subject: String(chat),
  time: new Date(0).toISOString(),
  data: { chat_id: chat, message_id: message },
});

describe('Outbox: received events on disk until delivered', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'outbox-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps what was added and not done across a reopen, in order', async () => {
    const outbox = await Outbox.open(dir);
    const added = await outbox.add([event(1, 1), event(2, 1), event(1, 2)], 1000);
    outbox.done(added[0]?.seq ?? 0, 'delivered');
    await outbox.close();
    const again = await Outbox.open(dir);
    expect(again.list().map((p) => p.event.id)).toEqual(['2:1:new', '1:2:new']);
    expect(again.list().map((p) => p.enqueuedAt)).toEqual([1000, 1000]);
    // New events continue the order after the replayed ones.
    const [next] = await again.add([event(3, 1)], 2000);
    expect(next?.seq).toBeGreaterThan(added[2]?.seq ?? Infinity);
    await again.close();
  });

  it('keeps an event announced twice once, until it is done', async () => {
    const edit: UpdateEvent = { ...event(1, 1), kind: 'MessageEdited', id: '1:1:edit:5' };
    const outbox = await Outbox.open(dir);
    const first = await outbox.add([edit], 0);
    expect(await outbox.add([edit], 1)).toEqual([]);
    expect(outbox.size).toBe(1);
    outbox.done(first[0]?.seq ?? 0, 'delivered');
    // Done: the same id may come again (TDLib announcing it after a restart); the receiver dedupes by id.
    expect(await outbox.add([edit], 2)).toHaveLength(1);
    await outbox.close();
  });

  it('takes each new message of a chat in once, even after it was delivered and the file reopened', async () => {
    const outbox = await Outbox.open(dir);
    const [first] = await outbox.add([event(1, 5), event(2, 1)], 0);
    outbox.done(first?.seq ?? 0, 'delivered');
    // A refill overlapping the live updates: 4 and 5 were taken in before (5 is the mark), 6 is new.
    expect((await outbox.add([event(1, 4), event(1, 5), event(1, 6)], 1)).map((p) => p.event.id)).toEqual([
      '1:6:new',
    ]);
    await outbox.close();
    const again = await Outbox.open(dir);
    expect(again.mark('1')).toBe(6);
    expect(again.mark('2')).toBe(1);
    expect(again.mark('3')).toBe(0);
    expect(await again.add([event(1, 6)], 2)).toEqual([]);
    expect(again.counts.delivered).toBe(1);
    await again.close();
  });

  it('remembers when it was created, its marks and its counts through a rewrite', async () => {
    const outbox = await Outbox.open(dir, 12_345);
    expect(outbox.fresh).toBe(true);
    // Enough done records to trigger a rewrite (4096 records, three quarters spent).
    for (let round = 0; round < 3; round++) {
      const added = await outbox.add(
        Array.from({ length: 1000 }, (_, i) => event(7, round * 1000 + i + 1)),
        20_000,
      );
      for (const entry of added) outbox.done(entry.seq, round === 2 ? 'expired' : 'delivered');
    }
    await outbox.add([event(8, 1)], 30_000);
    await outbox.close();
    const lines = readFileSync(join(dir, 'outbox.jsonl'), 'utf8').trim().split('\n');
    // 6,002 records were written; the rewrite kept the state and what was pending then.
    expect(lines.length).toBeLessThan(6002);
    expect(lines.some((line) => line.includes('"op":"state"') && line.includes('"7":'))).toBe(true);
    const again = await Outbox.open(dir);
    expect(again.fresh).toBe(false);
    expect(again.createdAt).toBe(12_345);
    expect(again.mark('7')).toBe(3000);
    expect(again.counts).toEqual({ delivered: 2000, expired: 1000, rejected: 0, deadLettered: 0 });
    expect(again.list().map((p) => p.event.id)).toEqual(['8:1:new']);
    await again.close();
  });

  it('ignores a torn last line (a process killed while writing)', async () => {
    const outbox = await Outbox.open(dir);
    await outbox.add([event(1, 1)], 0);
    await outbox.close();
    appendFileSync(join(dir, 'outbox.jsonl'), '{"op":"add","seq":2,"ev');
    const again = await Outbox.open(dir);
    expect(again.list().map((p) => p.event.id)).toEqual(['1:1:new']);
    await again.close();
  });

  it('rewrites the file with only the pending events once most records are spent', async () => {
    const outbox = await Outbox.open(dir);
    for (let round = 0; round < 10; round++) {
      const added = await outbox.add(
        Array.from({ length: 1000 }, (_, i) => event(round, i)),
        round,
      );
      for (const entry of added) outbox.done(entry.seq, 'delivered');
    }
    await outbox.add([event(99, 1)], 9);
    await outbox.close();
    const text = readFileSync(join(dir, 'outbox.jsonl'), 'utf8');
    const { pending, records } = replay(text);
    expect(pending.map((p) => p.event.id)).toEqual(['99:1:new']);
    // 20,001 records were written; the file keeps fewer than the rewrite threshold plus one round's worth.
    expect(records).toBeLessThan(4096 + 2000);
  });
});
