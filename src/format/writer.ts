import { assertBits, assertCodesInRange, assertRule } from '../quant/cascade.js';
import { decomposeBitPlanes } from '../quant/bit-planes.js';
import { crc32 } from './crc32.js';
import {
  FORMAT_MAJOR,
  FORMAT_MINOR,
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
  type SectionLayout,
} from './layout.js';
import type { LayeredTensor, PlainTensor, StrataModelContent, TensorEntry } from './types.js';

/** The header fields that do not depend on where sections land. */
export interface HeaderBase {
  architecture: Record<string, unknown>;
  quantization: Record<string, unknown>;
  layered: readonly TensorEntry[];
  fixed: readonly TensorEntry[];
  paramTables: readonly (readonly TensorEntry[])[];
  metadata: Record<string, unknown> | null;
}

export interface SectionPayload {
  bits: number;
  params: number;
  bytes: Uint8Array;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkEntry(
  name: unknown,
  shape: unknown,
  length: number,
  where: string,
  minRank: number,
): TensorEntry {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_NAME_LENGTH) {
    throw new TypeError(
      `Expected non-empty string of at most ${MAX_NAME_LENGTH} characters for ${where}.name`,
    );
  }
  if (!Array.isArray(shape) || shape.length < minRank || shape.length > MAX_RANK) {
    throw new RangeError(`Expected ${minRank} to ${MAX_RANK} dimensions for the shape of '${name}'`);
  }
  let size = 1;
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 1) {
      throw new TypeError(
        `Expected positive integer dimensions for '${name}' but received [${shape.join(', ')}]`,
      );
    }
    size *= d;
  }
  if (size > MAX_TENSOR_ELEMENTS)
    throw new RangeError(`Tensor '${name}' has more than ${MAX_TENSOR_ELEMENTS} elements`);
  if (size !== length) {
    throw new RangeError(
      `Tensor '${name}' has ${length} elements but shape [${shape.join(', ')}] needs ${size}`,
    );
  }
  return { name, shape: [...shape], size };
}

function checkUnique(entries: readonly TensorEntry[], what: string): void {
  const seen = new Set<string>();
  for (const e of entries) {
    if (seen.has(e.name)) throw new Error(`Duplicate tensor name '${e.name}' in ${what}`);
    seen.add(e.name);
  }
}

function checkPlain(t: PlainTensor, where: string): TensorEntry {
  if (!(t?.data instanceof Float32Array)) throw new TypeError(`Expected Float32Array for ${where}.data`);
  return checkEntry(t.name, t.shape, t.data.length, where, 0);
}

function checkLayered(
  t: LayeredTensor,
  topBits: number,
  rule: 'floor' | 'round',
  where: string,
): TensorEntry {
  if (!(t?.topCodes instanceof Int32Array)) throw new TypeError(`Expected Int32Array for ${where}.topCodes`);
  if (!(t.scales instanceof Float32Array)) throw new TypeError(`Expected Float32Array for ${where}.scales`);
  const entry = checkEntry(t.name, t.shape, t.topCodes.length, where, 1);
  if (t.scales.length !== entry.shape[0]) {
    throw new RangeError(
      `Expected ${entry.shape[0]} scales for '${t.name}' (one per output channel) but received ${t.scales.length}`,
    );
  }
  t.scales.forEach((s, c) => {
    if (!(s > 0) || !Number.isFinite(s))
      throw new RangeError(`Expected positive finite scale ${c} of '${t.name}' but received ${s}`);
  });
  assertCodesInRange(t.topCodes, topBits, rule, `topCodes of '${t.name}'`);
  return entry;
}

function jsonDepth(root: unknown): number {
  let max = 0;
  const stack: [unknown, number][] = [[root, 1]];
  while (stack.length > 0) {
    const [v, d] = stack.pop() as [unknown, number];
    if (typeof v !== 'object' || v === null) continue;
    max = Math.max(max, d);
    for (const child of Object.values(v)) stack.push([child, d + 1]);
  }
  return max;
}

/** A tensor table entry is the pair [name, shape] (docs/FORMAT.md). */
function entryJson(e: TensorEntry): [string, number[]] {
  return [e.name, [...e.shape]];
}

/**
 * Lays out preamble, JSON header and sections. Offsets in the header are absolute, so the header length depends on the
 * digits of those offsets; the loop finds the data start at which the header fits and pads the JSON with spaces to it.
 */
export function assembleStrata(base: HeaderBase, sections: readonly SectionPayload[]): Uint8Array {
  const encoder = new TextEncoder();
  const build = (dataStart: number): string => {
    let cursor = dataStart;
    const sectionJson = sections.map((s) => {
      const entry = {
        bits: s.bits,
        offset: cursor,
        length: s.bytes.length,
        crc32: crc32(s.bytes),
        params: s.params,
      };
      cursor += s.bytes.length;
      return entry;
    });
    const header: Record<string, unknown> = {
      architecture: base.architecture,
      quantization: base.quantization,
      layered: base.layered.map(entryJson),
      fixed: base.fixed.map(entryJson),
      paramTables: base.paramTables.map((t) => t.map(entryJson)),
      sections: sectionJson,
      precisions: sectionJson.map((s) => ({ bits: s.bits, completeAt: s.offset + s.length })),
    };
    if (base.metadata !== null) header.metadata = base.metadata;
    return JSON.stringify(header);
  };
  let dataStart = 0;
  let json = '';
  for (;;) {
    json = build(dataStart);
    const needed = alignUp(PREAMBLE_BYTES + encoder.encode(json).length, SECTION_ALIGN);
    if (needed <= dataStart) {
      json += ' '.repeat(dataStart - needed);
      break;
    }
    dataStart = needed;
  }
  const jsonBytes = encoder.encode(json);
  if (jsonBytes.length > MAX_HEADER_BYTES) {
    throw new RangeError(
      `Expected a .strata header of at most ${MAX_HEADER_BYTES} bytes but it needs ${jsonBytes.length}`,
    );
  }
  const total = sections.reduce((n, s) => n + s.bytes.length, dataStart);
  const out = new Uint8Array(total);
  out.set(MAGIC, 0);
  const view = new DataView(out.buffer);
  view.setUint16(8, FORMAT_MAJOR, true);
  view.setUint16(10, FORMAT_MINOR, true);
  view.setUint32(12, jsonBytes.length, true);
  view.setUint32(16, crc32(jsonBytes), true);
  out.set(jsonBytes, PREAMBLE_BYTES);
  let cursor = dataStart;
  for (const s of sections) {
    out.set(s.bytes, cursor);
    cursor += s.bytes.length;
  }
  return out;
}

function writeFloats(target: DataView, offset: number, data: Float32Array): void {
  for (let i = 0; i < data.length; i++) target.setFloat32(offset + 4 * i, data[i], true);
}

function fillSection(
  layout: SectionLayout,
  write: (kind: string, index: number, bytes: Uint8Array, view: DataView, offset: number) => void,
): Uint8Array {
  const bytes = new Uint8Array(layout.length);
  const view = new DataView(bytes.buffer);
  for (const item of layout.items) write(item.kind, item.index, bytes, view, item.offset);
  return bytes;
}

/** Encodes a model as a .strata file (see docs/FORMAT.md). */
export function writeStrata(content: StrataModelContent): Uint8Array {
  if (!isPlainObject(content)) throw new TypeError('Expected an object for the .strata content');
  if (!isPlainObject(content.architecture)) throw new TypeError('Expected a plain object for architecture');
  if (!isPlainObject(content.quantization)) throw new TypeError('Expected a plain object for quantization');
  const { topBits, minBits, rule } = content.quantization;
  assertBits(topBits, 'quantization.topBits');
  assertBits(minBits, 'quantization.minBits');
  if (minBits > topBits)
    throw new RangeError(`Expected quantization.minBits in [1, ${topBits}] but received ${minBits}`);
  assertRule(rule, 'quantization.rule');
  if (content.metadata !== undefined && !isPlainObject(content.metadata)) {
    throw new TypeError('Expected a plain object for metadata');
  }
  if (!Array.isArray(content.layered) || !Array.isArray(content.fixed)) {
    throw new TypeError('Expected arrays for layered and fixed tensors');
  }
  if (!(content.perPrecision instanceof Map))
    throw new TypeError('Expected a Map from bits to tensors for perPrecision');
  if (content.layered.length > MAX_TENSORS || content.fixed.length > MAX_TENSORS) {
    throw new RangeError(`Expected at most ${MAX_TENSORS} layered and fixed tensors`);
  }

  const layered = content.layered.map((t, i) => checkLayered(t, topBits, rule, `layered[${i}]`));
  const fixed = content.fixed.map((t, i) => checkPlain(t, `fixed[${i}]`));
  checkUnique([...layered, ...fixed], 'layered and fixed tensors');
  for (const bits of content.perPrecision.keys()) {
    if (!Number.isInteger(bits) || bits < minBits || bits > topBits) {
      throw new RangeError(`Expected perPrecision keys in [${minBits}, ${topBits}] but received ${bits}`);
    }
  }

  // Precisions that share one parameter list (names and shapes) share one table in the header.
  const paramTables: TensorEntry[][] = [];
  const tableIndex = new Map<string, number>();
  const sectionParams: { table: number; tensors: PlainTensor[] }[] = [];
  for (let bits = minBits; bits <= topBits; bits++) {
    const tensors = content.perPrecision.get(bits) ?? [];
    if (!Array.isArray(tensors)) throw new TypeError(`Expected an array of tensors for perPrecision ${bits}`);
    const entries = tensors.map((t, i) => checkPlain(t, `perPrecision ${bits} [${i}]`));
    checkUnique(entries, `the parameters of precision ${bits}`);
    const key = JSON.stringify(entries.map(entryJson));
    let table = tableIndex.get(key);
    if (table === undefined) {
      table = paramTables.length;
      paramTables.push(entries);
      tableIndex.set(key, table);
    }
    sectionParams.push({ table, tensors });
  }

  const planes = content.layered.map((t) => decomposeBitPlanes(t.topCodes, topBits, minBits, rule));
  const sections: SectionPayload[] = sectionParams.map(({ table, tensors }, level) => {
    const layout = sectionLayout(level === 0, minBits, layered, fixed, paramTables[table]);
    const bytes = fillSection(layout, (kind, index, out, view, offset) => {
      if (kind === 'scales') writeFloats(view, offset, content.layered[index].scales);
      else if (kind === 'basic') out.set(planes[index].basic, offset);
      else if (kind === 'enhance') out.set(planes[index].enhance[level - 1], offset);
      else if (kind === 'fixed') writeFloats(view, offset, content.fixed[index].data);
      else writeFloats(view, offset, tensors[index].data);
    });
    return { bits: minBits + level, params: table, bytes };
  });

  const quantization = { ...content.quantization, topBits, minBits, rule };
  const metadata = content.metadata ?? null;
  for (const [what, value] of [
    ['architecture', content.architecture],
    ['quantization', quantization],
    ['metadata', metadata],
  ] as const) {
    if (jsonDepth(value) > MAX_JSON_DEPTH - 2) {
      throw new RangeError(`Expected ${what} to nest at most ${MAX_JSON_DEPTH - 2} levels deep`);
    }
  }
  return assembleStrata(
    { architecture: content.architecture, quantization, layered, fixed, paramTables, metadata },
    sections,
  );
}
