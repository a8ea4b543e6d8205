/**
 * Sends on demand, exactly once per Idempotency-Key, with a real (simulated) TDLib client: what a caller
 * sees on a retry, after the runtime died between accepting and sending, and after it died between
 * sending and recording; counted in the world's own delivery log.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DirectSends, type DirectSend } from '../../../runtime/sending/direct-sends.js';
import { SendLedger } from '../../../runtime/sending/send-ledger.js';
import type { TdObject } from '../../../runtime/tdlib/backend.js';
import type { TdClient } from '../../../runtime/tdlib/client.js';
import {
  loginUser,
  makeWorld,
  params,
  Recorder,
  startSession,
  textMessage,
  outcomeOf,
  worldSynced,
  type Session,
  type WorldFixture,
} from '../simulator/support/harness.js';

const ME = 5550100001;
const ALICE = 5550100101;

describe('DirectSends: one message per Idempotency-Key', () => {
  let fx: WorldFixture;
  let session: Session;
  let tmp = '';
  let client: TdClient;
  const ledgers: SendLedger[] = [];

  beforeEach(async () => {
    fx = makeWorld();
    session = startSession(fx.dir);
    tmp = mkdtempSync(join(tmpdir(), 'direct-sends-'));
    client = session.manager.createClient();
    await client.invokeUnchecked(params(join(tmp, 'db')));
    await loginUser(client, '+15550100001', '12345', 'correct horse');
  });

  afterEach(async () => {
    for (const ledger of ledgers.splice(0)) await ledger.close();
    await session.close();
    rmSync(tmp, { recursive: true, force: true });
    fx.cleanup();
  });

  async function sends(options: { afterAccept?: () => void; ready?: boolean; isBot?: boolean } = {}) {
    const ledger = await SendLedger.open(tmp);
    ledgers.push(ledger);
    return new DirectSends({
      ledger,
      client: () => (options.ready === false ? undefined : client),
      myUserId: () => ME,
      isBot: options.isBot ?? false,
      execute: (request) => session.manager.executeUnchecked(request),
      ...(options.afterAccept ? { afterAccept: options.afterAccept } : {}),
    });
  }

  const toAlice = (key: string, text = 'your order shipped'): DirectSend => ({
    key,
    to: '@alice_demo',
    text,
  });
  const delivered = (text: string) => fx.world.deliveries((d) => d.to === ALICE && d.text === text);

  it('sends once and answers a retry with the same message', async () => {
    const api = await sends();
    const first = await api.send(toAlice('k1'));
    expect(first).toMatchObject({ status: 200, chatId: ALICE, replayed: false });
    const again = await api.send(toAlice('k1'));
    expect(again).toEqual({ ...first, replayed: true });
    // A new process with the same volume answers it too.
    expect(await (await sends()).send(toAlice('k1'))).toEqual({ ...first, replayed: true });
    expect(delivered('your order shipped')).toHaveLength(1);
  });

  it('refuses the same key for another message, naming the key', async () => {
    const api = await sends();
    await api.send(toAlice('k2', 'first text'));
    const reused = await api.send(toAlice('k2', 'second text'));
    expect(reused).toMatchObject({ status: 422, reason: 'IdempotencyKeyReused' });
    expect('message' in reused && reused.message).toContain('k2');
    expect(delivered('second text')).toHaveLength(0);
  });

  it('concurrent requests with one key make one message', async () => {
    const api = await sends();
    const answers = await Promise.all([
      api.send(toAlice('k3')),
      api.send(toAlice('k3')),
      api.send(toAlice('k3')),
    ]);
    expect(new Set(answers.map((a) => ('messageId' in a ? a.messageId : 0))).size).toBe(1);
    expect(delivered('your order shipped')).toHaveLength(1);
  });

  it('died after accepting, before TDLib sent: the retry sends it, once', async () => {
    const dying = await sends({
      afterAccept: () => {
        throw new Error('killed');
      },
    });
    await expect(dying.send(toAlice('k4'))).rejects.toThrow('killed');
    expect(delivered('your order shipped')).toHaveLength(0);
    const restarted = await sends();
    expect(await restarted.send(toAlice('k4'))).toMatchObject({ status: 200, chatId: ALICE });
    expect(await restarted.send(toAlice('k4'))).toMatchObject({ status: 200, replayed: true });
    expect(delivered('your order shipped')).toHaveLength(1);
  });

  it('died after TDLib sent, before the outcome was written: the retry finds it and does not send again', async () => {
    // What the first process left: the key accepted with its chat, and the message in the chat.
    const ledger = await SendLedger.open(tmp);
    const request = toAlice('k5');
    const { digestOf } = await import('../../../runtime/sending/direct-sends.js');
    await ledger.write({
      key: 'k5',
      digest: digestOf(request),
      at: Date.now(),
      chatId: ALICE,
      text: request.text,
    });
    await ledger.close();
    const rec = new Recorder(client);
    await client.invokeUnchecked({ '@type': 'searchPublicChat', username: 'alice_demo' });
    const pending = await client.invokeUnchecked(textMessage(ALICE, request.text));
    const sent = await outcomeOf(rec, pending.id as number);
    expect(sent['@type']).toBe('updateMessageSendSucceeded');
    const answer = await (await sends()).send(request);
    expect(answer).toMatchObject({
      status: 200,
      chatId: ALICE,
      replayed: true,
      messageId: (sent.message as TdObject).id,
    });
    expect(delivered(request.text)).toHaveLength(1);
  });

  it('a bot in that situation says the outcome is in doubt and sends nothing', async () => {
    const ledger = await SendLedger.open(tmp);
    const request = toAlice('k6');
    const { digestOf } = await import('../../../runtime/sending/direct-sends.js');
    await ledger.write({
      key: 'k6',
      digest: digestOf(request),
      at: Date.now(),
      chatId: ALICE,
      text: request.text,
    });
    await ledger.close();
    expect(await (await sends({ isBot: true })).send(request)).toMatchObject({
      status: 409,
      reason: 'InDoubt',
    });
    expect(delivered(request.text)).toHaveLength(0);
  });

  it('answers 503 with Retry-After while the account cannot send, and keeps the key free', async () => {
    expect(await (await sends({ ready: false })).send(toAlice('k7'))).toMatchObject({
      status: 503,
      reason: 'AccountNotReady',
      retryAfterSeconds: 5,
    });
    expect(await (await sends()).send(toAlice('k7'))).toMatchObject({ status: 200, replayed: false });
  });

  it('edits the account’s own message; a retry, or the same edit again under a new key, changes nothing more', async () => {
    const api = await sends();
    const sent = await api.send(toAlice('e1', 'shipped on Monday'));
    if (!('messageId' in sent)) throw new Error(`send refused: ${JSON.stringify(sent)}`);
    const fix = { key: 'e2', to: '@alice_demo', text: 'shipped on Tuesday', editMessageId: sent.messageId };
    expect(await api.send(fix)).toEqual({
      status: 200,
      chatId: ALICE,
      messageId: sent.messageId,
      replayed: false,
    });
    expect(await api.send(fix)).toMatchObject({ status: 200, replayed: true });
    // The same text again (Telegram: MESSAGE_NOT_MODIFIED) is what was asked: done.
    expect(await api.send({ ...fix, key: 'e3' })).toMatchObject({ status: 200, messageId: sent.messageId });
    const edits = fx.world.edits().filter((e) => e.chat_id === ALICE && e.message_id === sent.messageId);
    expect(edits.map((e) => e.text)).toEqual(['shipped on Tuesday']);
    expect(delivered('shipped on Tuesday')).toHaveLength(0);
  });

  it('an edit left in doubt by a crash is done again on retry, even by a bot’s rules', async () => {
    const api = await sends();
    const sent = await api.send(toAlice('e4', 'first words'));
    if (!('messageId' in sent)) throw new Error(`send refused: ${JSON.stringify(sent)}`);
    const edit = { key: 'e5', to: '@alice_demo', text: 'second words', editMessageId: sent.messageId };
    const dying = await sends({
      isBot: true,
      afterAccept: () => {
        throw new Error('killed');
      },
    });
    await expect(dying.send(edit)).rejects.toThrow('killed');
    expect(await (await sends({ isBot: true })).send(edit)).toMatchObject({
      status: 200,
      messageId: sent.messageId,
    });
    expect(fx.world.edits().filter((e) => e.message_id === sent.messageId)).toHaveLength(1);
  });

  it('an edit of a message that is not there is 404, of someone else’s 403; both are the key’s answer', async () => {
    const api = await sends();
    const missing = await api.send({ key: 'e6', to: '@alice_demo', text: 'x', editMessageId: 987654321 });
    expect(missing).toMatchObject({ status: 404, reason: 'MessageNotFound' });
    expect(await api.send({ key: 'e6', to: '@alice_demo', text: 'x', editMessageId: 987654321 })).toEqual(
      missing,
    );
    const theirs = fx.world.sendMessage('@alice_demo', ME, 'hello from alice');
    await worldSynced(session, fx);
    const foreign = await api.send({
      key: 'e7',
      to: '@alice_demo',
      text: 'rewritten',
      editMessageId: theirs.message_id,
    });
    expect(foreign).toMatchObject({ status: 403, reason: 'MessageNotEditable' });
    expect(fx.world.edits()).toHaveLength(0);
  });

  it('a final refusal is the key’s answer; a recipient that does not exist is 404', async () => {
    fx.world.blockUser('@alice_demo', ME);
    const api = await sends();
    await worldSynced(session, fx);
    const blocked = await api.send(toAlice('k8', 'blocked?'));
    expect(blocked.status).toBe(403);
    expect(await api.send(toAlice('k8', 'blocked?'))).toEqual(blocked);
    expect(await api.send({ key: 'k9', to: '@nobody_here', text: 'x' })).toMatchObject({ status: 404 });
    expect(await api.send({ key: 'k10', to: 'not a recipient!', text: 'x' })).toMatchObject({
      status: 400,
      reason: 'InvalidRecipient',
    });
  });
});
