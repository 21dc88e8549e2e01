import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Random } from '../../src/engine/random.js';
import { inspectStrata, writeStrata } from '../../src/format/index.js';
import {
  contentType,
  ensureClientBundle,
  parseRange,
  startServer,
  type ModelListing,
} from '../../src/runtime/server.js';
import { smallContent } from '../format/helpers.js';
import { sampleImageFor } from '../../src/web/samples.js';

const outside = mkdtempSync(join(tmpdir(), 'strata-server-outside-'));
const root = mkdtempSync(join(tmpdir(), 'strata-server-'));
const SECRET = 'top secret outside the served folder';
writeFileSync(join(outside, 'secret.txt'), SECRET);
const random = new Random(3);
const blob = Uint8Array.from({ length: 1000 }, () => random.int(256));
writeFileSync(join(root, 'blob.bin'), blob);
const model = writeStrata(smallContent());
writeFileSync(join(root, 'model.strata'), model);
writeFileSync(join(root, 'broken.strata'), Uint8Array.from([1, 2, 3, 4]));
writeFileSync(join(root, '.hidden'), SECRET);
mkdirSync(join(root, 'sub'));
writeFileSync(join(root, 'sub', 'inner.txt'), 'inner');
writeFileSync(join(root, 'empty.bin'), new Uint8Array(0));
symlinkSync(join(outside, 'secret.txt'), join(root, 'link.txt'));

const server = await startServer({ root, port: 0 });
after(async () => {
  await server.close();
  rmSync(root, { recursive: true, force: true });
  rmSync(outside, { recursive: true, force: true });
});

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** A request with the path sent exactly as given (fetch would normalise `..` away). */
function raw(
  path: string,
  options: { method?: string; headers?: Record<string, string> } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${server.url}/`,
      { method: options.method ?? 'GET', path, headers: options.headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const range = (value: string) => raw('/blob.bin', { headers: { Range: value } });

test('parseRange: the three single-range forms, clamping, unsatisfiable and ignored headers', () => {
  assert.deepEqual(parseRange('bytes=0-9', 100), { start: 0, end: 9 });
  assert.deepEqual(parseRange('bytes=90-', 100), { start: 90, end: 99 });
  assert.deepEqual(parseRange('bytes=-10', 100), { start: 90, end: 99 });
  assert.deepEqual(parseRange('bytes=-500', 100), { start: 0, end: 99 });
  assert.deepEqual(parseRange('bytes=50-500', 100), { start: 50, end: 99 });
  assert.deepEqual(parseRange('BYTES = 1 - 2', 100), { start: 1, end: 2 });
  assert.equal(parseRange('bytes=100-', 100), 'unsatisfiable');
  assert.equal(parseRange('bytes=-0', 100), 'unsatisfiable');
  assert.equal(parseRange('bytes=0-', 0), 'unsatisfiable');
  for (const ignored of [
    undefined,
    'bytes=5-2',
    'bytes=-',
    'bytes=a-b',
    'items=0-5',
    'bytes=0-1,4-5',
    'bytes=1.5-2',
    '',
  ]) {
    assert.equal(parseRange(ignored, 100), null, String(ignored));
  }
  assert.equal(parseRange('bytes=0-99999999999999999999', 100), null);
});

test('GET without Range sends the whole file with Accept-Ranges, ETag and Last-Modified', async () => {
  const r = await raw('/blob.bin');
  assert.equal(r.status, 200);
  assert.deepEqual(new Uint8Array(r.body), blob);
  assert.equal(r.headers['accept-ranges'], 'bytes');
  assert.equal(r.headers['content-length'], '1000');
  assert.equal(r.headers['content-type'], 'application/octet-stream');
  assert.match(String(r.headers.etag), /^"[0-9a-f]+-[0-9a-f]+"$/);
  assert.ok(!Number.isNaN(Date.parse(String(r.headers['last-modified']))));
  const again = await raw('/blob.bin', { headers: { 'If-None-Match': String(r.headers.etag) } });
  assert.equal(again.status, 304);
  assert.equal(again.body.length, 0);
});

test('Range requests: 206 with Content-Range for a=b, a-, -n; 416 with bytes */size when unsatisfiable', async () => {
  const cases: [string, number, number][] = [
    ['bytes=0-9', 0, 9],
    ['bytes=10-19', 10, 19],
    ['bytes=990-', 990, 999],
    ['bytes=-5', 995, 999],
    ['bytes=-5000', 0, 999],
    ['bytes=995-2000', 995, 999],
    ['bytes=999-999', 999, 999],
  ];
  for (const [header, start, end] of cases) {
    const r = await range(header);
    assert.equal(r.status, 206, header);
    assert.equal(r.headers['content-range'], `bytes ${start}-${end}/1000`, header);
    assert.equal(r.headers['content-length'], String(end - start + 1), header);
    assert.deepEqual(new Uint8Array(r.body), blob.subarray(start, end + 1), header);
  }
  for (const header of ['bytes=1000-', 'bytes=5000-6000', 'bytes=-0']) {
    const r = await range(header);
    assert.equal(r.status, 416, header);
    assert.equal(r.headers['content-range'], 'bytes */1000', header);
    assert.equal(r.body.length, 0);
  }
  const empty = await raw('/empty.bin', { headers: { Range: 'bytes=0-' } });
  assert.equal(empty.status, 416);
  assert.equal(empty.headers['content-range'], 'bytes */0');
});

test('malformed or multiple ranges are ignored: the whole file with 200', async () => {
  for (const header of ['bytes=5-2', 'bytes=abc', 'bytes=-', 'pages=0-5', 'bytes=0-1,5-6', 'bytes 0-5']) {
    const r = await range(header);
    assert.equal(r.status, 200, header);
    assert.equal(r.headers['content-range'], undefined, header);
    assert.deepEqual(new Uint8Array(r.body), blob, header);
  }
});

test('If-Range: the range applies only while the validator matches', async () => {
  const etag = String((await raw('/blob.bin', { method: 'HEAD' })).headers.etag);
  const matching = await raw('/blob.bin', { headers: { Range: 'bytes=0-3', 'If-Range': etag } });
  assert.equal(matching.status, 206);
  const stale = await raw('/blob.bin', { headers: { Range: 'bytes=0-3', 'If-Range': '"stale"' } });
  assert.equal(stale.status, 200);
  assert.equal(stale.body.length, 1000);
});

test('HEAD gives the headers of GET without a body, for whole files and ranges', async () => {
  const whole = await raw('/blob.bin', { method: 'HEAD' });
  assert.equal(whole.status, 200);
  assert.equal(whole.headers['content-length'], '1000');
  assert.equal(whole.body.length, 0);
  const part = await raw('/blob.bin', { method: 'HEAD', headers: { Range: 'bytes=100-199' } });
  assert.equal(part.status, 206);
  assert.equal(part.headers['content-range'], 'bytes 100-199/1000');
  assert.equal(part.headers['content-length'], '100');
  assert.equal(part.body.length, 0);
  assert.equal((await raw('/blob.bin', { method: 'POST' })).status, 405);
});

test('path traversal, encoded traversal, NUL, backslashes, dotfiles and escaping links are refused', async () => {
  const attempts = [
    '/../secret.txt',
    '/sub/../../secret.txt',
    '/%2e%2e/secret.txt',
    '/%2E%2E%2Fsecret.txt',
    '/sub/..%2f..%2fsecret.txt',
    '/..%5csecret.txt',
    '/sub%5c..%5c..%5csecret.txt',
    '/blob.bin%00.txt',
    '/%E0%A4%A',
    '//etc/passwd',
    `/${outside}/secret.txt`,
    '/.hidden',
    '/link.txt',
    '/samples/../index.html',
    '/samples/%2e%2e/index.html',
    '/samples/sub/cifar10.png',
    '/samples/.hidden',
    'http:/x',
  ];
  for (const path of attempts) {
    const r = await raw(path);
    assert.ok(r.status === 400 || r.status === 404, `${path}: status ${r.status}`);
    assert.ok(!r.body.toString().includes(SECRET), `${path} leaked the file`);
  }
  assert.equal((await raw('/../secret.txt')).status, 400);
  assert.equal((await raw('/%E0%A4%A')).status, 400);
  // Files in subfolders are served.
  assert.equal((await raw('/sub/inner.txt')).body.toString(), 'inner');
});

test('content types; the page carries the model listing and a versioned client URL; samples', async () => {
  assert.equal(contentType('x.wasm'), 'application/wasm');
  assert.equal(contentType('x.MJS'), 'text/javascript; charset=utf-8');
  await ensureClientBundle();
  const page = await raw('/');
  assert.equal(page.status, 200);
  assert.match(String(page.headers['content-type']), /^text\/html/);
  assert.equal(page.headers['cache-control'], 'no-cache');
  const html = page.body.toString();
  const listed = /<script id="strata-models" type="application\/json">(.*?)<\/script>/s.exec(html);
  assert.ok(listed !== null, 'the listing is in the page');
  const { models } = JSON.parse(listed[1]) as { models: ModelListing[] };
  assert.deepEqual(
    models.map((m) => m.name),
    ['broken.strata', 'model.strata'],
  );
  assert.ok(!listed[1].includes('<'), 'no markup can end the script element early');
  const version = /src="\/client\.js\?v=([^"]+)"/.exec(html);
  assert.ok(version !== null, 'the client URL names its version');
  const pinned = await raw(`/client.js?v=${version[1]}`, { method: 'HEAD' });
  assert.equal(pinned.status, 200);
  assert.equal(pinned.headers['cache-control'], 'public, max-age=31536000, immutable');
  assert.equal((await raw('/client.js?v=old', { method: 'HEAD' })).headers['cache-control'], 'no-cache');
  assert.equal((await raw('/client.js', { method: 'HEAD' })).headers['cache-control'], 'no-cache');
  const worker = await raw('/sw.js');
  assert.equal(worker.status, 200);
  assert.match(String(worker.headers['content-type']), /^text\/javascript/);
  assert.equal(worker.headers['cache-control'], 'no-cache', 'a browser must see a new service worker');
  assert.match(worker.body.toString(), /strata-page/);
  const head = await raw('/', { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.body.length, 0);

  const sample = await raw('/samples/cifar10.png');
  assert.equal(sample.status, 200);
  assert.equal(sample.headers['content-type'], 'image/png');
  assert.match(String(sample.headers['cache-control']), /max-age=\d+/);
  assert.equal((await raw('/samples/missing.png')).status, 404);
  const strata = await raw('/model.strata');
  assert.equal(strata.headers['content-type'], 'application/octet-stream');
  assert.deepEqual(new Uint8Array(strata.body), model);
});

test('/models lists the .strata files with their precisions, and unreadable ones with an error', async () => {
  const r = await raw('/models');
  assert.equal(r.status, 200);
  assert.match(String(r.headers['content-type']), /^application\/json/);
  const { models } = JSON.parse(r.body.toString()) as { models: ModelListing[] };
  assert.deepEqual(
    models.map((m) => m.name),
    ['broken.strata', 'model.strata'],
  );
  const [broken, good] = models;
  assert.equal(typeof broken.error, 'string');
  const info = inspectStrata(model);
  assert.equal(good.error, undefined);
  assert.equal(good.url, '/model.strata');
  assert.equal(good.size, model.length);
  assert.deepEqual(
    good.precisions,
    info.precisions.map((p) => ({ bits: p.bits, completeAt: p.completeAt })),
  );
  assert.deepEqual(good.architecture, info.architecture);
  // No dataset in this file's metadata, so no sample image for the page to fetch early.
  assert.equal(good.sample, null);
});

test("the page is told each model's sample image by its dataset, so it can fetch it before its script", () => {
  assert.equal(sampleImageFor({ dataset: 'cifar10-jpeg' }), '/samples/cifar10.png');
  assert.equal(sampleImageFor({ dataset: 'cifar100' }), null);
  assert.equal(sampleImageFor({ dataset: 'fashion-mnist' }), '/samples/fashion-mnist.png');
  assert.equal(sampleImageFor({ dataset: 'mnist' }), '/samples/mnist.png');
  assert.equal(sampleImageFor({ dataset: 'tiny-imagenet' }), null);
  assert.equal(sampleImageFor(null), null);
});

test('throttling paces the folder files to the given rate; the page assets are not throttled', async () => {
  const slow = await startServer({ root, port: 0, throttleKbps: 64 }); // 8,000 bytes/s
  try {
    const t0 = performance.now();
    const r = await fetch(`${slow.url}/blob.bin`);
    const body = new Uint8Array(await r.arrayBuffer());
    const ms = performance.now() - t0;
    assert.deepEqual(body, blob);
    // 1,000 bytes at 8,000 bytes/s: 125 ms at least.
    assert.ok(ms >= 120, `took ${ms.toFixed(0)} ms`);
    const partial = await fetch(`${slow.url}/blob.bin`, { headers: { Range: 'bytes=500-599' } });
    assert.equal(partial.status, 206);
    assert.deepEqual(new Uint8Array(await partial.arrayBuffer()), blob.subarray(500, 600));
    const t1 = performance.now();
    const page = await fetch(`${slow.url}/`);
    const size = (await page.arrayBuffer()).byteLength;
    // At 8,000 bytes/s this would take about half a second.
    assert.ok(size > 4000 && performance.now() - t1 < 400, `page: ${size} B in ${performance.now() - t1} ms`);
  } finally {
    await slow.close();
  }
  await assert.rejects(startServer({ root, throttleKbps: 0 }), RangeError);
});
