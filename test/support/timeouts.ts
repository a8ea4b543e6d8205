import { jest } from '@jest/globals';

/**
 * Whole-test bound per tier (jest has no per-project testTimeout). Waits inside tests carry their own
 * tighter deadlines; this only stops a test that hangs.
 */
const byTier: Record<string, number> = { unit: 30_000, native: 300_000, integration: 120_000, e2e: 300_000 };
jest.setTimeout(byTier[process.env.TEST_TIER ?? ''] ?? 60_000);
