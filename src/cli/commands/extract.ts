import { Command } from 'commander';
import { processIo, type CliIo } from '../io.js';

/**
 * Placeholder for `strata extract`: cut a .strata file down to the precisions up to a given bit-width.
 * Not registered in main.ts yet; whoever implements it adds `program.addCommand(extractCommand(io))` there.
 */
export function extractCommand(_io: CliIo = processIo): Command {
  return new Command('extract')
    .description('cut a .strata file down to the precisions up to a given bit-width (not implemented yet)')
    .action(() => {
      throw new Error('strata extract is not implemented yet');
    });
}
