/** Turns a training config's dataset fields into train and validation loaders. */
import {
  DataLoader,
  cifarEvalTransforms,
  cifarTrainTransforms,
  holdoutPerClass,
  imagenetEvalTransforms,
  imagenetTrainTransforms,
  loadCifar10,
  loadCifar10Jpeg,
  loadCifar100,
  loadFashionMnist,
  loadImageTree,
  loadMnist,
  loadTinyImagenetVal,
  normalize,
  datasetSize,
  subset,
  type AnyImageDataset,
  type TransformSpec,
} from '../data/index.js';
import type { TrainConfig } from './config.js';

export interface DataSources {
  train: DataLoader;
  val: DataLoader;
  /** Name of the split accuracy is reported on. */
  valSplit: string;
  classes: string[];
  inChannels: number;
}

const MNIST_MEAN = [0.1307];
const MNIST_STD = [0.3081];
const FASHION_MEAN = [0.286];
const FASHION_STD = [0.353];

/** Every k-th sample, so a limited run still sees every class (CIFAR-JPEG is stored class by class). */
function spread<T extends AnyImageDataset>(dataset: T, limit: number): T {
  const n = datasetSize(dataset);
  if (limit === 0 || limit >= n) return dataset;
  const step = n / limit;
  return subset(
    dataset,
    Int32Array.from({ length: limit }, (_, i) => Math.floor(i * step)),
  );
}

export async function loadDataSources(
  config: TrainConfig,
  log: (message: string) => void = () => undefined,
): Promise<DataSources> {
  let train: AnyImageDataset;
  let val: AnyImageDataset;
  let valSplit: string;
  let trainTf: TransformSpec[];
  let evalTf: TransformSpec[];
  const path = config.dataPath;
  switch (config.dataset) {
    case 'mnist':
    case 'fashion-mnist': {
      const load = config.dataset === 'mnist' ? loadMnist : loadFashionMnist;
      train = await load('train', path);
      val = await load('test', path);
      valSplit = 'test (10,000)';
      const [mean, std] = config.dataset === 'mnist' ? [MNIST_MEAN, MNIST_STD] : [FASHION_MEAN, FASHION_STD];
      trainTf = [normalize(mean, std)];
      evalTf = [normalize(mean, std)];
      break;
    }
    case 'cifar10-jpeg': {
      const split = await loadCifar10Jpeg({ archive: path, log });
      train = split.train;
      val = split.val;
      valSplit = 'cifar10-jpeg validation: last 500 images of each class (5,000)';
      trainTf = cifarTrainTransforms();
      evalTf = cifarEvalTransforms();
      break;
    }
    case 'cifar10':
    case 'cifar100': {
      if (path === undefined)
        throw new RangeError(`dataset '${config.dataset}' needs dataPath (the folder of the binary files)`);
      train =
        config.dataset === 'cifar10' ? await loadCifar10(path, 'train') : await loadCifar100(path, 'train');
      val = config.dataset === 'cifar10' ? await loadCifar10(path, 'test') : await loadCifar100(path, 'test');
      valSplit = 'official test split';
      trainTf = cifarTrainTransforms();
      evalTf = cifarEvalTransforms();
      break;
    }
    case 'tiny-imagenet': {
      const split = await loadTinyImagenetVal({ archive: path, log });
      train = split.train;
      val = split.val;
      valSplit = 'tiny-imagenet val archive: last 10 images of each class (2,000)';
      trainTf = imagenetTrainTransforms(config.imageSize);
      evalTf = imagenetEvalTransforms(config.imageSize);
      break;
    }
    case 'image-folder': {
      if (path === undefined)
        throw new RangeError("dataset 'image-folder' needs dataPath (a folder or .tar/.tar.gz)");
      const all = await loadImageTree(path, { log });
      const split = holdoutPerClass(all, 10);
      train = split.train;
      val = split.val;
      valSplit = 'last 10 images of each class';
      trainTf = imagenetTrainTransforms(config.imageSize);
      evalTf = imagenetEvalTransforms(config.imageSize);
      break;
    }
  }
  if (config.mean !== undefined && config.std !== undefined) {
    // An imported model's own preprocessing replaces the dataset's normalisation (always the last transform).
    const own = normalize(config.mean, config.std);
    trainTf = [...trainTf.slice(0, -1), own];
    evalTf = [...evalTf.slice(0, -1), own];
  }
  train = spread(train, config.trainLimit);
  val = spread(val, config.valLimit);
  if (config.valLimit > 0) valSplit += ` (limited to ${datasetSize(val)})`;
  return {
    train: new DataLoader(train, {
      batchSize: config.batchSize,
      shuffle: true,
      seed: config.seed,
      transforms: trainTf,
      dropLast: true,
    }),
    val: new DataLoader(val, {
      batchSize: Math.max(config.batchSize, 256),
      shuffle: false,
      transforms: evalTf,
    }),
    valSplit,
    classes: train.classes,
    inChannels: train.channels,
  };
}
