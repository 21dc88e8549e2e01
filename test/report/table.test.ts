import { test } from 'node:test';
import assert from 'node:assert/strict';

import { formatBytes, formatDuration, formatTable } from '../../src/report/table.js';
import { formatSi } from '../../src/report/units.js';

test('formatBytes uses binary prefixes with one decimal', () => {
  assert.equal(formatBytes(0), '0 B');
  assert.equal(formatBytes(1023), '1023 B');
  assert.equal(formatBytes(1024), '1.0 KiB');
  assert.equal(formatBytes(69939), '68.3 KiB');
  assert.equal(formatBytes(1024 * 1024 - 1), '1.0 MiB');
  assert.equal(formatBytes(5.5 * 2 ** 30), '5.5 GiB');
  assert.equal(formatBytes(3 * 2 ** 40), '3.0 TiB');
});

test('formatBytes rejects negative, non-finite and non-number input', () => {
  assert.throws(() => formatBytes(-1), {
    name: 'RangeError',
    message: 'Expected number in [0, Infinity) for bytes but received -1',
  });
  assert.throws(() => formatBytes(NaN), {
    name: 'RangeError',
    message: 'Expected finite number for bytes but received NaN',
  });
  assert.throws(() => formatBytes('5' as unknown as number), {
    name: 'TypeError',
    message: "Expected number for bytes but received '5' of type string",
  });
});

test('formatDuration picks units by size and carries rounding over', () => {
  assert.equal(formatDuration(0), '0s');
  assert.equal(formatDuration(0.0004), '400µs');
  assert.equal(formatDuration(0.42), '420ms');
  assert.equal(formatDuration(0.9996), '1s');
  assert.equal(formatDuration(12), '12s');
  assert.equal(formatDuration(12.34), '12.3s');
  assert.equal(formatDuration(59.94), '59.9s');
  assert.equal(formatDuration(59.96), '1m00s');
  assert.equal(formatDuration(185), '3m05s');
  assert.equal(formatDuration(3599.6), '1h00m00s');
  assert.equal(formatDuration(3723), '1h02m03s');
  assert.equal(formatDuration(2 * 86400 + 3 * 3600 + 4 * 60 + 5), '2d03h04m');
  assert.throws(() => formatDuration(Infinity), RangeError);
});

test('formatSi keeps three significant digits and carries into the next prefix', () => {
  assert.equal(formatSi(0), '0');
  assert.equal(formatSi(0.5234), '0.523');
  assert.equal(formatSi(12.34), '12.3');
  assert.equal(formatSi(999), '999');
  assert.equal(formatSi(999.96), '1.0k');
  assert.equal(formatSi(1234), '1.2k');
  assert.equal(formatSi(12345), '12.3k');
  assert.equal(formatSi(99960), '100k');
  assert.equal(formatSi(4.5e6), '4.5M');
  assert.equal(formatSi(-1500), '-1.5k');
});

/** Column of each cell's first and last character, found by splitting on runs of two or more spaces. */
function cellSpans(line: string): { start: number; end: number }[] {
  const spans: { start: number; end: number }[] = [];
  for (const match of line.matchAll(/\S+(?: \S+)*/g)) {
    spans.push({ start: match.index, end: match.index + match[0].length });
  }
  return spans;
}

test('formatTable right-aligns number columns and left-aligns text columns', () => {
  const rows: (string | number)[][] = [
    [2, 'W2A2', 61.2, '17.1 KiB'],
    [4, 'W4A4', 70.25, '34.2 KiB'],
    [8, 'W8A8 (reference)', 71.5, '68.3 KiB'],
  ];
  const text = formatTable(
    [{ header: 'bits' }, { header: 'name' }, { header: 'top-1' }, { header: 'bytes', align: 'right' }],
    rows,
  );
  const lines = text.split('\n');
  assert.equal(lines.length, 2 + rows.length);
  for (const line of lines) assert.equal(line, line.trimEnd());
  assert.match(lines[1], /^-+ {2}-+ {2}-+ {2}-+$/);

  const spans = lines.map(cellSpans);
  const rule = spans[1];
  for (const [r, row] of spans.entries()) {
    if (r === 1) continue;
    assert.equal(row.length, 4);
    // bits, top-1 and bytes end where their rule ends; name starts where its rule starts.
    assert.equal(row[0].end, rule[0].end);
    assert.equal(row[1].start, rule[1].start);
    assert.equal(row[2].end, rule[2].end);
    assert.equal(row[3].end, rule[3].end);
  }
  // The widest cell sets the width of its column.
  assert.equal(rule[1].end - rule[1].start, 'W8A8 (reference)'.length);
});

test('formatTable centers, formats cells and measures by code points', () => {
  const text = formatTable(
    [
      { header: 'x', align: 'center' },
      { header: 'value', format: (v) => Number(v).toFixed(2) },
    ],
    [
      ['µ', 1],
      ['abcde', 0.5],
    ],
    { gap: 1, rule: '=' },
  );
  assert.equal(text, ['  x   value', '===== =====', '  µ    1.00', 'abcde  0.50'].join('\n'));
});

test('formatTable rejects ragged rows and bad cells', () => {
  assert.throws(() => formatTable([{ header: 'a' }, { header: 'b' }], [[1]]), {
    name: 'RangeError',
    message: 'Expected 2 cells for rows[0] but received 1',
  });
  assert.throws(() => formatTable([{ header: 'a' }], [[null as unknown as number]]), {
    name: 'TypeError',
    message: 'Expected string or number for rows[0][0] but received null of type null',
  });
  assert.throws(() => formatTable([], []), TypeError);
});
