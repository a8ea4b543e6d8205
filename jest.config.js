// globalSetup files run from dist/ (npm run build): jest does not map .js imports to .ts there.
// Every suite runs as ESM because @kubernetes/client-node 1.x ships only ESM; ts-jest transpiles per file
// (type checking is `npm run typecheck`, not the test run).
const tsTransform = { '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }] };
const common = {
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: tsTransform,
  testEnvironment: 'node',
  setupFilesAfterEnv: ['<rootDir>/test/support/timeouts.ts'],
};

const projects = [
  { ...common, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'] },
  { ...common, displayName: 'native', testMatch: ['<rootDir>/test/native/**/*.test.ts'] },
  {
    ...common,
    displayName: 'integration',
    testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
    globalSetup: '<rootDir>/dist/test/cluster/jest-global-setup.js',
    globalTeardown: '<rootDir>/dist/test/cluster/jest-global-teardown.js',
  },
  {
    ...common,
    displayName: 'e2e',
    testMatch: ['<rootDir>/test/e2e/**/*.test.ts'],
    globalSetup: '<rootDir>/dist/test/cluster/jest-global-setup-full.js',
    globalTeardown: '<rootDir>/dist/test/cluster/jest-global-teardown.js',
  },
];

// TEST_TIER picks one tier (npm run test:<tier>); jest's --selectProjects would swallow a path argument.
const tier = process.env.TEST_TIER;
const selected = tier ? projects.filter((p) => p.displayName === tier) : projects;
if (tier && selected.length === 0)
  throw new Error(`TEST_TIER=${tier}: expected one of unit, native, integration, e2e`);
export default { projects: selected };
