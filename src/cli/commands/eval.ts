import { readFile } from 'node:fs/promises';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { Command, Option } from 'commander';
import { datasetSize, getImage, type RawImage } from '../../data/dataset.js';
import { loadImageTree } from '../../data/real-datasets.js';
import { inspectStrata } from '../../format/index.js';
import { SESSION_ENGINES, type SessionEngineChoice } from '../../runtime/session.js';
import { imageToInput, toChannels, type InputSpec } from '../../web/preprocess.js';
import { openModel } from '../model-file.js';
import { detectFileKind, type FileKind } from './info.js';
import { describeArithmetic, ENGINE_HELP, printEngineNote } from './predict.js';
import { ensurePrecision, setPrecision, type QuantConfig } from '../../quant/quantize-model.js';
import { lineChart, writeChart } from '../../report/index.js';
import { loadDataSources } from '../../train/data.js';
import { evaluate } from '../../train/evaluate.js';
import { accuracyTable, type AccuracyRow } from '../accuracy-table.js';
import { reestimateBatchNorm } from '../../train/batch-norm-reestimate.js';
import { commandLine, invokedArgs, println, processIo, type CliIo } from '../io.js';
import { modelBytes } from '../model-bytes.js';
import {
  parseBitsRequest,
  parseNonNegativeInteger,
  parsePositiveInteger,
  type BitsRequest,
} from '../parse.js';
import { restoreModel } from '../restore.js';
import { precisionLabel, writeResults, type Method, type ResultRow } from '../results.js';
import { describeMode } from './train.js';
import { evaluateStrataFile, describePrecision, type PrecisionInfo } from './pack.js';
import { resolveTrainConfig } from '../../train/config.js';

interface EvalFlags {
  data?: string;
  engine: SessionEngineChoice;
  float?: boolean;
  batchSize: number;
  limit?: number;
  bits?: BitsRequest;
  adapted?: boolean;
  reestimateBn?: boolean;
  bnBatches: number;
  valLimit?: number;
  chart?: string;
  results?: string;
  dataPath?: string;
}

export interface PlannedPrecision {
  bits: number | null;
  /** Not trained: derived from the cascade with ensurePrecision. */
  derived: boolean;
}

/**
 * The precisions to evaluate, in the order printed (highest first, full precision first of all).
 * A precision the checkpoint was not trained at needs --adapted (or --bits all) and must lie in the
 * range its codes cover.
 */
export function planPrecisions(
  path: string,
  quant: QuantConfig | null,
  request: BitsRequest | undefined,
  adapted: boolean,
): PlannedPrecision[] {
  if (request?.kind === 'fp') return [{ bits: null, derived: false }];
  if (quant === null) {
    if (request === undefined || request.kind === 'all') return [{ bits: null, derived: false }];
    throw new RangeError(
      `checkpoint ${path} holds a full-precision model; it has no ${request.bits.join(',')}-bit version ` +
        '(evaluate it with --bits fp, or train with --mode qat or once)',
    );
  }
  const trained = new Set(quant.precisions);
  let wanted: number[];
  if (request === undefined) wanted = [...quant.precisions];
  else if (request.kind === 'all') {
    wanted = [];
    for (let b = quant.topBits; b >= quant.minBits; b--) wanted.push(b);
  } else wanted = [...request.bits].sort((a, b) => b - a);
  for (const b of wanted) {
    if (b < quant.minBits || b > quant.topBits) {
      throw new RangeError(
        `Expected bits in [${quant.minBits}, ${quant.topBits}] (the range of checkpoint ${path}) but received ${b}`,
      );
    }
  }
  const untrained = wanted.filter((b) => !trained.has(b));
  if (untrained.length > 0 && !adapted && request?.kind !== 'all') {
    throw new RangeError(
      `checkpoint ${path} was trained at ${quant.precisions.join(',')} bits, not at ${untrained.join(',')}; ` +
        'pass --adapted to derive them from the cascade',
    );
  }
  return wanted.map((bits) => ({ bits, derived: !trained.has(bits) }));
}

/** Pixels of a dataset image (1, 3 or 4 channels) in the model's channel count. */
function imageChannels(image: RawImage, source: number, spec: InputSpec): RawImage {
  if (source === 3 || source === 4)
    return toChannels(image.data, image.height, image.width, source, spec.channels);
  if (source === 1 && spec.channels === 1) return image;
  if (source === 1 && spec.channels === 3) {
    return {
      ...image,
      data: Uint8Array.from({ length: image.data.length * 3 }, (_, i) => image.data[Math.floor(i / 3)]),
    };
  }
  throw new RangeError(
    `Expected images of 1, 3 or 4 channels for a ${spec.channels}-channel model but received ${source}`,
  );
}

/** The dataset label -> model class map: by class name when the model records names that cover the data, else by index. */
function labelMap(
  dataClasses: readonly string[],
  modelLabels: readonly string[] | null,
  numClasses: number,
  path: string,
): { map: Int32Array; how: string } {
  if (modelLabels !== null && dataClasses.every((c) => modelLabels.includes(c))) {
    return { map: Int32Array.from(dataClasses, (c) => modelLabels.indexOf(c)), how: 'by class name' };
  }
  if (dataClasses.length !== numClasses) {
    throw new RangeError(
      `${path} has ${numClasses} classes but the data has ${dataClasses.length} class folders` +
        (modelLabels !== null ? ' whose names are not all among its class names' : ''),
    );
  }
  return {
    map: Int32Array.from(dataClasses, (_, i) => i),
    how: 'by index (sorted folder names, or wnids.txt)',
  };
}

/** The precisions of a deployed file to evaluate: a .strata file's (present) ones, an .onnx file's own. */
async function deployedPrecisions(
  path: string,
  kind: FileKind,
  request: BitsRequest | undefined,
): Promise<(number | undefined)[]> {
  if (kind === 'onnx') {
    if (request !== undefined && request.kind !== 'all') {
      throw new RangeError(`${path} is an .onnx file at one precision; leave out --bits`);
    }
    return [undefined];
  }
  if (kind === 'checkpoint') {
    const { quant, meta } = restoreModel(path);
    if (quant === null || request?.kind === 'fp') return [undefined];
    if (request === undefined) return [...meta.config.bits];
    if (request.kind === 'all')
      return Array.from({ length: quant.topBits - quant.minBits + 1 }, (_, i) => quant.topBits - i);
    return [...request.bits].sort((a, b) => b - a);
  }
  const info = inspectStrata(new Uint8Array(await readFile(path)));
  const held = info.precisions
    .filter((p) => p.present)
    .map((p) => p.bits)
    .sort((a, b) => b - a);
  if (request?.kind === 'fp')
    throw new RangeError(`${path} is a .strata file, which holds quantized precisions only`);
  if (request === undefined || request.kind === 'all') return held;
  for (const b of request.bits) {
    if (!held.includes(b))
      throw new RangeError(
        `Expected bits in {${held.join(', ')}} (the precisions ${path} holds) but received ${b}`,
      );
  }
  return [...request.bits].sort((a, b) => b - a);
}

/** `strata eval <model> --data <folder|tar>`: a checkpoint, .strata or .onnx file on a labelled image tree. */
async function evalOnData(path: string, flags: EvalFlags & { data: string }, io: CliIo): Promise<void> {
  const log = (message: string) => println(io.err, message);
  const kind = detectFileKind(path);
  const precisions = await deployedPrecisions(path, kind, flags.bits);
  const dataset = await loadImageTree(flags.data, { log });
  const total = datasetSize(dataset);
  const n = flags.limit === undefined || flags.limit === 0 ? total : Math.min(total, flags.limit);
  const rows: AccuracyRow[] = [];
  let mapping = '';
  let arithmetic = '';
  for (const bits of precisions) {
    const opened = await openModel(path, {
      ...(bits !== undefined ? { bits } : {}),
      engine: flags.engine,
      float: flags.float === true,
    });
    const { session, spec } = opened;
    if (rows.length === 0) printEngineNote(io, session.engineNote);
    try {
      let correct1 = 0;
      let correct5 = 0;
      let loss = 0;
      let map: Int32Array | null = null;
      const per = spec.height * spec.width * spec.channels;
      for (let start = 0; start < n; start += flags.batchSize) {
        const count = Math.min(flags.batchSize, n - start);
        const batch = new Float32Array(count * per);
        for (let i = 0; i < count; i++) {
          const image = imageChannels(getImage(dataset, start + i), dataset.channels, spec);
          batch.set(imageToInput(image, spec), i * per);
        }
        const p = await session.predict({
          data: batch,
          shape: [count, spec.height, spec.width, spec.channels],
        });
        if (map === null) {
          const labels = labelMap(dataset.classes, opened.labels, p.numClasses, path);
          map = labels.map;
          mapping = labels.how;
        }
        for (let i = 0; i < count; i++) {
          const target = map[dataset.labels[start + i]];
          const probs = p.probabilities.subarray(i * p.numClasses, (i + 1) * p.numClasses);
          const above = probs.reduce((k, v) => k + (v > probs[target] ? 1 : 0), 0);
          if (above === 0) correct1++;
          if (above < 5) correct5++;
          loss -= Math.log(Math.max(probs[target], 1e-12));
        }
      }
      arithmetic = describeArithmetic(session.arithmetic);
      const label = opened.bits;
      log(`${precisionLabel(label)}: top-1 ${((100 * correct1) / n).toFixed(2)}%`);
      rows.push({
        bits: label,
        top1: (100 * correct1) / n,
        top5: (100 * correct5) / n,
        loss: loss / n,
        bytes: kind === 'strata' && label !== null ? await prefixBytes(path, label) : statSync(path).size,
        source: `${session.engine}, ${arithmetic}`,
      });
    } finally {
      await session.dispose();
    }
  }
  const write = (line = '') => println(io.out, line);
  write(
    `${path} (${kind === 'checkpoint' ? 'checkpoint' : kind === 'onnx' ? 'ONNX graph' : '.strata file'}) on ${flags.data}`,
  );
  write(accuracyTable(rows));
  write();
  write(
    `data: ${n === total ? `all ${total}` : `${n} of ${total}`} images, ${dataset.classes.length} classes, labels matched ${mapping}`,
  );
}

async function prefixBytes(path: string, bits: number): Promise<number> {
  const info = inspectStrata(new Uint8Array(await readFile(path)));
  return info.precisions.find((p) => p.bits === bits)!.completeAt;
}

export function evalCommand(io: CliIo = processIo): Command {
  return new Command('eval')
    .description(
      'Evaluate a checkpoint at one or more precisions on its dataset, or a checkpoint, .strata file (any prefix) ' +
        'or .onnx graph on a labelled image folder or archive (--data)',
    )
    .argument(
      '<model>',
      'checkpoint.ckpt, model.strata or model.onnx (a .strata file without --data: the validation split ' +
        'of the dataset its metadata names; .onnx needs --data)',
    )
    .option(
      '--data <folder|tar>',
      'a labelled image folder or .tar/.tar.gz archive: one subfolder per class, classes in sorted name order ' +
        'or the order of its wnids.txt; every image is evaluated',
    )
    .addOption(
      new Option('--engine <engine>', `with --data: ${ENGINE_HELP}`)
        .choices([...SESSION_ENGINES])
        .default('auto'),
    )
    .option('--float', 'with --data: run with float arithmetic instead of integer kernels')
    .option('--batch-size <n>', 'with --data: images a batch', parsePositiveInteger, 128)
    .option('--limit <n>', 'with --data: only the first N images (0 = all)', parseNonNegativeInteger)
    .addOption(
      new Option(
        '--bits <which>',
        "'all' (every precision from the lowest to the highest), 'fp', or a list such as 8,4,2 " +
          '(default: the precisions the checkpoint was trained at)',
      ).argParser(parseBitsRequest),
    )
    .option(
      '--adapted',
      'allow precisions the checkpoint was not trained at, derived from its codes by the cascade ' +
        '(the adapted baseline; implied by --bits all)',
    )
    .option('--reestimate-bn', 'derived precisions: re-estimate batch-norm statistics on training batches')
    .option('--bn-batches <n>', 'training batches for --reestimate-bn', parsePositiveInteger, 20)
    .option(
      '--val-limit <n>',
      'use only N validation images (0 = all; default: as in training)',
      parseNonNegativeInteger,
    )
    .option('--data-path <path>', 'folder or archive holding the dataset (default: as in training)')
    .option('--chart <file.svg>', 'write top-1 accuracy against bits as SVG')
    .option('--results <file.json>', 'write the rows as a results file for strata chart')
    .action(async (path: string, flags: EvalFlags, command: Command) => {
      if (flags.data !== undefined) return evalOnData(path, { ...flags, data: flags.data }, io);
      // A missing file is reported by the checkpoint reader, in its words.
      const kind = existsSync(path) ? detectFileKind(path) : 'checkpoint';
      if (kind === 'strata') return evalStrataFile(path, flags, io);
      if (kind === 'onnx') {
        throw new RangeError(`${path} is an .onnx graph, which records no dataset: pass --data <folder|tar>`);
      }
      const restored = restoreModel(path);
      const { model, quant, meta } = restored;
      const plan = planPrecisions(path, quant, flags.bits, flags.adapted === true);
      const config = {
        ...meta.config,
        ...(flags.valLimit !== undefined ? { valLimit: flags.valLimit } : {}),
        ...(flags.dataPath !== undefined ? { dataPath: flags.dataPath } : {}),
      };
      const log = (message: string) => println(io.err, message);
      if (flags.reestimateBn && !plan.some((p) => p.derived)) {
        log('note: --reestimate-bn applies to derived precisions only, and none of those is evaluated');
      }
      const data = await loadDataSources(config, log);
      if (data.classes.length !== meta.classes.length) {
        throw new RangeError(
          `checkpoint ${path} has ${meta.classes.length} classes but ${config.dataset} has ${data.classes.length}`,
        );
      }
      const rows: (AccuracyRow & { derived: boolean })[] = [];
      try {
        for (const { bits, derived } of plan) {
          let source = bits === null && quant !== null ? 'float pass' : 'trained';
          if (bits !== null && derived) {
            ensurePrecision(model, bits);
            source = 'adapted';
            if (flags.reestimateBn) {
              setPrecision(model, bits);
              const used = await reestimateBatchNorm(model, data.train, flags.bnBatches);
              source = `adapted+bn (${used} batches)`;
            }
          }
          const r = await evaluate(model, data.val, bits);
          log(`${precisionLabel(bits)}: top-1 ${r.top1.toFixed(2)}%`);
          rows.push({ ...r, bytes: modelBytes(model, bits), source, derived });
        }
      } finally {
        await data.train.close();
        await data.val.close();
      }
      const write = (line = '') => println(io.out, line);
      write(
        `${path}: ${meta.config.model} on ${meta.config.dataset}, ${describeMode(meta.config)}, ` +
          `${meta.epoch} of ${meta.config.epochs} epochs`,
      );
      write(accuracyTable(rows));
      write();
      write(`validation split: ${data.valSplit}`);
      const method = (derived: boolean): Method =>
        derived ? (flags.reestimateBn ? 'adapted-bn' : 'adapted') : meta.config.mode;
      if (flags.chart !== undefined) {
        const derived = rows.some((r) => r.derived);
        const name = `${describeMode(meta.config)}${derived ? `, others ${flags.reestimateBn ? 'adapted + BN' : 'adapted'}` : ''}`;
        await writeChart(flags.chart, accuracyChart(path, name, rows));
        write(`chart: ${flags.chart}`);
      }
      if (flags.results !== undefined) {
        // A quantized model's float pass is not a full-precision baseline, so it stays out of the file.
        const kept = rows.filter((r) => r.bits !== null || quant === null);
        const resultRows: ResultRow[] = kept.map((r) => ({
          method: r.bits === null ? 'fp' : method(r.derived),
          bits: r.bits,
          top1: r.top1,
          top5: r.top5,
          epochs: meta.epoch,
          wall_s: meta.wallSeconds,
        }));
        writeResults(flags.results, {
          split: data.valSplit,
          command: commandLine(invokedArgs(command)),
          rows: resultRows,
        });
        write(`results: ${flags.results}`);
      }
    });
}

function accuracyChart(path: string, seriesName: string, rows: readonly AccuracyRow[]): string {
  const quantized = rows.filter((r) => r.bits !== null);
  const fp = rows.find((r) => r.bits === null);
  return lineChart({
    title: `${basename(dirname(resolve(path)))}: top-1 against precision`,
    xLabel: 'bits (weights and activations)',
    yLabel: 'validation top-1 (%)',
    series: [
      {
        name: seriesName,
        points: quantized.map((r) => [r.bits!, r.top1] as [number, number]).sort((a, b) => a[0] - b[0]),
      },
    ],
    referenceLines: fp === undefined ? [] : [{ name: 'float pass', y: fp.top1 }],
    xTicks: quantized.map((r) => r.bits!).sort((a, b) => a - b),
  });
}

/**
 * Evaluates a .strata file at the precisions it holds, each rebuilt from the file's bytes alone, on
 * the validation split of the dataset its metadata names (the same computation `strata pack
 * --validate` records in metadata.precisionInfo).
 */
async function evalStrataFile(path: string, flags: EvalFlags, io: CliIo): Promise<void> {
  const bytes = new Uint8Array(readFileSync(path));
  const info = inspectStrata(bytes);
  const meta = (info.metadata ?? {}) as {
    dataset?: string;
    inputSize?: [number, number];
    normalize?: { mean: number[]; std: number[] };
    precisionInfo?: PrecisionInfo[];
  };
  if (typeof meta.dataset !== 'string') {
    throw new RangeError(
      `${path}: its metadata names no dataset, so there is no validation split to evaluate on`,
    );
  }
  const held = info.precisions.filter((p) => p.present).map((p) => p.bits);
  let bits: number[];
  if (flags.bits === undefined || flags.bits.kind === 'all') bits = [...held].sort((a, b) => b - a);
  else if (flags.bits.kind === 'fp')
    throw new RangeError(`${path}: a .strata file holds no full-precision model`);
  else {
    bits = [...flags.bits.bits].sort((a, b) => b - a);
    for (const b of bits) {
      if (!held.includes(b))
        throw new RangeError(
          `Expected bits among ${held.join(', ')} (the precisions ${path} holds) but received ${b}`,
        );
    }
  }
  const config = resolveTrainConfig(
    {
      model: String(info.architecture.name),
      dataset: meta.dataset,
      ...(meta.inputSize !== undefined ? { imageSize: meta.inputSize[0] } : {}),
      ...(meta.normalize !== undefined ? { mean: meta.normalize.mean, std: meta.normalize.std } : {}),
      ...(flags.valLimit !== undefined ? { valLimit: flags.valLimit } : {}),
      ...(flags.dataPath !== undefined ? { dataPath: flags.dataPath } : {}),
    },
    `${path} metadata`,
  );
  const log = (message: string) => println(io.err, message);
  const data = await loadDataSources(config, log);
  let measured;
  try {
    measured = await evaluateStrataFile(bytes, data.val, bits);
  } finally {
    await data.train.close();
    await data.val.close();
  }
  const recorded = new Map((meta.precisionInfo ?? []).map((p) => [p.bits, p]));
  const rows: AccuracyRow[] = bits.map((b) => ({
    ...measured.get(b)!,
    bytes: info.precisions.find((p) => p.bits === b)!.completeAt,
    source: `recorded: ${describePrecision(recorded.get(b))}`,
  }));
  const write = (line = '') => println(io.out, line);
  write(
    `${path}: ${String(info.architecture.name)} on ${meta.dataset}, every precision rebuilt from the file's bytes`,
  );
  write(accuracyTable(rows));
  write();
  write(`validation split: ${data.valSplit}`);
}
