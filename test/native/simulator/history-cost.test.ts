/**
 * What a history call costs against a big delivery log: 100,000 lines written by "other processes", then
 * getChatHistory / searchChatMessages / getChatMessageByDate through TdClient, as the runtime calls them.
 * The first call builds the index (one read of the log); later calls read only what was appended. Timings
 * are printed (they are the numbers docs/simulator.md quotes); the bounds asserted are loose on purpose, the
 * byte counts are exact.
 */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { appendFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { SimulatorBackend } from '../../../runtime/simulator/index.js';
import { SimRuntime } from '../../../runtime/simulator/runtime.js';
import { TdClientManager, type TdClient } from '../../../runtime/tdlib/client.js';
import { loginUser, makeWorld, params, type WorldFixture } from '../../unit/simulator/support/harness.js';

jest.setTimeout(180_000);

const ME = 5550100001;
const ALICE = 5550100101;
const LINES = 100_000;
/** Lines of the one big conversation (with Alice); the rest go to distinct campaign recipients. */
const BIG_CHAT = 20_000;
const CAMPAIGN_TEXT =
  'Spring sale: 20% off everything until Sunday. Details at https://shop.example/spring — reply STOP to opt out.';

function writeLog(fx: WorldFixture): void {
  const path = join(fx.world.stateDir, 'deliveries.jsonl');
  const now = Date.now();
  const date = Math.floor(now / 1000) - 3600;
  let chunk = '';
  for (let i = 1; i <= LINES; i++) {
    const to = i <= BIG_CHAT ? ALICE : 6_000_000_000 + i;
    const text = i <= BIG_CHAT ? `conversation message ${i}` : CAMPAIGN_TEXT;
    chunk +=
      `{"at":${now - LINES + i},"from":${ME},"to":${to},"chat_id":${to},"message_id":${i * 1048576},` +
      `"text":${JSON.stringify(text)},"sender_kind":"user","status":"delivered","auth_key":"other",` +
      `"pid":1,"date":${date + Math.floor(i / 100)},"random_id":"${i}"}\n`;
    if (i % 10_000 === 0) {
      appendFileSync(path, chunk);
      chunk = '';
    }
  }
}

/** A real gc() to measure what the index retains (not the garbage of parsing the log). */
function gc(): () => void {
  setFlagsFromString('--expose_gc');
  return runInNewContext('gc') as () => void;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

async function timed(calls: number, call: () => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < calls; i++) {
    const started = performance.now();
    await call();
    times.push(performance.now() - started);
  }
  return median(times);
}

describe('history calls against a 100,000-line delivery log', () => {
  let fx: WorldFixture;
  let manager: TdClientManager;
  let client: TdClient;

  beforeAll(async () => {
    fx = makeWorld({ limits: { history: { per_second: 1e6, burst: 1e6 } } });
    writeLog(fx);
    // A plain backend, as the runtime has it (the unit harness schema-checks every object: slower).
    manager = new TdClientManager(new SimulatorBackend({ worldDir: fx.dir }), { defaultTimeoutMs: 30_000 });
    client = manager.createClient();
    await client.invokeUnchecked(params(join(fx.dir, 'db-me')));
    await loginUser(client, '+15550100001', '12345', 'correct horse');
    await client.invokeUnchecked({ '@type': 'searchPublicChat', username: 'alice_demo' });
  });

  afterAll(async () => {
    await manager.shutdown({ timeoutMs: 10_000 });
    fx.cleanup();
  });

  it('builds the index once, then answers from it reading only appended bytes', async () => {
    const logBytes = statSync(join(fx.world.stateDir, 'deliveries.jsonl')).size;
    const history = (from = 0) =>
      client.invokeUnchecked({
        '@type': 'getChatHistory',
        chat_id: ALICE,
        from_message_id: from,
        offset: 0,
        limit: 100,
        only_local: false,
      });
    const search = (query: string) =>
      client.invokeUnchecked({
        '@type': 'searchChatMessages',
        chat_id: ALICE,
        query,
        sender_id: { '@type': 'messageSenderUser', user_id: ME },
        from_message_id: 0,
        offset: 0,
        limit: 20,
      });
    const byDate = () =>
      client.invokeUnchecked({
        '@type': 'getChatMessageByDate',
        chat_id: ALICE,
        date: Math.floor(Date.now() / 1000),
      });

    let started = performance.now();
    const first = await history();
    const firstMs = performance.now() - started;
    expect((first.messages as unknown[]).length).toBe(100);

    const historyMs = await timed(200, () => history());
    const pagedMs = await timed(200, () => history(10_000 * 1048576));
    const searchHitMs = await timed(50, () => search('conversation message 19999'));
    const searchMissMs = await timed(50, () => search('no such text'));
    const byDateMs = await timed(200, byDate);
    // Other processes keep sending: 500 new lines before each call, read incrementally.
    let nextId = LINES;
    const appendedMs = await timed(20, async () => {
      let lines = '';
      for (let i = 0; i < 500; i++) {
        nextId++;
        lines +=
          `{"at":${Date.now()},"from":${ME},"to":${6_000_000_000 + nextId},"chat_id":${6_000_000_000 + nextId},` +
          `"message_id":${nextId * 1048576},"text":${JSON.stringify(CAMPAIGN_TEXT)},"sender_kind":"user",` +
          `"status":"delivered","auth_key":"other","pid":1,"date":1,"random_id":"${nextId}"}\n`;
      }
      appendFileSync(join(fx.world.stateDir, 'deliveries.jsonl'), lines);
      await history();
    });

    // A campaign recovery check: one search per recipient chat (each holds one message).
    const recipients = Array.from({ length: 200 }, (_, i) => 6_000_000_000 + BIG_CHAT + 1 + i * 397);

    // The same index measured directly (no TdClient, no scheduler): the per-call cost of the index itself.
    const collect = gc();
    collect();
    const heapBefore = process.memoryUsage().heapUsed;
    const rt = new SimRuntime(fx.world, { now: () => Date.now() }, undefined);
    started = performance.now();
    const index = rt.history();
    const indexBuildMs = performance.now() - started;
    collect();
    const heapMb = (process.memoryUsage().heapUsed - heapBefore) / 1e6;
    const grownBytes = statSync(join(fx.world.stateDir, 'deliveries.jsonl')).size;
    expect(index.size).toBe(nextId);
    expect(index.bytesRead).toBe(grownBytes);
    const indexTimes: number[] = [];
    for (const id of recipients) {
      const t = performance.now();
      const entries = rt.history().conversation(ME, id);
      expect(entries.some((e) => e.text.toLowerCase().includes('spring sale'))).toBe(true);
      indexTimes.push(performance.now() - t);
    }
    expect(index.bytesRead).toBe(grownBytes);
    rt.close();

    const report = {
      lines: LINES,
      logMB: +(logBytes / 1e6).toFixed(1),
      firstCallBuildsIndexMs: +firstMs.toFixed(1),
      indexRetainedHeapMB: +heapMb.toFixed(1),
      getChatHistoryMedianMs: +historyMs.toFixed(2),
      getChatHistoryPagedMedianMs: +pagedMs.toFixed(2),
      searchHitIn20kMessageChatMedianMs: +searchHitMs.toFixed(2),
      searchMissIn20kMessageChatMedianMs: +searchMissMs.toFixed(2),
      getChatMessageByDateMedianMs: +byDateMs.toFixed(2),
      getChatHistoryAfter500AppendedLinesMedianMs: +appendedMs.toFixed(2),
      indexOnlyBuildMs: +indexBuildMs.toFixed(1),
      indexOnlyLookupOneMessageChatMedianMs: +median(indexTimes).toFixed(3),
    };
    console.log(`history cost: ${JSON.stringify(report, null, 1)}`);
    expect(firstMs).toBeLessThan(20_000);
    expect(historyMs).toBeLessThan(50);
    expect(byDateMs).toBeLessThan(50);
  });
});
