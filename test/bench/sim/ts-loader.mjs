/**
 * A Node module loader that runs this repository's TypeScript sources directly: `./x.js` imports resolve to
 * `./x.ts` when only the .ts exists, and .ts files are transpiled per file with TypeScript's transpileModule
 * (no type checking: `npm run typecheck` does that). Child processes of the simulator tests and the
 * simulator benchmark use it so they never depend on a fresh `npm run build` of the whole project.
 * Transpiled files are cached by path, size and mtime (TypeScript itself is only loaded on a cache miss),
 * because tests start many short-lived children. Register with:
 *   node --import ./test/bench/sim/register-ts.mjs file.ts
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { readFile, rename, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL, URL } from 'node:url';

const cacheDir = process.env.SIM_TS_CACHE ?? join(tmpdir(), 'tdlib-operator-ts-cache');
let typescript;

async function transpile(fileName, source) {
  typescript ??= (await import('typescript')).default;
  const ts = typescript;
  return ts.transpileModule(source, {
    fileName,
    compilerOptions: {
      module: ts.ModuleKind.ESNext,
      target: ts.ScriptTarget.ES2022,
      inlineSourceMap: true,
      isolatedModules: true,
    },
  }).outputText;
}

export async function resolve(specifier, context, next) {
  const parent = context.parentURL;
  if (
    parent !== undefined &&
    parent.startsWith('file:') &&
    /^\.{1,2}\//.test(specifier) &&
    specifier.endsWith('.js')
  ) {
    const url = new URL(specifier, parent);
    const jsPath = fileURLToPath(url);
    const tsPath = jsPath.slice(0, -3) + '.ts';
    if (!existsSync(jsPath) && existsSync(tsPath)) return next(pathToFileURL(tsPath).href, context);
  }
  return next(specifier, context);
}

export async function load(url, context, next) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return next(url, context);
  const fileName = fileURLToPath(url);
  const info = await stat(fileName);
  const key = createHash('sha256')
    .update(`${fileName}\0${info.size}\0${info.mtimeMs}`)
    .digest('hex')
    .slice(0, 32);
  const cached = join(cacheDir, `${key}.js`);
  let output;
  try {
    output = await readFile(cached, 'utf8');
  } catch {
    output = await transpile(fileName, await readFile(fileName, 'utf8'));
    mkdirSync(cacheDir, { recursive: true });
    const tmp = `${cached}.${process.pid}.tmp`;
    await writeFile(tmp, output);
    await rename(tmp, cached);
  }
  return { format: 'module', source: output, shortCircuit: true };
}
