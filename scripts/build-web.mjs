#!/usr/bin/env node
/**
 * Bundles the browser client (src/web/client.ts) into dist/web/client.js with esbuild: ESM for
 * browsers, the oneDNN addon loader replaced by a stub (src/web/backend-native-browser.ts), and
 * onnxruntime-web left out (the page imports it from /ort/ at run time). Any node: import that
 * reaches the bundle is an error.
 *
 *   node scripts/build-web.mjs [--minify] [--outfile path]
 */
import { mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Redirects the engine's native-backend loader to the browser stub. */
const browserStubs = {
  name: 'strata-browser-stubs',
  setup(build) {
    build.onResolve({ filter: /(^|\/)backend-native(\.js|\.ts)?$/ }, (args) => {
      if (!args.importer.includes(`${join('src', 'engine')}`)) return undefined;
      return { path: join(root, 'src', 'web', 'backend-native-browser.ts') };
    });
    build.onResolve({ filter: /^node:/ }, (args) => ({
      errors: [{ text: `${args.path} imported by ${args.importer} cannot run in a browser` }],
    }));
  },
};

/**
 * Builds the bundle; returns the output path. Options: outfile (default dist/web/client.js),
 * minify (default false), quiet (default false).
 */
export async function buildWeb(options = {}) {
  const { build } = await import('esbuild');
  const outfile = options.outfile ?? join(root, 'dist', 'web', 'client.js');
  await mkdir(dirname(outfile), { recursive: true });
  const result = await build({
    entryPoints: [join(root, 'src', 'web', 'client.ts')],
    outfile,
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: ['es2022'],
    sourcemap: true,
    minify: options.minify ?? false,
    metafile: true,
    logLevel: options.quiet ? 'silent' : 'warning',
    plugins: [browserStubs],
  });
  const leaked = Object.keys(result.metafile.inputs).filter(
    (p) => p.startsWith('node:') || p.endsWith('src/engine/backend-native.ts'),
  );
  if (leaked.length > 0)
    throw new Error(`build-web: Node-only modules reached the bundle: ${leaked.join(', ')}`);
  return outfile;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const args = process.argv.slice(2);
  const at = args.indexOf('--outfile');
  const outfile = at >= 0 ? resolve(args[at + 1]) : undefined;
  buildWeb({ outfile, minify: args.includes('--minify') })
    .then((path) => console.log(`built ${path}`))
    .catch((e) => {
      console.error(e instanceof Error ? e.message : e);
      process.exitCode = 1;
    });
}
