export * from './config.js';
export * from './checkpoint.js';
export { SGD, AdamW, Optimizer, type OptimizerState, type SgdConfig, type AdamWConfig } from './optim.js';
export * from './schedule.js';
export { evaluate, type EvalResult } from './evaluate.js';
export { loadDataSources, type DataSources } from './data.js';
export { evaluateAdapted, evaluatePtq, type BaselineRow } from './baselines.js';
export { reestimateBatchNorm, activeBatchNorms } from './batch-norm-reestimate.js';
export {
  buildModel,
  checkpointPath,
  modelState,
  precisionsForStep,
  runTraining,
  trainStep,
  type BuiltModel,
  type EpochRecord,
  type TrainOptions,
  type TrainResult,
} from './trainer.js';
export { median, timeTrainingSteps, type StepTiming } from './benchmark.js';
