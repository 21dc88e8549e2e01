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
