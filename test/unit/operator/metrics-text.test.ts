/** The Prometheus text parser the operator reads runtime pods' /metrics with during a canary analysis. */
import { describe, expect, it } from '@jest/globals';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { parsePrometheusText } from '../../../operator/pool/rollout/metrics-text.js';

describe('parsePrometheusText', () => {
  it('reads names, labels, values and timestamps, and skips comments and blank lines', () => {
    const text = [
      '# HELP up Whether the target is up',
      '# TYPE up gauge',
      '',
      'up 1',
      'http_requests_total{method="post",code="200"} 1027 1395066363000',
      '  rpc_duration_seconds{quantile="0.5",} 4773\t',
      'empty_labels{} 3',
      '# a free comment',
    ].join('\n');
    expect(parsePrometheusText(text)).toEqual([
      { name: 'up', labels: {}, value: 1 },
      { name: 'http_requests_total', labels: { method: 'post', code: '200' }, value: 1027 },
      { name: 'rpc_duration_seconds', labels: { quantile: '0.5' }, value: 4773 },
      { name: 'empty_labels', labels: {}, value: 3 },
    ]);
  });

  it('unescapes \\\\, \\" and \\n in label values', () => {
    const [sample] = parsePrometheusText('m{path="C:\\\\dir\\\\",quote="say \\"hi\\"",nl="a\\nb"} 1');
    expect(sample?.labels).toEqual({ path: 'C:\\dir\\', quote: 'say "hi"', nl: 'a\nb' });
  });

  it('reads NaN, +Inf, -Inf and exponents, in any case as Prometheus does', () => {
    const values = parsePrometheusText('a NaN\nb Nan\nc +Inf\nd -Inf\ne 1.5e-3\nf -2\ng .5\n').map(
      (s) => s.value,
    );
    expect(values).toEqual([NaN, NaN, Infinity, -Infinity, 0.0015, -2, 0.5]);
  });

  it('skips each malformed line alone, without throwing', () => {
    const bad = [
      'no_value',
      'bad value',
      'hex 0x10',
      'up-1',
      '1leading_digit 1',
      'm{unclosed="x" 1',
      'm{unquoted=x} 1',
      'm{a="1"b="2"} 1',
      'm{dup="1",dup="2"} 1',
      'm{bad="\\q"} 1',
      'm{a="1"} 1 notatimestamp',
      'm 1 2 3',
      '{} 1',
      '\u0000\uffff',
    ];
    expect(() => parsePrometheusText(bad.join('\n'))).not.toThrow();
    expect(parsePrometheusText([...bad, 'ok 7'].join('\n'))).toEqual([{ name: 'ok', labels: {}, value: 7 }]);
  });

  it('takes CRLF line ends and a label named __proto__ as plain data', () => {
    const [sample] = parsePrometheusText('m{__proto__="x"} 2\r\n');
    expect(sample?.value).toBe(2);
    expect(Object.getOwnPropertyDescriptor(sample?.labels, '__proto__')?.value).toBe('x');
  });

  it("parses prom-client's own output", async () => {
    const registry = new Registry();
    const counter = new Counter({
      name: 'demo_total',
      help: 'A "quoted" help\nwith a newline',
      labelNames: ['method', 'note'],
      registers: [registry],
    });
    const histogram = new Histogram({
      name: 'demo_seconds',
      help: 'h',
      labelNames: ['method'],
      buckets: [0.1, 1],
      registers: [registry],
    });
    const gauge = new Gauge({ name: 'demo_gauge', help: 'g', registers: [registry] });
    counter.inc({ method: 'sendMessage', note: 'a "b" \\ c\nd' }, 3);
    histogram.observe({ method: 'getMe' }, 0.05);
    histogram.observe({ method: 'getMe' }, 0.5);
    histogram.observe({ method: 'getMe' }, 2);
    gauge.set(NaN);

    const samples = parsePrometheusText(await registry.metrics());
    expect(samples).toEqual([
      { name: 'demo_total', labels: { method: 'sendMessage', note: 'a "b" \\ c\nd' }, value: 3 },
      { name: 'demo_seconds_bucket', labels: { le: '0.1', method: 'getMe' }, value: 1 },
      { name: 'demo_seconds_bucket', labels: { le: '1', method: 'getMe' }, value: 2 },
      { name: 'demo_seconds_bucket', labels: { le: '+Inf', method: 'getMe' }, value: 3 },
      { name: 'demo_seconds_sum', labels: { method: 'getMe' }, value: 2.55 },
      { name: 'demo_seconds_count', labels: { method: 'getMe' }, value: 3 },
      { name: 'demo_gauge', labels: {}, value: NaN },
    ]);
  });
});
