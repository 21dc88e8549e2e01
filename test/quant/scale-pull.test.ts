import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backward } from '../../src/engine/autograd.js';
import { scope } from '../../src/engine/memory.js';
import { Random } from '../../src/engine/random.js';
import { Tensor } from '../../src/engine/tensor.js';
import { Linear } from '../../src/nn/linear.js';
import { QuantizedLayer } from '../../src/quant/quantized-layer.js';

/** The gradient of the shared top step from one precision's loss, for a given pull. */
function stepGradient(bits: number, pull: number): Float32Array {
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
  layer.scalePull = pull;
  const probe = Tensor.randn([3, 16], rng);
  // The probe is the upstream gradient: d(sum(w_q * probe)) / d s_B.
  scope(() => backward(layer.quantizedWeight(bits), probe));
  return Float32Array.from(layer.weightScale!.grad!.data);
}

test('scalePull multiplies the step gradient from b bits by 2^(pull (B - b))', () => {
  for (const [bits, pull] of [
    [2, 1],
    [4, 2],
    [8, 2],
  ] as const) {
    const base = stepGradient(bits, 0);
    const pulled = stepGradient(bits, pull);
    const factor = 2 ** (pull * (8 - bits));
    assert.ok(
      base.some((g) => g !== 0),
      'the probe reaches the step',
    );
    base.forEach((g, i) =>
      assert.ok(Math.abs(pulled[i] - g * factor) <= 1e-5 * Math.abs(g * factor) + 1e-12),
    );
  }
});
