#!/usr/bin/env node
// Launcher: the compiled CLI (dist/cli/main.js, from `npm run build`) when present, otherwise the
// TypeScript source through tsx, in this same process so signals (Ctrl-C writes a checkpoint) and the
// exit status need no forwarding.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const compiled = join(root, 'dist', 'cli', 'main.js');
const source = join(root, 'src', 'cli', 'main.ts');

async function loadCli() {
  if (existsSync(compiled)) return import(pathToFileURL(compiled).href);
  let register;
  try {
    ({ register } = await import('tsx/esm/api'));
  } catch {
    process.stderr.write(
      `strata: ${compiled} is missing and tsx is not installed to run ${source}.\n` +
        'Possible solutions:\n  - run `npm run build`\n  - or `npm install` (tsx is a dev dependency)\n',
    );
    process.exit(1);
  }
  register();
  return import(pathToFileURL(source).href);
}

const cli = await loadCli();
await cli.main(process.argv.slice(2));
