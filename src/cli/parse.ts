/**
 * Option-value parsers for commander: each turns the text of one flag into a checked value, or
 * throws InvalidArgumentError, which commander reports as "option '--x <n>' argument 'y' is invalid".
 */
import { InvalidArgumentError } from 'commander';

export function parseInteger(min: number): (text: string) => number {
  return (text) => {
    const value = Number(text);
    if (text.trim() === '' || !Number.isInteger(value) || value < min) {
      const kind =
        min === 1 ? 'a positive integer' : min === 0 ? 'a non-negative integer' : `an integer >= ${min}`;
      throw new InvalidArgumentError(`Expected ${kind} but received '${text}'.`);
    }
    return value;
  };
}

export const parsePositiveInteger = parseInteger(1);
export const parseNonNegativeInteger = parseInteger(0);

export function parseNumber(text: string): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value)) {
    throw new InvalidArgumentError(`Expected a finite number but received '${text}'.`);
  }
  return value;
}

/** A comma-separated list of bit-widths, e.g. "8,6,4" (1..32 each, duplicates refused). */
export function parseBitsList(text: string): number[] {
  const parts = text.split(',').map((p) => p.trim());
  const bits = parts.map(Number);
  if (parts.some((p) => p === '') || bits.some((b) => !Number.isInteger(b) || b < 1 || b > 32)) {
    throw new InvalidArgumentError(
      `Expected comma-separated bit-widths in [1, 32] (e.g. 8,4,2) but received '${text}'.`,
    );
  }
  if (new Set(bits).size !== bits.length) {
    throw new InvalidArgumentError(`Expected distinct bit-widths but received '${text}'.`);
  }
  return bits;
}

/** What `strata eval --bits` asks for: every precision, full precision, or a list. */
export type BitsRequest = { kind: 'all' } | { kind: 'fp' } | { kind: 'list'; bits: number[] };

export function parseBitsRequest(text: string): BitsRequest {
  if (text === 'all') return { kind: 'all' };
  if (text === 'fp') return { kind: 'fp' };
  return { kind: 'list', bits: parseBitsList(text) };
}

/** Collects repeated or space-separated `key=value` pairs (commander calls this once per value). */
export function collectOverride(text: string, previous: string[] | undefined): string[] {
  if (!/^[A-Za-z][A-Za-z0-9]*=/.test(text)) {
    throw new InvalidArgumentError(`Expected key=value (e.g. lr=0.05) but received '${text}'.`);
  }
  return [...(previous ?? []), text];
}
