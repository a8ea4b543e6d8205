/**
 * What `make generate` writes (crds/manifests.ts) is what the repository holds, the chart and config/ carry
 * the same CRDs and rules, and the operator's ClusterRole covers everything it grants runtime pods (RBAC
 * refuses to let anyone grant what they do not hold).
 */
import { readFileSync } from 'node:fs';
import { parse, parseAllDocuments } from 'yaml';
import { allCrds } from '../../../crds/index.js';
import { CHART_DIR, generatedFiles, helmLiteral } from '../../../crds/manifests.js';
import { OPERATOR_CLUSTER_ROLE_RULES, type PolicyRule } from '../../../crds/operator-rbac.js';
import { desiredRole, type PoolSettings } from '../../../operator/pool/desired.js';

const files = generatedFiles();
const file = (path: string): string => {
  const content = files.get(path);
  if (content === undefined) throw new Error(`not generated: ${path}`);
  return content;
};

/** Helm syntax stripped the way a default render would leave it (crds.create / rbac.create true). */
const withoutHelm = (text: string): string =>
  text
    .split('\n')
    .filter((line) => !/^\s*\{\{-? (if|end|include) .*\}\}$/.test(line))
    .map((line) => line.replace(/\{\{.*?\}\}/g, 'rendered'))
    .join('\n');

describe('generated manifests', () => {
  it.each([...files.keys()])('%s is up to date (run make generate)', (path) => {
    expect(readFileSync(path, 'utf8')).toBe(file(path));
  });

  it('the chart template holds every CRD, unchanged apart from keep and labels', () => {
    const docs = parseAllDocuments(withoutHelm(file(`${CHART_DIR}/templates/crds/crds.yaml`)))
      .map((d) => d.toJS() as Record<string, unknown> | null)
      .filter((d): d is Record<string, unknown> => d !== null);
    expect(docs).toHaveLength(allCrds().length);
    for (const [i, crd] of allCrds().entries()) {
      const doc = docs[i] as { metadata: { name: string; annotations: Record<string, string> } };
      expect(doc.metadata.annotations).toEqual({ 'helm.sh/resource-policy': 'keep' });
      expect({ ...doc, metadata: { name: doc.metadata.name } }).toEqual(crd);
    }
  });

  it('config/rbac/role.yaml and the chart ClusterRole hold the same rules', () => {
    const config = parse(file('config/rbac/role.yaml')) as { rules: PolicyRule[] };
    const chart = parse(withoutHelm(file(`${CHART_DIR}/templates/clusterrole.yaml`))) as {
      rules: PolicyRule[];
    };
    expect(config.rules).toEqual(OPERATOR_CLUSTER_ROLE_RULES);
    expect(chart.rules).toEqual(OPERATOR_CLUSTER_ROLE_RULES);
  });

  it('helmLiteral makes braces print verbatim', () => {
    expect(helmLiteral('a {{ b }} c')).toBe('a {{ "{{" }} b {{ "}}" }} c');
  });

  it("the ClusterRole covers every permission of a runtime pool's Role", () => {
    const settings: PoolSettings = {
      namespace: 'team',
      pool: 'default',
      inputSecretNames: ['api'],
      keySecretNames: ['a-tdlib-key'],
      loginCodeSecretNames: ['a-login-code'],
      sessionSecretNames: ['a-tdlib-session'],
      accountNames: ['a'],
      leaseNames: ['tga-a'],
    };
    const held = (group: string, resource: string, verb: string): boolean =>
      OPERATOR_CLUSTER_ROLE_RULES.some(
        (r) => r.apiGroups.includes(group) && r.resources.includes(resource) && r.verbs.includes(verb),
      );
    const missing: string[] = [];
    for (const rule of desiredRole(settings).rules ?? [])
      for (const group of rule.apiGroups ?? [])
        for (const resource of rule.resources ?? [])
          for (const verb of rule.verbs)
            if (!held(group, resource, verb)) missing.push(`${verb} ${resource}.${group}`);
    expect(missing).toEqual([]);
  });
});
