/**
 * Child-process entry: runs one scripted conversation against the simulator or real libtdjson and prints
 * the transcript as the last stdout line. Usage (through the TypeScript loader):
 *   node --import ./test/bench/sim/register-ts.mjs test/native/simulator/support/run-conversation.ts spec.json
 * spec: { "backend": "sim" | "real", "worldDir"?: string, "steps": Step[] }
 */
import { readFileSync } from 'node:fs';
import { SimulatorBackend } from '../../../../runtime/simulator/index.js';
import type { TdBackend } from '../../../../runtime/tdlib/backend.js';
import { runConversation, THREAD_GROUP_KEEPERS, type Step } from './conversation.js';
import { createReferenceBackend } from './reference-backend.js';

interface Spec {
  readonly backend: 'sim' | 'real';
  readonly worldDir?: string;
  readonly steps: readonly Step[];
}

const spec = JSON.parse(readFileSync(process.argv[2] ?? '/dev/stdin', 'utf8')) as Spec;
let backend: TdBackend;
let note: string;
let keepers = 0;
if (spec.backend === 'sim') {
  if (spec.worldDir === undefined) throw new Error('spec.worldDir is required for the simulator');
  backend = new SimulatorBackend({ worldDir: spec.worldDir });
  note = 'simulator';
} else {
  ({ backend, note } = await createReferenceBackend());
  keepers = THREAD_GROUP_KEEPERS;
}
const transcript = await runConversation(backend, spec.steps, note, { keepers });
process.stdout.write(`\nTRANSCRIPT ${JSON.stringify(transcript)}\n`);
