/**
 * Progressive inference: read a .strata byte stream and, each time another precision is complete,
 * rebuild the network at that precision, export it to ONNX and classify with onnxruntime, while the
 * rest of the file keeps arriving. The deploy benchmark runs it with onnxruntime-node; any runtime
 * with onnxruntime's InferenceSession and Tensor API (onnxruntime-web too) fits. The browser page
 * does not use it: it runs on Strata's own engine through openProgressive (open-progressive.ts).
 * Browser-safe: no node: imports.
 */
import { encodeOnnxModel, OnnxDataType } from '../export/onnx-proto.js';
import { exportOnnx, nhwcToNchw, ONNX_OUTPUT_NAME } from '../export/onnx-export.js';
import { StrataStreamReader, type StrataHeader, type StrataReadResult } from '../format/index.js';
import { modelFromStrata } from '../export/strata-model.js';

/** The part of onnxruntime's tensor this module reads. */
export interface OrtTensorLike {
  readonly type: string;
  readonly data: unknown;
}

export interface OrtSessionLike {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, OrtTensorLike>): Promise<Record<string, OrtTensorLike>>;
  release(): Promise<void>;
}

/** What onnxruntime-node (and onnxruntime-web) provide. */
export interface OrtLike {
  InferenceSession: {
    create(model: Uint8Array, options?: { executionProviders?: string[] }): Promise<OrtSessionLike>;
  };
  Tensor: new (type: 'float32', data: Float32Array, dims: readonly number[]) => OrtTensorLike;
}

/** A batch of channels-last images. */
export interface ImageBatch {
  data: Float32Array;
  /** [N, H, W, C] */
  shape: readonly [number, number, number, number];
}

export interface StageTimings {
  /** Decoding the precision and rebuilding the network (modelFromStrata). */
  rebuildMs: number;
  exportMs: number;
  sessionMs: number;
  runMs: number;
}

export interface PrecisionResult {
  bits: number;
  /** Bytes received when this precision became complete. */
  bytesAtPrecision: number;
  /** Bytes received when its prediction was ready. */
  bytesAtResult: number;
  /** Length of the whole file (from its header). */
  totalBytes: number;
  /** Whether the whole file had arrived by the time the prediction was ready. */
  downloadCompleteAtResult: boolean;
  /** From the start of the request. */
  msToPrecision: number;
  msToResult: number;
  /** [batch, numClasses], row-major. */
  logits: Float32Array;
  batch: number;
  numClasses: number;
  timings: StageTimings;
}

const now = (): number => performance.now();

/** Lets the event loop run (stream reads, rendering) between long synchronous steps. */
const yieldToEventLoop = (): Promise<void> => new Promise((r) => setTimeout(r, 0));

/** Rebuilds the network at the precision `read` holds, exports it and classifies `images` once. */
export async function classifyPrecision(
  ort: OrtLike,
  read: StrataReadResult,
  images: ImageBatch,
  sessionOptions: { executionProviders?: string[] } = {},
): Promise<{ logits: Float32Array; numClasses: number; timings: StageTimings }> {
  const t0 = now();
  const { model, bits } = modelFromStrata(read);
  const t1 = now();
  await yieldToEventLoop();
  const t2 = now();
  const [n, h, w, c] = images.shape;
  const onnx = exportOnnx(model, { bits, inputSize: [h, w] });
  const t3 = now();
  await yieldToEventLoop();
  const t4 = now();
  const session = await ort.InferenceSession.create(onnx, sessionOptions);
  const t5 = now();
  try {
    const input = new ort.Tensor('float32', nhwcToNchw(images.data, images.shape), [n, c, h, w]);
    const out = await session.run({ [session.inputNames[0]]: input });
    const name = session.outputNames.includes(ONNX_OUTPUT_NAME) ? ONNX_OUTPUT_NAME : session.outputNames[0];
    const result = out[name];
    if (result.type !== 'float32' || !(result.data instanceof Float32Array)) {
      throw new TypeError(`onnxruntime returned ${result.type} logits, expected float32`);
    }
    const logits = Float32Array.from(result.data);
    const t6 = now();
    return {
      logits,
      numClasses: logits.length / n,
      timings: { rebuildMs: t1 - t0, exportMs: t3 - t2, sessionMs: t5 - t4, runMs: t6 - t5 },
    };
  } finally {
    await session.release();
  }
}

/**
 * Creates and runs a one-node graph so onnxruntime compiles and instantiates its runtime (the
 * WebAssembly module in a browser) while the model's first bytes are still on the way.
 */
export async function warmUpOrt(
  ort: OrtLike,
  sessionOptions: { executionProviders?: string[] } = {},
): Promise<void> {
  const bytes = encodeOnnxModel({
    irVersion: 10,
    opset: 21,
    producerName: 'strata',
    producerVersion: '0.1.0',
    graphName: 'warm-up',
    nodes: [{ opType: 'Identity', name: 'identity', inputs: ['x'], outputs: ['y'] }],
    initializers: [],
    inputs: [{ name: 'x', elemType: OnnxDataType.FLOAT, shape: [1] }],
    outputs: [{ name: 'y', elemType: OnnxDataType.FLOAT, shape: [1] }],
  });
  const session = await ort.InferenceSession.create(bytes, sessionOptions);
  try {
    await session.run({ x: new ort.Tensor('float32', Float32Array.of(1), [1]) });
  } finally {
    await session.release();
  }
}

export interface ProgressiveOptions {
  ort: OrtLike;
  /** The response body (fetch), read chunk by chunk. */
  body: ReadableStream<Uint8Array>;
  /** The images to classify, chosen once the header (architecture, metadata) is known. */
  images: (header: StrataHeader) => ImageBatch | Promise<ImageBatch>;
  /** Stop reading (and cancel the body) once this precision is complete. */
  untilBits?: number;
  /** Which completed precisions to classify (default all, in order). */
  select?: (bits: number) => boolean;
  /** Resolves when onnxruntime is ready (e.g. warmUpOrt started before the request). */
  ortReady?: Promise<unknown>;
  sessionOptions?: { executionProviders?: string[] };
  /** The clock the result times are measured from (default: when runProgressive is called). */
  startedAt?: number;
  onHeader?: (header: StrataHeader) => void;
  onProgress?: (bytesReceived: number, totalBytes: number | null) => void;
  onResult?: (result: PrecisionResult) => void;
}

interface Pending {
  bits: number;
  bytes: number;
  at: number;
  read: () => StrataReadResult;
}

/**
 * Reads the stream and classifies each selected precision as it completes. Reading goes on while
 * a precision is being classified, so later precisions are already arriving. Resolves with every
 * result once the stream has ended (or reached `untilBits`) and the last precision is classified.
 */
export async function runProgressive(options: ProgressiveOptions): Promise<PrecisionResult[]> {
  const startedAt = options.startedAt ?? now();
  const select = options.select ?? (() => true);
  const queue: Pending[] = [];
  const results: PrecisionResult[] = [];
  let header: StrataHeader | null = null;
  let readingDone = false;
  let wake: (() => void) | null = null;
  const notify = () => {
    wake?.();
    wake = null;
  };

  const stream = new StrataStreamReader({
    onHeader: (h) => {
      header = h;
      options.onHeader?.(h);
    },
    onPrecision: (event) => {
      if (select(event.bits))
        queue.push({ bits: event.bits, bytes: event.bytesReceived, at: now(), read: event.read });
      notify();
    },
  });
  const reached = () =>
    options.untilBits !== undefined && (stream.availableBits ?? -Infinity) >= options.untilBits;

  const body = options.body.getReader();
  let stopped = false;
  const reading = (async () => {
    try {
      while (!reached() && !stopped) {
        const { done, value } = await body.read();
        if (done) {
          stream.end();
          break;
        }
        stream.push(value);
        options.onProgress?.(
          stream.bytesReceived,
          header === null ? null : (header as StrataHeader).fileLength,
        );
      }
      if (reached() || stopped) await body.cancel().catch(() => undefined);
    } finally {
      readingDone = true;
      notify();
    }
  })();

  const processing = (async () => {
    let images: ImageBatch | null = null;
    while (true) {
      const next = queue.shift();
      if (next === undefined) {
        if (readingDone) return;
        await new Promise<void>((r) => (wake = r));
        continue;
      }
      const h = header as unknown as StrataHeader;
      images ??= await options.images(h);
      await options.ortReady;
      const read = next.read();
      const out = await classifyPrecision(options.ort, read, images, options.sessionOptions);
      const bytesAtResult = stream.bytesReceived;
      const result: PrecisionResult = {
        bits: next.bits,
        bytesAtPrecision: next.bytes,
        bytesAtResult,
        totalBytes: h.fileLength,
        downloadCompleteAtResult: bytesAtResult >= h.fileLength,
        msToPrecision: next.at - startedAt,
        msToResult: now() - startedAt,
        logits: out.logits,
        batch: images.shape[0],
        numClasses: out.numClasses,
        timings: out.timings,
      };
      results.push(result);
      options.onResult?.(result);
    }
  })();

  try {
    await Promise.all([reading, processing]);
  } catch (e) {
    stopped = true;
    await body.cancel(e).catch(() => undefined);
    throw e;
  }
  return results;
}
