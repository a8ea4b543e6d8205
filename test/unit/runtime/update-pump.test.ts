import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TdObject } from '../../../runtime/tdlib/backend.js';
import type { UpdateKind } from '../../../runtime/updates/cloudevents.js';
import { Outbox } from '../../../runtime/updates/outbox.js';
import { UpdatesPump } from '../../../runtime/updates/pump.js';

const message = (chat: number, id: number, extra: Record<string, unknown> = {}): TdObject => ({
  '@type': 'message',
  id,
  chat_id: chat,
  date: 1_795_000_000,
  is_outgoing: false,
  sender_id: { '@type': 'messageSenderUser', user_id: 42 },
  content: { '@type': 'messageText', text: { '@type': 'formattedText', text: `m${id}`, entities: [] } },
  ...extra,
});

describe('UpdatesPump: TDLib updates into the outbox, in order', () => {
  let dir: string;
  let outbox: Outbox;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pump-'));
    outbox = await Outbox.open(dir);
  });
  afterEach(async () => {
    await outbox.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const pump = (
    kinds: UpdateKind[],
    getMessage: (chat: number, id: number) => Promise<TdObject | undefined> = () =>
      Promise.resolve(undefined),
  ) => {
    let wakes = 0;
    const errors: unknown[] = [];
    const p = new UpdatesPump({
      outbox,
      kinds: () => new Set(kinds),
      getMessage,
      delivered: () => (wakes += 1),
      onError: (e) => errors.push(e),
    });
    return { p, wakes: () => wakes, errors };
  };

  it('keeps TDLib order across a slow edit lookup, and wakes the deliverer once events are on disk', async () => {
    let release: () => void = () => undefined;
    const slow = new Promise<void>((r) => (release = r));
    const { p, wakes, errors } = pump(['MessageNew', 'MessageEdited'], async (chat, id) => {
      await slow;
      return message(chat, id, { edit_date: 1_795_000_100 });
    });
    p.onUpdate({ '@type': 'updateNewMessage', message: message(7, 1) });
    p.onUpdate({ '@type': 'updateMessageEdited', chat_id: 7, message_id: 1, edit_date: 1_795_000_100 });
    p.onUpdate({ '@type': 'updateNewMessage', message: message(7, 2) });
    release();
    await p.drain();
    expect(outbox.list().map((e) => e.event.id)).toEqual(['7:1:new', '7:1:edit:1795000100', '7:2:new']);
    expect(wakes()).toBeGreaterThan(0);
    expect(errors).toEqual([]);
  });

  it('delivers only the kinds asked for, and nothing the account sent itself', async () => {
    const { p } = pump(['MessageNew']);
    p.onUpdate({ '@type': 'updateNewMessage', message: message(7, 1, { is_outgoing: true }) });
    p.onUpdate({
      '@type': 'updateDeleteMessages',
      chat_id: 7,
      message_ids: [1],
      is_permanent: true,
      from_cache: false,
    });
    p.onUpdate({ '@type': 'updateNewMessage', message: message(8, 3) });
    await p.drain();
    expect(outbox.list().map((e) => e.event.id)).toEqual(['8:3:new']);
  });

  it('drops an edit of a message that is gone by the time it is fetched', async () => {
    const { p, errors } = pump(['MessageEdited']);
    p.onUpdate({ '@type': 'updateMessageEdited', chat_id: 7, message_id: 9, edit_date: 1 });
    await p.drain();
    expect(outbox.size).toBe(0);
    expect(errors).toEqual([]);
  });
});
