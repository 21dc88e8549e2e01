/**
 * A small HTTP server for progressive model delivery: the files of one folder (the .strata models,
 * images) with byte-range support, the browser page and its bundled client, the page's sample
 * images, and a JSON listing of the models.
 *
 * Routes: `/` (the page, with the model listing written into it), `/client.js` (the esbuild bundle
 * of src/web/client.ts; cached for good when asked for with the version the page names), `/sw.js`
 * (the page's service worker, src/web/service-worker.ts, which keeps the page and client for return
 * visits),
 * `/samples/<file>` (src/web/samples), `/models` (listing), anything else a file of the folder.
 *
 * Throttling paces the writes of the folder's files only, so a test can simulate a slow link for
 * the model alone (bench:web throttles the browser itself instead, every byte included).
 */
import { createReadStream, existsSync, readdirSync, realpathSync, statSync } from 'node:fs';
import type { Stats } from 'node:fs';
import { open, readFile, readdir, realpath, stat } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { inspectStrata, StrataFormatError } from '../format/index.js';
import { parsePreamble } from '../format/header.js';
import { PREAMBLE_BYTES } from '../format/layout.js';
import { packageRoot } from '../engine/backend-native.js';
import { sampleImageFor } from '../web/samples.js';

export interface StrataServerOptions {
  /** Folder whose files are served (the .strata models, sample images). */
  root: string;
  /** Default '127.0.0.1'. */
  host?: string;
  /** Default 8080; 0 picks a free port. */
  port?: number;
  /** Bandwidth for the folder's files in kilobits (1000 bits) per second; default unlimited. */
  throttleKbps?: number;
  /** Package root holding src/web/index.html and dist/web/client.js; default: found from this module. */
  webRoot?: string;
  /** One line per request (method, path, Range, status, time). */
  log?: (line: string) => void;
}

export interface StrataServer {
  /** e.g. http://127.0.0.1:8080 */
  readonly url: string;
  readonly port: number;
  readonly server: Server;
  close(): Promise<void>;
}

export interface ModelListing {
  name: string;
  url: string;
  size: number;
  architecture?: Record<string, unknown>;
  quantization?: Record<string, unknown>;
  precisions?: { bits: number; completeAt: number }[];
  metadata?: Record<string, unknown> | null;
  /** The page's sample image of the model's classes (`/samples/...`), or null when it has none. */
  sample?: string | null;
  /** Set instead of the fields above when the file is not a readable .strata file. */
  error?: string;
}

/** A satisfiable single range, inclusive at both ends. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * Interprets a Range header against a representation of `size` bytes (RFC 9110, section 14):
 * a range to send, 'unsatisfiable' (answer 416), or null to ignore the header and send everything
 * (no header, another unit, several ranges, or a syntactically invalid one — a server may ignore
 * a Range it does not understand).
 */
export function parseRange(header: string | undefined, size: number): ByteRange | 'unsatisfiable' | null {
  if (header === undefined) return null;
  const match = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (match === null) return null;
  const [, first, last] = match;
  if (first === '' && last === '') return null;
  if (first === '') {
    // Suffix range: the last n bytes.
    const n = Number(last);
    if (!Number.isSafeInteger(n)) return null;
    if (n === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(first);
  const end = last === '' ? Infinity : Number(last);
  if (!Number.isSafeInteger(start) || (last !== '' && !Number.isSafeInteger(end))) return null;
  if (end < start) return null;
  if (start >= size) return 'unsatisfiable';
  return { start, end: Math.min(end, size - 1) };
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.wasm': 'application/wasm',
  '.onnx': 'application/octet-stream',
  '.strata': 'application/octet-stream',
};

export function contentType(path: string): string {
  return CONTENT_TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream';
}

export { packageRoot };

/** Where `scripts/build-web.mjs` writes the browser bundle. */
export function clientBundlePath(webRoot = packageRoot()): string {
  return join(webRoot, 'dist', 'web', 'client.js');
}

/** Where `scripts/build-web.mjs` writes the page's service worker. */
export function serviceWorkerPath(webRoot = packageRoot()): string {
  return join(webRoot, 'dist', 'web', 'sw.js');
}

function newestSourceMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSourceMtime(path));
    else if (/\.(ts|mjs)$/.test(entry.name)) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

/**
 * Builds dist/web/client.js and dist/web/sw.js with scripts/build-web.mjs (esbuild) when either is
 * missing or older than the TypeScript sources; returns the client's path. Where esbuild is not installed (a production
 * install) an existing bundle is used as it is.
 */
export async function ensureClientBundle(
  webRoot = packageRoot(),
  warn: (message: string) => void = () => undefined,
): Promise<string> {
  const bundle = clientBundlePath(webRoot);
  const worker = serviceWorkerPath(webRoot);
  const sources = join(webRoot, 'src');
  const builtAt =
    existsSync(bundle) && existsSync(worker)
      ? Math.min(statSync(bundle).mtimeMs, statSync(worker).mtimeMs)
      : -1;
  if (builtAt >= 0 && (!existsSync(sources) || newestSourceMtime(sources) <= builtAt)) return bundle;
  let build: {
    buildWeb(options: { outfile?: string; quiet?: boolean; minify?: boolean }): Promise<string>;
    buildServiceWorker(options: { outfile?: string; quiet?: boolean; minify?: boolean }): Promise<string>;
  };
  try {
    build = (await import(pathToFileURL(join(webRoot, 'scripts', 'build-web.mjs')).href)) as typeof build;
    await build.buildServiceWorker({ outfile: worker, quiet: true, minify: true });
    return await build.buildWeb({ outfile: bundle, quiet: true, minify: true });
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    if (existsSync(bundle)) {
      warn(`could not rebuild ${bundle} (${reason}); serving the existing one`);
      return bundle;
    }
    throw new Error(
      `cannot build the browser client ${bundle} (${reason}); ` +
        'run `npm install` (esbuild is a dev dependency) and `node scripts/build-web.mjs`',
    );
  }
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * The request path as segments, refusing anything that could leave the folder: `..` and `.`
 * segments (raw or percent-encoded), backslashes, NUL bytes, undecodable escapes and empty segments.
 */
export function safeSegments(rawPath: string): string[] {
  let decoded: string;
  try {
    decoded = decodeURIComponent(rawPath);
  } catch {
    throw new HttpError(400, 'malformed percent-encoding in path');
  }
  if (!decoded.startsWith('/')) throw new HttpError(400, 'path must start with /');
  if (decoded.includes('\0') || decoded.includes('\\'))
    throw new HttpError(400, 'forbidden character in path');
  const segments = decoded.slice(1).split('/');
  for (const s of segments) {
    if (s === '..' || s === '.') throw new HttpError(400, 'path traversal refused');
    if (s === '') throw new HttpError(404, 'not found');
  }
  return segments;
}

interface FileTarget {
  path: string;
  throttled: boolean;
  cache: string;
  /**
   * A file of the served folder: anyone may have put it there, so it is never active content on
   * this origin (an .html or .svg could otherwise script the page and read every model).
   */
  untrusted?: boolean;
}

/** Sent with every folder file: no scripts, no plugins, no same-origin access, whatever the type. */
export const UNTRUSTED_CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox";

async function statFile(path: string): Promise<Stats | null> {
  try {
    const s = await stat(path);
    return s.isFile() ? s : null;
  } catch {
    return null;
  }
}

/**
 * If-None-Match (RFC 9110, 13.1.2): `*` matches any current representation; otherwise a list of
 * entity tags compared weakly (a `W/` prefix is ignored).
 */
export function noneMatch(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  if (header.trim() === '*') return true;
  const strip = (tag: string) => tag.trim().replace(/^W\//, '');
  return header.split(',').some((tag) => strip(tag) === strip(etag));
}

function etagOf(size: number, mtimeMs: number): string {
  return `"${size.toString(16)}-${Math.floor(mtimeMs).toString(16)}"`;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Writes bytes [start, end] of a file. Throttled writes go out in slices of 1/20 s of bandwidth,
 * each only once the link could have carried it since the response began, so at no time have more
 * than rate x elapsed bytes been sent (the whole file takes at least size / rate).
 */
async function sendBytes(
  res: ServerResponse,
  path: string,
  start: number,
  end: number,
  bytesPerSecond: number | null,
): Promise<void> {
  if (end < start) {
    res.end();
    return;
  }
  if (bytesPerSecond === null) {
    await new Promise<void>((done) => {
      const stream = createReadStream(path, { start, end });
      stream.on('error', () => {
        res.destroy();
        done();
      });
      res.on('close', () => {
        stream.destroy();
        done();
      });
      stream.pipe(res);
    });
    return;
  }
  const slice = Math.max(512, Math.floor(bytesPerSecond / 20));
  const handle = await open(path, 'r');
  let aborted = false;
  res.on('close', () => {
    aborted = true;
  });
  try {
    const begun = performance.now();
    let sent = 0;
    const total = end - start + 1;
    while (sent < total && !aborted) {
      const n = Math.min(slice, total - sent);
      const buffer = Buffer.allocUnsafe(n);
      const { bytesRead } = await handle.read(buffer, 0, n, start + sent);
      if (bytesRead === 0) break;
      const wait = begun + (1000 * (sent + bytesRead)) / bytesPerSecond - performance.now();
      if (wait > 0) await sleep(wait);
      if (aborted) break;
      const flushed = res.write(buffer.subarray(0, bytesRead));
      sent += bytesRead;
      if (!flushed && !aborted) await new Promise<void>((r) => res.once('drain', r).once('close', r));
    }
  } finally {
    await handle.close();
  }
  if (!aborted) res.end();
}

async function serveFile(
  req: IncomingMessage,
  res: ServerResponse,
  target: FileTarget,
  bytesPerSecond: number | null,
): Promise<number> {
  const info = await statFile(target.path);
  if (info === null) throw new HttpError(404, 'not found');
  const size = info.size;
  const etag = etagOf(size, info.mtimeMs);
  res.setHeader('Accept-Ranges', 'bytes');
  res.setHeader('Content-Type', contentType(target.path));
  res.setHeader('ETag', etag);
  res.setHeader('Last-Modified', info.mtime.toUTCString());
  res.setHeader('Cache-Control', target.cache);
  if (target.untrusted) res.setHeader('Content-Security-Policy', UNTRUSTED_CSP);
  if (noneMatch(req.headers['if-none-match'], etag)) {
    res.statusCode = 304;
    res.end();
    return 304;
  }
  // If-Range: a range only applies to the representation the client already holds part of.
  const ifRange = req.headers['if-range'];
  const rangeHeader =
    ifRange === undefined || ifRange === etag || ifRange === info.mtime.toUTCString()
      ? req.headers.range
      : undefined;
  const range = parseRange(rangeHeader, size);
  if (range === 'unsatisfiable') {
    res.statusCode = 416;
    res.setHeader('Content-Range', `bytes */${size}`);
    res.setHeader('Content-Length', '0');
    res.end();
    return 416;
  }
  const start = range?.start ?? 0;
  const end = range?.end ?? size - 1;
  res.statusCode = range === null ? 200 : 206;
  if (range !== null) res.setHeader('Content-Range', `bytes ${start}-${end}/${size}`);
  res.setHeader('Content-Length', String(end - start + 1));
  if (req.method === 'HEAD') {
    res.end();
    return res.statusCode;
  }
  await sendBytes(res, target.path, start, end, target.throttled ? bytesPerSecond : null);
  return res.statusCode;
}

/**
 * Reads just enough of a .strata file to describe it. The preamble is validated by the format's own
 * check (magic, version, header length within maxHeaderBytes) before the header is read, so a file
 * claiming a huge header costs nothing (each listing once allocated whatever a file claimed).
 */
async function describeModel(path: string, name: string, size: number): Promise<ModelListing> {
  const entry: ModelListing = { name, url: `/${name.split('/').map(encodeURIComponent).join('/')}`, size };
  const handle = await open(path, 'r');
  try {
    const preamble = new Uint8Array(PREAMBLE_BYTES);
    const { bytesRead } = await handle.read(preamble, 0, PREAMBLE_BYTES, 0);
    const { dataStart } = parsePreamble(preamble.subarray(0, bytesRead));
    const head = new Uint8Array(Math.min(size, dataStart));
    await handle.read(head, 0, head.length, 0);
    const info = inspectStrata(head);
    return {
      ...entry,
      architecture: info.architecture,
      quantization: info.quantization,
      precisions: info.precisions.map((p) => ({ bits: p.bits, completeAt: p.completeAt })),
      metadata: info.metadata,
      // The page fetches the default model's sample image before its script runs.
      sample: sampleImageFor(info.metadata),
    };
  } catch (e) {
    if (!(e instanceof StrataFormatError)) throw e;
    return { ...entry, error: e.code === 'BAD_MAGIC' ? 'not a .strata file (bad magic)' : e.message };
  } finally {
    await handle.close();
  }
}

/** The .strata files directly in `root`, by name, each described from its header. */
export async function listModels(root: string): Promise<ModelListing[]> {
  const names = (await readdir(root, { withFileTypes: true }))
    .filter((d) => d.isFile() && d.name.endsWith('.strata') && !d.name.startsWith('.'))
    .map((d) => d.name)
    .sort();
  const out: ModelListing[] = [];
  for (const name of names) {
    const path = join(root, name);
    const info = await statFile(path);
    if (info !== null) out.push(await describeModel(path, name, info.size));
  }
  return out;
}

function sendText(
  res: ServerResponse,
  status: number,
  text: string,
  type = 'text/plain; charset=utf-8',
): void {
  const body = Buffer.from(text);
  res.statusCode = status;
  res.setHeader('Content-Type', type);
  res.setHeader('Content-Length', String(body.length));
  res.end(body);
}

/**
 * Checks the options and the folder before anything else happens (building the client bundle
 * included); returns the folder's real path.
 */
export async function checkServerOptions(options: StrataServerOptions): Promise<string> {
  checkOptions(options);
  if (!existsSync(options.root)) throw new Error(`${options.root}: folder not found`);
  const root = realpathSync(resolve(options.root));
  if (!(await stat(root)).isDirectory()) throw new Error(`${options.root} is not a folder`);
  return root;
}

function checkOptions(options: StrataServerOptions): void {
  if (options === null || typeof options !== 'object') {
    throw new TypeError(`Expected object for options but received ${String(options)}`);
  }
  if (typeof options.root !== 'string' || options.root === '') {
    throw new TypeError(`Expected non-empty string for root but received ${String(options.root)}`);
  }
  const port = options.port;
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) {
    throw new RangeError(`Expected port in [0, 65535] but received ${String(port)}`);
  }
  const kbps = options.throttleKbps;
  if (kbps !== undefined && !(typeof kbps === 'number' && Number.isFinite(kbps) && kbps > 0)) {
    throw new RangeError(`Expected throttleKbps in (0, inf) but received ${String(kbps)}`);
  }
}

const gzipped = new Map<string, Buffer>();

/**
 * Sends a page asset whole, gzip-compressed when the client accepts it (the client bundle shrinks
 * to about a third, which is time before the first prediction on a slow link). With an ETag, a
 * matching If-None-Match gets 304. Compressed copies are kept in memory by ETag.
 */
function sendAsset(
  req: IncomingMessage,
  res: ServerResponse,
  asset: { body: Buffer; type: string; cache: string; etag: string | null },
): number {
  res.setHeader('Content-Type', asset.type);
  res.setHeader('Cache-Control', asset.cache);
  res.setHeader('Vary', 'Accept-Encoding');
  if (asset.etag !== null) {
    res.setHeader('ETag', asset.etag);
    if (req.headers['if-none-match'] === asset.etag) {
      res.statusCode = 304;
      res.end();
      return 304;
    }
  }
  let body = asset.body;
  if (/\bgzip\b/.test(String(req.headers['accept-encoding'] ?? '')) && body.length > 1024) {
    const key = asset.etag;
    const packed = (key !== null ? gzipped.get(key) : undefined) ?? gzipSync(body, { level: 9 });
    if (key !== null) gzipped.set(key, packed);
    res.setHeader('Content-Encoding', 'gzip');
    body = packed;
  }
  res.statusCode = 200;
  res.setHeader('Content-Length', String(body.length));
  if (req.method === 'HEAD') res.end();
  else res.end(body);
  return 200;
}

/** A version of the client bundle (its size and modification time), for the page's cache-busting URL. */
async function bundleVersion(bundle: string): Promise<string | null> {
  const info = await statFile(bundle);
  return info === null ? null : `${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}`;
}

/**
 * The page with the model listing written into it (one request less before the first prediction)
 * and the client's URL carrying the bundle's version (so a browser may keep it cached for good).
 */
async function renderPage(webRoot: string, root: string): Promise<string> {
  const template = await readFile(join(webRoot, 'src', 'web', 'index.html'), 'utf8');
  const listing = JSON.stringify({ models: await listModels(root) }).replace(/</g, '\\u003c');
  const version = (await bundleVersion(clientBundlePath(webRoot))) ?? 'missing';
  return template
    .replace('<!--strata:models-->', () => listing)
    .replace('<!--strata:version-->', () => encodeURIComponent(version));
}

/** Starts the server; resolves once it listens. */
export async function startServer(options: StrataServerOptions): Promise<StrataServer> {
  const root = await checkServerOptions(options);
  const webRoot = options.webRoot ?? packageRoot();
  const bytesPerSecond = options.throttleKbps === undefined ? null : (options.throttleKbps * 1000) / 8;
  const log = options.log;

  const folderFile = async (segments: string[]): Promise<FileTarget> => {
    if (segments.some((s) => s.startsWith('.'))) throw new HttpError(404, 'not found');
    const path = join(root, ...segments);
    let real: string;
    try {
      real = await realpath(path);
    } catch {
      throw new HttpError(404, 'not found');
    }
    // A symbolic link may point anywhere; only what resolves inside the folder is served.
    if (real !== root && !real.startsWith(root + sep)) throw new HttpError(404, 'not found');
    return { path: real, throttled: true, cache: 'no-cache', untrusted: true };
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<number> => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      throw new HttpError(405, 'method not allowed');
    }
    const [rawPath, query = ''] = (req.url ?? '/').split('#')[0].split('?');
    if (rawPath === '/' || rawPath === '/index.html') {
      const page = Buffer.from(await renderPage(webRoot, root));
      return sendAsset(req, res, {
        body: page,
        type: 'text/html; charset=utf-8',
        cache: 'no-cache',
        etag: null,
      });
    }
    if (rawPath === '/client.js' || rawPath === '/client.js.map') {
      const bundle = clientBundlePath(webRoot) + (rawPath.endsWith('.map') ? '.map' : '');
      if (!existsSync(bundle)) {
        throw new HttpError(404, 'client bundle not built: run `node scripts/build-web.mjs`');
      }
      const asked = new URLSearchParams(query).get('v');
      const current = await bundleVersion(clientBundlePath(webRoot));
      // The page names the bundle's version: that URL's content never changes, so it may be kept.
      const cache = asked !== null && asked === current ? 'public, max-age=31536000, immutable' : 'no-cache';
      const info = await statFile(bundle);
      if (info === null) throw new HttpError(404, 'not found');
      const etag = etagOf(info.size, info.mtimeMs);
      const type = contentType(bundle);
      return sendAsset(req, res, { body: await readFile(bundle), type, cache, etag });
    }
    if (rawPath === '/sw.js') {
      // The page's service worker: always checked with the server (a browser updates it by its URL).
      const worker = serviceWorkerPath(webRoot);
      const info = await statFile(worker);
      if (info === null)
        throw new HttpError(404, 'service worker not built: run `node scripts/build-web.mjs`');
      const etag = etagOf(info.size, info.mtimeMs);
      return sendAsset(req, res, {
        body: await readFile(worker),
        type: contentType(worker),
        cache: 'no-cache',
        etag,
      });
    }
    if (rawPath === '/favicon.ico') {
      // Browsers ask for it on every page load; an empty answer keeps their consoles quiet.
      res.statusCode = 204;
      res.end();
      return 204;
    }
    if (rawPath === '/models' || rawPath === '/models.json') {
      const body = JSON.stringify({ models: await listModels(root) });
      res.setHeader('Cache-Control', 'no-cache');
      if (req.method === 'HEAD') {
        res.statusCode = 200;
        res.setHeader('Content-Type', 'application/json; charset=utf-8');
        res.setHeader('Content-Length', String(Buffer.byteLength(body)));
        res.end();
        return 200;
      }
      sendText(res, 200, body, 'application/json; charset=utf-8');
      return 200;
    }
    const segments = safeSegments(rawPath);
    if (segments[0] === 'samples') {
      if (segments.length !== 2 || segments[1].startsWith('.')) throw new HttpError(404, 'not found');
      return serveFile(
        req,
        res,
        {
          path: join(webRoot, 'src', 'web', 'samples', segments[1]),
          throttled: false,
          cache: 'public, max-age=86400',
        },
        null,
      );
    }
    return serveFile(req, res, await folderFile(segments), bytesPerSecond);
  };

  const server = createServer((req, res) => {
    const started = performance.now();
    // Browsers must take every Content-Type as given, never guess an active type from the bytes.
    res.setHeader('X-Content-Type-Options', 'nosniff');
    handle(req, res)
      .then((status) => {
        const range = req.headers.range === undefined ? '' : ` ${req.headers.range}`;
        log?.(`${req.method} ${req.url}${range} ${status} ${Math.round(performance.now() - started)} ms`);
      })
      .catch((e: unknown) => {
        const status = e instanceof HttpError ? e.status : 500;
        const message = e instanceof Error ? e.message : String(e);
        log?.(`${req.method} ${req.url} ${status} ${message}`);
        if (res.headersSent) res.destroy();
        else sendText(res, status, `${status} ${message}\n`);
      });
  });
  // Requests the HTTP parser refuses (bytes outside the URL alphabet, oversized headers) never
  // reach the handler; Node's default answer lacks nosniff, so answer them here.
  server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
    if (!socket.writable) {
      socket.destroy();
      return;
    }
    const status =
      error.code === 'HPE_HEADER_OVERFLOW' ? 431 : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    // No body: the method is unknown (the request did not parse), and a HEAD answer must have none.
    socket.end(
      `HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : status === 408 ? 'Request Timeout' : 'Bad Request'}\r\n` +
        'X-Content-Type-Options: nosniff\r\nConnection: close\r\nContent-Length: 0\r\n\r\n',
    );
  });
  // A client that trickles its request must not hold a connection open for minutes.
  server.headersTimeout = 20_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((done, fail) => {
    server.once('error', fail);
    server.listen(options.port ?? 8080, options.host ?? '127.0.0.1', () => {
      server.off('error', fail);
      done();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    server,
    close: () =>
      new Promise<void>((done) => {
        server.close(() => done());
        server.closeAllConnections();
      }),
  };
}
