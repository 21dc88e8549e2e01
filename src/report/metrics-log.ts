import { appendFileSync, closeSync, fstatSync, mkdirSync, openSync, readSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';

import { checkString, describe } from './check.js';

export type MetricsRecord = Record<string, unknown>;

export interface MalformedLine {
  /** 1-based line number in the file. */
  line: number;
  text: string;
  reason: string;
}

export interface MetricsLogContents<T extends object = MetricsRecord> {
  records: T[];
  /** Lines that are not a JSON object, other than an unfinished last line. */
  malformed: MalformedLine[];
  /** The last line when it has no newline and does not parse: what a killed writer leaves behind. */
  truncated: MalformedLine | undefined;
}

export interface ReadMetricsOptions {
  /** Throw on the first malformed line instead of collecting it (a truncated last line is still tolerated). */
  strict?: boolean;
}

/** True when the file exists, is not empty and its last byte is not a newline. */
function endsMidLine(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
  try {
    const size = fstatSync(fd).size;
    if (size === 0) return false;
    const last = Buffer.alloc(1);
    readSync(fd, last, 0, 1, size - 1);
    return last[0] !== 0x0a;
  } finally {
    closeSync(fd);
  }
}

/**
 * Append-only JSON-lines log: one record per line, written synchronously so records land in call order
 * and survive a crash right after `append` returns. Folders are created on the first append.
 */
export class MetricsLog {
  readonly path: string;
  #ready = false;

  constructor(path: string) {
    this.path = checkString('path', path);
    if (path === '') throw new RangeError(`Expected non-empty string for path but received ''`);
  }

  append(record: MetricsRecord): void {
    if (typeof record !== 'object' || record === null || Array.isArray(record)) {
      throw new TypeError(`Expected plain object for record but received ${describe(record)}`);
    }
    // NaN and Infinity have no JSON spelling and are written as null, so a diverged loss reads back as null.
    const line = JSON.stringify(record);
    let prefix = '';
    if (!this.#ready) {
      mkdirSync(dirname(this.path), { recursive: true });
      // A previous run killed mid-write left a partial line; start on a fresh one so this record stays readable.
      if (endsMidLine(this.path)) prefix = '\n';
      this.#ready = true;
    }
    appendFileSync(this.path, `${prefix}${line}\n`, 'utf8');
  }
}

function parseLine(text: string): { record: MetricsRecord } | { reason: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { reason: (error as Error).message };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return {
      reason: `expected a JSON object but found ${Array.isArray(value) ? 'an array' : describe(value)}`,
    };
  }
  return { record: value as MetricsRecord };
}

/**
 * Parses JSON-lines text. Blank lines are skipped; lines that are not a JSON object are reported with their
 * line numbers; an unfinished last line that does not parse is set apart as `truncated`.
 * Records are not validated against `T`.
 */
export function parseMetricsLog<T extends object = MetricsRecord>(
  text: string,
  options: ReadMetricsOptions & { source?: string } = {},
): MetricsLogContents<T> {
  checkString('text', text);
  const lines = text.split('\n');
  const finished = text.endsWith('\n');
  if (finished) lines.pop();
  const result: MetricsLogContents<T> = { records: [], malformed: [], truncated: undefined };
  lines.forEach((raw, index) => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim() === '') return;
    const parsed = parseLine(line);
    if ('record' in parsed) {
      result.records.push(parsed.record as T);
      return;
    }
    const entry = { line: index + 1, text: line, reason: parsed.reason };
    if (!finished && index === lines.length - 1) {
      result.truncated = entry;
    } else if (options.strict) {
      const where = options.source === undefined ? '' : ` of ${options.source}`;
      throw new Error(`Malformed metrics record at line ${entry.line}${where}: ${entry.reason}`);
    } else {
      result.malformed.push(entry);
    }
  });
  return result;
}

/** Reads a metrics log written by `MetricsLog` (or any JSON-lines file); see `parseMetricsLog`. */
export async function readMetricsLog<T extends object = MetricsRecord>(
  path: string,
  options: ReadMetricsOptions = {},
): Promise<MetricsLogContents<T>> {
  checkString('path', path);
  const text = await readFile(path, 'utf8');
  return parseMetricsLog<T>(text, { ...options, source: path });
}
