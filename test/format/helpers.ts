import { quantizeToCodes, type CascadeRule } from '../../src/quant/cascade.js';
import { Random } from '../../src/engine/random.js';
import { crc32 } from '../../src/format/crc32.js';
import type { LayeredTensor, PlainTensor, StrataModelContent } from '../../src/format/types.js';

export function randomFloats(random: Random, n: number, std = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = random.normal() * std;
  return out;
}

/** A layered tensor quantized from Gaussian weights with per-channel max-abs scales, as training would give. */
export function layeredTensor(
  random: Random,
  name: string,
  shape: number[],
  topBits: number,
  rule: CascadeRule,
): LayeredTensor {
  const size = shape.reduce((a, b) => a * b, 1);
  const channels = shape[0];
  const w = randomFloats(random, size, 0.1);
  const scales = new Float32Array(channels);
  const per = size / channels;
  for (let c = 0; c < channels; c++) {
    let m = 1e-8;
    for (let i = c * per; i < (c + 1) * per; i++) m = Math.max(m, Math.abs(w[i]));
    scales[c] = m / 2 ** (topBits - 1);
  }
  return { name, shape, topCodes: quantizeToCodes(w, scales, channels, topBits, rule), scales };
}

export function plainTensor(random: Random, name: string, shape: number[]): PlainTensor {
  return {
    name,
    shape,
    data: randomFloats(
      random,
      shape.reduce((a, b) => a * b, 1),
    ),
  };
}

export interface ContentOptions {
  topBits?: number;
  minBits?: number;
  rule?: CascadeRule;
  seed?: number;
  /** Give every precision a different parameter list (default: all share one). */
  distinctParams?: boolean;
}

/** A small model: a few conv-like layered tensors (odd sizes, to exercise bit padding), fixed tensors and per-precision BN. */
export function smallContent(options: ContentOptions = {}): StrataModelContent {
  const { topBits = 8, minBits = 2, rule = 'floor', seed = 1, distinctParams = false } = options;
  const random = new Random(seed);
  const layered = [
    layeredTensor(random, 'conv1.weight', [4, 3, 3, 3], topBits, rule),
    layeredTensor(random, 'block.conv.weight', [5, 4, 1, 1], topBits, rule),
    layeredTensor(random, 'head.weight', [3, 7], topBits, rule),
  ];
  const fixed = [plainTensor(random, 'stem.weight', [2, 3]), plainTensor(random, 'head.bias', [3])];
  const perPrecision = new Map<number, PlainTensor[]>();
  for (let b = minBits; b <= topBits; b++) {
    const params = [
      plainTensor(random, 'bn1.running_mean', [4]),
      plainTensor(random, 'bn1.running_var', [4]),
      plainTensor(random, 'act1.scale', []),
    ];
    if (distinctParams && b % 2 === 0) params.push(plainTensor(random, `extra.${b}`, [b]));
    perPrecision.set(b, params);
  }
  return {
    architecture: { kind: 'tiny-net', blocks: [1, 2], nested: { width: 4 } },
    quantization: { topBits, minBits, rule, layeredLayers: 'all-but-stem' },
    layered,
    fixed,
    perPrecision,
    metadata: { note: 'unit test', seed },
  };
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export interface RawHeader {
  [key: string]: unknown;
  sections: { bits: number; offset: number; length: number; crc32: number; params: number }[];
  precisions: { bits: number; completeAt: number }[];
}

export function headerJson(bytes: Uint8Array): RawHeader {
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  const length = view.getUint32(12, true);
  return JSON.parse(dec.decode(bytes.subarray(24, 24 + length))) as RawHeader;
}

/**
 * Re-encodes a file after `mutate` edits its JSON header, with a correct header checksum, so tests reach the checks
 * behind the checksum. Unless `keepOffsets`, section offsets move with the header length as a writer would move them.
 */
export function withHeader(
  bytes: Uint8Array,
  mutate: (header: RawHeader) => void,
  options: { keepOffsets?: boolean } = {},
): Uint8Array {
  const original = headerJson(bytes);
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  const oldStart = Math.ceil((24 + view.getUint32(12, true)) / 8) * 8;
  const header = headerJson(bytes);
  mutate(header);
  let start = oldStart;
  let text = '';
  for (;;) {
    if (!options.keepOffsets) {
      header.sections?.forEach?.((s, i) => {
        if (typeof s?.offset === 'number' && original.sections[i])
          s.offset = original.sections[i].offset - oldStart + start;
      });
      header.precisions?.forEach?.((p, i) => {
        if (typeof p?.completeAt === 'number' && original.precisions[i])
          p.completeAt = original.precisions[i].completeAt - oldStart + start;
      });
    }
    text = JSON.stringify(header);
    const needed = Math.ceil((24 + enc.encode(text).length) / 8) * 8;
    if (options.keepOffsets || needed === start) {
      start = needed;
      break;
    }
    start = needed;
  }
  const json = enc.encode(text);
  const out = new Uint8Array(start + bytes.length - oldStart);
  out.set(bytes.subarray(0, 24));
  const outView = new DataView(out.buffer);
  outView.setUint32(12, json.length, true);
  outView.setUint32(16, crc32(json), true);
  out.set(json, 24);
  out.set(bytes.subarray(oldStart), start);
  return out;
}

/** ResNet-20 for CIFAR-10: 19 convolutions (267,696 weights, 16..64 channels) layered, the classifier fixed. */
export function resnet20Content(topBits = 8, minBits = 2, rule: CascadeRule = 'floor'): StrataModelContent {
  const random = new Random(20);
  const convs: [string, number[]][] = [['conv1.weight', [16, 3, 3, 3]]];
  const bns: [string, number][] = [['bn1', 16]];
  let inC = 16;
  [16, 32, 64].forEach((outC, stage) => {
    for (let block = 0; block < 3; block++) {
      const prefix = `layer${stage + 1}.${block}`;
      convs.push(
        [`${prefix}.conv1.weight`, [outC, inC, 3, 3]],
        [`${prefix}.conv2.weight`, [outC, outC, 3, 3]],
      );
      bns.push([`${prefix}.bn1`, outC], [`${prefix}.bn2`, outC]);
      inC = outC;
    }
  });
  const layered = convs.map(([name, shape]) => layeredTensor(random, name, shape, topBits, rule));
  const fixed = [plainTensor(random, 'fc.weight', [10, 64]), plainTensor(random, 'fc.bias', [10])];
  const perPrecision = new Map<number, PlainTensor[]>();
  for (let b = minBits; b <= topBits; b++) {
    const params: PlainTensor[] = [];
    for (const [bn, c] of bns) {
      for (const p of ['weight', 'bias', 'running_mean', 'running_var'])
        params.push(plainTensor(random, `${bn}.${p}`, [c]));
      params.push(plainTensor(random, `${bn}.act_scale`, []));
    }
    perPrecision.set(b, params);
  }
  return {
    architecture: { name: 'resnet20', numClasses: 10, widths: [16, 32, 64], blocks: [3, 3, 3] },
    quantization: { topBits, minBits, rule },
    layered,
    fixed,
    perPrecision,
  };
}
