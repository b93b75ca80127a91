/**
 * Partition-aware cross-match over HATS catalogs: the rows of one left
 * partition against the right rows that can lie within the radius of them.
 *
 * Alignment follows LSDB: a left partition L is cut into aligned pixels, one
 * per right primary partition R that overlaps it (the finer of L and R), plus
 * one per right margin partition that covers sky where the right catalog has
 * no primary partition. The left rows of an aligned pixel are matched against
 * R's rows plus R's margin rows. Since margin rows are the right rows within
 * the margin threshold outside R, every right row within the radius of a left
 * row is seen (when threshold >= radius), and every left row belongs to
 * exactly one aligned pixel, so a pair is produced once, by the partition
 * that holds its left row. Right rows present both in R and in its margin are
 * dropped from the margin by id.
 */
import type { DuckDBConnection } from '@duckdb/node-api';
import { ang2pixMany, MAX_SAFE_ORDER } from '../healpix/index.js';
import { readParquetSql, sqlIdent, withDuck, type HatsCatalog, type HatsPartition } from '../hats/index.js';
import { compileCrossmatchOptions, crossmatch, type CrossmatchOptions } from './crossmatch.js';
import { CrossmatchCatalogError, CrossmatchReadError, throwIfAborted } from './errors.js';

export interface PixelRef {
  order: number;
  pixel: number;
}

/** One aligned pixel of a left partition and the right data it is matched against. */
export interface AlignedUnit {
  /** Left rows inside this pixel are matched here (the finer of the left and right pixels). */
  aligned: PixelRef;
  /** Right primary partition; absent where only the margin covers the sky. */
  right?: PixelRef;
  /** Right margin partition read with it, if the right catalog has one for that pixel. */
  margin?: PixelRef;
}

/** Value of an id column: BIGINT comes back as bigint, VARCHAR as string. */
export type RowId = bigint | number | string | null;

export interface PartitionCrossmatchOptions extends Omit<CrossmatchOptions, 'rightIndex'> {
  /**
   * Read the right catalog's margin cache (`right.margin`). Without it, pairs across
   * right partition edges are missed (LSDB warns the same way).
   * @default true when the right catalog has a margin
   */
  useMargin?: boolean;
  /** Left id column reported with each pair. @default `default_index` property, else id/objectId/source_id if present */
  leftIdColumn?: string;
  /** Right id column: reported, and used to drop rows present in both a partition and its margin. @default as for left */
  rightIdColumn?: string;
}

export interface PartitionMatches {
  order: number;
  pixel: number;
  /** Rows in the left partition (in file order). */
  leftRows: number;
  /** Whether the right margin cache was read. */
  marginUsed: boolean;
  /** Row position of each pair's left row within the left partition. */
  left: Int32Array;
  leftId: RowId[];
  rightId: RowId[];
  rightRa: Float64Array;
  rightDec: Float64Array;
  /** 1 where the right row came from the margin cache. */
  rightFromMargin: Uint8Array;
  sepArcsec: Float64Array;
  /** 1 = nearest right row of that left row. */
  rank: Int32Array;
}

export function pixelsOverlap(a: PixelRef, b: PixelRef): boolean {
  if (a.order <= b.order) return Math.floor(b.pixel / 4 ** (b.order - a.order)) === a.pixel;
  return Math.floor(a.pixel / 4 ** (a.order - b.order)) === b.pixel;
}

const finer = (a: PixelRef, b: PixelRef): PixelRef => (a.order >= b.order ? a : b);

/** Pure alignment plan of one left partition against the right partitions and margin partitions. */
export function planPartitionMatch(
  left: PixelRef,
  rightPartitions: readonly PixelRef[],
  marginPartitions: readonly PixelRef[] = [],
): AlignedUnit[] {
  const units: AlignedUnit[] = [];
  for (const r of rightPartitions) {
    if (!pixelsOverlap(left, r)) continue;
    const unit: AlignedUnit = { aligned: pick(finer(left, r)), right: pick(r) };
    const m = marginPartitions.find((p) => p.order === r.order && p.pixel === r.pixel);
    if (m) unit.margin = pick(m);
    units.push(unit);
  }
  for (const m of marginPartitions) {
    if (!pixelsOverlap(left, m)) continue;
    if (rightPartitions.some((r) => pixelsOverlap(r, m))) continue;
    units.push({ aligned: pick(finer(left, m)), margin: pick(m) });
  }
  return units;
}

const pick = (p: PixelRef): PixelRef => ({ order: p.order, pixel: p.pixel });

interface Rows {
  ra: Float64Array;
  dec: Float64Array;
  id: RowId[];
}

const ID_CANDIDATES = ['id', 'objectId', 'source_id', 'sourceId', 'object_id', 'diaObjectId'];

async function columnsOf(conn: DuckDBConnection, files: readonly string[], where: string): Promise<string[]> {
  try {
    const r = await conn.runAndReadAll(`DESCRIBE SELECT * FROM ${readParquetSql(files)}`);
    return r.getRows().map((row) => String(row[0]));
  } catch (err) {
    throw new CrossmatchReadError(where, `cannot read the schema: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

function resolveIdColumn(catalog: HatsCatalog, requested: string | undefined, columns: readonly string[]): string | undefined {
  if (requested !== undefined) {
    if (!columns.includes(requested)) {
      throw new CrossmatchCatalogError(catalog.root, `has no id column ${JSON.stringify(requested)} (columns: ${columns.join(', ')})`);
    }
    return requested;
  }
  const def = catalog.properties.default_index;
  if (def !== undefined && columns.includes(def)) return def;
  return ID_CANDIDATES.find((c) => columns.includes(c));
}

async function readRows(
  conn: DuckDBConnection,
  catalog: HatsCatalog,
  partition: HatsPartition,
  idColumn: string | undefined,
): Promise<Rows> {
  const cols = [sqlIdent(catalog.raColumn), sqlIdent(catalog.decColumn), idColumn === undefined ? 'NULL' : sqlIdent(idColumn)];
  const ra: number[] = [];
  const dec: number[] = [];
  const id: RowId[] = [];
  // one file at a time, so row positions follow the files' own order
  for (const file of partition.files) {
    let columns;
    try {
      const reader = await conn.runAndReadAll(`SELECT ${cols.join(', ')} FROM ${readParquetSql([file])}`);
      columns = reader.getColumns();
    } catch (err) {
      throw new CrossmatchReadError(file, `partition Norder=${partition.order} Npix=${partition.pixel}: ${err instanceof Error ? err.message : String(err)}`, {
        cause: err,
      });
    }
    const [cRa = [], cDec = [], cId = []] = columns;
    for (let i = 0; i < cRa.length; i++) {
      const a = cRa[i];
      const d = cDec[i];
      if (typeof a !== 'number' || typeof d !== 'number') {
        throw new CrossmatchReadError(file, `row ${i}: ${catalog.raColumn}/${catalog.decColumn} are not numbers (${String(a)}, ${String(d)})`);
      }
      ra.push(a);
      dec.push(d);
      const v = cId[i];
      id.push(typeof v === 'bigint' || typeof v === 'number' || typeof v === 'string' ? v : null);
    }
  }
  return { ra: Float64Array.from(ra), dec: Float64Array.from(dec), id };
}

function findPartition(catalog: HatsCatalog, p: PixelRef): HatsPartition {
  const found = catalog.partitions.find((q) => q.order === p.order && q.pixel === p.pixel);
  if (!found) throw new CrossmatchCatalogError(catalog.root, `has no partition Norder=${p.order} Npix=${p.pixel}`);
  return found;
}

/**
 * Cross-matches the rows of one partition of `left` against `right` (its
 * overlapping partitions plus their margin cache rows). Pairs are ordered by
 * left row position, then rank.
 */
export async function crossmatchPartition(
  left: HatsCatalog,
  partition: PixelRef,
  right: HatsCatalog,
  options: PartitionCrossmatchOptions,
): Promise<PartitionMatches> {
  const opts = compileCrossmatchOptions(options);
  const leftPart = findPartition(left, partition);
  const margin = options.useMargin === false ? undefined : right.margin;
  if (margin !== undefined) {
    const thr = right.marginThresholdArcsec ?? margin.marginThresholdArcsec;
    if (thr === undefined || thr < opts.radiusArcsec) {
      throw new CrossmatchCatalogError(
        margin.root,
        `margin threshold ${thr ?? 'unknown'} arcsec is smaller than the match radius ${opts.radiusArcsec} arcsec; ` +
          'pairs across partition edges would be missed',
      );
    }
  }
  throwIfAborted(options.signal, `partition Norder=${partition.order} Npix=${partition.pixel}`);
  const units = planPartitionMatch(leftPart, right.partitions, margin?.partitions ?? []);
  const maxOrder = units.reduce((m, u) => Math.max(m, u.aligned.order), leftPart.order);
  if (maxOrder > MAX_SAFE_ORDER) {
    throw new CrossmatchCatalogError(right.root, `partition order ${maxOrder} is above ${MAX_SAFE_ORDER}, the deepest order supported here`);
  }

  return withDuck(async (conn) => {
    const leftFiles = leftPart.files;
    if (leftFiles.length === 0) throw new CrossmatchCatalogError(left.root, `partition Norder=${leftPart.order} Npix=${leftPart.pixel} has no leaf files`);
    const leftIdCol = resolveIdColumn(left, options.leftIdColumn, await columnsOf(conn, leftFiles, leftFiles[0]!));
    const leftRows = await readRows(conn, left, leftPart, leftIdCol);
    const n = leftRows.ra.length;
    // HEALPix pixel of each left row at the deepest aligned order, to split rows between units
    const deepPix = maxOrder > leftPart.order ? ang2pixMany(maxOrder, leftRows.ra, leftRows.dec) : undefined;

    let rightIdCol: string | undefined;
    let rightIdResolved = false;
    const pairs: Array<{ leftPos: Int32Array; rows: Rows; fromMargin: Uint8Array; m: ReturnType<typeof crossmatch> }> = [];
    for (const unit of units) {
      throwIfAborted(options.signal, `partition Norder=${partition.order} Npix=${partition.pixel}`);
      // left rows of this aligned pixel
      let leftPos: Int32Array;
      if (unit.aligned.order > leftPart.order && deepPix) {
        const div = 4 ** (maxOrder - unit.aligned.order);
        const keep: number[] = [];
        for (let i = 0; i < n; i++) if (Math.floor(deepPix[i]! / div) === unit.aligned.pixel) keep.push(i);
        leftPos = Int32Array.from(keep);
      } else {
        leftPos = Int32Array.from({ length: n }, (_, i) => i);
      }
      if (leftPos.length === 0) continue;
      const parts: Array<{ cat: HatsCatalog; part: HatsPartition; isMargin: boolean }> = [];
      if (unit.right) parts.push({ cat: right, part: findPartition(right, unit.right), isMargin: false });
      if (unit.margin && margin) parts.push({ cat: margin, part: findPartition(margin, unit.margin), isMargin: true });
      const ra: number[] = [];
      const dec: number[] = [];
      const id: RowId[] = [];
      const fromMargin: number[] = [];
      const seen = new Set<RowId>();
      for (const { cat, part, isMargin } of parts) {
        if (part.files.length === 0) continue;
        if (!rightIdResolved) {
          rightIdCol = resolveIdColumn(right, options.rightIdColumn, await columnsOf(conn, part.files, part.files[0]!));
          rightIdResolved = true;
        }
        const rows = await readRows(conn, cat, part, rightIdCol);
        for (let j = 0; j < rows.ra.length; j++) {
          const rid = rows.id[j] ?? null;
          if (rightIdCol !== undefined && rid !== null) {
            // a row in both the partition and its margin is kept once (from the partition)
            if (isMargin && seen.has(rid)) continue;
            if (!isMargin) seen.add(rid);
          }
          ra.push(rows.ra[j]!);
          dec.push(rows.dec[j]!);
          id.push(rid);
          fromMargin.push(isMargin ? 1 : 0);
        }
      }
      if (ra.length === 0) continue;
      const rightRows: Rows = { ra: Float64Array.from(ra), dec: Float64Array.from(dec), id };
      const sub = {
        ra: Float64Array.from(leftPos, (i) => leftRows.ra[i]!),
        dec: Float64Array.from(leftPos, (i) => leftRows.dec[i]!),
      };
      const xmOpts: CrossmatchOptions = { radiusArcsec: opts.radiusArcsec, mode: opts.mode, minRadiusArcsec: opts.minRadiusArcsec };
      if (opts.mode === 'nearest') xmOpts.k = opts.k;
      if (options.signal) xmOpts.signal = options.signal;
      const m = crossmatch(sub, rightRows, xmOpts);
      pairs.push({ leftPos, rows: rightRows, fromMargin: Uint8Array.from(fromMargin), m });
    }

    // merge units; each left row is in exactly one unit, so sorting by left position keeps rank order
    const total = pairs.reduce((s, p) => s + p.m.left.length, 0);
    const flat: Array<{ pos: number; unit: number; p: number }> = [];
    pairs.forEach((u, ui) => {
      for (let p = 0; p < u.m.left.length; p++) flat.push({ pos: u.leftPos[u.m.left[p]!]!, unit: ui, p });
    });
    flat.sort((a, b) => a.pos - b.pos || a.p - b.p);
    const out: PartitionMatches = {
      order: leftPart.order,
      pixel: leftPart.pixel,
      leftRows: n,
      marginUsed: margin !== undefined,
      left: new Int32Array(total),
      leftId: new Array<RowId>(total),
      rightId: new Array<RowId>(total),
      rightRa: new Float64Array(total),
      rightDec: new Float64Array(total),
      rightFromMargin: new Uint8Array(total),
      sepArcsec: new Float64Array(total),
      rank: new Int32Array(total),
    };
    flat.forEach(({ pos, unit, p }, q) => {
      const u = pairs[unit]!;
      const r = u.m.right[p]!;
      out.left[q] = pos;
      out.leftId[q] = leftRows.id[pos] ?? null;
      out.rightId[q] = u.rows.id[r] ?? null;
      out.rightRa[q] = u.rows.ra[r]!;
      out.rightDec[q] = u.rows.dec[r]!;
      out.rightFromMargin[q] = u.fromMargin[r]!;
      out.sepArcsec[q] = u.m.sepArcsec[p]!;
      out.rank[q] = u.m.rank[p]!;
    });
    return out;
  });
}

/**
 * Every left partition in turn (sequentially; a planner would hand them to
 * separate tasks). Progress counts partitions.
 */
export async function crossmatchCatalogs(
  left: HatsCatalog,
  right: HatsCatalog,
  options: PartitionCrossmatchOptions,
): Promise<PartitionMatches[]> {
  const out: PartitionMatches[] = [];
  const total = left.partitions.length;
  for (let i = 0; i < total; i++) {
    const p = left.partitions[i]!;
    const { onProgress: _ignored, ...perPartition } = options;
    out.push(await crossmatchPartition(left, p, right, perPartition));
    options.onProgress?.(i + 1, total);
  }
  return out;
}
