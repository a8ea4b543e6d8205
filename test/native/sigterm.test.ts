import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { compileFixture, runNode, type CompiledFixture } from './helpers/child.js';

const RUNS = 20;
const CLIENTS = 200;

describe('SIGTERM with initialized clients', () => {
  let fixture: CompiledFixture;

  beforeAll(() => {
    fixture = compileFixture('test/native/fixtures/sigterm-child.ts');
  });

  afterAll(() => fixture.remove());

  it(`exits 0 in ${RUNS} runs of ${RUNS} (${CLIENTS} clients, requests in flight)`, async () => {
    const outcomes: string[] = [];
    for (let run = 0; run < RUNS; run++) {
      let signalled = false;
      const result = await runNode(fixture.entry, {
        args: [String(CLIENTS)],
        timeoutMs: 60_000,
        onStdout: (stdout, child) => {
          if (!signalled && stdout.includes('READY')) {
            signalled = true;
            child.kill('SIGTERM');
          }
        },
      });
      outcomes.push(
        result.code === 0 && signalled
          ? 'ok'
          : `run ${run}: code ${result.code} signal ${result.signal} ${result.stderr}`,
      );
    }
    expect(outcomes).toEqual(Array.from({ length: RUNS }, () => 'ok'));
  }, 400_000);
});
