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
import { readColumns } from '../tables.js';
import { compileCrossmatchOptions, crossmatch, type CrossmatchOptions } from './crossmatch.js';
import { Scratch } from './scratch.js';
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
  /**
   * The left partition's positions, already read by the caller (file order, as this function
   * would read them): the left files are then not read again, and `leftId` comes back null.
   */
  leftPoints?: { ra: Float64Array; dec: Float64Array };
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
  /** Left id of each pair (null throughout when `leftPoints` was given). */
  leftId: RowId[];
  rightId: RowId[];
  /** The right ids as a typed column when the right id column is BIGINT (NULLs marked 0 in `valid`, present only when there are NULLs). */
  rightIdBig?: { data: BigInt64Array; valid?: Uint8Array | undefined };
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

/** Ids of a batch of rows: BIGINT ids as a typed array (NULLs marked in `valid`), other types as values. */
type IdColumn = { big: BigInt64Array; valid?: Uint8Array | undefined } | { vals: readonly RowId[] } | undefined;

interface Rows {
  ra: Float64Array;
  dec: Float64Array;
  id: IdColumn;
  /** `_healpix_29` of each row when the file has it (margin rows: used to find rows that sit in the partition itself) */
  hp29?: BigInt64Array | undefined;
}

function idAt(id: IdColumn, i: number): RowId {
  if (id === undefined) return null;
  if ('big' in id) return id.valid && !id.valid[i] ? null : id.big[i]!;
  return id.vals[i] ?? null;
}

const ID_CANDIDATES = ['id', 'objectId', 'source_id', 'sourceId', 'object_id', 'diaObjectId'];

interface Described {
  names: string[];
  types: Map<string, string>;
}

async function columnsOf(conn: DuckDBConnection, files: readonly string[], where: string, scratch?: Scratch): Promise<Described> {
  const key = files.join('\n');
  const known = scratch?.schemas.get(key);
  if (known) return known;
  try {
    const r = await conn.runAndReadAll(`DESCRIBE SELECT * FROM ${readParquetSql(files)}`);
    const rows = r.getRows();
    const d = { names: rows.map((row) => String(row[0])), types: new Map(rows.map((row) => [String(row[0]), String(row[1])])) };
    scratch?.schemas.set(key, d);
    return d;
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

/** How a side's rows are read: its id column (and whether it is BIGINT, read as a typed array) and whether `_healpix_29` is there. */
interface ReadPlan {
  idColumn: string | undefined;
  idIsBigint: boolean;
  withHp29: boolean;
}

function readPlan(d: Described, idColumn: string | undefined, wantHp29: boolean): ReadPlan {
  return { idColumn, idIsBigint: idColumn !== undefined && d.types.get(idColumn) === 'BIGINT', withHp29: wantHp29 && d.types.get('_healpix_29') === 'BIGINT' };
}

/** Rows of a partition, one columnar read per file (row positions follow the files' own order). */
/**
 * With `into`, a one-file partition's typed columns are read straight into `into.scratch` under
 * names prefixed `into.tag` (valid until the next read with that tag).
 */
async function readRows(conn: DuckDBConnection, catalog: HatsCatalog, partition: HatsPartition, plan: ReadPlan, into?: { scratch: Scratch; tag: string }): Promise<Rows> {
  const idSql = plan.idColumn === undefined ? 'NULL' : sqlIdent(plan.idColumn);
  const parts: { ra: Float64Array; dec: Float64Array; big?: BigInt64Array; valid?: Uint8Array | undefined; vals?: unknown[]; hp?: BigInt64Array }[] = [];
  for (const file of partition.files) {
    const what = `partition Norder=${partition.order} Npix=${partition.pixel}`;
    // no placeholder column when `_healpix_29` is not wanted: a NULL column is read value by value
    const cols = [`CAST(${sqlIdent(catalog.raColumn)} AS DOUBLE)`, `CAST(${sqlIdent(catalog.decColumn)} AS DOUBLE)`, idSql, ...(plan.withHp29 ? ['"_healpix_29"'] : [])];
    let r;
    try {
      const alloc = into && partition.files.length === 1
        ? (kind: 'f64' | 'i64', n: number, j: number) => (kind === 'f64' ? into.scratch.f64(`${into.tag}.${j}`, n) : into.scratch.i64(`${into.tag}.${j}`, n))
        : undefined;
      r = await readColumns(conn, `SELECT ${cols.join(', ')} FROM ${readParquetSql([file])}`, ['f64', 'f64', plan.idIsBigint ? 'i64' : 'any', ...(plan.withHp29 ? (['i64'] as const) : [])] as const, alloc);
    } catch (err) {
      throw new CrossmatchReadError(file, `${what}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    const [ra, dec, id, hp] = r.columns as unknown as [Float64Array, Float64Array, BigInt64Array | unknown[], BigInt64Array | undefined];
    for (let i = 0; i < r.rows; i++) {
      if (Number.isNaN(ra[i]!) || Number.isNaN(dec[i]!)) {
        throw new CrossmatchReadError(file, `row ${i}: ${catalog.raColumn}/${catalog.decColumn} are not numbers (${ra[i]}, ${dec[i]})`);
      }
    }
    parts.push({ ra, dec, ...(id instanceof BigInt64Array ? { big: id, valid: r.valid[2] } : { vals: id as unknown[] }), ...(plan.withHp29 ? { hp } : {}) });
  }
  return concatRows(parts.map((p) => ({
    ra: p.ra,
    dec: p.dec,
    id: plan.idColumn === undefined ? undefined : p.big ? { big: p.big, valid: p.valid } : { vals: (p.vals ?? []).map((v) => (typeof v === 'bigint' || typeof v === 'number' || typeof v === 'string' ? v : null)) },
    hp29: p.hp,
  })));
}

/**
 * Rows of several batches one after the other (typed copies; ids stay typed when every batch is).
 * With `scratch`, positions and BIGINT ids are views of its memory (valid until the next concat
 * with it) and `_healpix_29` is not carried.
 */
function concatRows(list: Rows[], scratch?: Scratch): Rows {
  if (list.length === 1) return list[0]!;
  const n = list.reduce((s, r) => s + r.ra.length, 0);
  const ra = scratch ? scratch.f64('rows.ra', n) : new Float64Array(n);
  const dec = scratch ? scratch.f64('rows.dec', n) : new Float64Array(n);
  const allBig = list.every((r) => r.id !== undefined && 'big' in r.id);
  const noId = list.every((r) => r.id === undefined);
  const allHp = list.every((r) => r.hp29 !== undefined) && !scratch;
  const big = allBig ? (scratch ? new BigInt64Array(scratch.f64('rows.id', n).buffer, 0, n) : new BigInt64Array(n)) : undefined;
  const anyNull = allBig && list.some((r) => r.id !== undefined && 'big' in r.id && r.id.valid !== undefined);
  const valid = anyNull ? new Uint8Array(n).fill(1) : undefined;
  const vals: RowId[] | undefined = !allBig && !noId ? new Array<RowId>(n) : undefined;
  const hp29 = allHp ? new BigInt64Array(n) : undefined;
  let o = 0;
  for (const r of list) {
    const m = r.ra.length;
    ra.set(r.ra, o);
    dec.set(r.dec, o);
    if (big && r.id && 'big' in r.id) {
      big.set(r.id.big, o);
      if (valid && r.id.valid) valid.set(r.id.valid, o);
    }
    if (vals) for (let i = 0; i < m; i++) vals[o + i] = idAt(r.id, i);
    if (hp29 && r.hp29) hp29.set(r.hp29, o);
    o += m;
  }
  return { ra, dec, id: big ? { big, valid } : vals ? { vals } : undefined, hp29 };
}

/** Row positions (into `rows`) to keep, or undefined for all. */
function subsetRows(rows: Rows, keep: Int32Array): Rows {
  const ra = new Float64Array(keep.length);
  const dec = new Float64Array(keep.length);
  for (let i = 0; i < keep.length; i++) {
    ra[i] = rows.ra[keep[i]!]!;
    dec[i] = rows.dec[keep[i]!]!;
  }
  let id: IdColumn;
  if (rows.id && 'big' in rows.id) {
    const big = new BigInt64Array(keep.length);
    const src = rows.id.big;
    for (let i = 0; i < keep.length; i++) big[i] = src[keep[i]!]!;
    const v = rows.id.valid;
    id = { big, valid: v ? Uint8Array.from(keep, (k) => v[k]!) : undefined };
  } else if (rows.id) {
    const src = rows.id;
    id = { vals: Array.from(keep, (k) => idAt(src, k)) };
  }
  return { ra, dec, id };
}

function findPartition(catalog: HatsCatalog, p: PixelRef): HatsPartition {
  const found = catalog.partitions.find((q) => q.order === p.order && q.pixel === p.pixel);
  if (!found) throw new CrossmatchCatalogError(catalog.root, `has no partition Norder=${p.order} Npix=${p.pixel}`);
  return found;
}

/**
 * The margin rows minus those that are also rows of the partition itself (same id): a
 * margin cache should hold only rows outside its partition, but some carry a few of the
 * partition's own rows. Such a row lies inside the partition's pixel, so only margin rows
 * inside it (by `_healpix_29` when present, else by position) are looked up by id, and the
 * partition's ids are scanned only when there is one (no id set of the whole partition).
 */
function dropMarginDuplicates(primary: Rows, marginRows: Rows, rPart: PixelRef): Rows {
  const m = marginRows.ra.length;
  const inside: number[] = [];
  const shift = BigInt(2 * (29 - rPart.order));
  const pix = BigInt(rPart.pixel);
  const byPos = ang2pixMany(rPart.order, marginRows.ra, marginRows.dec);
  for (let i = 0; i < m; i++) {
    const viaHp = marginRows.hp29 !== undefined && marginRows.hp29[i]! >> shift === pix;
    if (viaHp || byPos[i] === rPart.pixel) inside.push(i);
  }
  if (inside.length === 0) return marginRows;
  const wanted = new Map<RowId, number[]>();
  for (const i of inside) {
    const id = idAt(marginRows.id, i);
    if (id === null) continue;
    const l = wanted.get(id);
    if (l) l.push(i);
    else wanted.set(id, [i]);
  }
  if (wanted.size === 0) return marginRows;
  const drop = new Uint8Array(m);
  let dropped = 0;
  for (let j = 0; j < primary.ra.length; j++) {
    const l = wanted.get(idAt(primary.id, j));
    if (l) for (const i of l) if (!drop[i]) {
      drop[i] = 1;
      dropped++;
    }
  }
  if (dropped === 0) return marginRows;
  const keep = new Int32Array(m - dropped);
  for (let i = 0, k = 0; i < m; i++) if (!drop[i]) keep[k++] = i;
  return subsetRows(marginRows, keep);
}

/** One aligned unit's pairs, gathered out of its (temporary) right rows. */
interface UnitPairs {
  /** left row position of each pair */
  pos: Int32Array;
  big?: BigInt64Array;
  bigValid?: Uint8Array | undefined;
  vals?: RowId[];
  ra: Float64Array;
  dec: Float64Array;
  fromMargin: Uint8Array;
  sep: Float64Array;
  rank: Int32Array;
}

function gatherUnit(m: ReturnType<typeof crossmatch>, leftPos: Int32Array, rows: Rows, marginFrom: number): UnitPairs {
  const k = m.left.length;
  const u: UnitPairs = { pos: new Int32Array(k), ra: new Float64Array(k), dec: new Float64Array(k), fromMargin: new Uint8Array(k), sep: m.sepArcsec, rank: m.rank };
  const id = rows.id;
  if (id && 'big' in id) {
    u.big = new BigInt64Array(k);
    if (id.valid) u.bigValid = new Uint8Array(k);
  } else if (id) u.vals = new Array<RowId>(k);
  for (let p = 0; p < k; p++) {
    const r = m.right[p]!;
    u.pos[p] = leftPos[m.left[p]!]!;
    u.ra[p] = rows.ra[r]!;
    u.dec[p] = rows.dec[r]!;
    u.fromMargin[p] = r >= marginFrom ? 1 : 0;
    if (u.big && id && 'big' in id) {
      u.big[p] = id.big[r]!;
      if (u.bigValid && id.valid) u.bigValid[p] = id.valid[r]!;
    } else if (u.vals) u.vals[p] = idAt(id, r);
  }
  return u;
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
    let leftRows: Rows;
    if (options.leftPoints) {
      leftRows = { ra: options.leftPoints.ra, dec: options.leftPoints.dec, id: undefined };
    } else {
      const leftDescribed = await columnsOf(conn, leftFiles, leftFiles[0]!);
      const leftIdCol = resolveIdColumn(left, options.leftIdColumn, leftDescribed.names);
      leftRows = await readRows(conn, left, leftPart, readPlan(leftDescribed, leftIdCol, false));
    }
    const n = leftRows.ra.length;
    // HEALPix pixel of each left row at the deepest aligned order, to split rows between units
    const deepPix = maxOrder > leftPart.order ? ang2pixMany(maxOrder, leftRows.ra, leftRows.dec) : undefined;

    let rightPlan: ReadPlan | undefined;
    let marginHp29: boolean | undefined;
    // the units' right rows and index arrays are temporary: built in reused memory, each unit's
    // pairs gathered into small arrays of their own right after its match
    const scratch = options.scratch ?? new Scratch();
    const pairs: UnitPairs[] = [];
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
      const rPart = unit.right ? findPartition(right, unit.right) : undefined;
      const mPart = unit.margin && margin ? findPartition(margin, unit.margin) : undefined;
      for (const part of [rPart, mPart]) {
        if (rightPlan === undefined && part && part.files.length > 0) {
          const d = await columnsOf(conn, part.files, part.files[0]!, scratch);
          rightPlan = readPlan(d, resolveIdColumn(right, options.rightIdColumn, d.names), true);
        }
      }
      if (marginHp29 === undefined && mPart && mPart.files.length > 0) marginHp29 = (await columnsOf(conn, mPart.files, mPart.files[0]!, scratch)).types.get('_healpix_29') === 'BIGINT';
      // the right rows live until this unit's pairs are gathered: read into reused memory
      const primary = rPart && rPart.files.length > 0 && rightPlan ? await readRows(conn, right, rPart, { ...rightPlan, withHp29: false }, { scratch, tag: 'primary' }) : undefined;
      let marginRows = mPart && mPart.files.length > 0 && rightPlan && margin ? await readRows(conn, margin, mPart, { ...rightPlan, withHp29: marginHp29 === true }, { scratch, tag: 'margin' }) : undefined;
      if (primary && marginRows && rPart && rightPlan?.idColumn !== undefined) marginRows = dropMarginDuplicates(primary, marginRows, rPart);
      const batches = [primary, marginRows].filter((r): r is Rows => r !== undefined && r.ra.length > 0);
      if (batches.length === 0) continue;
      const rightRows = concatRows(batches, scratch);
      const marginFrom = marginRows ? rightRows.ra.length - marginRows.ra.length : rightRows.ra.length;
      const sub = {
        ra: Float64Array.from(leftPos, (i) => leftRows.ra[i]!),
        dec: Float64Array.from(leftPos, (i) => leftRows.dec[i]!),
      };
      const xmOpts: CrossmatchOptions = { radiusArcsec: opts.radiusArcsec, mode: opts.mode, minRadiusArcsec: opts.minRadiusArcsec, scratch };
      if (opts.mode === 'nearest') xmOpts.k = opts.k;
      if (options.signal) xmOpts.signal = options.signal;
      const m = crossmatch(sub, rightRows, xmOpts);
      pairs.push(gatherUnit(m, leftPos, rightRows, marginFrom));
    }

    // merge units: each left row is in exactly one unit and a unit's pairs are in (left row, rank)
    // order, so a counting sort by left position keeps rank order (no per-pair objects)
    const total = pairs.reduce((s, p) => s + p.pos.length, 0);
    const start = new Int32Array(n + 1);
    for (const u of pairs) for (let p = 0; p < u.pos.length; p++) start[u.pos[p]! + 1]!++;
    for (let i = 0; i < n; i++) start[i + 1]! += start[i]!;
    const allBig = pairs.every((u) => u.big !== undefined);
    const big = allBig && total > 0 ? new BigInt64Array(total) : undefined;
    let bigValid: Uint8Array | undefined;
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
    for (const u of pairs) {
      for (let p = 0; p < u.pos.length; p++) {
        const pos = u.pos[p]!;
        const q = start[pos]!++;
        out.left[q] = pos;
        out.leftId[q] = idAt(leftRows.id, pos);
        const id = u.big ? (u.bigValid && !u.bigValid[p] ? null : u.big[p]!) : (u.vals?.[p] ?? null);
        out.rightId[q] = id;
        if (big) {
          if (id === null) (bigValid ??= new Uint8Array(total).fill(1))[q] = 0;
          else big[q] = id as bigint;
        }
        out.rightRa[q] = u.ra[p]!;
        out.rightDec[q] = u.dec[p]!;
        out.rightFromMargin[q] = u.fromMargin[p]!;
        out.sepArcsec[q] = u.sep[p]!;
        out.rank[q] = u.rank[p]!;
      }
    }
    if (big) out.rightIdBig = { data: big, valid: bigValid };
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
