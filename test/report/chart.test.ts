import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';

import { escapeXml, formatTick, lineChart, niceScale, writeChart } from '../../src/report/chart.js';
import type { ChartSeries } from '../../src/report/chart.js';

interface Element {
  name: string;
  attributes: Map<string, string>;
  children: Element[];
  text: string;
}

const ENTITY = /&(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/g;

function unescape(text: string): string {
  const named: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
  return text.replace(ENTITY, (_, name: string) => named[name] ?? '?');
}

function checkText(text: string, where: string): void {
  assert.ok(!text.includes('<'), `raw '<' in ${where}: ${text}`);
  assert.ok(!text.replace(ENTITY, '').includes('&'), `raw '&' in ${where}: ${text}`);
}

/** A strict little XML parser: balanced tags, quoted unique attributes, escaped text. Returns the root. */
function parseXml(xml: string): Element {
  const root: Element = { name: '#document', attributes: new Map(), children: [], text: '' };
  const stack = [root];
  const tag = /<(\/?)([A-Za-z][\w:-]*)((?:\s+[\w:-]+="[^"]*")*)\s*(\/?)>/y;
  let i = 0;
  while (i < xml.length) {
    const lt = xml.indexOf('<', i);
    const text = xml.slice(i, lt === -1 ? xml.length : lt);
    checkText(text, `text inside <${stack.at(-1)?.name}>`);
    stack[stack.length - 1].text += unescape(text);
    if (lt === -1) break;
    tag.lastIndex = lt;
    const match = tag.exec(xml);
    assert.ok(match, `malformed tag at ${lt}: ${xml.slice(lt, lt + 60)}`);
    const [whole, closing, name, attributeText, selfClosing] = match;
    if (closing) {
      assert.equal(attributeText, '', `attributes on closing tag ${name}`);
      const open = stack.pop();
      assert.equal(open?.name, name, `</${name}> closes <${open?.name}>`);
    } else {
      const attributes = new Map<string, string>();
      for (const [, key, value] of attributeText.matchAll(/([\w:-]+)="([^"]*)"/g)) {
        assert.ok(!attributes.has(key), `duplicate attribute ${key} on <${name}>`);
        checkText(value, `attribute ${key}`);
        attributes.set(key, unescape(value));
      }
      const element: Element = { name, attributes, children: [], text: '' };
      stack[stack.length - 1].children.push(element);
      if (!selfClosing) stack.push(element);
    }
    i = lt + whole.length;
  }
  assert.equal(stack.length, 1, `unclosed <${stack.at(-1)?.name}>`);
  assert.equal(root.children.length, 1, 'one root element');
  assert.equal(root.text.trim(), '', 'text outside the root');
  return root.children[0];
}

function all(element: Element, predicate: (e: Element) => boolean): Element[] {
  const found = predicate(element) ? [element] : [];
  for (const child of element.children) found.push(...all(child, predicate));
  return found;
}

const byClass = (svg: Element, name: string): Element[] =>
  all(svg, (e) => e.attributes.get('class') === name);
const textOf = (e: Element): string => e.text + e.children.map(textOf).join('');
const tickLabels = (svg: Element, axis: 'x' | 'y'): string[] =>
  byClass(svg, `${axis}-ticks`)[0]
    .children.filter((c) => c.name === 'text')
    .map(textOf);

function isNiceStep(step: number): boolean {
  const mantissa = step / 10 ** Math.floor(Math.log10(step) + 1e-9);
  return [1, 2, 5].some((m) => Math.abs(mantissa - m) < 1e-6);
}

const accuracy: ChartSeries[] = [
  {
    name: 'once QAT',
    points: [
      [2, 61.5],
      [3, 68.2],
      [4, 70.9],
      [6, 71.6],
      [8, 71.8],
    ],
  },
  {
    name: 'dedicated QAT',
    points: [
      [2, 64],
      [4, 71.2],
      [8, 72],
    ],
  },
  {
    name: 'full precision',
    points: [
      [2, 72.4],
      [8, 72.4],
    ],
    dashed: true,
    markers: false,
  },
];

test('lineChart produces well-formed SVG with title, labels, legend and one marker per point', () => {
  const svg = parseXml(
    lineChart({ title: 'Top-1 by bits', xLabel: 'bits', yLabel: 'top-1 (%)', series: accuracy }),
  );
  assert.equal(svg.name, 'svg');
  assert.equal(svg.attributes.get('xmlns'), 'http://www.w3.org/2000/svg');
  assert.equal(textOf(byClass(svg, 'title')[0]), 'Top-1 by bits');
  assert.equal(textOf(byClass(svg, 'x-label')[0]), 'bits');
  assert.equal(textOf(byClass(svg, 'y-label')[0]), 'top-1 (%)');
  const legend = byClass(svg, 'legend-entry').map(textOf);
  assert.deepEqual(legend, ['once QAT', 'dedicated QAT', 'full precision']);

  const groups = byClass(svg, 'series');
  assert.deepEqual(
    groups.map((g) => g.attributes.get('data-name')),
    accuracy.map((s) => s.name),
  );
  assert.deepEqual(
    groups.map((g) => byClass(g, 'marker').length),
    [5, 3, 0],
  );
  const dashed = groups.map((g) =>
    g.children.find((c) => c.name === 'path')?.attributes.has('stroke-dasharray'),
  );
  assert.deepEqual(dashed, [false, false, true]);
});

test('ticks follow a 1-2-5 grid and cover the data', () => {
  const svg = parseXml(lineChart({ series: accuracy }));
  for (const axis of ['x', 'y'] as const) {
    const values = tickLabels(svg, axis).map(Number);
    assert.ok(values.length >= 3, `${axis}: ${values}`);
    const step = values[1] - values[0];
    assert.ok(isNiceStep(step), `${axis} step ${step}`);
    values.forEach((v, i) => assert.ok(Math.abs(v - values[0] - i * step) < 1e-9, `${axis}: ${values}`));
  }
  const ys = tickLabels(svg, 'y').map(Number);
  assert.ok(ys[0] <= 61.5 && ys.at(-1)! >= 72.4, `${ys}`);
  assert.deepEqual(tickLabels(svg, 'x'), ['2', '3', '4', '5', '6', '7', '8']);
});

test('markers land where the data says: x to the right, y upwards', () => {
  const svg = parseXml(lineChart({ series: [accuracy[0]] }));
  const circles = byClass(svg, 'marker').map((m) => [
    Number(m.attributes.get('cx')),
    Number(m.attributes.get('cy')),
  ]);
  const points = accuracy[0].points;
  for (let i = 1; i < points.length; i++) {
    const dx = (circles[i][0] - circles[i - 1][0]) / (points[i][0] - points[i - 1][0]);
    const dy = (circles[i][1] - circles[i - 1][1]) / (points[i][1] - points[i - 1][1]);
    assert.ok(dx > 0 && dy < 0);
    // A linear scale: equal data steps give equal pixel steps.
    if (i > 1)
      assert.ok(Math.abs(dx - (circles[1][0] - circles[0][0]) / (points[1][0] - points[0][0])) < 0.02);
  }
});

test('explicit ticks, ranges, formats and reference lines are honoured', () => {
  const svg = parseXml(
    lineChart({
      series: [
        {
          name: 'acc',
          points: [
            [2, 0.5],
            [4, 0.8],
            [8, 1.2],
          ],
        },
      ],
      xTicks: [2, 4, 8],
      yRange: [0, 1],
      yTickFormat: (v) => `${Math.round(v * 100)}%`,
      referenceLines: [{ name: 'fp32', y: 0.9 }],
    }),
  );
  assert.deepEqual(tickLabels(svg, 'x'), ['2', '4', '8']);
  assert.deepEqual(tickLabels(svg, 'y'), ['0%', '20%', '40%', '60%', '80%', '100%']);
  const reference = byClass(svg, 'reference');
  assert.equal(reference.length, 1);
  assert.equal(reference[0].attributes.get('data-name'), 'fp32');
  assert.ok(reference[0].attributes.has('stroke-dasharray'));
  // Out-of-range points are clipped by the plot's clip path rather than dropped.
  const plot = byClass(svg, 'plot')[0];
  const clipId = /url\(#(.+)\)/.exec(plot.attributes.get('clip-path') ?? '')?.[1];
  assert.equal(all(svg, (e) => e.name === 'clipPath' && e.attributes.get('id') === clipId).length, 1);
  assert.equal(byClass(plot, 'marker').length, 3);
});

test('non-finite points are skipped and break the line', () => {
  const svg = parseXml(
    lineChart({
      series: [
        {
          name: 'loss',
          points: [
            [1, 2],
            [2, 1.5],
            [3, NaN],
            [4, 1],
            [Infinity, 0.5],
            [6, 0.8],
          ],
        },
      ],
    }),
  );
  const group = byClass(svg, 'series')[0];
  assert.equal(byClass(group, 'marker').length, 4);
  const d = group.children.find((c) => c.name === 'path')?.attributes.get('d') ?? '';
  assert.equal(d.match(/M/g)?.length, 3);
  assert.equal(d.match(/L/g)?.length, 1);
  assert.ok(
    !/NaN|Infinity/.test(
      lineChart({
        series: [
          {
            name: 'x',
            points: [
              [1, NaN],
              [2, 3],
            ],
          },
        ],
      }),
    ),
  );
});

test('text is escaped in content and attributes', () => {
  const name = `a<b & "c" 'd'`;
  const text = lineChart({ title: 'R&D <draft>', xLabel: '<x>', series: [{ name, points: [[0, 1]] }] });
  assert.ok(!text.includes('a<b'));
  assert.ok(!text.includes('R&D'));
  assert.ok(text.includes('R&amp;D &lt;draft&gt;'));
  const svg = parseXml(text);
  assert.equal(byClass(svg, 'series')[0].attributes.get('data-name'), name);
  assert.equal(textOf(byClass(svg, 'title')[0]), 'R&D <draft>');
  assert.equal(escapeXml('\u0001ok\u0000'), 'ok');
});

test('a single point and constant values still get a sensible range', () => {
  for (const points of [
    [[3, 5]],
    [
      [1, 5],
      [2, 5],
      [3, 5],
    ],
    [[0, 0]],
    [
      [1, -2],
      [1, -2],
    ],
  ] as [number, number][][]) {
    const text = lineChart({ series: [{ name: 's', points }] });
    assert.ok(!/NaN|Infinity/.test(text), JSON.stringify(points));
    const svg = parseXml(text);
    assert.equal(byClass(svg, 'marker').length, points.length);
    for (const axis of ['x', 'y'] as const) {
      const values = tickLabels(svg, axis).map(Number);
      assert.ok(values.length >= 2, `${axis}: ${values}`);
      assert.ok(values[0] < values.at(-1)!);
    }
    const ys = tickLabels(svg, 'y').map(Number);
    assert.ok(ys[0] <= points[0][1] && ys.at(-1)! >= points[0][1]);
  }
});

test('no finite data gives a "No data" chart that says what each series held', () => {
  for (const series of [
    [],
    [
      { name: 'once <QAT>', points: [] },
      { name: 'b', points: [[1, NaN]] },
    ],
  ] as ChartSeries[][]) {
    const svg = parseXml(lineChart({ title: 'Accuracy', series }));
    assert.equal(textOf(byClass(svg, 'no-data')[0]), 'No data');
    const detail = textOf(byClass(svg, 'no-data-detail')[0]);
    if (series.length === 0) assert.equal(detail, 'no series given');
    else assert.equal(detail, 'once <QAT>: no points; b: 1 point, none finite');
    assert.equal(byClass(svg, 'marker').length, 0);
  }
  // One empty series among others stays in the legend, marked.
  const svg = parseXml(
    lineChart({
      series: [
        {
          name: 'a',
          points: [
            [1, 1],
            [2, 2],
          ],
        },
        { name: 'b', points: [] },
      ],
    }),
  );
  assert.deepEqual(byClass(svg, 'legend-entry').map(textOf), ['a', 'b (no data)']);
});

test('invalid options are rejected with the parameter name', () => {
  assert.throws(() => lineChart({ series: [], width: 50 }), {
    name: 'RangeError',
    message: 'Expected integer in [200, 10000] for width but received 50',
  });
  assert.throws(() => lineChart({ series: [], yRange: [1, 1] }), {
    name: 'RangeError',
    message: 'Expected yRange[1] > yRange[0] but received [1, 1]',
  });
  assert.throws(() => lineChart({ series: [{ name: 'a', points: [[1, '2' as unknown as number]] }] }), {
    name: 'TypeError',
    message: 'Expected [x, y] numbers for series[0].points[0] but received 1,2 of type object',
  });
});

test('niceScale covers any range with evenly spaced 1-2-5 ticks', () => {
  fc.assert(
    fc.property(
      fc.double({ min: -1e6, max: 1e6, noNaN: true }),
      fc.double({ min: 0, max: 1e6, noNaN: true }),
      fc.integer({ min: 2, max: 10 }),
      (lo, span, target) => {
        const hi = lo + span;
        const scale = niceScale(lo, hi, target);
        // Float noise below a millionth of a step may poke out: it is invisible, and an extra tick would not be.
        const slack = scale.step * 1e-6;
        assert.ok(scale.min <= lo + slack && scale.max >= hi - slack, JSON.stringify({ lo, hi, scale }));
        assert.ok(isNiceStep(scale.step));
        assert.equal(scale.ticks[0], scale.min);
        assert.equal(scale.ticks.at(-1), scale.max);
        const intervals = scale.ticks.length - 1;
        assert.ok(intervals >= 1 && intervals <= 4 * target);
        scale.ticks.forEach((t, i) =>
          assert.ok(Math.abs(t - scale.min - i * scale.step) <= scale.step * 1e-6),
        );
      },
    ),
    { numRuns: 300 },
  );
  assert.deepEqual(niceScale(2, 8, 6).ticks, [2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual(niceScale(0, 1, 5).ticks, [0, 0.2, 0.4, 0.6, 0.8, 1]);
  // A fixed range keeps its ends and only the ticks inside.
  assert.deepEqual(niceScale(0.05, 0.95, 4, true), {
    min: 0.05,
    max: 0.95,
    step: 0.2,
    ticks: [0.2, 0.4, 0.6, 0.8],
  });
});

test('formatTick uses the decimals the step needs and SI prefixes for large values', () => {
  assert.equal(formatTick(0.2, 0.2), '0.2');
  assert.equal(formatTick(1, 0.2), '1.0');
  assert.equal(formatTick(70, 5), '70');
  assert.equal(formatTick(0.05, 0.05), '0.05');
  assert.equal(formatTick(1_500_000, 500_000), '1.5M');
  assert.equal(formatTick(200_000, 100_000), '200k');
  assert.equal(formatTick(-0.00001, 0.2), '0.0');
});

test('writeChart writes atomically into new folders', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'strata-chart-'));
  try {
    const path = join(dir, 'a', 'b', 'accuracy.svg');
    const svg = lineChart({ series: accuracy });
    await writeChart(path, svg);
    assert.equal(await readFile(path, 'utf8'), `${svg}\n`);
    await writeChart(path, lineChart({ series: [] }));
    assert.match(await readFile(path, 'utf8'), /No data/);
    assert.deepEqual(await readdir(join(dir, 'a', 'b')), ['accuracy.svg']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
