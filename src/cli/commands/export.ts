import { Command } from 'commander';
import { processIo, type CliIo } from '../io.js';

/**
 * Placeholder for `strata export`: export one precision of a model to ONNX.
 * Not registered in main.ts yet; whoever implements it adds `program.addCommand(exportCommand(io))` there.
 */
export function exportCommand(_io: CliIo = processIo): Command {
  return new Command('export')
    .description('export one precision of a model to ONNX (not implemented yet)')
    .action(() => {
      throw new Error('strata export is not implemented yet');
    });
}
