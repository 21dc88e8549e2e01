import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { configFromFlags } from '../../src/cli/commands/train.js';
import { repoRoot, strata, tempDir } from './helpers.js';

const HELP: Record<string, string[]> = {
  import: ['--output', '--dataset', '--classes', '--mean', '--std', '--input-size', '--no-verify'],
  train: [
    '--config',
    '--mode',
    '--model',
    '--dataset',
    '--data-path',
    '--bits',
    '--epochs',
    '--batch-size',
    '--lr',
    '--weight-decay',
    '--label-smoothing',
    '--schedule',
    '--warmup-epochs',
    '--init',
    '--distill',
    '--sample-precisions',
    '--rule',
    '--first-last',
    '--train-limit',
    '--val-limit',
    '--seed',
    '--out',
    '--fresh',
    '--set',
    '--print-config',
  ],
  eval: [
    '<model>',
    '--data',
    '--engine',
    '--float',
    '--batch-size',
    '--limit',
    '--bits',
    '--adapted',
    '--reestimate-bn',
    '--bn-batches',
    '--val-limit',
    '--chart',
    '--data-path',
    '--results',
  ],
  chart: ['--runs', '--out', '--metric'],
  info: ['<file>'],
  bench: ['--batch', '--iters', '--warmup', '--threads'],
};

for (const [command, options] of Object.entries(HELP)) {
  test(`strata ${command} --help lists its options`, async () => {
    const r = await strata(command, '--help');
    assert.equal(r.code, 0);
    assert.match(r.stdout, new RegExp(`^Usage: strata ${command} `));
    for (const option of options) assert.ok(r.stdout.includes(option), `${command} --help lacks ${option}`);
  });
}

test('strata --help lists every command', async () => {
  const r = await strata('--help');
  assert.equal(r.code, 0);
  for (const command of [...Object.keys(HELP), 'pack', 'extract', 'export', 'predict', 'serve']) {
    assert.match(r.stdout, new RegExp(`\\n  ${command} `));
  }
});

test('strata --version prints the package version', async () => {
  const { version } = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
  const r = await strata('--version');
  assert.equal(r.code, 0);
  assert.equal(r.stdout, `${version}\n`);
});

test('an unknown option is refused by name, with a suggestion for a near miss', async () => {
  const unknown = await strata('train', '--bogus');
  assert.equal(unknown.code, 1);
  assert.equal(unknown.stderr, "error: unknown option '--bogus'\n(add --help for usage)\n");
  const typo = await strata('train', '--epoch', '2');
  assert.equal(typo.code, 1);
  assert.match(typo.stderr, /^error: unknown option '--epoch'\n\(Did you mean --epochs\?\)/);
});

test('an unknown command is refused by name', async () => {
  const r = await strata('frobnicate');
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^error: unknown command 'frobnicate'/);
});

test('an unknown model or dataset name lists the known ones', async () => {
  const model = await strata('train', '--model', 'resnet99');
  assert.equal(model.code, 1);
  assert.match(
    model.stderr,
    /^error: option '--model <name>' argument 'resnet99' is invalid\. Allowed choices are resnet20, resnet32, resnet56, resnet18, mobilenetv2, small-cnn\./,
  );
  const dataset = await strata('train', '--dataset', 'imagenet');
  assert.equal(dataset.code, 1);
  assert.match(dataset.stderr, /argument 'imagenet' is invalid\. Allowed choices are mnist, fashion-mnist, /);
});

test('an unknown model in a config file names the file', async () => {
  const dir = tempDir('options');
  const config = join(dir, 'bad.json');
  writeFileSync(config, JSON.stringify({ model: 'resnet99' }));
  const r = await strata('train', '--config', config, '--out', join(dir, 'run'));
  assert.equal(r.code, 1);
  assert.equal(
    r.stderr,
    "error: Expected one of 'resnet20', 'resnet32', 'resnet56', 'resnet18', 'mobilenetv2', 'small-cnn', 'imported' for model " +
      `of ${config} + command line but received 'resnet99' of type string\n`,
  );
});

test('bad numbers and lists are refused at the edge', async () => {
  const lr = await strata('train', '--lr', 'fast');
  assert.equal(lr.code, 1);
  assert.match(
    lr.stderr,
    /^error: option '--lr <x>' argument 'fast' is invalid\. Expected a finite number but received 'fast'\./,
  );
  const epochs = await strata('train', '--epochs', '1.5');
  assert.match(
    epochs.stderr,
    /argument '1\.5' is invalid\. Expected a positive integer but received '1\.5'\./,
  );
  const bits = await strata('train', '--bits', '8,x');
  assert.match(bits.stderr, /argument '8,x' is invalid\. Expected comma-separated bit-widths in \[1, 32\]/);
  const set = await strata('train', '--set', 'lr');
  assert.match(
    set.stderr,
    /argument 'lr' is invalid\. Expected key=value \(e\.g\. lr=0\.05\) but received 'lr'\./,
  );
});

test('config values out of range and unknown --set keys are refused by the config resolver', async () => {
  const dir = tempDir('options');
  const qat = await strata('train', '--mode', 'qat', '--out', dir);
  assert.equal(qat.code, 1);
  assert.equal(
    qat.stderr,
    "error: command line: mode 'qat' trains one precision but bits lists 7 (8,7,6,5,4,3,2)\n",
  );
  const key = await strata('train', '--set', 'learningRate=0.1', '--out', dir);
  assert.equal(key.code, 1);
  assert.match(key.stderr, /^error: command line: unknown option 'learningRate' \(known: /);
});

test('a missing config file or input file is named', async () => {
  const config = await strata('train', '--config', '/nonexistent/strata.json');
  assert.equal(config.code, 1);
  assert.equal(config.stderr, 'error: config /nonexistent/strata.json: cannot read (ENOENT)\n');
  const info = await strata('info', '/nonexistent/model.strata');
  assert.equal(info.stderr, 'error: /nonexistent/model.strata: file not found\n');
  const evaluated = await strata('eval', '/nonexistent/checkpoint.ckpt');
  assert.equal(evaluated.stderr, 'error: checkpoint /nonexistent/checkpoint.ckpt: file not found\n');
  const chart = await strata('chart', '--runs', '/nonexistent/run', '--out', '/tmp/x.svg');
  assert.equal(chart.stderr, 'error: results /nonexistent/run: file not found\n');
});

test('info refuses a file that is neither a checkpoint, a .strata model nor an ONNX graph', async () => {
  const path = join(tempDir('options'), 'notes.txt');
  writeFileSync(path, 'hello, world');
  const r = await strata('info', path);
  assert.equal(r.code, 1);
  assert.equal(
    r.stderr,
    `error: ${path}: neither a Strata checkpoint (magic "STRCKPT1"), a .strata model file ` +
      '(magic "STRATA\\0\\x01") nor an ONNX model (first byte 08); its first bytes are 68 65 6c 6c 6f 2c 20 77\n',
  );
});

test('every shipped config resolves, and names its run folder after itself', () => {
  const files = readdirSync(join(repoRoot, 'configs')).filter((f) => f.endsWith('.json'));
  assert.ok(files.length >= 11, files.join(', '));
  for (const file of files) {
    const config = configFromFlags({ config: join(repoRoot, 'configs', file) });
    assert.equal(config.out, `runs/${file.replace(/\.json$/, '')}`, file);
    const qat = /-qat(\d)\.json$/.exec(file);
    if (qat) assert.deepEqual([config.mode, config.bits], ['qat', [Number(qat[1])]], file);
    if (file.includes('-once')) assert.equal(config.mode, 'once', file);
    // Fine-tuning starts from the full-precision run of the same model and data.
    if (config.init !== undefined) {
      assert.ok(files.includes(`${config.init.split('/')[1]}.json`), `${file}: init ${config.init}`);
    }
  }
});

test('--set overrides flags, which override the config file', () => {
  const config = configFromFlags({
    config: join(repoRoot, 'configs/mnist-once.json'),
    epochs: 5,
    lr: 0.5,
    set: ['lr=0.03', 'bits=4', 'mode=qat', 'nesterov=false'],
  });
  assert.deepEqual(
    [config.epochs, config.lr, config.bits, config.mode, config.nesterov, config.batchSize],
    [5, 0.03, [4], 'qat', false, 128],
  );
});

test('train --print-config shows the config resolved from file, flags and --set, in that order', async () => {
  const r = await strata(
    'train',
    '--config',
    join(repoRoot, 'configs/mnist-once.json'),
    '--epochs',
    '3',
    '--lr',
    '0.5',
    '--set',
    'lr=0.05',
    'bits=8,4',
    '--distill',
    '--print-config',
  );
  assert.equal(r.code, 0, r.stderr);
  const config = JSON.parse(r.stdout) as Record<string, unknown>;
  assert.deepEqual(
    [config.model, config.epochs, config.lr, config.bits, config.distill, config.trainLimit],
    ['small-cnn', 3, 0.05, [8, 4], true, 30000],
  );
});
