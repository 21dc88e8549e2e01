/**
 * Long-running fuzz of the .strata reader: `npx tsx test/format/fuzz.ts --iterations 100000 [--seed 7]`.
 * Exits non-zero if any mutated file makes a reader throw something other than StrataFormatError.
 */
import { fuzzStrata } from './fuzz-core.js';

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  if (at < 0) return fallback;
  const value = Number(process.argv[at + 1]);
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`Expected non-negative integer for --${name} but received ${process.argv[at + 1]}`);
  }
  return value;
}

const iterations = option('iterations', 20000);
const seed = option('seed', Date.now() % 2 ** 31);
const started = performance.now();
const report = fuzzStrata(iterations, seed);
const seconds = (performance.now() - started) / 1000;
console.log(
  `seed ${seed}: ${iterations} mutated files in ${seconds.toFixed(1)} s (slowest ${report.slowestMs.toFixed(1)} ms)`,
);
console.log(`accepted ${report.accepted}, refused ${JSON.stringify(report.refused)}`);
for (const f of report.failures.slice(0, 10)) console.log(`FAIL #${f.iteration} [${f.mutation}]: ${f.error}`);
if (report.failures.length > 0) {
  console.log(`${report.failures.length} failures`);
  process.exitCode = 1;
}
