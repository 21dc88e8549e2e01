import { test } from 'node:test';
import assert from 'node:assert/strict';
import { median, timeTrainingSteps, trainingStepFlops } from '../../src/train/benchmark.js';
import { strata } from './helpers.js';

test('median of odd and even counts', () => {
  assert.equal(median([5, 1, 3]), 3);
  assert.equal(median([4, 1, 3, 2]), 2.5);
});

test('timeTrainingSteps measures only the steps after the warm-up', () => {
  const seen: number[] = [];
  const timing = timeTrainingSteps(2, 2, 1, (step) => seen.push(step));
  assert.deepEqual(seen, [1, 2, 3]);
  assert.equal(timing.times.length, 2);
  assert.equal(timing.medianMs, median(timing.times));
  assert.equal(timing.imagesPerSecond, 2000 / timing.medianMs);
});

test('trainingStepFlops counts the ResNet-20 arithmetic layer by layer', () => {
  // Forward multiply-accumulates per image, from the architecture: stem, three stages of three
  // basic blocks (two 3x3 convolutions each, the first of stages 2 and 3 with stride 2 and a 1x1
  // projection shortcut), then the 64 -> 10 classifier.
  const conv = (hw: number, out: number, inC: number, k: number) => hw * hw * out * inC * k * k;
  const stem = conv(32, 16, 3, 3);
  const stage1 = 6 * conv(32, 16, 16, 3);
  const stage2 = conv(16, 32, 16, 3) + 5 * conv(16, 32, 32, 3) + conv(16, 32, 16, 1);
  const stage3 = conv(8, 64, 32, 3) + 5 * conv(8, 64, 64, 3) + conv(8, 64, 32, 1);
  const forward = stem + stage1 + stage2 + stage3 + 64 * 10;
  // Backward: weight gradients everywhere, input gradients everywhere but the stem (its input is data).
  const perImage = 2 * (forward + forward + (forward - stem));
  assert.equal(trainingStepFlops(1), perImage);
  assert.equal(trainingStepFlops(128), 128 * perImage);
});

test('strata bench prints the backend, the median step and the throughput', async () => {
  const r = await strata('bench', '--batch', '4', '--iters', '3', '--warmup', '0');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^backend: (native|reference)/);
  const m = /^ResNet-20 training step, batch 4: median ([\d.]+) ms over 3 steps, (\d+) images\/s$/m.exec(
    r.stdout,
  );
  assert.ok(m, r.stdout);
  assert.ok(Math.abs(Number(m[2]) - 4000 / Number(m[1])) <= 1 + 4000 / Number(m[1]) / 100, m[0]);
  assert.match(r.stdout, /^arithmetic: 0\.98 GFLOP per step .* [\d.]+ GFLOP\/s achieved$/m);
  assert.match(r.stderr, /step 3\/3: /);
});
