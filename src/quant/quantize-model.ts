import { expectIntegerIn, expectOneOf } from '../engine/check.js';
import { BatchNorm2d } from '../nn/batch-norm.js';
import { Conv2d } from '../nn/conv.js';
import { Linear } from '../nn/linear.js';
import type { Module } from '../nn/module.js';
import { CASCADE_RULES, MAX_CODE_BITS, type CascadeRule } from './cascade.js';
import { QuantizedLayer, type LayerRole } from './quantized-layer.js';
import { SwitchableBatchNorm2d } from './switchable-batch-norm.js';

export interface QuantConfig {
  /** B: the precision whose codes are stored; every other one is cut from it. */
  topBits: number;
  /** b_min: the precision of the basic layer. */
  minBits: number;
  /** The precisions the model is trained and evaluated at (a subset of [minBits, topBits]). */
  precisions: number[];
  rule: CascadeRule;
  /** Treatment of the first convolution and the last classifier. */
  firstLast: 'fixed' | 'layered' | 'float';
  /** Precision of fixed layers. */
  fixedBits: number;
}

export const DEFAULT_QUANT_CONFIG: QuantConfig = {
  topBits: 8,
  minBits: 2,
  precisions: [8, 7, 6, 5, 4, 3, 2],
  rule: 'floor',
  firstLast: 'fixed',
  fixedBits: 8,
};

export function resolveQuantConfig(partial: Partial<QuantConfig> = {}): QuantConfig {
  const c = { ...DEFAULT_QUANT_CONFIG, ...partial };
  // The kernels hold codes of at most MAX_CODE_BITS bits: a larger value must stop here, by name.
  expectIntegerIn(c.topBits, 'topBits', 2, MAX_CODE_BITS, 'quantization');
  expectIntegerIn(c.minBits, 'minBits', 1, MAX_CODE_BITS, 'quantization');
  expectIntegerIn(c.fixedBits, 'fixedBits', 2, MAX_CODE_BITS, 'quantization');
  expectOneOf(c.rule, 'rule', CASCADE_RULES, 'quantization');
  expectOneOf(c.firstLast, 'firstLast', ['fixed', 'layered', 'float'] as const, 'quantization');
  if (c.minBits > c.topBits)
    throw new RangeError(`quantization: minBits ${c.minBits} exceeds topBits ${c.topBits}`);
  if (!Array.isArray(c.precisions) || c.precisions.length === 0) {
    throw new RangeError('quantization: precisions must list at least one bit-width');
  }
  const precisions = [...new Set(c.precisions)].sort((a, b) => b - a);
  for (const b of precisions) {
    if (!Number.isInteger(b) || b < c.minBits || b > c.topBits) {
      throw new RangeError(`Expected precisions in [${c.minBits}, ${c.topBits}] but received ${b}`);
    }
  }
  return { ...c, precisions };
}

interface Slot {
  parent: Module;
  name: string;
  module: Module;
}

/** Every (parent, child) edge in depth-first pre-order, so the first weighted slot is the input layer. */
function slots(model: Module): Slot[] {
  const out: Slot[] = [];
  const visit = (parent: Module): void => {
    for (const [name, module] of parent.namedChildren()) {
      out.push({ parent, name, module });
      visit(module);
    }
  };
  visit(model);
  return out;
}

/**
 * Turns a (full-precision, possibly trained) model into a quantization-aware one in place: every
 * Conv2d and Linear is wrapped by a QuantizedLayer sharing its parameters, and every BatchNorm2d
 * becomes a SwitchableBatchNorm2d with one copy per precision. The first layer and the last
 * classifier get `config.firstLast`.
 */
export function quantizeModel(
  model: Module,
  partial: Partial<QuantConfig> = {},
  options: { initScales?: boolean } = {},
): QuantConfig {
  const config = resolveQuantConfig(partial);
  const all = slots(model);
  const weighted = all.filter((s) => s.module instanceof Conv2d || s.module instanceof Linear);
  if (weighted.length === 0) throw new RangeError('quantizeModel: the model has no Conv2d or Linear layer');
  const first = weighted[0].module;
  const last = weighted[weighted.length - 1].module;
  for (const s of all) {
    if (s.module instanceof Conv2d || s.module instanceof Linear) {
      const edge = s.module === first || s.module === last;
      const role: LayerRole = edge
        ? config.firstLast === 'layered'
          ? 'layered'
          : config.firstLast
        : 'layered';
      const layer = new QuantizedLayer(
        s.module,
        {
          role,
          topBits: config.topBits,
          rule: config.rule,
          fixedBits: config.fixedBits,
          quantizeInput: s.module !== first,
        },
        config.precisions,
        { initScale: options.initScales !== false },
      );
      s.parent.replaceChild(s.name, layer);
    } else if (s.module instanceof BatchNorm2d) {
      s.parent.replaceChild(s.name, new SwitchableBatchNorm2d(s.module, config.precisions));
    }
  }
  return config;
}

export function quantizedLayers(model: Module): [string, QuantizedLayer][] {
  return model.namedModules().filter((e): e is [string, QuantizedLayer] => e[1] instanceof QuantizedLayer);
}

export function switchableNorms(model: Module): [string, SwitchableBatchNorm2d][] {
  return model
    .namedModules()
    .filter((e): e is [string, SwitchableBatchNorm2d] => e[1] instanceof SwitchableBatchNorm2d);
}

/** Keeps every quantizer step size positive; an optimizer step can push a small one below zero. */
export function clampQuantizerScales(model: Module): void {
  for (const [, layer] of quantizedLayers(model)) layer.clampScales();
}

/** Runs the model at `bits` from now on (null: full precision, quantizers bypassed). */
export function setPrecision(model: Module, bits: number | null): void {
  for (const [, layer] of quantizedLayers(model)) {
    if (bits !== null && !layer.hasPrecision(bits)) {
      throw new RangeError(`The model has no ${bits}-bit activation scales; call ensurePrecision first`);
    }
    layer.bits = bits;
  }
  for (const [, bn] of switchableNorms(model)) {
    if (bits !== null && !bn.has(bits))
      throw new RangeError(`The model has no ${bits}-bit batch norm; call ensurePrecision first`);
    bn.bits = bits;
  }
}

/**
 * Makes a precision the model was not trained at runnable by cutting it from the cascade: batch
 * norms copied from the nearest trained higher precision, activation scales stretched to the same
 * range. This is how the "adapted" baseline derives its lower precisions.
 */
export function ensurePrecision(model: Module, bits: number): void {
  for (const [, bn] of switchableNorms(model)) {
    if (bn.has(bits)) continue;
    const higher = bn.precisions.filter((b) => b > bits).sort((a, b) => a - b)[0] ?? bn.precisions[0];
    bn.addPrecision(bits, higher === undefined ? bn.float : bn.at(higher));
  }
  for (const [, layer] of quantizedLayers(model)) {
    const b = layer.effectiveBits(bits);
    if (b !== null && layer.config.quantizeInput) layer.addActScale(b);
  }
}

export function modelPrecisions(model: Module): number[] {
  const norms = switchableNorms(model);
  if (norms.length > 0) return norms[0][1].precisions;
  const layered = quantizedLayers(model).find(([, l]) => l.config.role === 'layered');
  return layered ? layered[1].activationPrecisions : [];
}
