/**
 * `kubectl telegram campaign report NAME`: one line per recipient of a Campaign, read from its CampaignSlices
 * (label telegram.tdlib-operator.dev/campaign=NAME) in slice index order, then recipient order.
 *
 * Streamed, for campaigns of a million recipients (1,000 slices of 1,000): the slices are listed a page at a
 * time (limit/continue) and each is written, then dropped, before the next page is asked for. The apiserver
 * lists by name, which is index order for the operator's names (sliceName: <campaign>-00042), so normally
 * every slice is printed as it arrives. A slice that arrives before its turn (other names, a gap) is
 * remembered by name only and fetched again when its turn comes, or at the end in index order: memory
 * never holds more than one page plus a list of names.
 *
 * Recipients (phone numbers among them) go to stdout only: errors and warnings name slices, never rows.
 */
import {
  GROUP,
  LABEL_CAMPAIGN,
  type Campaign,
  type CampaignSlice,
  CAMPAIGN_KIND,
  CAMPAIGN_PLURAL,
  CAMPAIGN_SLICE_PLURAL,
} from '../../crds/index.js';
import { CampaignResource, CampaignSliceResource } from '../../crds/resources.js';
import { isApiError, isGone, isNotFound, type RestClient } from '../../operator/kube/client.js';
import { errorMessage } from '../../operator/kube/util.js';
import { CliError, ExitCode } from './errors.js';
import type { Io } from './prompt.js';
import { decodeSlice, formatRow, header, sliceRows, type OutputFormat } from './report-format.js';

/** Set by the operator on every CampaignSlice: the Campaign it belongs to. */
/** CampaignSlices per list request (--chunk-size); a slice of 1,000 recipients is some 10-30 kB of JSON. */
export const DEFAULT_CHUNK_SIZE = 10;

export interface ReportOptions {
  namespace: string;
  name: string;
  output: OutputFormat;
  chunkSize: number;
}

/** Where slices come from: pages of the label-selected list, and single slices by name. */
export interface SliceSource {
  list(continueToken: string | undefined): Promise<{ items: CampaignSlice[]; continue?: string }>;
  /** The slice, or undefined when it no longer exists (or no longer belongs to the campaign). */
  get(name: string): Promise<CampaignSlice | undefined>;
}

/**
 * Calls `emit` for every slice of `source`, in index order (ties by name), each once, holding at most one
 * page of slices. Slices that arrive in order are emitted from the page; the others are noted by name and
 * fetched when their turn comes. An expired continue token (410) restarts the list, skipping what was seen.
 * Returns how many slices were emitted.
 */
export async function forEachSliceInOrder(
  source: SliceSource,
  emit: (slice: CampaignSlice) => Promise<void>,
): Promise<number> {
  const seen = new Set<string>();
  /** index -> names of slices seen before their turn. */
  const deferred = new Map<number, string[]>();
  let next = 0;
  let emitted = 0;

  const emitByName = async (name: string): Promise<void> => {
    const slice = await source.get(name);
    if (slice) {
      await emit(slice);
      emitted++;
    }
  };
  const drain = async (): Promise<void> => {
    for (let names = deferred.get(next); names; names = deferred.get(next)) {
      deferred.delete(next);
      for (const name of names.sort()) await emitByName(name);
      next++;
    }
  };

  let token: string | undefined;
  for (;;) {
    let page: { items: CampaignSlice[]; continue?: string };
    try {
      page = await source.list(token);
    } catch (error) {
      // The continue token outlived the apiserver's compaction window (a slow reader): list again from the
      // start; what was seen is skipped, so no slice is printed twice.
      if (token !== undefined && isGone(error)) {
        token = undefined;
        continue;
      }
      throw error;
    }
    for (const slice of page.items) {
      const name = slice.metadata.name ?? '';
      if (seen.has(name)) continue;
      seen.add(name);
      const index = slice.spec.index;
      if (index === next) {
        await emit(slice);
        emitted++;
        next++;
        await drain();
      } else {
        deferred.set(index, [...(deferred.get(index) ?? []), name]);
      }
    }
    token = page.continue || undefined;
    if (!token) break;
  }
  // A gap in the indexes, or slices listed out of their order: the rest in index order.
  for (const index of [...deferred.keys()].sort((a, b) => a - b)) {
    for (const name of (deferred.get(index) ?? []).sort()) await emitByName(name);
  }
  return emitted;
}

/** The quiet end of the report: the reader of stdout went away (`| head`). */
class OutputClosed extends Error {
  override readonly name = 'OutputClosed';
}

/**
 * stdout with backpressure: each write resolves once the stream took the chunk, so at most one slice's
 * text is buffered. A closed pipe (EPIPE) becomes OutputClosed; the error listener stays, so a late
 * 'error' event never crashes the process.
 */
export class Output {
  private failure: Error | undefined;

  constructor(private readonly stream: NodeJS.WritableStream) {
    stream.on('error', (error: Error) => {
      this.failure ??= error;
    });
  }

  write(text: string): Promise<void> {
    if (this.failure) return Promise.reject(outputError(this.failure));
    return new Promise<void>((resolve, reject) => {
      this.stream.write(text, (error?: Error | null) => {
        if (error) {
          this.failure ??= error;
          reject(outputError(error));
        } else resolve();
      });
    });
  }
}

function outputError(error: Error): Error {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'EPIPE' || code === 'ERR_STREAM_DESTROYED' || code === 'ERR_STREAM_WRITE_AFTER_END') {
    return new OutputClosed(error.message);
  }
  return new CliError(ExitCode.Failed, `cannot write the report: ${errorMessage(error)}`);
}

const NEEDS =
  `kubectl telegram campaign report needs get on ${CAMPAIGN_PLURAL} and list and get on ` +
  `${CAMPAIGN_SLICE_PLURAL} (API group ${GROUP}) in the namespace`;

/** A 403 as the verb and resource that were refused. */
function forbidden(error: unknown, verb: string, plural: string, namespace: string): unknown {
  if (!isApiError(error, 403)) return error;
  return new CliError(
    ExitCode.Failed,
    `not allowed to ${verb} ${plural}.${GROUP} in namespace ${namespace} (403 Forbidden); ${NEEDS}\n` +
      `(the API server said: ${errorMessage(error)})`,
  );
}

async function readCampaign(client: RestClient, namespace: string, name: string): Promise<Campaign> {
  try {
    return await client.get<Campaign>(CampaignResource, namespace, name);
  } catch (error) {
    if (isNotFound(error)) {
      throw new CliError(
        ExitCode.NotFound,
        `${CAMPAIGN_KIND} ${namespace}/${name} not found (kubectl get ${CAMPAIGN_PLURAL} -n ${namespace} lists them)`,
      );
    }
    throw forbidden(error, 'get', CAMPAIGN_PLURAL, namespace);
  }
}

/** The slice is the campaign's: its spec says so, and it is not a leftover of a deleted namesake. */
function belongsTo(slice: CampaignSlice, campaign: Campaign): boolean {
  if (slice.spec.campaign !== campaign.metadata.name) return false;
  const owner = slice.metadata.ownerReferences?.find((o) => o.kind === CAMPAIGN_KIND);
  return owner === undefined || owner.uid === campaign.metadata.uid;
}

export function sliceSource(
  client: RestClient,
  campaign: Campaign,
  namespace: string,
  chunkSize: number,
): SliceSource {
  const labelSelector = `${LABEL_CAMPAIGN}=${campaign.metadata.name ?? ''}`;
  return {
    async list(continueToken) {
      try {
        const page = await client.list<CampaignSlice>(CampaignSliceResource, {
          namespace,
          labelSelector,
          limit: chunkSize,
          continue: continueToken,
        });
        return {
          items: page.items.filter((slice) => belongsTo(slice, campaign)),
          continue: page.metadata.continue,
        };
      } catch (error) {
        throw forbidden(error, 'list', CAMPAIGN_SLICE_PLURAL, namespace);
      }
    },
    async get(name) {
      try {
        const slice = await client.get<CampaignSlice>(CampaignSliceResource, namespace, name);
        return belongsTo(slice, campaign) ? slice : undefined;
      } catch (error) {
        if (isNotFound(error)) return undefined;
        throw forbidden(error, 'get', CAMPAIGN_SLICE_PLURAL, namespace);
      }
    },
  };
}

/** Writes the report to io.stdout; messages go to io.stderr. */
export async function campaignReport(client: RestClient, io: Io, options: ReportOptions): Promise<ExitCode> {
  const { namespace, name, output: format } = options;
  const campaign = await readCampaign(client, namespace, name);
  const out = new Output(io.stdout);
  let started = false;
  const start = async (): Promise<void> => {
    if (started) return;
    started = true;
    const head = header(format);
    if (head) await out.write(head);
  };
  let undecodable = 0;
  try {
    const slices = await forEachSliceInOrder(
      sliceSource(client, campaign, namespace, options.chunkSize),
      async (slice) => {
        await start();
        let text = '';
        try {
          const { keys, ledger } = decodeSlice(slice);
          for (const row of sliceRows(keys, ledger)) text += formatRow(row, format);
        } catch (error) {
          // The message of a gunzip or base64 failure carries no recipient.
          undecodable++;
          io.stderr.write(
            `warning: CampaignSlice ${namespace}/${slice.metadata.name ?? ''} (index ${slice.spec.index}) ` +
              `cannot be decoded, its recipients are missing from the report: ${errorMessage(error)}\n`,
          );
          return;
        }
        if (text) await out.write(text);
      },
    );
    await start();
    if (slices === 0) {
      io.stderr.write(
        `${CAMPAIGN_KIND} ${namespace}/${name} has not been planned yet: it has no CampaignSlices ` +
          '(the operator creates them once it has read the recipients).\n',
      );
    }
  } catch (error) {
    if (error instanceof OutputClosed) return ExitCode.Ok;
    throw error;
  }
  if (undecodable > 0) {
    throw new CliError(
      ExitCode.Failed,
      `${undecodable} CampaignSlice${undecodable === 1 ? '' : 's'} could not be decoded (see the warnings above)`,
    );
  }
  return ExitCode.Ok;
}
