/** Rebuilds the network a training checkpoint describes, with its trained weights loaded. */
import { loadCheckpoint, CheckpointError, type CheckpointContent } from '../train/checkpoint.js';
import { resolveTrainConfig, type TrainConfig } from '../train/config.js';
import type { EpochRecord } from '../train/trainer.js';
import { buildModel, modelState, type BuiltModel } from '../train/trainer.js';
import type { Architecture } from '../nn/models/index.js';

/** The part of a training checkpoint's meta the commands read. */
export interface TrainingMeta {
  config: TrainConfig;
  architecture: Architecture;
  classes: string[];
  /** Epochs completed (the next epoch to run, counted from 0). */
  epoch: number;
  /** Batches of the unfinished epoch already done (0 at an epoch boundary). */
  batch: number;
  history: EpochRecord[];
  wallSeconds: number;
}

/** Checks the meta of a checkpoint written by the trainer and resolves its config again. */
export function trainingMeta(content: CheckpointContent, path: string): TrainingMeta {
  const meta = content.meta as Partial<Record<keyof TrainingMeta, unknown>>;
  const missing = (['config', 'architecture', 'classes'] as const).filter((k) => meta[k] === undefined);
  if (missing.length > 0) {
    throw new CheckpointError(
      path,
      `not a training checkpoint (its description lacks ${missing.join(', ')})`,
    );
  }
  const architecture = meta.architecture as Architecture;
  if (
    !Array.isArray(meta.classes) ||
    meta.classes.length === 0 ||
    typeof architecture.inChannels !== 'number'
  ) {
    throw new CheckpointError(path, 'its description has no class list or input channels');
  }
  return {
    config: resolveTrainConfig(meta.config as Record<string, unknown>, `checkpoint ${path}`),
    architecture,
    classes: meta.classes as string[],
    epoch: typeof meta.epoch === 'number' ? meta.epoch : 0,
    batch: typeof meta.batch === 'number' ? meta.batch : 0,
    history: Array.isArray(meta.history) ? (meta.history as EpochRecord[]) : [],
    wallSeconds: typeof meta.wallSeconds === 'number' ? meta.wallSeconds : 0,
  };
}

export interface RestoredModel extends BuiltModel {
  meta: TrainingMeta;
  content: CheckpointContent;
}

/** Loads a checkpoint and the model it holds (in eval mode, at its highest trained precision). */
export function restoreModel(path: string): RestoredModel {
  const content = loadCheckpoint(path);
  const meta = trainingMeta(content, path);
  const built = buildModel(
    meta.config,
    meta.classes.length,
    meta.architecture.inChannels,
    undefined,
    meta.architecture.name === 'imported' ? meta.architecture : undefined,
  );
  try {
    built.model.loadStateDict(modelState(content), true);
  } catch (e) {
    throw new CheckpointError(path, `its arrays do not fit the model it describes (${(e as Error).message})`);
  }
  built.model.eval();
  return { ...built, meta, content };
}
