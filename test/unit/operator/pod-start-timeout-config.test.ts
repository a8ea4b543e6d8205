import { ConfigError } from '../../../operator/kube/env-config.js';
import { loadOperatorConfig } from '../../../operator/config.js';

describe('RUNTIME_POD_START_TIMEOUT_SECONDS', () => {
  it('defaults to 120 seconds and takes a whole number of at least 5', () => {
    expect(loadOperatorConfig({}).RUNTIME_POD_START_TIMEOUT_SECONDS).toBe(120);
    expect(
      loadOperatorConfig({ RUNTIME_POD_START_TIMEOUT_SECONDS: '5' }).RUNTIME_POD_START_TIMEOUT_SECONDS,
    ).toBe(5);
  });

  it('refuses values below 5 or not whole numbers, naming the key', () => {
    expect(() => loadOperatorConfig({ RUNTIME_POD_START_TIMEOUT_SECONDS: '4' })).toThrow(ConfigError);
    expect(() => loadOperatorConfig({ RUNTIME_POD_START_TIMEOUT_SECONDS: '4' })).toThrow(
      /RUNTIME_POD_START_TIMEOUT_SECONDS must be >= 5/,
    );
    expect(() => loadOperatorConfig({ RUNTIME_POD_START_TIMEOUT_SECONDS: '2m' })).toThrow(
      /RUNTIME_POD_START_TIMEOUT_SECONDS must be a whole number/,
    );
  });
});
