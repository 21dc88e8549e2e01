import { test } from 'node:test';
import assert from 'node:assert/strict';

import { ProgressBar, formatMetric } from '../../src/report/progress.js';
import type { ProgressBarOptions } from '../../src/report/progress.js';

class FakeStream {
  chunks: string[] = [];
  constructor(
    readonly isTTY: boolean,
    readonly columns = 120,
  ) {}
  write(chunk: string): boolean {
    this.chunks.push(chunk);
    return true;
  }
  /** Text of each redraw of the live line, with control sequences removed. */
  frames(): string[] {
    return this.chunks
      .filter((c) => c.startsWith('\r') && c.length > 1)
      .map((c) => c.replaceAll('\r', '').replaceAll('\x1b[2K', '').replaceAll('\x1b[K', ''));
  }
}

class FakeClock {
  ms = 1000;
  now = (): number => this.ms;
  advance(seconds: number): void {
    this.ms += seconds * 1000;
  }
}

function makeBar(
  stream: FakeStream,
  clock: FakeClock,
  options: Partial<ProgressBarOptions> = {},
): ProgressBar {
  return new ProgressBar({
    total: 100,
    label: 'eval',
    unit: 'img',
    stream,
    now: clock.now,
    env: {},
    ...options,
  });
}

test('steady throughput gives exact rate, ETA and elapsed time', () => {
  const stream = new FakeStream(true);
  const clock = new FakeClock();
  const bar = makeBar(stream, clock, { minIntervalMs: 0 });
  for (let i = 0; i < 4; i++) {
    clock.advance(1);
    bar.tick(10, { loss: 0.31, acc: 0.9 });
  }
  assert.equal(bar.count, 40);
  assert.equal(bar.rate, 10);
  assert.equal(bar.eta, 6);
  assert.equal(bar.elapsed, 4);
  const line = stream.frames().at(-1) ?? '';
  assert.match(line, /^eval {2}40% \|/);
  assert.match(line, / 40\/100 img {2}10 img\/s {2}elapsed 4s {2}ETA 6s {2}loss=0\.31 {2}acc=0\.9$/);
});

test('throughput and ETA are shown in human units', () => {
  const stream = new FakeStream(true);
  const clock = new FakeClock();
  const bar = makeBar(stream, clock, { total: 10000, minIntervalMs: 0 });
  clock.advance(0.5);
  bar.tick(600);
  assert.match(stream.frames().at(-1) ?? '', /600\/10000 img {2}1\.2k img\/s .*ETA 8s/);

  const slow = makeBar(stream, clock, { total: 10000, minIntervalMs: 0 });
  for (let i = 0; i < 15; i++) {
    clock.advance(1);
    slow.tick(50);
  }
  // 9250 left at 50 img/s.
  assert.equal(slow.eta, 185);
  assert.match(stream.frames().at(-1) ?? '', /50 img\/s {2}elapsed 15s {2}ETA 3m05s$/);
});

test('rate is an exponential moving average weighted by elapsed time', () => {
  const stream = new FakeStream(true);
  const clock = new FakeClock();
  const bar = makeBar(stream, clock, { total: 1000, smoothingSeconds: 2 });
  clock.advance(1);
  bar.tick(10);
  assert.equal(bar.rate, 10);
  clock.advance(1);
  bar.tick(30);
  const expected = 10 + (1 - Math.exp(-1 / 2)) * (30 - 10);
  assert.ok(Math.abs((bar.rate ?? 0) - expected) < 1e-9, `rate ${bar.rate} expected ${expected}`);
  // Two half-second samples move it as far as one one-second sample at the same speed.
  const split = makeBar(stream, clock, { total: 1000, smoothingSeconds: 2 });
  clock.advance(1);
  split.tick(10);
  clock.advance(0.5);
  split.tick(15);
  clock.advance(0.5);
  split.tick(15);
  assert.ok(Math.abs((split.rate ?? 0) - expected) < 1e-9);
  for (let i = 0; i < 40; i++) {
    clock.advance(1);
    bar.tick(30);
  }
  assert.ok(Math.abs((bar.rate ?? 0) - 30) < 1e-3);
});

test('ticks within the same millisecond are pooled instead of giving an infinite rate', () => {
  const stream = new FakeStream(true);
  const clock = new FakeClock();
  const bar = makeBar(stream, clock, { minIntervalMs: 0 });
  bar.tick(5);
  bar.tick(5);
  assert.equal(bar.rate, undefined);
  assert.equal(bar.eta, undefined);
  assert.match(stream.frames().at(-1) ?? '', /10\/100 img {2}-- img\/s {2}elapsed 0s {2}ETA --$/);
  clock.advance(2);
  bar.tick(10);
  assert.equal(bar.rate, 10);
});

test('a TTY is redrawn in place at most about ten times a second', () => {
  const stream = new FakeStream(true);
  const clock = new FakeClock();
  const bar = makeBar(stream, clock, { total: 1000 });
  for (let i = 0; i < 200; i++) {
    clock.advance(0.01);
    bar.tick(1);
  }
  const redraws = stream.frames().length;
  assert.ok(redraws >= 19 && redraws <= 22, `${redraws} redraws in 2 s`);
  for (const chunk of stream.chunks) {
    assert.ok(chunk.startsWith('\r') && chunk.endsWith('\x1b[K'), JSON.stringify(chunk));
  }
  bar.finish();
  assert.equal(stream.chunks.at(-1), '\n');
  assert.match(stream.frames().at(-1) ?? '', /200\/1000 img/);
});

test('lines fit the terminal width', () => {
  for (const columns of [40, 60, 80, 200]) {
    const stream = new FakeStream(true, columns);
    const clock = new FakeClock();
    const bar = makeBar(stream, clock, { label: 'a rather long label for the task', minIntervalMs: 0 });
    clock.advance(1);
    bar.tick(3, { loss: 0.123456, accuracy: 0.5, note: 'warming up the batch-norm statistics' });
    for (const frame of stream.frames())
      assert.ok(Array.from(frame).length <= columns - 1, `${columns}: ${frame}`);
  }
  const wide = new FakeStream(true, 200);
  const bar = makeBar(wide, new FakeClock(), { total: 8, minIntervalMs: 0 });
  bar.tick(3);
  // 3/8 of 30 cells is 11.25 cells: 11 full blocks and a quarter block.
  assert.match(wide.frames().at(-1) ?? '', /\|█{11}▎ {18}\|/);
});

test('a non-TTY stream stays silent until one summary line at finish', () => {
  const stream = new FakeStream(false);
  const clock = new FakeClock();
  const bar = makeBar(stream, clock);
  for (let i = 0; i < 50; i++) {
    clock.advance(0.1);
    bar.tick(2, { acc: i / 50 });
  }
  assert.equal(stream.chunks.length, 0);
  bar.finish({ acc: 0.75 });
  bar.finish();
  assert.deepEqual(stream.chunks, ['eval: 100/100 img in 5s (20 img/s)  acc=0.75\n']);

  const silent = new FakeStream(false);
  const none = makeBar(silent, clock, { summary: false });
  none.tick(100);
  none.finish();
  assert.equal(silent.chunks.length, 0);
});

test('STRATA_PROGRESS overrides TTY detection and the quiet option overrides both', () => {
  const clock = new FakeClock();
  const forcedLive = new FakeStream(false);
  assert.equal(makeBar(forcedLive, clock, { env: { STRATA_PROGRESS: '1' } }).live, true);
  const forcedQuiet = new FakeStream(true);
  assert.equal(makeBar(forcedQuiet, clock, { env: { STRATA_PROGRESS: '0' } }).live, false);
  assert.equal(makeBar(forcedQuiet, clock, { env: { STRATA_PROGRESS: '1' }, quiet: true }).live, false);
  assert.equal(makeBar(forcedLive, clock, { env: { STRATA_PROGRESS: '0' }, quiet: false }).live, true);
  assert.equal(makeBar(new FakeStream(true), clock, { env: { STRATA_PROGRESS: '' } }).live, true);
  assert.throws(() => makeBar(forcedLive, clock, { env: { STRATA_PROGRESS: 'yes' } }), {
    name: 'RangeError',
    message: "Expected '0' or '1' for STRATA_PROGRESS but received 'yes'",
  });
  // A forced-live pipe is cleared with spaces: no escape codes end up in log files.
  const bar = makeBar(forcedLive, clock, { env: { STRATA_PROGRESS: '1' }, minIntervalMs: 0 });
  bar.tick(1);
  assert.ok(forcedLive.chunks.every((c) => !c.includes('\x1b')));
});

test('log() writes above the live line and redraws it', () => {
  const stream = new FakeStream(true);
  const clock = new FakeClock();
  const bar = makeBar(stream, clock);
  clock.advance(1);
  bar.tick(10);
  stream.chunks.length = 0;
  bar.log('epoch 1: loss 0.5');
  assert.equal(stream.chunks[0], '\r\x1b[2K');
  assert.equal(stream.chunks[1], 'epoch 1: loss 0.5\n');
  assert.match(stream.chunks[2], /^\reval {2}10% /);
});

test('misuse is reported with the parameter and the state', () => {
  const stream = new FakeStream(false);
  const clock = new FakeClock();
  assert.throws(() => makeBar(stream, clock, { total: -1 }), {
    name: 'RangeError',
    message: 'Expected number in [0, Infinity) for total but received -1',
  });
  const bar = makeBar(stream, clock);
  assert.throws(() => bar.tick(-2), {
    name: 'RangeError',
    message: 'Expected number in [0, Infinity) for n but received -2',
  });
  assert.throws(() => bar.tick(1, { loss: null as unknown as number }), {
    name: 'TypeError',
    message: 'Expected number or string for metrics.loss but received null of type null',
  });
  bar.finish();
  assert.throws(() => bar.tick(1), { name: 'Error', message: "ProgressBar 'eval' already finished." });
});

test('formatMetric shortens numbers without hiding magnitude', () => {
  assert.equal(formatMetric(3), '3');
  assert.equal(formatMetric(0.123456), '0.1235');
  assert.equal(formatMetric(12.3456), '12.35');
  assert.equal(formatMetric(1.5e-5), '1.50e-5');
  assert.equal(formatMetric(NaN), 'NaN');
  assert.equal(formatMetric('W4A4'), 'W4A4');
});
