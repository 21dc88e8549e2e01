export { Module, Parameter, type StateDict } from './module.js';
export { Conv2d, type Conv2dConfig } from './conv.js';
export { Linear } from './linear.js';
export { BatchNorm2d, type BatchNormConfig } from './batch-norm.js';
export { ReLU, ReLU6, MaxPool2d, AvgPool2d, GlobalAvgPool, Flatten, Sequential } from './layers.js';
export { manualSeed, kaimingNormal, uniformInit } from './init.js';
export * from './models/index.js';
