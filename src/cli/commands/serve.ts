import { Command } from 'commander';
import { processIo, type CliIo } from '../io.js';

/**
 * Placeholder for `strata serve`: serve a .strata model over HTTP, one precision per request.
 * Not registered in main.ts yet; whoever implements it adds `program.addCommand(serveCommand(io))` there.
 */
export function serveCommand(_io: CliIo = processIo): Command {
  return new Command('serve')
    .description('serve a .strata model over HTTP, one precision per request (not implemented yet)')
    .action(() => {
      throw new Error('strata serve is not implemented yet');
    });
}
