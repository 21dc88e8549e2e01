/**
 * The limits every input crossing a trust boundary is held to (model files, checkpoints, images,
 * HTTP requests, settings), in one place, with the one error they raise. docs/LIMITS.md lists them.
 *
 * Defaults fit every model and dataset Strata trains; a user who needs more raises a limit with its
 * environment variable (`STRATA_MAX_PIXELS=100000000`) or `setLimits` (the browser has no
 * environment). The `.strata` header size and tensor count can only be lowered: the format itself
 * caps them (docs/FORMAT.md, section 6). Browser-safe: reads `process.env` only where it exists.
 */

export interface Limits {
  /** Decoded image width x height, checked from the image header before any pixel is decoded. */
  maxPixels: number;
  /** A model's class count (`architecture.numClasses`), checked before the classifier is allocated. */
  maxClasses: number;
  /** A model's input channels (`architecture.inChannels`). */
  maxInputChannels: number;
  /** Side of the input image a model file asks for (`metadata.inputSize`). */
  maxInputSide: number;
  /** Entries in each tensor table of a `.strata` header; the format's own cap is 65,536. */
  maxTensors: number;
  /** Bytes of a `.strata` JSON header; the format's own cap is 4 MiB. */
  maxHeaderBytes: number;
  /** Bytes of a checkpoint's JSON header. */
  maxCheckpointHeaderBytes: number;
}

/** Caps the format sets (docs/FORMAT.md); a limit may be lowered below them, never raised past. */
export const FORMAT_CAPS = { maxTensors: 65536, maxHeaderBytes: 4 * 1024 * 1024 } as const;

export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  maxPixels: 4096 * 4096,
  maxClasses: 100_000,
  maxInputChannels: 64,
  maxInputSide: 4096,
  maxTensors: FORMAT_CAPS.maxTensors,
  maxHeaderBytes: FORMAT_CAPS.maxHeaderBytes,
  maxCheckpointHeaderBytes: 64 * 1024 * 1024,
});

/** The environment variable that sets each limit. */
export const LIMIT_ENV: Readonly<Record<keyof Limits, string>> = Object.freeze({
  maxPixels: 'STRATA_MAX_PIXELS',
  maxClasses: 'STRATA_MAX_CLASSES',
  maxInputChannels: 'STRATA_MAX_INPUT_CHANNELS',
  maxInputSide: 'STRATA_MAX_INPUT_SIDE',
  maxTensors: 'STRATA_MAX_TENSORS',
  maxHeaderBytes: 'STRATA_MAX_HEADER_BYTES',
  maxCheckpointHeaderBytes: 'STRATA_MAX_CHECKPOINT_HEADER_BYTES',
});

/**
 * Input refused by a limit or a validity check: names where it came from (a file, a request, a
 * setting), the field, the limit (or the allowed values) and the value received, so a refusal can be
 * reported without parsing the message.
 */
export class InvalidInputError extends Error {
  constructor(
    /** File path, URL or setting the value came from. */
    readonly source: string,
    /** The field refused, e.g. `architecture.numClasses` or `image size`. */
    readonly field: string,
    /** The limit or the allowed values, in words. */
    readonly limit: string,
    readonly value: string,
    /** Extra advice appended to the message (how to raise the limit). */
    hint = '',
  ) {
    super(
      `${source}: ${[field, value, limit].filter((part) => part !== '').join(' ')}${hint ? `; ${hint}` : ''}`,
    );
    this.name = 'InvalidInputError';
  }
}

function describeValue(value: unknown): string {
  if (typeof value === 'string') return `'${value.length > 80 ? `${value.slice(0, 80)}…` : value}'`;
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined)
    return String(value);
  try {
    const text = JSON.stringify(value);
    return text.length > 80 ? `${text.slice(0, 80)}…` : text;
  } catch {
    return typeof value;
  }
}

let overrides: Partial<Limits> = {};
let fromEnv: Partial<Limits> | null = null;

function parseLimit(key: keyof Limits, raw: string, source: string): number {
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isSafeInteger(n) || n < 1) {
    throw new InvalidInputError(source, key, 'is not a positive integer', describeValue(raw));
  }
  const cap = (FORMAT_CAPS as Partial<Record<keyof Limits, number>>)[key];
  if (cap !== undefined && n > cap) {
    throw new InvalidInputError(source, key, `is above the format's cap of ${cap}`, String(n));
  }
  return n;
}

function environmentLimits(): Partial<Limits> {
  if (fromEnv !== null) return fromEnv;
  const env = typeof process !== 'undefined' ? process.env : undefined;
  const out: Partial<Limits> = {};
  if (env !== undefined) {
    for (const key of Object.keys(LIMIT_ENV) as (keyof Limits)[]) {
      const raw = env[LIMIT_ENV[key]];
      if (raw !== undefined) out[key] = parseLimit(key, raw, LIMIT_ENV[key]);
    }
  }
  fromEnv = out;
  return out;
}

/** The limits in force: defaults, then the environment, then `setLimits`. */
export function limits(): Readonly<Limits> {
  return { ...DEFAULT_LIMITS, ...environmentLimits(), ...overrides };
}

/**
 * Changes limits for this process (the browser's only way); `null` restores the defaults and
 * re-reads the environment. Returns the previous overrides, so a caller can put them back.
 */
export function setLimits(next: Partial<Limits> | null): Partial<Limits> {
  const previous = overrides;
  if (next === null) {
    overrides = {};
    fromEnv = null;
    return previous;
  }
  const checked: Partial<Limits> = {};
  for (const [key, value] of Object.entries(next) as [keyof Limits, unknown][]) {
    if (!(key in DEFAULT_LIMITS)) {
      throw new InvalidInputError(
        'setLimits',
        String(key),
        `is not a limit (known: ${Object.keys(DEFAULT_LIMITS).join(', ')})`,
        '',
      );
    }
    checked[key] = parseLimit(key, String(value), 'setLimits');
  }
  overrides = { ...overrides, ...checked };
  return previous;
}

/** The hint that says how to raise `key`. */
export function raiseHint(key: keyof Limits): string {
  return `raise it with ${LIMIT_ENV[key]}`;
}

/** Refuses `value` above limit `key` of `limits()`. */
export function checkLimit(source: string, field: string, key: keyof Limits, value: number): void {
  const limit = limits()[key];
  if (value > limit) {
    throw new InvalidInputError(
      source,
      field,
      `exceeds the limit of ${limit} (${key})`,
      String(value),
      raiseHint(key),
    );
  }
}

/** An integer in [min, limit `key`] (or [min, max] when `key` is a number), else InvalidInputError. */
export function expectBoundedInteger(
  value: unknown,
  source: string,
  field: string,
  min: number,
  key: keyof Limits | number,
): number {
  const max = typeof key === 'number' ? key : limits()[key];
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new InvalidInputError(source, field, `is not an integer in [${min}, ${max}]`, describeValue(value));
  }
  if (value > max) {
    if (typeof key === 'number')
      throw new InvalidInputError(source, field, `is not an integer in [${min}, ${max}]`, String(value));
    checkLimit(source, field, key, value);
  }
  return value;
}

/** Names the value in messages (strings quoted and shortened, objects as short JSON). */
export { describeValue };
