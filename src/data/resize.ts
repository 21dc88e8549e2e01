import type { RawImage } from './dataset.js';

/** A rectangle of the source image, in pixels. */
export interface Region {
  top: number;
  left: number;
  height: number;
  width: number;
}

interface AxisTaps {
  first: Int32Array;
  count: Int32Array;
  weights: Float32Array;
  maxTaps: number;
}

/**
 * Per-output-pixel source taps along one axis for a triangle (bilinear) filter with half-pixel
 * centres. When shrinking with antialiasing the triangle widens by the scale factor, so every source
 * pixel contributes (as PIL and torchvision's antialias do); otherwise it is plain 2-tap bilinear.
 * Taps are clamped to the region, as if the region had been cropped out first.
 */
function axisTaps(start: number, size: number, outSize: number, antialias: boolean): AxisTaps {
  const scale = size / outSize;
  const support = antialias && scale > 1 ? scale : 1;
  const maxTaps = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Float32Array(outSize * maxTaps);
  for (let i = 0; i < outSize; i++) {
    const centre = (i + 0.5) * scale;
    const lo = Math.max(0, Math.floor(centre - support));
    const hi = Math.min(size - 1, Math.ceil(centre + support));
    let total = 0;
    let n = 0;
    let firstTap = -1;
    for (let j = lo; j <= hi; j++) {
      const w = 1 - Math.abs(j + 0.5 - centre) / support;
      if (w <= 0) continue;
      if (firstTap < 0) firstTap = j;
      // Taps are contiguous because w > 0 holds on one interval.
      weights[i * maxTaps + n] = w;
      total += w;
      n++;
    }
    if (n === 0) {
      // Centre exactly between pixels at an edge: take the nearest one.
      firstTap = Math.min(size - 1, Math.max(0, Math.floor(centre)));
      weights[i * maxTaps] = 1;
      total = 1;
      n = 1;
    }
    for (let k = 0; k < n; k++) weights[i * maxTaps + k] /= total;
    first[i] = start + firstTap;
    count[i] = n;
  }
  return { first, count, weights, maxTaps };
}

/**
 * Resizes `region` of an HWC uint8 image (default: all of it) to outHeight x outWidth with a separable
 * bilinear filter, rounding back to uint8 like an image library would.
 */
export function resizeBilinear(
  image: RawImage,
  channels: number,
  outHeight: number,
  outWidth: number,
  region: Region = { top: 0, left: 0, height: image.height, width: image.width },
  antialias = true,
): RawImage {
  if (
    region.height < 1 ||
    region.width < 1 ||
    region.top < 0 ||
    region.left < 0 ||
    region.top + region.height > image.height ||
    region.left + region.width > image.width
  ) {
    throw new RangeError(
      `Resize region ${region.height}x${region.width} at (${region.top}, ${region.left}) is outside the ` +
        `${image.height}x${image.width} image`,
    );
  }
  const src = image.data;
  const rowStride = image.width * channels;
  const xs = axisTaps(region.left, region.width, outWidth, antialias);
  const ys = axisTaps(region.top, region.height, outHeight, antialias);
  // Horizontal pass over only the rows the vertical pass will read.
  const rowLo = ys.first[0];
  let rowHi = rowLo;
  for (let i = 0; i < outHeight; i++) rowHi = Math.max(rowHi, ys.first[i] + ys.count[i] - 1);
  const rows = rowHi - rowLo + 1;
  const tmpStride = outWidth * channels;
  const tmp = new Float32Array(rows * tmpStride);
  for (let r = 0; r < rows; r++) {
    const srcRow = (rowLo + r) * rowStride;
    const tmpRow = r * tmpStride;
    for (let x = 0; x < outWidth; x++) {
      const base = srcRow + xs.first[x] * channels;
      const wBase = x * xs.maxTaps;
      const n = xs.count[x];
      for (let c = 0; c < channels; c++) {
        let acc = 0;
        for (let k = 0; k < n; k++) acc += xs.weights[wBase + k] * src[base + k * channels + c];
        tmp[tmpRow + x * channels + c] = acc;
      }
    }
  }
  const out = new Uint8Array(outHeight * tmpStride);
  for (let y = 0; y < outHeight; y++) {
    const base = (ys.first[y] - rowLo) * tmpStride;
    const wBase = y * ys.maxTaps;
    const n = ys.count[y];
    const outRow = y * tmpStride;
    for (let i = 0; i < tmpStride; i++) {
      let acc = 0;
      for (let k = 0; k < n; k++) acc += ys.weights[wBase + k] * tmp[base + k * tmpStride + i];
      out[outRow + i] = acc <= 0 ? 0 : acc >= 255 ? 255 : Math.round(acc);
    }
  }
  return { data: out, height: outHeight, width: outWidth };
}
