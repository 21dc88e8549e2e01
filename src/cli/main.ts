/**
 * The `strata` command line. `buildProgram` assembles the commands; `runCli` runs one command line
 * in-process and returns its exit status (tests use it with buffered output); `main` is what
 * bin/strata.js and `node --import tsx src/cli/main.ts` run.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { Command, CommanderError } from 'commander';
import { benchCommand } from './commands/bench.js';
import { chartCommand } from './commands/chart.js';
import { evalCommand } from './commands/eval.js';
import { importCommand } from './commands/import.js';
import { infoCommand } from './commands/info.js';
import { trainCommand } from './commands/train.js';
import { packCommand } from './commands/pack.js';
import { extractCommand } from './commands/extract.js';
import { exportCommand } from './commands/export.js';
import { predictCommand } from './commands/predict.js';
import { serveCommand } from './commands/serve.js';
import { CommandExit, processIo, type CliIo } from './io.js';

function packageVersion(): string {
  try {
    // src/cli/main.ts and dist/cli/main.js both sit two folders below package.json.
    const text = readFileSync(new URL('../../package.json', import.meta.url), 'utf8');
    return (JSON.parse(text) as { version?: string }).version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

export function buildProgram(io: CliIo = processIo): Command {
  const program = new Command('strata')
    .description('Train one quantized network that serves every bit-width (vertical layering, once QAT)')
    .version(packageVersion(), '-V, --version')
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err })
    .showHelpAfterError('(add --help for usage)');
  for (const command of [
    importCommand(io),
    trainCommand(io),
    evalCommand(io),
    chartCommand(io),
    infoCommand(io),
    benchCommand(io),
    packCommand(io),
    extractCommand(io),
    exportCommand(io),
    predictCommand(io),
    serveCommand(io),
  ]) {
    program.addCommand(command);
    // addCommand, unlike .command(), leaves the output and exit settings at their defaults.
    command.copyInheritedSettings(program);
  }
  return program;
}

/** Runs one command line (without the node and script paths) and returns its exit status. */
export async function runCli(args: readonly string[], io: CliIo = processIo): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync([...args], { from: 'user' });
    return 0;
  } catch (e) {
    // Commander has already printed its own errors, help and version.
    if (e instanceof CommanderError) return e.exitCode;
    if (e instanceof CommandExit) {
      if (e.message !== '') io.err(`${e.message}\n`);
      return e.exitCode;
    }
    io.err(`error: ${e instanceof Error ? e.message : String(e)}\n`);
    if (process.env.STRATA_DEBUG && e instanceof Error && e.stack) io.err(`${e.stack}\n`);
    return 1;
  }
}

export async function main(args: readonly string[] = process.argv.slice(2)): Promise<void> {
  process.exitCode = await runCli(args);
}

function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return pathToFileURL(realpathSync(script)).href === import.meta.url;
  } catch {
    return false;
  }
}

if (isEntryPoint()) await main();
