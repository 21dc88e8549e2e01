import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { MetricsLog, parseMetricsLog, readMetricsLog } from '../../src/report/metrics-log.js';

function withTempDir(run: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'strata-metrics-'));
    try {
      await run(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

test(
  'records round-trip through a log in folders that did not exist',
  withTempDir(async (dir) => {
    const path = join(dir, 'runs', 'mnist', 'metrics.jsonl');
    const log = new MetricsLog(path);
    const records = [
      { epoch: 1, step: 100, loss: 0.52, bits: { w: 4, a: 4 } },
      { epoch: 1, step: 200, loss: 0.41, note: 'lr "warm-up" done\nnext' },
      { epoch: 2, step: 300, loss: NaN },
    ];
    for (const record of records) log.append(record);
    const text = readFileSync(path, 'utf8');
    assert.equal(text.split('\n').length, records.length + 1);
    const read = await readMetricsLog(path);
    assert.deepEqual(read.records, [records[0], records[1], { epoch: 2, step: 300, loss: null }]);
    assert.deepEqual(read.malformed, []);
    assert.equal(read.truncated, undefined);
  }),
);

test(
  'a truncated last line is set apart, and later appends start on a fresh line',
  withTempDir(async (dir) => {
    const path = join(dir, 'metrics.jsonl');
    const first = new MetricsLog(path);
    first.append({ step: 1, loss: 0.9 });
    first.append({ step: 2, loss: 0.8 });
    // What a process killed in the middle of a write leaves behind.
    appendFileSync(path, '{"step": 3, "lo');

    const killed = await readMetricsLog(path);
    assert.deepEqual(killed.records, [
      { step: 1, loss: 0.9 },
      { step: 2, loss: 0.8 },
    ]);
    assert.deepEqual(killed.malformed, []);
    assert.equal(killed.truncated?.line, 3);
    assert.equal(killed.truncated?.text, '{"step": 3, "lo');
    assert.deepEqual((await readMetricsLog(path, { strict: true })).records, killed.records);

    const resumed = new MetricsLog(path);
    resumed.append({ step: 3, loss: 0.7 });
    resumed.append({ step: 4, loss: 0.6 });
    const after = await readMetricsLog(path);
    assert.deepEqual(
      after.records.map((r) => r.step),
      [1, 2, 3, 4],
    );
    assert.deepEqual(
      after.malformed.map((m) => m.line),
      [3],
    );
    assert.equal(after.truncated, undefined);
  }),
);

test('malformed lines are reported with 1-based line numbers and reasons', () => {
  const text = ['{"a":1}', 'not json', '', '[1,2]', '{"b":2}\r', '42', '{"c":3}'].join('\n');
  const parsed = parseMetricsLog(text);
  // The last line has no newline but parses, so it counts as a record.
  assert.deepEqual(parsed.records, [{ a: 1 }, { b: 2 }, { c: 3 }]);
  assert.deepEqual(
    parsed.malformed.map((m) => [m.line, m.text]),
    [
      [2, 'not json'],
      [4, '[1,2]'],
      [6, '42'],
    ],
  );
  assert.equal(parsed.malformed[1].reason, 'expected a JSON object but found an array');
  assert.equal(parsed.malformed[2].reason, 'expected a JSON object but found 42 of type number');
  assert.equal(parsed.truncated, undefined);
  assert.deepEqual(parseMetricsLog(''), { records: [], malformed: [], truncated: undefined });
});

test(
  'strict reading throws at the first malformed line and names the file',
  withTempDir(async (dir) => {
    const path = join(dir, 'bad.jsonl');
    writeFileSync(path, '{"a":1}\n{"a":\n{"a":3}\n');
    await assert.rejects(readMetricsLog(path, { strict: true }), (error: Error) => {
      assert.ok(error.message.startsWith(`Malformed metrics record at line 2 of ${path}: `), error.message);
      return true;
    });
    const lenient = await readMetricsLog(path);
    assert.deepEqual(lenient.records, [{ a: 1 }, { a: 3 }]);
    assert.deepEqual(
      lenient.malformed.map((m) => m.line),
      [2],
    );
  }),
);

test('append accepts only plain objects', () => {
  const log = new MetricsLog(join(tmpdir(), 'strata-never-written.jsonl'));
  assert.throws(() => log.append([1, 2] as unknown as Record<string, unknown>), {
    name: 'TypeError',
    message: 'Expected plain object for record but received 1,2 of type object',
  });
  assert.throws(() => log.append(null as unknown as Record<string, unknown>), {
    name: 'TypeError',
    message: 'Expected plain object for record but received null of type null',
  });
  assert.throws(() => new MetricsLog(''), RangeError);
});
