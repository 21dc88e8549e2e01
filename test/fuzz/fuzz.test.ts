import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runFuzz } from './runner.js';

test('fuzz: a fixed-seed run over every entry point ends in loads and named refusals only, each quickly', async () => {
  const report = await runFuzz({ execs: 1400, seed: 20261202 });
  assert.deepEqual(
    report.failures.map((f) => `${f.signature}\n${f.message}`),
    [],
  );
  assert.equal(report.execs, 1400);
  // Every target ran, and the mutations reached both outcomes (so the run proves something).
  for (const [name, stats] of Object.entries(report.perTarget)) {
    assert.ok(stats.execs >= 40, `${name} ran ${stats.execs} times`);
    if (name === 'onnx-metadata' || name === 'http' || name === 'addon') continue;
    const outcomes = Object.keys(stats.outcomes);
    assert.ok(
      outcomes.some((o) => /^(bits|loaded|restored|decoded)/.test(o)),
      `${name}: nothing was accepted (${outcomes.join(', ')})`,
    );
    assert.ok(outcomes.length >= 3, `${name}: too few distinct outcomes (${outcomes.join(', ')})`);
  }
  for (const status of ['status 200', 'status 400', 'status 404']) {
    assert.ok((report.perTarget.http.outcomes[status] ?? 0) > 0, `no request answered ${status}`);
  }
  assert.ok(report.slowest.ms < 2000, `slowest case ${report.slowest.ms} ms`);
});
