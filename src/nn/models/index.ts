import type { Module } from '../module.js';
import { describeValue, expectBoundedInteger, InvalidInputError } from '../../engine/limits.js';
import { GraphNetwork, checkGraphSpec, type GraphSpec } from './graph.js';
import { MobileNetV2, roundChannels } from './mobilenet-v2.js';
import { CifarResNet, ResNet18 } from './resnet.js';
import { SmallCNN } from './small-cnn.js';

export { BasicBlock, CifarResNet, ResNet18 } from './resnet.js';
export { InvertedResidual, MobileNetV2 } from './mobilenet-v2.js';
export { SmallCNN } from './small-cnn.js';
export { GraphNetwork, checkGraphSpec, type GraphOp, type GraphSpec } from './graph.js';

/** What a model file or checkpoint records to rebuild the network. */
export interface Architecture {
  name: ModelName;
  numClasses: number;
  inChannels: number;
  width?: number;
  /** 'imported' only: the network's operations (an imported ONNX graph). */
  graph?: GraphSpec;
}

export const MODEL_NAMES = [
  'resnet20',
  'resnet32',
  'resnet56',
  'resnet18',
  'mobilenetv2',
  'small-cnn',
] as const;
/** A built-in model, or 'imported': a graph brought in by strata import (see graph.ts). */
export type ModelName = (typeof MODEL_NAMES)[number] | 'imported';
/** Every name an architecture may have (a checkpoint's or a config's model). */
export const ARCHITECTURE_NAMES = [...MODEL_NAMES, 'imported'] as const;

export function createModel(arch: Architecture): Module {
  const { numClasses, inChannels } = arch;
  switch (arch.name) {
    case 'resnet20':
      return new CifarResNet(20, { numClasses, inChannels });
    case 'resnet32':
      return new CifarResNet(32, { numClasses, inChannels });
    case 'resnet56':
      return new CifarResNet(56, { numClasses, inChannels });
    case 'resnet18':
      return new ResNet18({ numClasses, inChannels });
    case 'mobilenetv2':
      return new MobileNetV2({ numClasses, inChannels, width: arch.width });
    case 'small-cnn':
      return new SmallCNN({ numClasses, inChannels, width: arch.width });
    case 'imported':
      if (arch.graph === undefined) {
        throw new RangeError(
          "architecture 'imported' needs its graph (an imported model is rebuilt from the graph its checkpoint or " +
            'model file records; start from the checkpoint strata import wrote: --init model.ckpt)',
        );
      }
      return new GraphNetwork(arch.graph);
    default:
      throw new RangeError(
        `Expected one of ${MODEL_NAMES.map((n) => `'${n}'`).join(', ')} for model but received '${String((arch as { name: unknown }).name)}'`,
      );
  }
}

/** Width multipliers a MobileNetV2 may have; small-cnn's width is its first layer's channel count. */
const MOBILENET_WIDTH = [0.01, 64] as const;
const SMALL_CNN_WIDTH = 4096;

/**
 * An architecture read from a file (model file, checkpoint), checked before anything is allocated:
 * a known name, class count and input channels within the limits (docs/LIMITS.md), a width in range.
 * `source` names the file in the errors.
 */
export function checkArchitecture(value: unknown, source: string): Architecture {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidInputError(source, 'architecture', 'is not an object', describeValue(value));
  }
  const arch = value as Record<string, unknown>;
  if (typeof arch.name !== 'string' || !(ARCHITECTURE_NAMES as readonly string[]).includes(arch.name)) {
    throw new InvalidInputError(
      source,
      'architecture.name',
      `is not one of ${ARCHITECTURE_NAMES.join(', ')}`,
      describeValue(arch.name),
    );
  }
  const numClasses = expectBoundedInteger(
    arch.numClasses,
    source,
    'architecture.numClasses',
    1,
    'maxClasses',
  );
  const inChannels = expectBoundedInteger(
    arch.inChannels,
    source,
    'architecture.inChannels',
    1,
    'maxInputChannels',
  );
  const out: Architecture = { name: arch.name as ModelName, numClasses, inChannels };
  if (arch.name === 'imported') {
    // The graph's layer sizes are checked against the file's tensor table by the reader of the
    // file (modelFromStrata, restoreContent) before the network is built.
    try {
      out.graph = checkGraphSpec(arch.graph);
    } catch (e) {
      throw new InvalidInputError(source, 'architecture.graph', (e as Error).message, '');
    }
    return out;
  }
  if (arch.width !== undefined) {
    if (arch.name === 'small-cnn') {
      out.width = expectBoundedInteger(arch.width, source, 'architecture.width', 1, SMALL_CNN_WIDTH);
    } else {
      const w = arch.width;
      if (typeof w !== 'number' || !(w >= MOBILENET_WIDTH[0] && w <= MOBILENET_WIDTH[1])) {
        throw new InvalidInputError(
          source,
          'architecture.width',
          `is not a number in [${MOBILENET_WIDTH.join(', ')}]`,
          describeValue(w),
        );
      }
      out.width = w;
    }
  }
  return out;
}

/**
 * The input features of the classifier (`fc`) an architecture builds, computed without building it,
 * so a file's tensor table can be compared with its architecture before anything is allocated.
 */
export function classifierFeatures(arch: Architecture): number {
  switch (arch.name) {
    case 'resnet20':
    case 'resnet32':
    case 'resnet56':
      return 64;
    case 'resnet18':
      return 512;
    case 'mobilenetv2':
      return roundChannels(1280 * Math.max(1, arch.width ?? 1));
    case 'small-cnn':
      return 4 * (arch.width ?? 16);
    case 'imported':
      throw new RangeError('classifierFeatures: an imported graph names its own layers (graphWeightShapes)');
  }
}

/**
 * The weight shape each Conv and Linear of an imported graph implies, by the name its tensor has
 * in a model file or checkpoint, so a file's tables can be compared with the graph before the
 * network is built.
 */
export function graphWeightShapes(spec: GraphSpec): Map<string, number[]> {
  const shapes = new Map<string, number[]>();
  for (const op of spec.ops) {
    if (op.op === 'conv')
      shapes.set(`${op.module}.weight`, [op.outChannels, op.inChannels / op.groups, ...op.kernel]);
    else if (op.op === 'linear') shapes.set(`${op.module}.weight`, [op.outFeatures, op.inFeatures]);
  }
  return shapes;
}
