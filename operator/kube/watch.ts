/**
 * Parsing of a watch response: one JSON object per line, `{"type": ..., "object": ...}`. We read the raw
 * stream ourselves instead of using @kubernetes/client-node's Watch/ListWatch (checked in 1.4.0's
 * dist/cache.js and watch.js): Watch reports an in-stream 410 as an ordinary ERROR event followed by a
 * done() with no error (kubernetes-client/javascript#392), leaving the relist to the caller (ListWatch does
 * clear its resourceVersion for that one); ListWatch stops for good after any other error such as
 * ECONNRESET (#1496); both can stall silently on half-open connections (#364, #596, #958); and restarting
 * from an error handler storms (#1933). The reflector needs to see each of those cases distinctly to
 * resume, relist or back off.
 */
import type { Readable } from 'node:stream';
import type { ApiObject } from './resource.js';

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

export interface WatchEvent<T = ApiObject> {
  type: WatchEventType;
  object: T;
}

/** A metav1.Status as sent in an ERROR event. */
export interface StatusObject {
  kind?: string;
  code?: number;
  reason?: string;
  message?: string;
}

/**
 * Yields events as lines complete. A partial last line at end-of-stream is discarded: the apiserver always
 * terminates events with a newline, so a fragment means the connection broke mid-event, and the reflector
 * resumes from the last complete event's resourceVersion anyway.
 */
export async function* watchEvents<T = ApiObject>(stream: Readable): AsyncGenerator<WatchEvent<T>> {
  let buffered = '';
  stream.setEncoding('utf8');
  for await (const chunk of stream) {
    buffered += chunk as string;
    let newline = buffered.indexOf('\n');
    while (newline >= 0) {
      const line = buffered.slice(0, newline).trim();
      buffered = buffered.slice(newline + 1);
      if (line.length > 0) yield parseEvent<T>(line);
      newline = buffered.indexOf('\n');
    }
  }
}

export function parseEvent<T>(line: string): WatchEvent<T> {
  const parsed = JSON.parse(line) as { type?: unknown; object?: unknown };
  const type = parsed.type;
  if (
    type !== 'ADDED' &&
    type !== 'MODIFIED' &&
    type !== 'DELETED' &&
    type !== 'BOOKMARK' &&
    type !== 'ERROR'
  ) {
    throw new Error(`unexpected watch event type ${String(type)}`);
  }
  return { type, object: parsed.object as T };
}
