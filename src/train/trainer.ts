/**
 * The training loop for the three modes: full precision, dedicated QAT at one precision, and once
 * QAT (every step runs the network at every precision of the set, sums the weighted losses into the
 * shared weights' gradients, and takes one optimizer step). Checkpoints are written atomically at
 * the end of every epoch and on SIGINT/SIGTERM; a run started again with the same `out` folder
 * resumes exactly where the last checkpoint left it (model, optimizer, schedule position, epoch,
 * batch, metrics).
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { backward } from '../engine/autograd.js';
import { scope } from '../engine/memory.js';
import { add, scale, softCrossEntropy, softmaxCrossEntropy, softmaxRows } from '../engine/ops.js';
import { Random } from '../engine/random.js';
import { Tensor } from '../engine/tensor.js';
import { manualSeed } from '../nn/init.js';
import { createModel, type Architecture } from '../nn/models/index.js';
import type { Module, Parameter } from '../nn/module.js';
import {
  clampQuantizerScales,
  quantizedLayers,
  quantizeModel,
  setPrecision,
  type QuantConfig,
} from '../quant/quantize-model.js';
import { MetricsLog, ProgressBar, lineChart, writeChart } from '../report/index.js';
import {
  loadCheckpoint,
  loadLatestCheckpoint,
  saveCheckpoint,
  type CheckpointContent,
} from './checkpoint.js';
import type { TrainConfig } from './config.js';
import { loadDataSources, type DataSources } from './data.js';
import { evaluate, type EvalResult } from './evaluate.js';
import { AdamW, SGD, type Optimizer, type OptimizerState } from './optim.js';
import { ConstantSchedule, CosineSchedule, StepSchedule, WarmupSchedule, type Schedule } from './schedule.js';

export interface EpochRecord {
  epoch: number;
  lr: number;
  /** Mean training loss per precision ('fp' for full precision). */
  trainLoss: Record<string, number>;
  /** Validation top-1 per precision. */
  valTop1: Record<string, number>;
  wallSeconds: number;
}

export interface TrainResult {
  config: TrainConfig;
  architecture: Architecture;
  quant: QuantConfig | null;
  results: EvalResult[];
  history: EpochRecord[];
  wallSeconds: number;
  checkpoint: string;
  valSplit: string;
  interrupted: boolean;
}

export interface TrainOptions {
  /** Resume from `<out>/checkpoint.ckpt` when present (default true). */
  resume?: boolean;
  log?: (message: string) => void;
  /** Stop after this many optimizer steps in this process (tests of interruption). */
  maxSteps?: number;
  /** Progress output; quiet by default when not a TTY. */
  progressStream?: NodeJS.WriteStream;
}

export function checkpointPath(config: TrainConfig): string {
  return join(config.out, 'checkpoint.ckpt');
}

/** Parameters that weight decay should leave alone: biases, batch-norm affine, quantizer steps. */
function noDecaySet(model: Module): Set<Parameter> {
  return new Set(
    model
      .namedParameters()
      .filter(([name, p]) => p.rank <= 1 || /(^|\.)(weightScale|actScale\d+)$/.test(name))
      .map(([, p]) => p),
  );
}

export interface BuiltModel {
  model: Module;
  architecture: Architecture;
  quant: QuantConfig | null;
}

/** The network a config describes, quantization-aware unless mode is 'fp'. */
export function buildModel(
  config: TrainConfig,
  numClasses: number,
  inChannels: number,
  initFrom?: CheckpointContent,
  imported?: Architecture,
): BuiltModel {
  manualSeed(config.seed);
  if (imported !== undefined && imported.numClasses !== numClasses) {
    throw new RangeError(
      `the imported network has ${imported.numClasses} outputs but dataset ${config.dataset} has ${numClasses} classes`,
    );
  }
  const architecture: Architecture = imported ?? {
    name: config.model,
    numClasses,
    inChannels,
    ...(config.width ? { width: config.width } : {}),
  };
  const model = createModel(architecture);
  if (initFrom !== undefined) model.loadStateDict(modelState(initFrom, 'fp'), true);
  let quant: QuantConfig | null = null;
  if (config.mode !== 'fp') {
    quant = quantizeModel(model, {
      topBits: config.topBits,
      minBits: config.minBits,
      precisions: config.bits,
      rule: config.rule,
      firstLast: config.firstLast,
      fixedBits: config.fixedBits,
    });
    const stepBits =
      config.stepFrom === 'all'
        ? null
        : new Set(config.stepFrom === 'lowest' ? [Math.min(...config.bits)] : []);
    for (const [, layer] of quantizedLayers(model)) layer.stepLearnsFrom = stepBits;
  }
  return { model, architecture, quant };
}

/** The model arrays of a checkpoint; `expect` checks it was trained in a compatible mode. */
export function modelState(content: CheckpointContent, expect?: 'fp'): Map<string, Float32Array> {
  const meta = content.meta as { config?: { mode?: string } };
  if (expect === 'fp' && meta.config?.mode !== undefined && meta.config.mode !== 'fp') {
    throw new RangeError(
      `init checkpoint was trained with mode '${meta.config.mode}'; fine-tuning starts from a full-precision ('fp') one`,
    );
  }
  const state = new Map<string, Float32Array>();
  for (const [name, arr] of content.arrays) if (name.startsWith('model.')) state.set(name.slice(6), arr);
  return state;
}

function makeOptimizer(config: TrainConfig, model: Module): Optimizer {
  const params = model.parameters();
  const noDecay = noDecaySet(model);
  return config.optimizer === 'adamw'
    ? new AdamW(params, { lr: config.lr, weightDecay: config.weightDecay, noDecay })
    : new SGD(params, {
        lr: config.lr,
        momentum: config.momentum,
        nesterov: config.nesterov && config.momentum > 0,
        weightDecay: config.weightDecay,
        noDecay,
      });
}

function makeSchedule(config: TrainConfig, stepsPerEpoch: number): Schedule {
  const total = config.epochs * stepsPerEpoch;
  const inner =
    config.schedule === 'cosine'
      ? new CosineSchedule(config.lr, total)
      : config.schedule === 'step'
        ? new StepSchedule(
            config.lr,
            config.milestones.map((m) => m * stepsPerEpoch),
            config.gamma,
          )
        : new ConstantSchedule(config.lr);
  return config.warmupEpochs > 0 ? new WarmupSchedule(inner, config.warmupEpochs * stepsPerEpoch) : inner;
}

/** Precisions run in one once-QAT step: all, or highest + lowest + a seeded sample of the rest. */
export function precisionsForStep(config: TrainConfig, step: number): number[] {
  const all = config.mode === 'fp' ? [] : config.bits;
  const k = config.samplePrecisions;
  if (config.mode !== 'once' || k === 0 || k >= all.length) return all;
  const middle = all.slice(1, -1);
  new Random(config.seed * 7919 + step).shuffle(middle);
  return [all[0], ...middle.slice(0, Math.max(0, k - 2)), all[all.length - 1]].sort((a, b) => b - a);
}

/**
 * A precision's weight in the step's loss. The mean keeps a learning rate meaning the same in every
 * mode; 'lowest' gives the lowest precision the whole rate and the others one share between them.
 */
export function lossWeight(config: TrainConfig, precisions: (number | null)[], b: number | null): number {
  if (config.lossWeights.length > 0) return config.lossWeights[config.bits.indexOf(b!)];
  if (config.lossBalance === 'mean' || precisions.length === 1) return 1 / precisions.length;
  const lowest = Math.min(...(precisions as number[]));
  return b === lowest ? 1 : 1 / (precisions.length - 1);
}

function label(bits: number | null): string {
  return bits === null ? 'fp' : `w${bits}a${bits}`;
}

/** The architecture of a checkpoint holding an imported network (strata import), if it is one. */
export function importedArchitecture(content: CheckpointContent | undefined): Architecture | undefined {
  const arch = (content?.meta as { architecture?: Architecture } | undefined)?.architecture;
  return arch?.name === 'imported' ? arch : undefined;
}

export async function runTraining(config: TrainConfig, options: TrainOptions = {}): Promise<TrainResult> {
  const log = options.log ?? ((m: string) => process.stderr.write(`${m}\n`));
  const started = performance.now();
  const data: DataSources = await loadDataSources(config, log);
  const numClasses = data.classes.length;
  const ckptPath = checkpointPath(config);
  const resumeFrom = options.resume === false ? null : loadLatestCheckpoint(ckptPath);
  if (resumeFrom?.refused) log(`warning: ${resumeFrom.refused}; resuming from ${resumeFrom.from}`);
  const init = config.init !== undefined && resumeFrom === null ? loadCheckpoint(config.init) : undefined;

  // An imported network (strata import) is described by its checkpoint, not by a model name.
  const imported = importedArchitecture(resumeFrom?.content ?? init);
  if (imported !== undefined && config.model !== 'imported') {
    log(`the network is the one imported into ${resumeFrom?.from ?? config.init} (model 'imported')`);
    config = { ...config, model: 'imported' };
  }
  const { model, architecture, quant } = buildModel(config, numClasses, data.inChannels, init, imported);
  const optimizer = makeOptimizer(config, model);
  const stepsPerEpoch = data.train.batchesPerEpoch;
  const schedule = makeSchedule(config, stepsPerEpoch);
  let epoch = 0;
  let startBatch = 0;
  let history: EpochRecord[] = [];
  let priorWall = 0;
  if (resumeFrom !== null) {
    const meta = resumeFrom.content.meta as {
      epoch: number;
      batch: number;
      history: EpochRecord[];
      wallSeconds: number;
      optimizer: Omit<OptimizerState, 'slots'>;
      config: TrainConfig;
    };
    if (
      meta.config.model !== config.model ||
      meta.config.mode !== config.mode ||
      meta.config.bits.join() !== config.bits.join()
    ) {
      throw new RangeError(
        `${resumeFrom.from} was written by a different run (${meta.config.model}, ${meta.config.mode}, bits ${meta.config.bits.join(',')}); ` +
          'use another --out folder or delete it to start afresh',
      );
    }
    model.loadStateDict(modelState(resumeFrom.content), true);
    optimizer.loadStateDict({ ...meta.optimizer, slots: optimizerSlots(resumeFrom.content) });
    epoch = meta.epoch;
    startBatch = meta.batch;
    history = meta.history;
    priorWall = meta.wallSeconds;
    log(
      epoch >= config.epochs
        ? `${resumeFrom.from}: all ${config.epochs} epochs already done; evaluating`
        : `resumed from ${resumeFrom.from}: epoch ${epoch + 1}, batch ${startBatch}`,
    );
  } else if (init !== undefined) {
    log(`initialised from ${config.init}`);
  }

  const metricsPath = join(config.out, 'metrics.jsonl');
  // A fresh run starts a fresh log; a resumed one appends to the records it already wrote.
  if (resumeFrom === null) rmSync(metricsPath, { force: true });
  const metrics = new MetricsLog(metricsPath);
  let stopRequested = false;
  const onSignal = (signal: string) => {
    if (stopRequested) process.exit(130);
    stopRequested = true;
    log(
      `\n${signal}: finishing the current step and writing a checkpoint${signal === 'SIGINT' ? ' (press Ctrl-C again to abort)' : ''}`,
    );
  };
  const onInt = () => onSignal('SIGINT');
  const onTerm = () => onSignal('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);

  const wallNow = () => priorWall + (performance.now() - started) / 1000;
  const save = (nextEpoch: number, nextBatch: number) =>
    saveCheckpoint(ckptPath, {
      meta: {
        kind: 'strata-training',
        config,
        architecture,
        quant,
        classes: data.classes,
        epoch: nextEpoch,
        batch: nextBatch,
        history,
        wallSeconds: wallNow(),
        optimizer: { kind: optimizer.stateDict().kind, step: optimizer.stepCount, lr: optimizer.lr },
      },
      arrays: checkpointArrays(model, optimizer),
    });

  let stepsThisRun = 0;
  let interrupted = false;
  try {
    training: for (; epoch < config.epochs; epoch++, startBatch = 0) {
      model.train();
      const losses = new Map<string, { sum: number; n: number }>();
      const bar = new ProgressBar({
        total: (stepsPerEpoch - startBatch) * config.batchSize,
        label: `epoch ${epoch + 1}/${config.epochs}`,
        unit: 'img',
        ...(options.progressStream ? { stream: options.progressStream } : {}),
      });
      let batchIndex = startBatch;
      for await (const batch of data.train.epoch(epoch, { startBatch })) {
        const step = epoch * stepsPerEpoch + batch.index;
        optimizer.lr = schedule.lrAt(step);
        const stepLosses = trainStep(model, optimizer, config, batch.images, batch.shape, batch.labels, step);
        for (const [k, v] of stepLosses) {
          const agg = losses.get(k) ?? { sum: 0, n: 0 };
          agg.sum += v;
          agg.n++;
          losses.set(k, agg);
        }
        batchIndex = batch.index + 1;
        const first = [...stepLosses.values()][0];
        bar.tick(batch.size, { loss: first, lr: optimizer.lr });
        stepsThisRun++;
        if (stopRequested || (options.maxSteps !== undefined && stepsThisRun >= options.maxSteps)) {
          bar.finish();
          save(epoch, batchIndex);
          interrupted = true;
          log(
            `checkpoint written to ${ckptPath} (epoch ${epoch + 1}, batch ${batchIndex}); run the same command to resume`,
          );
          break training;
        }
      }
      bar.finish();
      const evalBits = config.mode === 'fp' ? [null] : config.bits;
      const valTop1: Record<string, number> = {};
      for (const b of evalBits) valTop1[label(b)] = (await evaluate(model, data.val, b)).top1;
      const record: EpochRecord = {
        epoch: epoch + 1,
        lr: optimizer.lr,
        trainLoss: Object.fromEntries([...losses].map(([k, v]) => [k, v.sum / v.n])),
        valTop1,
        wallSeconds: wallNow(),
      };
      history.push(record);
      metrics.append({ ...record });
      log(
        `epoch ${epoch + 1}: ` +
          Object.entries(valTop1)
            .map(([k, v]) => `${k} ${v.toFixed(2)}%`)
            .join('  '),
      );
      save(epoch + 1, 0);
    }
  } finally {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  }

  // An interrupted run reports nothing: its model is mid-epoch and the run resumes later.
  const results: EvalResult[] = [];
  if (!interrupted) {
    for (const b of config.mode === 'fp' ? [null] : config.bits)
      results.push(await evaluate(model, data.val, b));
    await writeCurves(config, history);
  }
  await data.train.close();
  await data.val.close();
  if (quant !== null) setPrecision(model, config.bits[0]);
  return {
    config,
    architecture,
    quant,
    results,
    history,
    wallSeconds: wallNow(),
    checkpoint: ckptPath,
    valSplit: data.valSplit,
    interrupted,
  };
}

/** One optimizer step; returns the loss per precision. */
export function trainStep(
  model: Module,
  optimizer: Optimizer,
  config: TrainConfig,
  images: Float32Array,
  shape: number[],
  labels: Int32Array,
  step: number,
): Map<string, number> {
  const x = new Tensor(images, shape);
  const out = new Map<string, number>();
  optimizer.zeroGrad();
  const precisions: (number | null)[] = config.mode === 'fp' ? [null] : precisionsForStep(config, step);
  let teacher: Float32Array | null = null;
  for (const b of precisions) {
    if (b !== null) setPrecision(model, b);
    const weight = lossWeight(config, precisions, b);
    scope(() => {
      const logits = model.forward(x);
      let loss = softmaxCrossEntropy(logits, labels, { labelSmoothing: config.labelSmoothing });
      out.set(label(b), loss.item());
      if (config.distill && b !== null) {
        const probs = teacher === null || config.distillFrom === 'next' ? softmaxRows(logits) : null;
        if (teacher !== null) {
          const a = config.distillWeight;
          loss = add(scale(loss, 1 - a), scale(softCrossEntropy(logits, teacher), a));
        }
        // Precisions run highest first, so the teacher is the highest one or this one's neighbour above.
        if (probs !== null) teacher = probs;
      }
      backward(loss, Tensor.full([], weight));
    });
  }
  optimizer.step();
  if (config.mode !== 'fp') clampQuantizerScales(model);
  return out;
}

function checkpointArrays(model: Module, optimizer: Optimizer): Map<string, Float32Array> {
  const arrays = new Map<string, Float32Array>();
  for (const [name, t] of model.stateDict()) arrays.set(`model.${name}`, t.data);
  const state = optimizer.stateDict();
  for (const [slot, list] of Object.entries(state.slots))
    list.forEach((a, i) => arrays.set(`optim.${slot}.${i}`, a));
  return arrays;
}

function optimizerSlots(content: CheckpointContent): Record<string, Float32Array[]> {
  const slots: Record<string, Float32Array[]> = {};
  for (const [name, arr] of content.arrays) {
    const m = /^optim\.([^.]+)\.(\d+)$/.exec(name);
    if (m === null) continue;
    (slots[m[1]] ??= [])[Number(m[2])] = arr;
  }
  return slots;
}

async function writeCurves(config: TrainConfig, history: EpochRecord[]): Promise<void> {
  if (history.length === 0) return;
  const keys = Object.keys(history[0].valTop1);
  const svg = lineChart({
    title: `${config.model} on ${config.dataset}: ${config.mode === 'once' ? 'once QAT' : config.mode === 'qat' ? `dedicated ${config.bits[0]}-bit QAT` : 'full precision'}`,
    xLabel: 'epoch',
    yLabel: 'validation top-1 (%)',
    series: keys.map((k) => ({
      name: k,
      points: history.map((h) => [h.epoch, h.valTop1[k]] as [number, number]),
    })),
  });
  await writeChart(join(config.out, 'curves.svg'), svg);
  const lossSvg = lineChart({
    title: 'training loss',
    xLabel: 'epoch',
    yLabel: 'cross-entropy',
    series: Object.keys(history[0].trainLoss).map((k) => ({
      name: k,
      points: history.map((h) => [h.epoch, h.trainLoss[k]] as [number, number]),
    })),
  });
  await writeChart(join(config.out, 'loss.svg'), lossSvg);
}
