/**
 * Child-process entry for the differential test of text entity parsing: feeds the same inputs to real
 * libtdjson's td_execute and to the simulator's execute, and prints a summary (last stdout line,
 * "DIFF {...}") with the inputs whose answers differ. Inputs: a fixed corpus of realistic campaign texts
 * plus token soup generated from a seeded PRNG, which reaches the parsers' error paths too.
 */
import { SimulatorBackend } from '../../../../runtime/simulator/index.js';
import { createReferenceBackend } from './reference-backend.js';
import { World } from '../../../../runtime/simulator/world.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const CORPUS_HTML = [
  '<b>Spring sale</b> starts <i>today</i>! Visit <a href="https://shop.example.com/sale?utm=tg">our shop</a>.',
  'Hello, <b>{{name}}</b>!\n\nYour code: <code>ABC-123</code>\n<tg-spoiler>secret</tg-spoiler>',
  '<pre><code class="language-python">print("hi")\n</code></pre>',
  '<blockquote>Quote\nsecond line</blockquote>After',
  '<blockquote expandable>Long\ntext</blockquote>',
  '<u>underline</u> <s>strike</s> <del>del</del> <ins>ins</ins> <strong>strong</strong> <em>em</em>',
  '&lt;not a tag&gt; &amp; &quot;quotes&quot; &#128512; &#x1F600;',
  'Mention <a href="tg://user?id=123456">someone</a> and <a href="t.me/channel">a channel</a>',
  'Emoji 😀👍🏽 and <b>ünïcödé</b> 𝄞 text',
  '<a href="https://example.com/path(1)">parens</a>',
];

export const CORPUS_MD2 = [
  '*Spring sale* starts _today_\\! Visit [our shop](https://shop.example.com/sale?utm=tg)\\.',
  'Hello, *{{name}}*\\!\n\nYour code: `ABC-123`\n||secret||',
  '```python\nprint("hi")\n```',
  '>Quote\n>second line\nAfter',
  '**>Long\n>text||',
  '__underline__ ~strike~ *bold _italic bold_ bold*',
  '[someone](tg://user?id=123456) and [link](https://example.com/a\\)b)',
  'Emoji 😀👍🏽 and *ünïcödé* 𝄞 text',
  'Price: 10\\.00 \\- 20\\.00 \\(incl\\. VAT\\)',
  '![👍](tg://emoji?id=5368324170671202286)',
];

const HTML_TOKENS = [
  '<b>',
  '</b>',
  '<i>',
  '</i>',
  '<u>',
  '</u>',
  '<s>',
  '</s>',
  '<code>',
  '</code>',
  '<pre>',
  '</pre>',
  '<a href="https://example.com">',
  '<a href="example.org/x">',
  '<a href="tg://user?id=42">',
  '<a>',
  '</a>',
  '<tg-spoiler>',
  '</tg-spoiler>',
  '<blockquote>',
  '</blockquote>',
  '<blockquote expandable>',
  '<span class="tg-spoiler">',
  '</span>',
  '<pre><code class="language-js">',
  '</code></pre>',
  '<B>',
  '</B>',
  '<b >',
  '</ b>',
  '<strong>',
  '</strong>',
  '<em>',
  '</em>',
  '&lt;',
  '&gt;',
  '&amp;',
  '&quot;',
  '&#65;',
  '&lt',
  '&foo;',
  'text',
  'text',
  ' ',
  ' ',
  '\n',
  'é',
  '😀',
  '<',
  '>',
  '&',
  '"',
  "'",
  'https://x.com',
];

const MD2_TOKENS = [
  '*',
  '*',
  '_',
  '_',
  '__',
  '~',
  '||',
  '`',
  '```',
  '```js\n',
  '[',
  '](https://example.com)',
  '](x.org)',
  ']',
  '(',
  ')',
  '\\',
  '\\*',
  '\\_',
  '\\.',
  '\\!',
  '\\\\',
  '.',
  '!',
  '>',
  '\n>',
  '**>',
  '\n',
  '\n',
  'text',
  'text',
  ' ',
  ' ',
  'é',
  '😀',
  '#',
  '-',
  '=',
  '{',
  '}',
  '+',
  '|',
  '![x](tg://emoji?id=1)',
];

function prng(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4294967296;
  };
}

function soup(tokens: readonly string[], random: () => number, count: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const n = 1 + Math.floor(random() * 8);
    let s = '';
    for (let j = 0; j < n; j++) s += tokens[Math.floor(random() * tokens.length)] ?? '';
    out.push(s);
  }
  return out;
}

const count = Number(process.argv[2] ?? '2000');
const random = prng(Number(process.argv[3] ?? '12345'));
const requests: Record<string, unknown>[] = [];
const html = (text: string): Record<string, unknown> => ({
  '@type': 'parseTextEntities',
  text,
  parse_mode: { '@type': 'textParseModeHTML' },
});
const md = (text: string, version: number): Record<string, unknown> => ({
  '@type': 'parseTextEntities',
  text,
  parse_mode: { '@type': 'textParseModeMarkdown', version },
});
for (const text of CORPUS_HTML) requests.push(html(text));
for (const text of CORPUS_MD2) requests.push(md(text, 2));
for (const text of soup(HTML_TOKENS, random, count)) requests.push(html(text));
for (const text of soup(MD2_TOKENS, random, count)) requests.push(md(text, 2));
for (const text of soup(MD2_TOKENS, random, Math.floor(count / 4))) requests.push(md(text, 1));
for (const text of [
  'hi @username and /start@bot #tag $USD https://x.com/a?b=1 mail@example.com',
  'www.example.com t.me/x',
]) {
  requests.push({ '@type': 'getTextEntities', text });
}

const worldDir = mkdtempSync(join(tmpdir(), 'sim-diff-'));
World.create(worldDir, { version: 1, users: [] });
const sim = new SimulatorBackend({ worldDir });
const { backend: real, note } = await createReferenceBackend();
const mismatches: { request: unknown; sim: unknown; real: unknown }[] = [];
let corpusMismatches = 0;
requests.forEach((request, index) => {
  const text = JSON.stringify(request);
  const a = JSON.parse(sim.execute(text)) as unknown;
  const b = JSON.parse(real.execute(text)) as unknown;
  if (JSON.stringify(a) !== JSON.stringify(b)) {
    if (index < CORPUS_HTML.length + CORPUS_MD2.length) corpusMismatches++;
    mismatches.push({ request, sim: a, real: b });
  }
});
await sim.close();
await real.close();
process.stdout.write(
  `\nDIFF ${JSON.stringify({ note, total: requests.length, corpus: CORPUS_HTML.length + CORPUS_MD2.length, corpusMismatches, mismatchCount: mismatches.length, mismatches: mismatches.slice(0, 40) })}\n`,
);
