/**
 * Real files for the hostile-input tests and the fuzzer to start from: model files packed from real
 * (tiny) networks, a training checkpoint as the trainer writes it, PNG and JPEG images from the real
 * encoders, and an ONNX export. Built in memory, deterministically, in well under a second.
 */
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { Random } from '../../src/engine/random.js';
import { exportOnnx } from '../../src/export/onnx-export.js';
import { toStrataContent } from '../../src/export/strata-model.js';
import { writeStrata } from '../../src/format/index.js';
import { createModel, type Architecture } from '../../src/nn/models/index.js';
import { quantizeModel, setPrecision, switchableNorms } from '../../src/quant/quantize-model.js';
import { noGrad } from '../../src/engine/autograd.js';
import { Tensor } from '../../src/engine/tensor.js';
import { encodeCheckpoint } from '../../src/train/checkpoint.js';
import { resolveTrainConfig } from '../../src/train/config.js';
import { crc32 } from '../../src/format/crc32.js';
import type { Module } from '../../src/nn/module.js';

export interface TinyModel {
  architecture: Architecture;
  model: Module;
  /** The packed .strata file. */
  strata: Uint8Array;
  /** Input [H, W, C] the model is meant for (also recorded as metadata.inputSize). */
  input: [number, number, number];
}

/** A quantized network with distinct batch-norm statistics per precision, packed as a .strata file. */
export function tinyModel(architecture: Architecture, size: number, seed = 5): TinyModel {
  const rng = new Random(seed);
  const model = createModel(architecture);
  const quant = quantizeModel(model, { precisions: [4, 3, 2], topBits: 4, minBits: 2 });
  for (const [, sbn] of switchableNorms(model)) {
    for (const bits of [null, 4, 3, 2]) {
      const bn = sbn.at(bits);
      for (let c = 0; c < bn.numFeatures; c++) {
        bn.runningMean.data[c] = 0.1 * rng.normal();
        bn.runningVar.data[c] = 0.5 + rng.next();
      }
    }
  }
  for (const p of model.parameters()) for (let i = 0; i < p.data.length; i++) p.data[i] = 0.3 * rng.normal();
  // One forward pass calibrates every layer's activation scales (all precisions at once).
  model.eval();
  noGrad(() => {
    setPrecision(model, 4);
    model.forward(Tensor.randn([2, size, size, architecture.inChannels], rng));
  });
  setPrecision(model, null);
  const content = toStrataContent(model, architecture, quant, {
    metadata: { inputSize: [size, size], classes: ['a', 'b', 'c'].slice(0, architecture.numClasses) },
  });
  return { architecture, model, strata: writeStrata(content), input: [size, size, architecture.inChannels] };
}

let models: TinyModel[] | null = null;

/** Two real architectures, small enough that rebuilding one takes milliseconds. */
export function tinyModels(): TinyModel[] {
  models ??= [
    tinyModel({ name: 'small-cnn', numClasses: 3, inChannels: 1, width: 2 }, 8),
    tinyModel({ name: 'small-cnn', numClasses: 3, inChannels: 3, width: 3 }, 12, 9),
  ];
  return models;
}

/** A checkpoint as the trainer writes it (meta fields and `model.` arrays) for a small-cnn. */
export function tinyCheckpoint(): Uint8Array {
  const config = resolveTrainConfig({ model: 'small-cnn', width: 2, mode: 'fp', epochs: 2 }, 'corpus');
  const architecture: Architecture = { name: 'small-cnn', numClasses: 3, inChannels: 1, width: 2 };
  const model = createModel(architecture);
  const rng = new Random(4);
  const arrays = new Map<string, Float32Array>();
  for (const [name, t] of model.stateDict()) {
    arrays.set(
      `model.${name}`,
      Float32Array.from(t.data, () => 0.2 * rng.normal()),
    );
  }
  arrays.set('optim.momentum.0', new Float32Array(4));
  return encodeCheckpoint({
    meta: {
      kind: 'strata-training',
      config,
      architecture,
      quant: null,
      classes: ['a', 'b', 'c'],
      epoch: 1,
      batch: 0,
      history: [{ epoch: 1, lr: 0.1, trainLoss: { fp: 1.2 }, valTop1: { fp: 40.5 }, wallSeconds: 3 }],
      wallSeconds: 3,
      optimizer: { kind: 'sgd', step: 10, lr: 0.1 },
    },
    arrays,
  });
}

function gradient(width: number, height: number, channels: number, seed: number): Uint8Array {
  const rng = new Random(seed);
  return Uint8Array.from({ length: width * height * channels }, (_, i) => (i * 7 + rng.int(32)) & 255);
}

/** PNG (RGB, RGBA, greyscale) and JPEG (colour, greyscale source) files from the real encoders. */
export function sampleImages(): { name: string; bytes: Uint8Array }[] {
  const png = (width: number, height: number, colorType: 0 | 2 | 6, seed: number) => {
    const image = new PNG({ width, height, colorType, inputColorType: 6 });
    image.data = Buffer.from(gradient(width, height, 4, seed));
    return new Uint8Array(PNG.sync.write(image, { colorType }));
  };
  const jpg = (width: number, height: number, seed: number) =>
    new Uint8Array(jpeg.encode({ data: gradient(width, height, 4, seed), width, height }, 80).data);
  return [
    { name: 'rgb.png', bytes: png(9, 7, 2, 1) },
    { name: 'rgba.png', bytes: png(16, 16, 6, 2) },
    { name: 'grey.png', bytes: png(5, 11, 0, 3) },
    { name: 'photo.jpg', bytes: jpg(16, 12, 4) },
    { name: 'small.jpg', bytes: jpg(3, 3, 5) },
  ];
}

/** An ONNX export of the first tiny model at 3 bits (onnxruntime reads these; Strata reads its metadata). */
export function sampleOnnx(): Uint8Array {
  const { model } = tinyModels()[0];
  return exportOnnx(model, { bits: 3 });
}

/** The PNG chunk starting at `at` with its CRC recomputed (after a test or the fuzzer edits it). */
export function fixPngChunkCrc(bytes: Uint8Array, at: number): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = view.getUint32(at);
  if (at + 12 + length > bytes.length) return;
  view.setUint32(at + 8 + length, crc32(bytes.subarray(at + 4, at + 8 + length)));
}

/** Byte offset of a JPEG's first start-of-frame marker, or -1. */
export function jpegFrameOffset(bytes: Uint8Array): number {
  for (let at = 2; at + 4 <= bytes.length;) {
    if (bytes[at] !== 0xff) return -1;
    const marker = bytes[at + 1];
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) return at;
    at += 2 + ((bytes[at + 2] << 8) | bytes[at + 3]);
  }
  return -1;
}
