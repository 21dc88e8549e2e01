/** The results file a run leaves in its folder (`results.json`), read back by `strata chart`. */
import { readFileSync, statSync, writeFileSync, mkdirSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * How a row's model was obtained: once QAT, dedicated QAT at that precision, full precision, or
 * derived from a higher-precision model by the cascade without training ("adapted"), optionally
 * with re-estimated batch norms.
 */
export const METHODS = ['once', 'qat', 'fp', 'adapted', 'adapted-bn'] as const;
export type Method = (typeof METHODS)[number];

export interface ResultRow {
  method: Method;
  /** null for full precision. */
  bits: number | null;
  top1: number;
  top5: number;
  epochs: number;
  wall_s: number;
}

export interface RunResults {
  /** The split the accuracies were measured on. */
  split: string;
  /** The command line that produced the file. */
  command: string;
  rows: ResultRow[];
}

/** 'fp' or 'w8a8': weights and activations share the precision. */
export function precisionLabel(bits: number | null): string {
  return bits === null ? 'fp' : `w${bits}a${bits}`;
}

export function writeResults(path: string, results: RunResults): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(results, null, 2)}\n`);
  renameSync(tmp, path);
}

function isRow(value: unknown): value is ResultRow {
  if (typeof value !== 'object' || value === null) return false;
  const r = value as Record<string, unknown>;
  return (
    (METHODS as readonly unknown[]).includes(r.method) &&
    (r.bits === null || (typeof r.bits === 'number' && Number.isInteger(r.bits))) &&
    typeof r.top1 === 'number' &&
    typeof r.top5 === 'number'
  );
}

/** Reads a results file, or `<folder>/results.json` when given a run folder. */
export function readResults(pathOrFolder: string): RunResults & { path: string } {
  let path = pathOrFolder;
  let isFolder: boolean;
  try {
    isFolder = statSync(pathOrFolder).isDirectory();
  } catch {
    throw new Error(`results ${pathOrFolder}: file not found`);
  }
  if (isFolder) path = join(pathOrFolder, 'results.json');
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(
      code === 'ENOENT'
        ? `results ${path}: file not found (is ${pathOrFolder} a finished run folder?)`
        : `results ${path}: ${code ?? (e as Error).message}`,
    );
  }
  const r = parsed as Partial<RunResults>;
  if (typeof parsed !== 'object' || parsed === null || !Array.isArray(r.rows)) {
    throw new Error(`results ${path}: expected an object with a rows array`);
  }
  const bad = r.rows.findIndex((row) => !isRow(row));
  if (bad >= 0) {
    throw new Error(
      `results ${path}: rows[${bad}] is not {method: ${METHODS.join('|')}, bits, top1, top5, ...}`,
    );
  }
  return {
    path,
    split: typeof r.split === 'string' ? r.split : '',
    command: typeof r.command === 'string' ? r.command : '',
    rows: r.rows,
  };
}
