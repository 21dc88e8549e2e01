export * from './cascade.js';
export * from './bit-planes.js';
export { fakeQuantWeight, fakeQuantAct, type WeightQuantSpec, type ActQuantSpec } from './fake-quant.js';
export { QuantizedLayer, qmaxOf, type LayerRole, type LayerQuantConfig } from './quantized-layer.js';
export { SwitchableBatchNorm2d } from './switchable-batch-norm.js';
export {
  DEFAULT_QUANT_CONFIG,
  clampQuantizerScales,
  ensurePrecision,
  modelPrecisions,
  quantizeModel,
  quantizedLayers,
  resolveQuantConfig,
  setPrecision,
  switchableNorms,
  type QuantConfig,
} from './quantize-model.js';
