/**
 * The Argo CD health checks (config/argocd/resource_customizations/<group>/<Kind>/health.lua): the Go harness in
 * test/argocd runs every health_test.yaml case on gopher-lua, the interpreter Argo CD embeds, without open
 * libraries as Argo CD runs a script from argocd-cm (see docs/argocd.md). Here: that it passes, and that the
 * testdata it runs on are objects our CRDs accept, so the checks are tested on the status the operator writes.
 */
import { execFile } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { GROUP, campaignCrd, runtimePoolCrd, telegramAccountCrd } from '../../../crds/index.js';

const GO_TEST_TIMEOUT_MS = 10 * 60_000;
const harness = resolve('test/argocd');
const customizations = resolve('config/argocd/resource_customizations', GROUP);

function goTest(): Promise<{ code: number | string; output: string }> {
  return new Promise((done) => {
    execFile(
      'go',
      ['test', '-count=1', '-v', './...'],
      {
        cwd: harness,
        timeout: GO_TEST_TIMEOUT_MS,
        maxBuffer: 64 * 1024 * 1024,
        env: { ...process.env, GOFLAGS: `-mod=mod ${process.env.GOFLAGS ?? ''}`.trim() },
      },
      (error, stdout, stderr) => {
        const output = `${stdout}${stderr}`;
        if (!error) done({ code: 0, output });
        else done({ code: error.code ?? error.signal ?? 'error', output: `${output}\n${error.message}` });
      },
    );
  });
}

type JsonSchema = Record<string, unknown>;

/**
 * The API server prunes fields its schema does not declare; for the testdata an undeclared field is a mistake
 * (a status field the operator does not write), so every object with declared properties is closed here.
 */
function closed(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(closed);
  if (typeof schema !== 'object' || schema === null) return schema;
  const out: JsonSchema = {};
  for (const [key, value] of Object.entries(schema)) out[key] = closed(value);
  if (out.properties !== undefined && out.additionalProperties === undefined)
    out.additionalProperties = false;
  return out;
}

function objectSchema(crd: Record<string, unknown>): JsonSchema {
  const spec = crd.spec as { versions: Array<{ schema: { openAPIV3Schema: JsonSchema } }> };
  const root = spec.versions[0]?.schema.openAPIV3Schema;
  if (!root) throw new Error('CRD without a schema');
  const properties = root.properties as Record<string, unknown>;
  return {
    ...root,
    properties: { ...properties, spec: closed(properties.spec), status: closed(properties.status) },
  };
}

describe('Argo CD health checks', () => {
  it(
    'pass on gopher-lua without open libraries (go test in test/argocd)',
    async () => {
      const { code, output } = await goTest();
      if (code !== 0) throw new Error(`go test ./... in test/argocd exited ${code}:\n${output}`);
      for (const kind of ['TelegramAccount', 'Campaign', 'TelegramRuntimePool'])
        expect(output).toContain(`--- PASS: TestHealthChecks/${GROUP}/${kind}/testdata/`);
      expect(output).toContain('--- PASS: TestSandboxHasNoOpenLibraries');
    },
    GO_TEST_TIMEOUT_MS + 60_000,
  );

  it.each([
    ['TelegramAccount', telegramAccountCrd()],
    ['Campaign', campaignCrd()],
    ['TelegramRuntimePool', runtimePoolCrd()],
  ])('run on %s testdata our CRD schema accepts', (kind, crd) => {
    const validate = new Ajv({ strict: false, validateFormats: false, allErrors: true }).compile(
      objectSchema(crd),
    );
    const dir = join(customizations, kind, 'testdata');
    const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
    expect(files.length).toBeGreaterThan(0);
    const problems: string[] = [];
    for (const file of files) {
      const obj: unknown = parse(readFileSync(join(dir, file), 'utf8'));
      if (!validate(obj))
        problems.push(
          `${kind}/testdata/${file}: ${(validate.errors ?? [])
            .map((e) => `${e.instancePath} ${e.message ?? ''} ${JSON.stringify(e.params)}`)
            .join('; ')}`,
        );
    }
    expect(problems).toEqual([]);
  });
});
