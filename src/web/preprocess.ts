/**
 * From a decoded image to the network's input, the same way in the browser and in `strata predict`
 * (so both give the same logits for the same file): geometry by the model's input size, channel
 * count by its first layer, normalisation by the statistics the training run used, which `strata
 * pack` records in the model file's metadata. Browser-safe: no node: imports.
 */
import type { RawImage } from '../data/dataset.js';
import { resizeBilinear } from '../data/resize.js';
import { applyGeometric, centerCrop, resize, writeFloat } from '../data/transforms.js';
import {
  checkLimit,
  describeValue,
  expectBoundedInteger,
  InvalidInputError,
  limits,
} from '../engine/limits.js';
import { Random } from '../engine/random.js';

export interface InputSpec {
  height: number;
  width: number;
  channels: number;
  mean: number[];
  std: number[];
  /** Where mean/std came from: the model file, or a neutral fallback (x / 255) when it records none. */
  normalizeSource: 'metadata' | 'default';
}

/** Side of the input square a network was designed for, when the file does not say. */
const DEFAULT_SIZES: Record<string, number> = {
  'small-cnn': 28,
  resnet20: 32,
  resnet32: 32,
  resnet56: 32,
  resnet18: 224,
  mobilenetv2: 224,
};

/** Inputs up to this side are resized directly (stretched); larger ones resized, then centre-cropped. */
const STRETCH_MAX_SIDE = 64;

function numberList(value: unknown, length: number): number[] | null {
  if (!Array.isArray(value) || value.length !== length) return null;
  return value.every((v) => typeof v === 'number' && Number.isFinite(v)) ? (value as number[]) : null;
}

/**
 * `metadata.inputSize` (n or [h, w]) when present; each side is checked against maxInputSide before
 * anything of that size is allocated (an unbounded size once made every prediction allocate what
 * the file asked for).
 */
function sizePair(value: unknown, source: string): [number, number] | null {
  if (value === undefined || value === null) return null;
  const side = (v: unknown, field: string): number =>
    expectBoundedInteger(v, source, field, 1, 'maxInputSide');
  if (Array.isArray(value)) {
    if (value.length !== 2) {
      throw new InvalidInputError(
        source,
        'metadata.inputSize',
        'is not a size n or [h, w]',
        describeValue(value),
      );
    }
    return [side(value[0], 'metadata.inputSize[0]'), side(value[1], 'metadata.inputSize[1]')];
  }
  const n = side(value, 'metadata.inputSize');
  return [n, n];
}

/** The input a model file asks for, from its architecture and metadata (`inputSize`, `normalize`). */
export function inputSpecFor(
  architecture: Record<string, unknown>,
  metadata: Record<string, unknown> | null,
  source = 'model file',
): InputSpec {
  const channels =
    architecture.inChannels === undefined
      ? 3
      : expectBoundedInteger(
          architecture.inChannels,
          source,
          'architecture.inChannels',
          1,
          'maxInputChannels',
        );
  const name = String(architecture.name);
  const fallback = DEFAULT_SIZES[name] ?? 32;
  const [height, width] = sizePair(metadata?.inputSize, source) ?? [fallback, fallback];
  checkLimit(source, 'metadata.inputSize (pixels)', 'maxPixels', height * width);
  const norm = metadata?.normalize as { mean?: unknown; std?: unknown } | undefined;
  const mean = numberList(norm?.mean, channels);
  const std = numberList(norm?.std, channels);
  if (mean !== null && std !== null && std.every((s) => s > 0)) {
    return { height, width, channels, mean: [...mean], std: [...std], normalizeSource: 'metadata' };
  }
  return {
    height,
    width,
    channels,
    mean: new Array<number>(channels).fill(0),
    std: new Array<number>(channels).fill(1),
    normalizeSource: 'default',
  };
}

/** RGB (or RGBA with `sourceChannels` 4) pixels to `channels` 1 (BT.601 luma, rounded) or 3. */
export function toChannels(
  pixels: ArrayLike<number>,
  height: number,
  width: number,
  sourceChannels: 3 | 4,
  channels: number,
): RawImage {
  if (channels !== 1 && channels !== 3) {
    throw new RangeError(`Expected 1 or 3 input channels but the model has ${channels}`);
  }
  const n = height * width;
  if (pixels.length !== n * sourceChannels) {
    throw new RangeError(
      `Expected ${n * sourceChannels} values for a ${height}x${width} image of ${sourceChannels} channels but received ${pixels.length}`,
    );
  }
  const out = new Uint8Array(n * channels);
  for (let i = 0; i < n; i++) {
    const r = pixels[i * sourceChannels];
    const g = pixels[i * sourceChannels + 1];
    const b = pixels[i * sourceChannels + 2];
    if (channels === 1) out[i] = Math.round(0.299 * r + 0.587 * g + 0.114 * b);
    else {
      out[i * 3] = r;
      out[i * 3 + 1] = g;
      out[i * 3 + 2] = b;
    }
  }
  return { data: out, height, width };
}

/**
 * One image, already in the model's channel count, to normalised float32 [H, W, C]. `name` (the
 * file) goes into the error when an extreme aspect ratio would make the intermediate resize larger
 * than maxPixels (a 65535x13 image for a 100x100 input once meant 65 million pixels and 40 s).
 */
export function imageToInput(image: RawImage, spec: InputSpec, name = 'image'): Float32Array {
  let sized: RawImage = image;
  if (image.height !== spec.height || image.width !== spec.width) {
    if (Math.max(spec.height, spec.width) <= STRETCH_MAX_SIDE) {
      sized = resizeBilinear(image, spec.channels, spec.height, spec.width);
    } else {
      // The usual ImageNet evaluation: shorter side to size * 256 / 224, then the central crop.
      const side = Math.round((Math.min(spec.height, spec.width) * 256) / 224);
      const short = Math.min(image.height, image.width);
      const long = Math.max(image.height, image.width);
      // The intermediate may be as large as the image itself (a photo scaled down) or as a 16:1
      // strip of the input (a small panorama scaled up), not more.
      const intermediate = side * Math.floor((side * long) / short);
      const bound = Math.min(limits().maxPixels, Math.max(image.height * image.width, 16 * side * side));
      if (intermediate > bound) {
        throw new InvalidInputError(
          name,
          'image aspect ratio',
          `would be resized to ${intermediate} pixels (shorter side ${side} for a ${spec.height}x${spec.width} input), over the bound of ${bound} pixels`,
          `${image.width}x${image.height}`,
        );
      }
      const steps = [resize(side), centerCrop([spec.height, spec.width])];
      sized = applyGeometric(image, spec.channels, steps, new Random(0));
    }
  }
  const out = new Float32Array(spec.height * spec.width * spec.channels);
  writeFloat(sized, spec.channels, { kind: 'normalize', mean: spec.mean, std: spec.std }, out, 0);
  return out;
}

export interface ClassScore {
  index: number;
  label: string;
  probability: number;
}

/** Softmax of one row of logits (shifted by the maximum for stability). */
export function softmax(logits: ArrayLike<number>): Float32Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]);
  const out = new Float32Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    out[i] = Math.exp(logits[i] - max);
    sum += out[i];
  }
  for (let i = 0; i < out.length; i++) out[i] /= sum;
  return out;
}

/** The k most probable classes, most probable first (ties: lower index first). */
export function topClasses(
  probabilities: ArrayLike<number>,
  k: number,
  labels?: readonly string[],
): ClassScore[] {
  const order = Array.from({ length: probabilities.length }, (_, i) => i);
  order.sort((a, b) => probabilities[b] - probabilities[a] || a - b);
  return order.slice(0, Math.min(k, order.length)).map((index) => ({
    index,
    label: labels?.[index] ?? String(index),
    probability: probabilities[index],
  }));
}

/** Class names a model file records (`metadata.classes`), or null. */
export function classLabels(metadata: Record<string, unknown> | null): string[] | null {
  const classes = metadata?.classes;
  return Array.isArray(classes) && classes.every((c) => typeof c === 'string') ? (classes as string[]) : null;
}
