import { join } from 'node:path';
import { Command, Option } from 'commander';
import { MODEL_NAMES } from '../../nn/models/index.js';
import { loadCheckpoint } from '../../train/checkpoint.js';
import { CASCADE_RULES } from '../../quant/cascade.js';
import { formatDuration } from '../../report/index.js';
import {
  DATASETS,
  MODES,
  loadConfigFile,
  parseOverride,
  resolveTrainConfig,
  type TrainConfig,
} from '../../train/config.js';
import { importedArchitecture, runTraining, type TrainResult } from '../../train/trainer.js';
import { accuracyTable } from '../accuracy-table.js';
import { CommandExit, commandLine, invokedArgs, println, processIo, type CliIo } from '../io.js';
import { modelBytes } from '../model-bytes.js';
import {
  collectOverride,
  parseBitsList,
  parseNonNegativeInteger,
  parseNumber,
  parsePositiveInteger,
} from '../parse.js';
import { restoreModel } from '../restore.js';
import { writeResults } from '../results.js';

/** Flags whose camel-cased names are config keys, copied over the config file when given. */
const CONFIG_FLAGS = [
  'mode',
  'model',
  'dataset',
  'dataPath',
  'bits',
  'epochs',
  'batchSize',
  'lr',
  'weightDecay',
  'labelSmoothing',
  'schedule',
  'warmupEpochs',
  'init',
  'distill',
  'distillFrom',
  'stepFrom',
  'lossBalance',
  'samplePrecisions',
  'rule',
  'firstLast',
  'trainLimit',
  'valLimit',
  'seed',
  'out',
] as const;

/** Config keys holding lists, so `--set bits=4` means [4]. */
const LIST_KEYS = new Set(['bits', 'lossWeights', 'milestones']);

interface TrainFlags extends Partial<Record<(typeof CONFIG_FLAGS)[number], unknown>> {
  config?: string;
  fresh?: boolean;
  printConfig?: boolean;
  set?: string[];
}

/** Config file first, then flags, then `--set` overrides. */
export function configFromFlags(flags: TrainFlags): TrainConfig {
  const partial: Record<string, unknown> = flags.config === undefined ? {} : loadConfigFile(flags.config);
  for (const key of CONFIG_FLAGS) if (flags[key] !== undefined) partial[key] = flags[key];
  for (const text of flags.set ?? []) {
    const [key, value] = parseOverride(text);
    partial[key] = LIST_KEYS.has(key) && typeof value === 'number' ? [value] : value;
  }
  return resolveTrainConfig(
    partial,
    flags.config === undefined ? 'command line' : `${flags.config} + command line`,
  );
}

export function describeMode(config: TrainConfig): string {
  if (config.mode === 'fp') return 'full precision';
  if (config.mode === 'qat') return `dedicated ${config.bits[0]}-bit QAT`;
  return `once QAT over ${config.bits.join(',')}`;
}

/** One line with everything that decides the result. */
export function recipeLine(config: TrainConfig): string {
  const parts = [
    `${describeMode(config)}, ${config.model}${config.width ? ` x${config.width}` : ''} on ${config.dataset}`,
  ];
  if (config.mode !== 'fp') {
    const edges = config.firstLast === 'fixed' ? `fixed ${config.fixedBits}-bit` : config.firstLast;
    parts.push(`rule ${config.rule}, first/last ${edges}, codes ${config.topBits}-bit`);
    if (config.mode === 'once') {
      if (config.samplePrecisions > 0) parts.push(`${config.samplePrecisions} precisions per step`);
      if (config.distill) parts.push(`distillation ${config.distillWeight} from ${config.distillFrom}`);
      if (config.stepFrom !== 'lowest') parts.push(`weight step from ${config.stepFrom} precisions`);
      if (config.lossWeights.length > 0) parts.push(`loss weights ${config.lossWeights.join(',')}`);
      else if (config.lossBalance !== 'lowest') parts.push(`loss balance ${config.lossBalance}`);
    }
  }
  const optimizer =
    config.optimizer === 'sgd'
      ? `SGD${config.nesterov && config.momentum > 0 ? ' nesterov' : ''} momentum ${config.momentum}`
      : 'AdamW';
  const schedule =
    config.schedule === 'step'
      ? `step x${config.gamma} at ${config.milestones.join(',') || 'none'}`
      : config.schedule;
  parts.push(
    `${config.epochs} epochs, batch ${config.batchSize}, ${optimizer}, lr ${config.lr} ${schedule}` +
      `${config.warmupEpochs > 0 ? ` (warmup ${config.warmupEpochs})` : ''}, wd ${config.weightDecay}` +
      `${config.labelSmoothing > 0 ? `, label smoothing ${config.labelSmoothing}` : ''}`,
  );
  if (config.trainLimit > 0) parts.push(`training subset of ${config.trainLimit} images`);
  if (config.init !== undefined) parts.push(`init ${config.init}`);
  parts.push(`seed ${config.seed}`);
  return parts.join('; ');
}

/** Bytes per evaluated precision, from the model the checkpoint holds. */
function bytesByPrecision(result: TrainResult): Map<number | null, number> {
  const { model } = restoreModel(result.checkpoint);
  return new Map(result.results.map((r) => [r.bits, modelBytes(model, r.bits)]));
}

function report(io: CliIo, result: TrainResult, args: readonly string[]): void {
  const { config } = result;
  const bytes = bytesByPrecision(result);
  const write = (line = '') => println(io.out, line);
  write();
  write(accuracyTable(result.results.map((r) => ({ ...r, bytes: bytes.get(r.bits) }))));
  write();
  write(`validation split: ${result.valSplit}`);
  write(`wall time: ${formatDuration(result.wallSeconds)} (training and evaluation, over all resumed runs)`);
  write(`recipe: ${recipeLine(config)}`);
  const resultsPath = join(config.out, 'results.json');
  writeResults(resultsPath, {
    split: result.valSplit,
    command: commandLine(args),
    rows: result.results.map((r) => ({
      method: config.mode,
      bits: r.bits,
      top1: r.top1,
      top5: r.top5,
      epochs: config.epochs,
      wall_s: result.wallSeconds,
    })),
  });
  write(`checkpoint: ${result.checkpoint}`);
  write(`metrics: ${join(config.out, 'metrics.jsonl')}`);
  write(`charts: ${join(config.out, 'curves.svg')}, ${join(config.out, 'loss.svg')}`);
  write(`results: ${resultsPath}`);
}

export function trainCommand(io: CliIo = processIo): Command {
  return new Command('train')
    .description(
      'Train a network at full precision (fp), at one precision (qat) or at several at once (once), ' +
        'resuming from <out>/checkpoint.ckpt when it exists',
    )
    .option('-c, --config <file>', 'JSON config file; flags override it and --set overrides both')
    .addOption(new Option('--mode <mode>', 'what to train').choices(MODES))
    .addOption(
      new Option('--model <name>', 'network (an imported one comes with --init)').choices(MODEL_NAMES),
    )
    .addOption(new Option('--dataset <name>', 'dataset').choices(DATASETS))
    .option('--data-path <path>', 'folder or archive holding the dataset')
    .option('--bits <list>', 'precisions, highest first, e.g. 8,6,4,3,2 (qat: one)', parseBitsList)
    .option('--epochs <n>', 'epochs', parsePositiveInteger)
    .option('--batch-size <n>', 'training batch size', parsePositiveInteger)
    .option('--lr <x>', 'peak learning rate', parseNumber)
    .option('--weight-decay <x>', 'weight decay', parseNumber)
    .option('--label-smoothing <x>', 'label smoothing in [0, 1]', parseNumber)
    .addOption(
      new Option('--schedule <kind>', 'learning-rate schedule').choices(['cosine', 'step', 'constant']),
    )
    .option('--warmup-epochs <n>', 'linear warm-up epochs', parseNonNegativeInteger)
    .option('--init <checkpoint>', 'start from a full-precision checkpoint')
    .option('--distill', 'once QAT: distil lower precisions from a higher one (see --distill-from)')
    .addOption(
      new Option(
        '--distill-from <teacher>',
        'once QAT distillation teacher: the highest precision, or the next higher one (recursive)',
      ).choices(['highest', 'next']),
    )
    .addOption(
      new Option(
        '--step-from <which>',
        'once QAT: the precisions whose loss trains the shared weight step (default lowest)',
      ).choices(['all', 'lowest', 'none']),
    )
    .addOption(
      new Option(
        '--loss-balance <how>',
        'once QAT loss: the lowest precision at full weight and the rest sharing one (lowest), or the mean',
      ).choices(['lowest', 'mean']),
    )
    .option(
      '--sample-precisions <k>',
      'once QAT: precisions per step (highest, lowest and a sample of the rest; 0 = all)',
      parseNonNegativeInteger,
    )
    .addOption(new Option('--rule <rule>', 'cascade downsampling rule').choices(CASCADE_RULES))
    .addOption(
      new Option('--first-last <kind>', 'first convolution and classifier').choices([
        'fixed',
        'layered',
        'float',
      ]),
    )
    .option('--train-limit <n>', 'use only N training images (0 = all)', parseNonNegativeInteger)
    .option('--val-limit <n>', 'use only N validation images (0 = all)', parseNonNegativeInteger)
    .option('--seed <n>', 'random seed', parseNonNegativeInteger)
    .option('--out <dir>', 'run folder: checkpoint, metrics.jsonl, charts, results.json')
    .option('--fresh', 'ignore an existing checkpoint in the run folder and start afresh')
    .option('--print-config', 'print the resolved config as JSON and exit without training')
    .option(
      '--set <key=value...>',
      'override any config key, e.g. --set momentum=0.8 nesterov=false',
      collectOverride,
    )
    .action(async (flags: TrainFlags, command: Command) => {
      let config = configFromFlags(flags);
      // A network imported with strata import is the one its checkpoint describes, with its preprocessing.
      if (config.init !== undefined) {
        const init = loadCheckpoint(config.init);
        if (importedArchitecture(init) !== undefined) {
          const own = (init.meta as { config?: { mean?: number[]; std?: number[] } }).config ?? {};
          config = {
            ...config,
            model: 'imported',
            ...(config.mean === undefined && own.mean !== undefined && own.std !== undefined
              ? { mean: own.mean, std: own.std }
              : {}),
          };
        }
      }
      if (flags.printConfig) {
        println(io.out, JSON.stringify(config, null, 2));
        return;
      }
      const log = (message: string) => println(io.err, message);
      log(`strata train: ${recipeLine(config)}`);
      const result = await runTraining(config, { resume: flags.fresh !== true, log });
      if (result.interrupted) {
        throw new CommandExit(
          130,
          `interrupted; the checkpoint ${result.checkpoint} holds the progress: run the same command to resume`,
        );
      }
      report(io, result, invokedArgs(command));
    });
}
