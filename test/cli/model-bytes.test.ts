import { test } from 'node:test';
import assert from 'node:assert/strict';
import { modelBytes } from '../../src/cli/model-bytes.js';
import { createModel } from '../../src/nn/models/index.js';
import { quantizeModel, quantizedLayers } from '../../src/quant/quantize-model.js';

const arch = { name: 'small-cnn', numClasses: 10, inChannels: 1 } as const;

test('modelBytes of small-cnn at 2 bits, counted layer by layer', () => {
  const model = createModel(arch);
  quantizeModel(model, { precisions: [8, 4, 2], firstLast: 'fixed', fixedBits: 8 });
  // Batch norms: weight, bias, mean, variance as float32 for 16, 32 and 64 channels.
  const norms = 4 * 4 * (16 + 32 + 64);
  const conv1 = 144 + 16 * 4; // fixed 8-bit codes + scales; the image input is not quantized
  const conv2 = (4608 * 2) / 8 + 32 * 4 + 4; // 2-bit codes + scales + activation scale
  const conv3 = (18432 * 2) / 8 + 64 * 4 + 4;
  const fc = 640 + 10 * 4 + 10 * 4 + 4; // fixed 8-bit codes + scales + bias + activation scale
  assert.equal(modelBytes(model, 2), norms + conv1 + conv2 + conv3 + fc);
});

test('each bit of the layered weights costs one eighth of a byte per weight', () => {
  const model = createModel(arch);
  quantizeModel(model, { precisions: [8, 7, 4] });
  const layered = quantizedLayers(model)
    .filter(([, l]) => l.config.role === 'layered')
    .reduce((n, [, l]) => n + l.weight.size, 0);
  assert.equal(modelBytes(model, 8) - modelBytes(model, 7), layered / 8);
  assert.equal(modelBytes(model, 8) - modelBytes(model, 4), (4 * layered) / 8);
});

test('at full precision every parameter and running statistic is float32, quantized or not', () => {
  const plain = createModel(arch);
  const statistics = 2 * (16 + 32 + 64);
  assert.equal(modelBytes(plain, null), 4 * (plain.parameterCount() + statistics));
  const quantized = createModel(arch);
  quantizeModel(quantized, { precisions: [8, 2] });
  assert.equal(modelBytes(quantized, null), modelBytes(plain, null));
});
