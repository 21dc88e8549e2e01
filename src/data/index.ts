export type { AnyImageDataset, DatasetSplit, ImageDataset, ImageListDataset, RawImage } from './dataset.js';
export {
  checkDataset,
  classCounts,
  datasetSize,
  getImage,
  hasUniformSize,
  holdoutPerClass,
  indicesByClass,
  isFixedSize,
  subset,
  toFixedSize,
} from './dataset.js';
export type { IdxArray, IdxSplit } from './idx.js';
export {
  FASHION_MNIST_CLASSES,
  FASHION_MNIST_DIR,
  MNIST_CLASSES,
  loadFashionMnist,
  loadIdxDataset,
  loadMnist,
  readIdx,
} from './idx.js';
export type { Cifar100Label, CifarRecords } from './cifar.js';
export { CIFAR10_CLASSES, loadCifar10, loadCifar100, readCifar10, readCifar100 } from './cifar.js';
export type { ReadTarOptions, TarEntry } from './tar.js';
export { isTarPath, readTar } from './tar.js';
export type { ImageFormat } from './image-decode.js';
export { IMAGE_EXTENSIONS, decodeImage, hasImageExtension, sniffImageFormat } from './image-decode.js';
export type { ImageTreeOptions } from './image-tree.js';
export { compareNames, readImageFolder, readImageTar, readImageTree } from './image-tree.js';
export type { CacheReadResult, CachedOptions } from './cache.js';
export {
  CACHE_FORMAT_VERSION,
  cacheFilePath,
  cacheRoot,
  cachedDataset,
  fileDigest,
  folderDigest,
  readDatasetCache,
  writeDatasetCache,
} from './cache.js';
export type { ArchiveOptions, LoadImageTreeOptions } from './real-datasets.js';
export {
  CIFAR10_JPEG_VAL_PER_CLASS,
  TINY_IMAGENET_VAL_PER_CLASS,
  loadCifar10Jpeg,
  loadImageTree,
  loadTinyImagenetVal,
  repoRoot,
  sharedDatasetsDir,
  sharedDir,
} from './real-datasets.js';
export type { Region } from './resize.js';
export { resizeBilinear } from './resize.js';
export type { TransformSpec } from './transforms.js';
export {
  CIFAR10_MEAN,
  CIFAR10_STD,
  IMAGENET_MEAN,
  IMAGENET_STD,
  applyGeometric,
  centerCrop,
  checkTransforms,
  cifarEvalTransforms,
  cifarTrainTransforms,
  imagenetEvalTransforms,
  imagenetTrainTransforms,
  normalize,
  outputSize,
  randomCrop,
  randomHorizontalFlip,
  randomResizedCrop,
  resize,
  sampleRandom,
  sampleSeed,
  transformInto,
  writeFloat,
} from './transforms.js';
export type { Batch, DataLoaderOptions, TensorBatchOptions, TensorLike } from './loader.js';
export { DataLoader, WORKER_MIN_PIXELS, batchesFromTensors, epochOrder } from './loader.js';
export { WorkerPool } from './worker-pool.js';
