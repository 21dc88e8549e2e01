import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getBackend } from '../../src/engine/backend-registry.js';
import { noGrad } from '../../src/engine/autograd.js';
import { scope } from '../../src/engine/memory.js';
import { Random } from '../../src/engine/random.js';
import { Tensor } from '../../src/engine/tensor.js';
import { inspectStrata, readStrata, writeStrata } from '../../src/format/index.js';
import { manualSeed } from '../../src/nn/init.js';
import { createModel, type Architecture } from '../../src/nn/models/index.js';
import type { Module } from '../../src/nn/module.js';
import { composeBitPlanes, decomposeBitPlanes } from '../../src/quant/bit-planes.js';
import { modelFromStrata, toStrataContent } from '../../src/export/strata-model.js';
import { quantizeModel, quantizedLayers, setPrecision } from '../../src/quant/quantize-model.js';
import { resolveTrainConfig } from '../../src/train/config.js';
import { trainStep } from '../../src/train/trainer.js';
import { SGD } from '../../src/train/optim.js';

const arch: Architecture = { name: 'small-cnn', numClasses: 4, inChannels: 1, width: 8 };

/** A small once-QAT model trained for a few steps on synthetic data (so scales and BN moved). */
function trainedModel(): { model: Module; x: Tensor; quant: ReturnType<typeof quantizeModel> } {
  manualSeed(1);
  const rng = new Random(1);
  const model = createModel(arch);
  const quant = quantizeModel(model, { precisions: [8, 6, 4, 3, 2] });
  const config = resolveTrainConfig({ model: 'small-cnn', mode: 'once', bits: [8, 6, 4, 3, 2], lr: 0.05 });
  const opt = new SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
  const x = Tensor.randn([16, 12, 12, 1], rng);
  const labels = Int32Array.from({ length: 16 }, (_, i) => i % 4);
  for (let step = 0; step < 6; step++) trainStep(model, opt, config, x.data, [16, 12, 12, 1], labels, step);
  model.eval();
  return { model, x, quant };
}

function logitsAt(model: Module, x: Tensor, bits: number): Float32Array {
  setPrecision(model, bits);
  return noGrad(() => scope(() => Float32Array.from(model.forward(x).data)));
}

test('the exactness property holds on every tensor of a trained model', () => {
  const { model, quant } = trainedModel();
  let checked = 0;
  for (const [path, layer] of quantizedLayers(model)) {
    if (layer.config.role !== 'layered') continue;
    const w = layer.weight;
    const top = new Int32Array(w.size);
    getBackend().fakeQuantWeightForward(
      w.data,
      w.shape[0],
      layer.weightScale!.data,
      quant.topBits,
      quant.topBits,
      quant.rule,
      new Float32Array(w.size),
      top,
    );
    const planes = decomposeBitPlanes(top, quant.topBits, quant.minBits, quant.rule);
    for (let b = quant.minBits; b <= quant.topBits; b++) {
      const seen = new Int32Array(w.size);
      getBackend().fakeQuantWeightForward(
        w.data,
        w.shape[0],
        layer.weightScale!.data,
        quant.topBits,
        b,
        quant.rule,
        new Float32Array(w.size),
        seen,
      );
      assert.deepEqual(composeBitPlanes(planes, b), seen, `${path} at ${b} bits`);
      checked++;
    }
  }
  assert.equal(checked, 7 * 2); // two layered convolutions (first conv and classifier are fixed 8-bit)
});

test('a prefix of the file up to the offset info names for b bits is the b-bit model', () => {
  const { model, x, quant } = trainedModel();
  const bytes = writeStrata(toStrataContent(model, arch, quant));
  const info = inspectStrata(bytes);
  assert.deepEqual(
    info.precisions.map((p) => p.bits),
    [2, 3, 4, 5, 6, 7, 8],
  );
  for (const { bits, completeAt } of info.precisions) {
    const fromPrefix = modelFromStrata(readStrata(bytes.subarray(0, completeAt)));
    assert.equal(fromPrefix.bits, bits);
    const fromFull = modelFromStrata(readStrata(bytes, { bits }));
    const a = logitsAt(fromPrefix.model, x, bits);
    assert.deepEqual(a, logitsAt(fromFull.model, x, bits), `prefix vs full file at ${bits} bits`);
    // ...and it is the model training saw at that precision.
    const trained = logitsAt(model, x, bits);
    let scale = 1e-3;
    for (const v of trained) scale = Math.max(scale, Math.abs(v));
    a.forEach((v, i) =>
      assert.ok(Math.abs(v - trained[i]) <= 1e-4 * scale, `${bits} bits logit ${i}: ${v} vs ${trained[i]}`),
    );
    if (bits > 2) assert.equal(readStrata(bytes.subarray(0, completeAt - 1)).bits, bits - 1);
  }
});
