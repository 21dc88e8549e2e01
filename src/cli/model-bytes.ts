/**
 * What a network needs in memory to run at one precision, counted from its layers: the storage a
 * device holding only that precision would need, not the training footprint.
 *
 * - full precision (bits null): every parameter and running statistic as float32;
 * - b bits: each layered weight at b bits (packed, rounded up to whole bytes per tensor), fixed
 *   layers at their fixed precision, float layers as float32, plus float32 per-channel weight scales,
 *   biases, input-activation scales and the b-bit batch norms (weight, bias, mean, variance).
 */
import { BatchNorm2d } from '../nn/batch-norm.js';
import type { Module } from '../nn/module.js';
import { QuantizedLayer } from '../quant/quantized-layer.js';
import { SwitchableBatchNorm2d } from '../quant/switchable-batch-norm.js';

const FLOAT_BYTES = 4;

function batchNormBytes(bn: BatchNorm2d): number {
  return 4 * bn.numFeatures * FLOAT_BYTES;
}

function layerBytes(layer: QuantizedLayer, bits: number): number {
  const weights = layer.weight.size;
  const bias = layer.bias === null ? 0 : layer.bias.size * FLOAT_BYTES;
  const effective = layer.effectiveBits(bits);
  if (effective === null) return weights * FLOAT_BYTES + bias;
  const codes = Math.ceil((weights * effective) / 8);
  const scales = layer.weight.shape[0] * FLOAT_BYTES;
  const activation = layer.config.quantizeInput ? FLOAT_BYTES : 0;
  return codes + scales + bias + activation;
}

/** Bytes to run `model` at `bits` (null: full precision). */
export function modelBytes(model: Module, bits: number | null): number {
  let total = 0;
  const visit = (module: Module): void => {
    if (module instanceof QuantizedLayer) {
      total +=
        bits === null
          ? module.weight.size * FLOAT_BYTES + (module.bias?.size ?? 0) * FLOAT_BYTES
          : layerBytes(module, bits);
      return;
    }
    if (module instanceof SwitchableBatchNorm2d) {
      total += batchNormBytes(module.at(bits));
      return;
    }
    if (module instanceof BatchNorm2d) {
      total += batchNormBytes(module);
      return;
    }
    const children = module.namedChildren();
    if (children.length === 0) {
      // Plain layers (an unquantized Conv2d or Linear, pooling): their own float32 state.
      for (const [, t] of module.stateDict()) total += t.size * FLOAT_BYTES;
      return;
    }
    for (const [, child] of children) visit(child);
  };
  visit(model);
  return total;
}
