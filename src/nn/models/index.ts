import type { Module } from '../module.js';
import { GraphNetwork, type GraphSpec } from './graph.js';
import { MobileNetV2 } from './mobilenet-v2.js';
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
