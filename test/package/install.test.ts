/**
 * The package as a user installs it: `npm pack` (which builds through `prepare`), the tarball
 * installed into a fresh project from the local npm cache (its install script builds the native
 * addon, or reports the fallback), the README's two library examples type-checked against the
 * installed types and the Node one run as written, and the `strata` binary run from the install
 * without tsx.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
  copyFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packCheckpoint } from '../../src/cli/commands/pack.js';
import { repoRoot } from '../../src/data/real-datasets.js';

const root = repoRoot();

function run(command: string, args: string[], cwd: string, timeoutMs = 600_000): SpawnSyncReturns<string> {
  const result = spawnSync(command, args, {
    cwd,
    encoding: 'utf8',
    timeout: timeoutMs,
    env: { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false' },
  });
  if (result.error) throw result.error;
  return result;
}

function check(result: SpawnSyncReturns<string>, what: string): string {
  assert.equal(result.status, 0, `${what} failed (${result.status}):\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

/** The code block after `<!-- example: name -->` in README.md. */
function readmeExample(name: string): string {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const at = readme.indexOf(`<!-- example: ${name} -->`);
  assert.ok(at >= 0, `README.md has no example '${name}'`);
  const block = /```ts\n([\s\S]*?)```/.exec(readme.slice(at));
  assert.ok(block !== null, `README.md example '${name}' has no ts code block`);
  return block[1];
}

test(
  'npm pack, install the tarball offline, run the README example and the strata binary',
  { timeout: 1_200_000 },
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'strata-package-'));
    try {
      // Pack: `prepare` builds dist/ (tsc and the browser bundles) first.
      const packOutput = check(run('npm', ['pack', '--json', '--pack-destination', dir], root), 'npm pack');
      // The build's own output comes first; the JSON report is the last thing printed.
      const packed = JSON.parse(packOutput.slice(packOutput.search(/^\[/m))) as {
        filename: string;
        files: { path: string }[];
      }[];
      const files = new Set(packed[0].files.map((f) => f.path));
      for (const needed of [
        'dist/index.js',
        'dist/index.d.ts',
        'dist/cli/main.js',
        'dist/web/strata-web.js',
        'dist/web/index.d.ts',
        'dist/web/client.js',
        'src/web/index.html',
        'src/web/samples/cifar10.png',
        'binding.gyp',
        'src/native/addon.cc',
        'bin/strata.js',
      ]) {
        assert.ok(files.has(needed), `the tarball lacks ${needed}`);
      }
      assert.ok(![...files].some((f) => f.startsWith('test/')), 'tests are not shipped');
      const tarball = join(dir, packed[0].filename);

      // A fresh project; dependencies come from the local npm cache.
      const project = join(dir, 'project');
      mkdirSync(project);
      writeFileSync(
        join(project, 'package.json'),
        JSON.stringify({ name: 'strata-consumer', private: true, type: 'module' }, null, 2),
      );
      writeFileSync(join(project, '.npmrc'), 'onnxruntime-node-install=skip\n');
      // From the local cache alone when it holds every package's metadata; otherwise the cache first
      // and the registry for what it lacks (a cache filled by `npm ci` holds tarballs, not metadata).
      const installArgs = ['install', '--no-audit', '--no-fund', tarball];
      let install = run('npm', [...installArgs, '--offline'], project, 900_000);
      if (install.status !== 0 && `${install.stdout}${install.stderr}`.includes('ENOTCACHED')) {
        t.diagnostic('the npm cache lacks some metadata: installing with --prefer-offline');
        install = run('npm', [...installArgs, '--prefer-offline'], project, 900_000);
      }
      check(install, 'npm install of the tarball');
      const installed = join(project, 'node_modules', 'strata');
      const native = existsSync(join(installed, 'build', 'Release', 'strata_native.node'));
      const output = `${install.stdout}\n${install.stderr}`;
      t.diagnostic(native ? 'native addon built on install' : 'native addon not built; reference fallback');
      assert.ok(
        native || output.includes('could not be built'),
        'the install either builds the addon or says that it runs on the reference backend',
      );
      assert.ok(!existsSync(join(project, 'node_modules', 'tsx')), 'tsx is not installed for users');
      assert.ok(
        !existsSync(join(project, 'node_modules', 'onnxruntime-web')),
        'no browser runtime is installed',
      );

      // The README's examples, as written, against the installed package's types.
      writeFileSync(join(project, 'predict.ts'), readmeExample('node'));
      writeFileSync(join(project, 'page.ts'), readmeExample('browser'));
      writeFileSync(
        join(project, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            target: 'ES2022',
            module: 'NodeNext',
            moduleResolution: 'NodeNext',
            strict: true,
            outDir: 'out',
            lib: ['ES2022', 'DOM', 'DOM.Iterable'],
            types: ['node'],
            typeRoots: [join(root, 'node_modules', '@types')],
            skipLibCheck: true,
          },
          files: ['predict.ts', 'page.ts'],
        }),
      );
      check(
        run(
          process.execPath,
          [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', project],
          project,
        ),
        'tsc',
      );
      writeFileSync(
        join(project, 'model.strata'),
        packCheckpoint(join(root, 'checkpoints', 'cifar10-resnet20-once3.ckpt')),
      );
      copyFileSync(join(root, 'src', 'web', 'samples', 'cifar10.png'), join(project, 'cat.png'));
      const predicted = check(
        run(process.execPath, ['out/predict.js', 'model.strata', 'cat.png'], project),
        'the README example',
      );
      t.diagnostic(predicted.trim());
      assert.match(predicted, /^2 bits: cat \(\d+\.\d %\)$/m);
      assert.match(predicted, /^8 bits: cat \(\d+\.\d %\)$/m);

      // The binary, from the install's built code.
      const bin = join(project, 'node_modules', '.bin', 'strata');
      const info = check(run(bin, ['info', 'model.strata'], project), 'strata info');
      assert.match(info, /resnet20/);
      const cli = check(
        run(bin, ['predict', 'model.strata', 'cat.png', '--bits', '2'], project),
        'strata predict',
      );
      assert.match(cli, /cat/);

      // `strata serve` from the install: the page, its script and sample image, the model by ranges.
      const server = spawn(bin, ['serve', '.', '--port', '0', '--quiet'], { cwd: project });
      try {
        const url = await new Promise<string>((resolve, reject) => {
          let out = '';
          server.stdout.on('data', (chunk: Buffer) => {
            out += chunk.toString();
            const found = /serving .* at (http:\/\/\S+?)\/\n/.exec(out);
            if (found) resolve(found[1]);
          });
          server.once('exit', (code) => reject(new Error(`strata serve exited (${code}): ${out}`)));
        });
        const page = await (await fetch(`${url}/`)).text();
        assert.match(page, /model\.strata/);
        const script = /src="(\/client\.js\?v=[^"]+)"/.exec(page);
        assert.ok(script !== null);
        const client = await fetch(`${url}${script[1]}`);
        assert.equal(client.status, 200);
        assert.equal(client.headers.get('cache-control'), 'public, max-age=31536000, immutable');
        assert.ok((await client.text()).length > 10_000);
        assert.equal((await fetch(`${url}/samples/cifar10.png`)).status, 200);
        const basic = await fetch(`${url}/model.strata`, { headers: { Range: 'bytes=0-99' } });
        assert.equal(basic.status, 206);
        assert.equal((await basic.arrayBuffer()).byteLength, 100);
      } finally {
        server.kill();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
