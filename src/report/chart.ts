import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

import { checkFiniteNumber, checkString, describe } from './check.js';

export type Point = readonly [number, number];

export interface ChartSeries {
  name: string;
  /** Drawn in the given order; a point with a non-finite coordinate is skipped and breaks the line there. */
  points: readonly Point[];
  dashed?: boolean;
  /** Any SVG colour; defaults to the next palette entry. */
  color?: string;
  /** Draw a marker on each point (default true). */
  markers?: boolean;
}

/** A dashed horizontal line across the whole plot, e.g. the full-precision accuracy. */
export interface ReferenceLine {
  name: string;
  y: number;
  color?: string;
}

export interface LineChartOptions {
  title?: string;
  xLabel?: string;
  yLabel?: string;
  series: readonly ChartSeries[];
  referenceLines?: readonly ReferenceLine[];
  /** Pixels (defaults 720 x 440). */
  width?: number;
  height?: number;
  /** Fixed axis ranges; by default the data range widened to nice tick values. */
  xRange?: readonly [number, number];
  yRange?: readonly [number, number];
  /** Fixed tick positions (e.g. the bit-widths 2..8); by default 1-2-5 steps. */
  xTicks?: readonly number[];
  yTicks?: readonly number[];
  xTickFormat?: (value: number) => string;
  yTickFormat?: (value: number) => string;
  /** Legend to the right of the plot (default) or none. */
  legend?: 'right' | 'none';
}

export interface NiceScale {
  min: number;
  max: number;
  step: number;
  ticks: number[];
}

// Tableau 10: distinguishable, and still readable when printed in grey.
const PALETTE = [
  '#4e79a7',
  '#e15759',
  '#59a14f',
  '#f28e2b',
  '#b07aa1',
  '#76b7b2',
  '#edc948',
  '#9c755f',
  '#ff9da7',
];
const REFERENCE_COLOR = '#555555';
const FONT =
  "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, 'DejaVu Sans', sans-serif";
const DASH = '7 5';
// The legend swatch is only 30px long, so its dashes are shorter to show at least two gaps.
const LEGEND_DASH = '5 3';
const MARKER_SHAPES = ['circle', 'square', 'triangle', 'diamond'] as const;
type MarkerShape = (typeof MARKER_SHAPES)[number];
// Average advance of a sans-serif glyph as a fraction of the font size, for layout without a font engine.
const GLYPH_WIDTH = 0.6;
const LEGEND_MAX_CHARS = 32;

/** Escapes text for XML content and attribute values, dropping characters XML 1.0 forbids. */
export function escapeXml(text: string): string {
  return (
    text
      // eslint-disable-next-line no-control-regex
      .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '')
      .replace(/&/g, '&amp;')
      .replace(/</g, '&lt;')
      .replace(/>/g, '&gt;')
      .replace(/"/g, '&quot;')
      .replace(/'/g, '&apos;')
  );
}

/** Coordinates with at most two decimals keep the SVG small and stable. */
function num(value: number): string {
  const text = value.toFixed(2).replace(/\.?0+$/, '');
  return text === '-0' ? '0' : text;
}

function decimalsFor(step: number): number {
  return Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
}

/** Cleans the float noise of `i * step` (0.30000000000000004 -> 0.3), keeping a few digits below the step. */
function snap(value: number, step: number): number {
  if (Math.abs(value) < step * 1e-9) return 0;
  const digits = Math.ceil(Math.log10(Math.abs(value) / step)) + 4;
  return Number(value.toPrecision(Math.min(17, Math.max(1, digits))));
}

// Below this a span is float noise (0.7 vs 0.7000000000000001) or too small to step through.
const RELATIVE_EPSILON = 1e-9;
const ABSOLUTE_EPSILON = 1e-200;

/** Gives a constant (or nearly constant) range some room around its value. */
function widen(lo: number, hi: number): [number, number] {
  const magnitude = Math.max(Math.abs(lo), Math.abs(hi));
  if (hi - lo > Math.max(magnitude * RELATIVE_EPSILON, ABSOLUTE_EPSILON)) return [lo, hi];
  const middle = lo + (hi - lo) / 2;
  const pad = Math.abs(middle) * 0.1 > ABSOLUTE_EPSILON ? Math.abs(middle) * 0.1 : 1;
  return [middle - pad, middle + pad];
}

function stepsNear(span: number): number[] {
  const base = 10 ** Math.floor(Math.log10(span));
  const steps: number[] = [];
  for (const scale of [base / 100, base / 10, base, base * 10]) {
    for (const m of [1, 2, 5]) steps.push(m * scale);
  }
  return steps;
}

/**
 * Tick values on a 1-2-5 grid for data in [lo, hi], aiming at `target` intervals.
 * With `fixed` the range stays [lo, hi] and only the ticks inside it are kept; otherwise
 * the range widens to the ticks around the data.
 */
export function niceScale(lo: number, hi: number, target = 6, fixed = false): NiceScale {
  checkFiniteNumber('lo', lo);
  checkFiniteNumber('hi', hi);
  if (hi < lo) throw new RangeError(`Expected hi >= lo for niceScale but received [${lo}, ${hi}]`);
  const [a, b] = widen(lo, hi);
  let best: NiceScale | undefined;
  let bestScore = Infinity;
  for (const step of stepsNear(b - a)) {
    const first = fixed ? Math.ceil(a / step - 1e-9) : Math.floor(a / step + 1e-9);
    const last = fixed ? Math.floor(b / step + 1e-9) : Math.ceil(b / step - 1e-9);
    const intervals = last - first;
    if (intervals < 1 || intervals > 4 * target) continue;
    const min = fixed ? a : snap(first * step, step);
    const max = fixed ? b : snap(last * step, step);
    // Empty space at the ends costs as much as a few missing or extra ticks.
    const waste = 1 - (b - a) / (max - min);
    const score = Math.abs(intervals - target) + 3 * waste;
    if (score < bestScore) {
      bestScore = score;
      const ticks = [];
      for (let i = first; i <= last; i++) ticks.push(snap(i * step, step));
      best = { min, max, step, ticks };
    }
  }
  // Only a span too small for doubles to step through ends here.
  return best ?? { min: a, max: b, step: b - a, ticks: [a, b] };
}

const SI = ['', 'k', 'M', 'G', 'T'];

/** Tick label with as many decimals as the step needs, and SI prefixes for large values. */
export function formatTick(value: number, step: number): string {
  if (value === 0) return '0';
  const magnitude = Math.max(Math.abs(value), step);
  if (step < 1e-4 || magnitude >= 1e15) return String(Number(value.toPrecision(3)));
  const group = magnitude >= 1e5 ? Math.min(SI.length - 1, Math.floor(Math.log10(magnitude) / 3)) : 0;
  const scale = 10 ** (3 * group);
  const text = (value / scale).toFixed(decimalsFor(step / scale));
  return (/^-0(\.0*)?$/.test(text) ? text.slice(1) : text) + SI[group];
}

function plainTick(value: number): string {
  return String(Number(value.toPrecision(6)));
}

function textWidth(text: string, fontSize: number): number {
  return Array.from(text).length * fontSize * GLYPH_WIDTH;
}

function shorten(text: string, max: number): string {
  const points = Array.from(text);
  return points.length <= max ? text : `${points.slice(0, max - 1).join('')}…`;
}

/** FNV-1a, so ids are stable for the same chart and differ between charts inlined in one page. */
function hash(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(36);
}

function marker(
  className: string,
  shape: MarkerShape,
  x: number,
  y: number,
  color: string,
  tooltip?: string,
): string {
  const r = 4;
  const style = `fill="${color}" stroke="#ffffff" stroke-width="1.5"`;
  const tip = tooltip === undefined ? '' : `<title>${escapeXml(tooltip)}</title>`;
  const close = tip ? `>${tip}</` : '/>';
  const end = (tag: string): string => (tip ? `${close}${tag}>` : close);
  switch (shape) {
    case 'circle':
      return `<circle class="${className}" cx="${num(x)}" cy="${num(y)}" r="${r}" ${style}${end('circle')}`;
    case 'square':
      return `<rect class="${className}" x="${num(x - r * 0.9)}" y="${num(y - r * 0.9)}" width="${num(r * 1.8)}" height="${num(r * 1.8)}" ${style}${end('rect')}`;
    case 'triangle': {
      const h = r * 1.2;
      const d = `M${num(x)},${num(y - h)}L${num(x + h)},${num(y + h * 0.8)}L${num(x - h)},${num(y + h * 0.8)}Z`;
      return `<path class="${className}" d="${d}" ${style}${end('path')}`;
    }
    case 'diamond': {
      const h = r * 1.25;
      const d = `M${num(x)},${num(y - h)}L${num(x + h)},${num(y)}L${num(x)},${num(y + h)}L${num(x - h)},${num(y)}Z`;
      return `<path class="${className}" d="${d}" ${style}${end('path')}`;
    }
  }
}

function checkRange(name: string, range: unknown): [number, number] {
  if (!Array.isArray(range) || range.length !== 2) {
    throw new TypeError(`Expected [min, max] for ${name} but received ${describe(range)}`);
  }
  const lo = checkFiniteNumber(`${name}[0]`, range[0]);
  const hi = checkFiniteNumber(`${name}[1]`, range[1]);
  if (!(hi > lo)) throw new RangeError(`Expected ${name}[1] > ${name}[0] but received [${lo}, ${hi}]`);
  return [lo, hi];
}

function checkSize(name: string, value: unknown, min: number): number {
  if (typeof value !== 'number')
    throw new TypeError(`Expected integer for ${name} but received ${describe(value)}`);
  if (!Number.isInteger(value) || value < min || value > 10000) {
    throw new RangeError(`Expected integer in [${min}, 10000] for ${name} but received ${value}`);
  }
  return value;
}

function checkSeries(series: unknown, index: number): ChartSeries {
  if (typeof series !== 'object' || series === null) {
    throw new TypeError(`Expected object for series[${index}] but received ${describe(series)}`);
  }
  const s = series as ChartSeries;
  checkString(`series[${index}].name`, s.name);
  if (!Array.isArray(s.points)) {
    throw new TypeError(`Expected array for series[${index}].points but received ${describe(s.points)}`);
  }
  s.points.forEach((point: unknown, j) => {
    if (!Array.isArray(point) || point.length !== 2 || point.some((v) => typeof v !== 'number')) {
      throw new TypeError(
        `Expected [x, y] numbers for series[${index}].points[${j}] but received ${describe(point)}`,
      );
    }
  });
  return s;
}

function isFinitePoint(point: Point): boolean {
  return Number.isFinite(point[0]) && Number.isFinite(point[1]);
}

function svgOpen(width: number, height: number, label: string): string[] {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
      `font-family="${FONT}" role="img" aria-label="${escapeXml(label)}">`,
    `<title>${escapeXml(label)}</title>`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
  ];
}

function titleText(title: string, width: number): string {
  return `<text class="title" x="${num(width / 2)}" y="28" text-anchor="middle" font-size="17" font-weight="600" fill="#222222">${escapeXml(title)}</text>`;
}

function noDataChart(options: LineChartOptions, width: number, height: number): string {
  const title = options.title ?? '';
  const detail =
    options.series.length === 0
      ? 'no series given'
      : options.series
          .map(
            (s) =>
              `${shorten(s.name, 24)}: ${s.points.length === 0 ? 'no points' : `${s.points.length} ${s.points.length === 1 ? 'point' : 'points'}, none finite`}`,
          )
          .join('; ');
  const top = title ? 44 : 16;
  const cy = (top + height - 16) / 2;
  return [
    ...svgOpen(width, height, title ? `${title} (no data)` : 'No data'),
    title ? titleText(title, width) : '',
    `<rect class="frame" x="16" y="${top}" width="${width - 32}" height="${height - top - 16}" fill="#fafafa" stroke="#dddddd"/>`,
    `<text class="no-data" x="${num(width / 2)}" y="${num(cy)}" text-anchor="middle" font-size="20" fill="#666666">No data</text>`,
    `<text class="no-data-detail" x="${num(width / 2)}" y="${num(cy + 26)}" text-anchor="middle" font-size="13" fill="#888888">${escapeXml(shorten(detail, Math.floor((width - 48) / 7)))}</text>`,
    '</svg>',
  ]
    .filter((line) => line !== '')
    .join('\n');
}

interface Axis {
  min: number;
  max: number;
  ticks: number[];
  label: (value: number) => string;
}

function buildAxis(
  values: number[],
  range: [number, number] | undefined,
  ticks: readonly number[] | undefined,
  format: ((value: number) => string) | undefined,
  target: number,
): Axis {
  const finiteTicks = ticks?.filter((t) => Number.isFinite(t));
  if (finiteTicks && finiteTicks.length > 0) {
    const [min, max] =
      range ?? widen(Math.min(...values, ...finiteTicks), Math.max(...values, ...finiteTicks));
    return {
      min,
      max,
      ticks: finiteTicks.filter((t) => t >= min && t <= max),
      label: format ?? plainTick,
    };
  }
  const lo = range ? range[0] : values.length > 0 ? Math.min(...values) : 0;
  const hi = range ? range[1] : values.length > 0 ? Math.max(...values) : 1;
  const scale = niceScale(lo, hi, target, range !== undefined);
  return {
    min: scale.min,
    max: scale.max,
    ticks: scale.ticks,
    label: format ?? ((v) => formatTick(v, scale.step)),
  };
}

/**
 * SVG line chart as text: axes with 1-2-5 ticks, grid, legend, markers and optional dashed series or
 * reference lines. Needs no DOM and no dependencies. With no finite point anywhere it returns a
 * "No data" chart that says what each series held.
 */
export function lineChart(options: LineChartOptions): string {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`Expected object for options but received ${describe(options)}`);
  }
  if (!Array.isArray(options.series)) {
    throw new TypeError(`Expected array for series but received ${describe(options.series)}`);
  }
  const series = options.series.map(checkSeries);
  const references = (options.referenceLines ?? []).map((line, i) => {
    checkString(`referenceLines[${i}].name`, line.name);
    checkFiniteNumber(`referenceLines[${i}].y`, line.y);
    return line;
  });
  const width = checkSize('width', options.width ?? 720, 200);
  const height = checkSize('height', options.height ?? 440, 150);
  const xRange = options.xRange === undefined ? undefined : checkRange('xRange', options.xRange);
  const yRange = options.yRange === undefined ? undefined : checkRange('yRange', options.yRange);
  for (const key of ['title', 'xLabel', 'yLabel'] as const) {
    if (options[key] !== undefined) checkString(key, options[key]);
  }

  const finite = series.map((s) => s.points.filter(isFinitePoint));
  const total = finite.reduce((n, points) => n + points.length, 0);
  if (total === 0 && references.length === 0) return noDataChart(options, width, height);

  const xs = finite.flatMap((points) => points.map((p) => p[0]));
  const ys = [...finite.flatMap((points) => points.map((p) => p[1])), ...references.map((r) => r.y)];
  const title = options.title ?? '';
  const showLegend = options.legend !== 'none' && series.length + references.length > 0;

  // Layout: margins from estimated text sizes, so long tick labels or names do not overflow.
  const TICK_FONT = 12;
  const LABEL_FONT = 14;
  const LEGEND_FONT = 13;
  const top = title ? 48 : 20;
  const bottom = 14 + TICK_FONT + 10 + (options.xLabel ? LABEL_FONT + 14 : 0);
  const plotHeightGuess = height - top - bottom;
  const yAxis = buildAxis(
    ys,
    yRange,
    options.yTicks,
    options.yTickFormat,
    Math.max(2, Math.round(plotHeightGuess / 55)),
  );
  const yTickWidth = Math.max(...yAxis.ticks.map((t) => textWidth(yAxis.label(t), TICK_FONT)), 0);
  const left = 14 + (options.yLabel ? LABEL_FONT + 12 : 0) + yTickWidth + 10;
  const legendEntries = [
    ...series.map((s, i) => ({
      name: s.name,
      color: s.color ?? PALETTE[i % PALETTE.length],
      dashed: s.dashed === true,
      shape: s.markers === false ? undefined : MARKER_SHAPES[i % MARKER_SHAPES.length],
      empty: finite[i].length === 0,
    })),
    ...references.map((r) => ({
      name: r.name,
      color: r.color ?? REFERENCE_COLOR,
      dashed: true,
      shape: undefined,
      empty: false,
    })),
  ].map((entry) => ({
    ...entry,
    text: shorten(entry.empty ? `${entry.name} (no data)` : entry.name, LEGEND_MAX_CHARS),
  }));
  const legendWidth = showLegend
    ? 30 + 8 + Math.max(...legendEntries.map((e) => textWidth(e.text, LEGEND_FONT))) + 8
    : 0;
  const right = showLegend ? legendWidth + 24 : 24;
  const x0 = left;
  const x1 = Math.max(x0 + 40, width - right);
  const y0 = top;
  const y1 = Math.max(y0 + 40, height - bottom);
  const xAxis = buildAxis(
    xs,
    xRange,
    options.xTicks,
    options.xTickFormat,
    Math.max(2, Math.round((x1 - x0) / 90)),
  );
  // Without a fixed range the first and last points would sit on the frame, half hidden by the axis.
  const inset = xRange ? 0 : Math.min(12, (x1 - x0) * 0.025);
  const px = (x: number): number =>
    x0 + inset + ((x - xAxis.min) / (xAxis.max - xAxis.min)) * (x1 - x0 - 2 * inset);
  const py = (y: number): number => y1 - ((y - yAxis.min) / (yAxis.max - yAxis.min)) * (y1 - y0);

  const id = `strata-chart-${hash(JSON.stringify([title, width, height, series.map((s) => [s.name, s.points.length]), xs, ys]))}`;
  const out = svgOpen(width, height, title || 'Line chart');
  out.push(
    `<defs><clipPath id="${id}-clip"><rect x="${num(x0 - 6)}" y="${num(y0 - 6)}" width="${num(x1 - x0 + 12)}" height="${num(y1 - y0 + 12)}"/></clipPath></defs>`,
  );
  if (title) out.push(titleText(title, width));

  const grid: string[] = [];
  for (const t of yAxis.ticks)
    grid.push(`<line x1="${num(x0)}" y1="${num(py(t))}" x2="${num(x1)}" y2="${num(py(t))}"/>`);
  for (const t of xAxis.ticks)
    grid.push(`<line x1="${num(px(t))}" y1="${num(y0)}" x2="${num(px(t))}" y2="${num(y1)}"/>`);
  out.push(`<g class="grid" stroke="#e8e8e8" stroke-width="1">${grid.join('')}</g>`);
  out.push(
    `<g class="axes" stroke="#8c8c8c" stroke-width="1"><line x1="${num(x0)}" y1="${num(y1)}" x2="${num(x1)}" y2="${num(y1)}"/>` +
      `<line x1="${num(x0)}" y1="${num(y0)}" x2="${num(x0)}" y2="${num(y1)}"/></g>`,
  );
  const xTickMarks = xAxis.ticks.map(
    (t) =>
      `<line x1="${num(px(t))}" y1="${num(y1)}" x2="${num(px(t))}" y2="${num(y1 + 5)}" stroke="#8c8c8c"/>` +
      `<text x="${num(px(t))}" y="${num(y1 + 8 + TICK_FONT)}">${escapeXml(xAxis.label(t))}</text>`,
  );
  out.push(
    `<g class="x-ticks" font-size="${TICK_FONT}" fill="#444444" text-anchor="middle">${xTickMarks.join('')}</g>`,
  );
  const yTickMarks = yAxis.ticks.map(
    (t) =>
      `<line x1="${num(x0 - 5)}" y1="${num(py(t))}" x2="${num(x0)}" y2="${num(py(t))}" stroke="#8c8c8c"/>` +
      `<text x="${num(x0 - 8)}" y="${num(py(t) + TICK_FONT * 0.35)}">${escapeXml(yAxis.label(t))}</text>`,
  );
  out.push(
    `<g class="y-ticks" font-size="${TICK_FONT}" fill="#444444" text-anchor="end">${yTickMarks.join('')}</g>`,
  );
  if (options.xLabel) {
    out.push(
      `<text class="x-label" x="${num((x0 + x1) / 2)}" y="${num(y1 + 8 + TICK_FONT + 12 + LABEL_FONT)}" text-anchor="middle" font-size="${LABEL_FONT}" fill="#333333">${escapeXml(options.xLabel)}</text>`,
    );
  }
  if (options.yLabel) {
    const lx = 14 + LABEL_FONT * 0.8;
    const ly = (y0 + y1) / 2;
    out.push(
      `<text class="y-label" x="${num(lx)}" y="${num(ly)}" transform="rotate(-90 ${num(lx)} ${num(ly)})" text-anchor="middle" font-size="${LABEL_FONT}" fill="#333333">${escapeXml(options.yLabel)}</text>`,
    );
  }

  const plot: string[] = [];
  for (const line of references) {
    const color = escapeXml(line.color ?? REFERENCE_COLOR);
    plot.push(
      `<line class="reference" data-name="${escapeXml(line.name)}" x1="${num(x0)}" y1="${num(py(line.y))}" x2="${num(x1)}" y2="${num(py(line.y))}" stroke="${color}" stroke-width="1.75" stroke-dasharray="${DASH}"/>`,
    );
  }
  series.forEach((s, i) => {
    const entry = legendEntries[i];
    const color = escapeXml(entry.color);
    let d = '';
    let pen = false;
    for (const point of s.points) {
      if (!isFinitePoint(point)) {
        pen = false;
        continue;
      }
      d += `${pen ? 'L' : 'M'}${num(px(point[0]))},${num(py(point[1]))}`;
      pen = true;
    }
    const dash = s.dashed ? ` stroke-dasharray="${DASH}"` : '';
    const parts = [`<g class="series" data-name="${escapeXml(s.name)}">`];
    if (d) {
      parts.push(
        `<path d="${d}" fill="none" stroke="${color}" stroke-width="2.25" stroke-linejoin="round" stroke-linecap="round"${dash}/>`,
      );
    }
    if (entry.shape) {
      const fmtX = xAxis.label;
      for (const [x, y] of finite[i]) {
        parts.push(
          marker('marker', entry.shape, px(x), py(y), color, `${s.name}: ${fmtX(x)}, ${plainTick(y)}`),
        );
      }
    }
    parts.push('</g>');
    plot.push(parts.join(''));
  });
  out.push(`<g class="plot" clip-path="url(#${id}-clip)">${plot.join('')}</g>`);

  if (showLegend) {
    const lx = x1 + 20;
    const rows = legendEntries.map((entry, i) => {
      const cy = y0 + 10 + i * 22;
      const color = escapeXml(entry.color);
      const dash = entry.dashed ? ` stroke-dasharray="${LEGEND_DASH}"` : '';
      return (
        `<g class="legend-entry">` +
        `<line x1="${num(lx)}" y1="${num(cy)}" x2="${num(lx + 30)}" y2="${num(cy)}" stroke="${color}" stroke-width="2.25"${dash}/>` +
        (entry.shape ? marker('legend-marker', entry.shape, lx + 15, cy, color) : '') +
        `<text x="${num(lx + 38)}" y="${num(cy + LEGEND_FONT * 0.35)}" fill="${entry.empty ? '#999999' : '#333333'}">${escapeXml(entry.text)}</text></g>`
      );
    });
    out.push(`<g class="legend" font-size="${LEGEND_FONT}">${rows.join('')}</g>`);
  }
  out.push('</svg>');
  return out.join('\n');
}

/**
 * Writes `svg` to `path` through a temporary file and a rename, so a reader never sees half a chart.
 * Creates missing folders.
 */
export async function writeChart(path: string, svg: string): Promise<void> {
  checkString('path', path);
  checkString('svg', svg);
  await mkdir(dirname(path), { recursive: true });
  const temporary = `${path}.${process.pid}.${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}.tmp`;
  try {
    await writeFile(temporary, svg.endsWith('\n') ? svg : `${svg}\n`, 'utf8');
    await rename(temporary, path);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}
