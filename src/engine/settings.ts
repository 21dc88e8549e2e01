/**
 * The `STRATA_*` environment variables this package reads. A misspelt or unknown one is an error
 * that names it, rather than a setting silently ignored (a mistyped thread count once fell back to
 * the reference backend, about 100 times slower, with advice to rebuild the addon).
 */
import { InvalidInputError, LIMIT_ENV } from './limits.js';

/** Every setting, with what it does (the error lists them). */
export const KNOWN_SETTINGS: Readonly<Record<string, string>> = Object.freeze({
  STRATA_THREADS: 'oneDNN/OpenMP threads (positive integer)',
  STRATA_BACKEND: "'native' or 'reference'",
  STRATA_NATIVE_ADDON: 'path of another build of the addon',
  STRATA_PROGRESS: 'progress display',
  STRATA_DEBUG: 'print stack traces of CLI errors',
  STRATA_SHARED: 'shared datasets folder',
  STRATA_CACHE: 'dataset cache folder',
  STRATA_REQUIRE_NATIVE: 'tests: fail instead of skipping native-only tests',
  STRATA_REQUIRE_BROWSER: 'tests: fail instead of skipping browser tests',
  STRATA_TORCH_PYTHON: 'benchmarks: python with torch for comparisons',
  ...Object.fromEntries(Object.values(LIMIT_ENV).map((name) => [name, 'a limit (docs/LIMITS.md)'])),
});

/** Refuses unknown `STRATA_*` variables by name. */
export function checkSettings(env: Record<string, string | undefined>): void {
  for (const name of Object.keys(env)) {
    if (name.startsWith('STRATA_') && !(name in KNOWN_SETTINGS)) {
      throw new InvalidInputError(
        'environment',
        name,
        `is not a Strata setting (known: ${Object.keys(KNOWN_SETTINGS).join(', ')})`,
        `'${env[name] ?? ''}'`,
      );
    }
  }
}

/** STRATA_THREADS as a thread count, undefined when unset; anything else refused by name. */
export function threadsSetting(env: Record<string, string | undefined>): number | undefined {
  const raw = env.STRATA_THREADS;
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!/^\s*\d+\s*$/.test(raw) || !Number.isSafeInteger(n) || n < 1 || n > 1024) {
    throw new InvalidInputError(
      'environment',
      'STRATA_THREADS',
      'is not an integer in [1, 1024]',
      `'${raw}'`,
    );
  }
  return n;
}
