import { Random } from '../engine/random.js';
import type { RawImage } from './dataset.js';
import { resizeBilinear } from './resize.js';

/**
 * Transforms are plain data (no closures) so a pipeline can be posted to worker threads and
 * recorded in a run's config. Geometric steps work on uint8 HWC images, like an image library; the
 * final step scales to [0, 1] and, with `normalize`, subtracts the mean and divides by the std.
 */
export type TransformSpec =
  | { kind: 'randomCrop'; height: number; width: number; padding: number }
  | { kind: 'horizontalFlip'; probability: number }
  | {
      kind: 'randomResizedCrop';
      height: number;
      width: number;
      scale: [number, number];
      ratio: [number, number];
      antialias: boolean;
    }
  | { kind: 'resize'; size: number; antialias: boolean }
  | { kind: 'centerCrop'; height: number; width: number }
  | { kind: 'normalize'; mean: number[]; std: number[] };

type Size = number | [number, number];

function checkPositiveInteger(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new TypeError(
      `Expected positive integer for ${name} but received ${String(value)} of type ${typeof value}`,
    );
  }
  return value;
}

function sizePair(size: Size, name: string): [number, number] {
  if (Array.isArray(size)) {
    if (size.length !== 2)
      throw new TypeError(`Expected [height, width] for ${name} but received ${size.length} numbers`);
    return [checkPositiveInteger(size[0], `${name}[0]`), checkPositiveInteger(size[1], `${name}[1]`)];
  }
  const side = checkPositiveInteger(size, name);
  return [side, side];
}

function checkInterval(pair: [number, number], name: string, lowest: number): [number, number] {
  const [lo, hi] = pair;
  if (!Number.isFinite(lo) || !Number.isFinite(hi) || lo <= lowest || lo > hi) {
    throw new RangeError(`Expected ${name} = [lo, hi] with ${lowest} < lo <= hi but received [${lo}, ${hi}]`);
  }
  return [lo, hi];
}

/** Zero-pads by `padding` on every side, then crops a random `size` window (CIFAR: pad 4, crop 32). */
export function randomCrop(size: Size, padding = 0): TransformSpec {
  const [height, width] = sizePair(size, 'size');
  if (!Number.isInteger(padding) || padding < 0) {
    throw new RangeError(`Expected integer in [0, inf) for padding but received ${padding}`);
  }
  return { kind: 'randomCrop', height, width, padding };
}

export function randomHorizontalFlip(probability = 0.5): TransformSpec {
  if (!(probability >= 0 && probability <= 1)) {
    throw new RangeError(`Expected probability in [0, 1] but received ${probability}`);
  }
  return { kind: 'horizontalFlip', probability };
}

/**
 * Crops a random area fraction in `scale` with aspect ratio (w/h) log-uniform in `ratio`, then resizes
 * to `size` (Inception-style; ten tries, then a centre crop clamped to the ratio range).
 */
export function randomResizedCrop(
  size: Size,
  options: { scale?: [number, number]; ratio?: [number, number]; antialias?: boolean } = {},
): TransformSpec {
  const [height, width] = sizePair(size, 'size');
  const scale = checkInterval(options.scale ?? [0.08, 1], 'scale', 0);
  if (scale[1] > 1)
    throw new RangeError(`Expected scale within (0, 1] but received [${scale[0]}, ${scale[1]}]`);
  const ratio = checkInterval(options.ratio ?? [3 / 4, 4 / 3], 'ratio', 0);
  return { kind: 'randomResizedCrop', height, width, scale, ratio, antialias: options.antialias ?? true };
}

/** Resizes so the shorter side is `size`, keeping the aspect ratio (longer side rounded down). */
export function resize(size: number, options: { antialias?: boolean } = {}): TransformSpec {
  return { kind: 'resize', size: checkPositiveInteger(size, 'size'), antialias: options.antialias ?? true };
}

/** The central `size` window; zero padding where the image is smaller. */
export function centerCrop(size: Size): TransformSpec {
  const [height, width] = sizePair(size, 'size');
  return { kind: 'centerCrop', height, width };
}

/** Per-channel (x / 255 - mean) / std; must be the last transform. */
export function normalize(mean: number[], std: number[]): TransformSpec {
  if (mean.length !== std.length || mean.length === 0) {
    throw new RangeError(
      `Expected mean and std of the same non-zero length but received ${mean.length} and ${std.length}`,
    );
  }
  for (const s of std) {
    if (!(s > 0) || !Number.isFinite(s))
      throw new RangeError(`Expected std values in (0, inf) but received ${s}`);
  }
  for (const m of mean)
    if (!Number.isFinite(m)) throw new RangeError(`Expected finite mean values but received ${m}`);
  return { kind: 'normalize', mean: [...mean], std: [...std] };
}

export const CIFAR10_MEAN = [0.4914, 0.4822, 0.4465];
export const CIFAR10_STD = [0.247, 0.2435, 0.2616];
export const IMAGENET_MEAN = [0.485, 0.456, 0.406];
export const IMAGENET_STD = [0.229, 0.224, 0.225];

/** Pad 4, random 32x32 crop, flip, normalise. */
export function cifarTrainTransforms(mean = CIFAR10_MEAN, std = CIFAR10_STD): TransformSpec[] {
  return [randomCrop(32, 4), randomHorizontalFlip(), normalize(mean, std)];
}

export function cifarEvalTransforms(mean = CIFAR10_MEAN, std = CIFAR10_STD): TransformSpec[] {
  return [normalize(mean, std)];
}

export function imagenetTrainTransforms(
  size = 224,
  mean = IMAGENET_MEAN,
  std = IMAGENET_STD,
): TransformSpec[] {
  return [randomResizedCrop(size), randomHorizontalFlip(), normalize(mean, std)];
}

/** Resize the shorter side to size * 256 / 224, then centre crop (the usual ImageNet evaluation). */
export function imagenetEvalTransforms(
  size = 224,
  mean = IMAGENET_MEAN,
  std = IMAGENET_STD,
): TransformSpec[] {
  return [resize(Math.round((size * 256) / 224)), centerCrop(size), normalize(mean, std)];
}

/** Zero-filled window of the image starting at (top, left), which may reach outside it. */
function cropWithZeros(
  image: RawImage,
  channels: number,
  top: number,
  left: number,
  h: number,
  w: number,
): RawImage {
  const out = new Uint8Array(h * w * channels);
  const y0 = Math.max(0, -top);
  const y1 = Math.min(h, image.height - top);
  const x0 = Math.max(0, -left);
  const x1 = Math.min(w, image.width - left);
  if (x1 > x0) {
    for (let y = y0; y < y1; y++) {
      const from = ((top + y) * image.width + left + x0) * channels;
      out.set(image.data.subarray(from, from + (x1 - x0) * channels), (y * w + x0) * channels);
    }
  }
  return { data: out, height: h, width: w };
}

function flipHorizontal(image: RawImage, channels: number): RawImage {
  const { height, width, data } = image;
  const out = new Uint8Array(data.length);
  const rowBytes = width * channels;
  for (let row = 0; row < data.length; row += rowBytes) {
    const last = row + rowBytes - channels;
    if (channels === 3) {
      for (let from = row, to = last; from < row + rowBytes; from += 3, to -= 3) {
        out[to] = data[from];
        out[to + 1] = data[from + 1];
        out[to + 2] = data[from + 2];
      }
    } else {
      for (let from = row, to = last; from < row + rowBytes; from += channels, to -= channels) {
        for (let c = 0; c < channels; c++) out[to + c] = data[from + c];
      }
    }
  }
  return { data: out, height, width };
}

function randomResizedCropImage(
  image: RawImage,
  channels: number,
  spec: Extract<TransformSpec, { kind: 'randomResizedCrop' }>,
  rng: Random,
): RawImage {
  const { height: H, width: W } = image;
  const area = H * W;
  const logLo = Math.log(spec.ratio[0]);
  const logHi = Math.log(spec.ratio[1]);
  for (let attempt = 0; attempt < 10; attempt++) {
    const target = area * (spec.scale[0] + rng.next() * (spec.scale[1] - spec.scale[0]));
    const aspect = Math.exp(logLo + rng.next() * (logHi - logLo));
    const w = Math.round(Math.sqrt(target * aspect));
    const h = Math.round(Math.sqrt(target / aspect));
    if (w > 0 && h > 0 && w <= W && h <= H) {
      const top = rng.int(H - h + 1);
      const left = rng.int(W - w + 1);
      return resizeBilinear(
        image,
        channels,
        spec.height,
        spec.width,
        { top, left, height: h, width: w },
        spec.antialias,
      );
    }
  }
  const inRatio = W / H;
  let w = W;
  let h = H;
  if (inRatio < spec.ratio[0]) h = Math.round(w / spec.ratio[0]);
  else if (inRatio > spec.ratio[1]) w = Math.round(h * spec.ratio[1]);
  h = Math.min(H, Math.max(1, h));
  w = Math.min(W, Math.max(1, w));
  const region = { top: Math.floor((H - h) / 2), left: Math.floor((W - w) / 2), height: h, width: w };
  return resizeBilinear(image, channels, spec.height, spec.width, region, spec.antialias);
}

/** Runs the geometric transforms (everything but normalize) on one image. */
export function applyGeometric(
  image: RawImage,
  channels: number,
  specs: readonly TransformSpec[],
  rng: Random,
): RawImage {
  let current = image;
  for (const spec of specs) {
    switch (spec.kind) {
      case 'randomCrop': {
        const spanY = current.height + 2 * spec.padding - spec.height;
        const spanX = current.width + 2 * spec.padding - spec.width;
        if (spanY < 0 || spanX < 0) {
          throw new RangeError(
            `randomCrop of ${spec.height}x${spec.width} does not fit a ${current.height}x${current.width} image ` +
              `padded by ${spec.padding}`,
          );
        }
        const top = rng.int(spanY + 1) - spec.padding;
        const left = rng.int(spanX + 1) - spec.padding;
        current = cropWithZeros(current, channels, top, left, spec.height, spec.width);
        break;
      }
      case 'horizontalFlip':
        if (rng.next() < spec.probability) current = flipHorizontal(current, channels);
        break;
      case 'randomResizedCrop':
        current = randomResizedCropImage(current, channels, spec, rng);
        break;
      case 'resize': {
        const { height, width } = current;
        const short = Math.min(height, width);
        const long = Math.max(height, width);
        const newLong = Math.floor((spec.size * long) / short);
        const [h, w] = height <= width ? [spec.size, newLong] : [newLong, spec.size];
        if (h !== height || w !== width)
          current = resizeBilinear(current, channels, h, w, undefined, spec.antialias);
        break;
      }
      case 'centerCrop': {
        const top = Math.round((current.height - spec.height) / 2);
        const left = Math.round((current.width - spec.width) / 2);
        if (top !== 0 || left !== 0 || spec.height !== current.height || spec.width !== current.width) {
          current = cropWithZeros(current, channels, top, left, spec.height, spec.width);
        }
        break;
      }
      case 'normalize':
        break;
    }
  }
  return current;
}

/** Checks a pipeline once: known kinds, normalize last and matching the channel count. */
export function checkTransforms(specs: readonly TransformSpec[], channels: number): void {
  specs.forEach((spec, i) => {
    if (spec.kind === 'normalize') {
      if (i !== specs.length - 1) throw new Error('normalize must be the last transform');
      if (spec.mean.length !== channels) {
        throw new RangeError(
          `normalize has ${spec.mean.length} channel statistics but the images have ${channels} channels`,
        );
      }
    }
  });
}

/** Scales to [0, 1] (and normalises) into `out` starting at `offset`. */
export function writeFloat(
  image: RawImage,
  channels: number,
  norm: Extract<TransformSpec, { kind: 'normalize' }> | undefined,
  out: Float32Array,
  offset: number,
): void {
  const src = image.data;
  const n = src.length;
  if (!norm) {
    for (let i = 0; i < n; i++) out[offset + i] = src[i] / 255;
    return;
  }
  if (channels === 3) {
    // Unrolled with locals: this loop touches every pixel of every batch.
    const s0 = 1 / (255 * norm.std[0]);
    const s1 = 1 / (255 * norm.std[1]);
    const s2 = 1 / (255 * norm.std[2]);
    const m0 = norm.mean[0] / norm.std[0];
    const m1 = norm.mean[1] / norm.std[1];
    const m2 = norm.mean[2] / norm.std[2];
    for (let i = 0, o = offset; i < n; i += 3, o += 3) {
      out[o] = src[i] * s0 - m0;
      out[o + 1] = src[i + 1] * s1 - m1;
      out[o + 2] = src[i + 2] * s2 - m2;
    }
    return;
  }
  const scale = Float64Array.from(norm.std, (s) => 1 / (255 * s));
  const shift = Float64Array.from(norm.mean, (m, c) => m / norm.std[c]);
  for (let i = 0; i < n; i += channels) {
    for (let c = 0; c < channels; c++) out[offset + i + c] = src[i + c] * scale[c] - shift[c];
  }
}

/**
 * Transforms one image into `out` at `offset`, which must have room for the expected output size;
 * throws naming the image when the pipeline does not produce `height` x `width`.
 */
export function transformInto(
  image: RawImage,
  channels: number,
  specs: readonly TransformSpec[],
  rng: Random,
  out: Float32Array,
  offset: number,
  height: number,
  width: number,
  name: string,
): void {
  const result = applyGeometric(image, channels, specs, rng);
  if (result.height !== height || result.width !== width) {
    throw new RangeError(
      `${name} came out of the transforms as ${result.height}x${result.width} but the batch is ${height}x${width}; ` +
        'end the pipeline with a crop (centerCrop, randomCrop or randomResizedCrop) to make sizes equal',
    );
  }
  const last = specs[specs.length - 1];
  writeFloat(result, channels, last?.kind === 'normalize' ? last : undefined, out, offset);
}

/** The output size of a pipeline for an input size (resize depends on it; crops do not). */
export function outputSize(specs: readonly TransformSpec[], height: number, width: number): [number, number] {
  let h = height;
  let w = width;
  for (const spec of specs) {
    if (spec.kind === 'randomCrop' || spec.kind === 'randomResizedCrop' || spec.kind === 'centerCrop') {
      h = spec.height;
      w = spec.width;
    } else if (spec.kind === 'resize') {
      const short = Math.min(h, w);
      const newLong = Math.floor((spec.size * Math.max(h, w)) / short);
      [h, w] = h <= w ? [spec.size, newLong] : [newLong, spec.size];
    }
  }
  return [h, w];
}

/** Per-sample generators independent of batch layout and worker count: a hash of (seed, epoch, position). */
export function sampleSeed(seed: number, epoch: number, position: number): number {
  let h1 = 0x811c9dc5 ^ (seed >>> 0);
  let h2 = 0x9e3779b9 ^ Math.floor(seed / 2 ** 32);
  for (const part of [epoch, position]) {
    h1 = Math.imul(h1 ^ (part >>> 0), 0x85ebca6b);
    h1 ^= h1 >>> 13;
    h2 = Math.imul(h2 ^ Math.floor(part / 2 ** 32), 0xc2b2ae35) ^ h1;
    h2 ^= h2 >>> 16;
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 0x7feb352d);
  h1 ^= h1 >>> 15;
  // 53 bits: Random takes up to 2^53 and feeds the high part into its state too.
  return (h2 >>> 11) * 2 ** 32 + (h1 >>> 0);
}

export function sampleRandom(seed: number, epoch: number, position: number): Random {
  return new Random(sampleSeed(seed, epoch, position));
}
