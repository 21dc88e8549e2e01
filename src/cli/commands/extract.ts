import { readFile } from 'node:fs/promises';
import { Command } from 'commander';
import { extractStrata, inspectStrata } from '../../format/index.js';
import { writeStrataFile } from '../../format/strata-file.js';
import { formatBytes } from '../../report/index.js';
import { println, processIo, type CliIo } from '../io.js';
import { parsePositiveInteger } from '../parse.js';

/** The precisions a .strata file holds, checked against the one asked for. */
export function checkBitsInFile(path: string, bytes: Uint8Array, bits: number): void {
  const info = inspectStrata(bytes);
  const lowest = info.quantization.minBits;
  const highest = info.precisions[info.precisions.length - 1].bits;
  if (bits < lowest || bits > highest) {
    throw new RangeError(
      `Expected bits in [${lowest}, ${highest}] (the precisions of ${path}) but received ${bits}`,
    );
  }
}

export function extractCommand(io: CliIo = processIo): Command {
  return new Command('extract')
    .description(
      'Write a smaller .strata file holding only the precisions up to --bits (a byte prefix, re-headed)',
    )
    .argument('<model>', 'a .strata model file')
    .requiredOption('--bits <b>', 'the highest precision to keep', parsePositiveInteger)
    .requiredOption('-o, --output <file>', 'the model file to write')
    .action(async (path: string, flags: { bits: number; output: string }) => {
      const bytes = new Uint8Array(await readFile(path));
      let extracted: Uint8Array;
      try {
        checkBitsInFile(path, bytes, flags.bits);
        extracted = extractStrata(bytes, flags.bits);
      } catch (e) {
        if (e instanceof Error && !e.message.includes(path)) e.message = `${path}: ${e.message}`;
        throw e;
      }
      await writeStrataFile(flags.output, extracted);
      const lowest = inspectStrata(extracted).quantization.minBits;
      println(
        io.out,
        `${flags.output}: precisions ${lowest}..${flags.bits} bits, ${formatBytes(extracted.length)} ` +
          `(${extracted.length.toLocaleString('en-US')} bytes, ${((100 * extracted.length) / bytes.length).toFixed(1)} % of ${path})`,
      );
    });
}
