import { Command } from 'commander';
import { processIo, type CliIo } from '../io.js';

/**
 * Placeholder for `strata pack`: build a .strata model file from a quantized training checkpoint.
 * Not registered in main.ts yet; whoever implements it adds `program.addCommand(packCommand(io))` there.
 */
export function packCommand(_io: CliIo = processIo): Command {
  return new Command('pack')
    .description('build a .strata model file from a quantized training checkpoint (not implemented yet)')
    .action(() => {
      throw new Error('strata pack is not implemented yet');
    });
}
