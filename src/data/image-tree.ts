import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { AnyImageDataset, ImageListDataset, RawImage } from './dataset.js';
import { hasUniformSize, toFixedSize } from './dataset.js';
import { decodeImage, hasImageExtension } from './image-decode.js';
import { readTar } from './tar.js';

export interface ImageTreeOptions {
  /**
   * Folder (relative to the folder or archive) whose subfolders are the classes. Default: the folder
   * itself; for archives, the single top-level folder(s) every image sits under, stripped as long as
   * each image still has a class folder below (so `train/<class>/x.jpg` finds `train`).
   */
  root?: string;
  /** Explicit class order. Default: `<root>/wnids.txt` when present, else class folder names sorted. */
  classes?: string[];
}

interface FoundImage {
  /** Path below the class folder, used for the within-class order. */
  rest: string;
  source: string;
  image: RawImage;
}

/** Code-point order, independent of locale, so every machine labels and splits alike. */
export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function parseClassList(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '');
}

/**
 * Puts the decoded images in label order (class by class, file names in code-point order inside each)
 * and checks that class folders, the class list and the images agree.
 */
function assemble(
  sourceName: string,
  byClass: Map<string, FoundImage[]>,
  classFolders: Set<string>,
  classList: string[] | null,
  classListName: string,
): AnyImageDataset {
  let classes: string[];
  if (classList) {
    const listed = new Set(classList);
    if (listed.size !== classList.length) {
      throw new Error(`${sourceName}: ${classListName} lists a class more than once`);
    }
    for (const folder of [...classFolders].sort(compareNames)) {
      if (!listed.has(folder)) {
        throw new Error(`${sourceName}: class folder '${folder}' is not listed in ${classListName}`);
      }
    }
    classes = [...classList];
  } else {
    classes = [...classFolders].sort(compareNames);
  }
  if (classes.length === 0) {
    throw new Error(
      `${sourceName}: no class folders with JPEG or PNG images found (expected <root>/<class>/<image>)`,
    );
  }
  const images: RawImage[] = [];
  const sources: string[] = [];
  const labels: number[] = [];
  classes.forEach((name, label) => {
    const found = byClass.get(name) ?? [];
    if (found.length === 0) {
      const why = classFolders.has(name)
        ? 'holds no JPEG or PNG images'
        : `from ${classListName} has no folder`;
      throw new Error(`${sourceName}: class '${name}' ${why}`);
    }
    found.sort((a, b) => compareNames(a.rest, b.rest));
    for (const item of found) {
      images.push(item.image);
      sources.push(item.source);
      labels.push(label);
    }
  });
  const list: ImageListDataset = {
    images,
    labels: Int32Array.from(labels),
    channels: 3,
    classes,
    sources,
  };
  return hasUniformSize(list) ? toFixedSize(list) : list;
}

function normaliseRoot(root: string | undefined): string | undefined {
  if (root === undefined) return undefined;
  const trimmed = root
    .replace(/\\/g, '/')
    .replace(/^\.?\/+/, '')
    .replace(/\/+$/, '');
  return trimmed === '.' ? '' : trimmed;
}

async function walk(dir: string, prefix: string, out: string[]): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true });
  for (const entry of entries) {
    const rel = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isDirectory()) await walk(path.join(dir, entry.name), rel, out);
    else if (entry.isFile() && hasImageExtension(entry.name)) out.push(rel);
  }
}

/** Reads `<folder>/<root>/<class>/.../<image>`. */
export async function readImageFolder(
  folder: string,
  options: ImageTreeOptions = {},
): Promise<AnyImageDataset> {
  const base = path.join(folder, normaliseRoot(options.root) ?? '');
  const info = await stat(base).catch(() => null);
  if (!info?.isDirectory()) throw new Error(`${base}: is not a folder`);
  const byClass = new Map<string, FoundImage[]>();
  const classFolders = new Set<string>();
  for (const entry of await readdir(base, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    classFolders.add(entry.name);
    const files: string[] = [];
    await walk(path.join(base, entry.name), '', files);
    const found: FoundImage[] = [];
    for (const rest of files) {
      const file = path.join(base, entry.name, rest);
      found.push({ rest, source: `${entry.name}/${rest}`, image: decodeImage(await readFile(file), file) });
    }
    byClass.set(entry.name, found);
  }
  let classList = options.classes ?? null;
  const wnids = path.join(base, 'wnids.txt');
  if (!classList && (await stat(wnids).catch(() => null))?.isFile()) {
    classList = parseClassList(await readFile(wnids, 'utf8'));
  }
  return assemble(
    base,
    byClass,
    classFolders,
    classList,
    options.classes ? 'the classes option' : 'wnids.txt',
  );
}

/** The top folders every image shares, stripped while each image keeps a class folder below them. */
function detectRoot(imagePaths: string[]): string {
  const parts = imagePaths.map((p) => p.split('/'));
  let depth = 0;
  while (parts.length > 0) {
    const first = parts[0][depth];
    const shared = parts.every((p) => p.length > depth + 2 && p[depth] === first);
    if (!shared) break;
    depth++;
  }
  return parts.length === 0 ? '' : parts[0].slice(0, depth).join('/');
}

/**
 * Reads `<root>/<class>/.../<image>` straight from a .tar or .tar.gz in one streaming pass, decoding
 * images as they arrive (wnids.txt may come last; labels are assigned at the end).
 */
export async function readImageTar(
  archive: string,
  options: ImageTreeOptions = {},
): Promise<AnyImageDataset> {
  const archiveName = path.basename(archive);
  const decoded: { name: string; image: RawImage }[] = [];
  const directories: string[] = [];
  const texts = new Map<string, Buffer>();
  const wanted = (name: string): boolean => hasImageExtension(name) || name.endsWith('wnids.txt');
  for await (const entry of readTar(archive, { include: wanted })) {
    const name = entry.name.replace(/^\.\//, '');
    if (entry.type === 'directory') {
      directories.push(name.replace(/\/$/, ''));
    } else if (entry.data && hasImageExtension(name)) {
      decoded.push({ name, image: decodeImage(entry.data, `${archiveName} entry '${name}'`) });
    } else if (entry.data) {
      texts.set(name, Buffer.from(entry.data));
    }
  }
  const root = normaliseRoot(options.root) ?? detectRoot(decoded.map((d) => d.name));
  const prefix = root === '' ? '' : `${root}/`;
  const where = root === '' ? archiveName : `${archiveName}:${root}`;
  const byClass = new Map<string, FoundImage[]>();
  const classFolders = new Set<string>();
  for (const dir of directories) {
    if (!dir.startsWith(prefix)) continue;
    const below = dir.slice(prefix.length);
    if (below !== '' && !below.includes('/')) classFolders.add(below);
  }
  for (const { name, image } of decoded) {
    if (!name.startsWith(prefix)) continue;
    const below = name.slice(prefix.length);
    const slash = below.indexOf('/');
    if (slash <= 0) continue;
    const cls = below.slice(0, slash);
    classFolders.add(cls);
    const list = byClass.get(cls) ?? [];
    list.push({ rest: below.slice(slash + 1), source: below, image });
    byClass.set(cls, list);
  }
  let classList = options.classes ?? null;
  const wnids = texts.get(`${prefix}wnids.txt`);
  if (!classList && wnids) classList = parseClassList(wnids.toString('utf8'));
  return assemble(
    where,
    byClass,
    classFolders,
    classList,
    options.classes ? 'the classes option' : 'wnids.txt',
  );
}

/** A folder, or a .tar/.tar.gz archive of one; see readImageFolder and readImageTar. */
export async function readImageTree(
  source: string,
  options: ImageTreeOptions = {},
): Promise<AnyImageDataset> {
  const info = await stat(source).catch(() => null);
  if (!info) throw new Error(`${source}: no such file or folder`);
  return info.isDirectory() ? readImageFolder(source, options) : readImageTar(source, options);
}
