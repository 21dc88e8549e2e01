import os from 'node:os';
import { Random } from '../engine/random.js';
import type { AnyImageDataset, RawImage } from './dataset.js';
import { checkDataset, datasetSize, getImage } from './dataset.js';
import type { TransformSpec } from './transforms.js';
import { checkTransforms, outputSize, sampleSeed, transformInto } from './transforms.js';
import { WorkerPool } from './worker-pool.js';

/** A batch of channels-last float images ([N, H, W, C]) with their labels. */
export interface Batch {
  images: Float32Array;
  labels: Int32Array;
  /** Number of samples (N). */
  size: number;
  /** [N, H, W, C] for DataLoader batches; [N, ...rest] of the source for batchesFromTensors. */
  shape: number[];
  epoch: number;
  /** Position of this batch in its epoch. */
  index: number;
}

export interface DataLoaderOptions {
  batchSize: number;
  /** Reshuffle every epoch (default true); the order is a function of (seed, epoch) only. */
  shuffle?: boolean;
  seed?: number;
  /** Drop the last, smaller batch (default false). */
  dropLast?: boolean;
  /** Augmentation pipeline; default none (pixels scaled to [0, 1]). */
  transforms?: TransformSpec[];
  /** Batches prepared ahead of the consumer (default 2). */
  prefetch?: number;
  /**
   * Worker threads for augmentation. 'auto' (default) uses them only when one output image has at
   * least WORKER_MIN_PIXELS pixels and the machine has more than one CPU: below that, posting images
   * to a thread costs more than transforming them on the main thread between steps.
   */
  workers?: number | 'auto';
}

/**
 * Output pixels per image from which worker threads pay off. Measured on the 2-core development
 * machine (busy): CIFAR crop+flip+normalise of a 128-batch takes 8.6 ms on the main thread and 10.2 ms
 * through one worker (the images are copied there and back), so 32x32 data stays on the main
 * thread, where a batch is built while the consumer awaits its native kernels. A 224x224
 * random-resized-crop of 375x500 images costs about 9 ms an image (290 ms for 32): there a pool of
 * (cores - 1) workers both divides the time and keeps the main thread free for the training step.
 */
export const WORKER_MIN_PIXELS = 96 * 96;

function positiveInteger(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new TypeError(
      `Expected positive integer for ${name} but received ${String(value)} of type ${typeof value}`,
    );
  }
  return value;
}

function nonNegativeInteger(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new TypeError(
      `Expected non-negative integer for ${name} but received ${String(value)} of type ${typeof value}`,
    );
  }
  return value;
}

/** The sample order of one epoch: identity, or a shuffle drawn from (seed, epoch) alone. */
export function epochOrder(size: number, shuffle: boolean, seed: number, epoch: number): Int32Array {
  const order = new Int32Array(size);
  for (let i = 0; i < size; i++) order[i] = i;
  // A position no sample can have keeps the shuffle stream apart from the per-sample streams.
  if (shuffle) new Random(sampleSeed(seed, epoch, 2 ** 32 - 1)).shuffle(order);
  return order;
}

function countBatches(size: number, batchSize: number, dropLast: boolean): number {
  return dropLast ? Math.floor(size / batchSize) : Math.ceil(size / batchSize);
}

/**
 * Batches from a dataset, augmented and shuffled reproducibly: the sample order depends on
 * (seed, epoch), each sample's augmentation on (seed, epoch, position in the epoch). A run resumed at
 * batch k of epoch e therefore sees exactly the batches the uninterrupted run would have, whether
 * batches are built on the main thread or in workers.
 */
export class DataLoader {
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  readonly transforms: readonly TransformSpec[];
  readonly prefetch: number;
  readonly workerCount: number;
  private pool: WorkerPool | null = null;
  private readonly outHeight: number;
  private readonly outWidth: number;

  constructor(
    readonly dataset: AnyImageDataset,
    options: DataLoaderOptions,
  ) {
    checkDataset(dataset);
    this.batchSize = positiveInteger(options.batchSize, 'batchSize');
    this.shuffle = options.shuffle ?? true;
    this.seed = options.seed ?? 0;
    if (!Number.isSafeInteger(this.seed) || this.seed < 0) {
      throw new TypeError(`Expected non-negative integer for seed but received ${String(this.seed)}`);
    }
    this.dropLast = options.dropLast ?? false;
    this.transforms = [...(options.transforms ?? [])];
    checkTransforms(this.transforms, dataset.channels);
    this.prefetch = nonNegativeInteger(options.prefetch ?? 2, 'prefetch');
    if (datasetSize(dataset) === 0) throw new RangeError('DataLoader needs a non-empty dataset');
    const first = getImage(dataset, 0);
    [this.outHeight, this.outWidth] = outputSize(this.transforms, first.height, first.width);
    const workers = options.workers ?? 'auto';
    if (workers === 'auto') {
      const cpus = os.availableParallelism();
      const resizes = this.transforms.some((t) => t.kind === 'resize' || t.kind === 'randomResizedCrop');
      const big = this.outHeight * this.outWidth >= WORKER_MIN_PIXELS || resizes;
      this.workerCount = big && cpus > 1 ? Math.min(cpus - 1, 8) : 0;
    } else {
      this.workerCount = nonNegativeInteger(workers, 'workers');
    }
  }

  get size(): number {
    return datasetSize(this.dataset);
  }

  get batchesPerEpoch(): number {
    return countBatches(this.size, this.batchSize, this.dropLast);
  }

  /** [H, W, C] of every output image. */
  get imageShape(): [number, number, number] {
    return [this.outHeight, this.outWidth, this.dataset.channels];
  }

  order(epoch: number): Int32Array {
    nonNegativeInteger(epoch, 'epoch');
    return epochOrder(this.size, this.shuffle, this.seed, epoch);
  }

  private checkBatchIndex(index: number): void {
    nonNegativeInteger(index, 'batch index');
    if (index >= this.batchesPerEpoch) {
      throw new RangeError(`Expected batch index in [0, ${this.batchesPerEpoch - 1}] but received ${index}`);
    }
  }

  /** Builds batch `index` of `epoch` (what the iterator would yield there). */
  batch(epoch: number, index: number): Promise<Batch> {
    this.checkBatchIndex(index);
    return this.build(this.order(epoch), epoch, index);
  }

  private build(order: Int32Array, epoch: number, index: number): Promise<Batch> {
    const start = index * this.batchSize;
    const end = Math.min(start + this.batchSize, order.length);
    const n = end - start;
    const channels = this.dataset.channels;
    const stride = this.outHeight * this.outWidth * channels;
    const labels = new Int32Array(n);
    const images: RawImage[] = [];
    const names: string[] = [];
    const seeds: number[] = [];
    for (let i = 0; i < n; i++) {
      const sample = order[start + i];
      labels[i] = this.dataset.labels[sample];
      images.push(getImage(this.dataset, sample));
      names.push(this.dataset.sources?.[sample] ?? `image ${sample}`);
      seeds.push(sampleSeed(this.seed, epoch, start + i));
    }
    const batch = (data: Float32Array): Batch => ({
      images: data,
      labels,
      size: n,
      shape: [n, this.outHeight, this.outWidth, channels],
      epoch,
      index,
    });
    if (this.workerCount === 0) {
      // Deferred to the event loop so that, while the consumer awaits a native kernel, the next
      // batch is being built.
      return new Promise((resolve, reject) => {
        setImmediate(() => {
          try {
            const data = new Float32Array(n * stride);
            for (let i = 0; i < n; i++) {
              const rng = new Random(seeds[i]);
              transformInto(
                images[i],
                channels,
                this.transforms,
                rng,
                data,
                i * stride,
                this.outHeight,
                this.outWidth,
                names[i],
              );
            }
            resolve(batch(data));
          } catch (err) {
            reject(err as Error);
          }
        });
      });
    }
    this.pool ??= new WorkerPool(this.workerCount);
    const pool = this.pool;
    const parts = Math.min(this.workerCount, n);
    const per = Math.ceil(n / parts);
    const jobs: Promise<Float32Array>[] = [];
    for (let from = 0; from < n; from += per) {
      const to = Math.min(n, from + per);
      jobs.push(
        pool.run({
          images: images.slice(from, to),
          names: names.slice(from, to),
          seeds: seeds.slice(from, to),
          channels,
          specs: [...this.transforms],
          height: this.outHeight,
          width: this.outWidth,
        }),
      );
    }
    return Promise.all(jobs).then((outputs) => {
      const data = new Float32Array(n * stride);
      outputs.forEach((output, i) => data.set(output, i * per * stride));
      return batch(data);
    });
  }

  /**
   * The batches of one epoch from `startBatch` on, keeping `prefetch` batches in preparation while
   * the consumer works on the current one.
   */
  async *epoch(epoch: number, options: { startBatch?: number } = {}): AsyncGenerator<Batch> {
    const total = this.batchesPerEpoch;
    const startBatch = nonNegativeInteger(options.startBatch ?? 0, 'startBatch');
    if (startBatch > total) {
      throw new RangeError(`Expected startBatch in [0, ${total}] but received ${startBatch}`);
    }
    const order = this.order(epoch);
    const ahead = Math.max(1, this.prefetch);
    const queue: Promise<Batch>[] = [];
    let next = startBatch;
    const fill = (): void => {
      while (queue.length < ahead && next < total) {
        const pending = this.build(order, epoch, next++);
        // Marked handled here; the rejection still reaches the consumer when it awaits the batch.
        pending.catch(() => undefined);
        queue.push(pending);
      }
    };
    fill();
    while (queue.length > 0) {
      const batch = await (queue.shift() as Promise<Batch>);
      if (this.prefetch > 0) fill();
      yield batch;
      fill();
    }
  }

  /** Stops the worker threads (if any were started). The loader can still be used afterwards. */
  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = null;
    await pool?.close();
  }
}

/** Anything shaped like an engine Tensor. */
export interface TensorLike {
  data: Float32Array;
  shape: readonly number[];
}

export interface TensorBatchOptions {
  batchSize: number;
  shuffle?: boolean;
  seed?: number;
  epoch?: number;
  dropLast?: boolean;
  startBatch?: number;
}

/**
 * Batches from pre-made tensors (images [N, ...], labels [N] as Int32Array or float tensor), with the
 * same (seed, epoch) shuffle as DataLoader. Rows are copied, so the batches may be kept.
 */
export function* batchesFromTensors(
  images: TensorLike,
  labels: Int32Array | TensorLike,
  options: TensorBatchOptions,
): Generator<Batch> {
  const batchSize = positiveInteger(options.batchSize, 'batchSize');
  const n = images.shape[0];
  if (images.shape.length < 2) {
    throw new RangeError(
      `Expected images of rank >= 2 ([N, ...]) but received shape [${images.shape.join(', ')}]`,
    );
  }
  const labelArray =
    labels instanceof Int32Array ? labels : Int32Array.from(labels.data, (v) => Math.round(v));
  if (labelArray.length !== n) {
    throw new RangeError(`Expected ${n} labels for ${n} images but received ${labelArray.length}`);
  }
  const rowShape = images.shape.slice(1);
  const stride = rowShape.reduce((a, b) => a * b, 1);
  const epoch = nonNegativeInteger(options.epoch ?? 0, 'epoch');
  const order = epochOrder(n, options.shuffle ?? true, options.seed ?? 0, epoch);
  const total = countBatches(n, batchSize, options.dropLast ?? false);
  for (let index = options.startBatch ?? 0; index < total; index++) {
    const start = index * batchSize;
    const size = Math.min(batchSize, n - start);
    const data = new Float32Array(size * stride);
    const batchLabels = new Int32Array(size);
    for (let i = 0; i < size; i++) {
      const row = order[start + i];
      data.set(images.data.subarray(row * stride, (row + 1) * stride), i * stride);
      batchLabels[i] = labelArray[row];
    }
    yield { images: data, labels: batchLabels, size, shape: [size, ...rowShape], epoch, index };
  }
}
