/**
 * End to end in headless Chromium: a trained model is served over a throttled link, and the page
 * must classify with the 2-bit basic layer before the download is complete, then with every higher
 * precision, ending with what Node computes from the same file and image. The model arrives in one
 * Range request per section; a reload classifies from the cached copy without a model byte.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { browserSkipReason } from '../../bench/web-measure.js';
import { packCheckpoint } from '../../src/cli/commands/pack.js';
import { decodeImage } from '../../src/data/image-decode.js';
import { inspectStrata } from '../../src/format/index.js';
import { StrataSession } from '../../src/runtime/session.js';
import { ensureClientBundle, startServer } from '../../src/runtime/server.js';
import { imageToInput, inputSpecFor, toChannels } from '../../src/web/preprocess.js';
import { assertLogitsClose } from '../export/fixtures.js';
import { mnistDigitPng, trainTinyMnist } from './fixtures.js';

const CHROMIUM = '/usr/bin/chromium';
const DOWNLOAD_SECONDS = 2.5;

interface Row {
  bits: number;
  bytes: number;
  transferred: number;
  total: number;
  fromCache: boolean;
  cls: number;
  probability: number;
  ms: number;
  logits: number[];
}

const skipReason = browserSkipReason();

test(
  'the page predicts with 2 bits before the file has arrived, then with every higher precision',
  { skip: skipReason, timeout: 120_000 },
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'strata-browser-'));
    const { chromium } = await import('playwright-core');
    const started = performance.now();
    const checkpoint = await trainTinyMnist(join(dir, 'run'), { bits: [8, 6, 4, 3, 2], trainLimit: 1024 });
    const bytes = packCheckpoint(checkpoint);
    writeFileSync(join(dir, 'digits.strata'), bytes);
    const digit = await mnistDigitPng(dir, 0);
    const other = await mnistDigitPng(dir, 1);
    const info = inspectStrata(bytes);
    await ensureClientBundle();
    t.diagnostic(
      `trained and packed in ${((performance.now() - started) / 1000).toFixed(1)} s; file ${bytes.length} bytes`,
    );

    const served: string[] = [];
    const server = await startServer({
      root: dir,
      port: 0,
      throttleKbps: (bytes.length * 8) / 1000 / DOWNLOAD_SECONDS,
      log: (line) => served.push(line),
    });
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--disable-quic',
      ],
    });
    const problems: string[] = [];
    let rows: Row[];
    let reloaded: Row[];
    let uploaded: Row[];
    let uploadGets: number;
    let phoneOverflow: number;
    let budgeted: Row[];
    let budgetRanges: string[];
    let earlier: string[];
    let pageState: { state: string; error: string };
    const readRows = (trs: Element[]) =>
      trs.map((tr) => {
        const d = (tr as HTMLElement).dataset;
        return {
          bits: Number(d.bits),
          bytes: Number(d.bytes),
          transferred: Number(d.transferred),
          total: Number(d.total),
          fromCache: d.fromCache === 'true',
          cls: Number(d.class),
          probability: Number(d.probability),
          ms: Number(d.ms),
          logits: JSON.parse(d.logits ?? '[]') as number[],
        };
      });
    try {
      const page = await browser.newPage();
      page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
      page.on('console', (m) => {
        if (m.type() === 'error') problems.push(`console: ${m.text()}`);
      });
      await page.goto(`${server.url}/?model=digits.strata&image=/${encodeURIComponent('digit-0.png')}`);
      await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state ?? ''), null, {
        timeout: 90_000,
      });
      pageState = await page.evaluate(() => ({
        state: document.body.dataset.state ?? '',
        error: document.getElementById('error')?.textContent ?? '',
      }));
      rows = await page.$$eval('tr.result', readRows);
      // A reload: every precision from the cached copy, no model byte requested.
      await page.reload();
      await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state ?? ''), null, {
        timeout: 60_000,
      });
      reloaded = await page.$$eval('tr.result', readRows);
      // Another image: classified by the precisions already loaded, without a model request.
      const gets = served.filter((l) => l.startsWith('GET /digits.strata')).length;
      await page.setInputFiles('#upload', other.path);
      await page.waitForFunction(
        (label) =>
          document.body.dataset.state === 'done' &&
          (document.getElementById('image-note')?.textContent ?? '').includes(label),
        'digit-1.png',
        { timeout: 60_000 },
      );
      uploaded = await page.$$eval('tr.result', readRows);
      uploadGets = served.filter((l) => l.startsWith('GET /digits.strata')).length - gets;
      // At phone width nothing sticks out of the page (the table scrolls inside its own box).
      await page.setViewportSize({ width: 375, height: 700 });
      phoneOverflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      // A budget from the URL, without the cache: only the sections up to 3 bits are requested.
      const before = served.length;
      earlier = served.slice(0, before);
      await page.goto(
        `${server.url}/?model=digits.strata&image=/${encodeURIComponent('digit-0.png')}&maxBits=3&cache=off`,
      );
      await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state ?? ''), null, {
        timeout: 60_000,
      });
      budgeted = await page.$$eval('tr.result', readRows);
      budgetRanges = served
        .slice(before)
        .filter((l) => l.startsWith('GET /digits.strata'))
        .map((l) => / bytes=(\d+-\d+) /.exec(l)?.[1] ?? l);
    } finally {
      await browser.close();
      await server.close();
    }
    for (const r of rows) {
      t.diagnostic(
        `w${r.bits}: complete at ${r.bytes} B, predicted at ${r.ms} ms with ${r.transferred}/${r.total} B received: class ${r.cls} (${(100 * r.probability).toFixed(1)} %)`,
      );
    }
    assert.equal(
      pageState.state,
      'done',
      `page ended in ${pageState.state}: ${pageState.error} ${problems.join('; ')}`,
    );
    assert.deepEqual(problems, []);

    // One row per precision, lowest first.
    const held = info.precisions.map((p) => p.bits);
    assert.deepEqual(
      rows.map((r) => r.bits),
      held,
    );
    assert.equal(rows[0].bits, 2);
    for (const r of rows) {
      assert.equal(r.total, bytes.length);
      const completeAt = info.precisions.find((p) => p.bits === r.bits)!.completeAt;
      assert.ok(
        r.bytes >= completeAt,
        `w${r.bits} reported at ${r.bytes} B, before its section ends at ${completeAt}`,
      );
    }
    // The basic layer was complete, and its prediction on screen, while the file was still arriving.
    const first = rows[0];
    assert.ok(
      first.transferred < bytes.length,
      `2-bit prediction appeared only after the whole file (${first.transferred} of ${bytes.length} B)`,
    );
    // Over both visits: one Range request per section, each for exactly that section's bytes, and
    // one HEAD (the reload checking that its cached copy is still the served file).
    const ends = info.precisions.map((p) => p.completeAt);
    const modelRequests = earlier.filter((l) => l.startsWith('GET /digits.strata'));
    assert.deepEqual(earlier.filter((l) => l.startsWith('HEAD /digits.strata')).length, 1);
    assert.deepEqual(
      modelRequests.map((l) => / bytes=(\d+-\d+) 206 /.exec(l)?.[1]),
      ends.map((end, i) => `${i === 0 ? 0 : ends[i - 1]}-${end - 1}`),
    );
    // The reload: every precision again, from the cache; the only model request is a HEAD check.
    assert.deepEqual(
      reloaded.map((r) => [r.bits, r.fromCache, r.transferred]),
      held.map((b) => [b, true, 0]),
    );
    assert.deepEqual(
      reloaded.map((r) => r.logits),
      rows.map((r) => r.logits),
    );

    assert.equal(uploadGets, 0, 'a new image downloads no model bytes');
    assert.deepEqual(
      uploaded.map((r) => r.bits),
      held,
    );
    assert.notDeepEqual(
      uploaded.map((r) => r.logits),
      rows.map((r) => r.logits),
    );
    assert.ok(phoneOverflow <= 0, `the page is ${phoneOverflow} px wider than a 375 px screen`);
    assert.deepEqual(
      budgeted.map((r) => [r.bits, r.fromCache]),
      [
        [2, false],
        [3, false],
      ],
    );
    assert.deepEqual(budgetRanges, [`0-${ends[0] - 1}`, `${ends[0]}-${ends[1] - 1}`]);

    // Node, from the same file and the same PNG, computes the same predictions.
    const spec = inputSpecFor(info.architecture, info.metadata);
    const rgb = decodeImage(new Uint8Array(readFileSync(digit.path)), digit.path);
    const input = imageToInput(toChannels(rgb.data, rgb.height, rgb.width, 3, spec.channels), spec);
    for (const r of rows) {
      const session = await StrataSession.create(bytes, { bits: r.bits, threads: 1 });
      const p = await session.predict({ data: input, shape: [1, spec.height, spec.width, spec.channels] });
      await session.dispose();
      assertLogitsClose(Float32Array.from(r.logits), p.logits, p.numClasses, true, `browser w${r.bits}`);
      if (r.bits === 8) {
        assert.equal(r.cls, p.classes[0], 'final prediction differs from Node at the top precision');
        assert.ok(Math.abs(r.probability - p.probabilities[p.classes[0]]) < 1e-3);
      }
    }
    rmSync(dir, { recursive: true, force: true });
  },
);
