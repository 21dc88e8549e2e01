/**
 * Writes the sample images the browser page opens with (src/web/samples/<dataset>.png): one image a
 * dataset, from each dataset's held-out split (CIFAR-10: the validation images, the last 500 of each
 * class; MNIST and Fashion-MNIST: the test split). For CIFAR-10 the image is the first validation
 * image of `--class` that the packed once-QAT checkpoint classifies correctly at every precision.
 *
 *   npx tsx scripts/make-samples.ts [--class cat] [--checkpoint checkpoints/cifar10-resnet20-once3.ckpt]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { packCheckpoint } from '../src/cli/commands/pack.js';
import { decodeImage } from '../src/data/image-decode.js';
import { loadFashionMnist, loadMnist } from '../src/data/idx.js';
import { CIFAR10_JPEG_VAL_PER_CLASS, repoRoot, sharedDatasetsDir } from '../src/data/real-datasets.js';
import { readTar } from '../src/data/tar.js';
import { inspectStrata } from '../src/format/index.js';
import { StrataSession } from '../src/runtime/session.js';
import { imageToInput, inputSpecFor } from '../src/web/preprocess.js';

const args = process.argv.slice(2);
const option = (name: string, fallback: string) => {
  const at = args.indexOf(name);
  return at >= 0 ? args[at + 1] : fallback;
};
const wanted = option('--class', 'cat');
const checkpoint = option('--checkpoint', join(repoRoot(), 'checkpoints', 'cifar10-resnet20-once3.ckpt'));
const out = join(repoRoot(), 'src', 'web', 'samples');
mkdirSync(out, { recursive: true });

function writePng(path: string, data: Uint8Array, height: number, width: number, channels: 1 | 3): void {
  const png = new PNG({
    width,
    height,
    colorType: channels === 1 ? 0 : 2,
    inputColorType: channels === 1 ? 0 : 2,
  });
  const bytes = PNG.sync.write(Object.assign(png, { data: Buffer.from(data) }), {
    colorType: channels === 1 ? 0 : 2,
    inputColorType: channels === 1 ? 0 : 2,
  });
  writeFileSync(path, bytes);
  console.log(`wrote ${path} (${bytes.length} bytes)`);
}

// CIFAR-10: the validation images of the wanted class, in file order.
const model = packCheckpoint(checkpoint);
const info = inspectStrata(model);
const spec = inputSpecFor(info.architecture, info.metadata);
const sessions = await Promise.all(
  info.precisions.map((p) => StrataSession.create(model, { bits: p.bits, engine: 'native' })),
);
const classes = info.metadata?.classes as string[];
const label = classes.indexOf(wanted);
const names: string[] = [];
const files = new Map<string, Buffer>();
for await (const entry of readTar(join(sharedDatasetsDir(), 'cifar10-jpeg-train.tar.gz'), {
  include: (name) => name.startsWith(`train/${wanted}/`),
})) {
  if (entry.data !== null) {
    names.push(entry.name);
    files.set(entry.name, entry.data);
  }
}
names.sort();
let chosen: string | null = null;
for (const name of names.slice(names.length - CIFAR10_JPEG_VAL_PER_CLASS)) {
  const rgb = decodeImage(new Uint8Array(files.get(name)!), name);
  const input = imageToInput(rgb, spec);
  let ok = true;
  for (const s of sessions) {
    const p = await s.predict({ data: input, shape: [1, 32, 32, 3] });
    if (p.classes[0] !== label) ok = false;
  }
  if (ok) {
    writePng(join(out, 'cifar10.png'), rgb.data, rgb.height, rgb.width, 3);
    chosen = name;
    break;
  }
}
for (const s of sessions) await s.dispose();
if (chosen === null)
  throw new Error(`no validation image of ${wanted} is classified correctly at every precision`);
console.log(`cifar10: ${chosen} (validation split, class ${wanted})`);

for (const [name, load] of [
  ['mnist', loadMnist],
  ['fashion-mnist', loadFashionMnist],
] as const) {
  const test = await load('test');
  const stride = test.height * test.width;
  writePng(join(out, `${name}.png`), test.images.slice(0, stride), test.height, test.width, 1);
  console.log(`${name}: test image 0, label ${test.labels[0]}`);
}
