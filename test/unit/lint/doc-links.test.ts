/**
 * Every relative link in the README and docs/ points at a file of this repository: the design and the
 * runbooks a user follows must not lead outside it (or nowhere).
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const root = resolve('.');

function markdownFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? markdownFiles(join(dir, e.name)) : e.name.endsWith('.md') ? [join(dir, e.name)] : [],
  );
}

function brokenLinks(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const match of text.matchAll(/\]\(([^)\s]+)\)/g)) {
    const target = match[1] ?? '';
    if (/^(https?:|mailto:|#)/.test(target)) continue;
    const path = resolve(dirname(file), target.split('#')[0] ?? '');
    if (relative(root, path).startsWith('..') || !existsSync(path))
      out.push(`${relative(root, file)}: ${target}`);
  }
  return out;
}

describe('documentation links', () => {
  it('resolve to files inside the repository', () => {
    const files = [resolve('README.md'), ...markdownFiles(resolve('docs'))];
    expect(files.length).toBeGreaterThan(5);
    expect(files.flatMap(brokenLinks)).toEqual([]);
  });

  it('would catch a link out of the repository', () => {
    expect(brokenLinks(resolve('test/unit/lint/fixtures/outside-link.md'))).toEqual([
      'test/unit/lint/fixtures/outside-link.md: ../../../../../shared/ARCHITECTURE.md',
    ]);
  });
});
