import { ConfigError, loadEnvConfig } from '../../../operator/kube/env-config.js';
import { loadOperatorConfig } from '../../../operator/config.js';

describe('loadEnvConfig', () => {
  const schema = {
    PORT: { type: 'integer', description: 'port', default: 8080, minimum: 1, maximum: 65535 },
    ENABLED: { type: 'boolean', description: 'switch', default: true },
    MODE: { type: 'string', description: 'mode', default: 'a', enum: ['a', 'b'] },
    TOKEN: { type: 'string', description: 'token', secret: true, pattern: '^[0-9]+:[A-Za-z0-9_-]+$' },
  } as const;

  it('applies defaults and converts types', () => {
    expect(loadEnvConfig(schema, { PORT: '9090', ENABLED: 'off' })).toEqual({
      PORT: 9090,
      ENABLED: false,
      MODE: 'a',
    });
  });

  it('reports every bad key at once, naming it, and never echoes a secret', () => {
    let error: unknown;
    try {
      loadEnvConfig(schema, { PORT: 'eighty', ENABLED: 'maybe', MODE: 'c', TOKEN: 'not-a-token' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as ConfigError).message;
    expect(message).toContain('PORT must be a whole number (got "eighty")');
    expect(message).toContain('ENABLED must be true or false');
    expect(message).toContain('MODE must be one of a, b');
    expect(message).toContain('TOKEN has the wrong format');
    expect(message).not.toContain('not-a-token');
  });

  it('rejects out-of-range numbers with the limit', () => {
    expect(() => loadEnvConfig(schema, { PORT: '70000' })).toThrow(/PORT must be <= 65535/);
  });
});

describe('operator configuration', () => {
  it('has working defaults', () => {
    const config = loadOperatorConfig({});
    expect(config.RUNTIME_ACCOUNTS_PER_POD).toBe(100);
    expect(config.LEADER_ELECT).toBe(true);
  });

  it('rejects a bad storage size by name', () => {
    expect(() => loadOperatorConfig({ RUNTIME_STORAGE_SIZE: 'lots' })).toThrow(
      /RUNTIME_STORAGE_SIZE has the wrong format/,
    );
  });
});
