import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { test } from 'node:test';
import type { Batch, ImageDataset, ImageListDataset } from '../../src/data/index.js';
import {
  DataLoader,
  batchesFromTensors,
  epochOrder,
  imagenetTrainTransforms,
  randomCrop,
  randomHorizontalFlip,
  resize,
} from '../../src/data/index.js';
import { rgbImage } from './fixtures.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/** Image i is filled with the value i, so a batch tells which samples it holds. */
function numbered(n: number): ImageDataset {
  const images = new Uint8Array(n * 2 * 2);
  for (let i = 0; i < n; i++) images.fill(i, i * 4, (i + 1) * 4);
  return {
    images,
    labels: Int32Array.from({ length: n }, (_, i) => i % 3),
    height: 2,
    width: 2,
    channels: 1,
    classes: ['a', 'b', 'c'],
  };
}

function samplesOf(batch: Batch): number[] {
  return Array.from({ length: batch.size }, (_, i) => Math.round(batch.images[i * 4] * 255));
}

async function collect(iterable: AsyncIterable<Batch>): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of iterable) out.push(b);
  return out;
}

test('an epoch visits every sample once; batch counts follow dropLast', async () => {
  const ds = numbered(10);
  const keep = new DataLoader(ds, { batchSize: 3, seed: 4, workers: 0 });
  assert.equal(keep.batchesPerEpoch, 4);
  const batches = await collect(keep.epoch(0));
  assert.deepEqual(
    batches.map((b) => b.size),
    [3, 3, 3, 1],
  );
  assert.deepEqual(batches[0].shape, [3, 2, 2, 1]);
  const seen = batches.flatMap(samplesOf);
  assert.deepEqual(
    [...seen].sort((a, b) => a - b),
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
  );
  assert.deepEqual(seen, Array.from(keep.order(0)));
  batches.forEach((b) => samplesOf(b).forEach((s, i) => assert.equal(b.labels[i], s % 3)));
  const drop = new DataLoader(ds, { batchSize: 3, seed: 4, dropLast: true, workers: 0 });
  assert.equal(drop.batchesPerEpoch, 3);
  assert.deepEqual(
    (await collect(drop.epoch(0))).map((b) => b.size),
    [3, 3, 3],
  );
});

test('shuffle depends on (seed, epoch) only; shuffle off keeps dataset order', async () => {
  const ds = numbered(50);
  const a = new DataLoader(ds, { batchSize: 7, seed: 1, workers: 0 });
  const b = new DataLoader(ds, { batchSize: 7, seed: 1, workers: 0 });
  const c = new DataLoader(ds, { batchSize: 7, seed: 2, workers: 0 });
  assert.deepEqual(a.order(3), b.order(3));
  assert.notDeepEqual(a.order(3), a.order(4));
  assert.notDeepEqual(a.order(3), c.order(3));
  assert.deepEqual(a.order(3), epochOrder(50, true, 1, 3));
  const plain = new DataLoader(ds, { batchSize: 7, shuffle: false, workers: 0 });
  assert.deepEqual(
    (await collect(plain.epoch(5))).flatMap(samplesOf),
    Array.from({ length: 50 }, (_, i) => i),
  );
});

test('an epoch resumed at batch k yields exactly the remaining batches of the full epoch', async () => {
  const ds: ImageDataset = { ...numbered(20), images: new Uint8Array(20 * 4) };
  ds.images.set(rgbImage(20, 4, 1, 1).map((v) => v % 200));
  const transforms = [randomCrop(2, 1), randomHorizontalFlip()];
  const loader = new DataLoader(ds, { batchSize: 6, seed: 9, transforms, workers: 0 });
  const full = await collect(loader.epoch(2));
  const resumed = await collect(loader.epoch(2, { startBatch: 2 }));
  assert.equal(resumed.length, 2);
  resumed.forEach((batch, i) => {
    assert.equal(batch.index, i + 2);
    assert.deepEqual(batch.images, full[i + 2].images);
    assert.deepEqual(batch.labels, full[i + 2].labels);
  });
  assert.deepEqual((await loader.batch(2, 3)).images, full[3].images);
  assert.deepEqual(await collect(loader.epoch(2, { startBatch: 4 })), []);
  await assert.rejects(loader.epoch(2, { startBatch: 5 }).next(), {
    name: 'RangeError',
    message: 'Expected startBatch in [0, 4] but received 5',
  });
});

test('augmentation is reproducible with the same seed and differs with another', async () => {
  const n = 16;
  const ds: ImageDataset = {
    images: rgbImage(n * 8, 8, 3),
    labels: new Int32Array(n),
    height: 8,
    width: 8,
    channels: 3,
    classes: ['only'],
  };
  const transforms = [randomCrop(8, 2), randomHorizontalFlip()];
  const run = async (seed: number): Promise<Float32Array> =>
    (await new DataLoader(ds, { batchSize: n, seed, shuffle: false, transforms, workers: 0 }).batch(0, 0))
      .images;
  const first = await run(3);
  assert.deepEqual(await run(3), first);
  assert.notDeepEqual(await run(4), first);
  const plain = (await new DataLoader(ds, { batchSize: n, shuffle: false, workers: 0 }).batch(0, 0)).images;
  assert.notDeepEqual(first, plain);
});

test('worker threads produce the same batches as the main thread', async (t) => {
  const sizes = [
    [9, 12],
    [16, 10],
    [11, 11],
    [20, 14],
    [10, 30],
  ];
  const list: ImageListDataset = {
    images: sizes.map(([h, w], i) => ({ data: rgbImage(h, w, i), height: h, width: w })),
    labels: Int32Array.from([0, 1, 0, 1, 1]),
    channels: 3,
    classes: ['p', 'q'],
  };
  const options = { batchSize: 4, seed: 11, transforms: imagenetTrainTransforms(8) };
  const main = new DataLoader(list, { ...options, workers: 0 });
  const pooled = new DataLoader(list, { ...options, workers: 2 });
  t.after(() => pooled.close());
  const a = await collect(main.epoch(1));
  const b = await collect(pooled.epoch(1));
  assert.equal(b.length, 2);
  b.forEach((batch, i) => {
    assert.deepEqual(batch.shape, [a[i].size, 8, 8, 3]);
    assert.deepEqual(batch.images, a[i].images);
    assert.deepEqual(batch.labels, a[i].labels);
  });
  const failing = new DataLoader(list, { batchSize: 5, transforms: [resize(8)], workers: 1, shuffle: false });
  t.after(() => failing.close());
  await assert.rejects(
    failing.batch(0, 0),
    /^Error: image 1 came out of the transforms as 12x8 but the batch is 8x10/,
  );
});

test('closing a pooled loader while prefetched batches are being built ends cleanly', () => {
  // An epoch abandoned after one batch leaves prefetched batches in the worker. A script whose
  // top-level await is `close()` must get past it: if close() waits on a worker exit the event loop
  // no longer tracks, Node ends the process with code 13 instead. (Inside the test runner the loop
  // stays alive, so this runs as its own process.)
  const loaderModule = pathToFileURL(join(repoRoot, 'src', 'data', 'index.ts')).href;
  const script = `
    import { DataLoader, imagenetTrainTransforms } from ${JSON.stringify(loaderModule)};
    const images = Array.from({ length: 48 }, (_, i) => ({
      data: new Uint8Array(320 * 320 * 3).fill(i), height: 320, width: 320 }));
    const list = { images, labels: new Int32Array(48), channels: 3, classes: ['only'] };
    const loader = new DataLoader(list, {
      batchSize: 12, transforms: imagenetTrainTransforms(64), workers: 1, prefetch: 3 });
    for (const epoch of [0, 0, 1]) for await (const batch of loader.epoch(epoch)) break;
    await loader.close();
    const again = await loader.batch(0, 1);
    await loader.close();
    console.log(again.shape.join('x'));
  `;
  const dir = mkdtempSync(join(tmpdir(), 'strata-loader-'));
  const file = join(dir, 'close.mjs');
  writeFileSync(file, script);
  try {
    const out = execFileSync(process.execPath, ['--import', 'tsx', file], {
      cwd: repoRoot,
      encoding: 'utf8',
    });
    assert.equal(out.trim(), '12x64x64x3');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('prefetching keeps working while the consumer is slow, and errors reach the consumer', async () => {
  const loader = new DataLoader(numbered(9), { batchSize: 2, prefetch: 3, workers: 0 });
  const seen: number[] = [];
  for await (const batch of loader.epoch(0)) {
    await new Promise((resolve) => setTimeout(resolve, 2));
    seen.push(...samplesOf(batch));
  }
  assert.deepEqual(
    [...seen].sort((a, b) => a - b),
    [0, 1, 2, 3, 4, 5, 6, 7, 8],
  );
  const list: ImageListDataset = {
    images: [
      { data: rgbImage(4, 4, 1), height: 4, width: 4 },
      { data: rgbImage(5, 4, 1), height: 5, width: 4 },
    ],
    labels: Int32Array.from([0, 0]),
    channels: 3,
    classes: ['a'],
    sources: ['a/first.png', 'a/second.png'],
  };
  const bad = new DataLoader(list, { batchSize: 1, shuffle: false, workers: 0 });
  await assert.rejects(collect(bad.epoch(0)), {
    message:
      'a/second.png came out of the transforms as 5x4 but the batch is 4x4; end the pipeline with a crop ' +
      '(centerCrop, randomCrop or randomResizedCrop) to make sizes equal',
  });
});

test('DataLoader validates its options', () => {
  const ds = numbered(4);
  assert.throws(() => new DataLoader(ds, { batchSize: 0 }), {
    name: 'TypeError',
    message: 'Expected positive integer for batchSize but received 0 of type number',
  });
  assert.throws(() => new DataLoader(ds, { batchSize: 2, workers: -1 }), {
    message: 'Expected non-negative integer for workers but received -1 of type number',
  });
  assert.throws(
    () => new DataLoader(ds, { batchSize: 2, transforms: [randomCrop(2)], workers: 0 }).batch(0, 2),
    {
      name: 'RangeError',
      message: 'Expected batch index in [0, 1] but received 2',
    },
  );
  assert.equal(new DataLoader(ds, { batchSize: 2 }).workerCount, 0);
});

test('batchesFromTensors slices pre-made tensors with the same shuffle', () => {
  const n = 7;
  const images = {
    data: Float32Array.from({ length: n * 6 }, (_, i) => Math.floor(i / 6)),
    shape: [n, 2, 3],
  };
  const labels = Int32Array.from({ length: n }, (_, i) => 100 + i);
  const batches = [...batchesFromTensors(images, labels, { batchSize: 3, seed: 5, epoch: 2 })];
  assert.deepEqual(
    batches.map((b) => b.size),
    [3, 3, 1],
  );
  assert.deepEqual(batches[0].shape, [3, 2, 3]);
  const order = Array.from(epochOrder(n, true, 5, 2));
  assert.deepEqual(
    batches.flatMap((b) => Array.from(b.labels, (l) => l - 100)),
    order,
  );
  batches.forEach((b) =>
    b.labels.forEach((l, i) => assert.ok(b.images.subarray(i * 6, i * 6 + 6).every((v) => v === l - 100))),
  );
  const tail = [
    ...batchesFromTensors(images, labels, { batchSize: 3, seed: 5, epoch: 2, startBatch: 1, dropLast: true }),
  ];
  assert.deepEqual(
    tail.map((b) => b.index),
    [1],
  );
  assert.deepEqual(tail[0].labels, batches[1].labels);
  const floatLabels = { data: Float32Array.from(labels), shape: [n] };
  assert.deepEqual(
    [...batchesFromTensors(images, floatLabels, { batchSize: 7, shuffle: false })][0].labels,
    labels,
  );
  assert.throws(() => [...batchesFromTensors(images, labels.subarray(1), { batchSize: 2 })], {
    message: 'Expected 7 labels for 7 images but received 6',
  });
});
