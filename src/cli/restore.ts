/** Rebuilds the network a training checkpoint describes, with its trained weights loaded. */
import { loadCheckpoint, CheckpointError, type CheckpointContent } from '../train/checkpoint.js';
import { resolveTrainConfig, type TrainConfig } from '../train/config.js';
import type { EpochRecord } from '../train/trainer.js';
import { buildModel, modelState, type BuiltModel } from '../train/trainer.js';
import { describeValue, InvalidInputError } from '../engine/limits.js';
import {
  checkArchitecture,
  classifierFeatures,
  graphWeightShapes,
  type Architecture,
} from '../nn/models/index.js';

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

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function numberMap(v: unknown): v is Record<string, number> {
  return isRecord(v) && Object.values(v).every((x) => typeof x === 'number');
}

/** One epoch record as the trainer writes it; the commands read epoch, lr, losses and accuracies. */
function isEpochRecord(v: unknown): v is EpochRecord {
  return (
    isRecord(v) &&
    typeof v.epoch === 'number' &&
    typeof v.lr === 'number' &&
    numberMap(v.trainLoss) &&
    numberMap(v.valTop1) &&
    typeof v.wallSeconds === 'number'
  );
}

/**
 * Checks the meta of a checkpoint written by the trainer and resolves its config again. The meta is
 * untrusted JSON (its CRC only proves it was written whole): every field the commands read is
 * checked here, and any refusal is a CheckpointError naming the file and the field.
 */
export function trainingMeta(content: CheckpointContent, path: string): TrainingMeta {
  const meta = content.meta as Partial<Record<keyof TrainingMeta, unknown>>;
  const missing = (['config', 'architecture', 'classes'] as const).filter((k) => meta[k] === undefined);
  if (missing.length > 0) {
    throw new CheckpointError(
      path,
      `not a training checkpoint (its description lacks ${missing.join(', ')})`,
    );
  }
  if (!isRecord(meta.config)) {
    throw new CheckpointError(path, `config must be an object but is ${describeValue(meta.config)}`);
  }
  let architecture: Architecture;
  let config: TrainConfig;
  try {
    architecture = checkArchitecture(meta.architecture, `checkpoint ${path}`);
    config = resolveTrainConfig(meta.config, `checkpoint ${path}`);
  } catch (e) {
    if (e instanceof InvalidInputError)
      throw new CheckpointError(path, `${e.field} ${e.value} ${e.limit}`.trim());
    if (e instanceof RangeError || e instanceof TypeError) throw new CheckpointError(path, e.message);
    throw e;
  }
  if (
    !Array.isArray(meta.classes) ||
    meta.classes.length !== architecture.numClasses ||
    !meta.classes.every((c) => typeof c === 'string')
  ) {
    throw new CheckpointError(
      path,
      `classes must list ${architecture.numClasses} names (architecture.numClasses) but is ${describeValue(meta.classes)}`,
    );
  }
  const history = meta.history ?? [];
  if (!Array.isArray(history) || !history.every(isEpochRecord)) {
    throw new CheckpointError(
      path,
      `history must list epoch records ({ epoch, lr, trainLoss, valTop1, wallSeconds }) but is ${describeValue(history)}`,
    );
  }
  const count = (key: 'epoch' | 'batch' | 'wallSeconds'): number => {
    const v = meta[key] ?? 0;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
      throw new CheckpointError(path, `${key} must be a non-negative number but is ${describeValue(v)}`);
    }
    return v;
  };
  return {
    config,
    architecture,
    classes: meta.classes as string[],
    epoch: count('epoch'),
    batch: count('batch'),
    history,
    wallSeconds: count('wallSeconds'),
  };
}

export interface RestoredModel extends BuiltModel {
  meta: TrainingMeta;
  content: CheckpointContent;
}

/** Loads a checkpoint and the model it holds (in eval mode, at its highest trained precision). */
export function restoreModel(path: string): RestoredModel {
  return restoreContent(loadCheckpoint(path), path);
}

/**
 * The model a decoded checkpoint holds. The classifier's array is compared with the architecture
 * before the network is built, so a description claiming a huge class count over small arrays is
 * refused without allocating the network it names.
 */
export function restoreContent(content: CheckpointContent, path: string): RestoredModel {
  const meta = trainingMeta(content, path);
  // An imported network's sizes come from its own graph; a built-in one's from the class count.
  const graph = meta.architecture.graph;
  if (meta.architecture.name === 'imported' && graph !== undefined) {
    for (const [name, shape] of graphWeightShapes(graph)) {
      const array = content.arrays.get(`model.${name}`);
      const size = shape.reduce((x, y) => x * y, 1);
      if (array === undefined || array.length !== size) {
        throw new CheckpointError(
          path,
          `array 'model.${name}' holds ${array?.length ?? 'no'} values but the imported graph needs ${size}`,
        );
      }
    }
  } else {
    const classifier = content.arrays.get('model.fc.weight');
    const features = classifierFeatures({
      ...meta.architecture,
      name: meta.config.model,
      width: meta.config.width,
    });
    const expected = meta.classes.length * features;
    if (classifier === undefined || classifier.length !== expected) {
      throw new CheckpointError(
        path,
        `array 'model.fc.weight' holds ${classifier?.length ?? 'no'} values but ${meta.config.model} with ${meta.classes.length} classes needs ${expected}`,
      );
    }
  }
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
