import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import {
  CIFAR10_CLASSES,
  loadCifar10,
  loadCifar100,
  readCifar10,
  readCifar100,
} from '../../src/data/index.js';
import { cifarRecord, makeTempDir, pattern, writeFile } from './fixtures.js';

function checkImage(images: Uint8Array, slot: number, index: number): void {
  for (const [y, x] of [
    [0, 0],
    [5, 17],
    [31, 31],
  ]) {
    for (let c = 0; c < 3; c++) {
      assert.equal(
        images[slot * 3072 + (y * 32 + x) * 3 + c],
        pattern(index, y, x, c),
        `image ${slot} (${y},${x},${c})`,
      );
    }
  }
}

test('CIFAR-10 records become HWC images, files concatenated in order', async (t) => {
  const dir = makeTempDir(t);
  const a = writeFile(path.join(dir, 'a.bin'), Buffer.concat([cifarRecord([3], 0), cifarRecord([9], 1)]));
  const b = writeFile(path.join(dir, 'b.bin'), cifarRecord([0], 2));
  const { images, labels } = await readCifar10([a, b]);
  assert.deepEqual(Array.from(labels), [3, 9, 0]);
  assert.equal(images.length, 3 * 3072);
  for (let i = 0; i < 3; i++) checkImage(images, i, i);
});

test('CIFAR-10 malformed files: truncated record and out-of-range label', async (t) => {
  const dir = makeTempDir(t);
  const records = Buffer.concat([cifarRecord([1], 0), cifarRecord([2], 1)]);
  const truncated = writeFile(path.join(dir, 'data_batch_1.bin'), records.subarray(0, 3073 + 1200));
  await assert.rejects(readCifar10([truncated]), {
    message: 'data_batch_1.bin: record 1 is truncated (expected 3073 bytes, got 1200)',
  });
  const badLabel = writeFile(
    path.join(dir, 'bad.bin'),
    Buffer.concat([cifarRecord([1], 0), cifarRecord([12], 1)]),
  );
  await assert.rejects(readCifar10([badLabel]), {
    message: 'bad.bin: record 1 has label 12 (expected 0..9); is this the right CIFAR variant?',
  });
  const empty = writeFile(path.join(dir, 'empty.bin'), Buffer.alloc(0));
  await assert.rejects(readCifar10([empty]), {
    message: 'empty.bin: holds no records (expected records of 3073 bytes)',
  });
});

test('CIFAR-100 keeps the fine or the coarse label', async (t) => {
  const dir = makeTempDir(t);
  const file = writeFile(
    path.join(dir, 'train.bin'),
    Buffer.concat([cifarRecord([4, 77], 0), cifarRecord([19, 99], 1)]),
  );
  const fine = await readCifar100([file]);
  assert.deepEqual(Array.from(fine.labels), [77, 99]);
  checkImage(fine.images, 1, 1);
  const coarse = await readCifar100([file], 'coarse');
  assert.deepEqual(Array.from(coarse.labels), [4, 19]);
  // A CIFAR-10 file read as CIFAR-100 is off by one byte per record: 3073 is not a multiple of 3074.
  const ten = writeFile(path.join(dir, 'ten.bin'), Buffer.concat([cifarRecord([1], 0), cifarRecord([2], 1)]));
  await assert.rejects(readCifar100([ten]), {
    message: 'ten.bin: record 1 is truncated (expected 3074 bytes, got 3072)',
  });
  const badFine = writeFile(path.join(dir, 'bad.bin'), cifarRecord([3, 100], 0));
  await assert.rejects(readCifar100([badFine]), {
    message: 'bad.bin: record 0 has fine label 100 (expected 0..99); is this the right CIFAR variant?',
  });
  await assert.rejects(readCifar100([file], 'medium' as 'fine'), { name: 'RangeError' });
});

test('loadCifar10/loadCifar100 read the official folder layout', async (t) => {
  const dir = makeTempDir(t);
  const inner = path.join(dir, 'cifar-10-batches-bin');
  for (let b = 1; b <= 5; b++) writeFile(path.join(inner, `data_batch_${b}.bin`), cifarRecord([b], b));
  writeFile(path.join(inner, 'test_batch.bin'), cifarRecord([7], 0));
  writeFileSync(path.join(inner, 'batches.meta.txt'), `${CIFAR10_CLASSES.join('\n')}\n\n`);
  const train = await loadCifar10(dir, 'train');
  assert.deepEqual(Array.from(train.labels), [1, 2, 3, 4, 5]);
  assert.deepEqual(train.classes, CIFAR10_CLASSES);
  assert.deepEqual([train.height, train.width, train.channels], [32, 32, 3]);
  const testSet = await loadCifar10(inner, 'test');
  assert.deepEqual(Array.from(testSet.labels), [7]);

  const hundred = path.join(dir, 'cifar-100-binary');
  writeFile(path.join(hundred, 'test.bin'), cifarRecord([2, 50], 0));
  const names = Array.from({ length: 20 }, (_, i) => `super${i}`);
  writeFileSync(path.join(hundred, 'coarse_label_names.txt'), names.join('\n'));
  const coarse = await loadCifar100(dir, 'test', 'coarse');
  assert.deepEqual(coarse.classes, names);
  assert.deepEqual(Array.from(coarse.labels), [2]);
  const fine = await loadCifar100(dir, 'test');
  assert.equal(fine.classes.length, 100);
  assert.equal(fine.classes[50], '50');
  await assert.rejects(
    loadCifar100(dir, 'train'),
    /CIFAR-100 train: missing train\.bin in .*cifar-100-binary/,
  );
});
