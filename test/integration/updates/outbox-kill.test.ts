/**
 * The outbox's promise under SIGKILL: every event it reported durable is still pending after the process
 * died at an arbitrary point of its writes, and nothing it never accepted appears. Runs the built module
 * (dist) in a child process, so the kill is a real one.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { waitFor } from '../../cluster/wait.js';
import { Outbox } from '../../../runtime/updates/outbox.js';

const outboxModule = pathToFileURL(resolve('dist/runtime/updates/outbox.js')).href;

/** Adds events in batches of 7 as fast as it can, printing the last id of each batch once durable. */
const writer = `
import { Outbox } from ${JSON.stringify(outboxModule)};
const outbox = await Outbox.open(process.argv[2]);
let n = 0;
for (;;) {
  const batch = Array.from({ length: 7 }, () => {
    n += 1;
    return { kind: 'MessageNew', id: 'c' + (n % 5) + ':' + n + ':new', subject: 'c' + (n % 5), time: '', data: { n } };
  });
  const added = await outbox.add(batch, Date.now());
  // Every third event is delivered: done records interleave with adds, as in real delivery.
  for (const entry of added) if (entry.event.data.n % 3 === 0) outbox.done(entry.seq, 'delivered');
  process.stdout.write('durable ' + n + '\\n');
}
`;

describe('outbox under SIGKILL', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'outbox-kill-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps every event it reported durable, whatever moment the process is killed at', async () => {
    for (let round = 0; round < 3; round++) {
      const script = join(dir, 'writer.mjs');
      writeFileSync(script, writer);
      const child = spawn(process.execPath, [script, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
      let reported = 0;
      let text = '';
      child.stdout.on('data', (chunk: Buffer) => {
        text += chunk.toString();
        const lines = text.split('\n');
        text = lines.pop() ?? '';
        for (const line of lines) reported = Math.max(reported, Number(line.split(' ')[1]));
      });
      // Kill it at a different depth each round, mid-stream.
      const killAt = 500 * (round + 1);
      await waitFor('the writer to report events durable', () => (reported >= killAt ? true : undefined), {
        timeoutMs: 30_000,
      });
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGKILL');
      await exited;

      const outbox = await Outbox.open(dir);
      const pending = new Set(outbox.list().map((p) => Number(p.event.data.n)));
      await outbox.close();
      // Each round starts numbering at 1 again: ids repeat, so check this round's numbers.
      const lost: number[] = [];
      for (let n = 1; n <= reported; n++) if (n % 3 !== 0 && !pending.has(n)) lost.push(n);
      expect(lost).toEqual([]);
      rmSync(join(dir, 'outbox.jsonl'));
    }
  });
});
