/**
 * Child-process fixtures are TypeScript, and a plain `node` child cannot run TypeScript. This compiles a
 * fixture and the project files it imports (relative imports, followed recursively) with
 * ts.transpileModule into a scratch folder under native/build, so bare imports still resolve from the
 * project's node_modules and the addon is found from the working directory.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

export const REPO_ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..', '..');

export interface CompiledFixture {
  /** The compiled entry point (.js) to run with node. */
  readonly entry: string;
  remove(): void;
}

export function compileFixture(fixture: string): CompiledFixture {
  const scratchRoot = path.join(REPO_ROOT, 'native', 'build');
  mkdirSync(scratchRoot, { recursive: true });
  const outDir = mkdtempSync(path.join(scratchRoot, 'test-js-'));
  writeFileSync(path.join(outDir, 'package.json'), '{"type":"module"}\n');
  const seen = new Set<string>();
  const queue = [path.resolve(REPO_ROOT, fixture)];
  while (queue.length > 0) {
    const source = queue.pop() as string;
    if (seen.has(source)) continue;
    seen.add(source);
    const text = readFileSync(source, 'utf8');
    const output = ts.transpileModule(text, {
      fileName: source,
      compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022, sourceMap: false },
    });
    const target = path.join(outDir, path.relative(REPO_ROOT, source)).replace(/\.ts$/, '.js');
    mkdirSync(path.dirname(target), { recursive: true });
    writeFileSync(target, output.outputText);
    for (const imported of ts.preProcessFile(text, true, true).importedFiles) {
      if (!imported.fileName.startsWith('.')) continue;
      const resolved = path.resolve(path.dirname(source), imported.fileName).replace(/\.js$/, '.ts');
      if (existsSync(resolved)) queue.push(resolved);
    }
  }
  return {
    entry: path.join(outDir, path.relative(REPO_ROOT, fixture)).replace(/\.ts$/, '.js'),
    remove: () => rmSync(outDir, { recursive: true, force: true }),
  };
}

export interface ChildResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  readonly args?: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  /** Kills the child (SIGKILL) and rejects if it has not exited by then. */
  readonly timeoutMs: number;
  /** Called with each stdout chunk and the child, e.g. to send a signal once it prints READY. */
  readonly onStdout?: (text: string, child: ReturnType<typeof spawn>) => void;
}

export function runNode(entry: string, options: RunOptions): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [entry, ...(options.args ?? [])], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `child ${entry} did not exit within ${options.timeoutMs} ms; stdout: ${stdout}; stderr: ${stderr}`,
        ),
      );
    }, options.timeoutMs);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      options.onStdout?.(stdout, child);
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}
