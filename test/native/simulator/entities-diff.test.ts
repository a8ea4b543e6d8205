/**
 * Differential test of text entity parsing: parseTextEntities (HTML, MarkdownV2, Markdown) and
 * getTextEntities through td_execute on real libtdjson and on the simulator, for a corpus of realistic
 * campaign texts plus thousands of generated inputs that exercise the error paths.
 */
import { describe, expect, it, jest } from '@jest/globals';
import { join } from 'node:path';
import { REPO, startTs } from './support/child.js';

jest.setTimeout(180_000);

interface DiffSummary {
  readonly note: string;
  readonly total: number;
  readonly corpus: number;
  readonly corpusMismatches: number;
  readonly mismatchCount: number;
  readonly mismatches: readonly unknown[];
}

describe('text entities: simulator vs libtdjson', () => {
  it.each([[101], [202]])('agrees on every input (seed %i)', async (seed) => {
    const result = await startTs(
      join(REPO, 'test/native/simulator/support/entities-diff.ts'),
      ['2500', String(seed)],
      150_000,
    ).done;
    const line = result.stdout.split('\n').find((l) => l.startsWith('DIFF '));
    if (line === undefined)
      throw new Error(`no summary from the child (exit ${result.code}):\n${result.stderr.slice(-3000)}`);
    const summary = JSON.parse(line.slice('DIFF '.length)) as DiffSummary;
    expect(summary.total).toBeGreaterThan(5000);
    expect(summary.corpusMismatches).toBe(0);
    expect(summary.mismatches).toEqual([]);
  });
});
