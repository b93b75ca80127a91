/**
 * Opening HATS catalogs and collections: properties, partition list, leaf
 * files, row counts and the margin cache that goes with a catalog.
 */
import { existsSync, statSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import {
  HatsCollectionError,
  HatsError,
  HatsLeafMissingError,
  HatsMissingPropertiesError,
  HatsNotFoundError,
  HatsParquetError,
  throwIfAborted,
} from './errors.js';
import { readFileMetaData, summarizeFooter, parquetRowCount, type FooterSummary } from './parquet-footer.js';
import { readPartitionInfo, type PartitionInfoRow } from './partition-info.js';
import { floatProperty, intProperty, readPropertiesFile } from './properties.js';

export interface HatsPartition {
  order: number;
  pixel: number;
  /** Absolute paths of the leaf Parquet file(s); empty for catalogs without leaves. */
  files: string[];
  rows?: number;
}

export interface HatsCollectionInfo {
  /** The collection directory (holds `collection.properties`). */
  root: string;
  name: string;
  properties: Record<string, string>;
  /** Absolute paths of every margin listed in `all_margins`. */
  margins: string[];
  /** Indexed column -> absolute path of its index catalog (`all_indexes`). */
  indexes: Record<string, string>;
}

export interface HatsCatalog {
  /** Absolute path of the catalog directory (the primary table for a collection). */
  root: string;
  name: string;
  /** `dataproduct_type`: object, source, margin, index, association, map, ... */
  type: string;
  properties: Record<string, string>;
  raColumn: string;
  decColumn: string;
  /** Sorted by (order, pixel). */
  partitions: HatsPartition[];
  totalRows?: number;
  margin?: HatsCatalog;
  marginThresholdArcsec?: number;
  /** Column holding the nested HEALPix index (`hats_col_healpix`); always set by openHatsCatalog. @default '_healpix_29' */
  healpixColumn?: string;
  /** Order of `healpixColumn` (`hats_col_healpix_order`); always set by openHatsCatalog. @default 29 */
  healpixOrder?: number;
  /** `hats_npix_suffix`: `.parquet`, another suffix, or `/` for a directory of files. @default '.parquet' */
  npixSuffix?: string;
  /** For index catalogs: the Parquet files under `dataset/index/`. */
  indexFiles?: string[];
  /** Set when the catalog was opened through (or sits inside) a collection. */
  collection?: HatsCollectionInfo;
}

export interface OpenHatsCatalogOptions {
  /**
   * Where a partition's leaf lives, for catalogs written with a custom tree
   * (LSDB's `path_generator`). Returns a file path, or a directory of files.
   * @default root/dataset/Norder=K/Dir=D/Npix=N{suffix}
   */
  pathGenerator?: (root: string, order: number, pixel: number, npixSuffix: string) => string;
  /**
   * How to fill `HatsPartition.rows`: from `dataset/_metadata` when it covers
   * every leaf, else from each leaf's footer (`auto`); only footers; or not at all.
   * @default 'auto'
   */
  rowCounts?: 'auto' | 'footers' | 'none';
  /**
   * Attach a margin cache: `true` finds the default one (collection's
   * `default_margin`, else a sibling margin catalog pointing at this one);
   * a string names a margin of the collection or gives a margin directory; `false` skips.
   * @default true
   */
  margin?: boolean | string;
  signal?: AbortSignal;
}

const PROPERTY_FILES = ['hats.properties', 'properties'] as const;
const COLLECTION_FILE = 'collection.properties';

/** True when `path` is a directory holding HATS catalog or collection properties. */
export function isHatsCatalogDir(path: string): boolean {
  try {
    if (!statSync(path).isDirectory()) return false;
  } catch {
    return false; // absent or unreadable: not a catalog dir
  }
  return [...PROPERTY_FILES, COLLECTION_FILE].some((f) => existsSync(join(path, f)));
}

/** `root/dataset/Norder=K/Dir=D/Npix=N.parquet`, with D = 10000 * floor(N / 10000). */
export function hatsLeafPath(root: string, order: number, pixel: number, npixSuffix = '.parquet'): string {
  const dir = Math.floor(pixel / 10000) * 10000;
  const suffix = npixSuffix === '/' ? '' : npixSuffix;
  return join(root, 'dataset', `Norder=${order}`, `Dir=${dir}`, `Npix=${pixel}${suffix}`);
}

/** Open a HATS catalog directory or a HATS collection directory. */
export async function openHatsCatalog(path: string, options: OpenHatsCatalogOptions = {}): Promise<HatsCatalog> {
  const root = resolve(path);
  await assertDir(root, 'HATS catalog');
  if (existsSync(join(root, COLLECTION_FILE))) return openCollection(root, options);
  return openCatalogDir(root, options, undefined);
}

async function assertDir(path: string, what: string): Promise<void> {
  let st;
  try {
    st = await stat(path);
  } catch (err) {
    throw new HatsNotFoundError(`${what} directory ${path} does not exist`, path, { cause: err });
  }
  if (!st.isDirectory()) throw new HatsNotFoundError(`${what} path ${path} is not a directory`, path);
}

async function readCatalogProperties(root: string): Promise<Record<string, string>> {
  for (const f of PROPERTY_FILES) {
    const p = join(root, f);
    if (existsSync(p)) return readPropertiesFile(p);
  }
  throw new HatsMissingPropertiesError(
    `${root} is not a HATS catalog: neither hats.properties, properties nor collection.properties is there`,
    root,
  );
}

function splitList(v: string | undefined): string[] {
  return (v ?? '').split(/[\s,]+/).filter((x) => x !== '');
}

async function readCollectionInfo(root: string): Promise<HatsCollectionInfo> {
  const propsPath = join(root, COLLECTION_FILE);
  const properties = await readPropertiesFile(propsPath);
  const indexes: Record<string, string> = {};
  const idx = splitList(properties.all_indexes);
  if (idx.length % 2 !== 0) {
    throw new HatsCollectionError(`all_indexes in ${propsPath} must list column/catalog pairs, got ${idx.length} words`, propsPath);
  }
  for (let i = 0; i + 1 < idx.length; i += 2) indexes[idx[i] ?? ''] = resolve(root, idx[i + 1] ?? '');
  return {
    root,
    name: properties.obs_collection ?? properties.name ?? basename(root),
    properties,
    margins: splitList(properties.all_margins).map((m) => resolve(root, m)),
    indexes,
  };
}

async function openCollection(root: string, options: OpenHatsCatalogOptions): Promise<HatsCatalog> {
  const collection = await readCollectionInfo(root);
  const propsPath = join(root, COLLECTION_FILE);
  const primaryUrl = collection.properties.hats_primary_table_url;
  if (!primaryUrl) throw new HatsCollectionError(`${propsPath} has no hats_primary_table_url`, propsPath);
  const primary = resolve(root, primaryUrl);
  if (!isHatsCatalogDir(primary)) {
    throw new HatsCollectionError(`primary table ${primary} named by ${propsPath} is missing or not a HATS catalog`, primary);
  }
  return openCatalogDir(primary, options, collection);
}

/** Decide which margin directory (if any) goes with the catalog at `root`. */
async function findMarginDir(
  root: string,
  option: boolean | string,
  collection: HatsCollectionInfo | undefined,
): Promise<string | undefined> {
  if (option === false) return undefined;
  if (typeof option === 'string') {
    const named = collection?.margins.find((m) => basename(m) === option);
    return named ?? resolve(collection?.root ?? dirname(root), option);
  }
  if (collection) {
    const def = collection.properties.default_margin;
    if (def) return resolve(collection.root, def);
    return collection.margins[0];
  }
  // Loose catalogs: margins written beside the catalog and pointing back at it.
  const parent = dirname(root);
  const base = basename(root);
  let entries: string[];
  try {
    entries = await readdir(parent);
  } catch {
    return undefined; // unreadable parent: no margin discovery, the catalog itself is fine
  }
  const candidates: string[] = [];
  for (const e of entries.sort()) {
    if (e === base || !e.startsWith(base)) continue;
    const dir = join(parent, e);
    if (!isHatsCatalogDir(dir) || existsSync(join(dir, COLLECTION_FILE))) continue;
    let props: Record<string, string>;
    try {
      props = await readCatalogProperties(dir);
    } catch {
      continue; // a broken neighbour is not our catalog's problem
    }
    if (props.dataproduct_type !== 'margin') continue;
    const url = props.hats_primary_table_url ?? '';
    if (url === '' || basename(url) === base) candidates.push(dir);
  }
  return candidates.find((c) => basename(c) === `${base}_margin`) ?? candidates[0];
}

async function openCatalogDir(
  root: string,
  options: OpenHatsCatalogOptions,
  collection: HatsCollectionInfo | undefined,
): Promise<HatsCatalog> {
  await assertDir(root, 'HATS catalog');
  const properties = await readCatalogProperties(root);
  const propsPath = existsSync(join(root, 'hats.properties')) ? join(root, 'hats.properties') : join(root, 'properties');
  const type = properties.dataproduct_type ?? properties.catalog_type ?? 'object';
  const npixSuffix = properties.hats_npix_suffix ?? '.parquet';
  const cat: HatsCatalog = {
    root,
    name: properties.obs_collection ?? properties.catalog_name ?? basename(root),
    type,
    properties,
    raColumn: properties.hats_col_ra ?? properties.ra_column ?? 'ra',
    decColumn: properties.hats_col_dec ?? properties.dec_column ?? 'dec',
    partitions: [],
    healpixColumn: properties.hats_col_healpix ?? '_healpix_29',
    healpixOrder: intProperty(properties, 'hats_col_healpix_order', propsPath) ?? 29,
    npixSuffix,
  };
  const threshold = floatProperty(properties, 'hats_margin_threshold', propsPath);
  if (type === 'margin' && threshold !== undefined) cat.marginThresholdArcsec = threshold;

  const datasetDir = join(root, 'dataset');
  const metadataPath = join(datasetDir, '_metadata');
  let metadata: FooterSummary | undefined;
  const loadMetadata = async (): Promise<FooterSummary | undefined> => {
    if (metadata === undefined && existsSync(metadataPath)) {
      try {
        metadata = summarizeFooter(await readFileMetaData(metadataPath));
      } catch (err) {
        if (err instanceof HatsError) throw err;
        throw new HatsParquetError(`cannot decode ${metadataPath}`, metadataPath, { cause: err });
      }
    }
    return metadata;
  };

  if (type === 'index') {
    const indexDir = join(datasetDir, 'index');
    cat.indexFiles = existsSync(indexDir) ? await listLeafDir(indexDir) : [];
    const md = await loadMetadata();
    const nrows = intProperty(properties, 'hats_nrows', propsPath);
    if (md) cat.totalRows = md.numRows;
    else if (nrows !== undefined) cat.totalRows = nrows;
    return cat;
  }

  // Partition list: partition_info.csv, else the leaves named in _metadata.
  let info: PartitionInfoRow[] = [];
  const infoPath = join(root, 'partition_info.csv');
  if (existsSync(infoPath)) info = await readPartitionInfo(infoPath);
  else {
    const md = await loadMetadata();
    if (md) info = partitionsFromMetadata(md, metadataPath);
  }
  info.sort((a, b) => a.order - b.order || a.pixel - b.pixel);

  const noLeaves = type === 'association' && properties.hats_assn_leaf_files?.toLowerCase() === 'false';
  const partitions: HatsPartition[] = [];
  const missing: { path: string; order: number; pixel: number }[] = [];
  for (const row of info) {
    throwIfAborted(options.signal, root);
    const p: HatsPartition = { order: row.order, pixel: row.pixel, files: [] };
    if (row.rows !== undefined) p.rows = row.rows;
    partitions.push(p);
    if (noLeaves) continue;
    const leaf = options.pathGenerator
      ? resolve(options.pathGenerator(root, row.order, row.pixel, npixSuffix))
      : hatsLeafPath(root, row.order, row.pixel, npixSuffix);
    const files = await resolveLeaf(leaf);
    if (files === undefined || files.length === 0) missing.push({ path: leaf, order: row.order, pixel: row.pixel });
    else p.files = files;
  }
  const firstMissing = missing[0];
  if (firstMissing) {
    const hint = options.pathGenerator ? '' : ' (custom leaf tree? pass options.pathGenerator)';
    throw new HatsLeafMissingError(
      `${missing.length} of ${info.length} partitions of HATS catalog ${root} have no leaf file; first: ` +
        `Norder=${firstMissing.order} Npix=${firstMissing.pixel} expected at ${firstMissing.path}${hint}`,
      firstMissing.path,
      firstMissing.order,
      firstMissing.pixel,
    );
  }
  cat.partitions = partitions;

  // Row counts.
  const mode = options.rowCounts ?? 'auto';
  if (mode !== 'none' && !noLeaves && partitions.length > 0) {
    let done = false;
    if (mode === 'auto') {
      const md = await loadMetadata();
      if (md) done = rowsFromMetadata(partitions, md, datasetDir);
    }
    if (!done) await rowsFromFooters(partitions, options.signal, root);
  }
  const nrows = intProperty(properties, 'hats_nrows', propsPath);
  if (partitions.length > 0 && partitions.every((p) => p.rows !== undefined)) {
    cat.totalRows = partitions.reduce((s, p) => s + (p.rows ?? 0), 0);
  } else if (nrows !== undefined) cat.totalRows = nrows;

  const parentCollection = collection ?? (type === 'margin' ? undefined : await collectionAround(root));
  if (parentCollection) cat.collection = parentCollection;
  if (type !== 'margin' && options.margin !== false) {
    const marginDir = await findMarginDir(root, options.margin ?? true, parentCollection);
    if (marginDir !== undefined) {
      if (!isHatsCatalogDir(marginDir)) {
        throw new HatsCollectionError(`margin catalog ${marginDir} of ${root} is missing or not a HATS catalog`, marginDir);
      }
      const marginOpts: OpenHatsCatalogOptions = { ...options, margin: false };
      delete marginOpts.pathGenerator; // a custom tree applies to the primary's leaves only
      const margin = await openCatalogDir(marginDir, marginOpts, undefined);
      cat.margin = margin;
      if (margin.marginThresholdArcsec !== undefined) cat.marginThresholdArcsec = margin.marginThresholdArcsec;
    }
  }
  return cat;
}

/** The collection in the parent directory whose primary table is `root`, if any. */
async function collectionAround(root: string): Promise<HatsCollectionInfo | undefined> {
  const parent = dirname(root);
  if (!existsSync(join(parent, COLLECTION_FILE))) return undefined;
  const info = await readCollectionInfo(parent);
  const primary = info.properties.hats_primary_table_url;
  return primary !== undefined && resolve(parent, primary) === root ? info : undefined;
}

/** Files of a leaf: the file itself, or the Parquet files of a leaf directory. */
async function resolveLeaf(leaf: string): Promise<string[] | undefined> {
  let st;
  try {
    st = await stat(leaf);
  } catch {
    return undefined; // reported by the caller with all the context
  }
  if (st.isFile()) return [leaf];
  if (st.isDirectory()) return listLeafDir(leaf);
  return undefined;
}

async function listLeafDir(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  return entries
    .filter((e) => e.isFile() && !e.name.startsWith('.') && !e.name.startsWith('_'))
    .map((e) => join(dir, e.name))
    .sort();
}

const LEAF_RE = /Norder=(\d+)[/\\](?:Dir=\d+[/\\])?Npix=(\d+)/;

function partitionsFromMetadata(md: FooterSummary, path: string): PartitionInfoRow[] {
  const seen = new Map<string, PartitionInfoRow>();
  for (const rg of md.rowGroups) {
    const m = rg.filePath === undefined ? null : LEAF_RE.exec(rg.filePath);
    if (!m) {
      throw new HatsParquetError(
        `${path}: no partition_info.csv and row group file path ${JSON.stringify(rg.filePath ?? '')} does not name Norder/Npix`,
        path,
      );
    }
    const order = Number(m[1]);
    const pixel = Number(m[2]);
    seen.set(`${order}/${pixel}`, { order, pixel });
  }
  return [...seen.values()];
}

/** Fill rows from `_metadata`; false (and nothing changed) when it does not cover every leaf file. */
function rowsFromMetadata(partitions: HatsPartition[], md: FooterSummary, datasetDir: string): boolean {
  const byFile = new Map<string, number>();
  for (const rg of md.rowGroups) {
    if (rg.filePath === undefined) return false;
    const key = rg.filePath.split('/').join(sep);
    byFile.set(key, (byFile.get(key) ?? 0) + rg.numRows);
  }
  const counts: number[] = [];
  for (const p of partitions) {
    let n = 0;
    for (const f of p.files) {
      const c = byFile.get(relative(datasetDir, f));
      if (c === undefined) return false;
      n += c;
    }
    counts.push(n);
  }
  partitions.forEach((p, i) => (p.rows = counts[i] ?? 0));
  return true;
}

async function rowsFromFooters(partitions: HatsPartition[], signal: AbortSignal | undefined, root: string): Promise<void> {
  const jobs = partitions.flatMap((p) => p.files.map((f) => ({ p, f })));
  const perFile = new Map<string, number>();
  const width = 16;
  for (let i = 0; i < jobs.length; i += width) {
    throwIfAborted(signal, root);
    const batch = jobs.slice(i, i + width);
    const counts = await Promise.all(batch.map((j) => parquetRowCount(j.f)));
    batch.forEach((j, k) => perFile.set(j.f, counts[k] ?? 0));
  }
  for (const p of partitions) p.rows = p.files.reduce((s, f) => s + (perFile.get(f) ?? 0), 0);
}
