/**
 * Inference at one chosen precision, through onnxruntime-node or through Strata's own engine.
 *
 * The engine: by default ('auto') a Module or a .strata file runs on the native engine (the oneDNN
 * int8 kernels, measured 1.9-2.9x faster than float at batch 128 in bench/results/deploy.txt) when
 * the native addon is loaded, and through onnxruntime, with `engineNote` saying why, when it is not;
 * an .onnx file always runs through onnxruntime.
 *
 * Inputs are Strata's channels-last float32 images `[N, H, W, C]`; the session transposes them to
 * the NCHW layout of the exported ONNX graph when it runs onnxruntime.
 *
 * Sources:
 * - a Module (a quantized, calibrated model, or a plain float one): exported with `exportOnnx` at
 *   `bits` for onnxruntime (the integer graph, or the float one with `float`), or run by the `native`
 *   engine: a quantized precision as its integer plan on the int8 kernels (oneDNN; the TypeScript
 *   reference kernels when the addon is absent, which `arithmetic` reports), full precision or
 *   `float` as Strata's own forward;
 * - an .onnx file (path or bytes), as written by `exportOnnx` or any graph with one NCHW float
 *   input and one [N, classes] output: onnxruntime only, the precision is the file's;
 * - a .strata file (path or bytes), recognised by its magic: read at `bits` (default the highest
 *   precision the bytes hold completely, so a truncated download works) and rebuilt by
 *   `modelFromStrata`, then run like a Module.
 */
import { InvalidInputError } from '../engine/limits.js';
import { readFile } from 'node:fs/promises';
import type * as Ort from 'onnxruntime-node';
import { noGrad } from '../engine/autograd.js';
import { scope } from '../engine/memory.js';
import { Tensor } from '../engine/tensor.js';
import {
  exportOnnx,
  nhwcToNchw,
  ONNX_METADATA,
  ONNX_OUTPUT_NAME,
  validateExportBits,
} from '../export/onnx-export.js';
import { readOnnxMetadata } from '../export/onnx-proto.js';
import { intPlan } from '../export/int-plan.js';
import { IntPlanRunner } from './int-engine.js';
import { int8Kernels } from '../engine/int8-kernels.js';
import { getBackend } from '../engine/backend-registry.js';
import { loadNativeBackend } from '../engine/backend-native.js';
import { MAGIC, StrataFormatError, readStrata } from '../format/index.js';
import { Module } from '../nn/module.js';
import { GraphNetwork } from '../nn/models/index.js';
import { modelFromStrata } from '../export/strata-model.js';
import { QuantizedLayer } from '../quant/quantized-layer.js';
import { setPrecision } from '../quant/quantize-model.js';
import { SwitchableBatchNorm2d } from '../quant/switchable-batch-norm.js';

/** The engine a session runs on. */
export type SessionEngine = 'onnxruntime' | 'native';
/**
 * The engine asked for: 'auto' (the default) is the native engine for a Module or a .strata file when
 * the native addon is loaded, onnxruntime otherwise (and always for an .onnx file).
 */
export type SessionEngineChoice = SessionEngine | 'auto';
export const SESSION_ENGINES: readonly SessionEngineChoice[] = ['auto', 'onnxruntime', 'native'];

export type SessionSource = string | Uint8Array | Module;

export type SessionArithmetic = 'float' | 'onnxruntime-integer' | 'native-int8' | 'reference-int8';

export interface SessionOptions {
  /**
   * The precision to run. Required for a Module source (null = full precision); for a .strata
   * source the default is the highest precision the bytes hold; for an .onnx source it may be left
   * out, and when given it must match the file's `strata.bits`.
   */
  bits?: number | null;
  /**
   * Default 'auto': a Module or a .strata file runs on the native engine (oneDNN int8 kernels) when
   * the native addon is loaded, and through onnxruntime when it is not, which the session's
   * `engineNote` says (and the addon's own STRATA_NO_NATIVE warning); an .onnx file runs through
   * onnxruntime. 'onnxruntime' and 'native' choose the engine outright.
   */
  engine?: SessionEngineChoice;
  /**
   * Run the precision as float arithmetic (onnxruntime: the float graph; native: Strata's own forward
   * with dequantized weights) instead of integer kernels (the default for a quantized precision).
   */
  float?: boolean;
  /** [H, W, C] of one image, needed when `predict` gets a bare Float32Array. */
  inputShape?: readonly [number, number, number];
  /** onnxruntime intra-op threads; default onnxruntime's own choice. */
  threads?: number;
}

export interface PredictInput {
  data: Float32Array;
  /** [N, H, W, C]. */
  shape: readonly number[];
}

export interface Prediction {
  /** [batch, numClasses], row-major. */
  logits: Float32Array;
  /** argmax per row. */
  classes: Int32Array;
  /** softmax per row, same layout as logits. */
  probabilities: Float32Array;
  batch: number;
  numClasses: number;
}

type OrtModule = typeof Ort;

function describe(value: unknown): string {
  if (typeof value === 'number' || typeof value === 'boolean') return `${value} of type ${typeof value}`;
  if (typeof value === 'string') return `'${value}' of type string`;
  if (value === null || value === undefined) return String(value);
  return `a value of type ${(value as object).constructor?.name ?? typeof value}`;
}

let ortModule: Promise<OrtModule> | null = null;

/** Loads onnxruntime-node on first use, so the native engine works where its binary does not. */
export async function loadOrt(): Promise<OrtModule> {
  ortModule ??= import('onnxruntime-node').catch((error: unknown) => {
    ortModule = null;
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(
      `onnxruntime-node failed to load (${reason}). Possible solutions: check that ` +
        'node_modules/onnxruntime-node/bin/napi-v6/<platform>/<arch>/onnxruntime_binding.node exists for this ' +
        "platform (the CPU binary ships in the package; '.npmrc' only skips the optional GPU download), " +
        "reinstall with `npm install onnxruntime-node`, or use { engine: 'native' }.",
    );
  });
  return ortModule;
}

function isStrata(bytes: Uint8Array): boolean {
  return bytes.length >= MAGIC.length && MAGIC.every((b, i) => bytes[i] === b);
}

/**
 * A .strata file at `bits` (default: the highest precision the bytes hold completely), rebuilt as a
 * model that computes with exactly the file's weights; both engines then run that model.
 */
function strataToModel(bytes: Uint8Array, bits: unknown, source: string): { model: Module; bits: number } {
  if (bits === null) {
    throw new RangeError(
      'StrataSession: a .strata file holds quantized precisions only, so bits cannot be null',
    );
  }
  let read;
  try {
    read = readStrata(bytes, bits === undefined ? {} : { bits: requireBits(bits)! });
  } catch (e) {
    // The reader sees bytes only; the error names the file it came from.
    if (e instanceof StrataFormatError) throw new StrataFormatError(e.code, `${source}: ${e.message}`);
    throw e;
  }
  const rebuilt = modelFromStrata(read, source);
  return { model: rebuilt.model, bits: rebuilt.bits };
}

interface Runner {
  run(nhwc: Float32Array, shape: readonly number[]): Promise<Float32Array>;
  release(): Promise<void>;
}

class OrtRunner implements Runner {
  constructor(
    private readonly ort: OrtModule,
    private readonly session: Ort.InferenceSession,
    private readonly inputName: string,
    private readonly outputName: string,
  ) {}

  async run(nhwc: Float32Array, shape: readonly number[]): Promise<Float32Array> {
    const [n, h, w, c] = shape;
    const input = new this.ort.Tensor('float32', nhwcToNchw(nhwc, shape), [n, c, h, w]);
    const out = await this.session.run({ [this.inputName]: input });
    const logits = out[this.outputName];
    if (logits.type !== 'float32') {
      throw new TypeError(
        `StrataSession: expected float32 output '${this.outputName}' but the model gives ${logits.type}`,
      );
    }
    return Float32Array.from(logits.data as Float32Array);
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

/** Runs the Module itself at `bits`, leaving its precision and train/eval modes as it found them. */
/** Runs the model's integer plan on the int8 kernels (oneDNN, or the TypeScript reference without the addon). */
class IntRunner implements Runner {
  constructor(private readonly plan: IntPlanRunner) {}

  get arithmetic(): SessionArithmetic {
    return this.plan.kernels.name === 'native' ? 'native-int8' : 'reference-int8';
  }

  async run(nhwc: Float32Array, shape: readonly number[]): Promise<Float32Array> {
    return this.plan.run(nhwc, shape);
  }

  async release(): Promise<void> {}
}

class NativeRunner implements Runner {
  constructor(
    private readonly model: Module,
    private readonly bits: number | null,
  ) {}

  async run(nhwc: Float32Array, shape: readonly number[]): Promise<Float32Array> {
    const modules = this.model.namedModules().map(([, m]) => m);
    const saved = modules.map((m) => ({
      m,
      training: m.training,
      bits: m instanceof QuantizedLayer || m instanceof SwitchableBatchNorm2d ? m.bits : undefined,
    }));
    try {
      setPrecision(this.model, this.bits);
      this.model.eval();
      return scope(() => noGrad(() => Float32Array.from(this.model.forward(new Tensor(nhwc, shape)).data)));
    } finally {
      for (const s of saved) {
        s.m.training = s.training;
        if (s.bits !== undefined) (s.m as QuantizedLayer | SwitchableBatchNorm2d).bits = s.bits;
      }
    }
  }

  async release(): Promise<void> {}
}

export class StrataSession {
  private runner: Runner | null;

  private constructor(
    runner: Runner,
    readonly engine: SessionEngine,
    /** The precision the session runs (null = full precision; undefined for an .onnx without Strata metadata). */
    readonly bits: number | null | undefined,
    /** [H, W, C] when known (from options or a fixed-size ONNX input). */
    readonly inputShape: readonly [number, number, number] | null,
    /**
     * How the session computes: 'float', 'onnxruntime-integer' (integer ONNX graph), 'native-int8'
     * (oneDNN int8 kernels) or 'reference-int8' (the TypeScript int8 kernels: the addon is absent).
     */
    readonly arithmetic: SessionArithmetic,
    /**
     * Why the session does not run as 'auto' prefers (the native addon is not loaded, so a Module or
     * .strata file runs through onnxruntime; an imported graph the integer plan does not cover runs
     * Strata's float forward); null when nothing needs saying.
     */
    readonly engineNote: string | null = null,
  ) {
    this.runner = runner;
  }

  static async create(source: SessionSource, options: SessionOptions = {}): Promise<StrataSession> {
    if (options === null || typeof options !== 'object') {
      throw new TypeError(`Expected object for options but received ${describe(options)}`);
    }
    const requested = options.engine ?? 'auto';
    if (!SESSION_ENGINES.includes(requested)) {
      throw new TypeError(
        `Expected 'auto', 'onnxruntime' or 'native' for engine but received ${describe(requested)}`,
      );
    }
    const inputShape = options.inputShape === undefined ? null : checkInputShape(options.inputShape);
    if (options.threads !== undefined && (!Number.isInteger(options.threads) || options.threads < 1)) {
      const Err = typeof options.threads === 'number' ? RangeError : TypeError;
      throw new Err(`Expected positive integer for threads but received ${describe(options.threads)}`);
    }

    let model: Module | null = null;
    let onnx: Uint8Array | null = null;
    let strataBits: number | undefined;
    let fileName = '';
    if (source instanceof Module) model = source;
    else if (typeof source === 'string' || source instanceof Uint8Array) {
      const bytes = typeof source === 'string' ? await readSource(source) : source;
      const name = typeof source === 'string' ? source : '.strata bytes';
      fileName = name;
      if (isStrata(bytes)) ({ model, bits: strataBits } = strataToModel(bytes, options.bits, name));
      else onnx = bytes;
    } else {
      throw new TypeError(
        `Expected file path, Uint8Array or Module for source but received ${describe(source)}`,
      );
    }

    if (model !== null) {
      const bits = validateExportBits(model, strataBits ?? requireBits(options.bits));
      let engine: SessionEngine = requested === 'auto' ? 'native' : requested;
      let note: string | null = null;
      if (requested === 'auto') {
        const absent = nativeAbsence();
        if (absent !== null) {
          engine = 'onnxruntime';
          note =
            `the native addon is not loaded (${absent}), so this runs through onnxruntime instead of ` +
            "Strata's oneDNN int8 engine; build the addon (`npx node-gyp rebuild`) or choose the engine " +
            "with engine 'onnxruntime' (--engine onnxruntime)";
        }
      }
      // A model from a file: what the integer plan or the exporter refuses (a fixed layer above
      // 8 bits, missing step sizes) is the file's fault, so the error names the file.
      const fromFile = <T>(plan: () => T): T => {
        if (strataBits === undefined) return plan();
        try {
          return plan();
        } catch (e) {
          if (e instanceof RangeError) throw new InvalidInputError(fileName, 'model', e.message, '');
          throw e;
        }
      };
      if (engine === 'native') {
        if (bits === null || options.float === true)
          return new StrataSession(new NativeRunner(model, bits), engine, bits, inputShape, 'float');
        let plan;
        try {
          plan = fromFile(() => intPlan(model!, bits));
        } catch (e) {
          // 'auto' and an imported graph with an op the integer plan does not cover: Strata's own
          // forward at this precision (the same logits in float arithmetic), and the note says why.
          if (requested !== 'auto' || !(e instanceof TypeError) || !(model instanceof GraphNetwork)) throw e;
          const why = `the integer plan does not cover this imported graph (${e.message}), so it runs Strata's float forward at ${bits} bits`;
          return new StrataSession(new NativeRunner(model, bits), engine, bits, inputShape, 'float', why);
        }
        const runner = new IntRunner(new IntPlanRunner(plan));
        return new StrataSession(runner, engine, bits, inputShape, runner.arithmetic, note);
      }
      try {
        onnx = fromFile(() => exportOnnx(model!, { bits, float: options.float }));
      } catch (e) {
        if (requested !== 'auto' || !(e instanceof TypeError) || !(model instanceof GraphNetwork)) throw e;
        onnx = exportOnnx(model, { bits, float: true });
        const why = `the integer plan does not cover this imported graph (${e.message}), so it runs the float graph of its ${bits}-bit weights`;
        note = note === null ? why : `${note}; ${why}`;
      }
      return StrataSession.fromOnnx(onnx, bits, inputShape, options.threads, note);
    }
    if (requested === 'native') {
      throw new TypeError(
        "StrataSession: engine 'native' runs a Module or a .strata file; an .onnx file runs only through 'onnxruntime'",
      );
    }
    return StrataSession.fromOnnx(onnx!, checkOnnxBits(onnx!, options.bits), inputShape, options.threads);
  }

  private static async fromOnnx(
    bytes: Uint8Array,
    bits: number | null | undefined,
    inputShape: readonly [number, number, number] | null,
    threads: number | undefined,
    engineNote: string | null = null,
  ): Promise<StrataSession> {
    const ort = await loadOrt();
    let session: Ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(
        bytes,
        threads === undefined ? {} : { intraOpNumThreads: threads },
      );
    } catch (error) {
      throw new Error(
        `StrataSession: onnxruntime rejected the model: ${error instanceof Error ? error.message : String(error)}`,
      );
    }
    if (session.inputNames.length !== 1 || session.outputNames.length < 1) {
      await session.release();
      throw new RangeError(
        `StrataSession: expected a model with one input and at least one output but it has inputs [${session.inputNames.join(', ')}]`,
      );
    }
    const inputName = session.inputNames[0];
    const outputName = session.outputNames.includes(ONNX_OUTPUT_NAME)
      ? ONNX_OUTPUT_NAME
      : session.outputNames[0];
    const meta = session.inputMetadata[0];
    let shape = inputShape;
    if (shape === null && meta.isTensor && meta.shape.length === 4) {
      const [, c, h, w] = meta.shape;
      if (typeof c === 'number' && typeof h === 'number' && typeof w === 'number') shape = [h, w, c];
    }
    const mode = readOnnxMetadata(bytes).get(ONNX_METADATA.mode);
    const arithmetic: SessionArithmetic = mode === 'integer' ? 'onnxruntime-integer' : 'float';
    return new StrataSession(
      new OrtRunner(ort, session, inputName, outputName),
      'onnxruntime',
      bits,
      shape,
      arithmetic,
      engineNote,
    );
  }

  /** Runs one batch of channels-last images; a bare Float32Array needs the session's inputShape. */
  async predict(input: Float32Array | PredictInput): Promise<Prediction> {
    const runner = this.runner;
    if (runner === null) throw new Error('Session already disposed.');
    const { data, shape } = this.resolveInput(input);
    const logits = await runner.run(data, shape);
    const batch = shape[0];
    if (logits.length % batch !== 0 || logits.length === 0) {
      throw new RangeError(
        `StrataSession: the model returned ${logits.length} values for a batch of ${batch}`,
      );
    }
    const numClasses = logits.length / batch;
    const classes = new Int32Array(batch);
    const probabilities = new Float32Array(logits.length);
    for (let n = 0; n < batch; n++) {
      const row = logits.subarray(n * numClasses, (n + 1) * numClasses);
      let best = 0;
      for (let k = 1; k < numClasses; k++) if (row[k] > row[best]) best = k;
      classes[n] = best;
      let sum = 0;
      for (let k = 0; k < numClasses; k++) sum += Math.exp(row[k] - row[best]);
      for (let k = 0; k < numClasses; k++)
        probabilities[n * numClasses + k] = Math.exp(row[k] - row[best]) / sum;
    }
    return { logits, classes, probabilities, batch, numClasses };
  }

  get disposed(): boolean {
    return this.runner === null;
  }

  /** Releases onnxruntime's session; further calls to predict throw. Idempotent. */
  async dispose(): Promise<void> {
    const runner = this.runner;
    this.runner = null;
    if (runner !== null) await runner.release();
  }

  private resolveInput(input: Float32Array | PredictInput): { data: Float32Array; shape: number[] } {
    if (input instanceof Float32Array) {
      if (this.inputShape === null) {
        throw new TypeError(
          'StrataSession.predict: pass { data, shape } or create the session with inputShape [H, W, C] to use a bare Float32Array',
        );
      }
      const per = this.inputShape[0] * this.inputShape[1] * this.inputShape[2];
      if (input.length === 0 || input.length % per !== 0) {
        throw new RangeError(
          `StrataSession.predict: expected a multiple of ${per} values (images of [${this.inputShape.join(', ')}]) but received ${input.length}`,
        );
      }
      return { data: input, shape: [input.length / per, ...this.inputShape] };
    }
    if (
      input === null ||
      typeof input !== 'object' ||
      !(input.data instanceof Float32Array) ||
      !Array.isArray(input.shape)
    ) {
      throw new TypeError(
        `Expected Float32Array or { data: Float32Array, shape } for input but received ${describe(input)}`,
      );
    }
    const shape = [...input.shape];
    if (shape.length !== 4 || shape.some((d) => !Number.isInteger(d) || d < 1)) {
      throw new RangeError(
        `Expected input shape [N, H, W, C] of positive integers but received [${shape.join(', ')}]`,
      );
    }
    if (this.inputShape !== null && shape.slice(1).some((d, i) => d !== this.inputShape![i])) {
      throw new RangeError(
        `Expected images of [${this.inputShape.join(', ')}] (H, W, C) but received [${shape.slice(1).join(', ')}]`,
      );
    }
    const size = shape.reduce((a, b) => a * b, 1);
    if (input.data.length !== size) {
      throw new RangeError(
        `Expected ${size} values for input shape [${shape.join(', ')}] but received ${input.data.length}`,
      );
    }
    return { data: input.data, shape };
  }
}

/**
 * Why the native engine would not run on oneDNN (the addon is not loaded, or STRATA_BACKEND=reference
 * chose the TypeScript backend), or null when it would.
 */
function nativeAbsence(): string | null {
  if (int8Kernels().name === 'native') return null;
  const forced = typeof process !== 'undefined' ? process.env?.STRATA_BACKEND : undefined;
  if (forced === 'reference') return 'STRATA_BACKEND=reference';
  const loaded = loadNativeBackend();
  return loaded.ok ? `the ${getBackend().name} backend is active` : loaded.reason;
}

async function readSource(path: string): Promise<Uint8Array> {
  if (path.length === 0) throw new TypeError('Expected non-empty string for source path');
  return new Uint8Array(await readFile(path));
}

function requireBits(bits: unknown): number | null {
  if (bits === null) return null;
  if (typeof bits !== 'number' || !Number.isInteger(bits)) {
    throw new TypeError(`Expected integer or null for bits but received ${describe(bits)}`);
  }
  return bits;
}

function checkInputShape(shape: unknown): [number, number, number] {
  if (!Array.isArray(shape) || shape.length !== 3 || shape.some((d) => typeof d !== 'number')) {
    throw new TypeError(`Expected [H, W, C] for inputShape but received ${describe(shape)}`);
  }
  if (shape.some((d: number) => !Number.isInteger(d) || d < 1)) {
    throw new RangeError(`Expected positive integers for inputShape but received [${shape.join(', ')}]`);
  }
  return [shape[0], shape[1], shape[2]];
}

/** The precision an .onnx file was exported at, checked against the one asked for. */
function checkOnnxBits(bytes: Uint8Array, requested: unknown): number | null | undefined {
  const recorded = readOnnxMetadata(bytes).get(ONNX_METADATA.bits);
  const fileBits = recorded === undefined ? undefined : recorded === 'float' ? null : Number(recorded);
  if (requested === undefined) return fileBits;
  const bits = requireBits(requested);
  if (fileBits !== undefined && fileBits !== bits) {
    throw new RangeError(
      `StrataSession: the .onnx file was exported at ${fileBits === null ? 'full precision' : `${fileBits} bits`} but bits ${bits === null ? 'null' : bits} was requested`,
    );
  }
  return bits;
}

/**
 * Opens a model (a `.strata` file or its bytes, an `.onnx` file, or a quantized Module) at one
 * precision: `const session = await load('model.strata', { bits: 4 }); await session.predict(x)`.
 */
export function load(source: SessionSource, options: SessionOptions = {}): Promise<StrataSession> {
  return StrataSession.create(source, options);
}
