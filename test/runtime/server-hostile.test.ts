/**
 * What the server does with files and requests an attacker controls: a model claiming a huge header
 * costs the listing nothing, folder files are never active content on the server's origin, every
 * response forbids sniffing, `If-None-Match: *` is honoured, and `strata serve` checks its arguments
 * before it builds (writes) the browser bundle.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveModels } from '../../src/cli/commands/serve.js';
import { MAGIC } from '../../src/format/index.js';
import { noneMatch, startServer, UNTRUSTED_CSP, type ModelListing } from '../../src/runtime/server.js';
import { tinyModels } from '../fuzz/corpus.js';

const root = mkdtempSync(join(tmpdir(), 'strata-server-hostile-'));
writeFileSync(join(root, 'model.strata'), tinyModels()[0].strata);
writeFileSync(join(root, 'page.html'), '<script>fetch("/model.strata")</script>');
writeFileSync(
  join(root, 'icon.svg'),
  '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
);
// A sparse file whose preamble claims a 1.5 GB header: the listing used to allocate and read all of it.
const huge = join(root, 'huge.strata');
const preamble = new Uint8Array(24);
preamble.set(MAGIC);
new DataView(preamble.buffer).setUint16(8, 1, true);
new DataView(preamble.buffer).setUint32(12, 1_500_000_000, true);
writeFileSync(huge, preamble);
truncateSync(huge, 1_600_000_000);

const server = await startServer({ root, port: 0 });
after(async () => {
  await server.close();
  rmSync(root, { recursive: true, force: true });
});

test('the /models listing refuses a header claiming 1.5 GB from the preamble, without reading it', async () => {
  const before = process.memoryUsage().rss;
  const started = performance.now();
  const response = await fetch(`${server.url}/models`);
  const ms = performance.now() - started;
  const grown = process.memoryUsage().rss - before;
  assert.equal(response.status, 200);
  const { models } = (await response.json()) as { models: ModelListing[] };
  const entry = models.find((m) => m.name === 'huge.strata');
  assert.equal(entry?.error, '.strata header length 1500000000 exceeds the limit of 4194304 bytes');
  assert.equal(models.find((m) => m.name === 'model.strata')?.error, undefined);
  assert.ok(ms < 1000, `listing took ${ms} ms`);
  assert.ok(grown < 200 * 2 ** 20, `listing grew the server by ${Math.round(grown / 2 ** 20)} MB`);
});

test('folder .html and .svg are sandboxed: CSP without scripts, nosniff on every response', async () => {
  for (const path of ['/page.html', '/icon.svg', '/model.strata']) {
    const r = await fetch(`${server.url}${path}`);
    assert.equal(r.status, 200, path);
    assert.equal(r.headers.get('content-security-policy'), UNTRUSTED_CSP, path);
    assert.match(UNTRUSTED_CSP, /default-src 'none'.*sandbox/);
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff', path);
  }
  for (const path of ['/models', '/nothing-here', '/favicon.ico']) {
    const r = await fetch(`${server.url}${path}`);
    assert.equal(r.headers.get('x-content-type-options'), 'nosniff', path);
  }
});

test('If-None-Match: * and tag lists answer 304 for an existing file', async () => {
  const first = await fetch(`${server.url}/model.strata`);
  const etag = first.headers.get('etag') ?? '';
  await first.arrayBuffer();
  for (const header of ['*', ` ${etag}`, `"x", ${etag}`, `W/${etag}`]) {
    const r = await fetch(`${server.url}/model.strata`, { headers: { 'If-None-Match': header } });
    assert.equal(r.status, 304, header);
  }
  const r = await fetch(`${server.url}/model.strata`, { headers: { 'If-None-Match': '"other"' } });
  assert.equal(r.status, 200);
  await r.arrayBuffer();
  assert.equal(noneMatch(undefined, etag), false);
});

test('strata serve refuses a missing folder before it builds (writes) the browser bundle', async () => {
  const webRoot = mkdtempSync(join(tmpdir(), 'strata-webroot-'));
  try {
    mkdirSync(join(webRoot, 'src'));
    mkdirSync(join(webRoot, 'scripts'));
    writeFileSync(join(webRoot, 'src', 'client.ts'), '');
    const marker = join(webRoot, 'built');
    writeFileSync(
      join(webRoot, 'scripts', 'build-web.mjs'),
      `import { writeFileSync } from 'node:fs';\nexport async function buildWeb() { writeFileSync(${JSON.stringify(marker)}, 'x'); return 'x'; }\n`,
    );
    const io = { out: () => undefined, err: () => undefined };
    await assert.rejects(
      serveModels(join(root, 'no-such-folder'), { port: 0, host: '127.0.0.1', quiet: true }, io, webRoot),
      /no-such-folder: folder not found/,
    );
    await assert.rejects(
      serveModels(root, { port: 70000, host: '127.0.0.1', quiet: true }, io, webRoot),
      /Expected port in \[0, 65535\] but received 70000/,
    );
    assert.equal(existsSync(marker), false, 'the bundle was built before the arguments were checked');
  } finally {
    rmSync(webRoot, { recursive: true, force: true });
  }
});
