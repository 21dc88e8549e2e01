import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ImageDataset, ImageListDataset } from '../../src/data/index.js';
import { classCounts, holdoutPerClass, subset } from '../../src/data/index.js';

function interleaved(): ImageDataset {
  // Labels 0,1,2,0,1,2,... with class 2 shorter; pixel value = index so samples are traceable.
  const labels = [0, 1, 2, 0, 1, 2, 0, 1, 0, 1, 2, 0];
  return {
    images: Uint8Array.from(labels.flatMap((_, i) => [i, i, i])),
    labels: Int32Array.from(labels),
    height: 1,
    width: 1,
    channels: 3,
    classes: ['a', 'b', 'c'],
    sources: labels.map((l, i) => `${'abc'[l]}/${String(i).padStart(2, '0')}.png`),
  };
}

test('holdoutPerClass puts exactly the last n of each class (in dataset order) in validation', () => {
  const ds = interleaved();
  const { train, val } = holdoutPerClass(ds, 2);
  // Class a: indices 0 3 6 8 11 -> val 8 11; b: 1 4 7 9 -> val 7 9; c: 2 5 10 -> val 5 10.
  assert.deepEqual(Array.from(val.images.filter((_, i) => i % 3 === 0)), [5, 7, 8, 9, 10, 11]);
  assert.deepEqual(Array.from(train.images.filter((_, i) => i % 3 === 0)), [0, 1, 2, 3, 4, 6]);
  assert.deepEqual(classCounts(val), [2, 2, 2]);
  assert.deepEqual(classCounts(train), [3, 2, 1]);
  assert.deepEqual(val.sources, ['c/05.png', 'b/07.png', 'a/08.png', 'b/09.png', 'c/10.png', 'a/11.png']);
  assert.deepEqual(val.classes, ds.classes);
  assert.throws(() => holdoutPerClass(ds, 3), {
    name: 'RangeError',
    message: "Class 'c' has 3 images; holding out 3 needs at least 4",
  });
  assert.throws(() => holdoutPerClass(ds, 0), {
    name: 'RangeError',
    message: 'Expected positive integer for perClass but received 0 of type number',
  });
});

test('holdoutPerClass and subset work on image lists too', () => {
  const list: ImageListDataset = {
    images: [0, 1, 2, 3].map((v) => ({ data: Uint8Array.from([v, v, v]), height: 1, width: 1 })),
    labels: Int32Array.from([1, 1, 0, 0]),
    channels: 3,
    classes: ['x', 'y'],
  };
  const { train, val } = holdoutPerClass(list, 1);
  assert.deepEqual(
    val.images.map((im) => im.data[0]),
    [1, 3],
  );
  assert.deepEqual(
    train.images.map((im) => im.data[0]),
    [0, 2],
  );
  assert.throws(() => subset(list, [4]), { message: 'Expected indices in [0, 3] for subset but received 4' });
});
