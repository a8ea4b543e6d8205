/**
 * Records every module a child Node process resolves, through a module-resolution hook loaded with
 * --import: how a test checks what a process really loads (its import graph, dynamic imports included),
 * not what its sources seem to import.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface ModuleRecorder {
  /** Node arguments that load the hook; put them before the entry point. */
  nodeArgs: readonly string[];
  /** The same, as a NODE_OPTIONS value for helpers that only take an environment. */
  nodeOptions: string;
  /** Every module URL resolved so far, each once. */
  loaded: () => string[];
}

export function moduleRecorder(): ModuleRecorder {
  const dir = mkdtempSync(join(tmpdir(), 'module-recorder-'));
  const record = join(dir, 'loaded.txt');
  writeFileSync(record, '');
  writeFileSync(
    join(dir, 'hooks.mjs'),
    [
      "import { appendFileSync } from 'node:fs';",
      'let file;',
      'export function initialize(data) { file = data.file; }',
      'export async function resolve(specifier, context, next) {',
      '  const result = await next(specifier, context);',
      '  appendFileSync(file, `${result.url}\\n`);',
      '  return result;',
      '}',
      '',
    ].join('\n'),
  );
  const register = join(dir, 'register.mjs');
  writeFileSync(
    register,
    [
      "import { register } from 'node:module';",
      `register('./hooks.mjs', import.meta.url, { data: { file: ${JSON.stringify(record)} } });`,
      '',
    ].join('\n'),
  );
  return {
    nodeArgs: ['--import', register],
    nodeOptions: `--import=${register}`,
    loaded: () => [
      ...new Set(
        readFileSync(record, 'utf8')
          .split('\n')
          .filter((line) => line !== ''),
      ),
    ],
  };
}
