import type { Backend } from './backend.js';
import { referenceBackend } from './backend-reference.js';
import { loadNativeBackend } from './backend-native.js';
import { checkSettings } from './settings.js';

/**
 * Chooses the compute backend once: the oneDNN addon when it loads, otherwise the TypeScript
 * reference with a one-line warning that says why and how to fix it. `STRATA_BACKEND=reference`
 * or `=native` forces a choice (native then fails loudly instead of falling back).
 */
let active: Backend | null = null;

export function getBackend(): Backend {
  if (active === null) active = chooseBackend();
  return active;
}

/** Switches backend (tests compare native against reference this way). */
export function setBackend(backend: Backend): void {
  active = backend;
}

export function nativeBackendOrNull(): Backend | null {
  const result = loadNativeBackend();
  return result.ok ? result.backend : null;
}

function chooseBackend(): Backend {
  // Browsers (the bundled web client) have no `process`: no overrides there, and no native backend.
  const hasProcess = typeof process !== 'undefined';
  if (hasProcess && process.env !== undefined) checkSettings(process.env);
  const forced = hasProcess ? process.env?.STRATA_BACKEND : undefined;
  if (forced !== undefined && forced !== '' && forced !== 'native' && forced !== 'reference') {
    throw new RangeError(`Expected 'native' or 'reference' for STRATA_BACKEND but received '${forced}'`);
  }
  if (forced === 'reference') return referenceBackend;
  const result = loadNativeBackend();
  if (result.ok) return result.backend;
  if (forced === 'native') throw new Error(result.message);
  if (!hasProcess || typeof process.emitWarning !== 'function') return referenceBackend;
  process.emitWarning(
    `strata: native oneDNN backend unavailable (${result.reason}); using the slow TypeScript reference backend. ` +
      'Possible solutions: run `bash scripts/setup.sh` (installs libdnnl-dev and builds the addon) or `npx node-gyp rebuild`.',
    { code: 'STRATA_NO_NATIVE' },
  );
  return referenceBackend;
}
