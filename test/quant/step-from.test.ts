import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backward } from '../../src/engine/autograd.js';
import { scope } from '../../src/engine/memory.js';
import { Random } from '../../src/engine/random.js';
import { Tensor } from '../../src/engine/tensor.js';
import { Linear } from '../../src/nn/linear.js';
import { QuantizedLayer } from '../../src/quant/quantized-layer.js';

/** The gradient of the shared top step from one precision's weights, for a set of teaching precisions. */
function stepGradient(bits: number, learnsFrom: ReadonlySet<number> | null): Float32Array {
  const rng = new Random(5);
  const inner = new Linear(16, 3);
  inner.weight.data.set(Tensor.randn([3, 16], rng).data);
  const config = {
    role: 'layered' as const,
    topBits: 8,
    rule: 'floor' as const,
    fixedBits: 8,
    quantizeInput: false,
  };
  const layer = new QuantizedLayer(inner, config, [8, 4, 2]);
  layer.stepLearnsFrom = learnsFrom;
  const probe = Tensor.randn([3, 16], rng);
  // The probe is the upstream gradient: d(sum(w_q * probe)) / d s_B.
  scope(() => backward(layer.quantizedWeight(bits), probe));
  return Float32Array.from(layer.weightScale!.grad!.data);
}

test('the shared step learns only from the precisions named in stepLearnsFrom', () => {
  for (const bits of [8, 4, 2]) {
    const all = stepGradient(bits, null);
    assert.ok(
      all.some((g) => g !== 0),
      `the ${bits}-bit probe reaches the step`,
    );
    const lowest = stepGradient(bits, new Set([2]));
    if (bits === 2) assert.deepEqual(lowest, all);
    else
      assert.ok(
        lowest.every((g) => g === 0),
        `no ${bits}-bit gradient when only 2 bits teach the step`,
      );
    assert.ok(stepGradient(bits, new Set()).every((g) => g === 0));
  }
});
