// SLOW (about 20-40 s on two cores): decodes the real CIFAR-10 JPEG and Tiny-ImageNet archives from
// <repo>/../shared/datasets (or $STRATA_SHARED/datasets) into a temporary cache. Skipped, with a
// message, only when that folder is absent.
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { ImageDataset } from '../../src/data/index.js';
import {
  CIFAR10_CLASSES,
  classCounts,
  getImage,
  isFixedSize,
  loadCifar10Jpeg,
  loadTinyImagenetVal,
  readTar,
  sharedDatasetsDir,
} from '../../src/data/index.js';
import { makeTempDir } from './fixtures.js';

/** Component count from a JPEG's SOF frame header (markers C0-CF except C4, C8, CC). */
function jpegComponents(bytes: Uint8Array): number {
  let at = 2;
  while (at + 9 < bytes.length) {
    if (bytes[at] !== 0xff) return -1;
    const marker = bytes[at + 1];
    const length = (bytes[at + 2] << 8) | bytes[at + 3];
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc)
      return bytes[at + 9];
    at += 2 + length;
  }
  return -1;
}

const datasets = sharedDatasetsDir();
const skip = existsSync(datasets)
  ? false
  : `shared datasets folder ${datasets} is absent (set STRATA_SHARED)`;

test(
  'SLOW: real CIFAR-10 JPEG archive: 50,000 images, 10 classes, 45,000/5,000 split, cache round trip',
  { skip },
  async (t) => {
    const cacheDir = makeTempDir(t, 'strata-cache-');
    const log: string[] = [];
    const { all, train, val } = await loadCifar10Jpeg({ cacheDir, log: (m) => log.push(m) });
    assert.ok(isFixedSize(all));
    assert.equal(all.labels.length, 50000);
    assert.deepEqual(all.classes, CIFAR10_CLASSES);
    assert.deepEqual([all.height, all.width, all.channels], [32, 32, 3]);
    assert.deepEqual(classCounts(all), new Array(10).fill(5000));
    assert.equal(train.labels.length, 45000);
    assert.equal(val.labels.length, 5000);
    assert.deepEqual(classCounts(val), new Array(10).fill(500));
    // Validation is the last 500 files of every class folder.
    const expectedVal = CIFAR10_CLASSES.flatMap((c) =>
      Array.from({ length: 500 }, (_, i) => `${c}/${4500 + i}.jpg`),
    );
    assert.deepEqual(val.sources, expectedVal);
    assert.equal(train.sources?.[0], 'airplane/0000.jpg');
    assert.equal(train.sources?.[4499], 'airplane/4499.jpg');
    assert.equal(train.sources?.[4500], 'automobile/0000.jpg');
    // Real photographs: not blank, not saturated.
    const mean = (all as ImageDataset).images.reduce((a, b) => a + b, 0) / all.images.length;
    assert.ok(mean > 90 && mean < 160, `mean pixel ${mean}`);

    assert.equal(readdirSync(cacheDir).length, 1);
    const again = await loadCifar10Jpeg({ cacheDir, log: (m) => log.push(m) });
    assert.deepEqual(
      log.map((m) => m.split(':')[0]),
      ['data cache miss', 'data cache hit'],
    );
    assert.deepEqual(again.val.labels, val.labels);
    assert.deepEqual((again.all as ImageDataset).images, (all as ImageDataset).images);
  },
);

test(
  'SLOW: real Tiny-ImageNet val archive: 200 wnids, 50 a class, greyscale expanded, 40/10 split',
  { skip },
  async (t) => {
    const cacheDir = makeTempDir(t, 'strata-cache-');
    const { all, train, val } = await loadTinyImagenetVal({ cacheDir });
    assert.ok(isFixedSize(all));
    assert.equal(all.labels.length, 10000);
    assert.equal(all.classes.length, 200);
    assert.deepEqual(all.classes, [...all.classes].sort());
    assert.deepEqual([all.height, all.width, all.channels], [64, 64, 3]);
    assert.deepEqual(classCounts(train), new Array(200).fill(40));
    assert.deepEqual(classCounts(val), new Array(200).fill(10));
    // The last 10 file names of the first class, in code-point order.
    const firstClass = (all.sources ?? []).filter((s) => s.startsWith(`${all.classes[0]}/`));
    assert.deepEqual(val.sources?.slice(0, 10), [...firstClass].sort().slice(40));
    // Single-component (greyscale) JPEGs, found from their frame headers, must decode to R = G = B.
    const greyFiles = new Set<string>();
    for await (const entry of readTar(path.join(datasets, 'tiny-imagenet-200-val.tar.gz'))) {
      if (entry.data && entry.name.endsWith('.JPEG') && jpegComponents(entry.data) === 1) {
        greyFiles.add(entry.name.split('/').slice(-2).join('/'));
      }
    }
    assert.equal(greyFiles.size, 168);
    const index = new Map((all.sources ?? []).map((s, i) => [s, i]));
    for (const name of greyFiles) {
      const px = getImage(all, index.get(name) as number).data;
      for (let p = 0; p < px.length; p += 3) {
        assert.ok(px[p] === px[p + 1] && px[p] === px[p + 2], `${name} pixel ${p / 3} is not grey`);
      }
    }
  },
);
