/**
 * A parser for the Prometheus text exposition format 0.0.4, as prom-client writes it. The operator scrapes
 * runtime pods itself during a rollout (no Prometheus needed), so it reads their /metrics text directly.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;
// Decimal floats only: Number() alone would also take '0x1f', '' or ' ', which are not valid values here.
const FLOAT = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const INFINITY = /^([+-]?)inf(inity)?$/;
const TIMESTAMP = /^-?\d+$/;
const BLANKS = /[ \t]+/;

/**
 * Every sample of `text`, in order. Comments (# HELP, # TYPE and others) and blank lines are skipped; so is a
 * malformed line, alone: one bad series must not hide the rest of a pod's metrics from the analysis.
 */
export function parsePrometheusText(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/^[ \t]+|[ \t\r]+$/g, '');
    if (line === '' || line.startsWith('#')) continue;
    const sample = parseSampleLine(line);
    if (sample !== undefined) samples.push(sample);
  }
  return samples;
}

/** One `name{labels} value [timestamp]` line, or undefined when it is malformed. */
function parseSampleLine(line: string): Sample | undefined {
  const name = METRIC_NAME.exec(line)?.[0];
  if (name === undefined) return undefined;
  let rest = line.slice(name.length);
  let labels: Record<string, string> = {};
  if (rest.startsWith('{')) {
    const parsed = parseLabels(rest);
    if (parsed === undefined) return undefined;
    labels = parsed.labels;
    rest = rest.slice(parsed.length);
  } else if (!/^[ \t]/.test(rest)) {
    // Labels or a blank must follow the name: 'up-1' is malformed, not 'up' with the value -1.
    return undefined;
  }
  const tokens = rest.trim().split(BLANKS);
  if (tokens.length > 2) return undefined;
  const value = parseValue(tokens[0] ?? '');
  if (value === undefined) return undefined;
  if (tokens.length === 2 && !TIMESTAMP.test(tokens[1] ?? '')) return undefined;
  return { name, labels, value };
}

/**
 * A sample value: a decimal float, NaN or an infinity. Case-insensitive, as Prometheus' own parser
 * (Go's ParseFloat) is: prom-client writes NaN as 'Nan'.
 */
function parseValue(token: string): number | undefined {
  const lower = token.toLowerCase();
  if (lower === 'nan') return NaN;
  const infinity = INFINITY.exec(lower);
  if (infinity !== null) return infinity[1] === '-' ? -Infinity : Infinity;
  return FLOAT.test(token) ? Number(token) : undefined;
}

/**
 * The `{...}` block at the start of `text`: its labels and how many characters it spans. A trailing comma
 * is allowed (the format permits it); a duplicate name or an unknown escape makes the line malformed, as it
 * does for Prometheus.
 */
function parseLabels(text: string): { labels: Record<string, string>; length: number } | undefined {
  // A Map, not an object literal: a label named __proto__ must become a label, not a prototype.
  const labels = new Map<string, string>();
  let at = 1;
  const skipBlanks = () => {
    while (text[at] === ' ' || text[at] === '\t') at++;
  };
  for (;;) {
    skipBlanks();
    if (text[at] === '}') return { labels: Object.fromEntries(labels), length: at + 1 };
    const labelName = LABEL_NAME.exec(text.slice(at))?.[0];
    if (labelName === undefined || labels.has(labelName)) return undefined;
    at += labelName.length;
    skipBlanks();
    if (text[at] !== '=') return undefined;
    at++;
    skipBlanks();
    const quoted = parseQuoted(text, at);
    if (quoted === undefined) return undefined;
    labels.set(labelName, quoted.value);
    at = quoted.end;
    skipBlanks();
    if (text[at] === ',') at++;
    else if (text[at] !== '}') return undefined;
  }
}

const ESCAPES: Readonly<Record<string, string>> = { '\\': '\\', '"': '"', n: '\n' };

/** The double-quoted label value starting at `start`, unescaped, and the index just past its closing quote. */
function parseQuoted(text: string, start: number): { value: string; end: number } | undefined {
  if (text[start] !== '"') return undefined;
  let value = '';
  for (let at = start + 1; at < text.length; at++) {
    const char = text[at];
    if (char === '"') return { value, end: at + 1 };
    if (char === '\\') {
      const escaped = ESCAPES[text[at + 1] ?? ''];
      if (escaped === undefined) return undefined;
      value += escaped;
      at++;
    } else {
      value += char;
    }
  }
  return undefined;
}
