// Registers ts-loader.mjs for this process: node --import ./test/bench/sim/register-ts.mjs script.ts
import { register } from 'node:module';

register('./ts-loader.mjs', import.meta.url);
