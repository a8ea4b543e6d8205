/**
 * The import directions of ARCHITECTURE.md are enforced by eslint (eslint.boundaries.js). This runs the
 * project's own eslint configuration on small sources placed in each folder, as CI's `npm run lint` would.
 */
import { ESLint } from 'eslint';

const eslint = new ESLint({ cwd: process.cwd() });

async function boundaryErrors(filePath: string, source: string): Promise<string[]> {
  const [result] = await eslint.lintText(source, { filePath });
  return (result?.messages ?? [])
    .filter((m) => m.ruleId === 'boundaries/import-boundaries')
    .map((m) => m.message);
}

describe('import boundaries (lint)', () => {
  it.each([
    ['operator/pool/x.ts', "import { RuntimeAgent } from '../../runtime/agent.js';\nvoid RuntimeAgent;\n"],
    ['operator/x.ts', "export { TdClient } from '../runtime/tdlib/client.js';\n"],
    [
      'runtime/x.ts',
      "import { PoolReconciler } from '../operator/pool/controller.js';\nvoid PoolReconciler;\n",
    ],
    ['runtime/hosting/x.ts', "import { place } from '../../operator/placement.js';\nvoid place;\n"],
    [
      'tools/demo/x.ts',
      "import { ControlPlane } from '../../test/cluster/control-plane.js';\nvoid ControlPlane;\n",
    ],
    ['operator/kube/x.ts', "import { place } from '../placement.js';\nvoid place;\n"],
    ['crds/x.ts', "import { RestClient } from '../operator/kube/client.js';\nvoid RestClient;\n"],
    ['native/x.ts', "import { GROUP } from '../crds/index.js';\nvoid GROUP;\n"],
    ['runtime/x.ts', "export const load = () => import('../operator/manager.js');\n"],
  ])('rejects %s importing across a boundary #%#', async (file, source) => {
    const errors = await boundaryErrors(file, source);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/must not import/);
  });

  it.each([
    ['runtime/x.ts', "import { RestClient } from '../operator/kube/client.js';\nvoid RestClient;\n"],
    ['runtime/x.ts', "import { GROUP } from '../crds/index.js';\nvoid GROUP;\n"],
    ['runtime/tdlib/x.ts', "import { TdJson } from '../../native/index.js';\nvoid TdJson;\n"],
    ['tools/x.ts', "import { Informer } from '../operator/kube/reflector.js';\nvoid Informer;\n"],
    ['operator/pool/x.ts', "import { place } from '../placement.js';\nvoid place;\n"],
    ['test/x.ts', "import { RuntimeAgent } from '../runtime/agent.js';\nvoid RuntimeAgent;\n"],
    ['runtime/x.ts', "import { readFileSync } from 'node:fs';\nvoid readFileSync;\n"],
  ])('allows %s its permitted import #%#', async (file, source) => {
    expect(await boundaryErrors(file, source)).toEqual([]);
  });
});
