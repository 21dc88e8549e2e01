import { existsSync, readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { CACHE_FORMAT_VERSION, cachedDataset, fileDigest, folderDigest } from './cache.js';
import { CIFAR10_CLASSES } from './cifar.js';
import type { AnyImageDataset, DatasetSplit } from './dataset.js';
import { holdoutPerClass } from './dataset.js';
import type { ImageTreeOptions } from './image-tree.js';
import { readImageTree } from './image-tree.js';

export interface LoadImageTreeOptions extends ImageTreeOptions {
  /** Use the decoded-image cache (default true). */
  cache?: boolean;
  /** Cache folder; default `$STRATA_CACHE` or `~/.cache/strata`. */
  cacheDir?: string;
  /** Progress lines (cache hit, miss, rebuild). */
  log?: (message: string) => void;
}

/**
 * readImageTree with the decoded-image cache. The cache key is the sha256 of the archive's full
 * contents (for a folder: of its file list with sizes and mtimes) plus the reader options, so a
 * changed archive, even with the same size and mtime, is decoded again.
 */
export async function loadImageTree(
  source: string,
  options: LoadImageTreeOptions = {},
): Promise<AnyImageDataset> {
  const { cache = true, cacheDir, log, ...treeOptions } = options;
  if (!cache) return readImageTree(source, treeOptions);
  const info = await stat(source).catch(() => null);
  if (!info) throw new Error(`${source}: no such file or folder`);
  const digest = info.isDirectory() ? await folderDigest(source) : await fileDigest(source);
  const key = createHash('sha256')
    .update(
      JSON.stringify({
        format: CACHE_FORMAT_VERSION,
        reader: 'image-tree-1',
        digest,
        root: treeOptions.root ?? null,
        classes: treeOptions.classes ?? null,
      }),
    )
    .digest('hex');
  const name = path.basename(source).replace(/\.(tar\.gz|tgz|tar)$/i, '');
  return cachedDataset({ name, key, dir: cacheDir, log }, () => readImageTree(source, treeOptions));
}

/** The project folder: the nearest folder above this module whose package.json is named strata. */
export function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (true) {
    const manifest = path.join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        if ((JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'strata') return dir;
      } catch {
        // An unreadable package.json is not ours; keep climbing.
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) return process.cwd();
    dir = parent;
  }
}

/** `$STRATA_SHARED`, else `<repo>/../shared`. */
export function sharedDir(): string {
  const fromEnv = process.env.STRATA_SHARED;
  return fromEnv && fromEnv.trim() !== '' ? path.resolve(fromEnv) : path.resolve(repoRoot(), '../shared');
}

export function sharedDatasetsDir(): string {
  return path.join(sharedDir(), 'datasets');
}

function requireArchive(file: string, what: string): string {
  if (!existsSync(file)) {
    throw new Error(
      `${what} archive not found at ${file}. Put it in <shared>/datasets (shared is $STRATA_SHARED or ` +
        '<repo>/../shared) or pass its path.',
    );
  }
  return file;
}

export interface ArchiveOptions {
  /** Path of the archive; default `<shared>/datasets/<official name>`. */
  archive?: string;
  cache?: boolean;
  cacheDir?: string;
  log?: (message: string) => void;
}

/** Images per class held out of the CIFAR-10 JPEG training archive as the validation split. */
export const CIFAR10_JPEG_VAL_PER_CLASS = 500;

/**
 * CIFAR-10 training data from `cifar10-jpeg-train.tar.gz` (32x32 JPEG, quality 75), split the fixed
 * way: the last 500 images of every class in file order are `val` (5,000), the rest `train` (45,000).
 */
export async function loadCifar10Jpeg(
  options: ArchiveOptions = {},
): Promise<DatasetSplit & { all: AnyImageDataset }> {
  const archive = requireArchive(
    options.archive ?? path.join(sharedDatasetsDir(), 'cifar10-jpeg-train.tar.gz'),
    'CIFAR-10 JPEG',
  );
  const { cache, cacheDir, log } = options;
  const all = await loadImageTree(archive, { cache, cacheDir, log });
  if (all.classes.join(',') !== CIFAR10_CLASSES.join(',')) {
    throw new Error(
      `${path.basename(archive)}: classes [${all.classes.join(', ')}] are not the CIFAR-10 classes ` +
        `[${CIFAR10_CLASSES.join(', ')}]`,
    );
  }
  return { ...holdoutPerClass(all, CIFAR10_JPEG_VAL_PER_CLASS), all };
}

/** Images per class of the Tiny-ImageNet validation archive kept for validation (of 50). */
export const TINY_IMAGENET_VAL_PER_CLASS = 10;

/**
 * Tiny-ImageNet-200 from `tiny-imagenet-200-val.tar.gz` (the official val split, 50 a class, 64x64,
 * greyscale images expanded to RGB). Labels follow wnids.txt (sorted wnids). Split 40 train / 10 val
 * per class: the last 10 by file name (code-point order) are `val`.
 */
export async function loadTinyImagenetVal(
  options: ArchiveOptions = {},
): Promise<DatasetSplit & { all: AnyImageDataset }> {
  const archive = requireArchive(
    options.archive ?? path.join(sharedDatasetsDir(), 'tiny-imagenet-200-val.tar.gz'),
    'Tiny-ImageNet-200 val',
  );
  const { cache, cacheDir, log } = options;
  const all = await loadImageTree(archive, { cache, cacheDir, log });
  return { ...holdoutPerClass(all, TINY_IMAGENET_VAL_PER_CLASS), all };
}
