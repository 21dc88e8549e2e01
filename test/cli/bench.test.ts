import { test } from 'node:test';
import assert from 'node:assert/strict';
import { median, timeTrainingSteps } from '../../src/train/benchmark.js';
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

test('strata bench prints the backend, the median step and the throughput', async () => {
  const r = await strata('bench', '--batch', '4', '--iters', '3', '--warmup', '0');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^backend: (native|reference)/);
  const m = /^ResNet-20 training step, batch 4: median ([\d.]+) ms over 3 steps, (\d+) images\/s$/m.exec(
    r.stdout,
  );
  assert.ok(m, r.stdout);
  assert.ok(Math.abs(Number(m[2]) - 4000 / Number(m[1])) <= 1 + 4000 / Number(m[1]) / 100, m[0]);
  assert.match(r.stderr, /step 3\/3: /);
});
