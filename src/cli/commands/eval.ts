import { basename, dirname, resolve } from 'node:path';
import { Command, Option } from 'commander';
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
import { detectFileKind } from './info.js';
import { evaluateStrataFile, describePrecision, type PrecisionInfo } from './pack.js';
import { inspectStrata } from '../../format/index.js';
import { resolveTrainConfig } from '../../train/config.js';
import { existsSync, readFileSync } from 'node:fs';

interface EvalFlags {
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

export function evalCommand(io: CliIo = processIo): Command {
  return new Command('eval')
    .description('Evaluate a training checkpoint at one or more precisions')
    .argument(
      '<checkpoint>',
      'a checkpoint written by strata train (checkpoint.ckpt), or a .strata model file',
    )
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
      if (existsSync(path) && detectFileKind(path) === 'strata') {
        await evalStrataFile(path, flags, io);
        return;
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
