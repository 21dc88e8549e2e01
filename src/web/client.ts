/**
 * The page served by `strata serve`, built on the browser library (`openProgressive`): it classifies
 * an image with each precision of a .strata model as soon as that precision's bytes are there,
 * lowest first, on Strata's own TypeScript engine (no other runtime is downloaded), and keeps the
 * bytes it received in IndexedDB so that a reload, another image or a later visit costs no model
 * bytes.
 *
 * URL options (all optional):
 *   model=<file>     a model of the served folder (default: the first with a sample image of its classes)
 *   image=<url>      the image to classify (default: the sample image of the model's dataset)
 *   maxBits=<b>      stop at b bits (device budget)
 *   maxBytes=<n>     stop at the highest precision within n bytes of the file
 *   cache=off        neither read nor keep a cached copy (every visit downloads again)
 *   sw=off           do not install the service worker that keeps the page for return visits
 *
 * Every result row carries data-* attributes (bits, bytes, ms, class, probability, logits, ...) and
 * <body> data-state ('loading', 'done', 'error', 'choose'), which the tests and bench:web read.
 */
import {
  describePrecisionInfo,
  indexedDbStore,
  openProgressive,
  pixelsToInput,
  type ModelPrediction,
  type ProgressiveModel,
  type PrefixStore,
} from './index.js';
import { sampleImageFor } from './samples.js';

interface Listing {
  name: string;
  url: string;
  size: number;
  architecture?: Record<string, unknown>;
  precisions?: { bits: number; completeAt: number }[];
  metadata?: Record<string, unknown> | null;
  error?: string;
}

interface Pixels {
  rgba: Uint8ClampedArray;
  height: number;
  width: number;
}

const params = new URLSearchParams(location.search);
/** This script's URL (`/client.js?v=<version>`), read while it runs. */
const scriptUrl = document.currentScript instanceof HTMLScriptElement ? document.currentScript.src : null;

function element<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (found === null) throw new Error(`page element #${id} is missing`);
  return found as T;
}

function setState(state: 'loading' | 'done' | 'error' | 'choose'): void {
  document.body.dataset.state = state;
}

function showError(e: unknown): void {
  const message = e instanceof Error ? e.message : String(e);
  const box = element('error');
  box.textContent = message;
  box.dataset.error = message;
  setState('error');
  console.error(e);
}

/** Bytes in KiB (1,024 bytes), the one unit of the page. */
const kib = (bytes: number): string => `${(bytes / 1024).toFixed(1)} KiB`;

function integerParam(name: string): number | undefined {
  const text = params.get(name);
  if (text === null || text === '') return undefined;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`Expected a positive integer for ${name} but received '${text}'`);
  }
  return value;
}

/**
 * What the page's inline script started (see index.html): the IndexedDB open request, and the reads
 * of the listed models' cached bytes by URL.
 */
function earlyCache(): { opening?: IDBOpenDBRequest; prefetched?: Map<string, Promise<unknown>> } {
  const early = (window as { strataModelCache?: { open?: unknown; prefixes?: unknown } }).strataModelCache;
  if (!(early?.open instanceof IDBOpenDBRequest)) return {};
  return {
    opening: early.open,
    ...(early.prefixes instanceof Map ? { prefetched: early.prefixes as Map<string, Promise<unknown>> } : {}),
  };
}

/** The listing `strata serve` writes into the page (or, elsewhere, GET /models). */
async function readListing(): Promise<Listing[]> {
  const inline = document.getElementById('strata-models')?.textContent?.trim();
  if (inline !== undefined && inline !== '' && !inline.startsWith('<!--')) {
    return (JSON.parse(inline) as { models: Listing[] }).models;
  }
  const response = await fetch('/models');
  if (!response.ok) throw new Error(`GET /models: ${response.status} ${response.statusText}`);
  return ((await response.json()) as { models: Listing[] }).models;
}

function showModels(models: Listing[], current: string): void {
  const list = element('models');
  list.replaceChildren('Models: ');
  for (const m of models) {
    const link = document.createElement('a');
    const next = new URLSearchParams(params);
    next.set('model', m.name);
    next.delete('image');
    link.href = `?${next.toString()}`;
    link.textContent = m.name;
    if (m.name === current) link.setAttribute('aria-current', 'true');
    list.append(link);
  }
}

async function decodePixels(blob: Blob): Promise<Pixels> {
  // Exact pixel values: no colour management, no premultiplication.
  const bitmap = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  const canvas = document.createElement('canvas');
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  if (ctx === null) throw new Error('canvas 2d context unavailable');
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
  return { rgba: data, height: canvas.height, width: canvas.width };
}

async function fetchPixels(url: string): Promise<Pixels> {
  // The page's inline script may have fetched this image already (the default model's sample).
  const early = (window as { strataImage?: { url: string; blob: Promise<Blob | null> } }).strataImage;
  const prefetched = early !== undefined && early.url === url ? await early.blob.catch(() => null) : null;
  if (prefetched !== null) return decodePixels(prefetched);
  const response = await fetch(url);
  if (!response.ok) throw new Error(`GET ${url}: ${response.status} ${response.statusText}`);
  return decodePixels(await response.blob());
}

function showPreview(pixels: Pixels): void {
  const canvas = element<HTMLCanvasElement>('preview');
  const ctx = canvas.getContext('2d');
  if (ctx === null) return;
  const source = document.createElement('canvas');
  source.width = pixels.width;
  source.height = pixels.height;
  source
    .getContext('2d')
    ?.putImageData(new ImageData(new Uint8ClampedArray(pixels.rgba), pixels.width), 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(source, 0, 0, canvas.width, canvas.height);
}

/** Lets the browser paint a row before the next precision is classified. */
const nextFrame = (): Promise<void> => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));

function showRow(model: ProgressiveModel, p: ModelPrediction, ms: number, transferred: number): void {
  const best = p.top[0];
  const expected = describePrecisionInfo(model.precisionInfo ?? undefined);
  const row = document.createElement('tr');
  row.className = 'result';
  Object.assign(row.dataset, {
    bits: String(model.bits),
    bytes: String(model.bytes),
    total: String(model.fileLength),
    transferred: String(transferred),
    fromCache: String(model.fromCache),
    class: String(best.index),
    label: best.label,
    probability: String(best.probability),
    ms: String(Math.round(ms)),
    loadMs: String(Math.round(p.timings.loadMs)),
    runMs: String(Math.round(p.timings.runMs)),
    expected,
    logits: JSON.stringify(Array.from(p.logits.subarray(0, p.numClasses))),
  });
  const cells: [string, string][] = [
    [`${model.bits} bits`, 'bits'],
    [expected, 'expected'],
    [kib(model.bytes), 'num'],
    [`${Math.round(ms)} ms`, 'num'],
    [`${best.label}`, 'prediction'],
    [`${(100 * best.probability).toFixed(1)} %`, 'num'],
    [p.top.map((t) => `${t.label} ${(100 * t.probability).toFixed(1)} %`).join(', '), 'top'],
    [model.fromCache ? 'cache' : 'network', 'source'],
  ];
  for (const [text, kind] of cells) {
    const cell = document.createElement('td');
    cell.textContent = text;
    cell.className = kind;
    row.append(cell);
  }
  const body = element('results').querySelector('tbody');
  const existing = body?.querySelector(`tr[data-bits="${model.bits}"]`);
  if (existing) existing.replaceWith(row);
  else body?.append(row);
  element('current').textContent =
    `${best.label} (${(100 * best.probability).toFixed(1)} %) at ${model.bits} bits, ` +
    `from ${kib(model.bytes)} of ${kib(model.fileLength)}`;
}

function describeModel(entry: Listing | undefined, name: string): string {
  const arch = entry?.architecture;
  const meta = entry?.metadata;
  const parts = [name];
  if (typeof arch?.name === 'string') parts.push(arch.name);
  if (typeof meta?.dataset === 'string') parts.push(meta.dataset);
  if (entry !== undefined) parts.push(kib(entry.size));
  return parts.join(' · ');
}

function setupBudgetForm(entry: Listing | undefined): void {
  const form = element<HTMLFormElement>('budget');
  const select = element<HTMLSelectElement>('max-bits');
  for (const p of entry?.precisions ?? []) {
    const option = document.createElement('option');
    option.value = String(p.bits);
    option.textContent = `${p.bits} bits (${kib(p.completeAt)})`;
    select.append(option);
  }
  select.value = params.get('maxBits') ?? '';
  const bytesInput = element<HTMLInputElement>('max-kib');
  const maxBytes = params.get('maxBytes');
  if (maxBytes !== null && maxBytes !== '') bytesInput.value = String(Number(maxBytes) / 1024);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const next = new URLSearchParams(params);
    if (select.value === '') next.delete('maxBits');
    else next.set('maxBits', select.value);
    const kibValue = Number(bytesInput.value);
    if (bytesInput.value === '' || !(kibValue > 0)) next.delete('maxBytes');
    else next.set('maxBytes', String(Math.floor(kibValue * 1024)));
    location.search = next.toString();
  });
}

/**
 * Registers the page's service worker (`/sw.js`, named by this script's version), which keeps the
 * page and this script for return visits; resolves once it is active (or could not be installed:
 * the page works without it). Called after the first prediction, so that it never competes with
 * the basic layer for the link.
 */
async function installServiceWorker(): Promise<void> {
  if (!('serviceWorker' in navigator) || params.get('sw') === 'off') return;
  try {
    const version = scriptUrl === null ? null : new URL(scriptUrl).searchParams.get('v');
    if (version === null) return;
    const registration = await navigator.serviceWorker.register(`/sw.js?v=${encodeURIComponent(version)}`);
    const pending = registration.installing ?? registration.waiting;
    if (pending === null) return;
    await new Promise<void>((settled) => {
      const check = () => {
        if (pending.state === 'activated' || pending.state === 'redundant') settled();
      };
      pending.addEventListener('statechange', check);
      check();
      setTimeout(settled, 5000);
    });
  } catch (e) {
    console.warn(
      'strata: the service worker did not install; return visits load the page from the network',
      e,
    );
  }
}

/** Moments of the page's first load (ms from navigation), kept in <body data-marks> for the benchmark. */
const marks: Record<string, number> = {};
function mark(name: string): void {
  marks[name] ??= Math.round(performance.now());
  document.body.dataset.marks = JSON.stringify(marks);
}

async function start(): Promise<void> {
  mark('script');
  setState('loading');
  const maxBits = integerParam('maxBits');
  const maxBytes = integerParam('maxBytes');
  const store: PrefixStore | null =
    params.get('cache') === 'off' || typeof indexedDB === 'undefined'
      ? null
      : indexedDbStore('strata-models', indexedDB, {
          ...earlyCache(),
          // A return visit (the service worker answered) has the model cached, most likely: wait for
          // IndexedDB instead of first asking localStorage (a synchronous round trip to the browser).
          checkMarkers: navigator.serviceWorker?.controller == null,
        });
  const models = (await readListing()).filter((m) => m.error === undefined);
  mark('listing');
  const named = params.get('model');
  const modelName =
    named !== null && named !== ''
      ? named
      : (models.find((m) => sampleImageFor(m.metadata) !== null) ?? models[0])?.name;
  if (modelName === undefined) {
    element('models').textContent = 'No .strata model files in the served folder.';
    setState('choose');
    return;
  }
  showModels(models, modelName);
  const entry = models.find((m) => m.name === modelName);
  element('model-name').textContent = describeModel(entry, modelName);
  setupBudgetForm(entry);

  const imageUrl = params.get('image') || sampleImageFor(entry?.metadata);
  let pixels: Promise<Pixels> | null = imageUrl === null ? null : fetchPixels(imageUrl);
  element('image-note').textContent =
    imageUrl === null
      ? 'This model has no sample image; choose one of its classes.'
      : params.get('image')
        ? `Image: ${imageUrl}`
        : `Sample image from the ${String(entry?.metadata?.dataset)} held-out data.`;

  mark('openProgressive');
  const modelUrl = entry?.url ?? `/${modelName.split('/').map(encodeURIComponent).join('/')}`;
  const progress = element<HTMLProgressElement>('progress');
  const load = openProgressive(modelUrl, {
    store,
    ...(maxBits !== undefined ? { maxBits } : {}),
    ...(maxBytes !== undefined ? { maxBytes } : {}),
    // The listing says where the basic layer ends: header and basic layer in one request.
    ...(entry?.precisions?.[0] ? { firstRequestBytes: entry.precisions[0].completeAt } : {}),
    onProgress: ({ bytes, fileLength, fromCache, transferred }) => {
      progress.max = fileLength ?? entry?.size ?? 1;
      progress.value = bytes;
      element('bytes').textContent =
        `${kib(bytes)}${fileLength === null ? '' : ` of ${kib(fileLength)}`} held ` +
        `(${kib(fromCache)} from cache, ${kib(transferred)} downloaded)`;
      Object.assign(document.body.dataset, {
        received: String(bytes),
        fromCache: String(fromCache),
        transferred: String(transferred),
      });
    },
  });

  const loaded: ProgressiveModel[] = [];
  /** Times are from `since` (0: the navigation). */
  const classifyAll = async (source: Pixels, list: readonly ProgressiveModel[], since: number) => {
    for (const model of list) {
      const input = pixelsToInput(source.rgba, source.height, source.width, model.inputSpec);
      const p = model.predict(input);
      showRow(model, p, performance.now() - since, load.transferredBytes);
      await nextFrame();
    }
  };

  element<HTMLInputElement>('upload').addEventListener('change', (event) => {
    const file = (event.target as HTMLInputElement).files?.[0];
    if (file === undefined) return;
    // A new image: the models already loaded classify it; no model byte is downloaded again.
    setState('loading');
    const since = performance.now();
    pixels = decodePixels(file);
    pixels
      .then(async (p) => {
        showPreview(p);
        element('image-note').textContent = `Image: ${file.name}`;
        await classifyAll(p, [...loaded], since);
        setState('done');
      })
      .catch(showError);
  });
  element('clear-cache').addEventListener('click', () => {
    const removal = store === null ? Promise.resolve() : store.delete(new URL(modelUrl, location.href).href);
    removal.then(() => location.reload()).catch(showError);
  });

  let previewShown = false;
  let worker: Promise<void> | null = null;
  void pixels?.then(() => mark('image'));
  for await (const model of load) {
    mark('firstModel');
    loaded.push(model);
    document.body.dataset.total = String(model.fileLength);
    if (pixels === null) continue;
    // Build the network while the image may still be decoding (off the main thread), not after it.
    model.load();
    const source = await pixels;
    if (!previewShown) {
      showPreview(source);
      previewShown = true;
    }
    await classifyAll(source, [model], 0);
    if (document.body.dataset.firstMs === undefined) {
      document.body.dataset.firstMs = String(Math.round(performance.now()));
    }
    worker ??= installServiceWorker();
  }
  // 'done' includes the return visit's readiness: the page and script are kept by then.
  await (worker ?? installServiceWorker());
  document.body.dataset.doneMs = String(Math.round(performance.now()));
  document.body.dataset.requests = JSON.stringify(load.requests);
  setState(pixels === null ? 'choose' : 'done');
}

start().catch(showError);
