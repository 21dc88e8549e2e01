import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Backend } from './backend.js';
import { threadsSetting } from './settings.js';
import type { Int8Kernels } from './int8-kernels.js';

export type NativeLoadResult =
  { ok: true; backend: Backend } | { ok: false; reason: string; message: string };

let cached: NativeLoadResult | null = null;

/** The package root: the first folder above this module that holds package.json. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return dir;
}

/** Loads build/Release/strata_native.node, keeping every error for one readable message. */
export function loadNativeBackend(): NativeLoadResult {
  if (cached !== null) return cached;
  const root = packageRoot();
  // STRATA_NATIVE_ADDON points at another build (and lets tests simulate a missing one).
  const override = process.env.STRATA_NATIVE_ADDON;
  const candidates =
    override !== undefined && override !== ''
      ? [override]
      : [
          join(root, 'build', 'Release', 'strata_native.node'),
          join(root, 'build', 'Debug', 'strata_native.node'),
        ];
  const errors: string[] = [];
  const require = createRequire(import.meta.url);
  // OpenMP threads that spin while waiting make every kernel several times slower as soon as
  // another process competes for the cores (measured: 2.3 s against 0.9 s a ResNet-20 step on a
  // busy 2-core machine) and gain nothing measurable on an idle one. libgomp reads this when the
  // addon loads it, so it must be set before require; a user's own setting wins.
  process.env.OMP_WAIT_POLICY ??= 'passive';
  // A bad setting is the user's error, not a missing addon: it must not turn into the slow fallback.
  const threads = threadsSetting(process.env);
  for (const path of candidates) {
    if (!existsSync(path)) {
      errors.push(`${path}: not built`);
      continue;
    }
    try {
      const addon = require(path) as NativeAddon;
      if (threads !== undefined) addon.setThreads(threads);
      cached = { ok: true, backend: wrapAddon(addon) };
      return cached;
    } catch (e) {
      errors.push(`${path}: ${(e as Error).message}`);
    }
  }
  const reason = errors.join('; ');
  cached = {
    ok: false,
    reason,
    message:
      `Could not load the native oneDNN backend:\n  ${errors.join('\n  ')}\n` +
      'Possible solutions:\n  - run `bash scripts/setup.sh` (installs libdnnl-dev and build tools, then builds the addon)\n' +
      '  - or install libdnnl-dev yourself and run `npx node-gyp rebuild`',
  };
  return cached;
}

/** What the .node file exports (src/native/addon.cc). */
export interface NativeAddon extends Omit<Backend, 'name'>, Omit<Int8Kernels, 'name'> {
  setThreads(n: number): void;
  getThreads(): number;
  version(): string;
  primitiveCacheSize(): number;
  primitiveCacheLimit(): number;
}

let addonRef: NativeAddon | null = null;

export function nativeAddon(): NativeAddon | null {
  return loadNativeBackend().ok ? addonRef : null;
}

function wrapAddon(addon: NativeAddon): Backend {
  addonRef = addon;
  return Object.assign(Object.create(null) as object, addon, { name: 'native' }) as Backend;
}
