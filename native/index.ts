/**
 * Loader for the tdjson addon: finds libtdjson and the compiled .node file, and exposes the addon as a
 * small typed class. Imports nothing of the project (the addon is a generic libtdjson binding).
 *
 * libtdjson: options.libraryPath, else TDLIB_LIBRARY_PATH, else TDLIB_ADDON_PATH when it names the
 * library rather than a .node file (the previous backend's setting), else @prebuilt-tdlib/linux-x64-glibc.
 * Addon: options.addonPath, else TDLIB_ADDON_PATH when it ends in .node, else native/build/Release.
 */
import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface TdJsonReceiverOptions {
  /** td_receive timeout: how long the thread waits when idle. Stopping does not wait for it. */
  readonly timeoutSeconds?: number;
  /** Most objects per batch: bounds how long one batch holds the JS thread. */
  readonly maxBatchObjects?: number;
  /** A batch is closed once its JSON text reaches this size (a single larger object still goes alone). */
  readonly maxBatchBytes?: number;
  /** Batches queued for JS before the receive thread waits: bounds memory when JS falls behind. */
  readonly maxPendingBatches?: number;
}

export interface TdJsonReceiverStats {
  readonly batches: number;
  readonly objects: number;
  readonly bytes: number;
  readonly largestBatch: number;
  /** Times the thread woke JS up (once per non-empty stretch of the queue). */
  readonly wakeups: number;
  /** Time the receive thread spent waiting for JS to take batches (backpressure). */
  readonly blockedMs: number;
}

export interface TdJsonSenderStats {
  /** Requests sent on the calling thread. */
  readonly direct: number;
  /** Requests handed to the sender thread. */
  readonly queued: number;
  /** The sender thread's kernel thread id (as in /proc/self/task), 0 while it has not started. */
  readonly threadId: number;
}

export interface TdJsonFenceStats {
  /** Clients with a deadline that have not reached authorizationStateClosed. */
  readonly fencedClients: number;
  /** Requests dropped because their client's deadline had passed. */
  readonly blockedRequests: number;
  /** `close` requests the watchdog sent itself for clients past their deadline. */
  readonly watchdogCloses: number;
}

export interface TdJsonFenceOptions {
  /** How long past its deadline a client may take to reach authorizationStateClosed. Default 3000. */
  readonly exitGraceMs?: number;
}

/** The exit code of a process the session fence watchdog ended (a client did not close in time). */
export const FENCE_WATCHDOG_EXIT_CODE = 70;

/** Called on the JS thread when batches are waiting; take them with takeBatch(). */
export type TdJsonReadyCallback = () => void;
/** A batch: the JSON text of an array of TDLib objects, and whether more batches are queued behind it. */
export type TdJsonBatch = readonly [jsonArray: string, more: boolean];
/** TDLib's verbosity (0 fatal, 1 error, 2 warning, 3 info, 4 debug, 5+ verbose) and the log line. */
export type TdJsonLogCallback = (verbosity: number, message: string) => void;

interface AddonExports {
  load(libraryPath: string): string;
  createClientId(): number;
  send(clientId: number, request: string, direct?: boolean, extra?: number): void;
  stopSender(): void;
  senderStats(): TdJsonSenderStats;
  execute(request: string): string | null;
  startReceiver(onReady: TdJsonReadyCallback, options?: TdJsonReceiverOptions): void;
  takeBatch(): TdJsonBatch | null;
  stopReceiver(): Promise<void>;
  setReceiverRef(ref: boolean): void;
  receiverStats(): TdJsonReceiverStats | null;
  setLogCallback(maxVerbosity: number, callback: TdJsonLogCallback | null): void;
  droppedLogMessages(): number;
  setClientDeadline(clientId: number, remainingMs: number): void;
  configureFence(options: TdJsonFenceOptions): void;
  fenceStats(): TdJsonFenceStats;
}

export interface TdJsonOpenOptions {
  readonly libraryPath?: string;
  readonly addonPath?: string;
  readonly env?: NodeJS.ProcessEnv;
}

const ADDON_FILE = 'tdjson_addon.node';
const PREBUILT_PACKAGE = '@prebuilt-tdlib/linux-x64-glibc';
const here = path.dirname(fileURLToPath(import.meta.url));

interface Candidate {
  readonly file: string;
  readonly from: string;
}

function isAddonFile(value: string): boolean {
  return value.endsWith('.node');
}

/** Where libtdjson is expected, and which setting said so (for error messages). */
export function resolveLibraryPath(options: TdJsonOpenOptions = {}): Candidate {
  const env = options.env ?? process.env;
  const configured: Candidate | undefined = options.libraryPath
    ? { file: options.libraryPath, from: 'the libraryPath option' }
    : env.TDLIB_LIBRARY_PATH
      ? { file: env.TDLIB_LIBRARY_PATH, from: 'TDLIB_LIBRARY_PATH' }
      : env.TDLIB_ADDON_PATH && !isAddonFile(env.TDLIB_ADDON_PATH)
        ? { file: env.TDLIB_ADDON_PATH, from: 'TDLIB_ADDON_PATH' }
        : undefined;
  if (configured !== undefined) {
    // A directory means "the libtdjson.so in it", as the previous backend accepted.
    const file =
      existsSync(configured.file) && statSync(configured.file).isDirectory()
        ? path.join(configured.file, 'libtdjson.so')
        : configured.file;
    return { file, from: configured.from };
  }
  for (const base of [import.meta.url, path.join(process.cwd(), 'package.json')]) {
    try {
      const manifest = createRequire(base).resolve(`${PREBUILT_PACKAGE}/package.json`);
      return { file: path.join(path.dirname(manifest), 'libtdjson.so'), from: PREBUILT_PACKAGE };
    } catch {
      // not resolvable from here; try the next base
    }
  }
  throw new Error(
    `libtdjson not configured and ${PREBUILT_PACKAGE} is not installed: set TDLIB_LIBRARY_PATH to libtdjson.so`,
  );
}

/** The compiled addon: source tree (native/build), compiled tree (dist/native -> native/build), or cwd. */
export function resolveAddonPath(options: TdJsonOpenOptions = {}): Candidate {
  const env = options.env ?? process.env;
  if (options.addonPath) return { file: options.addonPath, from: 'the addonPath option' };
  if (env.TDLIB_ADDON_PATH && isAddonFile(env.TDLIB_ADDON_PATH)) {
    return { file: env.TDLIB_ADDON_PATH, from: 'TDLIB_ADDON_PATH' };
  }
  const candidates = [
    path.join(here, 'build', 'Release', ADDON_FILE),
    path.join(here, '..', '..', 'native', 'build', 'Release', ADDON_FILE),
    path.join(process.cwd(), 'native', 'build', 'Release', ADDON_FILE),
  ];
  const found = candidates.find((file) => existsSync(file));
  if (found === undefined) {
    throw new Error(`tdjson addon not built (tried ${candidates.join(', ')}): run npm run build:native`);
  }
  return { file: found, from: 'the build directory' };
}

/** The addon bound to one libtdjson. libtdjson state is process-global; so is most of this class's. */
export class TdJson {
  private constructor(
    private readonly addon: AddonExports,
    /** The libtdjson file actually loaded. */
    readonly libraryPath: string,
    readonly addonPath: string,
  ) {}

  /** Loads the addon and libtdjson. Throws an Error naming the path tried when either cannot be loaded. */
  static open(options: TdJsonOpenOptions = {}): TdJson {
    const addonFile = resolveAddonPath(options);
    if (!existsSync(addonFile.file)) {
      throw new Error(`tdjson addon not found at ${addonFile.file} (from ${addonFile.from})`);
    }
    const addon = createRequire(import.meta.url)(addonFile.file) as AddonExports;
    const library = resolveLibraryPath(options);
    if (library.file.includes('/') && !existsSync(library.file)) {
      throw new Error(`libtdjson not found at ${library.file} (from ${library.from})`);
    }
    try {
      return new TdJson(addon, addon.load(library.file), addonFile.file);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new Error(`${reason} (path from ${library.from})`, { cause: error });
    }
  }

  createClientId(): number {
    return this.addon.createClientId();
  }

  /**
   * td_send. With `direct` (the default) the request is sent on this thread when no earlier request is
   * still queued; otherwise it is queued for the sender thread, which then pays TDLib's parsing cost.
   * Order is kept either way. Escaped lone surrogates become U+FFFD first: TDLib aborts on them otherwise.
   */
  send(clientId: number, request: string, direct = true): void {
    this.addon.send(clientId, request, direct);
  }

  /** send() of a JSON object text with '"@extra": extra' spliced in natively (no JS string building). */
  sendTagged(clientId: number, extra: number, request: string, direct = true): void {
    this.addon.send(clientId, request, direct, extra);
  }

  /** Sends everything still queued and ends the sender thread (a later send starts a new one). */
  stopSender(): void {
    this.addon.stopSender();
  }

  senderStats(): TdJsonSenderStats {
    return this.addon.senderStats();
  }

  /** td_execute: the answer's JSON text, or null if TDLib returned none. */
  execute(request: string): string | null {
    return this.addon.execute(request);
  }

  /**
   * Starts the process's one receive thread; throws if one is already running. Starts unreferenced.
   * `onReady` runs once when the batch queue becomes non-empty; the caller then takes batches until
   * takeBatch() says no more are queued (after which `onReady` fires again for the next one).
   */
  startReceiving(onReady: TdJsonReadyCallback, options?: TdJsonReceiverOptions): void {
    this.addon.startReceiver(onReady, options);
  }

  /** The oldest queued batch, or null when the queue is empty. */
  takeBatch(): TdJsonBatch | null {
    return this.addon.takeBatch();
  }

  /** Resolves when the receive thread has exited and every queued batch was delivered or dropped. */
  stopReceiving(): Promise<void> {
    return this.addon.stopReceiver();
  }

  /** A referenced receiver keeps the event loop (and the process) alive. */
  setReceiverRef(ref: boolean): void {
    this.addon.setReceiverRef(ref);
  }

  receiverStats(): TdJsonReceiverStats | null {
    return this.addon.receiverStats();
  }

  /** Installs the log callback for messages up to maxVerbosity (fatal ones also go to stderr at once). */
  setLogCallback(maxVerbosity: number, callback: TdJsonLogCallback | null): void {
    this.addon.setLogCallback(maxVerbosity, callback);
  }

  droppedLogMessages(): number {
    return this.addon.droppedLogMessages();
  }

  /**
   * The session fence (process-global). `remainingMs` from now (on CLOCK_BOOTTIME, which also runs
   * during suspend) the client's deadline passes: from then on only `close` is forwarded to TDLib for
   * it, a watchdog thread sends `close` itself, and if the client has not reached
   * authorizationStateClosed exitGraceMs after the deadline the process exits with
   * FENCE_WATCHDOG_EXIT_CODE. Infinity clears the deadline, <= 0 means it has passed. A deadline that
   * has passed is final: later calls for that client change nothing. Cheap enough for every renewal.
   */
  setClientDeadline(clientId: number, remainingMs: number): void {
    this.addon.setClientDeadline(clientId, remainingMs);
  }

  /** Process-global: the last call wins. */
  configureFence(options: TdJsonFenceOptions): void {
    this.addon.configureFence(options);
  }

  fenceStats(): TdJsonFenceStats {
    return this.addon.fenceStats();
  }
}
