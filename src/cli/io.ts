import type { Command } from 'commander';

/** Where a command writes: the process streams by default, buffers in tests. */
export interface CliIo {
  /** Results: tables, summaries, paths of written files. */
  out(text: string): void;
  /** Diagnostics: training progress logs, warnings, errors. */
  err(text: string): void;
}

export const processIo: CliIo = {
  out: (text) => void process.stdout.write(text),
  err: (text) => void process.stderr.write(text),
};

/** Writes one line (a newline is added). */
export function println(write: (text: string) => void, line = ''): void {
  write(`${line}\n`);
}

/** Ends a command with an exit status other than 0 without treating it as a crash. */
export class CommandExit extends Error {
  constructor(
    readonly exitCode: number,
    message = '',
  ) {
    super(message);
    this.name = 'CommandExit';
  }
}

/** The command line as typed, quoted where a shell would need it (for results files). */
export function commandLine(args: readonly string[]): string {
  return ['strata', ...args]
    .map((a) => (/^[\w./:=,@%+-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`))
    .join(' ');
}

/** The arguments the program was run with (commander keeps them, untyped, as `rawArgs`). */
export function invokedArgs(command: Command): readonly string[] {
  const root = command.parent ?? command;
  const raw = (root as unknown as { rawArgs?: unknown }).rawArgs;
  return Array.isArray(raw) && raw.every((a) => typeof a === 'string')
    ? raw
    : [command.name(), ...command.args];
}
