/**
 * In-memory image datasets. Pixels are uint8, channels-last (HWC), the layout every reader produces
 * and every transform consumes.
 */

/** Fixed-size images packed in one buffer: image i is `images.subarray(i * H * W * C, (i + 1) * H * W * C)`. */
export interface ImageDataset {
  images: Uint8Array;
  labels: Int32Array;
  height: number;
  width: number;
  channels: number;
  /** Class names; a label is an index into this list. */
  classes: string[];
  /** Where each image came from (path inside a folder or archive), when known. */
  sources?: string[];
}

/** One uint8 HWC image of its own size. */
export interface RawImage {
  data: Uint8Array;
  height: number;
  width: number;
}

/** Images of differing sizes (ImageNet-style folders); transforms bring them to one size per batch. */
export interface ImageListDataset {
  images: RawImage[];
  labels: Int32Array;
  channels: number;
  classes: string[];
  sources?: string[];
}

export type AnyImageDataset = ImageDataset | ImageListDataset;

/** A training/validation pair produced by the fixed holdout rules. */
export interface DatasetSplit<T extends AnyImageDataset = AnyImageDataset> {
  train: T;
  val: T;
}

export function isFixedSize(dataset: AnyImageDataset): dataset is ImageDataset {
  return !Array.isArray(dataset.images);
}

export function datasetSize(dataset: AnyImageDataset): number {
  return dataset.labels.length;
}

/** Image i as a view (no copy) for fixed-size data. */
export function getImage(dataset: AnyImageDataset, index: number): RawImage {
  if (!isFixedSize(dataset)) return dataset.images[index];
  const stride = dataset.height * dataset.width * dataset.channels;
  return {
    data: dataset.images.subarray(index * stride, (index + 1) * stride),
    height: dataset.height,
    width: dataset.width,
  };
}

/** Throws a message naming `what` when the parts of a dataset disagree. */
export function checkDataset(dataset: AnyImageDataset, what = 'dataset'): void {
  const n = dataset.labels.length;
  if (isFixedSize(dataset)) {
    const expected = n * dataset.height * dataset.width * dataset.channels;
    if (dataset.images.length !== expected) {
      throw new RangeError(
        `${what}: images hold ${dataset.images.length} bytes but ${n} labels of ` +
          `${dataset.height}x${dataset.width}x${dataset.channels} need ${expected}`,
      );
    }
  } else if (dataset.images.length !== n) {
    throw new RangeError(`${what}: ${dataset.images.length} images but ${n} labels`);
  }
  for (let i = 0; i < n; i++) {
    const label = dataset.labels[i];
    if (label < 0 || label >= dataset.classes.length) {
      throw new RangeError(
        `${what}: label ${label} of image ${i} is outside [0, ${dataset.classes.length - 1}] (${dataset.classes.length} classes)`,
      );
    }
  }
  if (dataset.sources && dataset.sources.length !== n) {
    throw new RangeError(`${what}: ${dataset.sources.length} sources but ${n} labels`);
  }
}

/** A new dataset of the given images, in the given order (pixels are copied for fixed-size data). */
export function subset<T extends AnyImageDataset>(dataset: T, indices: ArrayLike<number>): T {
  const n = datasetSize(dataset);
  const labels = new Int32Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const index = indices[i];
    if (!Number.isInteger(index) || index < 0 || index >= n) {
      throw new RangeError(`Expected indices in [0, ${n - 1}] for subset but received ${index}`);
    }
    labels[i] = dataset.labels[index];
  }
  const sources = dataset.sources ? Array.from(indices, (i) => (dataset.sources as string[])[i]) : undefined;
  if (isFixedSize(dataset)) {
    const stride = dataset.height * dataset.width * dataset.channels;
    const images = new Uint8Array(indices.length * stride);
    for (let i = 0; i < indices.length; i++) {
      images.set(dataset.images.subarray(indices[i] * stride, (indices[i] + 1) * stride), i * stride);
    }
    const out: ImageDataset = { ...dataset, images, labels };
    if (sources) out.sources = sources;
    else delete out.sources;
    return out as T;
  }
  const list = dataset as ImageListDataset;
  const out: ImageListDataset = { ...list, images: Array.from(indices, (i) => list.images[i]), labels };
  if (sources) out.sources = sources;
  else delete out.sources;
  return out as T;
}

/** Indices of each class's images, in dataset order. */
export function indicesByClass(dataset: AnyImageDataset): number[][] {
  const groups: number[][] = dataset.classes.map(() => []);
  for (let i = 0; i < dataset.labels.length; i++) groups[dataset.labels[i]].push(i);
  return groups;
}

/**
 * The fixed validation rule for data that ships without one: the last `perClass` images of every
 * class, in dataset order (file order for the folder and archive readers), are validation; all
 * others are training. Both halves keep dataset order.
 */
export function holdoutPerClass<T extends AnyImageDataset>(dataset: T, perClass: number): DatasetSplit<T> {
  if (!Number.isInteger(perClass) || perClass < 1) {
    throw new RangeError(
      `Expected positive integer for perClass but received ${String(perClass)} of type ${typeof perClass}`,
    );
  }
  const groups = indicesByClass(dataset);
  const isVal = new Uint8Array(dataset.labels.length);
  groups.forEach((group, label) => {
    if (group.length <= perClass) {
      throw new RangeError(
        `Class '${dataset.classes[label]}' has ${group.length} images; holding out ${perClass} needs at least ${perClass + 1}`,
      );
    }
    for (const index of group.slice(group.length - perClass)) isVal[index] = 1;
  });
  const train: number[] = [];
  const val: number[] = [];
  for (let i = 0; i < isVal.length; i++) (isVal[i] ? val : train).push(i);
  return { train: subset(dataset, train), val: subset(dataset, val) };
}

/** Per-class image counts, for checking splits. */
export function classCounts(dataset: AnyImageDataset): number[] {
  const counts = new Array<number>(dataset.classes.length).fill(0);
  for (const label of dataset.labels) counts[label]++;
  return counts;
}

/** Packs equal-sized list images into the fixed representation; names the first image of another size. */
export function toFixedSize(dataset: AnyImageDataset): ImageDataset {
  if (isFixedSize(dataset)) return dataset;
  const first = dataset.images[0];
  if (!first) {
    throw new RangeError('Cannot pack an empty image list into a fixed-size dataset: its size is unknown');
  }
  const { height, width } = first;
  const stride = height * width * dataset.channels;
  const images = new Uint8Array(dataset.images.length * stride);
  dataset.images.forEach((image, i) => {
    if (image.height !== height || image.width !== width) {
      const name = dataset.sources?.[i] ?? `image ${i}`;
      throw new RangeError(
        `${name} is ${image.height}x${image.width} but the first image is ${height}x${width}; ` +
          'keep the list and let the transforms crop or resize it',
      );
    }
    images.set(image.data, i * stride);
  });
  const out: ImageDataset = {
    images,
    labels: dataset.labels,
    height,
    width,
    channels: dataset.channels,
    classes: dataset.classes,
  };
  if (dataset.sources) out.sources = dataset.sources;
  return out;
}

/** True when every list image has the same size (so `toFixedSize` will succeed). */
export function hasUniformSize(dataset: ImageListDataset): boolean {
  const first = dataset.images[0];
  return !!first && dataset.images.every((im) => im.height === first.height && im.width === first.width);
}
