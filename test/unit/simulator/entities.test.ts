import { describe, expect, it } from '@jest/globals';
import {
  checkLink,
  getTextEntities,
  linkUserId,
  parseTextEntities,
} from '../../../runtime/simulator/entities.js';
import { TdApiError } from '../../../runtime/simulator/protocol.js';

// Expected values were produced by libtdjson 1.8.67's td_execute; the differential test in
// test/native/simulator compares thousands more inputs against the library itself.
const html = (text: string) => parseTextEntities(text, { kind: 'html' });
const md2 = (text: string) => parseTextEntities(text, { kind: 'markdown', version: 2 });
const types = (text: { entities: { offset: number; length: number; type: { '@type': string } }[] }) =>
  text.entities.map((e) => `${e.type['@type'].replace('textEntityType', '')}@${e.offset}+${e.length}`);

function parseError(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (error instanceof TdApiError) return error.message;
    throw error;
  }
  throw new Error('expected a parse error');
}

describe('parseTextEntities', () => {
  it('parses HTML into UTF-16 offsets, sorted by offset, length and TDLib priority', () => {
    const parsed = html('😀 <b>é𝄞</b> <s><u><i><b>x</b></i></u></s> &lt;&amp;&gt;&quot;');
    expect(parsed.text).toBe('😀 é𝄞 x <&>"');
    expect(types(parsed)).toEqual([
      'Bold@3+3',
      'Bold@7+1',
      'Italic@7+1',
      'Underline@7+1',
      'Strikethrough@7+1',
    ]);
  });

  it('normalizes links like LinkManager::check_link and turns tg://user links into mentions', () => {
    const parsed = html(
      '<a href="example.com">a</a><a href="HTTPS://Example.COM/Path?q=1">b</a><a href="javascript:x">c</a><a href="tg://user?id=5">d</a>',
    );
    expect(parsed.entities.map((e) => e.type)).toEqual([
      { '@type': 'textEntityTypeTextUrl', url: 'http://example.com/' },
      { '@type': 'textEntityTypeTextUrl', url: 'https://example.com/Path?q=1' },
      { '@type': 'textEntityTypeMentionName', user_id: 5 },
    ]);
    expect(checkLink('http://localhost')).toBeUndefined();
    expect(checkLink('https://x.com:99999')).toBeUndefined();
    expect(checkLink('tg://resolve?domain=x')).toBe('tg://resolve?domain=x');
    expect(linkUserId('TG:user?ID=7')).toBe(7);
  });

  it("reports HTML errors with TDLib's texts and byte offsets", () => {
    expect(parseError(() => html('<b>unclosed'))).toBe(
      'Can\'t parse entities: Can\'t find end tag corresponding to start tag "b"',
    );
    expect(parseError(() => html('é<x>bad</x>'))).toBe(
      'Can\'t parse entities: Unsupported start tag "x" at byte offset 2',
    );
    expect(parseError(() => html('<b>x</i>'))).toBe(
      'Can\'t parse entities: Unmatched end tag at byte offset 4, expected "</b>", found "</i>"',
    );
    expect(parseError(() => html('<span>s</span>'))).toBe(
      'Can\'t parse entities: Tag "span" must have class "tg-spoiler" at byte offset 0',
    );
  });

  it('parses MarkdownV2 including code blocks and block quotes', () => {
    const parsed = md2('*bold* _it_ __u__ ~s~ ||sp|| `c` ```js\nx\n``` [l](https://example.com) \\*esc\\*');
    expect(parsed.text).toBe('bold it u s sp c x\n l *esc*');
    expect(parsed.entities[5]?.type).toEqual({ '@type': 'textEntityTypeCode' });
    expect(parsed.entities[6]?.type).toEqual({ '@type': 'textEntityTypePreCode', language: 'js' });
    expect(types(md2('>a\nb\n>c'))).toEqual(['BlockQuote@0+2', 'BlockQuote@4+1']);
    expect(types(md2('**>q\n>r||\nafter'))).toEqual(['ExpandableBlockQuote@0+4']);
    expect(parseError(() => md2('a.b'))).toBe(
      "Can't parse entities: Character '.' is reserved and must be escaped with the preceding '\\'",
    );
    expect(parseError(() => md2('*>a*'))).toBe(
      "Can't parse entities: Can't find end of Bold entity at byte offset 3",
    );
  });

  it('parses Markdown v1', () => {
    const parsed = parseTextEntities('_a_ *b* [x](y.com) `c` ```py\nz```', { kind: 'markdown', version: 1 });
    expect(parsed.text).toBe('a b x c z');
    expect(types(parsed)).toEqual(['Italic@0+1', 'Bold@2+1', 'TextUrl@4+1', 'Code@6+1', 'PreCode@8+1']);
    expect(parseError(() => parseTextEntities('x', { kind: 'markdown', version: 3 }))).toBe(
      "Can't parse entities: Wrong Markdown version specified",
    );
  });
});

describe('getTextEntities', () => {
  it('finds mentions, links, commands, hashtags, cashtags and e-mail addresses', () => {
    const text = 'hi @ab @abcd http://x.com www.google.com mail@x.org /start /start@bot #tag #1 $USD $usd';
    expect(
      getTextEntities(text).map(
        (e) => `${e.type['@type'].replace('textEntityType', '')}:${text.substr(e.offset, e.length)}`,
      ),
    ).toEqual([
      'Mention:@abcd',
      'Url:http://x.com',
      'Url:www.google.com',
      'EmailAddress:mail@x.org',
      'BotCommand:/start',
      'BotCommand:/start@bot',
      'Hashtag:#tag',
      'Cashtag:$USD',
    ]);
  });
});
