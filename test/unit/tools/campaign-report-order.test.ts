/**
 * The order and streaming rules of `kubectl telegram campaign report`, on an in-memory slice source: slices
 * come out in index order whatever the list order, each once, with at most a page of them held; an expired
 * continue token restarts the list without repeats; a closed stdout ends the report quietly. Also the
 * command line of the subcommand.
 */
import { PassThrough, Writable } from 'node:stream';
import { API_VERSION, type CampaignSlice } from '../../../crds/index.js';
import { ApiError } from '../../../operator/kube/errors.js';
import { parseArgs } from '../../../tools/kubectl-telegram/args.js';
import { CliError } from '../../../tools/kubectl-telegram/errors.js';
import { Output, forEachSliceInOrder, type SliceSource } from '../../../tools/kubectl-telegram/report.js';

const slice = (name: string, index: number): CampaignSlice => ({
  apiVersion: API_VERSION,
  kind: 'CampaignSlice',
  metadata: { name },
  spec: { campaign: 'c', index, recipients: '', count: 0, assignment: 0, messagesPerMinute: 1 },
});

/** Pages of `pageSize` in name order (as the apiserver lists), counting GETs; `gone` expires tokens. */
class FakeSource implements SliceSource {
  readonly sorted: CampaignSlice[];
  gets: string[] = [];
  lists = 0;
  /** Token values that answer 410 once. */
  readonly gone = new Set<string>();

  constructor(
    slices: CampaignSlice[],
    private readonly pageSize: number,
  ) {
    this.sorted = [...slices].sort((a, b) => (a.metadata.name ?? '').localeCompare(b.metadata.name ?? ''));
  }

  list(token: string | undefined): Promise<{ items: CampaignSlice[]; continue?: string }> {
    this.lists++;
    if (token !== undefined && this.gone.delete(token)) {
      return Promise.reject(new ApiError(410, 'Expired', 'the continue token has expired'));
    }
    const from = token === undefined ? 0 : Number(token);
    const items = this.sorted.slice(from, from + this.pageSize);
    const next = from + this.pageSize;
    return Promise.resolve({ items, continue: next < this.sorted.length ? String(next) : undefined });
  }

  get(name: string): Promise<CampaignSlice | undefined> {
    this.gets.push(name);
    return Promise.resolve(this.sorted.find((s) => s.metadata.name === name));
  }
}

const order = async (source: FakeSource): Promise<string[]> => {
  const names: string[] = [];
  await forEachSliceInOrder(source, (s) => {
    names.push(`${s.metadata.name ?? ''}#${s.spec.index}`);
    return Promise.resolve();
  });
  return names;
};

describe('forEachSliceInOrder', () => {
  it('streams slices listed in index order (the operator names them so) without any extra GET', async () => {
    const source = new FakeSource(
      [3, 0, 4, 1, 2].map((i) => slice(`c-${String(i).padStart(5, '0')}`, i)),
      2,
    );
    expect(await order(source)).toEqual(['c-00000#0', 'c-00001#1', 'c-00002#2', 'c-00003#3', 'c-00004#4']);
    expect(source.gets).toEqual([]);
    expect(source.lists).toBe(3);
  });

  it('puts slices whose names disagree with their indexes in index order, fetching the early ones again', async () => {
    // Name order: a#2 b#0 c#3 d#1 e#4.
    const source = new FakeSource(
      [slice('a', 2), slice('b', 0), slice('c', 3), slice('d', 1), slice('e', 4)],
      1,
    );
    expect(await order(source)).toEqual(['b#0', 'd#1', 'a#2', 'c#3', 'e#4']);
    expect(source.gets).toEqual(['a', 'c']);
  });

  it('prints what follows a gap in index order at the end, and skips a slice deleted meanwhile', async () => {
    const source = new FakeSource([slice('s0', 0), slice('s2', 2), slice('s4', 4), slice('s3', 3)], 10);
    const names: string[] = [];
    await forEachSliceInOrder(
      {
        list: (token) => source.list(token),
        // s3 was deleted between the list and its turn.
        get: (name) => (name === 's3' ? Promise.resolve(undefined) : source.get(name)),
      },
      (s) => {
        names.push(s.metadata.name ?? '');
        return Promise.resolve();
      },
    );
    expect(names).toEqual(['s0', 's2', 's4']);
  });

  it('restarts the list after an expired continue token (410) and prints every slice once', async () => {
    const source = new FakeSource(
      [0, 1, 2, 3, 4, 5].map((i) => slice(`c-${i}`, i)),
      2,
    );
    source.gone.add('4');
    expect(await order(source)).toEqual(['c-0#0', 'c-1#1', 'c-2#2', 'c-3#3', 'c-4#4', 'c-5#5']);
    // 3 pages, the expired one, then the list again from the start (3 pages, the first two seen already).
    expect(source.lists).toBe(3 + 3);
  });

  it('passes any other list error on', async () => {
    const source = new FakeSource([slice('a', 0), slice('b', 1)], 1);
    const failing: SliceSource = {
      list: (token) =>
        token === undefined ? source.list(token) : Promise.reject(new ApiError(500, 'InternalError', 'boom')),
      get: (name) => source.get(name),
    };
    await expect(forEachSliceInOrder(failing, () => Promise.resolve())).rejects.toThrow('boom');
  });
});

describe('Output', () => {
  it('resolves a write once the stream took it', async () => {
    const sink = new PassThrough();
    const out = new Output(sink);
    await out.write('a\n');
    expect(String(sink.read())).toBe('a\n');
  });

  it('turns EPIPE into a quiet end, and never lets the error event crash the process', async () => {
    const epipe = Object.assign(new Error('write EPIPE'), { code: 'EPIPE' });
    const sink = new Writable({ write: (_chunk, _encoding, callback) => callback(epipe) });
    const out = new Output(sink);
    await expect(out.write('a\n')).rejects.toMatchObject({ name: 'OutputClosed' });
    await expect(out.write('b\n')).rejects.toMatchObject({ name: 'OutputClosed' });
  });

  it('reports another write error as a failure', async () => {
    const eio = Object.assign(new Error('write EIO'), { code: 'EIO' });
    const sink = new Writable({ write: (_chunk, _encoding, callback) => callback(eio) });
    await expect(new Output(sink).write('a\n')).rejects.toThrow(/cannot write the report: write EIO/);
  });
});

describe('parseArgs: campaign report', () => {
  it('reads the campaign, namespace, output and chunk size', () => {
    expect(
      parseArgs(['campaign', 'report', 'spring', '-n', 'ops', '-o', 'json', '--chunk-size', '5']),
    ).toMatchObject({
      command: 'campaign-report',
      campaign: 'spring',
      namespace: 'ops',
      output: 'json',
      chunkSize: 5,
    });
    expect(parseArgs(['campaign', 'report', 'spring', '-ojson', '-nops'])).toMatchObject({
      output: 'json',
      namespace: 'ops',
    });
    expect(parseArgs(['campaign', 'report', 'spring'])).toMatchObject({
      output: 'csv',
      chunkSize: undefined,
    });
  });

  it.each([
    [['campaign'], /campaign needs a subcommand/],
    [['campaign', 'list'], /unknown campaign subcommand "list"/],
    [['campaign', 'report'], /needs a campaign name/],
    [['campaign', 'report', 'a', 'b'], /unexpected argument after the campaign name/],
    [['campaign', 'report', 'Bad_Name'], /is not a valid Campaign name/],
    [['campaign', 'report', 'a', '-o', 'yaml'], /unknown output format "yaml": use csv or json/],
    [['campaign', 'report', 'a', '--chunk-size', '0'], /--chunk-size must be a whole number/],
    [['status', 'alice', '-o', 'json'], /apply to campaign report only/],
  ])('%j is a usage error', (argv, message) => {
    let error: unknown;
    try {
      parseArgs(argv);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(CliError);
    expect((error as CliError).exitCode).toBe(2);
    expect((error as CliError).message).toMatch(message);
  });
});
