/**
 * The page served by `strata serve`: downloads a .strata model as one streaming GET and classifies
 * an image with every precision as soon as its bytes have arrived, appending one table row per
 * precision (with data-* attributes that tests read).
 *
 * Query parameters: `model` (a file name from /models; default the first listed), `image` (an image
 * URL; default a drawn digit), `until` (stop after this precision).
 *
 * onnxruntime-web is loaded at run time from /ort/ (its wasm build, one thread, so the page needs no
 * cross-origin isolation); the rest of Strata is bundled in by scripts/build-web.mjs.
 */
import type * as OrtWeb from 'onnxruntime-web';
import type { StrataHeader } from '../format/index.js';
import {
  classLabels,
  imageToInput,
  inputSpecFor,
  softmax,
  toChannels,
  topClasses,
  type InputSpec,
} from './preprocess.js';
import {
  runProgressive,
  warmUpOrt,
  type ImageBatch,
  type OrtLike,
  type PrecisionResult,
} from './progressive.js';

type OrtModule = typeof OrtWeb;

const ORT_URL = '/ort/ort.wasm.min.mjs';
const SESSION_OPTIONS = { executionProviders: ['wasm'] };

function element<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (found === null) throw new Error(`page element #${id} is missing`);
  return found as T;
}

function setState(state: 'starting' | 'loading' | 'done' | 'error' | 'choose'): void {
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

const formatKb = (bytes: number) => `${(bytes / 1024).toFixed(1)} kB`;

let ortPromise: Promise<{ ort: OrtModule; ready: Promise<void> }> | null = null;

/** Imports onnxruntime-web once and starts compiling its wasm module right away. */
function loadOrt(): Promise<{ ort: OrtModule; ready: Promise<void> }> {
  ortPromise ??= (async () => {
    // A variable keeps esbuild from trying to bundle the runtime module.
    const url: string = ORT_URL;
    const ort = (await import(/* webpackIgnore: true */ url)) as OrtModule;
    ort.env.wasm.numThreads = 1;
    ort.env.wasm.proxy = false;
    ort.env.wasm.wasmPaths = '/ort/';
    const ready = warmUpOrt(ort as unknown as OrtLike, SESSION_OPTIONS);
    return { ort, ready };
  })();
  return ortPromise;
}

interface PixelSource {
  /** RGBA, row-major. */
  rgba: Uint8ClampedArray;
  height: number;
  width: number;
}

/** Decodes an image file to its exact pixel values (no colour management, no premultiplication). */
async function decodePixels(blob: Blob): Promise<PixelSource> {
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

/** A stand-in input when no image is given: a white digit on black, drawn at the model's size. */
function drawnSample(spec: InputSpec): PixelSource {
  const canvas = document.createElement('canvas');
  canvas.width = spec.width;
  canvas.height = spec.height;
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  if (ctx === null) throw new Error('canvas 2d context unavailable');
  ctx.fillStyle = '#000';
  ctx.fillRect(0, 0, spec.width, spec.height);
  ctx.fillStyle = '#fff';
  ctx.font = `bold ${Math.round(spec.height * 0.8)}px sans-serif`;
  ctx.textAlign = 'center';
  ctx.textBaseline = 'middle';
  ctx.fillText('3', spec.width / 2, spec.height / 2 + spec.height * 0.05);
  const { data } = ctx.getImageData(0, 0, spec.width, spec.height);
  return { rgba: data, height: spec.height, width: spec.width };
}

function showPreview(pixels: PixelSource): void {
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

function toBatch(pixels: PixelSource, spec: InputSpec): ImageBatch {
  const image = toChannels(pixels.rgba, pixels.height, pixels.width, 4, spec.channels);
  const data = imageToInput(image, spec);
  return { data, shape: [1, spec.height, spec.width, spec.channels] };
}

function appendRow(result: PrecisionResult, labels: string[] | null): void {
  const probabilities = softmax(result.logits.subarray(0, result.numClasses));
  const top = topClasses(probabilities, 5, labels ?? undefined);
  const best = top[0];
  const row = document.createElement('tr');
  row.className = 'result';
  Object.assign(row.dataset, {
    bits: String(result.bits),
    bytes: String(result.bytesAtPrecision),
    bytesAtResult: String(result.bytesAtResult),
    total: String(result.totalBytes),
    downloadComplete: String(result.downloadCompleteAtResult),
    class: String(best.index),
    label: best.label,
    probability: String(best.probability),
    ms: String(Math.round(result.msToResult)),
    logits: JSON.stringify(Array.from(result.logits.subarray(0, result.numClasses))),
  });
  const cells = [
    `${result.bits} bits`,
    formatKb(result.bytesAtPrecision),
    `${((100 * result.bytesAtPrecision) / result.totalBytes).toFixed(1)} %`,
    `${Math.round(result.msToResult)} ms`,
    `${best.label} (${(100 * best.probability).toFixed(1)} %)`,
    top.map((t) => `${t.label} ${(100 * t.probability).toFixed(1)}%`).join(', '),
  ];
  cells.forEach((text, i) => {
    const cell = document.createElement('td');
    cell.textContent = text;
    if (i === cells.length - 1) cell.className = 'top';
    row.append(cell);
  });
  element('results').querySelector('tbody')?.append(row);
  element('current').textContent =
    `${best.label} (${(100 * best.probability).toFixed(1)} %) at ${result.bits} bits, ` +
    `after ${formatKb(result.bytesAtPrecision)} of ${formatKb(result.totalBytes)}`;
}

async function chooseModel(): Promise<string | null> {
  const params = new URLSearchParams(location.search);
  const named = params.get('model');
  if (named !== null && named !== '') return named;
  const response = await fetch('/models');
  if (!response.ok) throw new Error(`GET /models: ${response.status} ${response.statusText}`);
  const { models } = (await response.json()) as { models: { name: string; error?: string }[] };
  const usable = models.filter((m) => m.error === undefined);
  const list = element('models');
  if (usable.length === 0) {
    list.textContent = 'No .strata model files in the served folder.';
    return null;
  }
  list.textContent = 'Models: ';
  for (const m of usable) {
    const link = document.createElement('a');
    link.href = `?model=${encodeURIComponent(m.name)}`;
    link.textContent = m.name;
    list.append(link);
  }
  return usable[0].name;
}

async function classify(modelName: string, imageBlob: Blob | null): Promise<void> {
  const params = new URLSearchParams(location.search);
  const untilText = params.get('until');
  const until = untilText === null ? undefined : Number(untilText);
  const imageUrl = params.get('image');
  setState('loading');
  element('results').querySelector('tbody')?.replaceChildren();
  element('current').textContent = '';
  element('model-name').textContent = modelName;
  const started = performance.now();
  const { ort, ready } = await loadOrt();
  const pendingImage: Promise<PixelSource | null> =
    imageBlob !== null
      ? decodePixels(imageBlob)
      : imageUrl !== null && imageUrl !== ''
        ? fetch(imageUrl).then(async (r) => {
            if (!r.ok) throw new Error(`GET ${imageUrl}: ${r.status} ${r.statusText}`);
            return decodePixels(await r.blob());
          })
        : Promise.resolve(null);
  const modelUrl = modelName.startsWith('/')
    ? modelName
    : `/${modelName.split('/').map(encodeURIComponent).join('/')}`;
  const response = await fetch(modelUrl, { cache: 'no-store' });
  if (!response.ok || response.body === null) {
    throw new Error(`GET ${modelUrl}: ${response.status} ${response.statusText}`);
  }
  const progress = element<HTMLProgressElement>('progress');
  const bytesLabel = element('bytes');
  let labels: string[] | null = null;
  await runProgressive({
    ort: ort as unknown as OrtLike,
    body: response.body,
    startedAt: started,
    ortReady: ready,
    sessionOptions: SESSION_OPTIONS,
    ...(until !== undefined && Number.isInteger(until) ? { untilBits: until } : {}),
    onHeader: (header: StrataHeader) => {
      labels = classLabels(header.metadata);
      progress.max = header.fileLength;
      document.body.dataset.total = String(header.fileLength);
    },
    onProgress: (received, total) => {
      progress.value = received;
      bytesLabel.textContent = `${formatKb(received)}${total === null ? '' : ` of ${formatKb(total)}`}`;
      document.body.dataset.received = String(received);
      if (total !== null && received >= total) {
        document.body.dataset.downloadMs = String(Math.round(performance.now() - started));
      }
    },
    images: async (header) => {
      const spec = inputSpecFor(header.architecture, header.metadata);
      const pixels = (await pendingImage) ?? drawnSample(spec);
      showPreview(pixels);
      return toBatch(pixels, spec);
    },
    onResult: (result) => appendRow(result, labels),
  });
  setState('done');
}

async function start(): Promise<void> {
  // Start compiling onnxruntime's wasm while the model list and the first bytes are on the way.
  void loadOrt().catch(() => undefined);
  const modelName = await chooseModel();
  if (modelName === null) {
    setState('choose');
    return;
  }
  element<HTMLInputElement>('upload').addEventListener('change', (event) => {
    const file = (event.target as HTMLInputElement).files?.[0];
    if (file !== undefined) classify(modelName, file).catch(showError);
  });
  await classify(modelName, null);
}

start().catch(showError);
