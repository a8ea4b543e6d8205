import { loadRuntimeConfig } from '../../../runtime/config.js';

describe('runtime configuration (the previous backend keys keep working)', () => {
  const base = { POD_NAME: 'tdlib-runtime-default-0', POD_NAMESPACE: 'ns' };

  it('accepts the seed keys with their documented defaults', () => {
    const config = loadRuntimeConfig(base);
    expect(config).toMatchObject({
      TDLIB_ENABLED: true,
      TDLIB_SESSION_TTL_SECONDS: 604800,
      TDLIB_UPDATE_POLLING_ENABLED: true,
      TDLIB_POLL_INTERVAL_MS: 100,
    });
    expect(
      loadRuntimeConfig({
        ...base,
        TDLIB_ENABLED: 'false',
        TDLIB_ADDON_PATH: '/opt/td/libtdjson.so',
        TDLIB_POLL_INTERVAL_MS: '250',
      }),
    ).toMatchObject({
      TDLIB_ENABLED: false,
      TDLIB_ADDON_PATH: '/opt/td/libtdjson.so',
      TDLIB_POLL_INTERVAL_MS: 250,
    });
  });

  it('names every bad key at start-up', () => {
    const bad = () =>
      loadRuntimeConfig({ ...base, TDLIB_POLL_INTERVAL_MS: 'fast', TDLIB_SESSION_TTL_SECONDS: '5' });
    expect(bad).toThrow(/TDLIB_POLL_INTERVAL_MS must be a whole number \(got "fast"\)/);
    expect(bad).toThrow(/TDLIB_SESSION_TTL_SECONDS must be >= 60/);
    expect(() => loadRuntimeConfig({})).toThrow(/POD_NAME is required/);
    expect(() => loadRuntimeConfig({ ...base, TDLIB_BACKEND: 'simulator' })).toThrow(
      /TDLIB_SIMULATOR_WORLD is required/,
    );
  });
});
