import type { CascadeRule } from '../quant/cascade.js';

export type { CascadeRule };

/** A weight tensor held as vertical layers: its top-precision codes and one scale per output channel (dim 0). */
export interface LayeredTensor {
  name: string;
  shape: number[];
  topCodes: Int32Array;
  /** Per output channel, at the top precision. */
  scales: Float32Array;
}

/** A tensor stored as little-endian float32, identical at every precision (or owned by one precision). */
export interface PlainTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

export interface StrataQuantization {
  topBits: number;
  minBits: number;
  rule: CascadeRule;
  [key: string]: unknown;
}

export interface StrataModelContent {
  /** Opaque to the format; round-tripped as JSON. */
  architecture: Record<string, unknown>;
  quantization: StrataQuantization;
  layered: LayeredTensor[];
  /** Tensors not layered (first conv, classifier, ...), stored in the basic section. */
  fixed: PlainTensor[];
  /** bits -> parameters owned by that precision (switchable batch norm, activation scales, ...). */
  perPrecision: Map<number, PlainTensor[]>;
  metadata?: Record<string, unknown>;
}

export interface TensorEntry {
  readonly name: string;
  readonly shape: readonly number[];
  /** Product of the shape. */
  readonly size: number;
}

export interface SectionEntry {
  /** The precision this section completes: minBits for the basic section, then one more each. */
  readonly bits: number;
  /** Absolute byte offset in the file. */
  readonly offset: number;
  readonly length: number;
  readonly crc32: number;
  /** Index into `paramTables`: the per-precision parameters this section holds. */
  readonly params: number;
}

export interface PrecisionEntry {
  readonly bits: number;
  /** Byte length of the shortest prefix that holds this precision completely. */
  readonly completeAt: number;
}

export interface StrataHeader {
  readonly formatVersion: { readonly major: number; readonly minor: number };
  /** Byte length of the JSON header. */
  readonly headerLength: number;
  /** Offset of the first section. */
  readonly dataStart: number;
  /** Byte length of the whole file (end of the last section). */
  readonly fileLength: number;
  readonly architecture: Record<string, unknown>;
  readonly quantization: StrataQuantization;
  readonly layered: readonly TensorEntry[];
  readonly fixed: readonly TensorEntry[];
  readonly paramTables: readonly (readonly TensorEntry[])[];
  readonly sections: readonly SectionEntry[];
  readonly precisions: readonly PrecisionEntry[];
  readonly metadata: Record<string, unknown> | null;
}

export interface StrataLayeredResult {
  name: string;
  shape: number[];
  /** Codes at the precision read. */
  codes: Int32Array;
  /** Per-channel scales at the precision read: s_b = s_B 2^(B-b). */
  scales: Float32Array;
  /** Reconstruction: w ~ (codes + offset) * scales. */
  offset: number;
}

export interface StrataReadResult {
  header: StrataHeader;
  bits: number;
  layered: StrataLayeredResult[];
  fixed: PlainTensor[];
  /** The parameters of the precision read. */
  perPrecision: PlainTensor[];
}
