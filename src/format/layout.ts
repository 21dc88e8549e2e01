import type { TensorEntry } from './types.js';

/** Fixed-size preamble: magic (8), major (u16), minor (u16), header length (u32), header CRC-32 (u32), reserved (u32). */
export const MAGIC = Uint8Array.of(0x53, 0x54, 0x52, 0x41, 0x54, 0x41, 0x00, 0x01); // "STRATA\0\x01"
export const PREAMBLE_BYTES = 24;
export const FORMAT_MAJOR = 1;
export const FORMAT_MINOR = 0;

/** Limits the reader enforces before trusting any field (docs/FORMAT.md, "Validation"). */
export const MAX_HEADER_BYTES = 4 * 1024 * 1024;
export const MAX_JSON_DEPTH = 64;
export const MAX_TENSORS = 65536;
export const MAX_RANK = 8;
export const MAX_NAME_LENGTH = 1024;
export const MAX_TENSOR_ELEMENTS = 2 ** 32;

export const ITEM_ALIGN = 4;
export const SECTION_ALIGN = 8;

export function alignUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

export type ItemKind = 'scales' | 'basic' | 'enhance' | 'fixed' | 'param';

export interface SectionItem {
  readonly kind: ItemKind;
  /** Index into the layered, fixed or parameter table the kind names. */
  readonly index: number;
  /** Relative to the section start. */
  readonly offset: number;
  readonly length: number;
}

export interface SectionLayout {
  readonly items: readonly SectionItem[];
  readonly length: number;
}

/**
 * Where everything sits inside a section. The layout is a pure function of the tensor tables, so the header need not
 * spell out item offsets: the basic section holds, per layered tensor, its float32 scales then its packed basic codes,
 * then every fixed tensor, then the parameters of minBits; an enhance section holds one bit-plane per layered tensor,
 * then its parameters. Items start at multiples of 4, sections are padded to multiples of 8 (zero bytes).
 */
export function sectionLayout(
  isBasic: boolean,
  minBits: number,
  layered: readonly TensorEntry[],
  fixed: readonly TensorEntry[],
  params: readonly TensorEntry[],
): SectionLayout {
  const items: SectionItem[] = [];
  let cursor = 0;
  const add = (kind: ItemKind, index: number, length: number): void => {
    cursor = alignUp(cursor, ITEM_ALIGN);
    items.push({ kind, index, offset: cursor, length });
    cursor += length;
  };
  layered.forEach((t, i) => {
    if (isBasic) {
      add('scales', i, 4 * t.shape[0]);
      add('basic', i, Math.ceil((t.size * minBits) / 8));
    } else {
      add('enhance', i, Math.ceil(t.size / 8));
    }
  });
  if (isBasic) fixed.forEach((t, i) => add('fixed', i, 4 * t.size));
  params.forEach((t, i) => add('param', i, 4 * t.size));
  return { items, length: alignUp(cursor, SECTION_ALIGN) };
}

export function sectionName(bits: number, minBits: number): string {
  return bits === minBits ? `basic (${bits}-bit)` : `enhance ${bits}-bit`;
}
