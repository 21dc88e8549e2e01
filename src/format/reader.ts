import { assertBits, reconstructionOffset } from '../quant/cascade.js';
import { composeBitPlanes } from '../quant/bit-planes.js';
import { crc32 } from './crc32.js';
import { StrataFormatError } from './errors.js';
import { hex, highestCompleteBits, parseHeader } from './header.js';
import { sectionLayout, sectionName, type SectionItem } from './layout.js';
import { assembleStrata } from './writer.js';
import type { PlainTensor, StrataHeader, StrataLayeredResult, StrataReadResult } from './types.js';

export interface ReadStrataOptions {
  /** Precision to load; default: the highest one the bytes hold completely. */
  bits?: number;
}

export interface StrataInspection {
  formatVersion: { major: number; minor: number };
  headerLength: number;
  dataStart: number;
  fileLength: number;
  bytesPresent: number;
  architecture: Record<string, unknown>;
  quantization: StrataHeader['quantization'];
  layeredTensors: number;
  layeredWeights: number;
  fixedTensors: number;
  /** Every precision held, with the byte length of the prefix that completes it. */
  precisions: { bits: number; completeAt: number; present: boolean }[];
  /** Highest precision complete in the bytes given, or null. */
  availableBits: number | null;
  metadata: Record<string, unknown> | null;
}

/** Chooses the precision to read and checks the bytes reach it; also refuses bytes past the declared end. */
function resolveBits(header: StrataHeader, length: number, requested: number | undefined): number {
  if (length > header.fileLength) {
    throw new StrataFormatError(
      'TRAILING_DATA',
      `.strata file has ${length - header.fileLength} bytes after its last section (declared length ${header.fileLength})`,
    );
  }
  const minBits = header.quantization.minBits;
  const maxBits = header.precisions[header.precisions.length - 1].bits;
  const available = highestCompleteBits(header, length);
  if (requested === undefined) {
    if (available === null) {
      throw new StrataFormatError(
        'TRUNCATED',
        `Truncated .strata file: ${length} bytes, the ${sectionName(minBits, minBits)} section needs ${header.precisions[0].completeAt}`,
      );
    }
    return available;
  }
  assertBits(requested, 'bits');
  if (requested < minBits || requested > maxBits) {
    throw new RangeError(
      `Expected bits in [${minBits}, ${maxBits}] (the precisions this file holds) but received ${requested}`,
    );
  }
  const needed = header.precisions[requested - minBits].completeAt;
  if (length < needed) {
    throw new StrataFormatError(
      'TRUNCATED',
      `Truncated .strata file: precision ${requested} needs the first ${needed} bytes but only ${length} are present`,
    );
  }
  return requested;
}

/**
 * Checks one section before anything in it is used: its checksum, then the values no checksum can vouch for (a
 * header that passes its own checksum may still map the scales onto other bytes).
 */
export function verifySection(bytes: Uint8Array, header: StrataHeader, index: number): void {
  const s = header.sections[index];
  const minBits = header.quantization.minBits;
  const actual = crc32(bytes.subarray(s.offset, s.offset + s.length));
  if (actual !== s.crc32) {
    throw new StrataFormatError(
      'BAD_CHECKSUM',
      `.strata section ${sectionName(s.bits, minBits)} checksum mismatch: stored ${hex(s.crc32)}, computed ${hex(actual)}`,
    );
  }
  if (index !== 0) return;
  const layout = sectionLayout(true, minBits, header.layered, header.fixed, header.paramTables[s.params]);
  for (const item of layout.items) {
    if (item.kind !== 'scales') continue;
    const t = header.layered[item.index];
    const view = new DataView(bytes.buffer, bytes.byteOffset + s.offset + item.offset, item.length);
    for (let c = 0; c < t.shape[0]; c++) {
      const scale = view.getFloat32(4 * c, true);
      if (!(scale > 0) || !Number.isFinite(scale)) {
        throw new StrataFormatError(
          'BAD_DATA',
          `Tensor '${t.name}': scale ${c} is ${scale}, expected a positive finite number`,
        );
      }
    }
  }
}

function verifySections(bytes: Uint8Array, header: StrataHeader, bits: number): void {
  header.sections.forEach((s, i) => {
    if (s.bits <= bits) verifySection(bytes, header, i);
  });
}

function readFloats(bytes: Uint8Array, at: number, count: number): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset + at, 4 * count);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true);
  return out;
}

/**
 * Loads one precision from a whole file or from any prefix of it. A prefix that ends at or after the byte where a
 * precision completes gives exactly what the whole file gives at that precision: nothing beyond that byte is read.
 */
export function readStrata(bytes: Uint8Array, options: ReadStrataOptions = {}): StrataReadResult {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('Expected Uint8Array for .strata bytes');
  const header = parseHeader(bytes);
  const bits = resolveBits(header, bytes.length, options.bits);
  verifySections(bytes, header, bits);
  return decodePrecision(bytes, header, bits);
}

/**
 * The tensors of precision `bits` from `bytes`, whose header is `header` and whose sections up to
 * that precision have been verified (by readStrata, or by StrataStreamReader as they arrived).
 */
export function decodePrecision(bytes: Uint8Array, header: StrataHeader, bits: number): StrataReadResult {
  const { topBits, minBits, rule } = header.quantization;
  const level = bits - minBits;
  // Items of one kind appear in table order, so the i-th item of a kind belongs to tensor i.
  const locate = (section: number): Record<SectionItem['kind'], SectionItem[]> => {
    const s = header.sections[section];
    const layout = sectionLayout(
      section === 0,
      minBits,
      header.layered,
      header.fixed,
      header.paramTables[s.params],
    );
    const byKind: Record<SectionItem['kind'], SectionItem[]> = {
      scales: [],
      basic: [],
      enhance: [],
      fixed: [],
      param: [],
    };
    for (const item of layout.items) byKind[item.kind].push({ ...item, offset: item.offset + s.offset });
    return byKind;
  };
  const basicItems = locate(0);
  const enhanceItems = Array.from({ length: level }, (_, k) => locate(k + 1));
  const scaleFactor = 2 ** (topBits - bits);
  const offset = reconstructionOffset(topBits, bits, rule);

  const layered: StrataLayeredResult[] = header.layered.map((t, i) => {
    const scalesItem = basicItems.scales[i];
    const topScales = readFloats(bytes, scalesItem.offset, t.shape[0]);
    const scales = topScales.map((scale) => scale * scaleFactor);
    const basicItem = basicItems.basic[i];
    const enhance = enhanceItems.map((items) => {
      const it = items.enhance[i];
      return bytes.subarray(it.offset, it.offset + it.length);
    });
    const codes = composeBitPlanes(
      {
        minBits,
        rule,
        count: t.size,
        basic: bytes.subarray(basicItem.offset, basicItem.offset + basicItem.length),
        enhance,
      },
      bits,
    );
    return { name: t.name, shape: [...t.shape], codes, scales, offset };
  });
  const fixed: PlainTensor[] = header.fixed.map((t, i) => ({
    name: t.name,
    shape: [...t.shape],
    data: readFloats(bytes, basicItems.fixed[i].offset, t.size),
  }));
  const ownItems = level === 0 ? basicItems : enhanceItems[level - 1];
  const perPrecision: PlainTensor[] = header.paramTables[header.sections[level].params].map((t, i) => ({
    name: t.name,
    shape: [...t.shape],
    data: readFloats(bytes, ownItems.param[i].offset, t.size),
  }));
  return { header, bits, layered, fixed, perPrecision };
}

/** Header summary of a file or prefix; cheap (section checksums are not verified here). */
export function inspectStrata(bytes: Uint8Array): StrataInspection {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('Expected Uint8Array for .strata bytes');
  const h = parseHeader(bytes);
  return {
    formatVersion: { ...h.formatVersion },
    headerLength: h.headerLength,
    dataStart: h.dataStart,
    fileLength: h.fileLength,
    bytesPresent: bytes.length,
    architecture: h.architecture,
    quantization: h.quantization,
    layeredTensors: h.layered.length,
    layeredWeights: h.layered.reduce((n, t) => n + t.size, 0),
    fixedTensors: h.fixed.length,
    precisions: h.precisions.map((p) => ({ ...p, present: p.completeAt <= bytes.length })),
    availableBits: highestCompleteBits(h, bytes.length),
    metadata: h.metadata,
  };
}

/**
 * Highest precision complete within the first `prefixLength` bytes (default: all of `source`), or null. `source` is a
 * parsed header or bytes that reach at least the end of the header.
 */
export function availableBits(source: Uint8Array | StrataHeader, prefixLength?: number): number | null {
  const header = source instanceof Uint8Array ? parseHeader(source) : source;
  const length = prefixLength ?? (source instanceof Uint8Array ? source.length : header.fileLength);
  if (!Number.isSafeInteger(length) || length < 0) {
    throw new TypeError(`Expected non-negative integer for prefixLength but received ${String(length)}`);
  }
  return highestCompleteBits(header, length);
}

/**
 * A stand-alone file holding precisions minBits..bits: the same sections, verified, under a header that lists only
 * them. Reading it at any of those precisions gives exactly what the original gives.
 */
export function extractStrata(bytes: Uint8Array, bits: number): Uint8Array {
  if (!(bytes instanceof Uint8Array)) throw new TypeError('Expected Uint8Array for .strata bytes');
  const header = parseHeader(bytes);
  const target = resolveBits(header, bytes.length, bits);
  verifySections(bytes, header, target);
  const sections = header.sections
    .filter((s) => s.bits <= target)
    .map((s) => ({ bits: s.bits, params: s.params, bytes: bytes.subarray(s.offset, s.offset + s.length) }));
  const used = new Set(sections.map((s) => s.params));
  // Drop parameter tables only the removed precisions used, renumbering the rest in order.
  const renumber = new Map<number, number>();
  header.paramTables.forEach((_, i) => {
    if (used.has(i)) renumber.set(i, renumber.size);
  });
  return assembleStrata(
    {
      architecture: header.architecture,
      quantization: header.quantization,
      layered: header.layered,
      fixed: header.fixed,
      paramTables: header.paramTables.filter((_, i) => used.has(i)),
      metadata: header.metadata,
    },
    sections.map((s) => ({ ...s, params: renumber.get(s.params) as number })),
  );
}
