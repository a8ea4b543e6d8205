/**
 * The runtime reports the TDLib it loaded: getOption "version" and "commit_hash" through td_execute, in the
 * start log line and as tdlib_version_info{version,commit,backend} 1.
 */
import { describe, expect, it } from '@jest/globals';
import { Registry } from 'prom-client';
import type { TdBackend } from '../../../runtime/tdlib/backend.js';
import { registerTdlibVersionMetric, tdlibVersion } from '../../../runtime/tdlib/version.js';

function backendAnswering(answers: Record<string, string>): Pick<TdBackend, 'execute'> & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    execute(requestJson: string): string {
      const request = JSON.parse(requestJson) as { '@type': string; name: string };
      asked.push(`${request['@type']} ${request.name}`);
      return answers[request.name] ?? '{"@type":"error","code":400,"message":"Option not found"}';
    },
  };
}

describe('tdlibVersion', () => {
  it('reads version and commit_hash with td_execute getOption', () => {
    const backend = backendAnswering({
      version: '{"@type":"optionValueString","value":"1.8.67"}',
      commit_hash: '{"@type":"optionValueString","value":"d1085f9c"}',
    });
    expect(tdlibVersion(backend)).toEqual({ version: '1.8.67', commit: 'd1085f9c' });
    expect(backend.asked).toEqual(['getOption version', 'getOption commit_hash']);
  });

  it('says "unknown" for an error, a non-string option, text that is not JSON, or a backend that throws', () => {
    expect(
      tdlibVersion(
        backendAnswering({ version: '{"@type":"optionValueInteger","value":"5"}', commit_hash: 'not json' }),
      ),
    ).toEqual({ version: 'unknown', commit: 'unknown' });
    expect(tdlibVersion(backendAnswering({}))).toEqual({ version: 'unknown', commit: 'unknown' });
    const throwing: Pick<TdBackend, 'execute'> = {
      execute: () => {
        throw new Error('backend closed');
      },
    };
    expect(tdlibVersion(throwing)).toEqual({ version: 'unknown', commit: 'unknown' });
  });
});

describe('tdlib_version_info', () => {
  it('is 1 with the loaded version, commit and backend as labels', async () => {
    const registry = new Registry();
    registerTdlibVersionMetric(registry, 'native', { version: '1.8.67', commit: 'd1085f9c' });
    const text = await registry.metrics();
    expect(text).toContain('# TYPE tdlib_version_info gauge');
    expect(text).toContain('tdlib_version_info{version="1.8.67",commit="d1085f9c",backend="native"} 1');
  });
});
