/**
 * Between a trained quantization-aware model and the `.strata` file: `toStrataContent` cuts every
 * layered weight into its top codes (the bit-planes are made by the format writer), and
 * `modelFromStrata` rebuilds a network that computes at the precision a file (or a prefix of it)
 * holds, with exactly the file's weights.
 */
import { getBackend } from '../engine/backend-registry.js';
import { keep } from '../engine/memory.js';
import { Tensor } from '../engine/tensor.js';
import type { StrataModelContent, StrataReadResult, PlainTensor } from '../format/types.js';
import { describeValue, expectBoundedInteger, InvalidInputError } from '../engine/limits.js';
import {
  checkArchitecture,
  classifierFeatures,
  createModel,
  graphWeightShapes,
  type Architecture,
  type GraphSpec,
} from '../nn/models/index.js';
import { MAX_CODE_BITS, reconstructionOffset } from '../quant/cascade.js';
import { withoutInit } from '../nn/init.js';
import type { Module } from '../nn/module.js';
import {
  clampQuantizerScales,
  ensurePrecision,
  quantizeModel,
  quantizedLayers,
  setPrecision,
  switchableNorms,
  type QuantConfig,
} from '../quant/quantize-model.js';
import type { DeployedCodes, QuantizedLayer } from '../quant/quantized-layer.js';

/**
 * The codes of a fixed layer, whose file holds its dequantized values and step sizes: each value is
 * float32((q + offset) s), so q = round(value / s - offset); every value is checked to reproduce.
 */
function fixedCodes(
  values: Float32Array,
  steps: Float32Array,
  bits: number,
  rule: QuantConfig['rule'],
  where: { source: string; tensor: string; channels: number },
): DeployedCodes {
  if (steps.length !== where.channels || values.length % where.channels !== 0) {
    throw new InvalidInputError(
      where.source,
      `tensor '${where.tensor}.weightScale'`,
      `needs one step per output channel (${where.channels})`,
      String(steps.length),
    );
  }
  const offset = reconstructionOffset(bits, bits, rule);
  const per = values.length / steps.length;
  const codes = new Int32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const s = steps[Math.floor(i / per)];
    codes[i] = Math.round(values[i] / s - offset);
    if (Math.fround((codes[i] + offset) * s) !== values[i]) {
      throw new InvalidInputError(
        where.source,
        `tensor '${where.tensor}.weight'`,
        `value ${i} is not (code + ${offset}) * step at ${bits} bits`,
        String(values[i]),
      );
    }
  }
  return { bits, codes, steps: Float32Array.from(steps), offset };
}

/** (code + offset) * step of its output channel, for each code of an [O, ...] weight. */
function dequantize(codes: Int32Array, steps: Float32Array, offset: number): Float32Array {
  const values = new Float32Array(codes.length);
  const per = codes.length / steps.length;
  for (let c = 0; c < steps.length; c++) {
    const step = steps[c];
    for (let i = c * per; i < (c + 1) * per; i++) values[i] = (codes[i] + offset) * step;
  }
  return values;
}

/** Everything a precision needs besides the layered weights: its batch norms and activation scales. */
function precisionParams(model: Module, bits: number): PlainTensor[] {
  const out: PlainTensor[] = [];
  for (const [path, bn] of switchableNorms(model)) {
    for (const [name, t] of bn.at(bits).stateDict()) {
      out.push({ name: `${path}.bn.${name}`, shape: [...t.shape], data: Float32Array.from(t.data) });
    }
  }
  for (const [path, layer] of quantizedLayers(model)) {
    if (layer.config.role !== 'layered' || !layer.config.quantizeInput) continue;
    out.push({ name: `${path}.actScale`, shape: [1], data: Float32Array.of(layer.activationScale(bits)!) });
  }
  return out;
}

function weightCodes(layer: QuantizedLayer, bits: number): { codes: Int32Array; values: Float32Array } {
  const w = layer.weight;
  const codes = new Int32Array(w.size);
  const values = new Float32Array(w.size);
  getBackend().fakeQuantWeightForward(
    w.data,
    w.shape[0],
    layer.weightScale!.data,
    layer.topBits,
    bits,
    layer.config.rule,
    values,
    codes,
  );
  return { codes, values };
}

export interface PackOptions {
  /** Precisions trained (recorded in the metadata); the others are derived by ensurePrecision. */
  trained?: number[];
  metadata?: Record<string, unknown>;
}

/**
 * The content of a `.strata` file for a quantization-aware model: layered weights as top codes and
 * per-channel scales, fixed layers as float32 (dequantized at their fixed precision), and per
 * precision b_min..B the switchable batch norms and activation scales.
 */
export function toStrataContent(
  model: Module,
  architecture: Architecture,
  quant: QuantConfig,
  options: PackOptions = {},
): StrataModelContent {
  for (let b = quant.minBits; b <= quant.topBits; b++) ensurePrecision(model, b);
  clampQuantizerScales(model);
  const layered: StrataModelContent['layered'] = [];
  const fixed: PlainTensor[] = [];
  for (const [path, layer] of quantizedLayers(model)) {
    const shape = [...layer.weight.shape];
    if (layer.config.role === 'layered') {
      layered.push({
        name: `${path}.weight`,
        shape,
        topCodes: weightCodes(layer, layer.topBits).codes,
        scales: Float32Array.from(layer.weightScale!.data),
      });
    } else {
      const data =
        layer.config.role === 'fixed'
          ? weightCodes(layer, layer.config.fixedBits).values
          : Float32Array.from(layer.weight.data);
      fixed.push({ name: `${path}.weight`, shape, data });
    }
    if (layer.bias !== null)
      fixed.push({
        name: `${path}.bias`,
        shape: [...layer.bias.shape],
        data: Float32Array.from(layer.bias.data),
      });
    fixed.push({
      name: `${path}.actState`,
      shape: [2],
      data: Float32Array.from(layer.stateDict().get('actState')!.data),
    });
    if (layer.config.role === 'fixed') {
      // The step sizes of the fixed codes, so a deployment reads the codes back instead of guessing them.
      fixed.push({
        name: `${path}.weightScale`,
        shape: [layer.weightScale!.size],
        data: Float32Array.from(layer.weightScale!.data),
      });
    }
    if (layer.config.role === 'fixed' && layer.config.quantizeInput) {
      fixed.push({
        name: `${path}.actScale`,
        shape: [1],
        data: Float32Array.of(layer.activationScale(layer.config.fixedBits)!),
      });
    }
  }
  const perPrecision = new Map<number, PlainTensor[]>();
  for (let b = quant.minBits; b <= quant.topBits; b++) perPrecision.set(b, precisionParams(model, b));
  return {
    architecture: { ...architecture },
    quantization: {
      topBits: quant.topBits,
      minBits: quant.minBits,
      rule: quant.rule,
      firstLast: quant.firstLast,
      fixedBits: quant.fixedBits,
      trained: options.trained ?? quant.precisions,
    },
    layered,
    fixed,
    perPrecision,
    ...(options.metadata ? { metadata: options.metadata } : {}),
  };
}

const FIRST_LAST = ['fixed', 'layered', 'float'] as const;

/**
 * The quantization keys a rebuilt model needs beyond what the format checks (topBits, minBits and
 * rule are the reader's): how the first and last layers are treated and at which precision.
 */
function checkQuantization(header: StrataReadResult['header'], source: string): QuantConfig {
  const q = header.quantization as unknown as Record<string, unknown>;
  if (typeof q.firstLast !== 'string' || !(FIRST_LAST as readonly string[]).includes(q.firstLast)) {
    throw new InvalidInputError(
      source,
      'quantization.firstLast',
      `is not one of ${FIRST_LAST.join(', ')}`,
      describeValue(q.firstLast),
    );
  }
  const fixedBits = expectBoundedInteger(q.fixedBits, source, 'quantization.fixedBits', 2, MAX_CODE_BITS);
  return {
    topBits: header.quantization.topBits,
    minBits: header.quantization.minBits,
    precisions: [],
    rule: header.quantization.rule,
    firstLast: q.firstLast as QuantConfig['firstLast'],
    fixedBits,
  };
}

/**
 * Compares the architecture with the file's tensor table before the network is built: the
 * classifier's weight must be in the file with the shape [numClasses, features] the architecture
 * implies. Its values are in the file, so the class count and width are bounded by the file's size
 * (a header claiming 10^7 classes over a small table once took minutes and gigabytes to refuse).
 */
function checkClassifier(read: StrataReadResult, architecture: Architecture, source: string): void {
  if (architecture.graph !== undefined) return checkGraphTensors(read, architecture.graph, source);
  const name = 'fc.weight';
  const entry = read.layered.find((t) => t.name === name) ?? read.fixed.find((t) => t.name === name);
  const expected = [architecture.numClasses, classifierFeatures(architecture)];
  if (entry === undefined) {
    throw new InvalidInputError(
      source,
      `tensor '${name}'`,
      `is missing (${architecture.name} needs [${expected.join(', ')}])`,
      '',
    );
  }
  if (entry.shape.length !== 2 || entry.shape[0] !== expected[0] || entry.shape[1] !== expected[1]) {
    throw new InvalidInputError(
      source,
      `tensor '${name}' shape`,
      `does not match architecture ${JSON.stringify(architecture)}, which needs [${expected.join(', ')}]`,
      `[${entry.shape.join(', ')}]`,
    );
  }
}

/** Every Conv and Linear of an imported graph has its weight in the file, with the shape the graph implies. */
function checkGraphTensors(read: StrataReadResult, graph: GraphSpec, source: string): void {
  for (const [name, expected] of graphWeightShapes(graph)) {
    const entry = read.layered.find((t) => t.name === name) ?? read.fixed.find((t) => t.name === name);
    if (entry === undefined || entry.shape.join(',') !== expected.join(',')) {
      throw new InvalidInputError(
        source,
        `tensor '${name}' shape`,
        `does not match the imported graph, which needs [${expected.join(', ')}]`,
        entry === undefined ? 'missing' : `[${entry.shape.join(', ')}]`,
      );
    }
  }
}

/**
 * A model that runs at the precision `read` holds, with the file's exact weights. Everything the
 * file says is checked against the limits and the tensor table before anything is allocated; a
 * refusal is an InvalidInputError naming `source` (the file), the field, the limit and the value.
 */
export function modelFromStrata(
  read: StrataReadResult,
  source = 'model file',
): {
  model: Module;
  bits: number;
  architecture: Architecture;
} {
  const { header, bits } = read;
  const architecture = checkArchitecture(header.architecture, source);
  const q = checkQuantization(header, source);
  checkClassifier(read, architecture, source);
  // Every weight comes from the file: no random initialisation to draw first.
  const model = withoutInit(() => createModel(architecture));
  // The file supplies every weight (deployedWeight), so the step-size search would be wasted.
  quantizeModel(model, { ...q, precisions: [bits] }, { initScales: false });
  const byName = new Map<string, Float32Array>();
  for (const t of [...read.fixed, ...read.perPrecision]) byName.set(t.name, t.data);
  const take = (name: string): Float32Array => {
    const v = byName.get(name);
    if (v === undefined)
      throw new InvalidInputError(
        source,
        `tensor '${name}'`,
        `is missing (${architecture.name} needs it)`,
        '',
      );
    return v;
  };
  // A tensor of the wrong size would leave part of a buffer stale (too short) or throw a RangeError
  // from TypedArray.set (too long); either way the file does not describe this network.
  const fill = (target: Float32Array, name: string): void => {
    const v = take(name);
    if (v.length !== target.length)
      throw new InvalidInputError(
        source,
        `tensor '${name}'`,
        `values do not match the ${target.length} ${architecture.name} needs`,
        String(v.length),
      );
    target.set(v);
  };
  const layeredByName = new Map(read.layered.map((l) => [l.name, l]));
  for (const [path, layer] of quantizedLayers(model)) {
    const name = `${path}.weight`;
    const entry = layeredByName.get(name);
    let weights: Float32Array;
    let codes: DeployedCodes | null = null;
    if (entry !== undefined) {
      const offset = reconstructionOffset(q.topBits, bits, q.rule);
      weights = dequantize(entry.codes, entry.scales, offset);
      codes = { bits, codes: entry.codes, steps: entry.scales, offset };
    } else {
      weights = take(name);
      const steps = byName.get(`${path}.weightScale`);
      if (layer.config.role === 'fixed' && steps !== undefined) {
        codes = fixedCodes(weights, steps, layer.config.fixedBits, q.rule, {
          source,
          tensor: path,
          channels: layer.weight.shape[0],
        });
      }
    }
    if (weights.length !== layer.weight.size)
      throw new InvalidInputError(
        source,
        `tensor '${name}'`,
        `values do not match the ${layer.weight.size} ${architecture.name} needs`,
        String(weights.length),
      );
    layer.weight.data.set(weights);
    // A layered weight's values were made here; a fixed one's belong to `read`, so they are copied.
    const deployed = entry !== undefined ? weights : Float32Array.from(weights);
    layer.deployedWeight = keep(new Tensor(deployed, layer.weight.shape));
    layer.deployedCodes = codes;
    if (layer.bias !== null) fill(layer.bias.data, `${path}.bias`);
    fill(layer.stateDict().get('actState')!.data, `${path}.actState`);
    const actBits = layer.effectiveBits(bits);
    if (actBits !== null && layer.config.quantizeInput) {
      layer.addActScale(actBits);
      fill(layer.stateDict().get(`actScale${actBits}`)!.data, `${path}.actScale`);
    }
  }
  for (const [path, bn] of switchableNorms(model)) {
    const state = new Map<string, Float32Array>();
    for (const [key, t] of bn.at(bits).stateDict()) {
      const name = `${path}.bn.${key}`;
      const v = take(name);
      if (v.length !== t.size)
        throw new InvalidInputError(
          source,
          `tensor '${name}'`,
          `values do not match the ${t.size} needed`,
          String(v.length),
        );
      state.set(key, v);
    }
    bn.at(bits).loadStateDict(state);
  }
  model.eval();
  setPrecision(model, bits);
  return { model, bits, architecture };
}
