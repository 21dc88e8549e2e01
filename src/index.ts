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
