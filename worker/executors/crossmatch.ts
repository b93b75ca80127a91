/**
 * `crossmatch`: positional cross-match of a left catalog against a right one,
 * one task per LEFT partition (a plain-file left is one task).
 *
 * A task matches its left rows against the right partitions that overlap its
 * pixel plus the right margin cache (astro's crossmatchPartition: every pair is
 * produced exactly once, by the task holding its left row, as LSDB does). A
 * plain-file right side (or a plain-file left side) is matched whole with the
 * in-memory kernel (astro's crossmatch). The planner puts in each task's
 * `unit` what the task needs to know of both catalogs (column names, the
 * overlapping right partitions and margin partitions), so tasks never open
 * the catalogs' metadata.
 *
 * Output `part.parquet` (lands at the left partition's HATS leaf path), one
 * row per pair, ordered by left row then rank:
 *   left_<left_id>, right_<right_id>, separation_arcsec, rank (1 = nearest),
 *   ra, dec (the left row's position: the output is partitioned like the left),
 *   _healpix_29 (when the left has it), right_ra, right_dec,
 *   left_<c> for c in left_columns, right_<c> for c in right_columns.
 *
 * params: { radius_arcsec: 1, k: 1, mode: nearest | all, left_columns: [], right_columns: [],
 *           left_id: objectId, right_id: source_id }
 */
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { DuckDBAppender, DuckDBConnection } from '@duckdb/node-api';
import { crossmatch, hats, inLanes, tables } from '../../astro/index.js';
import { InputError, TaskCancelledError, TaskFailedError } from '../errors.js';
import { fileRecord } from '../files.js';
import { hashInputsInBackground, taskPartitions } from './inputs.js';
import { hatsLeafRelPath } from '../../protocol/index.js';
import type { ExecContext, ExecResult, Executor } from '../types.js';

export interface CrossmatchParams {
  radiusArcsec: number;
  k: number;
  mode: 'nearest' | 'all';
  leftColumns: string[];
  rightColumns: string[];
  leftId: string;
  rightId: string;
}

/** A partition as the planner hands it to a task. */
export interface UnitPartition {
  order: number;
  pixel: number;
  files: string[];
}

/** What a crossmatch task knows of one side (set by the planner). */
export interface CrossmatchSide {
  kind: 'hats' | 'file';
  /** catalog directory, or the file */
  root: string;
  raColumn: string;
  decColumn: string;
  /** right side, HATS: the partitions that can hold matches of this task's left rows (all of them for a plain-file left) */
  partitions?: UnitPartition[];
  margin?: { root: string; thresholdArcsec: number; partitions: UnitPartition[] };
}

export interface CrossmatchUnit {
  left: CrossmatchSide;
  right: CrossmatchSide;
}

const bad = (message: string, where: string) => new InputError(message, 'invalid_spec', where);

function columnList(v: unknown, where: string): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string' && x !== '')) throw bad(`${where.slice(1).replace('/', '.')} must be a list of column names`, where);
  return [...new Set(v as string[])];
}

/** Fills defaults and rejects bad values (InputError with the spec field). Pure. */
export function crossmatchParams(params: unknown): CrossmatchParams {
  const p = (params ?? {}) as Record<string, unknown>;
  // rows_per_task / partitions_per_task: how the planner packs left partitions into tasks (checked there)
  const known = ['radius_arcsec', 'k', 'mode', 'left_columns', 'right_columns', 'left_id', 'right_id', 'rows_per_task', 'partitions_per_task'];
  for (const k of Object.keys(p)) if (!known.includes(k)) throw bad(`unknown crossmatch parameter ${JSON.stringify(k)} (known: ${known.join(', ')})`, `/params/${k}`);
  const radius = p.radius_arcsec ?? 1;
  if (typeof radius !== 'number' || !Number.isFinite(radius) || radius <= 0 || radius > 3600) throw bad('params.radius_arcsec must be a number > 0 and <= 3600', '/params/radius_arcsec');
  const mode = p.mode ?? 'nearest';
  if (mode !== 'nearest' && mode !== 'all') throw bad("params.mode must be 'nearest' or 'all'", '/params/mode');
  const k = p.k ?? 1;
  if (!(Number.isInteger(k) && (k as number) >= 1 && (k as number) <= 1000)) throw bad('params.k must be an integer from 1 to 1000', '/params/k');
  if (mode === 'all' && p.k !== undefined && k !== 1) throw bad("params.k conflicts with mode 'all' (every pair within the radius is returned)", '/params/k');
  for (const f of ['left_id', 'right_id'] as const) if (p[f] !== undefined && (typeof p[f] !== 'string' || p[f] === '')) throw bad(`params.${f} must be a column name`, `/params/${f}`);
  return {
    radiusArcsec: radius,
    k: k as number,
    mode,
    leftColumns: columnList(p.left_columns, '/params/left_columns'),
    rightColumns: columnList(p.right_columns, '/params/right_columns'),
    leftId: (p.left_id as string | undefined) ?? 'objectId',
    rightId: (p.right_id as string | undefined) ?? 'source_id',
  };
}

function isPartList(v: unknown): v is UnitPartition[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'object' && x !== null && Number.isInteger((x as UnitPartition).order) && Number.isInteger((x as UnitPartition).pixel) && Array.isArray((x as UnitPartition).files));
}

function checkSide(v: unknown, name: string, taskId: string): CrossmatchSide {
  const s = v as Partial<CrossmatchSide> | undefined;
  const ok = s && (s.kind === 'hats' || s.kind === 'file') && typeof s.root === 'string' && typeof s.raColumn === 'string' && typeof s.decColumn === 'string'
    && (s.partitions === undefined || isPartList(s.partitions))
    && (s.margin === undefined || (typeof s.margin.root === 'string' && typeof s.margin.thresholdArcsec === 'number' && isPartList(s.margin.partitions)));
  if (!ok) throw new InputError(`task ${taskId} carries no valid ${name} side in its unit (planned by an older coordinator?)`, 'invalid_task', `task ${taskId}`);
  return s as CrossmatchSide;
}

function rightFiles(r: CrossmatchSide, withMargin: boolean): string[] {
  if (r.kind === 'file') return [r.root];
  const files = (r.partitions ?? []).flatMap((p) => p.files);
  if (withMargin && r.margin) files.push(...r.margin.partitions.flatMap((p) => p.files));
  return files;
}

const firstLine = (err: unknown) => ((err as Error)?.message ?? String(err)).split('\n')[0] ?? '';
let tableCounter = 0;

async function describe(conn: DuckDBConnection, files: string[], where: string): Promise<string[]> {
  return (await describeTypes(conn, files, where)).map((c) => c.name);
}

async function describeTypes(conn: DuckDBConnection, files: string[], where: string): Promise<{ name: string; type: string }[]> {
  try {
    return (await conn.runAndReadAll(`DESCRIBE SELECT * FROM ${tables.readFilesSql(files)}`)).getRows().map((r) => ({ name: String(r[0]), type: String(r[1]) }));
  } catch (err) {
    throw new InputError(`cannot read ${where}: ${firstLine(err)}`, /No files found|does not exist|Cannot open/i.test(firstLine(err)) ? 'input_not_found' : 'invalid_input', where, { cause: err });
  }
}

function requireColumns(have: string[], want: string[], side: string, where: string): void {
  const missing = want.filter((c) => !have.includes(c));
  if (missing.length > 0) throw new InputError(`${side} ${where} has no column ${missing.map((m) => JSON.stringify(m)).join(', ')} (columns: ${have.join(', ')})`, 'missing_column', where);
}

/**
 * The left rows as a temp table with `lpos`, the row position in file order
 * (the order crossmatchPartition reads them in): file_row_number plus the rows
 * of the files before; CSV rows are numbered as read and the table is the order.
 */
async function materializeLeft(conn: DuckDBConnection, table: string, files: string[], select: string): Promise<number> {
  let offset = 0;
  let first = true;
  for (const f of files) {
    const src = tables.isCsvPath(f)
      ? `(SELECT row_number() OVER () - 1 AS file_row_number, * FROM read_csv([${tables.sqlString(f)}], auto_detect = true, header = true))`
      : `read_parquet([${tables.sqlString(f)}], file_row_number = true)`;
    const q = `SELECT CAST(file_row_number + ${offset} AS BIGINT) AS lpos, ${select} FROM ${src}`;
    await conn.run(first ? `CREATE TEMP TABLE ${table} AS ${q}` : `INSERT INTO ${table} ${q}`);
    first = false;
    const r = (await conn.runAndReadAll(`SELECT count(*) FROM ${table}`)).getRows()[0]?.[0];
    offset = Number(r ?? 0);
  }
  return offset;
}

interface Pairs {
  leftPos: Int32Array;
  rightId: crossmatch.RowId[];
  /** the right ids as a typed column, when the right id column is BIGINT */
  rightIdBig?: { data: BigInt64Array; valid?: Uint8Array | undefined };
  sep: Float64Array;
  rank: Int32Array;
  rightRa: Float64Array;
  rightDec: Float64Array;
  marginUsed: boolean;
}

async function readPoints(conn: DuckDBConnection, sql: string, where: string): Promise<{ ra: Float64Array; dec: Float64Array; id: crossmatch.RowId[] }> {
  const cols = (await conn.runAndReadAll(sql)).getColumns();
  const [cRa = [], cDec = [], cId = []] = cols;
  const n = cRa.length;
  const ra = new Float64Array(n);
  const dec = new Float64Array(n);
  const id: crossmatch.RowId[] = new Array<crossmatch.RowId>(n);
  for (let i = 0; i < n; i++) {
    const a = cRa[i];
    const d = cDec[i];
    if (typeof a !== 'number' || typeof d !== 'number') throw new InputError(`${where}: row ${i} has no position (ra=${String(a)}, dec=${String(d)})`, 'invalid_input', where);
    ra[i] = a;
    dec[i] = d;
    const v = cId[i];
    id[i] = typeof v === 'bigint' || typeof v === 'number' || typeof v === 'string' ? v : null;
  }
  return { ra, dec, id };
}

/** Pairs of one left partition of a HATS left against a HATS right (partition + margin). */
async function matchHats(part: UnitPartition, unit: CrossmatchUnit, p: CrossmatchParams, signal: AbortSignal, leftPoints?: { ra: Float64Array; dec: Float64Array }, scratch?: crossmatch.Scratch): Promise<Pairs> {
  const side = (s: CrossmatchSide, parts: UnitPartition[]): hats.HatsCatalog => ({ root: s.root, name: s.root, type: 'object', properties: {}, raColumn: s.raColumn, decColumn: s.decColumn, partitions: parts });
  const right = side(unit.right, unit.right.partitions ?? []);
  const m = unit.right.margin;
  if (m) {
    right.margin = { root: m.root, name: m.root, type: 'margin', properties: {}, raColumn: unit.right.raColumn, decColumn: unit.right.decColumn, partitions: m.partitions, marginThresholdArcsec: m.thresholdArcsec };
    right.marginThresholdArcsec = m.thresholdArcsec;
  }
  const opts: crossmatch.PartitionCrossmatchOptions = { radiusArcsec: p.radiusArcsec, mode: p.mode, leftIdColumn: p.leftId, rightIdColumn: p.rightId, signal };
  if (p.mode === 'nearest') opts.k = p.k;
  if (leftPoints) opts.leftPoints = leftPoints;
  if (scratch) opts.scratch = scratch;
  const r = await crossmatch.crossmatchPartition(side(unit.left, [part]), { order: part.order, pixel: part.pixel }, right, opts);
  return { leftPos: r.left, rightId: r.rightId, ...(r.rightIdBig ? { rightIdBig: r.rightIdBig } : {}), sep: r.sepArcsec, rank: r.rank, rightRa: r.rightRa, rightDec: r.rightDec, marginUsed: r.marginUsed };
}

/** Pairs of the left rows (from the temp table, in lpos order) against the whole right side, in memory. */
async function matchWhole(conn: DuckDBConnection, leftTable: string, unit: CrossmatchUnit, p: CrossmatchParams, signal: AbortSignal, cache: TaskCache): Promise<Pairs> {
  const q = hats.sqlIdent;
  const left = await readPoints(conn, `SELECT "__ra", "__dec" FROM ${leftTable} ORDER BY lpos`, 'left input');
  const files = rightFiles(unit.right, false);
  // the whole right side is read and indexed once per task, whatever the number of left partitions
  cache.whole ??= files.length === 0
    ? { ra: new Float64Array(0), dec: new Float64Array(0), id: [] }
    : await readPoints(conn, `SELECT CAST(${q(unit.right.raColumn)} AS DOUBLE), CAST(${q(unit.right.decColumn)} AS DOUBLE), ${q(p.rightId)} FROM ${tables.readFilesSql(files)}`, `right input ${unit.right.root}`);
  const right = cache.whole;
  const opts: crossmatch.CrossmatchOptions = { radiusArcsec: p.radiusArcsec, mode: p.mode, signal };
  if (p.mode === 'nearest') opts.k = p.k;
  if (right.ra.length > 0) opts.rightIndex = cache.wholeIndex ??= crossmatch.SkyIndex.build(right, { signal });
  const m = right.ra.length === 0
    ? { left: new Int32Array(0), right: new Int32Array(0), sepArcsec: new Float64Array(0), rank: new Int32Array(0) }
    : crossmatch.crossmatch(left, right, opts);
  return {
    leftPos: m.left,
    rightId: Array.from(m.right, (r) => right.id[r] ?? null),
    sep: m.sepArcsec,
    rank: m.rank,
    rightRa: Float64Array.from(m.right, (r) => right.ra[r]!),
    rightDec: Float64Array.from(m.right, (r) => right.dec[r]!),
    marginUsed: false,
  };
}

/**
 * Kernel scratch memory (astro/crossmatch/scratch.ts) kept between tasks of this process: a task
 * takes one (concurrent tasks each their own) and gives it back; the idle ones are dropped after
 * SCRATCH_IDLE_MS, so a worker that stops matching does not keep the memory.
 */
const idleScratch: crossmatch.Scratch[] = [];
const SCRATCH_IDLE_MS = 30_000;
let scratchTimer: NodeJS.Timeout | undefined;

function takeScratch(): crossmatch.Scratch {
  return idleScratch.pop() ?? new crossmatch.Scratch();
}

function giveScratch(s: crossmatch.Scratch): void {
  s.schemas.clear(); // files may change between tasks: schemas are known for one task only
  idleScratch.push(s);
  if (scratchTimer) clearTimeout(scratchTimer);
  scratchTimer = setTimeout(() => (idleScratch.length = 0), SCRATCH_IDLE_MS);
  scratchTimer.unref();
}

/** What the partitions of one task share: the whole right side of a plain-file right (read and indexed once). */
interface TaskCache {
  whole?: { ra: Float64Array; dec: Float64Array; id: crossmatch.RowId[] };
  wholeIndex?: crossmatch.SkyIndex;
  /** memory the kernel reuses across the units and partitions of the task (astro/crossmatch/scratch.ts) */
  scratch: crossmatch.Scratch;
}

/** Runs the match, mapping kernel errors to task errors. */
async function runMatch(fn: () => Promise<Pairs>, signal: AbortSignal, where: string): Promise<Pairs> {
  try {
    return await fn();
  } catch (err) {
    if (signal.aborted || err instanceof crossmatch.CrossmatchAbortedError) throw new TaskCancelledError('cancelled');
    if (err instanceof crossmatch.CrossmatchReadError || err instanceof crossmatch.CrossmatchCatalogError || err instanceof crossmatch.CrossmatchInputError) {
      throw new InputError(`cross-match of ${where}: ${err.message}`, 'invalid_input', where, { cause: err });
    }
    if (err instanceof InputError) throw err;
    throw new TaskFailedError(`cross-match of ${where} failed: ${firstLine(err)}`, 'crossmatch_failed', false, where, { cause: err });
  }
}

interface DirectArgs {
  ctx: ExecContext;
  part: UnitPartition;
  unit: CrossmatchUnit;
  p: CrossmatchParams;
  where: string;
  out: string;
  hasHealpix: boolean;
  leftIdIsBigint: boolean;
  cache: TaskCache;
}

/**
 * The pair table of a HATS x HATS task with no extra columns, built from typed
 * columns: the left rows' id, position and HEALPix index are read once (file
 * order, as crossmatchPartition numbers them), gathered per pair and appended
 * a chunk at a time to a temp table that is copied to Parquet as is (pairs are
 * already in output order: left row, then rank). Same columns, types and order
 * as the SQL path.
 */
async function writeDirect(conn: DuckDBConnection, a: DirectArgs): Promise<{ leftRows: number; pairs: number; marginUsed: boolean; path: string; seconds: Record<string, number> }> {
  const { ctx, part, unit, p, where, out } = a;
  const q = hats.sqlIdent;
  const t0 = performance.now();
  const offsets: number[] = [];
  const lefts = [];
  let leftRows = 0;
  for (const f of part.files) {
    const r = await tables.readColumns(
      conn,
      `SELECT ${q(p.leftId)}, CAST(${q(unit.left.raColumn)} AS DOUBLE), CAST(${q(unit.left.decColumn)} AS DOUBLE), ${a.hasHealpix ? '"_healpix_29"' : 'CAST(NULL AS BIGINT)'} FROM ${tables.readFilesSql([f])}`,
      [a.leftIdIsBigint ? 'i64' : 'str', 'f64', 'f64', 'i64'] as const,
    );
    offsets.push(leftRows);
    lefts.push(r);
    leftRows += r.rows;
  }
  // the positions, in file order, go to the kernel (it does not read the left files again)
  const leftRa = new Float64Array(leftRows);
  const leftDec = new Float64Array(leftRows);
  lefts.forEach((r, k) => {
    const [, cRa, cDec] = r.columns;
    for (let i = 0; i < r.rows; i++) {
      if (Number.isNaN(cRa[i]!) || Number.isNaN(cDec[i]!)) {
        throw new InputError(`cross-match of ${where}: ${part.files[k]}: row ${i}: ${unit.left.raColumn}/${unit.left.decColumn} are not numbers (${cRa[i]}, ${cDec[i]})`, 'invalid_input', where);
      }
    }
    leftRa.set(cRa, offsets[k]!);
    leftDec.set(cDec, offsets[k]!);
  });
  const t1 = performance.now();
  ctx.progress();
  if (ctx.signal.aborted) throw new TaskCancelledError('cancelled');
  const pairs = await runMatch(() => matchHats(part, unit, p, ctx.signal, { ra: leftRa, dec: leftDec }, a.cache.scratch), ctx.signal, where);
  ctx.progress();
  const t2 = performance.now();
  const n = pairs.leftPos.length;
  // left row position → (file, row)
  const fileOf = (pos: number) => {
    let k = offsets.length - 1;
    while (k > 0 && offsets[k]! > pos) k--;
    return k;
  };
  const lId = a.leftIdIsBigint ? new BigInt64Array(n) : undefined;
  const lIdValid = a.leftIdIsBigint ? new Uint8Array(n).fill(1) : undefined;
  const lIdStr: (string | null)[] | undefined = a.leftIdIsBigint ? undefined : new Array<string | null>(n);
  const ra = new Float64Array(n);
  const dec = new Float64Array(n);
  const hp = a.hasHealpix ? new BigInt64Array(n) : undefined;
  const hpValid = a.hasHealpix ? new Uint8Array(n).fill(1) : undefined;
  let anyIdNull = false;
  let anyHpNull = false;
  for (let i = 0; i < n; i++) {
    const pos = pairs.leftPos[i]!;
    const k = fileOf(pos);
    const r = lefts[k]!;
    const j = pos - offsets[k]!;
    const [cId, cRa, cDec, cHp] = r.columns;
    if (lId && lIdValid) {
      const ok = !r.valid[0] || r.valid[0][j] === 1;
      lId[i] = ok ? (cId as BigInt64Array)[j]! : 0n;
      if (!ok) (lIdValid[i] = 0), (anyIdNull = true);
    } else if (lIdStr) lIdStr[i] = (cId as (string | null)[])[j] ?? null;
    ra[i] = cRa[j]!;
    dec[i] = cDec[j]!;
    if (hp && hpValid) {
      const ok = !r.valid[3] || r.valid[3][j] === 1;
      hp[i] = ok ? cHp[j]! : 0n;
      if (!ok) (hpValid[i] = 0), (anyHpNull = true);
    }
  }
  const first = pairs.rightId.find((v) => v !== null);
  const rIdType = typeof first === 'string' ? 'VARCHAR' : typeof first === 'number' ? 'DOUBLE' : 'BIGINT';
  const table = `xm_out_${process.pid}_${++tableCounter}`;
  const defs = [
    `${q(`left_${p.leftId}`)} ${a.leftIdIsBigint ? 'BIGINT' : 'VARCHAR'}`,
    `${q(`right_${p.rightId}`)} ${rIdType}`,
    'separation_arcsec DOUBLE',
    '"rank" INTEGER',
    'ra DOUBLE',
    'dec DOUBLE',
    ...(a.hasHealpix ? ['_healpix_29 BIGINT'] : []),
    'right_ra DOUBLE',
    'right_dec DOUBLE',
  ];
  await conn.run(`CREATE TEMP TABLE ${table} (${defs.join(', ')})`);
  try {
    const app: DuckDBAppender = await conn.createAppender(table, 'main', 'temp');
    tables.appendColumns(app, [
      lId ? { type: 'i64', data: lId, valid: anyIdNull ? lIdValid : undefined } : { type: 'str', data: lIdStr! },
      pairs.rightIdBig && rIdType === 'BIGINT' ? { type: 'i64', data: pairs.rightIdBig.data, valid: pairs.rightIdBig.valid } : rightIdColumn(pairs.rightId, rIdType),
      { type: 'f64', data: pairs.sep },
      { type: 'i32', data: pairs.rank },
      { type: 'f64', data: ra },
      { type: 'f64', data: dec },
      ...(hp ? [{ type: 'i64', data: hp, valid: anyHpNull ? hpValid : undefined } as const] : []),
      { type: 'f64', data: pairs.rightRa },
      { type: 'f64', data: pairs.rightDec },
    ]);
    app.closeSync();
    await conn.run(`COPY ${table} TO ${tables.sqlString(out)} (FORMAT parquet, COMPRESSION zstd)`);
  } catch (err) {
    throw new TaskFailedError(`cannot write the pairs of ${where}: ${firstLine(err)}`, 'write_failed', true, where, { cause: err });
  } finally {
    await conn.run(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
  }
  const t3 = performance.now();
  const sec = (ms: number) => +(ms / 1000).toFixed(3);
  return { leftRows, pairs: n, marginUsed: pairs.marginUsed, path: 'partition', seconds: { left: sec(t1 - t0), match: sec(t2 - t1), write: sec(t3 - t2) } };
}

function rightIdColumn(ids: readonly crossmatch.RowId[], idType: string): tables.AppendColumn {
  const n = ids.length;
  if (idType === 'VARCHAR') return { type: 'str', data: ids.map((v) => (v === null || v === undefined ? null : String(v))) };
  if (idType === 'DOUBLE') return { type: 'f64', data: Float64Array.from(ids, (v) => (v === null || v === undefined ? Number.NaN : Number(v))), nanIsNull: true };
  const data = new BigInt64Array(n);
  let valid: Uint8Array | undefined;
  for (let i = 0; i < n; i++) {
    const v = ids[i];
    if (v === null || v === undefined) (valid ??= new Uint8Array(n).fill(1))[i] = 0;
    else data[i] = BigInt(v);
  }
  return { type: 'i64', data, valid };
}

async function writePairs(conn: DuckDBConnection, table: string, pairs: Pairs): Promise<void> {
  const first = pairs.rightId.find((v) => v !== null);
  const idType = typeof first === 'string' ? 'VARCHAR' : typeof first === 'number' ? 'DOUBLE' : 'BIGINT';
  await conn.run(`CREATE TEMP TABLE ${table} (ord INTEGER, lpos BIGINT, rid ${idType}, sep DOUBLE, rnk INTEGER, rra DOUBLE, rdec DOUBLE)`);
  const n = pairs.leftPos.length;
  const rid = rightIdColumn(pairs.rightId, idType);
  const app: DuckDBAppender = await conn.createAppender(table, 'main', 'temp');
  tables.appendColumns(app, [
    { type: 'i32', data: Int32Array.from({ length: n }, (_, i) => i) },
    { type: 'i64', data: BigInt64Array.from(pairs.leftPos, (x) => BigInt(x)) },
    rid,
    { type: 'f64', data: pairs.sep },
    { type: 'i32', data: pairs.rank },
    { type: 'f64', data: pairs.rightRa },
    { type: 'f64', data: pairs.rightDec },
  ]);
  app.closeSync();
}

/** One left partition of a task: its pairs written to `out`. */
async function matchOne(conn: DuckDBConnection, ctx: ExecContext, part: UnitPartition, unit: CrossmatchUnit, p: CrossmatchParams, out: string, cache: TaskCache): Promise<{ leftRows: number; pairs: number; marginUsed: boolean; path: string; seconds: Record<string, number> }> {
  const where = part.order >= 0 ? `left partition Norder=${part.order}/Npix=${part.pixel} (${part.files[0]})` : `left input ${part.files[0]}`;
  const q = hats.sqlIdent;
  const leftTypes = await describeTypes(conn, part.files, where);
  const leftCols = leftTypes.map((c) => c.name);
  requireColumns(leftCols, [p.leftId, unit.left.raColumn, unit.left.decColumn, ...p.leftColumns], 'left', where);
  const hasHealpix = leftCols.includes('_healpix_29');
  const leftIdType = leftTypes.find((c) => c.name === p.leftId)?.type;
  const both = unit.left.kind === 'hats' && unit.right.kind === 'hats' && part.order >= 0;
  // HATS x HATS with no extra columns: the pair table is built here from typed columns (no SQL join)
  if (both && p.leftColumns.length === 0 && p.rightColumns.length === 0 && (leftIdType === 'BIGINT' || leftIdType === 'VARCHAR')
    && (!hasHealpix || leftTypes.find((c) => c.name === '_healpix_29')?.type === 'BIGINT')) {
    return writeDirect(conn, { ctx, part, unit, p, where, out, hasHealpix, leftIdIsBigint: leftIdType === 'BIGINT', cache });
  }
  const n = ++tableCounter;
  const L = `xm_left_${process.pid}_${n}`;
  const P = `xm_pairs_${process.pid}_${n}`;
  try {
    const select = [
      `${q(p.leftId)} AS "__id"`,
      `CAST(${q(unit.left.raColumn)} AS DOUBLE) AS "__ra"`,
      `CAST(${q(unit.left.decColumn)} AS DOUBLE) AS "__dec"`,
      ...(hasHealpix ? ['"_healpix_29" AS "__hp"'] : []),
      ...p.leftColumns.map((c, i) => `${q(c)} AS "__l${i}"`),
    ].join(', ');
    const t0 = performance.now();
    const leftRows = await materializeLeft(conn, L, part.files, select);
    const t1 = performance.now();
    ctx.progress();
    if (ctx.signal.aborted) throw new TaskCancelledError('cancelled');
    const pairs = await runMatch(() => (both ? matchHats(part, unit, p, ctx.signal, undefined, cache.scratch) : matchWhole(conn, L, unit, p, ctx.signal, cache)), ctx.signal, where);
    ctx.progress();
    const t2 = performance.now();
    await writePairs(conn, P, pairs);
    let rightJoin = '';
    if (p.rightColumns.length > 0) {
      const files = rightFiles(unit.right, true);
      const rCols = await describe(conn, files, `right input ${unit.right.root}`);
      requireColumns(rCols, [p.rightId, ...p.rightColumns], 'right', `right input ${unit.right.root}`);
      // a row can sit in a partition and in the margin: one copy per id
      rightJoin = `LEFT JOIN (SELECT DISTINCT ON (${q(p.rightId)}) ${q(p.rightId)} AS "__rid", ${p.rightColumns.map((c, i) => `${q(c)} AS "__r${i}"`).join(', ')} ` +
        `FROM ${tables.readFilesSql(files)} WHERE ${q(p.rightId)} IN (SELECT rid FROM ${P})) R ON R."__rid" = P.rid`;
    }
    const cols = [
      `L."__id" AS ${q(`left_${p.leftId}`)}`,
      `P.rid AS ${q(`right_${p.rightId}`)}`,
      'P.sep AS separation_arcsec',
      'P.rnk AS "rank"',
      'L."__ra" AS ra',
      'L."__dec" AS dec',
      ...(hasHealpix ? ['L."__hp" AS _healpix_29'] : []),
      'P.rra AS right_ra',
      'P.rdec AS right_dec',
      ...p.leftColumns.map((c, i) => `L."__l${i}" AS ${q(`left_${c}`)}`),
      ...p.rightColumns.map((c, i) => `R."__r${i}" AS ${q(`right_${c}`)}`),
    ];
    const sql = `SELECT ${cols.join(', ')} FROM ${P} P JOIN ${L} L ON L.lpos = P.lpos ${rightJoin} ORDER BY P.ord`;
    try {
      await conn.run(`COPY (${sql}) TO ${tables.sqlString(out)} (FORMAT parquet, COMPRESSION zstd)`);
    } catch (err) {
      throw new TaskFailedError(`cannot write the pairs of ${where}: ${firstLine(err)}`, 'write_failed', true, where, { cause: err });
    }
    const t3 = performance.now();
    const sec = (ms: number) => +(ms / 1000).toFixed(3);
    return { leftRows, pairs: pairs.leftPos.length, marginUsed: pairs.marginUsed, path: both ? 'partition' : 'whole', seconds: { left: sec(t1 - t0), match: sec(t2 - t1), write: sec(t3 - t2) } };
  } finally {
    await conn.run(`DROP TABLE IF EXISTS ${L}`).catch(() => undefined);
    await conn.run(`DROP TABLE IF EXISTS ${P}`).catch(() => undefined);
  }
}


export const crossmatchExecutor: Executor = {
  kind: 'crossmatch',
  inProcess: true,
  /**
   * A task covers one left partition, or several consecutive ones (the planner packs small
   * partitions, coordinator/planners-science.ts; the unit's right side then lists what any of
   * them needs): each is matched and written in turn, one HATS leaf each
   * (dataset/Norder=K/Dir=D/Npix=N.parquet, placed by protocol/layout.ts).
   */
  async map(ctx: ExecContext): Promise<ExecResult> {
    const p = crossmatchParams(ctx.spec.params);
    const parts = taskPartitions(ctx);
    if (parts.length === 0 || parts.some((x) => x.files.length === 0)) throw new InputError('task has no left partition', 'invalid_task', `task ${ctx.task.taskId}`);
    const u = (ctx.task.unit ?? {}) as Partial<CrossmatchUnit>;
    const unit: CrossmatchUnit = { left: checkSide(u.left, 'left', ctx.task.taskId), right: checkSide(u.right, 'right', ctx.task.taskId) };
    const batched = parts.length > 1 && parts.every((x) => x.order >= 0);
    const rFiles = rightFiles(unit.right, true);
    const hashing = hashInputsInBackground([...parts.flatMap((x) => x.files), ...rFiles]);
    // Two partitions of a HATS x HATS batch are matched at a time, each with its own connection and
    // kernel memory: one's DuckDB reads and Parquet writes (on DuckDB's side) overlap the other's
    // matching (on this thread) instead of leaving it idle. A plain-file right side is read and
    // indexed once per task (`TaskCache.whole`), so those partitions go one at a time.
    const lanes = batched && unit.left.kind === 'hats' && unit.right.kind === 'hats' ? 2 : 1;
    const done: { out: string; summary: Awaited<ReturnType<typeof matchOne>> }[] = new Array(parts.length);
    await inLanes(parts.length, lanes, async (take) => {
      const cache: TaskCache = { scratch: takeScratch() };
      try {
        await hats.withDuck(async (conn) => {
          for (let i = take(); i !== undefined && !ctx.signal.aborted; i = take()) {
            const part = parts[i]!;
            const out = join(ctx.outDir, batched ? hatsLeafRelPath(part.order, part.pixel) : 'part.parquet');
            if (batched) await mkdir(dirname(out), { recursive: true });
            done[i] = { out, summary: await matchOne(conn, ctx, part, unit, p, out, cache) };
            ctx.progress();
          }
        });
      } finally {
        giveScratch(cache.scratch);
      }
    });
    if (ctx.signal.aborted || done.some((d) => d === undefined)) throw new TaskCancelledError('cancelled');
    const inputs = await hashing;
    const outputs = await Promise.all(done.map((d) => fileRecord(d.out, d.summary.pairs)));
    const pairs = done.reduce((s, d) => s + d.summary.pairs, 0);
    const summary = done.length === 1 ? done[0]!.summary : {
      partitions: done.length,
      leftRows: done.reduce((s, d) => s + d.summary.leftRows, 0),
      pairs,
      marginUsed: done.some((d) => d.summary.marginUsed),
      path: done[0]!.summary.path,
      seconds: Object.fromEntries(['left', 'match', 'write'].map((k) => [k, +done.reduce((s, d) => s + (d.summary.seconds[k] ?? 0), 0).toFixed(3)])),
    };
    return { inputs, outputs, rows: pairs, summary };
  },
};
