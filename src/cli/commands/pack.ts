import type { PrecisionInfo } from '../../web/precision-info.js';
import { Command } from 'commander';
import { noGrad } from '../../engine/autograd.js';
import { readStrata } from '../../format/index.js';
import { modelFromStrata } from '../../export/strata-model.js';
import { quantizeModel, type QuantConfig } from '../../quant/quantize-model.js';
import { calibratePrecision } from '../../train/baselines.js';
import { loadDataSources, type DataSources } from '../../train/data.js';
import { evaluate, type EvalResult } from '../../train/evaluate.js';
import type { DataLoader } from '../../data/index.js';
import { parseNonNegativeInteger, parsePositiveInteger } from '../parse.js';
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
  const own = datasetDefaultInput(config);
  // An imported model's own preprocessing (strata import) replaces the dataset's.
  return config.mean !== undefined && config.std !== undefined
    ? { ...own, normalize: { mean: [...config.mean], std: [...config.std] } }
    : own;
}

function datasetDefaultInput(config: TrainConfig): InputDescription {
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

// How a precision in a .strata file came to be, and how accurate it measured: one type, shared with
// the browser library that reads it.
export type { PrecisionInfo };

export interface CalibrationRecord {
  split: string;
  batches: number;
  images: number;
}

interface PackPlan {
  model: RestoredModel['model'];
  quant: QuantConfig;
  trained: number[];
  mode: string;
}

/** The quantization-aware model to pack: the checkpoint's own, or (ptq) its float model wrapped at every precision. */
function planPack(restored: RestoredModel, path: string, ptq: boolean): PackPlan {
  const { model, quant, meta } = restored;
  if (quant === null) {
    if (!ptq) {
      throw new RangeError(
        `checkpoint ${path} holds a full-precision model (mode 'fp'); pack it post-training with --ptq ` +
          '(calibrated on --calibrate data), or train it with --mode qat or --mode once first',
      );
    }
    const c = meta.config;
    const precisions: number[] = [];
    for (let b = c.topBits; b >= c.minBits; b--) precisions.push(b);
    const q = quantizeModel(model, {
      topBits: c.topBits,
      minBits: c.minBits,
      precisions,
      rule: c.rule,
      firstLast: c.firstLast,
      fixedBits: c.fixedBits,
    });
    return { model, quant: q, trained: [], mode: 'ptq' };
  }
  if (ptq) {
    throw new RangeError(
      `checkpoint ${path} is already quantization-aware (mode '${meta.config.mode}'); --ptq packs a full-precision one`,
    );
  }
  return { model, quant, trained: [...meta.config.bits], mode: meta.config.mode };
}

function packMetadata(
  restored: RestoredModel,
  plan: PackPlan,
  info: PrecisionInfo[],
  calibration: CalibrationRecord | null,
): Record<string, unknown> {
  const { meta } = restored;
  const last = meta.history[meta.history.length - 1];
  return {
    classes: meta.classes,
    dataset: meta.config.dataset,
    ...datasetInput(meta.config),
    trainedBits: plan.trained,
    mode: plan.mode,
    epochs: meta.epoch,
    ...(last !== undefined && plan.mode !== 'ptq' ? { valTop1: last.valTop1 } : {}),
    precisionInfo: info,
    ...(calibration !== null ? { calibration } : {}),
  };
}

function precisionRange(quant: QuantConfig): number[] {
  const out: number[] = [];
  for (let b = quant.minBits; b <= quant.topBits; b++) out.push(b);
  return out;
}

/**
 * The bytes of a .strata file for a quantization-aware checkpoint, without calibration: every
 * precision from the lowest to the highest its codes cover, those it was not trained at derived by
 * the cascade and marked 'uncalibrated' (in-memory use: predict, tests; `strata pack` calibrates).
 */
export function packRestored(restored: RestoredModel, path: string): Uint8Array {
  const plan = planPack(restored, path, false);
  const trained = new Set(plan.trained);
  const info: PrecisionInfo[] = precisionRange(plan.quant).map((bits) => ({
    bits,
    source: trained.has(bits) ? 'trained' : 'uncalibrated',
    top1: null,
    split: null,
    samples: null,
  }));
  return writeStrata(
    toStrataContent(plan.model, restored.architecture, plan.quant, {
      trained: plan.trained,
      metadata: packMetadata(restored, plan, info, null),
    }),
  );
}

export function packCheckpoint(path: string): Uint8Array {
  return packRestored(restoreModel(path), path);
}

export interface PackOptions {
  /** Post-training layering of a full-precision checkpoint. */
  ptq?: boolean;
  /** Calibration data: 'train' (the checkpoint dataset's training split) or a folder/archive of that dataset. */
  calibrate?: string;
  /** Training batches for batch-norm re-estimation per calibrated precision. */
  bnBatches?: number;
  /** Write precisions that are neither trained nor calibrated, marked 'uncalibrated'. */
  allowUncalibrated?: boolean;
  /** Measure each precision's top-1 on the checkpoint dataset's validation split. */
  validate?: boolean;
  valLimit?: number;
  log?: (message: string) => void;
}

export interface PackResult {
  bytes: Uint8Array;
  precisionInfo: PrecisionInfo[];
  calibration: CalibrationRecord | null;
}

/** Top-1 of a packed file at every precision it holds, each computed from the file's bytes alone. */
export async function evaluateStrataFile(
  bytes: Uint8Array,
  val: DataLoader,
  bits: readonly number[],
): Promise<Map<number, EvalResult>> {
  const out = new Map<number, EvalResult>();
  for (const b of bits) {
    const { model } = noGrad(() => modelFromStrata(readStrata(bytes, { bits: b })));
    out.set(b, await evaluate(model, val, b));
  }
  return out;
}

/**
 * `strata pack`: every precision of the file trained or calibrated (batch-norm statistics
 * re-estimated on the calibration split; with --ptq also the activation scales), and with
 * `validate` each precision's accuracy measured on the packed file itself and recorded in
 * metadata.precisionInfo.
 */
export async function packWithCalibration(
  restored: RestoredModel,
  path: string,
  options: PackOptions = {},
): Promise<PackResult> {
  const log = options.log ?? (() => undefined);
  const ptq = options.ptq === true;
  const plan = planPack(restored, path, ptq);
  const trained = new Set(plan.trained);
  const range = precisionRange(plan.quant);
  const untrained = range.filter((b) => !trained.has(b));
  const calibrate = options.calibrate ?? (options.allowUncalibrated && !ptq ? undefined : 'train');
  if (ptq && options.allowUncalibrated)
    throw new RangeError('--ptq calibrates every precision; --allow-uncalibrated does not apply');
  const config = {
    ...restored.meta.config,
    ...(calibrate !== undefined && calibrate !== 'train' ? { dataPath: calibrate } : {}),
    ...(options.valLimit !== undefined ? { valLimit: options.valLimit } : {}),
  };
  const needData = (untrained.length > 0 && calibrate !== undefined) || options.validate === true;
  let data: DataSources | null = null;
  if (needData) {
    try {
      data = await loadDataSources(config, log);
    } catch (e) {
      if (untrained.length === 0 || options.allowUncalibrated) throw e;
      throw new RangeError(
        `checkpoint ${path}: precisions ${untrained.join(', ')} were not trained and must be calibrated, but the ` +
          `${config.dataset} data did not load (${(e as Error).message}); give --calibrate <folder or archive>, ` +
          'or write them uncalibrated with --allow-uncalibrated',
      );
    }
  } else if (untrained.length > 0 && !options.allowUncalibrated) {
    throw new RangeError(
      `checkpoint ${path}: precisions ${untrained.join(', ')} were neither trained nor calibrated; ` +
        'calibrate them with --calibrate train, or write them flagged with --allow-uncalibrated',
    );
  }
  try {
    let calibration: CalibrationRecord | null = null;
    if (data !== null && calibrate !== undefined && untrained.length > 0) {
      const batches = Math.min(options.bnBatches ?? 20, data.train.batchesPerEpoch);
      const split = `${config.dataset} training split${calibrate === 'train' ? '' : ` (${calibrate})`}, augmented, ${batches} batches of ${config.batchSize}`;
      for (const b of untrained) {
        const used = await calibratePrecision(plan.model, data.train, b, {
          activations: ptq,
          bnBatches: batches,
        });
        log(`${b} bits: calibrated (${ptq ? 'activation scales and ' : ''}batch norm, ${used} batches)`);
      }
      calibration = { split, batches, images: batches * config.batchSize };
    }
    const sourceOf = (b: number): PrecisionInfo['source'] =>
      trained.has(b) ? 'trained' : calibration !== null ? 'calibrated' : 'uncalibrated';
    const info: PrecisionInfo[] = range.map((bits) => ({
      bits,
      source: sourceOf(bits),
      top1: null,
      split: null,
      samples: null,
    }));
    const write = () =>
      writeStrata(
        toStrataContent(plan.model, restored.architecture, plan.quant, {
          trained: plan.trained,
          metadata: packMetadata(restored, plan, info, calibration),
        }),
      );
    let bytes = write();
    if (options.validate && data !== null) {
      const measured = await evaluateStrataFile(bytes, data.val, range);
      for (const p of info) {
        const r = measured.get(p.bits)!;
        Object.assign(p, { top1: r.top1, split: data.valSplit, samples: r.count });
        log(`${p.bits} bits: top-1 ${r.top1.toFixed(2)}% (${p.source})`);
      }
      // Only the metadata changes: the weights and every precision's parameters are as measured.
      bytes = write();
    }
    return { bytes, precisionInfo: info, calibration };
  } finally {
    await data?.train.close();
    await data?.val.close();
  }
}

function defaultOutput(checkpoint: string): string {
  return checkpoint.endsWith('.ckpt')
    ? `${checkpoint.slice(0, -'.ckpt'.length)}.strata`
    : `${checkpoint}.strata`;
}

interface PackFlags {
  output?: string;
  ptq?: boolean;
  calibrate?: string;
  bnBatches: number;
  allowUncalibrated?: boolean;
  validate?: boolean;
  valLimit?: number;
}

export function packCommand(io: CliIo = processIo): Command {
  return new Command('pack')
    .description(
      'Build a .strata model file (every precision in one file) from a training checkpoint; every precision is ' +
        'trained or calibrated, and with --validate its accuracy is measured and recorded',
    )
    .argument(
      '<checkpoint>',
      'a checkpoint written by strata train (qat or once; fp with --ptq) or strata import',
    )
    .option('-o, --output <file>', 'the model file to write (default: the checkpoint path with .strata)')
    .option('--ptq', 'post-training layering of a full-precision checkpoint: every precision calibrated')
    .option(
      '--calibrate <data>',
      "calibration data: 'train' (the checkpoint dataset's training split, the default) or a folder/archive of that dataset",
    )
    .option(
      '--bn-batches <n>',
      'calibration batches for batch-norm re-estimation per precision',
      parsePositiveInteger,
      20,
    )
    .option(
      '--allow-uncalibrated',
      'write precisions that were not trained without calibrating them (flagged in the file)',
    )
    .option(
      '--validate',
      "measure each precision's top-1 on the packed file (the dataset's validation split) and record it",
    )
    .option('--val-limit <n>', 'use only N validation images (0 = all)', parseNonNegativeInteger)
    .action(async (path: string, flags: PackFlags) => {
      const restored = restoreModel(path);
      const { bytes, precisionInfo, calibration } = await packWithCalibration(restored, path, {
        ptq: flags.ptq === true,
        ...(flags.calibrate !== undefined ? { calibrate: flags.calibrate } : {}),
        bnBatches: flags.bnBatches,
        allowUncalibrated: flags.allowUncalibrated === true,
        validate: flags.validate === true,
        ...(flags.valLimit !== undefined ? { valLimit: flags.valLimit } : {}),
        log: (m) => println(io.err, m),
      });
      const output = flags.output ?? defaultOutput(path);
      await writeStrataFile(output, bytes);
      const info = inspectStrata(bytes);
      const byBits = new Map(precisionInfo.map((p) => [p.bits, p]));
      const write = (line = '') => println(io.out, line);
      write(
        `${output}: ${formatBytes(bytes.length)} (${bytes.length.toLocaleString('en-US')} bytes), ` +
          `precisions ${info.quantization.minBits}..${info.precisions[info.precisions.length - 1].bits} bits`,
      );
      write();
      write(
        precisionOffsetTable(info, {
          header: 'source, top-1',
          cell: (p) => describePrecision(byBits.get(p.bits)),
        }),
      );
      write();
      if (calibration !== null) write(`calibration: ${calibration.split}`);
      const split = precisionInfo.find((p) => p.split !== null)?.split;
      if (split) write(`top-1 measured on the packed file: ${split}`);
    });
}

/** "trained, 91.20 %" / "calibrated" / "uncalibrated (derived from the cascade)". */
export function describePrecision(p: PrecisionInfo | undefined): string {
  if (p === undefined) return 'unknown';
  const source = p.source === 'uncalibrated' ? 'uncalibrated (derived from the cascade)' : p.source;
  return p.top1 === null ? source : `${source}, ${p.top1.toFixed(2)}%`;
}
