import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot, strata, tableRows, tempDir } from './helpers.js';

const env = { ...process.env, STRATA_THREADS: '1', STRATA_PROGRESS: '0' };

interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[]): { child: ChildProcess; done: Promise<Finished> } {
  const child = spawn(command, args, { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const done = new Promise<Finished>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done };
}

async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const start = Date.now();
  while (!condition()) {
    if (Date.now() - start > timeoutMs)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test('a run killed with SIGKILL after its first checkpoint resumes from it and finishes', async () => {
  const out = join(tempDir('resume'), 'run');
  const args = [
    '--import',
    'tsx',
    'src/cli/main.ts',
    'train',
    '--model',
    'small-cnn',
    '--dataset',
    'mnist',
    '--mode',
    'fp',
    '--train-limit',
    '4096',
    '--val-limit',
    '256',
    '--batch-size',
    '64',
    '--epochs',
    '3',
    '--out',
    out,
  ];
  const first = run(process.execPath, args);
  const checkpoint = join(out, 'checkpoint.ckpt');
  try {
    await waitFor(() => existsSync(checkpoint) || first.child.exitCode !== null, 20000, checkpoint);
  } finally {
    first.child.kill('SIGKILL');
  }
  const killed = await first.done;
  assert.equal(killed.signal, 'SIGKILL', `the first run ended by itself:\n${killed.stderr}`);

  const second = await run(process.execPath, args).done;
  assert.equal(second.code, 0, second.stderr);
  const resumed = /resumed from (\S+): epoch (\d+), batch (\d+)/.exec(second.stderr);
  assert.ok(resumed, `no resume line in:\n${second.stderr}`);
  assert.equal(resumed[1], checkpoint);
  // Killed after epoch 1 was saved: epoch 2 (or, on a stalled machine, 3) comes next, from its start.
  assert.ok(Number(resumed[2]) >= 2 && Number(resumed[2]) <= 3, resumed[0]);
  assert.equal(resumed[3], '0');
  assert.deepEqual(
    tableRows(second.stdout).map((row) => row[0]),
    ['fp'],
  );

  const info = await strata('info', checkpoint);
  assert.match(info.stdout, /^progress: 3 of 3 epochs done \(finished\)/m);
  // The epochs of the killed run are kept in the history.
  assert.deepEqual(
    tableRows(info.stdout).map((row) => row[0]),
    ['fp'],
  );
  assert.match(info.stdout, /best top-1 %/);
});

test('bin/strata.js passes arguments and the exit status through', async () => {
  const version = await run(process.execPath, ['bin/strata.js', '--version']).done;
  assert.equal(version.code, 0, version.stderr);
  assert.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
  const missing = await run(process.execPath, ['bin/strata.js', 'info', '/nonexistent/file.ckpt']).done;
  assert.equal(missing.code, 1);
  assert.equal(missing.stderr, 'error: /nonexistent/file.ckpt: file not found\n');
});
