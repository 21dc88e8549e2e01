/**
 * Where the browser client keeps the bytes of a model file it has received: a prefix of the file,
 * with the validator (ETag or Last-Modified) of the representation it came from, so that a reload,
 * a second visit or a resumed download asks the server only for what is missing.
 * Browser-safe: no node: imports.
 */

/** A prefix of one file, as received. */
export interface CachedPrefix {
  /** Bytes [0, bytes.length) of the file. */
  bytes: Uint8Array;
  /** Length of the whole file, when a response said it. */
  fileLength: number | null;
  /** The response's ETag, or null. */
  etag: string | null;
  /** The response's Last-Modified, or null. */
  lastModified: string | null;
}

/** Storage for cached prefixes, keyed by absolute URL. */
export interface PrefixStore {
  /**
   * Optional, synchronous and fast: false when the store certainly holds nothing for `key` (the
   * client then asks the network at once instead of waiting for the store), true or null otherwise.
   */
  mayHold?(key: string): boolean | null;
  get(key: string): Promise<CachedPrefix | null>;
  put(key: string, value: CachedPrefix): Promise<void>;
  delete(key: string): Promise<void>;
}

/** A store that lives as long as the object (tests, Node, or a page that must not persist). */
export function memoryStore(): PrefixStore {
  const entries = new Map<string, CachedPrefix>();
  const copy = (v: CachedPrefix): CachedPrefix => ({ ...v, bytes: v.bytes.slice() });
  return {
    get: (key) => Promise.resolve(entries.has(key) ? copy(entries.get(key)!) : null),
    put: (key, value) => {
      entries.set(key, copy(value));
      return Promise.resolve();
    },
    delete: (key) => {
      entries.delete(key);
      return Promise.resolve();
    },
  };
}

const OBJECT_STORE = 'prefixes';

function requestResult<T>(request: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error ?? new Error('IndexedDB request failed'));
  });
}

function isCachedPrefix(value: unknown): value is CachedPrefix {
  if (value === null || typeof value !== 'object') return false;
  const v = value as Record<string, unknown>;
  return (
    v.bytes instanceof Uint8Array &&
    (v.fileLength === null || typeof v.fileLength === 'number') &&
    (v.etag === null || typeof v.etag === 'string') &&
    (v.lastModified === null || typeof v.lastModified === 'string')
  );
}

/** localStorage, where the environment has it and allows it (a sandboxed frame may throw). */
function localStorageOrNull(): Storage | null {
  try {
    return typeof localStorage === 'undefined' ? null : localStorage;
  } catch {
    return null;
  }
}

export interface IndexedDbStoreOptions {
  /**
   * An open request of the database (version 1, whose upgrade creates the object store
   * 'prefixes') already under way, so that a page can start opening it before this library has
   * loaded; the store takes it over.
   */
  opening?: IDBOpenDBRequest;
  /**
   * Reads of this database's entries already under way, by key: each resolves to the stored value,
   * null when there is none, or undefined when the read failed (then `get` reads again). `get`
   * takes each over once.
   */
  prefetched?: Map<string, Promise<unknown>>;
  /**
   * Whether `mayHold` reads the localStorage markers (default true). A page's first use of
   * localStorage is a synchronous round trip to the browser; a page that expects a cached copy (a
   * return visit) passes false, and `mayHold` answers null (ask IndexedDB).
   */
  checkMarkers?: boolean;
}

/**
 * Prefixes in IndexedDB (database `dbName`, default 'strata-models'). Every call opens its own
 * transaction; an entry that does not have the expected shape reads as absent. A localStorage
 * entry per key (`strata-prefix:<dbName>:<key>`) records that IndexedDB holds something for it, so
 * that a first visit need not wait for IndexedDB to open before asking the network (`mayHold`).
 */
export function indexedDbStore(
  dbName = 'strata-models',
  factory: IDBFactory = indexedDB,
  options: IndexedDbStoreOptions = {},
): PrefixStore {
  const marker = (key: string) => `strata-prefix:${dbName}:${key}`;
  const mark = (key: string, held: boolean) => {
    try {
      const storage = localStorageOrNull();
      if (held) storage?.setItem(marker(key), '1');
      else storage?.removeItem(marker(key));
    } catch {
      // Storage full or refused: mayHold then answers from what it has.
    }
  };
  let db: Promise<IDBDatabase> | null = null;
  let early = options.opening;
  const open = (): Promise<IDBDatabase> => {
    db ??= new Promise<IDBDatabase>((resolve, reject) => {
      const taken = early;
      early = undefined;
      const request = taken ?? factory.open(dbName, 1);
      if (taken === undefined) request.onupgradeneeded = () => request.result.createObjectStore(OBJECT_STORE);
      const opened = () => {
        performance.mark('strata:idb-open');
        resolve(request.result);
      };
      const failed = () => reject(request.error ?? new Error(`cannot open IndexedDB '${dbName}'`));
      if (request.readyState === 'done') {
        if (request.error === null) opened();
        else failed();
      } else {
        request.addEventListener('success', opened);
        request.addEventListener('error', failed);
      }
    })
      .then((database) => {
        if (!database.objectStoreNames.contains(OBJECT_STORE)) {
          database.close();
          throw new Error(`IndexedDB '${dbName}' has no '${OBJECT_STORE}' store`);
        }
        return database;
      })
      .catch((e: unknown) => {
        db = null;
        throw e;
      });
    return db;
  };
  const run = async <T>(
    mode: IDBTransactionMode,
    body: (store: IDBObjectStore) => IDBRequest<T>,
  ): Promise<T> => {
    const transaction = (await open()).transaction(OBJECT_STORE, mode);
    const done = new Promise<void>((resolve, reject) => {
      transaction.oncomplete = () => resolve();
      transaction.onabort = transaction.onerror = () =>
        reject(transaction.error ?? new Error('IndexedDB transaction failed'));
    });
    const result = await requestResult(body(transaction.objectStore(OBJECT_STORE)));
    await done;
    return result;
  };
  return {
    mayHold(key) {
      if (options.checkMarkers === false) return null;
      const storage = localStorageOrNull();
      if (storage === null) return null;
      try {
        return storage.getItem(marker(key)) !== null;
      } catch {
        return null;
      }
    },
    async get(key) {
      const early = options.prefetched?.get(key);
      options.prefetched?.delete(key);
      const read: unknown = early === undefined ? undefined : await early.catch(() => undefined);
      const value: unknown = read !== undefined ? read : await run('readonly', (s) => s.get(key));
      return isCachedPrefix(value) ? value : null;
    },
    async put(key, value) {
      await run('readwrite', (s) => s.put({ ...value, bytes: value.bytes.slice() }, key));
      mark(key, true);
    },
    async delete(key) {
      mark(key, false);
      await run('readwrite', (s) => s.delete(key));
    },
  };
}

/** The default store: IndexedDB where the environment has it, otherwise none (nothing persists). */
export function defaultStore(): PrefixStore | null {
  return typeof indexedDB === 'undefined' ? null : indexedDbStore();
}
