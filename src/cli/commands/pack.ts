import { Command } from 'commander';
import { CIFAR10_MEAN, CIFAR10_STD, IMAGENET_MEAN, IMAGENET_STD } from '../../data/transforms.js';
import { inspectStrata, writeStrata } from '../../format/index.js';
import { writeStrataFile } from '../../format/strata-file.js';
import { toStrataContent } from '../../export/strata-model.js';
import { formatBytes } from '../../report/index.js';
import type { TrainConfig } from '../../train/config.js';
import { println, processIo, type CliIo } from '../io.js';
import { precisionOffsetTable } from '../precision-offsets.js';
import { restoreModel, type RestoredModel } from '../restore.js';

/** What a model file records so that a client can prepare an image the way training did. */
export type InputDescription = {
  /** [height, width] of one image. */
  inputSize: [number, number];
  normalize: { mean: number[]; std: number[] };
};

/** The input size and normalisation of a training run's dataset (as src/train/data.ts applies them). */
export function datasetInput(config: TrainConfig): InputDescription {
  switch (config.dataset) {
    case 'mnist':
      return { inputSize: [28, 28], normalize: { mean: [0.1307], std: [0.3081] } };
    case 'fashion-mnist':
      return { inputSize: [28, 28], normalize: { mean: [0.286], std: [0.353] } };
    case 'cifar10-jpeg':
    case 'cifar10':
    case 'cifar100':
      return { inputSize: [32, 32], normalize: { mean: [...CIFAR10_MEAN], std: [...CIFAR10_STD] } };
    case 'tiny-imagenet':
    case 'image-folder':
      return {
        inputSize: [config.imageSize, config.imageSize],
        normalize: { mean: [...IMAGENET_MEAN], std: [...IMAGENET_STD] },
      };
  }
}

/**
 * The bytes of a .strata file for a quantization-aware checkpoint: every precision from the lowest
 * to the highest its codes cover (precisions it was not trained at are derived by the cascade), with
 * the class names, the input description and the last validation accuracies in its metadata.
 */
export function packRestored(restored: RestoredModel, path: string): Uint8Array {
  const { model, architecture, quant, meta } = restored;
  if (quant === null) {
    throw new RangeError(
      `checkpoint ${path} holds a full-precision model (mode 'fp'); pack needs a quantization-aware one ` +
        '(train with --mode qat or --mode once)',
    );
  }
  const last = meta.history[meta.history.length - 1];
  const content = toStrataContent(model, architecture, quant, {
    trained: meta.config.bits,
    metadata: {
      classes: meta.classes,
      dataset: meta.config.dataset,
      ...datasetInput(meta.config),
      trainedBits: meta.config.bits,
      mode: meta.config.mode,
      epochs: meta.epoch,
      ...(last !== undefined ? { valTop1: last.valTop1 } : {}),
    },
  });
  return writeStrata(content);
}

export function packCheckpoint(path: string): Uint8Array {
  return packRestored(restoreModel(path), path);
}

function defaultOutput(checkpoint: string): string {
  return checkpoint.endsWith('.ckpt')
    ? `${checkpoint.slice(0, -'.ckpt'.length)}.strata`
    : `${checkpoint}.strata`;
}

export function packCommand(io: CliIo = processIo): Command {
  return new Command('pack')
    .description(
      'Build a .strata model file (every precision in one file) from a quantized training checkpoint',
    )
    .argument('<checkpoint>', 'a checkpoint written by strata train (mode qat or once)')
    .option('-o, --output <file>', 'the model file to write (default: the checkpoint path with .strata)')
    .action(async (path: string, flags: { output?: string }) => {
      const restored = restoreModel(path);
      const bytes = packRestored(restored, path);
      const output = flags.output ?? defaultOutput(path);
      await writeStrataFile(output, bytes);
      const info = inspectStrata(bytes);
      const trained = new Set(restored.meta.config.bits);
      const write = (line = '') => println(io.out, line);
      write(
        `${output}: ${formatBytes(bytes.length)} (${bytes.length.toLocaleString('en-US')} bytes), ` +
          `precisions ${info.quantization.minBits}..${info.precisions[info.precisions.length - 1].bits} bits`,
      );
      write();
      write(
        precisionOffsetTable(info, {
          header: 'source',
          cell: (p) => (trained.has(p.bits) ? 'trained' : 'derived (cascade)'),
        }),
      );
    });
}
