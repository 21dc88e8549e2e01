import { checkNonNegative, checkPositiveInteger, checkString, describe } from './check.js';
import { formatDuration, formatSi } from './units.js';

/** The part of a `NodeJS.WriteStream` the bar uses, so tests can pass a fake. */
export interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(chunk: string): boolean;
}

export type MetricValue = number | string;
export type Metrics = Readonly<Record<string, MetricValue>>;

export interface ProgressBarOptions {
  /** Units expected in all; 0 means nothing to do. */
  total: number;
  label?: string;
  /** Unit name shown after counts and rates (default 'it'). */
  unit?: string;
  /** Default `process.stderr`, so progress never mixes with data written to stdout. */
  stream?: ProgressStream;
  /**
   * true: no live redraws, only the summary line at finish; false: live redraws even when the stream is not a TTY.
   * Wins over `STRATA_PROGRESS` (0 = quiet, 1 = live), which wins over detecting a TTY.
   */
  quiet?: boolean;
  /** Print the one summary line at finish when quiet (default true). */
  summary?: boolean;
  /** Milliseconds from any fixed origin (default `performance.now`). */
  now?: () => number;
  /** Smallest gap between two redraws in ms (default 100, so at most ~10 redraws a second). */
  minIntervalMs?: number;
  /** Time constant of the throughput moving average in seconds (default 3): larger is steadier, slower to follow. */
  smoothingSeconds?: number;
  /** Bar cells; by default the bar takes what the terminal width leaves, up to 30. */
  barWidth?: number;
  /** Environment read for `STRATA_PROGRESS` (default `process.env`). */
  env?: Readonly<Record<string, string | undefined>>;
}

const DEFAULT_COLUMNS = 100;
const MAX_BAR = 30;
const MIN_BAR = 8;
const PARTIAL_BLOCKS = ['', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
// A rate is only sampled once this much time has passed, so bursts of ticks within one
// millisecond (or a frozen fake clock) do not produce infinite instantaneous rates.
const MIN_SAMPLE_MS = 1;

function resolveLive(options: ProgressBarOptions, stream: ProgressStream): boolean {
  if (options.quiet !== undefined) return !options.quiet;
  const forced = (options.env ?? process.env).STRATA_PROGRESS;
  if (forced !== undefined && forced !== '') {
    if (forced === '0') return false;
    if (forced === '1') return true;
    throw new RangeError(`Expected '0' or '1' for STRATA_PROGRESS but received '${forced}'`);
  }
  return stream.isTTY === true;
}

/** Metric values printed short: integers as they are, other numbers with four significant digits. */
export function formatMetric(value: MetricValue): string {
  if (typeof value === 'string') return value;
  if (!Number.isFinite(value) || Number.isInteger(value)) return String(value);
  const abs = Math.abs(value);
  if (abs >= 1e5 || abs < 1e-3) return value.toExponential(2);
  return String(Number(value.toPrecision(4)));
}

function codePoints(text: string): string[] {
  return Array.from(text);
}

/**
 * Progress bar for long tasks. On a TTY it redraws one line in place at most every `minIntervalMs`;
 * elsewhere (CI logs, pipes) it stays silent and prints one summary line at `finish()`.
 *
 * ```ts
 * const bar = new ProgressBar({ total: images.length, label: 'eval', unit: 'img' });
 * for (const batch of batches) bar.tick(batch.length, { acc: running.accuracy });
 * bar.finish();
 * ```
 */
export class ProgressBar {
  readonly total: number;
  readonly label: string;
  readonly unit: string;
  readonly live: boolean;

  #stream: ProgressStream;
  #now: () => number;
  #summary: boolean;
  #minIntervalMs: number;
  #tau: number;
  #barWidth: number | undefined;
  #start: number;
  #count = 0;
  #metrics: Record<string, MetricValue> = {};
  #rate: number | undefined;
  #sampleTime: number;
  #sampleCount = 0;
  #lastDraw = -Infinity;
  #drawnWidth = 0;
  /** Time of `finish()`; set means finished. */
  #end: number | undefined;

  constructor(options: ProgressBarOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError(`Expected object for options but received ${describe(options)}`);
    }
    this.total = checkNonNegative('total', options.total);
    this.label = options.label === undefined ? '' : checkString('label', options.label);
    this.unit = options.unit === undefined ? 'it' : checkString('unit', options.unit);
    this.#stream = options.stream ?? process.stderr;
    this.#now = options.now ?? (() => performance.now());
    this.#summary = options.summary ?? true;
    this.#minIntervalMs =
      options.minIntervalMs === undefined ? 100 : checkNonNegative('minIntervalMs', options.minIntervalMs);
    const smoothing = options.smoothingSeconds ?? 3;
    if (checkNonNegative('smoothingSeconds', smoothing) === 0) {
      throw new RangeError(`Expected number in (0, Infinity) for smoothingSeconds but received 0`);
    }
    this.#tau = smoothing * 1000;
    this.#barWidth =
      options.barWidth === undefined ? undefined : checkPositiveInteger('barWidth', options.barWidth);
    this.live = resolveLive(options, this.#stream);
    this.#start = this.#now();
    this.#sampleTime = this.#start;
    if (this.live) this.#draw(this.#start);
  }

  /** Units done so far. */
  get count(): number {
    return this.#count;
  }

  /** Latest value of each metric passed to `tick`. */
  get metrics(): Metrics {
    return { ...this.#metrics };
  }

  /** Seconds since the bar was created (frozen at finish). */
  get elapsed(): number {
    return ((this.#end ?? this.#now()) - this.#start) / 1000;
  }

  /**
   * Smoothed throughput in units per second: an exponential moving average of the rate between samples,
   * weighted by `1 - exp(-dt / smoothingSeconds)` so uneven tick intervals do not skew it.
   * Before the first sample it is the plain average; undefined while no time has passed.
   */
  get rate(): number | undefined {
    if (this.#rate !== undefined) return this.#rate;
    const elapsed = this.elapsed;
    return elapsed > 0 ? this.#count / elapsed : undefined;
  }

  /** Seconds left at the current rate: 0 when done, undefined when the rate is not known yet. */
  get eta(): number | undefined {
    const remaining = this.total - this.#count;
    if (remaining <= 0) return 0;
    const rate = this.rate;
    return rate !== undefined && rate > 0 ? remaining / rate : undefined;
  }

  /** Records `n` more units done and merges `metrics` into the shown values. */
  tick(n = 1, metrics?: Metrics): void {
    if (this.#end !== undefined) {
      throw new Error(`ProgressBar${this.label ? ` '${this.label}'` : ''} already finished.`);
    }
    checkNonNegative('n', n);
    if (metrics !== undefined) this.#mergeMetrics(metrics);
    this.#count += n;
    this.#sampleCount += n;
    const now = this.#now();
    this.#sample(now);
    if (this.live && now - this.#lastDraw >= this.#minIntervalMs) this.#draw(now);
  }

  /** Writes a line of text above the bar without garbling it (for per-epoch log lines). */
  log(text: string): void {
    checkString('text', text);
    if (!this.live || this.#end !== undefined) {
      this.#stream.write(text.endsWith('\n') ? text : `${text}\n`);
      return;
    }
    this.#clear();
    this.#stream.write(text.endsWith('\n') ? text : `${text}\n`);
    this.#drawnWidth = 0;
    this.#draw(this.#now());
  }

  /** Draws the final state and ends the line (live), or prints the summary line (quiet). Calling it again does nothing. */
  finish(metrics?: Metrics): void {
    if (this.#end !== undefined) return;
    if (metrics !== undefined) this.#mergeMetrics(metrics);
    const now = this.#now();
    this.#sample(now);
    this.#end = now;
    if (this.live) {
      this.#draw(now);
      this.#stream.write('\n');
    } else if (this.#summary) {
      this.#stream.write(`${this.summaryLine()}\n`);
    }
  }

  /** The live line as it would be drawn now, fitted to `columns` cells. */
  render(columns: number = this.#columns()): string {
    const done = this.total > 0 ? Math.min(1, this.#count / this.total) : 1;
    const rate = this.rate;
    const eta = this.eta;
    const head = this.label ? `${this.label} ` : '';
    const percent = `${String(Math.floor(done * 100)).padStart(3)}%`;
    const tail = [
      `${this.#count}/${this.total} ${this.unit}`,
      rate === undefined ? `-- ${this.unit}/s` : `${formatSi(rate)} ${this.unit}/s`,
      `elapsed ${formatDuration(Math.floor(this.elapsed))}`,
      `ETA ${eta === undefined ? '--' : formatDuration(Math.ceil(eta))}`,
      ...this.#metricParts(),
    ].join('  ');
    const fixed = codePoints(head).length + percent.length + 2 + codePoints(tail).length;
    const width = this.#barWidth ?? Math.min(MAX_BAR, columns - 1 - fixed);
    const line =
      width >= MIN_BAR || this.#barWidth !== undefined
        ? `${head}${percent} ${bar(done, width)} ${tail}`
        : `${head}${percent} ${tail}`;
    return fit(line, columns - 1);
  }

  /** One line for logs: label, count, time taken, mean throughput and the final metrics. */
  summaryLine(): string {
    const elapsed = this.elapsed;
    const mean = elapsed > 0 ? `${formatSi(this.#count / elapsed)} ${this.unit}/s` : `-- ${this.unit}/s`;
    const parts = [
      `${this.label ? `${this.label}: ` : ''}${this.#count}/${this.total} ${this.unit} in ${formatDuration(elapsed)} (${mean})`,
      ...this.#metricParts(),
    ];
    return parts.join('  ');
  }

  #metricParts(): string[] {
    return Object.entries(this.#metrics).map(([key, value]) => `${key}=${formatMetric(value)}`);
  }

  #mergeMetrics(metrics: Metrics): void {
    if (typeof metrics !== 'object' || metrics === null) {
      throw new TypeError(`Expected object for metrics but received ${describe(metrics)}`);
    }
    for (const [key, value] of Object.entries(metrics)) {
      if (typeof value !== 'number' && typeof value !== 'string') {
        throw new TypeError(`Expected number or string for metrics.${key} but received ${describe(value)}`);
      }
      this.#metrics[key] = value;
    }
  }

  #sample(now: number): void {
    const dt = now - this.#sampleTime;
    // Idle time with no units stays in the interval, so the next sample's rate accounts for it.
    if (dt < MIN_SAMPLE_MS || this.#sampleCount === 0) return;
    const instant = (this.#sampleCount * 1000) / dt;
    const weight = 1 - Math.exp(-dt / this.#tau);
    this.#rate = this.#rate === undefined ? instant : this.#rate + weight * (instant - this.#rate);
    this.#sampleTime = now;
    this.#sampleCount = 0;
  }

  #columns(): number {
    const columns = this.#stream.columns;
    return typeof columns === 'number' && columns > 0 ? columns : DEFAULT_COLUMNS;
  }

  #clear(): void {
    if (this.#drawnWidth === 0) return;
    // A TTY understands "erase line"; a forced-live pipe gets spaces so no escape codes land in logs.
    this.#stream.write(this.#stream.isTTY ? '\r\x1b[2K' : `\r${' '.repeat(this.#drawnWidth)}\r`);
  }

  #draw(now: number): void {
    const line = this.render();
    const width = codePoints(line).length;
    if (this.#stream.isTTY) {
      this.#stream.write(`\r${line}\x1b[K`);
    } else {
      this.#stream.write(`\r${line}${' '.repeat(Math.max(0, this.#drawnWidth - width))}`);
    }
    this.#drawnWidth = width;
    this.#lastDraw = now;
  }
}

function bar(done: number, width: number): string {
  const eighths = Math.round(done * width * 8);
  const full = Math.floor(eighths / 8);
  const partial = PARTIAL_BLOCKS[eighths % 8];
  const filled = '█'.repeat(full) + partial;
  return `|${filled}${' '.repeat(width - codePoints(filled).length)}|`;
}

function fit(line: string, columns: number): string {
  const points = codePoints(line);
  if (points.length <= columns) return line;
  return columns <= 1
    ? points.slice(0, Math.max(0, columns)).join('')
    : `${points.slice(0, columns - 1).join('')}…`;
}
