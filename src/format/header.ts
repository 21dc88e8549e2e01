import { LIMIT_ENV, limits } from '../engine/limits.js';
import { MAX_CODE_BITS } from '../quant/cascade.js';
import { crc32 } from './crc32.js';
import { StrataFormatError } from './errors.js';
import {
  FORMAT_MAJOR,
  MAGIC,
  MAX_HEADER_BYTES,
  MAX_JSON_DEPTH,
  MAX_NAME_LENGTH,
  MAX_RANK,
  MAX_TENSORS,
  MAX_TENSOR_ELEMENTS,
  PREAMBLE_BYTES,
  SECTION_ALIGN,
  alignUp,
  sectionLayout,
  sectionName,
} from './layout.js';
import type { PrecisionEntry, SectionEntry, StrataHeader, StrataQuantization, TensorEntry } from './types.js';

export interface Preamble {
  readonly major: number;
  readonly minor: number;
  readonly headerLength: number;
  readonly headerCrc: number;
  /** Offset of the first section: the header end rounded up to 8. */
  readonly dataStart: number;
}

/** Entries allowed per tensor table: the format's cap, or the lower limit a deployment set. */
function maxTensors(): number {
  return Math.min(MAX_TENSORS, limits().maxTensors);
}

function fail(code: ConstructorParameters<typeof StrataFormatError>[0], message: string): never {
  throw new StrataFormatError(code, message);
}

/** Validates the fixed 24-byte preamble; needs only its bytes, so a stream can refuse a bad file early. */
export function parsePreamble(bytes: Uint8Array): Preamble {
  if (bytes.length < PREAMBLE_BYTES) {
    fail(
      'TRUNCATED',
      `Truncated .strata file: ${bytes.length} bytes, the preamble alone needs ${PREAMBLE_BYTES}`,
    );
  }
  for (let i = 0; i < MAGIC.length; i++) {
    if (bytes[i] !== MAGIC[i])
      fail('BAD_MAGIC', 'Not a .strata file: the first 8 bytes are not "STRATA\\0\\x01"');
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, PREAMBLE_BYTES);
  const major = view.getUint16(8, true);
  const minor = view.getUint16(10, true);
  if (major !== FORMAT_MAJOR) {
    fail(
      'UNSUPPORTED_VERSION',
      `Unsupported .strata format version ${major}.${minor}; this reader reads ${FORMAT_MAJOR}.x`,
    );
  }
  const headerLength = view.getUint32(12, true);
  const headerCrc = view.getUint32(16, true);
  if (view.getUint32(20, true) !== 0)
    fail('BAD_HEADER', 'Invalid .strata preamble: reserved bytes 20..23 are not zero');
  // The format caps the header at MAX_HEADER_BYTES; a deployment may set a lower limit (a server
  // reading files it did not write), never a higher one (docs/LIMITS.md).
  const maxHeader = Math.min(MAX_HEADER_BYTES, limits().maxHeaderBytes);
  if (headerLength > maxHeader) {
    fail(
      'HEADER_TOO_LARGE',
      `.strata header length ${headerLength} exceeds the limit of ${maxHeader} bytes` +
        (maxHeader < MAX_HEADER_BYTES ? ` (maxHeaderBytes, ${LIMIT_ENV.maxHeaderBytes})` : ''),
    );
  }
  if (headerLength === 0) fail('BAD_HEADER', 'Invalid .strata preamble: header length is 0');
  return {
    major,
    minor,
    headerLength,
    headerCrc,
    dataStart: alignUp(PREAMBLE_BYTES + headerLength, SECTION_ALIGN),
  };
}

type Json = unknown;

function isPlainObject(v: Json): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Iterative, so a hostile nesting depth cannot overflow the stack here or later in JSON.stringify. */
function checkDepth(root: Json): void {
  // Parallel stacks of objects only: a header of millions of scalars costs nothing here.
  const values: object[] = [];
  const depths: number[] = [];
  if (typeof root === 'object' && root !== null) {
    values.push(root);
    depths.push(1);
  }
  while (values.length > 0) {
    const value = values.pop() as object;
    const depth = depths.pop() as number;
    if (depth > MAX_JSON_DEPTH)
      fail('BAD_HEADER', `.strata header JSON nests deeper than ${MAX_JSON_DEPTH} levels`);
    for (const child of Object.values(value)) {
      if (typeof child === 'object' && child !== null) {
        values.push(child);
        depths.push(depth + 1);
      }
    }
  }
}

function field(obj: Record<string, unknown>, key: string, path: string): Json {
  if (!Object.prototype.hasOwnProperty.call(obj, key))
    fail('BAD_HEADER', `.strata header is missing ${path}.${key}`);
  return obj[key];
}

function expectObject(v: Json, path: string): Record<string, unknown> {
  if (!isPlainObject(v)) fail('BAD_HEADER', `.strata header field ${path} must be an object`);
  return v;
}

function expectArray(v: Json, path: string, maxLength: number): Json[] {
  if (!Array.isArray(v)) fail('BAD_HEADER', `.strata header field ${path} must be an array`);
  if (v.length > maxLength)
    fail('BAD_HEADER', `.strata header field ${path} has ${v.length} entries, limit ${maxLength}`);
  return v;
}

function expectInt(
  v: Json,
  path: string,
  min: number,
  max: number,
  code: 'BAD_HEADER' | 'INVALID_OFFSET' = 'BAD_HEADER',
): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    fail(
      code,
      `.strata header field ${path} must be an integer in [${min}, ${max}] but is ${JSON.stringify(v) ?? String(v)}`,
    );
  }
  return v;
}

function parseQuantization(v: Json): StrataQuantization {
  const q = expectObject(v, 'quantization');
  const topBits = expectInt(field(q, 'topBits', 'quantization'), 'quantization.topBits', 1, MAX_CODE_BITS);
  const minBits = expectInt(field(q, 'minBits', 'quantization'), 'quantization.minBits', 1, topBits);
  const rule = field(q, 'rule', 'quantization');
  if (rule !== 'floor' && rule !== 'round')
    fail('BAD_HEADER', `.strata header field quantization.rule must be 'floor' or 'round'`);
  return { ...q, topBits, minBits, rule };
}

function parseTensorTable(v: Json, path: string, minRank: number, names: Set<string>): TensorEntry[] {
  return expectArray(v, path, maxTensors()).map((entry, i) => {
    const where = `${path}[${i}]`;
    // An entry is the pair [name, shape]: arrays keep the header small enough that the basic layer stays close to
    // b_min/32 of the float weights even for models with hundreds of small per-precision tensors.
    if (!Array.isArray(entry) || entry.length !== 2)
      fail('BAD_HEADER', `.strata header field ${where} must be [name, shape]`);
    const [name, shape] = entry as [Json, Json];
    if (typeof name !== 'string' || name.length === 0 || name.length > MAX_NAME_LENGTH) {
      fail(
        'BAD_HEADER',
        `.strata header field ${where}[0] (name) must be a string of 1 to ${MAX_NAME_LENGTH} characters`,
      );
    }
    if (names.has(name)) fail('BAD_HEADER', `.strata header names tensor '${name}' twice (${path})`);
    names.add(name);
    if (!Array.isArray(shape) || shape.length < minRank || shape.length > MAX_RANK) {
      fail('BAD_SHAPE', `Tensor '${name}': shape must be an array of ${minRank} to ${MAX_RANK} dimensions`);
    }
    let size = 1;
    for (const d of shape) {
      if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 1) {
        fail(
          'BAD_SHAPE',
          `Tensor '${name}': dimension ${JSON.stringify(d) ?? String(d)} is not a positive integer`,
        );
      }
      size *= d;
      if (size > MAX_TENSOR_ELEMENTS)
        fail('BAD_SHAPE', `Tensor '${name}': more than ${MAX_TENSOR_ELEMENTS} elements`);
    }
    return { name, shape: shape as number[], size };
  });
}

/**
 * Parses and validates the header of a whole file or of any prefix that reaches the first section. Checks every count,
 * shape, offset and length against the others; section contents are checked later, when (and if) they are read.
 */
export function parseHeader(bytes: Uint8Array): StrataHeader {
  const pre = parsePreamble(bytes);
  if (bytes.length < pre.dataStart) {
    fail('TRUNCATED', `Truncated .strata file: ${bytes.length} bytes, the header needs ${pre.dataStart}`);
  }
  const jsonBytes = bytes.subarray(PREAMBLE_BYTES, PREAMBLE_BYTES + pre.headerLength);
  const actualCrc = crc32(jsonBytes);
  if (actualCrc !== pre.headerCrc) {
    fail(
      'BAD_CHECKSUM',
      `.strata header checksum mismatch: stored ${hex(pre.headerCrc)}, computed ${hex(actualCrc)}`,
    );
  }
  for (let i = PREAMBLE_BYTES + pre.headerLength; i < pre.dataStart; i++) {
    if (bytes[i] !== 0) fail('BAD_HEADER', `.strata header padding byte ${i} is not zero`);
  }
  let root: Json;
  try {
    root = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(jsonBytes));
  } catch (e) {
    fail('BAD_HEADER', `.strata header is not valid UTF-8 JSON: ${(e as Error).message}`);
  }
  checkDepth(root);
  const h = expectObject(root, 'header');
  const architecture = expectObject(field(h, 'architecture', 'header'), 'architecture');
  const quantization = parseQuantization(field(h, 'quantization', 'header'));
  const { topBits, minBits } = quantization;
  const names = new Set<string>();
  const layered = parseTensorTable(field(h, 'layered', 'header'), 'layered', 1, names);
  const fixed = parseTensorTable(field(h, 'fixed', 'header'), 'fixed', 0, names);
  const paramTables = expectArray(field(h, 'paramTables', 'header'), 'paramTables', maxTensors()).map(
    (t, i) => parseTensorTable(t, `paramTables[${i}]`, 0, new Set()),
  );
  const metadataValue = Object.prototype.hasOwnProperty.call(h, 'metadata') ? h.metadata : null;
  const metadata = metadataValue === null ? null : expectObject(metadataValue, 'metadata');

  const levels = topBits - minBits + 1;
  const rawSections = expectArray(field(h, 'sections', 'header'), 'sections', levels);
  if (rawSections.length === 0) fail('BAD_HEADER', '.strata header lists no sections');
  const sections: SectionEntry[] = [];
  let cursor = pre.dataStart;
  rawSections.forEach((raw, i) => {
    const where = `sections[${i}]`;
    const s = expectObject(raw, where);
    const bits = minBits + i;
    const name = sectionName(bits, minBits);
    if (field(s, 'bits', where) !== bits)
      fail('BAD_HEADER', `.strata section ${i} must hold precision ${bits}`);
    const offset = expectInt(
      field(s, 'offset', where),
      `${where}.offset`,
      0,
      Number.MAX_SAFE_INTEGER,
      'INVALID_OFFSET',
    );
    const length = expectInt(
      field(s, 'length', where),
      `${where}.length`,
      0,
      Number.MAX_SAFE_INTEGER,
      'INVALID_OFFSET',
    );
    const crc = expectInt(field(s, 'crc32', where), `${where}.crc32`, 0, 0xffffffff);
    const params = expectInt(field(s, 'params', where), `${where}.params`, 0, paramTables.length - 1);
    if (offset !== cursor) {
      fail(
        'INVALID_OFFSET',
        `.strata section ${name} starts at ${offset}; sections are contiguous and it must start at ${cursor}`,
      );
    }
    if (!Number.isSafeInteger(offset + length))
      fail('INVALID_OFFSET', `.strata section ${name} ends past 2^53`);
    const expected = sectionLayout(i === 0, minBits, layered, fixed, paramTables[params]).length;
    if (length !== expected) {
      fail(
        'SIZE_MISMATCH',
        `.strata section ${name} is ${length} bytes but its tensor shapes need ${expected}`,
      );
    }
    sections.push({ bits, offset, length, crc32: crc, params });
    cursor = offset + length;
  });

  const rawPrecisions = expectArray(field(h, 'precisions', 'header'), 'precisions', levels);
  if (rawPrecisions.length !== sections.length) {
    fail(
      'BAD_HEADER',
      `.strata header lists ${rawPrecisions.length} precisions but ${sections.length} sections`,
    );
  }
  const precisions: PrecisionEntry[] = rawPrecisions.map((raw, i) => {
    const p = expectObject(raw, `precisions[${i}]`);
    const s = sections[i];
    if (field(p, 'bits', `precisions[${i}]`) !== s.bits)
      fail('BAD_HEADER', `.strata precisions[${i}] must be ${s.bits}-bit`);
    const completeAt = expectInt(
      field(p, 'completeAt', `precisions[${i}]`),
      `precisions[${i}].completeAt`,
      0,
      Number.MAX_SAFE_INTEGER,
      'INVALID_OFFSET',
    );
    if (completeAt !== s.offset + s.length) {
      fail(
        'INVALID_OFFSET',
        `.strata precision ${s.bits} claims completeAt ${completeAt} but its section ends at ${s.offset + s.length}`,
      );
    }
    return { bits: s.bits, completeAt };
  });

  return {
    formatVersion: { major: pre.major, minor: pre.minor },
    headerLength: pre.headerLength,
    dataStart: pre.dataStart,
    fileLength: cursor,
    architecture,
    quantization,
    layered,
    fixed,
    paramTables,
    sections,
    precisions,
    metadata,
  };
}

export function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

/** Highest precision whose bytes all lie in the first `prefixLength` bytes, or null when none does. */
export function highestCompleteBits(header: StrataHeader, prefixLength: number): number | null {
  let best: number | null = null;
  for (const p of header.precisions) if (p.completeAt <= prefixLength) best = p.bits;
  return best;
}
