/**
 * Loads the page of `strata serve` in headless Chromium (Debian's /usr/bin/chromium through
 * playwright-core) and measures what a user on a given link gets: per precision, the time from
 * navigation to its prediction and the bytes transferred by then (every request: page, script,
 * image, model), and the Range requests made for the model. Shared by `npm run bench:web` and the
 * throttled browser test.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureClientBundle, startServer } from '../src/runtime/server.js';

export const CHROMIUM = '/usr/bin/chromium';

/** Why the browser tests cannot run here, or false; CI sets STRATA_REQUIRE_BROWSER=1 so a missing browser fails. */
export function browserSkipReason(): string | false {
  return !existsSync(CHROMIUM) && process.env.STRATA_REQUIRE_BROWSER !== '1'
    ? `${CHROMIUM} is not installed (set STRATA_REQUIRE_BROWSER=1 to make this a failure)`
    : false;
}

export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // No accessibility tree (a user's browser builds one only for assistive technology; here it cost
  // tens of ms of the page's main thread per layout).
  '--disable-renderer-accessibility',
];

export interface Link {
  /** Download and upload rate, kilobits (1,000 bits) per second. */
  kbps: number;
  /** Added to every request's round trip, ms. */
  latencyMs: number;
}

export interface MeasuredRow {
  bits: number;
  /** From navigation to the prediction on screen. */
  ms: number;
  /** Of which: decoding the precision and rebuilding the network, and running it. */
  loadMs: number;
  runMs: number;
  /** Bytes of the file that hold this precision. */
  bytes: number;
  fromCache: boolean;
  label: string;
  probability: number;
  expected: string;
  logits: number[];
  /** Bytes transferred by then, all requests (headers included). */
  transferredTotal: number;
}

export interface MeasuredRequest {
  url: string;
  method: string;
  range: string | null;
  status: number;
  fromCache: boolean;
  /** Body bytes received. */
  bodyBytes: number;
  /** Bytes on the wire (headers and body). */
  encodedBytes: number;
}

export interface PageVisit {
  state: string;
  error: string;
  rows: MeasuredRow[];
  requests: MeasuredRequest[];
  /** All bytes on the wire during the visit. */
  transferredTotal: number;
  /** Of them, before the first prediction. */
  transferredBeforeFirst: number;
  firstMs: number;
  doneMs: number;
  /** Moments of the page's load (script started, image decoded, first model complete), ms. */
  marks: Record<string, number>;
  problems: string[];
}

interface Tracked {
  url: string;
  method: string;
  range: string | null;
  status: number;
  fromCache: boolean;
  /** [monotonic seconds, encoded bytes] per chunk. */
  chunks: [number, number][];
  bodyBytes: number;
  finishedEncoded: number | null;
  finishedAt: number | null;
}

/** Byte count on the wire of one request up to monotonic time t (seconds). */
function bytesUntil(r: Tracked, t: number): number {
  if (r.finishedAt !== null && r.finishedAt <= t && r.finishedEncoded !== null) return r.finishedEncoded;
  let sum = 0;
  for (const [at, n] of r.chunks) if (at <= t) sum += n;
  return sum;
}

export interface Browser {
  /** Visits `url` (a fresh navigation in the same profile, so caches persist between visits). */
  visit(url: string, options?: { timeoutMs?: number }): Promise<PageVisit>;
  close(): Promise<void>;
}

/** Starts Chromium with a fresh profile; `link` throttles the page's network (CDP). */
export async function openBrowser(link: Link | null): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  const profile = mkdtempSync(join(tmpdir(), 'strata-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  if (link !== null) {
    const bytesPerSecond = (link.kbps * 1000) / 8;
    await cdp.send('Network.emulateNetworkConditions', {
      offline: false,
      latency: link.latencyMs,
      downloadThroughput: bytesPerSecond,
      uploadThroughput: bytesPerSecond,
    });
  }
  let tracked = new Map<string, Tracked>();
  let navigation: { timestamp: number; wallTime: number } | null = null;
  cdp.on('Network.requestWillBeSent', (e) => {
    const headers = e.request.headers as Record<string, string>;
    const range = Object.entries(headers).find(([k]) => k.toLowerCase() === 'range')?.[1] ?? null;
    if (e.type === 'Document' && navigation === null)
      navigation = { timestamp: e.timestamp, wallTime: e.wallTime };
    tracked.set(e.requestId, {
      url: e.request.url,
      method: e.request.method,
      range,
      status: 0,
      fromCache: false,
      chunks: [],
      bodyBytes: 0,
      finishedEncoded: null,
      finishedAt: null,
    });
  });
  cdp.on('Network.responseReceived', (e) => {
    const r = tracked.get(e.requestId);
    if (r === undefined) return;
    r.status = e.response.status;
    r.fromCache = e.response.fromDiskCache === true || e.response.fromServiceWorker === true;
  });
  cdp.on('Network.requestServedFromCache', (e) => {
    const r = tracked.get(e.requestId);
    if (r !== undefined) r.fromCache = true;
  });
  cdp.on('Network.dataReceived', (e) => {
    const r = tracked.get(e.requestId);
    if (r === undefined) return;
    r.bodyBytes += e.dataLength;
    r.chunks.push([e.timestamp, e.encodedDataLength]);
  });
  cdp.on('Network.loadingFinished', (e) => {
    const r = tracked.get(e.requestId);
    if (r === undefined) return;
    r.finishedEncoded = e.encodedDataLength;
    r.finishedAt = e.timestamp;
  });
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });

  return {
    async visit(url, options = {}) {
      tracked = new Map();
      navigation = null;
      problems.length = 0;
      await page.goto(url, { waitUntil: 'commit' });
      // Polled with a one-line CDP evaluation rather than page.waitForFunction, whose injected
      // script (Playwright's selector engine) took tens of ms of the page's main thread while the
      // page was loading.
      const deadline = performance.now() + (options.timeoutMs ?? 60_000);
      while (true) {
        // Between the commit and the new document's first script the evaluation may find no context.
        const state = await cdp
          .send('Runtime.evaluate', { expression: "document.body?.dataset.state ?? ''", returnByValue: true })
          .then(({ result }) => String((result as { value?: unknown }).value ?? ''))
          .catch(() => '');
        if (['done', 'error', 'choose'].includes(state)) break;
        if (performance.now() > deadline)
          throw new Error(`${url}: the page did not finish (state '${state}')`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const view = await page.evaluate(() => ({
        state: document.body.dataset.state ?? '',
        error: document.getElementById('error')?.textContent ?? '',
        timeOrigin: performance.timeOrigin,
        doneMs: Number(document.body.dataset.doneMs ?? NaN),
        marks: {
          ...(JSON.parse(document.body.dataset.marks ?? '{}') as Record<string, number>),
          ...Object.fromEntries(
            performance.getEntriesByType('mark').map((m) => [m.name, Math.round(m.startTime)]),
          ),
        },
        rows: Array.from(document.querySelectorAll<HTMLElement>('tr.result'), (tr) => ({ ...tr.dataset })),
      }));
      // Let the last responses' loadingFinished events arrive.
      await new Promise((r) => setTimeout(r, 200));
      const nav = navigation as { timestamp: number; wallTime: number } | null;
      if (nav === null) throw new Error(`no document request seen for ${url}`);
      // Page time (ms from its time origin) to the CDP monotonic clock (s).
      const toMonotonic = (ms: number) => nav.timestamp + (view.timeOrigin + ms) / 1000 - nav.wallTime;
      const all = [...tracked.values()];
      const total = (t: number) => all.reduce((sum, r) => sum + bytesUntil(r, t), 0);
      const rows: MeasuredRow[] = view.rows.map((d) => ({
        bits: Number(d.bits),
        ms: Number(d.ms),
        loadMs: Number(d.loadMs),
        runMs: Number(d.runMs),
        bytes: Number(d.bytes),
        fromCache: d.fromCache === 'true',
        label: d.label ?? '',
        probability: Number(d.probability),
        expected: d.expected ?? '',
        logits: JSON.parse(d.logits ?? '[]') as number[],
        transferredTotal: total(toMonotonic(Number(d.ms))),
      }));
      const firstMs = rows.length > 0 ? rows[0].ms : NaN;
      return {
        state: view.state,
        error: view.error,
        rows,
        requests: all.map((r) => ({
          url: r.url,
          method: r.method,
          range: r.range,
          status: r.status,
          fromCache: r.fromCache,
          bodyBytes: r.bodyBytes,
          encodedBytes: r.finishedEncoded ?? r.chunks.reduce((s, [, n]) => s + n, 0),
        })),
        transferredTotal: total(Infinity),
        transferredBeforeFirst: rows.length > 0 ? total(toMonotonic(firstMs)) : NaN,
        firstMs,
        doneMs: view.doneMs,
        marks: view.marks,
        problems: [...problems],
      };
    },
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/**
 * Serves `files` (name -> bytes) from a temporary folder with `strata serve`'s server and visits its
 * page twice through `link` in one browser profile: a cold visit, then a warm one (caches kept).
 */
export async function coldAndWarmVisits(
  files: Record<string, Uint8Array>,
  link: Link,
  webRoot?: string,
  /** Reloads after the cold visit (each warm); one figure of a 2-core machine moves by 100 ms. */
  warmVisits = 1,
): Promise<{ cold: PageVisit; warm: PageVisit; warmAll: PageVisit[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'strata-web-'));
  for (const [name, bytes] of Object.entries(files)) writeFileSync(join(dir, name), bytes);
  await ensureClientBundle(webRoot);
  const server = await startServer({ root: dir, port: 0 });
  const browser = await openBrowser(link);
  try {
    const cold = await browser.visit(`${server.url}/`);
    const warmAll: PageVisit[] = [];
    for (let i = 0; i < Math.max(1, warmVisits); i++) warmAll.push(await browser.visit(`${server.url}/`));
    return { cold, warm: warmAll[0], warmAll };
  } finally {
    await browser.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
