/**
 * Requests TDLib answers without a client or the network: td_execute's synchronous methods (also valid
 * through td_send) and the offline test methods. Error texts are TDLib 1.8.67's.
 */
import { getMarkdownText, getTextEntities, parseMarkdownSimple, parseTextEntities } from './entities.js';
import * as O from './objects.js';
import {
  array,
  int32,
  isJsonObject,
  isWellFormed,
  object,
  parseFailure,
  str,
  TdApiError,
  type Json,
  type JsonObject,
} from './protocol.js';

/** TDLib's SynchronousRequests (the ones td_execute accepts). */
export const SYNC_METHODS: ReadonlySet<string> = new Set([
  'checkQuickReplyShortcutName',
  'searchQuote',
  'getTextEntities',
  'parseTextEntities',
  'parseMarkdown',
  'getMarkdownText',
  'getCountryFlagEmoji',
  'getFileMimeType',
  'getFileExtension',
  'cleanFileName',
  'getLanguagePackString',
  'getJsonValue',
  'getJsonString',
  'getThemeParametersJsonString',
  'getChatFolderDefaultIconName',
  'getPushReceiverId',
  'getOption',
  'searchStringsByPrefix',
  'getPhoneNumberInfoSync',
  'setLogStream',
  'getLogStream',
  'setLogVerbosityLevel',
  'getLogVerbosityLevel',
  'getLogTags',
  'setLogTagVerbosityLevel',
  'getLogTagVerbosityLevel',
  'addLogMessage',
  'testReturnError',
]);

/** Offline methods a client answers before (and without) initialization. */
export const TEST_METHODS: ReadonlySet<string> = new Set([
  'testCallEmpty',
  'testCallString',
  'testCallBytes',
  'testCallVectorInt',
  'testCallVectorIntObject',
  'testCallVectorString',
  'testCallVectorStringObject',
  'testSquareInt',
  'testUseUpdate',
]);

/** Process-wide like TDLib's own log settings. */
let logVerbosity = 5;
let logStream: Json = { '@type': 'logStreamDefault' };

function formattedTextArg(request: JsonObject, field: string): O.TdFormattedText {
  const value = object(request, field, ['formattedText']);
  if (value === null) return O.formattedText('', []);
  const entities = array(value, 'entities').filter(isJsonObject) as unknown as O.TdTextEntity[];
  return O.formattedText(str(value, 'text'), entities);
}

/** Synchronous methods; throws TdApiError for TDLib's error answers. */
export function executeSync(type: string, request: JsonObject): { readonly '@type': string } {
  switch (type) {
    case 'getOption': {
      const name = str(request, 'name');
      if (name === 'version') return O.optionString(O.TDLIB_VERSION);
      if (name === 'commit_hash') return O.optionString(O.SIMULATOR_COMMIT_HASH);
      throw new TdApiError(400, "The option can't be get synchronously");
    }
    case 'parseTextEntities': {
      const text = str(request, 'text');
      if (!isWellFormed(text)) throw new TdApiError(400, 'Text must be encoded in UTF-8');
      const mode = object(request, 'parse_mode', ['textParseModeHTML', 'textParseModeMarkdown']);
      if (mode === null) throw new TdApiError(400, 'Parse mode must be non-empty');
      return mode['@type'] === 'textParseModeHTML'
        ? parseTextEntities(text, { kind: 'html' })
        : parseTextEntities(text, { kind: 'markdown', version: int32(mode, 'version') });
    }
    case 'getTextEntities': {
      const text = str(request, 'text');
      if (!isWellFormed(text)) throw new TdApiError(400, 'Text must be encoded in UTF-8');
      return { '@type': 'textEntities', entities: getTextEntities(text) } as { readonly '@type': string };
    }
    case 'parseMarkdown':
      return parseMarkdownSimple(formattedTextArg(request, 'text'));
    case 'getMarkdownText':
      return getMarkdownText(formattedTextArg(request, 'text'));
    case 'setLogVerbosityLevel': {
      const level = int32(request, 'new_verbosity_level');
      if (level < 0 || level > 1024) throw new TdApiError(400, 'Wrong new verbosity level specified');
      logVerbosity = level;
      return O.ok();
    }
    case 'getLogVerbosityLevel':
      return { '@type': 'logVerbosityLevel', verbosity_level: logVerbosity } as { readonly '@type': string };
    case 'setLogStream': {
      const stream = object(request, 'log_stream', ['logStreamDefault', 'logStreamFile', 'logStreamEmpty']);
      if (stream === null) throw new TdApiError(400, 'Log stream must be non-empty');
      logStream = stream;
      return O.ok();
    }
    case 'getLogStream':
      return structuredClone(logStream) as { readonly '@type': string };
    case 'setLogTagVerbosityLevel':
    case 'addLogMessage':
      return O.ok();
    case 'testReturnError': {
      const err = object(request, 'error', ['error']);
      if (err === null) return O.error(404, 'Not Found');
      return O.error(int32(err, 'code'), str(err, 'message'));
    }
    default:
      throw new TdApiError(400, `Method "${type}" is not supported by the Telegram simulator`);
  }
}

/** Offline test methods (client requests only: td_execute refuses them). */
export function executeTest(type: string, request: JsonObject): { readonly '@type': string } {
  switch (type) {
    case 'testCallEmpty':
      return O.ok();
    case 'testCallString':
      return { '@type': 'testString', value: str(request, 'x') } as { readonly '@type': string };
    case 'testCallBytes':
      return { '@type': 'testBytes', value: str(request, 'x') } as { readonly '@type': string };
    case 'testSquareInt': {
      const x = int32(request, 'x');
      return { '@type': 'testInt', value: Math.imul(x, x) } as { readonly '@type': string };
    }
    case 'testCallVectorInt':
      return { '@type': 'testVectorInt', value: array(request, 'x').map((v) => int32({ v }, 'v')) } as {
        readonly '@type': string;
      };
    case 'testCallVectorString':
      return { '@type': 'testVectorString', value: array(request, 'x').map((v) => str({ v }, 'v')) } as {
        readonly '@type': string;
      };
    case 'testCallVectorIntObject':
      return {
        '@type': 'testVectorIntObject',
        value: array(request, 'x').map((v) => ({
          '@type': 'testInt',
          value: isJsonObject(v) ? int32(v, 'value') : 0,
        })),
      } as { readonly '@type': string };
    case 'testCallVectorStringObject':
      return {
        '@type': 'testVectorStringObject',
        value: array(request, 'x').map((v) => ({
          '@type': 'testString',
          value: isJsonObject(v) ? str(v, 'value') : '',
        })),
      } as { readonly '@type': string };
    case 'testUseUpdate':
      return O.error(404, 'Not Found');
    default:
      throw parseFailure(`Unknown class "${type}"`);
  }
}

/** td_execute entry point: parse, run synchronous methods, refuse the rest like TDLib. */
export function executeRequest(type: string, request: JsonObject): { readonly '@type': string } {
  if (!SYNC_METHODS.has(type)) throw new TdApiError(400, "The method can't be executed synchronously");
  return executeSync(type, request);
}
