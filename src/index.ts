/**
 * Strata: one quantized network for every bit-width. The public API, one namespace per layer of
 * the architecture (engine -> nn -> quant -> train; format, export and runtime for deployment).
 */
export * as engine from './engine/index.js';
export * as nn from './nn/index.js';
export * as quant from './quant/index.js';
export * as data from './data/index.js';
export * as train from './train/index.js';
export * as format from './format/index.js';
export * as report from './report/index.js';
export { exportOnnx } from './export/onnx-export.js';
export {
  importOnnx,
  importOnnxFile,
  buildImported,
  OnnxImportError,
  type ImportOptions,
  type ImportedModel,
} from './export/onnx-import.js';
export { StrataSession, load, type SessionOptions, type Prediction } from './runtime/session.js';
export { Tensor, backward, noGrad, scope } from './engine/index.js';
export { InvalidInputError, limits, setLimits, type Limits } from './engine/limits.js';
export { decodeImage } from './data/image-decode.js';
export type { RawImage } from './data/dataset.js';
export {
  imageToInput,
  inputSpecFor,
  toChannels,
  softmax,
  topClasses,
  classLabels,
  type InputSpec,
  type ClassScore,
} from './web/preprocess.js';
export { precisionInfoOf, describePrecisionInfo, type PrecisionInfo } from './web/precision-info.js';
export {
  openProgressive,
  ProgressiveLoad,
  ProgressiveModel,
  type OpenProgressiveOptions,
  type ModelPrediction,
} from './web/open-progressive.js';
export { memoryStore, type PrefixStore, type CachedPrefix } from './web/prefix-store.js';
export { startServer, type StrataServer, type StrataServerOptions } from './runtime/server.js';
