import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const script = `import { getBackend } from './src/engine/backend-registry.ts'; console.log('backend=' + getBackend().name);`;

function run(env: Record<string, string>) {
  return spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, STRATA_BACKEND: '', ...env },
  });
}

test('without the addon Strata says so in one warning and runs on the reference backend', () => {
  const r = run({ STRATA_NATIVE_ADDON: '/nonexistent/strata_native.node' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /backend=reference/);
  const warnings = r.stderr.split('\n').filter((l) => l.includes('STRATA_NO_NATIVE'));
  assert.equal(warnings.length, 1, r.stderr);
  assert.match(
    warnings[0],
    /native oneDNN backend unavailable \(\/nonexistent\/strata_native\.node: not built\); using the slow TypeScript reference backend\. Possible solutions: run `bash scripts\/setup\.sh`/,
  );
});

test('STRATA_BACKEND=native refuses to fall back and lists the possible solutions', () => {
  const r = run({ STRATA_NATIVE_ADDON: '/nonexistent/strata_native.node', STRATA_BACKEND: 'native' });
  assert.notEqual(r.status, 0);
  assert.match(
    r.stderr,
    /Could not load the native oneDNN backend:\n {2}\/nonexistent\/strata_native\.node: not built\nPossible solutions:/,
  );
});

test('an unknown STRATA_BACKEND value is refused by name', () => {
  const r = run({ STRATA_BACKEND: 'gpu' });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /Expected 'native' or 'reference' for STRATA_BACKEND but received 'gpu'/);
});

test('STRATA_THREADS that is not a thread count is an error naming it, not a fall back to the reference backend', () => {
  for (const bad of ['abc', '0', '2.5', '-1']) {
    const r = run({ STRATA_THREADS: bad });
    assert.notEqual(r.status, 0, `STRATA_THREADS=${bad} was accepted: ${r.stdout}`);
    assert.doesNotMatch(r.stdout, /backend=reference/);
    assert.match(
      r.stderr,
      new RegExp(`environment: STRATA_THREADS '${bad}' is not an integer in \\[1, 1024\\]`),
    );
  }
});

test('an unknown STRATA_ setting is refused by name', () => {
  const r = run({ STRATA_THREAD: '4' });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /environment: STRATA_THREAD '4' is not a Strata setting \(known: STRATA_THREADS,/);
});
