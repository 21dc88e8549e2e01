import { readFileSync } from 'node:fs';
import { expectInRange, expectInteger, expectIntegerIn, expectOneOf } from '../engine/check.js';
import { ARCHITECTURE_NAMES, type ModelName } from '../nn/models/index.js';
import { CASCADE_RULES, MAX_CODE_BITS, type CascadeRule } from '../quant/cascade.js';

export const DATASETS = [
  'mnist',
  'fashion-mnist',
  'cifar10-jpeg',
  'cifar10',
  'cifar100',
  'tiny-imagenet',
  'image-folder',
] as const;
export type DatasetName = (typeof DATASETS)[number];
export const MODES = ['fp', 'qat', 'once'] as const;
export type TrainMode = (typeof MODES)[number];

/** Everything a training run needs; a JSON file plus command-line overrides produce one. */
export interface TrainConfig {
  model: ModelName;
  /** Width multiplier (small-cnn base width, MobileNetV2 multiplier). */
  width?: number;
  dataset: DatasetName;
  /** Folder or archive for cifar10/cifar100/image-folder (and an alternative copy of the others). */
  dataPath?: string;
  /** Side of the square training crop for ImageNet-style data. */
  imageSize: number;
  /** Per-channel normalisation replacing the dataset's own (an imported model's preprocessing). */
  mean?: number[];
  std?: number[];
  /** Use only the first N training / validation images (quick runs and tests); 0 = all. */
  trainLimit: number;
  valLimit: number;

  mode: TrainMode;
  /** qat: one precision; once: the set trained together (highest first). */
  bits: number[];
  topBits: number;
  minBits: number;
  rule: CascadeRule;
  firstLast: 'fixed' | 'layered' | 'float';
  fixedBits: number;
  /** once QAT: loss weight per precision, in the order of `bits`; empty = `lossBalance` decides. */
  lossWeights: number[];
  /**
   * once QAT without explicit `lossWeights`: 'mean' weighs every precision 1/n; 'lowest' gives the
   * lowest precision weight 1 and the others 1/(n-1) each, so the hardest model moves the shared
   * weights at a dedicated model's rate and the rest together at one more (docs/EXPERIMENTS.md, H6).
   */
  lossBalance: 'mean' | 'lowest';
  /** once QAT: distil the lower precisions from a higher one's outputs. */
  distill: boolean;
  distillWeight: number;
  /**
   * once QAT, with `distill`: the teacher of each precision, the highest precision run in the step
   * ('highest') or the next higher one ('next': recursive, each precision taught by its neighbour).
   */
  distillFrom: 'highest' | 'next';
  /** once QAT: precisions run per step (highest and lowest always, the rest sampled); 0 = all. */
  samplePrecisions: number;
  /**
   * Which precisions' losses train the shared weight step: every one ('all'), only the lowest
   * ('lowest': the low grids' bin edges stay where a dedicated model would put them), or none
   * ('none': the step stays at its initial value). 'lowest' is the default since the Fashion-MNIST
   * ablation (docs/EXPERIMENTS.md); for a dedicated model the three differ only in 'none'.
   */
  stepFrom: 'all' | 'lowest' | 'none';

  epochs: number;
  batchSize: number;
  optimizer: 'sgd' | 'adamw';
  lr: number;
  momentum: number;
  nesterov: boolean;
  weightDecay: number;
  schedule: 'cosine' | 'step' | 'constant';
  /** Epochs at which the step schedule multiplies the rate by `gamma`. */
  milestones: number[];
  gamma: number;
  warmupEpochs: number;
  labelSmoothing: number;
  /** A full-precision checkpoint to start from (the usual recipe for QAT). */
  init?: string;
  seed: number;
  /** Run folder: checkpoint, metrics.jsonl, charts, final table. */
  out: string;
}

export const DEFAULT_TRAIN_CONFIG: TrainConfig = {
  model: 'small-cnn',
  dataset: 'mnist',
  imageSize: 64,
  trainLimit: 0,
  valLimit: 0,
  mode: 'fp',
  bits: [8, 7, 6, 5, 4, 3, 2],
  topBits: 8,
  minBits: 2,
  rule: 'floor',
  firstLast: 'fixed',
  fixedBits: 8,
  lossWeights: [],
  lossBalance: 'lowest',
  distill: false,
  distillWeight: 0.5,
  distillFrom: 'highest',
  samplePrecisions: 0,
  stepFrom: 'lowest',
  epochs: 1,
  batchSize: 128,
  optimizer: 'sgd',
  lr: 0.1,
  momentum: 0.9,
  nesterov: true,
  weightDecay: 5e-4,
  schedule: 'cosine',
  milestones: [],
  gamma: 0.1,
  warmupEpochs: 0,
  labelSmoothing: 0,
  seed: 0,
  out: 'runs/default',
};

const KEYS = new Set(Object.keys(DEFAULT_TRAIN_CONFIG).concat(['width', 'dataPath', 'init', 'mean', 'std']));

/** Validates every field; unknown keys are refused by name. */
export function resolveTrainConfig(partial: Record<string, unknown>, source = 'config'): TrainConfig {
  for (const key of Object.keys(partial)) {
    if (!KEYS.has(key)) {
      throw new RangeError(`${source}: unknown option '${key}' (known: ${[...KEYS].sort().join(', ')})`);
    }
  }
  const c = { ...DEFAULT_TRAIN_CONFIG, ...partial } as TrainConfig;
  const where = source;
  expectOneOf(c.model, 'model', ARCHITECTURE_NAMES, where);
  expectOneOf(c.dataset, 'dataset', DATASETS, where);
  expectOneOf(c.mode, 'mode', MODES, where);
  expectOneOf(c.rule, 'rule', CASCADE_RULES, where);
  expectOneOf(c.firstLast, 'firstLast', ['fixed', 'layered', 'float'] as const, where);
  expectOneOf(c.optimizer, 'optimizer', ['sgd', 'adamw'] as const, where);
  expectOneOf(c.schedule, 'schedule', ['cosine', 'step', 'constant'] as const, where);
  expectOneOf(c.distillFrom, 'distillFrom', ['highest', 'next'] as const, where);
  for (const k of ['epochs', 'batchSize', 'imageSize'] as const) expectInteger(c[k], k, 1, where);
  for (const k of ['trainLimit', 'valLimit', 'warmupEpochs', 'samplePrecisions', 'seed'] as const)
    expectInteger(c[k], k, 0, where);
  // Codes hold at most MAX_CODE_BITS bits; a larger value used to pass here and fail inside a kernel.
  expectIntegerIn(c.topBits, 'topBits', 2, MAX_CODE_BITS, where);
  expectIntegerIn(c.minBits, 'minBits', 1, MAX_CODE_BITS, where);
  expectIntegerIn(c.fixedBits, 'fixedBits', 2, MAX_CODE_BITS, where);
  expectInRange(c.lr, 'lr', 0, 100, where);
  expectInRange(c.momentum, 'momentum', 0, 1, where);
  expectInRange(c.weightDecay, 'weightDecay', 0, 1, where);
  expectInRange(c.labelSmoothing, 'labelSmoothing', 0, 1, where);
  expectInRange(c.gamma, 'gamma', 0, 1, where);
  expectInRange(c.distillWeight, 'distillWeight', 0, 1, where);
  expectOneOf(c.stepFrom, 'stepFrom', ['all', 'lowest', 'none'] as const, where);
  expectOneOf(c.lossBalance, 'lossBalance', ['mean', 'lowest'] as const, where);
  if (c.width !== undefined) expectInRange(c.width, 'width', 0.01, 64, where);
  if (!Array.isArray(c.bits) || c.bits.length === 0)
    throw new RangeError(`${where}: bits must list at least one precision`);
  c.bits = [...new Set(c.bits)].sort((a, b) => b - a);
  for (const b of c.bits) {
    if (!Number.isInteger(b) || b < c.minBits || b > c.topBits) {
      throw new RangeError(`Expected bits in [${c.minBits}, ${c.topBits}] of ${where} but received ${b}`);
    }
  }
  if (c.mode === 'qat' && c.bits.length !== 1) {
    throw new RangeError(
      `${where}: mode 'qat' trains one precision but bits lists ${c.bits.length} (${c.bits.join(',')})`,
    );
  }
  for (const k of ['lossWeights', 'milestones'] as const) {
    const list: unknown = c[k];
    if (!Array.isArray(list) || list.some((v) => typeof v !== 'number' || !Number.isFinite(v) || v < 0)) {
      throw new TypeError(
        `${where}: ${k} must be a list of non-negative numbers (e.g. ${k}=1,1,2) but received ${JSON.stringify(list)}`,
      );
    }
  }
  if (c.lossWeights.length !== 0 && c.lossWeights.length !== c.bits.length) {
    throw new RangeError(
      `${where}: lossWeights has ${c.lossWeights.length} entries for ${c.bits.length} precisions`,
    );
  }
  c.milestones.forEach((m) => expectInteger(m, 'milestone', 0, where));
  for (const k of ['mean', 'std'] as const) {
    const list: unknown = c[k];
    if (list === undefined) continue;
    if (
      !Array.isArray(list) ||
      list.length === 0 ||
      list.some((v) => typeof v !== 'number' || !Number.isFinite(v))
    ) {
      throw new TypeError(
        `${where}: ${k} must be a non-empty list of numbers but received ${JSON.stringify(list)}`,
      );
    }
  }
  if ((c.mean === undefined) !== (c.std === undefined)) {
    throw new RangeError(`${where}: give both mean and std, or neither`);
  }
  if (typeof c.out !== 'string' || c.out === '')
    throw new TypeError(`Expected non-empty string for out of ${where}`);
  return c;
}

export function loadConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(
      `config ${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new Error(`config ${path}: not valid JSON (${(e as Error).message})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new TypeError(`config ${path}: expected a JSON object`);
  }
  return parsed as Record<string, unknown>;
}

/** Parses `key=value` overrides: numbers, booleans, comma lists of numbers, JSON lists, or strings. */
export function parseOverride(text: string): [string, unknown] {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new RangeError(`Expected key=value for an override but received '${text}'`);
  const key = text.slice(0, eq);
  const raw = text.slice(eq + 1);
  return [key, parseValue(raw)];
}

export function parseValue(raw: string): unknown {
  if (raw === 'true' || raw === 'false') return raw === 'true';
  if (raw !== '' && !Number.isNaN(Number(raw))) return Number(raw);
  if (/^-?[\d.]+(,-?[\d.]+)+$/.test(raw)) return raw.split(',').map(Number);
  if (/^\[.*\]$/.test(raw)) {
    try {
      return JSON.parse(raw) as unknown;
    } catch {
      throw new RangeError(`Expected a JSON list such as [1,2,3] but received '${raw}'`);
    }
  }
  return raw;
}
