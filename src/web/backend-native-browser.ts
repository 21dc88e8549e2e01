/**
 * Stands in for src/engine/backend-native.ts in the browser bundle (scripts/build-web.mjs aliases
 * it): there is no oneDNN addon in a browser, so the engine uses its TypeScript reference backend.
 */
import type { NativeAddon, NativeLoadResult } from '../engine/backend-native.js';

const unavailable: NativeLoadResult = {
  ok: false,
  reason: 'no native backend in browsers',
  message: 'The native oneDNN backend is a Node addon; browsers use the TypeScript reference backend.',
};

export function loadNativeBackend(): NativeLoadResult {
  return unavailable;
}

export function nativeAddon(): NativeAddon | null {
  return null;
}
