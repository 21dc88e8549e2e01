/**
 * The service worker of the page of `strata serve` (bundled to dist/web/sw.js, served at /sw.js):
 * it keeps the page (`/`) and its versioned script (`/client.js?v=<version>`) in Cache Storage, so
 * that a return visit starts the page without waiting for the network. The page is answered from
 * the cache at once and refreshed in the background (its model listing changes when the served
 * folder does, and the next visit shows it); the script's URL names its content's version, so a
 * cached copy of it never goes stale. Nothing else is intercepted: the model's Range requests and
 * the HEAD check of a cached model go to the network as before (the page keeps the model's bytes in
 * IndexedDB itself).
 *
 * The page registers it as `/sw.js?v=<version of the client>`: a new client is a new worker, which
 * caches the new page and script when it installs and drops the other versions when it activates.
 */

/** The parts of the service worker API used here (the project's types are the DOM's, not a worker's). */
interface ExtendableEvent extends Event {
  waitUntil(work: Promise<unknown>): void;
}
interface FetchEvent extends ExtendableEvent {
  readonly request: Request;
  respondWith(response: Response | Promise<Response>): void;
}
interface WorkerScope {
  readonly location: Location;
  skipWaiting(): Promise<void>;
  readonly clients: { claim(): Promise<void> };
  addEventListener(type: 'install' | 'activate', listener: (event: ExtendableEvent) => void): void;
  addEventListener(type: 'fetch', listener: (event: FetchEvent) => void): void;
}

const worker = globalThis as unknown as WorkerScope;
const CACHE = 'strata-page';
const version = new URL(worker.location.href).searchParams.get('v') ?? '';
const PAGE = '/';
const script = `/client.js?v=${encodeURIComponent(version)}`;

/** Fetches `url` and keeps a successful answer under `key`. */
async function refresh(cache: Cache, url: string): Promise<Response> {
  // The page is checked with the server; a versioned script may come from the HTTP cache.
  const response = await fetch(url, { cache: url === PAGE ? 'no-cache' : 'default' });
  if (response.ok) await cache.put(url, response.clone());
  return response;
}

/** Chromium's static routing (InstallEvent.addRoutes): requests matched go where it says without the worker. */
interface RoutingInstallEvent extends ExtendableEvent {
  addRoutes?(
    rules: { condition: { urlPattern?: string; requestMethod?: string }; source: 'network' }[],
  ): Promise<void>;
}

worker.addEventListener('install', (event: RoutingInstallEvent) => {
  // Everything but the page and its script goes straight to the network, without a trip through
  // this worker (where the browser supports static routing): the model's bytes, the images.
  event.waitUntil(
    event
      .addRoutes?.([
        { condition: { urlPattern: '/*.strata' }, source: 'network' },
        { condition: { urlPattern: '/samples/*' }, source: 'network' },
        { condition: { requestMethod: 'HEAD' }, source: 'network' },
      ])
      .catch(() => undefined) ?? Promise.resolve(),
  );
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      await Promise.all([refresh(cache, PAGE), refresh(cache, script)]);
      await worker.skipWaiting();
    })(),
  );
});

worker.addEventListener('activate', (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      for (const request of await cache.keys()) {
        const url = new URL(request.url);
        if (url.pathname === '/client.js' && url.search !== new URL(script, url).search) {
          await cache.delete(request);
        }
      }
    })(),
  );
});

worker.addEventListener('fetch', (event) => {
  const request = event.request;
  if (request.method !== 'GET') return;
  const url = new URL(request.url);
  if (url.origin !== worker.location.origin) return;
  if (request.mode === 'navigate' && (url.pathname === '/' || url.pathname === '/index.html')) {
    // The page does not depend on its query (the client reads it): one cached copy serves all.
    event.respondWith(
      (async () => {
        const cache = await caches.open(CACHE);
        const cached = await cache.match(PAGE);
        if (cached === undefined) return refresh(cache, PAGE);
        event.waitUntil(refresh(cache, PAGE).catch(() => undefined));
        return cached;
      })(),
    );
  } else if (url.pathname === '/client.js' && url.searchParams.has('v')) {
    event.respondWith(
      (async () => {
        const cache = await caches.open(CACHE);
        return (await cache.match(request)) ?? refresh(cache, request.url);
      })(),
    );
  }
});
