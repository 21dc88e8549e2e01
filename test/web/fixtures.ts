/** A tiny real training run and real MNIST digits as PNG files, shared by the deployment tests. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { loadMnist } from '../../src/data/idx.js';
import { nativeAddon } from '../../src/engine/backend-native.js';
import { resolveTrainConfig } from '../../src/train/config.js';
import { runTraining } from '../../src/train/trainer.js';

// Two oneDNN threads competing with other jobs on a shared 2-core machine are slower than one.
process.env.STRATA_THREADS ??= '1';
nativeAddon()?.setThreads(Number(process.env.STRATA_THREADS));

/** Once QAT of a narrow small-cnn on the first MNIST images, one epoch; returns the checkpoint path. */
export async function trainTinyMnist(
  out: string,
  options: { bits?: number[]; trainLimit?: number; width?: number; mode?: 'once' | 'fp' } = {},
): Promise<string> {
  const mode = options.mode ?? 'once';
  const result = await runTraining(
    resolveTrainConfig({
      model: 'small-cnn',
      width: options.width ?? 8,
      dataset: 'mnist',
      trainLimit: options.trainLimit ?? 512,
      valLimit: 128,
      epochs: 1,
      batchSize: 64,
      lr: 0.05,
      mode,
      ...(mode === 'once' ? { bits: options.bits ?? [8, 4, 2] } : {}),
      out,
    }),
    { resume: false, log: () => undefined },
  );
  return result.checkpoint;
}

export interface Digit {
  path: string;
  label: number;
  /** 28 x 28 greyscale pixels. */
  pixels: Uint8Array;
}

/** Writes MNIST test image `index` as an 8-bit greyscale PNG (scaled up `scale` times, nearest). */
export async function mnistDigitPng(dir: string, index: number, scale = 1): Promise<Digit> {
  const test = await loadMnist('test');
  const stride = test.height * test.width;
  const pixels = test.images.slice(index * stride, (index + 1) * stride);
  const side = 28 * scale;
  const png = new PNG({ width: side, height: side, colorType: 0, inputColorType: 0, bitDepth: 8 });
  const grey = Buffer.alloc(side * side);
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++)
      grey[y * side + x] = pixels[Math.floor(y / scale) * 28 + Math.floor(x / scale)];
  }
  const path = join(dir, `digit-${index}${scale === 1 ? '' : `-x${scale}`}.png`);
  writeFileSync(
    path,
    PNG.sync.write(Object.assign(png, { data: grey }), { colorType: 0, inputColorType: 0 }),
  );
  return { path, label: test.labels[index], pixels };
}
