/**
 * Strata in the browser (`import { openProgressive } from 'strata/web'`): progressive loading of
 * .strata files over HTTP Range requests with a persistent cached prefix, inference at each
 * precision on Strata's TypeScript engine, and the preprocessing that turns pixels into the
 * network's input. Nothing here imports a node: module.
 */
export {
  openProgressive,
  ProgressiveLoad,
  ProgressiveModel,
  ProgressiveHttpError,
  type OpenProgressiveOptions,
  type ProgressiveProgress,
  type RangeRequestRecord,
  type ModelPrediction,
  type ModelInput,
} from './open-progressive.js';
export {
  memoryStore,
  indexedDbStore,
  defaultStore,
  type CachedPrefix,
  type PrefixStore,
} from './prefix-store.js';
export { precisionInfoOf, describePrecisionInfo, type PrecisionInfo } from './precision-info.js';
export {
  imageToInput,
  inputSpecFor,
  toChannels,
  softmax,
  topClasses,
  classLabels,
  type InputSpec,
  type ClassScore,
} from './preprocess.js';
export { pixelsToInput } from './pixels.js';
export type { StrataHeader } from '../format/index.js';
