/**
 * Writing HATS catalogs: adaptive HEALPix partitioning of any table DuckDB can
 * read, one zstd Parquet leaf per partition, and the metadata files
 * (properties, partition_info.csv, _metadata, _common_metadata) LSDB expects.
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { dirname, relative, resolve, sep } from 'node:path';
import { BIGINT, DOUBLE, DuckDBScalarFunction, type DuckDBConnection } from '@duckdb/node-api';
import { ang2pixBig } from '../healpix/index.js';
import { hatsLeafPath, openHatsCatalog, type HatsCatalog } from './catalog.js';
import { ensureScalarFunction, sqlIdent, sqlString, withDuck } from './duck.js';
import { forEachInLanes } from '../lanes.js';
import { HatsAbortError, HatsError, HatsWriteError, throwIfAborted } from './errors.js';
import { decodeThriftStruct, mergeFooters, readFooterAndSize, schemaOnlyFooter, summarizeFooter, writeFooterOnlyParquet, type ThriftStruct } from './parquet-footer.js';
import { writePartitionInfo } from './partition-info.js';
import { writePropertiesFile } from './properties.js';

export interface HatsPartitionMeta {
  order: number;
  pixel: number;
  rows: number;
}

export interface WriteHatsMetadataInput {
  name: string;
  /** `dataproduct_type` @default 'object' */
  type?: string;
  raColumn: string;
  decColumn: string;
  partitions: HatsPartitionMeta[];
  /** Added to (and overriding) the generated properties. */
  extraProperties?: Record<string, string>;
}

const BUILDER = 'ubatch astro/hats';

/** `hats_creation_date` style: 2025-10-29T21:43UTC. */
function hatsDate(d: Date): string {
  return d.toISOString().slice(0, 16) + 'UTC';
}

/**
 * Write the catalog-level files for leaves already in place at
 * `hatsLeafPath(root, order, pixel)`: hats.properties (and a `properties`
 * copy), partition_info.csv, dataset/_metadata (every leaf's row groups, with
 * file paths) and dataset/_common_metadata (schema only).
 */
export async function writeHatsMetadata(root: string, meta: WriteHatsMetadataInput): Promise<void> {
  const absRoot = resolve(root);
  const partitions = [...meta.partitions].sort((a, b) => a.order - b.order || a.pixel - b.pixel);
  const datasetDir = resolve(absRoot, 'dataset');
  await mkdir(datasetDir, { recursive: true });

  // Leaf footers, read a few at a time: row counts are checked against what the caller claims.
  const leaves = new Array<{ relPath: string; meta: ThriftStruct }>(partitions.length);
  let bytes = 0;
  await forEachInLanes(partitions.length, 8, async (i) => {
    const p = partitions[i]!;
    const path = hatsLeafPath(absRoot, p.order, p.pixel);
    if (!existsSync(path)) {
      throw new HatsWriteError(`leaf of partition Norder=${p.order} Npix=${p.pixel} is missing: ${path}`, path);
    }
    const { footer, size } = await readFooterAndSize(path);
    const meta = decodeThriftStruct(footer, path);
    const n = summarizeFooter(meta).numRows;
    if (n !== p.rows) {
      throw new HatsWriteError(`leaf ${path} holds ${n} rows but partition metadata says ${p.rows}`, path);
    }
    bytes += size;
    leaves[i] = { relPath: relative(datasetDir, path).split(sep).join('/'), meta };
  });

  const totalRows = partitions.reduce((s, p) => s + p.rows, 0);
  const maxOrder = partitions.reduce((m, p) => Math.max(m, p.order), 0);
  const skyFraction = partitions.reduce((s, p) => s + 1 / (12 * 4 ** p.order), 0);
  const props: Record<string, string> = {
    obs_collection: meta.name,
    dataproduct_type: meta.type ?? 'object',
    hats_nrows: String(totalRows),
    hats_col_ra: meta.raColumn,
    hats_col_dec: meta.decColumn,
    hats_col_healpix: '_healpix_29',
    hats_col_healpix_order: '29',
    hats_npix_suffix: '.parquet',
    hats_builder: BUILDER,
    hats_creation_date: hatsDate(new Date()),
    hats_estsize: String(Math.ceil(bytes / 1024)),
    hats_release_date: new Date().toISOString().slice(0, 10),
    hats_version: 'v1.0',
    hats_order: String(maxOrder),
    moc_sky_fraction: skyFraction.toFixed(5),
    ...meta.extraProperties,
  };
  const first = leaves[0];
  await Promise.all([
    writePropertiesFile(resolve(absRoot, 'hats.properties'), props),
    writePropertiesFile(resolve(absRoot, 'properties'), props),
    writePartitionInfo(resolve(absRoot, 'partition_info.csv'), partitions),
    ...(first ? [writeFooterOnlyParquet(resolve(datasetDir, '_metadata'), mergeFooters(leaves)), writeFooterOnlyParquet(resolve(datasetDir, '_common_metadata'), schemaOnlyFooter(first.meta))] : []),
  ]);
}

// ---------------------------------------------------------------------------

export interface WriteHatsCatalogOptions {
  name: string;
  /** @default 'ra' */
  raColumn?: string;
  /** @default 'dec' */
  decColumn?: string;
  /** A pixel with more rows is split into its 4 children. @default 1_000_000 */
  maxRowsPerPartition?: number;
  /** Pixels are not split below this order (its partitions may exceed maxRows). @default 10, at most 24 */
  highestOrder?: number;
  /** `dataproduct_type` @default 'object' */
  type?: string;
  extraProperties?: Record<string, string>;
  signal?: AbortSignal;
  /** Called after each leaf is written. */
  onProgress?: (done: number, total: number) => void;
}

export interface CompiledWriteOptions {
  name: string;
  raColumn: string;
  decColumn: string;
  maxRowsPerPartition: number;
  highestOrder: number;
  type: string;
}

/** Fill defaults and reject impossible values (pure; unit-tested). */
export function compileWriteHatsOptions(opts: WriteHatsCatalogOptions, outDir = ''): CompiledWriteOptions {
  const maxRows = opts.maxRowsPerPartition ?? 1_000_000;
  const highestOrder = opts.highestOrder ?? 10;
  if (!opts.name || /[\r\n]/.test(opts.name)) throw new HatsWriteError(`catalog name ${JSON.stringify(opts.name)} is empty or has a line break`, outDir);
  if (!Number.isInteger(maxRows) || maxRows < 1) {
    throw new HatsWriteError(`maxRowsPerPartition must be a positive integer, got ${maxRows}`, outDir);
  }
  if (!Number.isInteger(highestOrder) || highestOrder < 0 || highestOrder > 24) {
    throw new HatsWriteError(`highestOrder must be an integer in 0..24, got ${highestOrder}`, outDir);
  }
  return {
    name: opts.name,
    raColumn: opts.raColumn ?? 'ra',
    decColumn: opts.decColumn ?? 'dec',
    maxRowsPerPartition: maxRows,
    highestOrder,
    type: opts.type ?? 'object',
  };
}

/**
 * Adaptive partitioning: start from the order-0 pixels and split any pixel
 * holding more than `maxRows` rows into its children, down to `highestOrder`.
 * `countsAtHighest` maps pixels at `highestOrder` to their row counts.
 */
export function planHatsPartitions(
  countsAtHighest: ReadonlyMap<number, number>,
  highestOrder: number,
  maxRows: number,
): HatsPartitionMeta[] {
  const levels: Map<number, number>[] = [];
  levels[highestOrder] = new Map(countsAtHighest);
  for (let k = highestOrder - 1; k >= 0; k--) {
    const finer = levels[k + 1] ?? new Map<number, number>();
    const coarse = new Map<number, number>();
    for (const [pix, n] of finer) {
      const parent = Math.floor(pix / 4);
      coarse.set(parent, (coarse.get(parent) ?? 0) + n);
    }
    levels[k] = coarse;
  }
  const out: HatsPartitionMeta[] = [];
  const visit = (order: number, pixel: number): void => {
    const n = levels[order]?.get(pixel) ?? 0;
    if (n === 0) return;
    if (n <= maxRows || order === highestOrder) {
      out.push({ order, pixel, rows: n });
      return;
    }
    for (let c = 0; c < 4; c++) visit(order + 1, pixel * 4 + c);
  };
  for (let p = 0; p < 12; p++) visit(0, p);
  return out;
}

/**
 * The same plan as planHatsPartitions, computed top-down against the staged
 * table: counts at order 0, then children counts only under the pixels that
 * must split. Pulling every order-`highestOrder` count into JS instead took
 * seconds for a million rows (one map entry per occupied pixel).
 */
async function planPartitionsInDuck(
  conn: DuckDBConnection,
  stage: string,
  highestOrder: number,
  maxRows: number,
): Promise<HatsPartitionMeta[]> {
  const out: HatsPartitionMeta[] = [];
  let counts = await pixelCounts(conn, stage, 0, undefined);
  for (let order = 0; counts.length > 0; order++) {
    const split: number[] = [];
    for (const [pixel, rows] of counts) {
      if (rows <= maxRows || order === highestOrder) out.push({ order, pixel, rows });
      else split.push(pixel);
    }
    if (split.length === 0) break;
    counts = await pixelCounts(conn, stage, order + 1, split);
  }
  return out.sort((a, b) => a.order - b.order || a.pixel - b.pixel);
}

/** [pixel, rows] at `order`, optionally only under the given parents (at order - 1). */
async function pixelCounts(
  conn: DuckDBConnection,
  stage: string,
  order: number,
  parents: number[] | undefined,
): Promise<[number, number][]> {
  const shift = 2 * (29 - order);
  const where = parents ? `WHERE (_healpix_29 >> ${shift + 2}) IN (${parents.join(', ')})` : '';
  const r = await conn.runAndReadAll(
    `SELECT (_healpix_29 >> ${shift})::BIGINT AS p, count(*)::BIGINT AS n FROM ${stage} ${where} GROUP BY p ORDER BY p`,
  );
  return r.getRows().map(([p, n]) => [Number(p), Number(n)]);
}

const HEALPIX29_FN = 'hats_healpix29';

/** DuckDB scalar `hats_healpix29(ra DOUBLE, dec DOUBLE) -> BIGINT` (NULL for NULL/invalid input). */
export function registerHealpix29(conn: DuckDBConnection): void {
  ensureScalarFunction(conn, HEALPIX29_FN, () =>
    DuckDBScalarFunction.create({
      name: HEALPIX29_FN,
      returnType: BIGINT,
      parameterTypes: [DOUBLE, DOUBLE],
      specialHandling: true, // we handle NULLs ourselves
      mainFunction: (_info, chunk, out) => {
        const ra = chunk.getColumnVector(0);
        const dec = chunk.getColumnVector(1);
        const n = chunk.rowCount;
        for (let i = 0; i < n; i++) {
          const a = ra.getItem(i);
          const d = dec.getItem(i);
          if (typeof a !== 'number' || typeof d !== 'number' || !Number.isFinite(a) || !(d >= -90 && d <= 90)) {
            out.setItem(i, null);
          } else {
            out.setItem(i, ang2pixBig(29, a, d));
          }
        }
        out.flush();
      },
    }),
  );
}

/** Heuristic: SQL text rather than a file path. */
function looksLikeSql(source: string): boolean {
  return /^\s*(select|with|from|values|\(|table\s)/i.test(source);
}

async function sourceSql(source: string, outDir: string): Promise<string> {
  if (looksLikeSql(source)) return `(${source})`;
  const path = resolve(source);
  if (!existsSync(path)) throw new HatsWriteError(`source ${path} does not exist`, path);
  const lower = path.toLowerCase();
  if (lower.endsWith('.parquet') || lower.endsWith('.parq')) return `read_parquet(${sqlString(path)})`;
  if (/\.(csv|tsv|txt)(\.gz|\.zst)?$/.test(lower)) return `read_csv_auto(${sqlString(path)})`;
  if ((await stat(path)).isDirectory()) return `read_parquet(${sqlString(path + '/**/*.parquet')}, hive_partitioning = false)`;
  throw new HatsWriteError(`cannot tell the format of source ${path} (expected .parquet, .csv or SQL) for ${outDir}`, path);
}

let stageCounter = 0;

/**
 * Partition a table (a Parquet/CSV file, a directory of Parquet files, or a
 * DuckDB SELECT) into a new HATS catalog at `outDir` (which must not exist or
 * be empty). Adds `_healpix_29` (INT64, order-29 NESTED index) as the first
 * column; leaves are sorted by it.
 */
export async function writeHatsCatalog(
  source: string,
  outDir: string,
  opts: WriteHatsCatalogOptions,
): Promise<HatsCatalog> {
  const root = resolve(outDir);
  const o = compileWriteHatsOptions(opts, root);
  if (existsSync(root) && (await readdir(root)).length > 0) {
    throw new HatsWriteError(`output directory ${root} exists and is not empty`, root);
  }
  throwIfAborted(opts.signal, root);
  const created = !existsSync(root);
  await mkdir(root, { recursive: true });
  const writeLeaves = async (conn: DuckDBConnection): Promise<HatsPartitionMeta[]> => {
    registerHealpix29(conn);
    const src = await sourceSql(source, root);
    const cols = await describeColumns(conn, src, root);
    for (const c of [o.raColumn, o.decColumn]) {
      if (!cols.includes(c)) {
        throw new HatsWriteError(`source has no column ${JSON.stringify(c)} (columns: ${cols.join(', ')})`, root);
      }
    }
    throwIfAborted(opts.signal, root);
    const stage = `hats_stage_${process.pid}_${++stageCounter}`;
    const exclude = cols.includes('_healpix_29') ? ' EXCLUDE (_healpix_29)' : '';
    await conn.run(
      `CREATE TEMP TABLE ${stage} AS SELECT ${HEALPIX29_FN}(${sqlIdent(o.raColumn)}, ${sqlIdent(o.decColumn)}) AS _healpix_29, *${exclude} ` +
        `FROM ${src} ORDER BY _healpix_29`,
    );
    try {
      throwIfAborted(opts.signal, root);
      const bad = await conn.runAndReadAll(`SELECT count(*) FROM ${stage} WHERE _healpix_29 IS NULL`);
      const nBad = Number(bad.getRows()[0]?.[0] ?? 0);
      if (nBad > 0) {
        throw new HatsWriteError(
          `${nBad} source rows have NULL or invalid ${o.raColumn}/${o.decColumn} (dec must be in [-90, 90])`,
          root,
        );
      }
      const plan = await planPartitionsInDuck(conn, stage, o.highestOrder, o.maxRowsPerPartition);
      // The stage is sorted; a range scan of it keeps that order when DuckDB preserves insertion
      // order (its default), which saves re-sorting every leaf. Someone may have turned it off.
      const ordered = await conn.runAndReadAll(`SELECT current_setting('preserve_insertion_order')`);
      const orderBy = ordered.getRows()[0]?.[0] === true ? '' : ' ORDER BY _healpix_29';
      for (let i = 0; i < plan.length; i++) {
        throwIfAborted(opts.signal, root);
        const p = plan[i];
        if (!p) continue;
        const leaf = hatsLeafPath(root, p.order, p.pixel);
        await mkdir(dirname(leaf), { recursive: true });
        const lo = BigInt(p.pixel) << BigInt(2 * (29 - p.order));
        const hi = BigInt(p.pixel + 1) << BigInt(2 * (29 - p.order));
        await conn.run(
          `COPY (SELECT * FROM ${stage} WHERE _healpix_29 >= ${lo} AND _healpix_29 < ${hi}${orderBy}) ` +
            `TO ${sqlString(leaf)} (FORMAT parquet, COMPRESSION zstd)`,
        );
        opts.onProgress?.(i + 1, plan.length);
      }
      return plan;
    } finally {
      await conn.run(`DROP TABLE IF EXISTS ${stage}`);
    }
  };
  try {
    const partitions = await withDuck(async (conn) => {
      // An abort also interrupts the statement in flight (staging a big source takes seconds).
      const interrupt = () => conn.interrupt();
      opts.signal?.addEventListener('abort', interrupt, { once: true });
      try {
        return await writeLeaves(conn);
      } finally {
        opts.signal?.removeEventListener('abort', interrupt);
      }
    });
    throwIfAborted(opts.signal, root);
    const extra: Record<string, string> = { hats_max_rows: String(o.maxRowsPerPartition), ...opts.extraProperties };
    await writeHatsMetadata(root, {
      name: o.name,
      type: o.type,
      raColumn: o.raColumn,
      decColumn: o.decColumn,
      partitions,
      extraProperties: extra,
    });
    return await openHatsCatalog(root, { margin: false });
  } catch (err) {
    // Leave nothing half-written: remove the directory we made, or empty the one we were given empty.
    if (created) await rm(root, { recursive: true, force: true });
    else for (const e of await readdir(root)) await rm(resolve(root, e), { recursive: true, force: true });
    if (opts.signal?.aborted && !(err instanceof HatsError)) {
      throw new HatsAbortError(`writing HATS catalog ${root} aborted`, root, { cause: err });
    }
    if (err instanceof HatsError) throw err;
    throw new HatsWriteError(`writing HATS catalog ${root} failed: ${err instanceof Error ? err.message : String(err)}`, root, {
      cause: err,
    });
  }
}

async function describeColumns(conn: DuckDBConnection, src: string, root: string): Promise<string[]> {
  try {
    const r = await conn.runAndReadAll(`DESCRIBE SELECT * FROM ${src}`);
    return r.getRows().map((row) => String(row[0]));
  } catch (err) {
    throw new HatsWriteError(`cannot read source for ${root}: ${err instanceof Error ? err.message : String(err)}`, root, {
      cause: err,
    });
  }
}
