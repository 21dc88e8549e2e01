import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Random } from '../../src/engine/random.js';
import type { RawImage, TransformSpec } from '../../src/data/index.js';
import {
  applyGeometric,
  centerCrop,
  cifarTrainTransforms,
  imagenetEvalTransforms,
  normalize,
  outputSize,
  randomCrop,
  randomHorizontalFlip,
  randomResizedCrop,
  resize,
  resizeBilinear,
  transformInto,
} from '../../src/data/index.js';
import { rgbImage } from './fixtures.js';

const grey = (height: number, width: number, values: number[]): RawImage => ({
  data: Uint8Array.from(values),
  height,
  width,
});

/** Window (top, left) of size h x w from the image zero-padded infinitely. */
function window(image: RawImage, top: number, left: number, h: number, w: number): number[] {
  const out: number[] = [];
  for (let y = top; y < top + h; y++) {
    for (let x = left; x < left + w; x++) {
      const inside = y >= 0 && x >= 0 && y < image.height && x < image.width;
      out.push(inside ? image.data[y * image.width + x] : 0);
    }
  }
  return out;
}

test('randomCrop with zero padding picks the window its generator draws, covering every offset', () => {
  const image = grey(3, 3, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const seen = new Set<string>();
  for (let seed = 0; seed < 200; seed++) {
    const out = applyGeometric(image, 1, [randomCrop(3, 1)], new Random(seed));
    const replay = new Random(seed);
    const top = replay.int(3) - 1;
    const left = replay.int(3) - 1;
    assert.deepEqual(Array.from(out.data), window(image, top, left, 3, 3), `seed ${seed}`);
    seen.add(`${top},${left}`);
  }
  assert.equal(seen.size, 9);
  assert.throws(() => applyGeometric(image, 1, [randomCrop(6, 1)], new Random(0)), {
    name: 'RangeError',
    message: 'randomCrop of 6x6 does not fit a 3x3 image padded by 1',
  });
});

test('horizontal flip mirrors each row and keeps channels together', () => {
  const image: RawImage = {
    data: Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]),
    height: 2,
    width: 3,
  };
  // 2 channels: pixels (1,2) (3,4) (5,6) / (7,8) (9,10) (11,12)
  const twoChannel = { ...image, width: 3 };
  const flipped = applyGeometric(twoChannel, 2, [randomHorizontalFlip(1)], new Random(1));
  assert.deepEqual(Array.from(flipped.data), [5, 6, 3, 4, 1, 2, 11, 12, 9, 10, 7, 8]);
  const kept = applyGeometric(twoChannel, 2, [randomHorizontalFlip(0)], new Random(1));
  assert.deepEqual(Array.from(kept.data), Array.from(image.data));
  let flips = 0;
  for (let seed = 0; seed < 400; seed++) {
    const out = applyGeometric(twoChannel, 2, [randomHorizontalFlip()], new Random(seed));
    if (out.data[0] === 5) flips++;
  }
  assert.ok(flips > 150 && flips < 250, `p=0.5 flipped ${flips} of 400`);
  assert.throws(() => randomHorizontalFlip(1.5), {
    name: 'RangeError',
    message: 'Expected probability in [0, 1] but received 1.5',
  });
});

test('bilinear resize: half-pixel centres, edge clamp, antialiased shrink, regions', () => {
  assert.deepEqual(Array.from(resizeBilinear(grey(1, 2, [0, 100]), 1, 1, 4).data), [0, 25, 75, 100]);
  const row = grey(1, 4, [0, 100, 200, 100]);
  assert.deepEqual(Array.from(resizeBilinear(row, 1, 1, 2, undefined, false).data), [50, 150]);
  // Triangle of half-width 2 input pixels: (0.75*0 + 0.75*100 + 0.25*200) / 1.75 and (0.25*100 + 0.75*200 + 0.75*100) / 1.75.
  assert.deepEqual(Array.from(resizeBilinear(row, 1, 1, 2).data), [71, 143]);
  const flat = { data: new Uint8Array(5 * 7 * 3).fill(77), height: 5, width: 7 };
  assert.ok(resizeBilinear(flat, 3, 11, 3).data.every((v) => v === 77));
  const big = { data: rgbImage(9, 8, 4), height: 9, width: 8 };
  const cropped = applyGeometric(big, 3, [centerCrop([5, 4])], new Random(0));
  const direct = resizeBilinear(big, 3, 3, 6, { top: 2, left: 2, height: 5, width: 4 });
  assert.deepEqual(direct.data, resizeBilinear(cropped, 3, 3, 6).data);
  assert.throws(() => resizeBilinear(big, 3, 2, 2, { top: 5, left: 0, height: 5, width: 2 }), {
    message: 'Resize region 5x2 at (5, 0) is outside the 9x8 image',
  });
});

test('centerCrop, resize and the ImageNet evaluation pipeline', () => {
  const image = grey(
    4,
    4,
    Array.from({ length: 16 }, (_, i) => i + 1),
  );
  assert.deepEqual(Array.from(applyGeometric(image, 1, [centerCrop(2)], new Random(0)).data), [6, 7, 10, 11]);
  const small = grey(2, 2, [1, 2, 3, 4]);
  assert.deepEqual(
    Array.from(applyGeometric(small, 1, [centerCrop(4)], new Random(0)).data),
    [0, 0, 0, 0, 0, 1, 2, 0, 0, 3, 4, 0, 0, 0, 0, 0],
  );
  const wide = { data: rgbImage(4, 9, 1), height: 4, width: 9 };
  const resized = applyGeometric(wide, 3, [resize(2)], new Random(0));
  assert.deepEqual([resized.height, resized.width], [2, 4]);
  assert.deepEqual(outputSize([resize(2)], 4, 9), [2, 4]);
  const pipeline = imagenetEvalTransforms(14);
  const odd = { data: rgbImage(37, 21, 2), height: 37, width: 21 };
  const out = new Float32Array(14 * 14 * 3);
  transformInto(odd, 3, pipeline, new Random(0), out, 0, 14, 14, 'odd.jpg');
  assert.ok(out.every(Number.isFinite));
  assert.throws(() => transformInto(odd, 3, [resize(16)], new Random(0), out, 0, 14, 14, 'odd.jpg'), {
    message:
      'odd.jpg came out of the transforms as 28x16 but the batch is 14x14; end the pipeline with a crop ' +
      '(centerCrop, randomCrop or randomResizedCrop) to make sizes equal',
  });
});

test('randomResizedCrop: fixed output size, reproducible per seed, whole image at scale 1 ratio 1', () => {
  const image = { data: rgbImage(20, 20, 3), height: 20, width: 20 };
  const spec = randomResizedCrop(8);
  const a = applyGeometric(image, 3, [spec], new Random(5));
  const b = applyGeometric(image, 3, [spec], new Random(5));
  const c = applyGeometric(image, 3, [spec], new Random(6));
  assert.deepEqual([a.height, a.width], [8, 8]);
  assert.deepEqual(a.data, b.data);
  assert.notDeepEqual(a.data, c.data);
  const whole = applyGeometric(
    image,
    3,
    [randomResizedCrop(8, { scale: [1, 1], ratio: [1, 1] })],
    new Random(9),
  );
  assert.deepEqual(whole.data, resizeBilinear(image, 3, 8, 8).data);
  // Impossible ratios fall back to a centre crop clamped to the ratio range.
  const tall = { data: rgbImage(30, 3, 1), height: 30, width: 3 };
  const fallback = applyGeometric(
    tall,
    3,
    [randomResizedCrop(4, { scale: [0.9, 1], ratio: [1, 1] })],
    new Random(2),
  );
  assert.deepEqual(
    fallback.data,
    resizeBilinear(tall, 3, 4, 4, { top: 13, left: 0, height: 3, width: 3 }).data,
  );
  assert.throws(() => randomResizedCrop(8, { scale: [0.5, 0.1] }), { name: 'RangeError' });
});

test('normalize scales to [0, 1] then applies per-channel mean and std', () => {
  const image: RawImage = { data: Uint8Array.from([255, 0, 51, 0, 255, 102]), height: 1, width: 2 };
  const out = new Float32Array(6);
  const specs: TransformSpec[] = [normalize([0.5, 0, 0.2], [0.25, 1, 0.1])];
  transformInto(image, 3, specs, new Random(0), out, 0, 1, 2, 'x');
  const expected = [(1 - 0.5) / 0.25, 0, (0.2 - 0.2) / 0.1, (0 - 0.5) / 0.25, 1, (0.4 - 0.2) / 0.1];
  out.forEach((v, i) => assert.ok(Math.abs(v - expected[i]) < 1e-5, `${i}: ${v} vs ${expected[i]}`));
  const plain = new Float32Array(6);
  transformInto(image, 3, [], new Random(0), plain, 0, 1, 2, 'x');
  assert.ok(Math.abs(plain[2] - 0.2) < 1e-7);
  assert.throws(() => normalize([0.5], [0]), {
    name: 'RangeError',
    message: 'Expected std values in (0, inf) but received 0',
  });
  assert.throws(() => randomCrop(0), {
    name: 'TypeError',
    message: 'Expected positive integer for size but received 0 of type number',
  });
  assert.equal(cifarTrainTransforms().length, 3);
});
