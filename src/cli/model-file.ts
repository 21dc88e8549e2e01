/**
 * The model files users deploy, opened the same way by `strata predict`, `strata eval` and `strata
 * info`: a training checkpoint, a `.strata` file (or any prefix of one) and an `.onnx` file written by
 * `strata export`, each as a session at one precision together with the input it expects (size,
 * channels, normalisation) and its class names.
 */
import { readFile } from 'node:fs/promises';
import { ONNX_METADATA } from '../export/onnx-export.js';
import { readOnnxMetadata } from '../export/onnx-proto.js';
import { inspectStrata } from '../format/index.js';
import { StrataSession, type SessionEngineChoice } from '../runtime/session.js';
import { inputSpecFor, type InputSpec } from '../web/preprocess.js';
import { restoreModel } from './restore.js';
import { checkBitsInFile } from './commands/extract.js';
import { detectFileKind, type FileKind } from './commands/info.js';
import { datasetInput, packRestored } from './commands/pack.js';

/** metadata_props key of an exported graph that records the input and classes of its model file. */
export const ONNX_INPUT_METADATA = 'strata.input';

export interface OpenOptions {
  bits?: number;
  /** 'auto': the native engine for a checkpoint or .strata file when the addon is loaded (see SessionOptions.engine). */
  engine: SessionEngineChoice;
  /** Float arithmetic instead of integer kernels (see SessionOptions.float). */
  float?: boolean;
  threads?: number;
}

export interface OpenedModel {
  kind: FileKind;
  session: StrataSession;
  spec: InputSpec;
  labels: string[] | null;
  bits: number | null;
}

/** What `strata export` records about a model's input in its ONNX graph (and predict/eval read back). */
export interface InputDescriptionRecord {
  architecture: Record<string, unknown>;
  metadata: Record<string, unknown> | null;
}

function stringList(value: unknown): string[] | null {
  return Array.isArray(value) && value.every((c) => typeof c === 'string') ? (value as string[]) : null;
}

/** The architecture and metadata (input size, normalisation, classes) of a .strata file or checkpoint. */
export async function describeModelFile(path: string): Promise<InputDescriptionRecord> {
  if (detectFileKind(path) === 'checkpoint') {
    const { architecture, meta } = restoreModel(path);
    return {
      architecture: architecture as unknown as Record<string, unknown>,
      metadata: { ...datasetInput(meta.config), classes: meta.classes },
    };
  }
  const info = inspectStrata(new Uint8Array(await readFile(path)));
  return { architecture: info.architecture, metadata: info.metadata };
}

/** Opens a checkpoint, .strata or .onnx file as a session at `bits` (default: the file's highest). */
export async function openModel(path: string, options: OpenOptions): Promise<OpenedModel> {
  const kind = detectFileKind(path);
  const { engine, threads = 1 } = options;
  const float = options.float === true;
  if (kind === 'checkpoint') {
    const restored = restoreModel(path);
    const { architecture, meta } = restored;
    const spec = inputSpecFor(architecture as unknown as Record<string, unknown>, datasetInput(meta.config));
    if (restored.quant === null) {
      if (options.bits !== undefined) {
        throw new RangeError(
          `checkpoint ${path} holds a full-precision model; it has no ${options.bits}-bit version`,
        );
      }
      const session = await StrataSession.create(restored.model, { bits: null, engine, threads });
      return { kind, session, spec, labels: meta.classes, bits: null };
    }
    const bytes = packRestored(restored, path);
    if (options.bits !== undefined) checkBitsInFile(path, bytes, options.bits);
    const bits = options.bits ?? meta.config.bits[0];
    const session = await StrataSession.create(bytes, { bits, engine, threads, float });
    return { kind, session, spec, labels: meta.classes, bits };
  }
  const bytes = new Uint8Array(await readFile(path));
  if (kind === 'onnx') {
    if (engine === 'native') {
      throw new TypeError(`${path} is an .onnx file, which runs only with --engine onnxruntime`);
    }
    const recorded = readOnnxMetadata(bytes);
    let described: InputDescriptionRecord | null = null;
    const text = recorded.get(ONNX_INPUT_METADATA);
    if (text !== undefined) {
      try {
        described = JSON.parse(text) as InputDescriptionRecord;
      } catch {
        described = null;
      }
    }
    const session = await StrataSession.create(bytes, {
      ...(options.bits !== undefined ? { bits: options.bits } : {}),
      threads,
    });
    const shape = session.inputShape;
    const architecture = described?.architecture ?? {
      name: 'onnx',
      ...(shape !== null ? { inChannels: shape[2] } : {}),
    };
    const metadata = described?.metadata ?? (shape !== null ? { inputSize: [shape[0], shape[1]] } : null);
    const classes = Number(recorded.get(ONNX_METADATA.classes));
    const labels = stringList(metadata?.classes);
    return {
      kind,
      session,
      spec: inputSpecFor(architecture, metadata),
      labels: labels !== null && (Number.isNaN(classes) || labels.length === classes) ? labels : null,
      bits: session.bits ?? null,
    };
  }
  const info = inspectStrata(bytes);
  if (options.bits !== undefined) checkBitsInFile(path, bytes, options.bits);
  const session = await StrataSession.create(bytes, {
    ...(options.bits !== undefined ? { bits: options.bits } : {}),
    engine,
    threads,
    float,
  });
  return {
    kind,
    session,
    spec: inputSpecFor(info.architecture, info.metadata),
    labels: stringList(info.metadata?.classes),
    bits: session.bits ?? null,
  };
}
