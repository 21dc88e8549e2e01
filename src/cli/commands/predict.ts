import { Command } from 'commander';
import { processIo, type CliIo } from '../io.js';

/**
 * Placeholder for `strata predict`: classify images with a .strata model at a chosen precision.
 * Not registered in main.ts yet; whoever implements it adds `program.addCommand(predictCommand(io))` there.
 */
export function predictCommand(_io: CliIo = processIo): Command {
  return new Command('predict')
    .description('classify images with a .strata model at a chosen precision (not implemented yet)')
    .action(() => {
      throw new Error('strata predict is not implemented yet');
    });
}
