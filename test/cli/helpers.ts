import { mkdtempSync, rmSync } from 'node:fs';
import { after } from 'node:test';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nativeAddon } from '../../src/engine/backend-native.js';
import { runCli } from '../../src/cli/main.js';

// On the shared 2-core machine, two oneDNN threads competing with other jobs run several times slower
// than one; the tests measure behaviour, not speed.
process.env.STRATA_THREADS ??= '1';
nativeAddon()?.setThreads(Number(process.env.STRATA_THREADS));

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs one strata command line in this process with its output captured. */
export async function strata(...args: string[]): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, {
    out: (text) => void (stdout += text),
    err: (text) => void (stderr += text),
  });
  return { code, stdout, stderr };
}

/** A fresh folder under the system's temporary folder, removed after the test (or file) that made it. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `strata-cli-${prefix}-`));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The rows of the first table printed (the lines after its dashed rule, up to a blank line). */
export function tableRows(text: string): string[][] {
  const lines = text.split('\n');
  const rule = lines.findIndex((l) => /^-+(\s+-+)+$/.test(l));
  if (rule < 0) return [];
  const rows: string[][] = [];
  for (const line of lines.slice(rule + 1)) {
    if (line.trim() === '') break;
    rows.push(line.trim().split(/\s{2,}/));
  }
  return rows;
}

/** The tiny MNIST run of the tests: fast enough for a few seconds in total. */
export const TINY = [
  '--model',
  'small-cnn',
  '--dataset',
  'mnist',
  '--train-limit',
  '512',
  '--val-limit',
  '256',
  '--epochs',
  '1',
  '--batch-size',
  '64',
];
