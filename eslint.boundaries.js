// The import directions ARCHITECTURE.md fixes, as a lint rule that fails CI:
//   crds/           the API: imports nothing of ours outside crds/
//   native/         a generic libtdjson binding: imports nothing of ours outside native/
//   operator/kube/  the Kubernetes machinery shared with the runtime: imports only crds/
//   operator/       the controller process: never runtime/, tools/, test/ or native/
//   runtime/        the pod process: crds/, operator/kube/ and native/ (the TDLib boundary), nothing else of operator/
//   tools/          the kubectl plugin and the demo: crds/ and operator/kube/ only
// test/ may import anything. Paths are resolved, so '../../operator/kube/x.js' and 'operator/kube' match alike.
import path from 'node:path';

const ZONES = [
  { zone: 'crds/', allow: ['crds/'] },
  { zone: 'native/', allow: ['native/'] },
  { zone: 'operator/kube/', allow: ['operator/kube/', 'crds/'] },
  { zone: 'operator/', allow: ['operator/', 'crds/'] },
  { zone: 'runtime/', allow: ['runtime/', 'crds/', 'operator/kube/', 'native/'] },
  { zone: 'tools/', allow: ['tools/', 'crds/', 'operator/kube/'] },
];
const OURS = ['crds/', 'native/', 'operator/', 'runtime/', 'tools/', 'test/', 'charts/', 'config/'];

function relativeToRoot(root, file) {
  return path.relative(root, file).split(path.sep).join('/');
}

const importBoundaries = {
  meta: {
    type: 'problem',
    docs: { description: 'enforces the import directions between top-level folders (ARCHITECTURE.md)' },
    schema: [],
    messages: {
      forbidden:
        '{{from}} must not import {{target}}: {{zone}} may import only {{allowed}} (ARCHITECTURE.md, "Layout")',
    },
  },
  create(context) {
    const root = context.cwd ?? process.cwd();
    const file = relativeToRoot(root, context.filename ?? context.getFilename());
    const rule = ZONES.find((z) => file.startsWith(z.zone));
    if (!rule) return {};
    const check = (node, source) => {
      if (typeof source !== 'string' || !source.startsWith('.')) return;
      const target = relativeToRoot(root, path.resolve(root, path.dirname(file), source));
      if (!OURS.some((top) => target.startsWith(top))) return;
      if (rule.allow.some((allowed) => target.startsWith(allowed))) return;
      context.report({
        node,
        messageId: 'forbidden',
        data: { from: file, target, zone: rule.zone, allowed: rule.allow.join(', ') },
      });
    };
    const fromSource = (node) => check(node.source, node.source?.value);
    return {
      ImportDeclaration: fromSource,
      ExportAllDeclaration: fromSource,
      ExportNamedDeclaration: (node) => node.source && fromSource(node),
      ImportExpression: (node) =>
        check(node.source, node.source.type === 'Literal' ? node.source.value : null),
    };
  },
};

export const boundariesPlugin = { rules: { 'import-boundaries': importBoundaries } };
