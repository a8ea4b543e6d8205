/**
 * The two sides of the comparison behind one small interface, so that both run exactly the same
 * workload code: our TdClientManager over NativeBackend, and tdl 8.1.0. Both load the same libtdjson.
 */
export interface BenchClient {
  squareInt(x: number): Promise<number>;
}

export interface BenchImpl {
  readonly name: 'ours' | 'tdl';
  /** Clients without TDLib parameters: enough for test* methods, no database. */
  bareClients(count: number): BenchClient[];
  /** Clients with a database each under `dir`, resolved once every one is at WaitPhoneNumber. */
  initializedClients(count: number, dir: string): Promise<void>;
  /** The role of one of the library's threads ('receive', 'send', 'tdlib'...); default 'library'. */
  threadRole?(tid: number, name: string): string;
  /** Implementation internals worth printing next to the figures (batch sizes...). */
  diagnostics?(): object;
  /** Closes every client (waiting for authorizationStateClosed) and releases the library's resources. */
  closeAll(): Promise<void>;
}

export const API_ID = 94575;
export const API_HASH = 'a3406de8d171bb422bb6ddf3bbd800e2';

/** Same TDLib parameters on both sides: databases on disk, no message/chat/file databases. */
export const TDLIB_PARAMETERS = {
  use_test_dc: true,
  database_encryption_key: '',
  use_file_database: false,
  use_chat_info_database: false,
  use_message_database: false,
  use_secret_chats: false,
  api_id: API_ID,
  api_hash: API_HASH,
  system_language_code: 'en',
  device_model: 'tdlib-operator bench',
  system_version: '',
  application_version: '0.1.0',
} as const;
