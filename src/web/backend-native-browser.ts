/**
 * Stands in for src/engine/backend-native.ts in the browser bundle (scripts/build-web.mjs aliases
 * it): there is no oneDNN addon in a browser, so the engine runs on its TypeScript reference
 * backend, with the forward convolution compiled to WebAssembly (src/web/conv-wasm.ts: the same
 * arithmetic, bitwise the same outputs, without the JavaScript engine's warm-up on a page's first
 * forward pass). Where WebAssembly cannot run, the reference backend as it is.
 */
import type { Backend } from '../engine/backend.js';
import type { NativeAddon, NativeLoadResult } from '../engine/backend-native.js';
import { referenceBackend } from '../engine/backend-reference.js';
import { wasmConv2dForward } from './conv-wasm.js';

let loaded: NativeLoadResult | null = null;

export function loadNativeBackend(): NativeLoadResult {
  if (loaded !== null) return loaded;
  const conv2dForward = wasmConv2dForward(referenceBackend.conv2dForward);
  const backend: Backend = {
    ...referenceBackend,
    name: conv2dForward === null ? 'reference' : 'reference-wasm',
    ...(conv2dForward === null ? {} : { conv2dForward }),
  };
  loaded = { ok: true, backend };
  return loaded;
}

export function nativeAddon(): NativeAddon | null {
  return null;
}
