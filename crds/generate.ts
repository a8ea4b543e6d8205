/**
 * `make generate`: writes the CRD YAML (config/crd/bases and the Helm chart's CRD template) and the operator's
 * ClusterRole (config/rbac/role.yaml and the chart's template) from crds/*.ts, under the repository root given
 * as the first argument (default: the current directory). CI regenerates and fails on a diff.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { generatedFiles } from './manifests.js';

const root = resolve(process.argv[2] ?? '.');
for (const [path, content] of generatedFiles()) {
  const file = join(root, path);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, content);
  console.log(`wrote ${file}`);
}
