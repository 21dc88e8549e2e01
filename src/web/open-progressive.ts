/**
 * The browser client library: `openProgressive(url, options)` yields a model at each precision of a
 * .strata file as soon as its bytes are there, lowest first, and classifies with Strata's own
 * TypeScript engine (no onnxruntime, nothing to download besides the page and the model's bytes).
 *
 * Bytes come from a cached prefix first (IndexedDB by default), then from HTTP Range requests for
 * exactly what is missing: one request for the header and the basic layer, then one per enhance
 * section, each `bytes=<end of what is held>-<end of that section>`. Every response is added to the
 * cached prefix as it streams in, so a reload, a second visit or another image costs no model bytes,
 * and an interrupted download resumes from the byte it reached (in the same call, up to `retries`
 * times, and on the next call from the stored prefix). `maxBits` and `maxBytes` set a budget: no
 * byte past the last precision within it is requested.
 *
 * Browser-safe (and Node 20, which has fetch): no node: imports.
 */
import { noGrad } from '../engine/autograd.js';
import { getBackend } from '../engine/backend-registry.js';
import { scope } from '../engine/memory.js';
import { Tensor } from '../engine/tensor.js';
import { modelFromStrata } from '../export/strata-model.js';
import {
  StrataFormatError,
  StrataStreamReader,
  type StrataHeader,
  type StrataReadResult,
} from '../format/index.js';
import type { Module } from '../nn/module.js';
import { precisionInfoOf, type PrecisionInfo } from './precision-info.js';
import {
  classLabels,
  inputSpecFor,
  softmax,
  topClasses,
  type ClassScore,
  type InputSpec,
} from './preprocess.js';
import { defaultStore, type CachedPrefix, type PrefixStore } from './prefix-store.js';

export interface OpenProgressiveOptions {
  /** Stop at this precision: nothing past its section is requested. Default: the file's highest. */
  maxBits?: number;
  /** Stop at the highest precision whose bytes fit in this many bytes of the file. Default: none. */
  maxBytes?: number;
  /** Called with each model as it completes (the same objects the iterator yields). */
  onUpgrade?: (model: ProgressiveModel) => void;
  /** Called as bytes arrive: bytes of the file held so far, and its length once known. */
  onProgress?: (progress: ProgressiveProgress) => void;
  /** Where received prefixes persist; default IndexedDB in a browser, none elsewhere; null: none. */
  store?: PrefixStore | null;
  /**
   * Length of the first request when nothing is cached, before the header says where sections
   * end (default 16 KiB, enough for a header). A page that knows where the basic layer ends (the
   * `/models` listing of `strata serve` gives every precision's `completeAt`) passes it to receive
   * the header and the basic layer in one request; a cached prefix is then read that far first, and
   * its basic layer handed over before the rest is checked.
   */
  firstRequestBytes?: number;
  /** How many times an interrupted response is resumed from the byte it reached (default 2). */
  retries?: number;
  /** Check a fully cached file against the server (a HEAD request, no body) after yielding it. Default true. */
  revalidate?: boolean;
  /** Default globalThis.fetch. */
  fetch?: typeof fetch;
  signal?: AbortSignal;
}

export interface ProgressiveProgress {
  /** Bytes of the file held (cached and received). */
  bytes: number;
  /** Length of the file, once the header has arrived. */
  fileLength: number | null;
  /** Of `bytes`, how many came from the store. */
  fromCache: number;
  /** Model bytes received over the network in this call. */
  transferred: number;
}

/** One Range request this call made, as sent and as answered. */
export interface RangeRequestRecord {
  /** The Range header sent, e.g. 'bytes=94072-140423'. */
  range: string;
  start: number;
  /** Inclusive. */
  end: number;
  status: number;
  /** Body bytes received. */
  received: number;
}

export interface ModelPrediction {
  /** [batch, numClasses], row-major. */
  logits: Float32Array;
  /** Softmax of each row. */
  probabilities: Float32Array;
  batch: number;
  numClasses: number;
  /** The five most probable classes of the first image, with the file's class names when it has them. */
  top: ClassScore[];
  /** Decoding the precision and rebuilding the network (0 once done), and running it, in ms. */
  timings: { loadMs: number; runMs: number };
}

/** Channels-last images: one [H, W, C] Float32Array, or a batch with its shape [N, H, W, C]. */
export type ModelInput = Float32Array | { data: Float32Array; shape: readonly number[] };

const DEFAULT_FIRST_REQUEST = 16 * 1024;

/** A User Timing mark (visible in the browser's performance panel and to bench:web). */
function timeline(name: string): void {
  if (typeof performance.mark === 'function') performance.mark(name);
}

/** A model at one precision of a .strata file, ready to classify. */
export class ProgressiveModel {
  private network: Module | null = null;

  constructor(
    /** The precision (weights and activations). */
    readonly bits: number,
    /** Bytes of the file that hold this precision (its section's end). */
    readonly bytes: number,
    readonly header: StrataHeader,
    /** Whether every byte of it came from the store (no network). */
    readonly fromCache: boolean,
    /** Model bytes received over the network in this call when this precision completed. */
    readonly transferred: number,
    private readonly decode: () => StrataReadResult,
  ) {}

  /** The file's whole length (every precision). */
  get fileLength(): number {
    return this.header.fileLength;
  }

  /** The input this model expects (size, channels, normalisation), from the file. */
  get inputSpec(): InputSpec {
    return inputSpecFor(this.header.architecture, this.header.metadata);
  }

  /** Class names from the file's metadata, or null. */
  get classes(): string[] | null {
    return classLabels(this.header.metadata);
  }

  /** The expected accuracy of this precision recorded in the file (`metadata.precisionInfo`), or null. */
  get precisionInfo(): PrecisionInfo | null {
    return precisionInfoOf(this.header.metadata).get(this.bits) ?? null;
  }

  /** Decodes the precision and rebuilds the network (done once, by the first `predict`). */
  load(): Module {
    this.network ??= modelFromStrata(this.decode()).model;
    return this.network;
  }

  /** Classifies channels-last, normalised images (see `imageToInput`) at this precision. */
  predict(input: ModelInput): ModelPrediction {
    const spec = this.inputSpec;
    const data = input instanceof Float32Array ? input : input.data;
    const shape =
      input instanceof Float32Array ? [1, spec.height, spec.width, spec.channels] : [...input.shape];
    const per = shape.slice(1).reduce((a, b) => a * b, 1);
    if (shape.length !== 4 || data.length !== shape[0] * per) {
      throw new RangeError(
        `Expected [N, H, W, C] images of ${spec.height}x${spec.width}x${spec.channels} but received ${data.length} values for shape [${shape.join(', ')}]`,
      );
    }
    const t0 = performance.now();
    const model = this.load();
    const t1 = performance.now();
    const logits = scope(() => noGrad(() => Float32Array.from(model.forward(new Tensor(data, shape)).data)));
    const batch = shape[0];
    const numClasses = logits.length / batch;
    const probabilities = new Float32Array(logits.length);
    for (let n = 0; n < batch; n++) {
      probabilities.set(softmax(logits.subarray(n * numClasses, (n + 1) * numClasses)), n * numClasses);
    }
    const top = topClasses(probabilities.subarray(0, numClasses), 5, this.classes ?? undefined);
    const timings = { loadMs: t1 - t0, runMs: performance.now() - t1 };
    return { logits, probabilities, batch, numClasses, top, timings };
  }
}

/** An HTTP answer the client cannot use. */
export class ProgressiveHttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'ProgressiveHttpError';
  }
}

function checkOptions(options: OpenProgressiveOptions): void {
  const positiveInteger = (value: unknown, name: string, min: number) => {
    if (value === undefined) return;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
      throw new RangeError(
        `Expected integer >= ${min} for ${name} but received ${String(value)} of type ${typeof value}`,
      );
    }
  };
  positiveInteger(options.maxBits, 'maxBits', 1);
  positiveInteger(options.maxBytes, 'maxBytes', 1);
  positiveInteger(options.firstRequestBytes, 'firstRequestBytes', 24);
  positiveInteger(options.retries, 'retries', 0);
}

/** The end (exclusive) of the last precision within the budget. */
function targetEnd(header: StrataHeader, options: OpenProgressiveOptions): number {
  const within = header.precisions.filter(
    (p) =>
      (options.maxBits === undefined || p.bits <= options.maxBits) &&
      (options.maxBytes === undefined || p.completeAt <= options.maxBytes),
  );
  if (within.length === 0) {
    const basic = header.precisions[0];
    throw new RangeError(
      `The budget (maxBits ${options.maxBits ?? 'none'}, maxBytes ${options.maxBytes ?? 'none'}) holds no precision of this file: ` +
        `its lowest, ${basic.bits} bits, needs ${basic.completeAt} bytes`,
    );
  }
  return within[within.length - 1].completeAt;
}

/** "bytes a-b/size" to its parts. */
function parseContentRange(value: string | null): { start: number; end: number; size: number | null } | null {
  const match = value === null ? null : /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(value.trim());
  if (match === null) return null;
  return { start: Number(match[1]), end: Number(match[2]), size: match[3] === '*' ? null : Number(match[3]) };
}

/**
 * The state of one file: what is held (a StrataStreamReader over the prefix), where it came from,
 * and its validator. Reset when the server's file turns out to differ from the cached one.
 */
class Download {
  reader!: StrataStreamReader;
  fromCache = 0;
  etag: string | null = null;
  lastModified: string | null = null;
  fileLength: number | null = null;
  private announced = 0;

  constructor() {
    this.reset();
  }

  reset(): void {
    this.reader = new StrataStreamReader();
    this.fromCache = 0;
    this.etag = null;
    this.lastModified = null;
    this.fileLength = null;
    this.announced = 0;
  }

  /** Holds only `prefix` (which has read without error), keeping the precisions already announced. */
  restart(prefix: Uint8Array): void {
    const announced = this.announced;
    this.reset();
    this.reader.push(prefix);
    this.fromCache = prefix.length;
    this.announced = announced;
  }

  get held(): number {
    return this.reader.bytesReceived;
  }

  /** Precisions completed since the last call, lowest first. */
  newPrecisions(): number[] {
    const header = this.reader.header;
    const available = this.reader.availableBits;
    if (header === null || available === null) return [];
    const out = header.precisions
      .filter((p) => p.bits <= available && p.bits > this.announced)
      .map((p) => p.bits);
    if (out.length > 0) this.announced = out[out.length - 1];
    return out;
  }

  snapshot(): CachedPrefix {
    return {
      bytes: this.reader.bytes().slice(),
      fileLength: this.reader.header?.fileLength ?? this.fileLength,
      etag: this.etag,
      lastModified: this.lastModified,
    };
  }

  get validator(): string | null {
    return this.etag ?? this.lastModified;
  }
}

/**
 * A .strata file's precisions as they arrive; see the module comment. Iterate it with `for await`
 * (or pass `onUpgrade`); `requests` lists the Range requests made, `done` settles when the budget is
 * reached (or the call fails).
 */
export class ProgressiveLoad implements AsyncIterable<ProgressiveModel> {
  /** Every Range request made so far, in order. */
  readonly requests: RangeRequestRecord[] = [];
  /** The models yielded so far, lowest precision first. */
  readonly models: ProgressiveModel[] = [];
  private transferred = 0;
  private readonly download = new Download();
  private readonly store: PrefixStore | null;
  private readonly key: string;
  private readonly fetcher: typeof fetch;
  private persisting: Promise<void> = Promise.resolve();
  private readonly waiters: (() => void)[] = [];
  private prefetched: { record: RangeRequestRecord; response: Promise<Response> } | null = null;
  private finished = false;
  private backendReady = false;
  private failure: { error: unknown } | null = null;
  private readonly pumping: Promise<void>;

  constructor(
    readonly url: string,
    private readonly options: OpenProgressiveOptions = {},
  ) {
    checkOptions(options);
    this.store = options.store === undefined ? defaultStore() : options.store;
    this.fetcher = options.fetch ?? globalThis.fetch.bind(globalThis);
    const base = typeof location === 'undefined' ? undefined : location.href;
    this.key = new URL(url, base).href;
    // The download runs on its own, not at the pace of whoever consumes the models: the next
    // section is on its way while the previous precision classifies.
    this.pumping = Promise.resolve()
      .then(() => this.run())
      .catch((error: unknown) => {
        this.failure = { error };
      })
      .finally(() => {
        this.finished = true;
        this.wakeAll();
      });
  }

  /** Model bytes received over the network by this call. */
  get transferredBytes(): number {
    return this.transferred;
  }

  /** The file's header, once known. */
  get header(): StrataHeader | null {
    return this.download.reader.header;
  }

  [Symbol.asyncIterator](): AsyncIterator<ProgressiveModel> {
    let next = 0;
    return {
      next: async (): Promise<IteratorResult<ProgressiveModel>> => {
        while (next >= this.models.length && !this.finished) {
          await new Promise<void>((wake) => this.waiters.push(wake));
        }
        if (next < this.models.length) return { done: false, value: this.models[next++] };
        if (this.failure !== null) throw this.failure.error;
        return { done: true, value: undefined };
      },
    };
  }

  /** Runs to the end of the budget; resolves with the highest precision reached. */
  async done(): Promise<ProgressiveModel> {
    await this.pumping;
    if (this.failure !== null) throw this.failure.error;
    const last = this.models.at(-1);
    if (last === undefined) throw new Error(`${this.url}: no precision was loaded`);
    return last;
  }

  private wakeAll(): void {
    for (const wake of this.waiters.splice(0)) wake();
  }

  private async run(): Promise<void> {
    const dl = this.download;
    const store = this.store;
    const reading =
      store === null || store.mayHold?.(this.key) === false ? null : store.get(this.key).catch(() => null);
    if (reading !== null) this.setUpBackend();
    const cached = reading === null ? null : await reading;
    timeline('strata:cache-read');
    if (cached !== null && cached.bytes.length > 0) await this.readCached(cached);
    let revalidated = false;
    let retriesLeft = this.options.retries ?? 2;
    while (true) {
      this.options.signal?.throwIfAborted();
      const header = dl.reader.header;
      const end = header === null ? null : targetEnd(header, this.options);
      if (end !== null && dl.held >= end) {
        if (dl.fromCache > 0 && !revalidated && this.options.revalidate !== false) {
          revalidated = true;
          if (!(await this.stillCurrent())) {
            dl.reset();
            await this.store?.delete(this.key).catch(() => undefined);
            continue;
          }
        }
        break;
      }
      const stop = this.nextStop()!;
      try {
        await this.fetchRange(dl.held, stop - 1);
      } catch (e) {
        this.dropPrefetched();
        if (!(e instanceof TypeError) || retriesLeft === 0 || this.options.signal?.aborted) throw e;
        // A network failure (fetch rejects with TypeError): resume from the byte reached.
        retriesLeft--;
      }
    }
    this.dropPrefetched();
    await this.persisting;
  }

  /**
   * Reads a stored prefix. With `firstRequestBytes` (where the basic layer ends), that much first:
   * its precision is announced, and its consumer may classify with it, before the rest is read and
   * checked. A prefix that does not read as a .strata file is dropped from where it stops reading.
   */
  private async readCached(cached: CachedPrefix): Promise<void> {
    const dl = this.download;
    const bytes = cached.bytes;
    const first = Math.min(bytes.length, this.options.firstRequestBytes ?? bytes.length);
    const validator = () => {
      dl.etag = cached.etag;
      dl.lastModified = cached.lastModified;
      dl.fileLength = cached.fileLength;
    };
    try {
      validator();
      dl.reader.push(bytes.subarray(0, first));
      dl.fromCache = first;
    } catch {
      dl.reset();
      await this.store?.delete(this.key).catch(() => undefined);
      return;
    }
    this.progress();
    this.announce(true);
    if (first === bytes.length) return;
    await new Promise((resumed) => setTimeout(resumed, 0));
    try {
      dl.reader.push(bytes.subarray(first));
      dl.fromCache = bytes.length;
    } catch {
      // The stored copy is damaged past the basic layer: keep what read, forget the copy.
      dl.restart(bytes.subarray(0, first));
      validator();
      await this.store?.delete(this.key).catch(() => undefined);
    }
    this.progress();
    this.announce(true);
  }

  /**
   * The end (exclusive) of the next request: the end of the next section within the budget, or,
   * before the header is known, a first slice that holds it; null when the budget is reached.
   */
  private nextStop(): number | null {
    const dl = this.download;
    const header = dl.reader.header;
    if (header === null) {
      let stop = dl.held + (this.options.firstRequestBytes ?? DEFAULT_FIRST_REQUEST);
      if (this.options.maxBytes !== undefined)
        stop = Math.min(stop, Math.max(this.options.maxBytes, dl.held + 24));
      if (dl.fileLength !== null) stop = Math.min(stop, dl.fileLength);
      return stop;
    }
    const end = targetEnd(header, this.options);
    if (dl.held >= end) return null;
    const next = header.precisions.find((p) => p.completeAt > dl.held)!;
    return Math.min(next.completeAt, end);
  }

  /** Abandons a request sent ahead that will not be used. */
  private dropPrefetched(): void {
    const pending = this.prefetched;
    this.prefetched = null;
    void pending?.response.then((r) => r.body?.cancel()).catch(() => undefined);
  }

  /** Sends one Range request for bytes [start, end]. */
  private send(start: number, end: number): { record: RangeRequestRecord; response: Promise<Response> } {
    const dl = this.download;
    const range = `bytes=${start}-${end}`;
    const headers: Record<string, string> = { Range: range };
    const validator = dl.validator;
    if (start > 0 && validator !== null) headers['If-Range'] = validator;
    const record: RangeRequestRecord = { range, start, end, status: 0, received: 0 };
    this.requests.push(record);
    timeline(`strata:request-${start}`);
    const response = this.fetcher(this.url, {
      headers,
      cache: 'no-store',
      ...(this.options.signal ? { signal: this.options.signal } : {}),
    });
    // Settled by fetchRange when it takes this request; an unused one must not be an unhandled rejection.
    response.catch(() => undefined);
    return { record, response };
  }

  /**
   * Sets up the compute backend (in a browser: its WebAssembly kernel compiled, its memory
   * allocated) while the store reads or the first response is on its way, not when the first
   * precision is run.
   */
  private setUpBackend(): void {
    if (this.backendReady) return;
    this.backendReady = true;
    getBackend();
  }

  /** Yields the precisions that have become complete. */
  private announce(fromCache: boolean): number {
    const dl = this.download;
    const header = dl.reader.header;
    if (header === null) return 0;
    const end = targetEnd(header, this.options);
    let count = 0;
    for (const bits of dl.newPrecisions()) {
      const precision = header.precisions.find((p) => p.bits === bits)!;
      if (precision.completeAt > end) continue;
      const reader = dl.reader;
      const model = new ProgressiveModel(
        bits,
        precision.completeAt,
        header,
        fromCache || precision.completeAt <= dl.fromCache,
        this.transferred,
        () => reader.read(bits),
      );
      timeline(`strata:precision-${bits}`);
      this.models.push(model);
      count++;
      this.wakeAll();
      this.options.onUpgrade?.(model);
    }
    return count;
  }

  private progress(): void {
    const dl = this.download;
    this.options.onProgress?.({
      bytes: dl.held,
      fileLength: dl.reader.header?.fileLength ?? dl.fileLength,
      fromCache: dl.fromCache,
      transferred: this.transferred,
    });
  }

  private persist(): void {
    if (this.store === null || this.download.held === 0) return;
    const snapshot = this.download.snapshot();
    const store = this.store;
    this.persisting = this.persisting.then(() => store.put(this.key, snapshot)).catch(() => undefined);
  }

  /** HEAD: does the server still have the representation the cached prefix came from? */
  private async stillCurrent(): Promise<boolean> {
    const dl = this.download;
    if (dl.validator === null) return true;
    let response: Response;
    try {
      response = await this.fetcher(this.url, {
        method: 'HEAD',
        cache: 'no-store',
        ...(this.options.signal ? { signal: this.options.signal } : {}),
      });
    } catch {
      return true; // offline: the cached copy is all there is
    }
    if (!response.ok) return true;
    const etag = response.headers.get('ETag');
    const lastModified = response.headers.get('Last-Modified');
    if (dl.etag !== null && etag !== null) return etag === dl.etag;
    if (dl.lastModified !== null && lastModified !== null) return lastModified === dl.lastModified;
    return true;
  }

  /** One Range request for bytes [start, end], streamed into the reader. */
  private async fetchRange(start: number, end: number): Promise<void> {
    const dl = this.download;
    const validator = dl.validator;
    const sent =
      this.prefetched !== null && this.prefetched.record.start === start && this.prefetched.record.end === end
        ? this.prefetched
        : (this.dropPrefetched(), this.send(start, end));
    this.prefetched = null;
    this.setUpBackend();
    const { record } = sent;
    const range = record.range;
    const response = await sent.response;
    record.status = response.status;
    if (response.status === 416 && start > 0) {
      // The file is shorter than the cached prefix: it changed. Start again.
      await response.body?.cancel().catch(() => undefined);
      dl.reset();
      await this.store?.delete(this.key).catch(() => undefined);
      return;
    }
    if (response.status !== 206 && response.status !== 200) {
      await response.body?.cancel().catch(() => undefined);
      throw new ProgressiveHttpError(
        response.status,
        `GET ${this.url} (${range}): ${response.status} ${response.statusText}`,
      );
    }
    if (response.body === null)
      throw new ProgressiveHttpError(response.status, `GET ${this.url}: empty body`);
    let stopAt = end + 1;
    if (response.status === 200) {
      // The whole file: the server ignores ranges, or the file changed (If-Range did not match).
      if (start > 0 && (validator === null || this.changed(response))) {
        dl.reset();
        await this.store?.delete(this.key).catch(() => undefined);
      }
    } else {
      const content = parseContentRange(response.headers.get('Content-Range'));
      if (content === null || content.start !== start) {
        await response.body.cancel().catch(() => undefined);
        throw new ProgressiveHttpError(
          206,
          `GET ${this.url} (${range}): Content-Range '${response.headers.get('Content-Range')}' does not start at ${start}`,
        );
      }
      if (content.size !== null) dl.fileLength = content.size;
      stopAt = content.end + 1;
    }
    dl.etag = response.headers.get('ETag') ?? dl.etag;
    dl.lastModified = response.headers.get('Last-Modified') ?? dl.lastModified;
    const body = response.body.getReader();
    let corrupt = false;
    let position = response.status === 200 ? 0 : start;
    try {
      while (dl.held < stopAt) {
        const { done, value } = await body.read();
        if (done) break;
        record.received += value.length;
        this.transferred += value.length;
        let chunk = value;
        if (position < dl.held) {
          // A 200 answer repeats bytes already held; skip them.
          const already = Math.min(chunk.length, dl.held - position);
          chunk = chunk.subarray(already);
        }
        position += value.length;
        if (chunk.length > 0) {
          const room = stopAt - dl.held;
          dl.reader.push(chunk.length > room ? chunk.subarray(0, room) : chunk);
        }
        this.progress();
        if (dl.held >= stopAt && dl.reader.header !== null) {
          // Ask for the next section before this precision is handed over (its consumer may keep
          // the thread busy classifying), so that the link does not idle meanwhile.
          const next = this.nextStop();
          if (next !== null && this.prefetched === null) this.prefetched = this.send(dl.held, next - 1);
        }
        if (this.announce(false) > 0) this.persist();
      }
      if (dl.held < stopAt) throw new TypeError(`GET ${this.url} (${range}): the response ended early`);
    } catch (e) {
      if (e instanceof StrataFormatError) {
        // Not a (valid) .strata file: forget whatever was stored for it.
        corrupt = true;
        await this.store?.delete(this.key).catch(() => undefined);
      }
      throw e;
    } finally {
      await body.cancel().catch(() => undefined);
      // Whatever arrived is kept, so an interrupted download resumes from the byte it reached.
      if (!corrupt) this.persist();
    }
  }

  private changed(response: Response): boolean {
    const dl = this.download;
    const etag = response.headers.get('ETag');
    const lastModified = response.headers.get('Last-Modified');
    if (dl.etag !== null) return etag !== dl.etag;
    if (dl.lastModified !== null) return lastModified !== dl.lastModified;
    return true;
  }
}

/**
 * Opens a .strata file for progressive use: `for await (const model of openProgressive(url))`
 * yields the model at each precision as its bytes complete, lowest first; see OpenProgressiveOptions.
 */
export function openProgressive(url: string, options: OpenProgressiveOptions = {}): ProgressiveLoad {
  return new ProgressiveLoad(url, options);
}
