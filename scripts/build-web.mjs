#!/usr/bin/env node
/**
 * Bundles, with esbuild, ESM for browsers with the oneDNN addon loader replaced by a stub
 * (src/web/backend-native-browser.ts), so the engine runs on its TypeScript reference backend:
 * - the page's script, src/web/client.ts -> dist/web/client.js (what `strata serve` sends; a classic script);
 * - the page's service worker, src/web/service-worker.ts -> dist/web/sw.js (a classic script);
 * - the browser library, src/web/index.ts -> dist/web/strata-web.js (the package's `strata/web`
 *   entry, with its types in dist/web/index.d.ts from tsc).
 * Any node: import that reaches a bundle is an error. Minified unless --no-minify.
 *
 *   node scripts/build-web.mjs [--no-minify] [--outfile path (the page's script only)]
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

const pageScript = join(root, 'src', 'web', 'client.ts');

/**
 * Builds one bundle; returns the output path. Options: entry (default src/web/client.ts), outfile
 * (default dist/web/client.js), format (default 'iife' for the page's script: a classic script,
 * which Chromium compiles from a code cache it makes when the service worker stores the script;
 * 'esm' for other entries), sourcemap (default true), minify (default true), quiet (default false).
 */
export async function buildWeb(options = {}) {
  const { build } = await import('esbuild');
  const outfile = options.outfile ?? join(root, 'dist', 'web', 'client.js');
  const entry = options.entry ?? pageScript;
  await mkdir(dirname(outfile), { recursive: true });
  const result = await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'browser',
    format: options.format ?? (entry === pageScript ? 'iife' : 'esm'),
    target: ['es2022'],
    sourcemap: options.sourcemap ?? true,
    minify: options.minify ?? true,
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

/** The page's service worker (src/web/service-worker.ts) -> dist/web/sw.js, next to the client. */
export async function buildServiceWorker(options = {}) {
  return buildWeb({
    ...options,
    entry: join(root, 'src', 'web', 'service-worker.ts'),
    outfile: options.outfile ?? join(root, 'dist', 'web', 'sw.js'),
    format: 'iife',
    sourcemap: false,
  });
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const args = process.argv.slice(2);
  const at = args.indexOf('--outfile');
  const minify = !args.includes('--no-minify');
  const builds =
    at >= 0
      ? [buildWeb({ outfile: resolve(args[at + 1]), minify })]
      : [
          buildWeb({ minify }),
          buildServiceWorker({ minify }),
          buildWeb({
            minify,
            entry: join(root, 'src', 'web', 'index.ts'),
            outfile: join(root, 'dist', 'web', 'strata-web.js'),
          }),
        ];
  Promise.all(builds)
    .then((paths) => paths.forEach((path) => console.log(`built ${path}`)))
    .catch((e) => {
      console.error(e instanceof Error ? e.message : e);
      process.exitCode = 1;
    });
}
