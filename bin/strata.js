#!/usr/bin/env node
// Launcher: the compiled CLI (dist/cli/main.js, built by `npm run build`, which `npm install` in a
// checkout and `npm pack` run through the `prepare` script), in this same process so signals
// (Ctrl-C writes a checkpoint) and the exit status need no forwarding. In a checkout whose
// TypeScript sources are newer than that build, the sources run through tsx (a dev dependency)
// instead, so that an edit is never shadowed by a stale build.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const compiled = join(root, 'dist', 'cli', 'main.js');
const source = join(root, 'src', 'cli', 'main.ts');

/** Newest modification time of the .ts files under `dir` (0 when there are none). */
function newestSource(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

async function tsxRegister() {
  try {
    return (await import('tsx/esm/api')).register;
  } catch {
    return null;
  }
}

async function loadCli() {
  const built = existsSync(compiled);
  const stale = built && existsSync(source) && newestSource(join(root, 'src')) > statSync(compiled).mtimeMs;
  if (built && !stale) return import(pathToFileURL(compiled).href);
  const register = existsSync(source) ? await tsxRegister() : null;
  if (register !== null) {
    register();
    return import(pathToFileURL(source).href);
  }
  if (built) {
    process.stderr.write(`strata: ${compiled} is older than the sources; run \`npm run build\`.\n`);
    return import(pathToFileURL(compiled).href);
  }
  process.stderr.write(
    `strata: ${compiled} is missing and tsx is not installed to run ${source}.\n` +
      'Possible solutions:\n  - run `npm run build`\n  - or `npm install` (tsx is a dev dependency)\n',
  );
  process.exit(1);
}

const cli = await loadCli();
await cli.main(process.argv.slice(2));
