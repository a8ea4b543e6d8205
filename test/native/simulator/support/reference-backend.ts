/**
 * The real-libtdjson side of the conformance suite. It uses the project's native addon backend
 * (runtime/tdlib/native-backend.ts, class NativeBackend) when that exists and loads; until then it falls
 * back to a minimal TdBackend over tdl's prebuilt addon, which drives the same libtdjson 1.8.67 from
 * @prebuilt-tdlib/linux-x64-glibc through td_create_client_id/td_send/td_receive/td_execute. Either way
 * the answers come from real TDLib; only the transport differs. Run it in a child process: libtdjson is
 * process-global and aborts the process if a client is still open at exit.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { TdBackend, TdBatchListener, TdReceived } from '../../../../runtime/tdlib/backend.js';

const require = createRequire(import.meta.url);

export function libtdjsonPath(): string {
  return join(dirname(require.resolve('@prebuilt-tdlib/linux-x64-glibc/package.json')), 'libtdjson.so');
}

interface TdlNew {
  init(timeoutSeconds: number): void;
  ref(): void;
  unref(): void;
  createClientId(): number;
  send(clientId: number, request: string): void;
  receive(): Promise<string | null>;
  execute(request: string): string;
}

/** TdBackend over tdl's addon (one object per hop, which is fine for conformance, not for speed). */
export class TdlAddonBackend implements TdBackend {
  readonly kind = 'native-tdl-addon';
  private readonly td: TdlNew;
  private listener: TdBatchListener | undefined;
  private readonly early: TdReceived[] = [];
  private closed = false;
  private looping = false;

  constructor(libraryFile: string = libtdjsonPath()) {
    const { loadAddon } = require('tdl/dist/addon.js') as {
      loadAddon: (file: string, ignoreAlreadyLoaded?: boolean) => { tdnew: TdlNew };
    };
    this.td = loadAddon(libraryFile, true).tdnew;
    this.td.execute(JSON.stringify({ '@type': 'setLogVerbosityLevel', new_verbosity_level: 0 }));
    this.td.init(0.5);
  }

  createClientId(): number {
    const id = this.td.createClientId();
    this.loop();
    return id;
  }

  send(clientId: number, requestJson: string): void {
    this.td.send(clientId, requestJson);
  }

  execute(requestJson: string): string {
    return this.td.execute(requestJson);
  }

  onReceive(listener: TdBatchListener): void {
    this.listener = listener;
    if (this.early.length > 0) listener(this.early.splice(0));
  }

  async close(): Promise<void> {
    this.closed = true;
    this.td.unref();
  }

  private loop(): void {
    if (this.looping) return;
    this.looping = true;
    this.td.ref();
    void (async () => {
      while (!this.closed) {
        const text = await this.td.receive();
        if (text === null) continue;
        const object = JSON.parse(text) as TdReceived;
        if (this.listener === undefined) this.early.push(object);
        else this.listener([object]);
      }
    })();
  }
}

/** NativeBackend when the project's addon is built, else TdlAddonBackend; says which one it picked. */
export async function createReferenceBackend(): Promise<{ backend: TdBackend; note: string }> {
  const here = dirname(fileURLToPath(import.meta.url));
  const modulePath = join(here, '../../../../runtime/tdlib/native-backend.ts');
  if (existsSync(modulePath)) {
    try {
      const module = (await import(pathToFileURL(modulePath).href)) as {
        NativeBackend?: new (options?: Record<string, unknown>) => TdBackend;
      };
      if (module.NativeBackend !== undefined) {
        const backend = new module.NativeBackend({ logVerbosity: 0 });
        return { backend, note: `NativeBackend (${backend.kind})` };
      }
    } catch (error) {
      return {
        backend: new TdlAddonBackend(),
        note: `tdl addon (NativeBackend unavailable: ${error instanceof Error ? error.message.split('\n')[0] : String(error)})`,
      };
    }
  }
  return { backend: new TdlAddonBackend(), note: 'tdl addon (runtime/tdlib/native-backend.ts not present)' };
}
