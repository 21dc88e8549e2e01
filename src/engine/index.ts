export { Tensor, shapeSize, formatShape, type Shape, type GradNode } from './tensor.js';
export { Function, backward, noGrad, isGradEnabled } from './autograd.js';
export { scope, keep, clearBufferPool, pooledByteCount } from './memory.js';
export { Random } from './random.js';
export * as ops from './ops.js';
export type { Backend, QuantKernels, ConvGeometry, PoolGeometry, FloatArray } from './backend.js';
export { getBackend, setBackend, nativeBackendOrNull } from './backend-registry.js';
export { referenceBackend } from './backend-reference.js';
export { InvalidInputError, limits, setLimits, DEFAULT_LIMITS, LIMIT_ENV, type Limits } from './limits.js';
