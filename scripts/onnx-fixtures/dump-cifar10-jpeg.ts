/**
 * Writes the CIFAR-10 JPEG training archive, decoded by Strata and split the way Strata splits it
 * (src/data/real-datasets.ts), as raw files a PyTorch script can read without an image library:
 * `<dir>/{train,val}-images.u8` (uint8 N x 32 x 32 x 3, HWC) and `<dir>/{train,val}-labels.i32`.
 *
 *   npx tsx scripts/onnx-fixtures/dump-cifar10-jpeg.ts /tmp/cifar10-raw
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isFixedSize, loadCifar10Jpeg } from '../../src/data/index.js';

const dir = process.argv[2];
if (dir === undefined) throw new Error('usage: dump-cifar10-jpeg.ts <output folder>');
mkdirSync(dir, { recursive: true });
const split = await loadCifar10Jpeg({ log: (m) => console.error(m) });
for (const [name, data] of [
  ['train', split.train],
  ['val', split.val],
] as const) {
  if (!isFixedSize(data)) throw new Error(`cifar10-jpeg ${name}: expected fixed-size 32x32 images`);
  writeFileSync(join(dir, `${name}-images.u8`), data.images);
  writeFileSync(
    join(dir, `${name}-labels.i32`),
    new Uint8Array(data.labels.buffer, data.labels.byteOffset, data.labels.byteLength),
  );
  console.error(`${name}: ${data.labels.length} images`);
}
