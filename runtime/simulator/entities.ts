/**
 * Text entities the way TDLib computes them offline: parseTextEntities (HTML, Markdown v1 and v2),
 * getTextEntities, parseMarkdown and getMarkdownText. Ported from the behaviour of TDLib 1.8.67
 * (td/telegram/MessageEntity.cpp) and checked against the real libtdjson by a differential test
 * (test/native/simulator/entities-diff.test.ts). Offsets and lengths are UTF-16 code units, which is what a
 * JavaScript string index is, so the parsers work on JS strings directly.
 *
 * Known simplification: getTextEntities recognises bare domains by a short list of common top-level
 * domains rather than TDLib's full list, and does not detect phone or bank card numbers.
 */
import type { TdTextEntity, TdFormattedText } from './objects.js';
import { formattedText } from './objects.js';
import { TdApiError } from './protocol.js';

type EntityKind =
  | 'Mention'
  | 'Hashtag'
  | 'Cashtag'
  | 'BotCommand'
  | 'Url'
  | 'EmailAddress'
  | 'Bold'
  | 'Italic'
  | 'Underline'
  | 'Strikethrough'
  | 'Spoiler'
  | 'Code'
  | 'Pre'
  | 'PreCode'
  | 'BlockQuote'
  | 'ExpandableBlockQuote'
  | 'TextUrl'
  | 'MentionName'
  | 'CustomEmoji';

interface Entity {
  kind: EntityKind;
  offset: number;
  length: number;
  argument: string;
  userId: number;
}

/** TDLib's MessageEntity::get_type_priority: ties at equal offset and length sort by it. */
const PRIORITY: Record<EntityKind, number> = {
  Mention: 50,
  Hashtag: 50,
  BotCommand: 50,
  Url: 50,
  EmailAddress: 50,
  Bold: 90,
  Italic: 91,
  Code: 20,
  Pre: 11,
  PreCode: 10,
  TextUrl: 49,
  MentionName: 49,
  Cashtag: 50,
  Underline: 92,
  Strikethrough: 93,
  BlockQuote: 0,
  ExpandableBlockQuote: 0,
  Spoiler: 94,
  CustomEmoji: 99,
};

function entity(kind: EntityKind, offset: number, length: number, argument = '', userId = 0): Entity {
  return { kind, offset, length, argument, userId };
}

function sortEntities(entities: Entity[]): Entity[] {
  return entities.sort(
    (a, b) => a.offset - b.offset || b.length - a.length || PRIORITY[a.kind] - PRIORITY[b.kind],
  );
}

function toObject(e: Entity): TdTextEntity {
  const base = { '@type': 'textEntity' as const, offset: e.offset, length: e.length };
  switch (e.kind) {
    case 'PreCode':
      return { ...base, type: { '@type': 'textEntityTypePreCode', language: e.argument } };
    case 'TextUrl':
      return { ...base, type: { '@type': 'textEntityTypeTextUrl', url: e.argument } };
    case 'MentionName':
      return { ...base, type: { '@type': 'textEntityTypeMentionName', user_id: e.userId } };
    case 'CustomEmoji':
      return { ...base, type: { '@type': 'textEntityTypeCustomEmoji', custom_emoji_id: e.argument } };
    default:
      return { ...base, type: { '@type': `textEntityType${e.kind}` } as TdTextEntity['type'] };
  }
}

function fail(message: string): never {
  throw new TdApiError(400, `Can't parse entities: ${message}`);
}

function byteOffset(text: string, index: number): number {
  return Buffer.byteLength(text.slice(0, index));
}

/** td::is_space; the end of the string reads as '\0', which counts as space too. */
function isSpace(c: string | undefined): boolean {
  return c === undefined || c === ' ' || c === '\t' || c === '\r' || c === '\n' || c === '\0' || c === '\v';
}

function isAlnum(c: string | undefined): boolean {
  return c !== undefined && /^[A-Za-z0-9]$/.test(c);
}

function hasLoneSurrogate(text: string): boolean {
  return /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(text);
}

// ---- links ----------------------------------------------------------------------------------------

/** LinkManager::get_link_user_id: tg://user?id=N (scheme and parameter names case-insensitive). */
export function linkUserId(url: string): number {
  const match = /^tg:(?:\/\/)?user\?(.*)$/i.exec(url);
  if (match === null) return 0;
  for (const part of (match[1] ?? '').split('&')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).toLowerCase() !== 'id') continue;
    const value = part.slice(eq + 1);
    if (/^[0-9]{1,15}$/.test(value) && Number(value) > 0) return Number(value);
  }
  return 0;
}

/** LinkManager::check_link: normalizes an http(s) or tg:// link, or rejects it (undefined). */
export function checkLink(url: string): string | undefined {
  if (url.length === 0 || /\s/.test(url)) return undefined;
  const tg = /^tg:(?:\/\/)?(.*)$/i.exec(url);
  if (tg !== null) {
    const rest = tg[1] ?? '';
    const end = rest.search(/[/?#]/);
    const host = end < 0 ? rest : rest.slice(0, end);
    let query = end < 0 ? '' : rest.slice(end);
    if (host === '' || !/^[A-Za-z0-9_-]+$/.test(host)) return undefined;
    if (query.startsWith('/?')) query = query.slice(1);
    return `tg://${host}${query}`;
  }
  let scheme = 'http';
  let rest = url;
  const schemeMatch = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(url);
  if (schemeMatch !== null) {
    scheme = (schemeMatch[1] ?? '').toLowerCase();
    if (scheme !== 'http' && scheme !== 'https') return undefined;
    rest = url.slice(schemeMatch[0].length);
  }
  const end = rest.search(/[/?#]/);
  const authority = end < 0 ? rest : rest.slice(0, end);
  let tail = end < 0 ? '' : rest.slice(end);
  if (!tail.startsWith('/')) tail = '/' + tail;
  const at = authority.lastIndexOf('@');
  const userinfo = at < 0 ? '' : authority.slice(0, at + 1);
  const hostPort = at < 0 ? authority : authority.slice(at + 1);
  const colon = hostPort.lastIndexOf(':');
  let host = hostPort;
  let port = '';
  if (colon >= 0) {
    host = hostPort.slice(0, colon);
    port = hostPort.slice(colon + 1);
    if (!/^[0-9]{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) return undefined;
    port = `:${port}`;
  }
  host = host.toLowerCase();
  if (host === '' || !host.includes('.') || host.startsWith('.') || host.endsWith('.')) return undefined;
  // RFC 3986 unreserved and sub-delims, percent escapes and non-ASCII (IDN) are what HttpUrl accepts.
  if (!/^[a-z0-9.\-_!$,~*'();&+=%\u0080-\uffff]+$/.test(host)) return undefined;
  return `${scheme}://${userinfo}${host}${port}${tail}`;
}

function linkEntity(offset: number, length: number, url: string): Entity | undefined {
  const userId = linkUserId(url);
  if (userId !== 0) return entity('MentionName', offset, length, '', userId);
  const checked = checkLink(url);
  return checked === undefined ? undefined : entity('TextUrl', offset, length, checked);
}

// ---- HTML -----------------------------------------------------------------------------------------

const HTML_TAGS = new Set([
  'a',
  'b',
  'strong',
  'i',
  'em',
  's',
  'strike',
  'del',
  'u',
  'ins',
  'tg-spoiler',
  'tg-emoji',
  'span',
  'pre',
  'code',
  'blockquote',
]);

/** decode_html_entity: &lt; &gt; &amp; &quot; and numeric references; ';' is optional. */
function decodeHtmlEntity(text: string, pos: number): { char: string; end: number } | undefined {
  let end = pos + 1;
  let code = 0;
  if (text[end] === '#') {
    end++;
    if (text[end] === 'x') {
      end++;
      while (end < text.length && /[0-9a-fA-F]/.test(text[end] ?? '')) {
        code = code * 16 + parseInt(text[end] ?? '0', 16);
        end++;
        if (code >= 0x10ffff) return undefined;
      }
    } else {
      while (end < text.length && /[0-9]/.test(text[end] ?? '')) {
        code = code * 10 + Number(text[end]);
        end++;
        if (code >= 0x10ffff) return undefined;
      }
    }
    if (code === 0 || end - pos >= 10) return undefined;
  } else {
    while (end < text.length && /[A-Za-z]/.test(text[end] ?? '')) end++;
    const name = text.slice(pos + 1, end);
    const named: Record<string, number> = { lt: 60, gt: 62, amp: 38, quot: 34 };
    const value = named[name];
    if (value === undefined) return undefined;
    code = value;
  }
  if (text[end] === ';') end++;
  // Surrogate code points become lone surrogates here, which the final UTF-8 check rejects like TDLib.
  const char = code >= 0xd800 && code <= 0xdfff ? String.fromCharCode(code) : String.fromCodePoint(code);
  return { char, end };
}

interface OpenTag {
  name: string;
  argument: string;
  offset: number;
  begin: number;
  expandable: boolean;
}

function parseHtml(source: string): { text: string; entities: Entity[] } {
  let text = '';
  const entities: Entity[] = [];
  const open: OpenTag[] = [];
  const n = source.length;
  let i = 0;
  while (i < n) {
    const c = source[i];
    if (c === '&') {
      const decoded = decodeHtmlEntity(source, i);
      if (decoded !== undefined) {
        text += decoded.char;
        i = decoded.end;
        continue;
      }
    }
    if (c !== '<') {
      text += c;
      i++;
      continue;
    }
    const begin = i;
    i++;
    if (source[i] !== '/') {
      while (!isSpace(source[i]) && source[i] !== '>') i++;
      if (i >= n) fail(`Unclosed start tag at byte offset ${byteOffset(source, begin)}`);
      const name = source.slice(begin + 1, i).toLowerCase();
      if (!HTML_TAGS.has(name))
        fail(`Unsupported start tag "${name}" at byte offset ${byteOffset(source, begin)}`);
      let argument = '';
      let expandable = false;
      while (source[i] !== '>') {
        while (i < n && isSpace(source[i])) i++;
        if (source[i] === '>') break;
        const attrBegin = i;
        while (!isSpace(source[i]) && source[i] !== '=' && source[i] !== '>') i++;
        const attrName = source.slice(attrBegin, i);
        if (attrName === '') {
          fail(`Empty attribute name in the tag "${name}" at byte offset ${byteOffset(source, begin)}`);
        }
        while (i < n && isSpace(source[i])) i++;
        if (source[i] !== '=') {
          if (name === 'blockquote' && attrName === 'expandable') {
            expandable = true;
            continue;
          }
          fail(
            `Expected equal sign in declaration of an attribute of the tag "${name}" at byte offset ${byteOffset(source, begin)}`,
          );
        }
        i++;
        while (i < n && isSpace(source[i])) i++;
        if (i >= n) fail(`Unclosed start tag at byte offset ${byteOffset(source, begin)}`);
        let value = '';
        const quote = source[i];
        if (quote !== '"' && quote !== "'") {
          const tokenBegin = i;
          while (isAlnum(source[i]) || source[i] === '.' || source[i] === '-') i++;
          value = source.slice(tokenBegin, i).toLowerCase();
          if (!isSpace(source[i]) && source[i] !== '>') {
            fail(`Unexpected end of name token at byte offset ${byteOffset(source, tokenBegin)}`);
          }
        } else {
          i++;
          while (i < n && source[i] !== quote) {
            if (source[i] === '&') {
              const decoded = decodeHtmlEntity(source, i);
              if (decoded !== undefined) {
                value += decoded.char;
                i = decoded.end;
                continue;
              }
            }
            value += source[i];
            i++;
          }
          if (source[i] === quote) i++;
        }
        if (i >= n) fail(`Unclosed start tag at byte offset ${byteOffset(source, begin)}`);
        if (name === 'a' && attrName === 'href') argument = value;
        else if (name === 'code' && attrName === 'class' && value.startsWith('language-'))
          argument = value.slice(9);
        else if (name === 'span' && attrName === 'class' && value.startsWith('tg-'))
          argument = value.slice(3);
        else if (name === 'tg-emoji' && attrName === 'emoji-id') argument = value;
      }
      if (name === 'span' && argument !== 'spoiler') {
        fail(`Tag "span" must have class "tg-spoiler" at byte offset ${byteOffset(source, begin)}`);
      }
      open.push({ name, argument, offset: text.length, begin: text.length, expandable });
      i++;
      continue;
    }
    // An end tag.
    if (open.length === 0) fail(`Unexpected end tag at byte offset ${byteOffset(source, begin)}`);
    while (!isSpace(source[i]) && source[i] !== '>') i++;
    const endName = source.slice(begin + 2, i).toLowerCase();
    while (i < n && isSpace(source[i])) i++;
    if (source[i] !== '>') fail(`Unclosed end tag at byte offset ${byteOffset(source, begin)}`);
    i++;
    const top = open[open.length - 1] as OpenTag;
    if (endName !== '' && endName !== top.name) {
      fail(
        `Unmatched end tag at byte offset ${byteOffset(source, begin)}, expected "</${top.name}>", found "</${endName}>"`,
      );
    }
    const offset = top.offset;
    const length = text.length - offset;
    if (length > 0) {
      const last = entities[entities.length - 1];
      switch (top.name) {
        case 'b':
        case 'strong':
          entities.push(entity('Bold', offset, length));
          break;
        case 'i':
        case 'em':
          entities.push(entity('Italic', offset, length));
          break;
        case 's':
        case 'strike':
        case 'del':
          entities.push(entity('Strikethrough', offset, length));
          break;
        case 'u':
        case 'ins':
          entities.push(entity('Underline', offset, length));
          break;
        case 'tg-spoiler':
        case 'span':
          entities.push(entity('Spoiler', offset, length));
          break;
        case 'tg-emoji':
          if (
            /^[0-9]{1,19}$/.test(top.argument) &&
            BigInt(top.argument) > 0n &&
            BigInt(top.argument) < 2n ** 63n
          ) {
            entities.push(entity('CustomEmoji', offset, length, top.argument));
          } else {
            fail(`Invalid custom emoji identifier specified`);
          }
          break;
        case 'a': {
          const url = top.argument === '' ? text.slice(top.begin) : top.argument;
          const e = linkEntity(offset, length, url);
          if (e !== undefined) entities.push(e);
          break;
        }
        case 'pre':
          if (
            last !== undefined &&
            last.kind === 'Code' &&
            last.offset === offset &&
            last.length === length &&
            last.argument !== ''
          ) {
            last.kind = 'PreCode';
          } else {
            entities.push(entity('Pre', offset, length));
          }
          break;
        case 'code':
          if (
            last !== undefined &&
            last.kind === 'Pre' &&
            last.offset === offset &&
            last.length === length &&
            top.argument !== ''
          ) {
            last.kind = 'PreCode';
            last.argument = top.argument;
          } else {
            entities.push(entity('Code', offset, length, top.argument));
          }
          break;
        case 'blockquote':
          entities.push(entity(top.expandable ? 'ExpandableBlockQuote' : 'BlockQuote', offset, length));
          break;
      }
    }
    open.pop();
  }
  if (open.length > 0) {
    fail(`Can't find end tag corresponding to start tag "${(open[open.length - 1] as OpenTag).name}"`);
  }
  if (hasLoneSurrogate(text)) {
    fail(
      'Text contains invalid Unicode characters after decoding HTML entities, check for unmatched surrogate code units',
    );
  }
  for (const e of entities) if (e.kind === 'Code') e.argument = '';
  return { text, entities: sortEntities(entities) };
}

// ---- Markdown v2 ----------------------------------------------------------------------------------

interface OpenMd {
  kind: EntityKind;
  argument: string;
  offset: number;
  byteBegin: number;
  begin: number;
}

const RESERVED_V2 = '_*[]()~`>#+-=|{}.!';

function parseMarkdownV2(source: string): { text: string; entities: Entity[] } {
  let text = '';
  const entities: Entity[] = [];
  const open: OpenMd[] = [];
  const n = source.length;
  let quoteExpandable = false;
  // Set by a newline outside code (and at the start), cleared by any other text: where '>' starts a quote.
  let atLineStart = true;
  const code = (i: number): number => source.charCodeAt(i);
  function reservedError(ch: string): never {
    return fail(`Character '${ch}' is reserved and must be escaped with the preceding '\\'`);
  }
  const quoteIndex = (): number => open.findIndex((e) => e.kind === 'BlockQuote');
  const openQuote = (i: number): void => {
    quoteExpandable = false;
    open.push({
      kind: 'BlockQuote',
      argument: '',
      offset: text.length,
      byteBegin: byteOffset(source, i),
      begin: text.length,
    });
  };
  // A quote ends where a line does not start with '>'; entities opened inside it must have ended by then.
  const closeQuote = (): void => {
    const index = quoteIndex();
    if (index < 0) return;
    if (index !== open.length - 1) {
      const inner = open[open.length - 1] as OpenMd;
      fail(`Can't find end of ${inner.kind} entity at byte offset ${inner.byteBegin}`);
    }
    const quote = open.pop() as OpenMd;
    if (text.length > quote.offset) {
      entities.push(
        entity(
          quoteExpandable ? 'ExpandableBlockQuote' : 'BlockQuote',
          quote.offset,
          text.length - quote.offset,
        ),
      );
    }
  };
  // "||" that ends a quote (only '\r' before the end of the line, and no '>' line after) marks it expandable.
  const endsQuote = (from: number): boolean => {
    let j = from;
    while (source[j] === '\r') j++;
    return j >= n || (source[j] === '\n' && source[j + 1] !== '>');
  };
  for (let i = 0; i < n; i++) {
    const c = source[i] as string;
    const innermost = open[open.length - 1];
    const inCode =
      innermost !== undefined &&
      (innermost.kind === 'Code' || innermost.kind === 'Pre' || innermost.kind === 'PreCode');
    if (c === '\\' && i + 1 < n && code(i + 1) > 0 && code(i + 1) <= 126) {
      i++;
      text += source[i];
      // An escaped newline starts a line for '>' but does not end a quote.
      atLineStart = source[i] === '\n' && !inCode;
      continue;
    }
    if (!inCode && atLineStart) {
      if (c === '>') {
        if (quoteIndex() < 0) openQuote(i);
        continue;
      }
      // A '*' that closes an open bold entity is that, not the start of "**>".
      if (
        c === '*' &&
        source[i + 1] === '*' &&
        source[i + 2] === '>' &&
        quoteIndex() < 0 &&
        innermost?.kind !== 'Bold'
      ) {
        openQuote(i);
        i += 2;
        continue;
      }
    }
    const reserved = inCode ? '`' : RESERVED_V2;
    if (!reserved.includes(c)) {
      text += c;
      atLineStart = c === '\n' && !inCode;
      if (atLineStart && source[i + 1] !== '>' && quoteIndex() >= 0) closeQuote();
      continue;
    }
    const top = open[open.length - 1];
    let isEnd = false;
    if (top !== undefined) {
      switch (top.kind) {
        case 'Bold':
          isEnd = c === '*';
          break;
        case 'Italic':
          isEnd = c === '_' && source[i + 1] !== '_';
          break;
        case 'Code':
          isEnd = c === '`';
          break;
        case 'Pre':
        case 'PreCode':
          isEnd = c === '`' && source[i + 1] === '`' && source[i + 2] === '`';
          break;
        case 'TextUrl':
        case 'CustomEmoji':
          isEnd = c === ']';
          break;
        case 'Underline':
          isEnd = c === '_' && source[i + 1] === '_';
          break;
        case 'Strikethrough':
          isEnd = c === '~';
          break;
        case 'Spoiler':
          isEnd = c === '|' && source[i + 1] === '|';
          break;
        default:
          isEnd = false;
      }
    }
    if (!isEnd && c === '|' && source[i + 1] === '|' && quoteIndex() >= 0 && endsQuote(i + 2)) {
      quoteExpandable = true;
      i++;
      continue;
    }
    if (!isEnd) {
      const byteBegin = byteOffset(source, i);
      let kind: EntityKind;
      let argument = '';
      switch (c) {
        case '_':
          if (source[i + 1] === '_') {
            kind = 'Underline';
            i++;
          } else {
            kind = 'Italic';
          }
          break;
        case '*':
          kind = 'Bold';
          break;
        case '~':
          kind = 'Strikethrough';
          break;
        case '|':
          if (source[i + 1] !== '|') reservedError(c);
          i++;
          kind = 'Spoiler';
          break;
        case '[':
          kind = 'TextUrl';
          break;
        case '`':
          if (source[i + 1] === '`' && source[i + 2] === '`') {
            i += 3;
            kind = 'Pre';
            let languageEnd = i;
            while (!isSpace(source[languageEnd]) && source[languageEnd] !== '`') languageEnd++;
            if (i !== languageEnd && languageEnd < n && source[languageEnd] !== '`') {
              kind = 'PreCode';
              argument = source.slice(i, languageEnd);
              i = languageEnd;
            }
            if (source[i] === '\n' || source[i] === '\r') {
              if ((source[i + 1] === '\n' || source[i + 1] === '\r') && source[i] !== source[i + 1]) i += 2;
              else i++;
            }
            i--;
          } else {
            kind = 'Code';
          }
          break;
        case '!':
          if (source[i + 1] !== '[') reservedError(c);
          i++;
          kind = 'CustomEmoji';
          break;
        default:
          reservedError(c);
      }
      open.push({ kind, argument, offset: text.length, byteBegin, begin: text.length });
      continue;
    }
    const current = open[open.length - 1] as OpenMd;
    let argument = current.argument;
    let userId = 0;
    let skip = text.length === current.offset;
    switch (current.kind) {
      case 'Underline':
      case 'Spoiler':
        i++;
        break;
      case 'Pre':
      case 'PreCode':
        i += 2;
        break;
      case 'TextUrl': {
        let url = '';
        if (source[i + 1] !== '(') {
          url = text.slice(current.begin);
        } else {
          i += 2;
          const urlBegin = i;
          while (i < n && source[i] !== ')') {
            if (source[i] === '\\' && i + 1 < n && code(i + 1) > 0 && code(i + 1) <= 126) {
              url += source[i + 1];
              i += 2;
              continue;
            }
            url += source[i];
            i++;
          }
          if (source[i] !== ')')
            fail(`Can't find end of a URL at byte offset ${byteOffset(source, urlBegin)}`);
        }
        userId = linkUserId(url);
        if (userId === 0) {
          const checked = checkLink(url);
          if (checked === undefined) skip = true;
          else argument = checked;
        }
        break;
      }
      case 'CustomEmoji': {
        const invalid = 'Invalid tg://emoji or tg://time URL specified';
        if (source[i + 1] !== '(') fail('The entity must contain a tg://emoji or tg://time URL');
        i += 2;
        const urlBegin = i;
        let url = '';
        while (i < n && source[i] !== ')') {
          if (source[i] === '\\' && i + 1 < n && code(i + 1) > 0 && code(i + 1) <= 126) {
            url += source[i + 1];
            i += 2;
            continue;
          }
          url += source[i];
          i++;
        }
        if (source[i] !== ')') fail(`Can't find end of a URL at byte offset ${byteOffset(source, urlBegin)}`);
        const match = /^tg:(?:\/\/)?emoji\?id=([0-9]{1,19})$/i.exec(url);
        if (match === null) fail(invalid);
        argument = match[1] ?? '';
        break;
      }
      default:
        break;
    }
    if (!skip) {
      const length = text.length - current.offset;
      entities.push(
        userId !== 0
          ? entity('MentionName', current.offset, length, '', userId)
          : entity(current.kind, current.offset, length, argument),
      );
    }
    open.pop();
  }
  closeQuote();
  if (open.length > 0) {
    const last = open[open.length - 1] as OpenMd;
    fail(`Can't find end of ${last.kind} entity at byte offset ${last.byteBegin}`);
  }
  return { text, entities: sortEntities(entities) };
}

// ---- Markdown v1 ----------------------------------------------------------------------------------

function parseMarkdownV1(source: string): { text: string; entities: Entity[] } {
  let text = '';
  const entities: Entity[] = [];
  const n = source.length;
  for (let i = 0; i < n; i++) {
    const c = source[i] as string;
    if (c === '\\' && '_*`['.includes(source[i + 1] ?? '\0')) {
      i++;
      text += source[i];
      continue;
    }
    if (!'_*`['.includes(c)) {
      text += c;
      continue;
    }
    const begin = i;
    const endChar = c === '[' ? ']' : c;
    let isPre = false;
    let language = '';
    i++;
    if (c === '`' && source[i] === '`' && source[i + 1] === '`') {
      i += 2;
      isPre = true;
      let languageEnd = i;
      while (!isSpace(source[languageEnd]) && source[languageEnd] !== '`') languageEnd++;
      if (i !== languageEnd && languageEnd < n && source[languageEnd] !== '`') {
        language = source.slice(i, languageEnd);
        i = languageEnd;
      }
      if (source[i] === '\n' || source[i] === '\r') {
        if ((source[i + 1] === '\n' || source[i + 1] === '\r') && source[i] !== source[i + 1]) i += 2;
        else i++;
      }
    }
    const offset = text.length;
    while (i < n && (source[i] !== endChar || (isPre && !(source[i + 1] === '`' && source[i + 2] === '`')))) {
      text += source[i];
      i++;
    }
    if (i >= n) fail(`Can't find end of the entity starting at byte offset ${byteOffset(source, begin)}`);
    const length = text.length - offset;
    if (length > 0) {
      if (c === '_') entities.push(entity('Italic', offset, length));
      else if (c === '*') entities.push(entity('Bold', offset, length));
      else if (c === '[') {
        let url: string;
        if (source[i + 1] !== '(') {
          url = source.slice(begin + 1, i);
        } else {
          i += 2;
          url = '';
          while (i < n && source[i] !== ')') {
            url += source[i];
            i++;
          }
        }
        const e = linkEntity(offset, length, url);
        if (e !== undefined) entities.push(e);
      } else if (isPre) {
        entities.push(
          language === '' ? entity('Pre', offset, length) : entity('PreCode', offset, length, language),
        );
      } else {
        entities.push(entity('Code', offset, length));
      }
    }
    if (isPre) i += 2;
  }
  return { text, entities };
}

// ---- automatic entities (getTextEntities) --------------------------------------------------------

const COMMON_TLDS = new Set(
  (
    'com org net io me ru dev app ai co uk de fr info biz xyz bar edu gov tv us ca au in cn jp br it es nl se no fi ' +
    'pl ch at be dk ua kz by tech site online store shop blog news live pro cloud page link club top one today ' +
    'world space website email team group agency studio design network solutions media digital global'
  ).split(' '),
);

const WORD = /[\p{L}\p{Nd}\p{N}_]/u;

function isWordChar(c: string | undefined): boolean {
  return c !== undefined && WORD.test(c);
}

function charBefore(text: string, index: number): string | undefined {
  if (index <= 0) return undefined;
  const low = text.charCodeAt(index - 1);
  if (low >= 0xdc00 && low <= 0xdfff && index >= 2) return text.slice(index - 2, index);
  return text[index - 1];
}

function charAt(text: string, index: number): string | undefined {
  const cp = text.codePointAt(index);
  return cp === undefined ? undefined : String.fromCodePoint(cp);
}

const MAY_HAVE_ENTITIES = /[@/#$.:]/;

function findAutoEntities(text: string): Entity[] {
  if (!MAY_HAVE_ENTITIES.test(text)) return [];
  const found: Entity[] = [];
  const taken: [number, number][] = [];
  const add = (kind: EntityKind, offset: number, length: number): void => {
    if (taken.some(([a, b]) => offset < b && offset + length > a)) return;
    taken.push([offset, offset + length]);
    found.push(entity(kind, offset, length));
  };
  for (const m of text.matchAll(/[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g)) {
    add('EmailAddress', m.index, m[0].length);
  }
  const urlPattern =
    /(?:(?:https?|tg|ton):\/\/[^\s<>"]+|(?<![\w@.-])(?:www\.)?(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,24}(?::[0-9]{1,5})?(?:[/?#][^\s<>"]*)?)/g;
  for (const m of text.matchAll(urlPattern)) {
    let url = m[0];
    while (url.length > 0 && '.,:;!?)\'"'.includes(url[url.length - 1] ?? '')) url = url.slice(0, -1);
    if (!/^[a-z]+:\/\//i.test(url)) {
      const host = url.split(/[/?#:]/)[0] ?? '';
      const tld = host.slice(host.lastIndexOf('.') + 1).toLowerCase();
      if (!COMMON_TLDS.has(tld)) continue;
    }
    add('Url', m.index, url.length);
  }
  for (const m of text.matchAll(/@([A-Za-z0-9_]+)/g)) {
    const name = m[1] ?? '';
    if (name.length < 4 || name.length > 32) continue;
    if (isWordChar(charBefore(text, m.index)) || isWordChar(charAt(text, m.index + m[0].length))) continue;
    add('Mention', m.index, m[0].length);
  }
  for (const m of text.matchAll(/\/([A-Za-z0-9_]{1,64})(@[A-Za-z0-9_]{3,32})?/g)) {
    const prev = charBefore(text, m.index);
    const next = charAt(text, m.index + m[0].length);
    if (isWordChar(prev) || (prev !== undefined && '/<>'.includes(prev))) continue;
    if (isWordChar(next) || (next !== undefined && '/<>'.includes(next))) continue;
    add('BotCommand', m.index, m[0].length);
  }
  for (const m of text.matchAll(/#([\p{L}\p{Nd}_\u200c\u0d80-\u0dff]{1,256})/gu)) {
    if (isWordChar(charBefore(text, m.index))) continue;
    if (!/\p{L}/u.test(m[1] ?? '') || text[m.index + m[0].length] === '#') continue;
    add('Hashtag', m.index, m[0].length);
  }
  for (const m of text.matchAll(/\$([A-Z]{1,8})/g)) {
    const prev = charBefore(text, m.index);
    if (isWordChar(prev) || prev === '$') continue;
    const next = charAt(text, m.index + m[0].length);
    if (isWordChar(next) || next === '$') continue;
    add('Cashtag', m.index, m[0].length);
  }
  return sortEntities(found);
}

// ---- public API -----------------------------------------------------------------------------------

export type ParseMode = { readonly kind: 'html' } | { readonly kind: 'markdown'; readonly version: number };

export function parseTextEntities(text: string, mode: ParseMode): TdFormattedText {
  if (text.length > 65536 * 2 && [...text].length > 65536)
    throw new TdApiError(400, "Can't parse entities: Text is too long");
  let result: { text: string; entities: Entity[] };
  if (mode.kind === 'html') result = parseHtml(text);
  else if (mode.version === 0 || mode.version === 1) result = parseMarkdownV1(text);
  else if (mode.version === 2) result = parseMarkdownV2(text);
  else throw new TdApiError(400, "Can't parse entities: Wrong Markdown version specified");
  return formattedText(result.text, result.entities.map(toObject));
}

export function getTextEntities(text: string): TdTextEntity[] {
  return findAutoEntities(text).map(toObject);
}

/**
 * Entities TDLib adds to an outgoing text on its own (links, mentions, hashtags...), merged with the
 * caller's where they do not overlap.
 */
export function withAutoEntities(text: string, given: readonly TdTextEntity[]): TdTextEntity[] {
  const auto = findAutoEntities(text).filter(
    (a) => !given.some((g) => a.offset < g.offset + g.length && a.offset + a.length > g.offset),
  );
  if (auto.length === 0) return [...given];
  return [...given, ...auto.map(toObject)].sort((a, b) => a.offset - b.offset || b.length - a.length);
}

/** parseMarkdown: **bold**, __italic__, ~~strike~~, ||spoiler||, `code`, ```pre```, [text](url). */
export function parseMarkdownSimple(input: TdFormattedText): TdFormattedText {
  const source = input.text;
  let text = '';
  const entities: Entity[] = [];
  const pairs: [string, EntityKind][] = [
    ['**', 'Bold'],
    ['__', 'Italic'],
    ['~~', 'Strikethrough'],
    ['||', 'Spoiler'],
  ];
  let i = 0;
  while (i < source.length) {
    const pair = pairs.find(([marker]) => source.startsWith(marker, i));
    if (pair !== undefined) {
      const close = source.indexOf(pair[0], i + 2);
      if (close > i + 2) {
        const inner = source.slice(i + 2, close);
        entities.push(entity(pair[1], text.length, inner.length));
        text += inner;
        i = close + 2;
        continue;
      }
    }
    if (source.startsWith('```', i)) {
      const close = source.indexOf('```', i + 3);
      if (close > i + 3) {
        let inner = source.slice(i + 3, close);
        let language = '';
        const nl = inner.indexOf('\n');
        if (nl > 0 && !/\s/.test(inner.slice(0, nl))) {
          language = inner.slice(0, nl);
          inner = inner.slice(nl + 1);
        }
        entities.push(
          language === ''
            ? entity('Pre', text.length, inner.length)
            : entity('PreCode', text.length, inner.length, language),
        );
        text += inner;
        i = close + 3;
        continue;
      }
    }
    if (source[i] === '`') {
      const close = source.indexOf('`', i + 1);
      if (close > i + 1) {
        const inner = source.slice(i + 1, close);
        entities.push(entity('Code', text.length, inner.length));
        text += inner;
        i = close + 1;
        continue;
      }
    }
    text += source[i];
    i++;
  }
  const given = input.entities.map((e) => ({ ...e }));
  return formattedText(
    text,
    [...given, ...sortEntities(entities).map(toObject)].sort(
      (a, b) => a.offset - b.offset || b.length - a.length,
    ),
  );
}

/** getMarkdownText: the inverse of parseMarkdown for the entities it knows. */
export function getMarkdownText(input: TdFormattedText): TdFormattedText {
  const markers: Partial<Record<string, [string, string]>> = {
    textEntityTypeBold: ['**', '**'],
    textEntityTypeItalic: ['__', '__'],
    textEntityTypeStrikethrough: ['~~', '~~'],
    textEntityTypeSpoiler: ['||', '||'],
    textEntityTypeCode: ['`', '`'],
    textEntityTypePre: ['```\n', '```'],
  };
  const inserts: { at: number; text: string; order: number }[] = [];
  const kept: TdTextEntity[] = [];
  for (const e of input.entities) {
    const marker = markers[e.type['@type']];
    if (marker === undefined) {
      kept.push(e);
      continue;
    }
    inserts.push(
      { at: e.offset, text: marker[0], order: 1 },
      { at: e.offset + e.length, text: marker[1], order: 0 },
    );
  }
  inserts.sort((a, b) => b.at - a.at || a.order - b.order);
  let text = input.text;
  for (const ins of inserts) text = text.slice(0, ins.at) + ins.text + text.slice(ins.at);
  // Entities left as entities move right by the markers inserted before them.
  const shift = (pos: number): number =>
    inserts.reduce(
      (sum, ins) => (ins.at < pos || (ins.at === pos && ins.order === 0) ? sum + ins.text.length : sum),
      0,
    );
  const moved = kept.map((e) => {
    const start = e.offset + shift(e.offset);
    const end = e.offset + e.length + shift(e.offset + e.length);
    return { ...e, offset: start, length: end - start };
  });
  return formattedText(text, moved);
}
