import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fuzzStrata } from './fuzz-core.js';

test('fuzz: 2000 seeded mutations of valid files either load or throw StrataFormatError, each quickly', () => {
  const report = fuzzStrata(2000, 20240601);
  assert.deepEqual(report.failures, []);
  // The mutations must reach past the magic and the checksums, or the fuzz proves little.
  for (const code of ['BAD_CHECKSUM', 'BAD_HEADER', 'TRUNCATED', 'BAD_SHAPE', 'INVALID_OFFSET']) {
    assert.ok((report.refused[code] ?? 0) > 0, `no mutation produced ${code}`);
  }
  assert.ok(report.accepted > 0);
  assert.ok(report.slowestMs < 1000, `slowest file took ${report.slowestMs} ms`);
});
