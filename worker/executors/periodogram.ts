/**
 * `periodogram`: Lomb-Scargle periodograms of every object's light curve in
 * one ForcedSource partition (one task per HATS partition, or one for a plain
 * Parquet/CSV file).
 *
 * The task reads its partition's rows with DuckDB (only its own files, only
 * the needed columns), groups them by object and band (time-ordered), and
 * runs the kernel (./periodogram-thread.ts: astro's lombScargleBatch per band,
 * multibandLombScargle for the pooled row) on worker threads (./thread-pool.ts,
 * resources.cores threads), so the daemon's event loop keeps heartbeating and
 * acking while it computes. It writes `part.parquet` (which lands at the HATS
 * leaf path of the partition) with one row per (object, band):
 *
 *   <id column>, ra, dec (mean of the object's rows, when the input has them),
 *   _healpix_29 (when the input has it), band ('multiband' for the pooled row),
 *   n_obs, best_period, best_frequency, power, fap (Baluev; null for the pooled
 *   row), peak_periods DOUBLE[], peak_powers DOUBLE[] (top-N distinct peaks,
 *   highest first)
 *
 * Rows are ordered by object id, then band, the pooled row last.
 *
 * params (all optional):
 *   freq: 'auto' (astropy's autofrequency on each light curve's times)
 *       | { min, max, n }  (a fixed grid, f_k = min + k (max-min)/(n-1))
 *       | { min?, max?, samples_per_peak?, nyquist_factor? }  (auto spacing with limits)
 *       @default 'auto'
 *   bands: [g, r]   only these bands @default every band present
 *   method: fast | exact @default fast
 *   normalization: standard | model | log | psd @default standard
 *   top_n @default 3, multiband @default false, min_obs @default 10
 *   columns: { id: objectId, time: mjd, band: band, flux: flux, flux_err: fluxErr, ra: ra, dec: dec }
 */
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { DuckDBAppender, DuckDBConnection } from '@duckdb/node-api';
import { hats, tables } from '../../astro/index.js';
import { hatsLeafRelPath } from '../../protocol/index.js';
import { InputError, TaskCancelledError, TaskFailedError } from '../errors.js';
import { fileRecord } from '../files.js';
import { hashInputsInBackground, partitionWhere, taskPartitions } from './inputs.js';
import type { ExecContext, ExecResult, Executor } from '../types.js';
import {
  allTimes,
  computePeriodogramJob,
  gridFor,
  periodogramJobBuffers,
  type BandLightCurve,
  type FreqSpec,
  type ObjectResult,
  type PeriodogramJob,
  type PeriodogramSettings,
} from './periodogram-thread.js';
import { resolveThreadEntry, runJobs, ThreadAbortedError, ThreadJobError } from './thread-pool.js';

export interface PeriodogramColumns {
  id: string;
  time: string;
  band: string;
  flux: string;
  fluxErr: string;
  ra: string;
  dec: string;
}

export interface PeriodogramParams {
  columns: PeriodogramColumns;
  bands?: string[];
  settings: PeriodogramSettings;
  /** params.save_periodograms: write the full periodograms (see PERIODOGRAMS_DIR) */
  savePeriodograms: boolean;
  /** params.periodograms_max_mb: refuse to save more than this (estimated at submit, exact per task) */
  periodogramsMaxMb: number;
}

/** Where saved periodograms go, under the job's output: periodograms/Norder=K/Dir=D/Npix=N.parquet (HATS input) or periodograms/part-<task>.parquet. */
export const PERIODOGRAMS_DIR = 'periodograms';
/** Default of params.periodograms_max_mb. */
export const DEFAULT_PERIODOGRAMS_MAX_MB = 10_240;

const NORMALIZATIONS = ['standard', 'model', 'log', 'psd'] as const;
const COLUMN_KEYS: Record<keyof PeriodogramColumns, string> = { id: 'id', time: 'time', band: 'band', flux: 'flux', fluxErr: 'flux_err', ra: 'ra', dec: 'dec' };
const DEFAULT_COLUMNS: PeriodogramColumns = { id: 'objectId', time: 'mjd', band: 'band', flux: 'flux', fluxErr: 'fluxErr', ra: 'ra', dec: 'dec' };

const bad = (message: string, where: string) => new InputError(message, 'invalid_spec', where);
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

function freqSpec(v: unknown): FreqSpec {
  if (v === undefined || v === 'auto') return { type: 'auto' };
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad("params.freq must be 'auto' or { min, max, n } or { min?, max?, samples_per_peak?, nyquist_factor? }", '/params/freq');
  const f = v as Record<string, unknown>;
  for (const k of Object.keys(f)) if (!['min', 'max', 'n', 'samples_per_peak', 'nyquist_factor'].includes(k)) throw bad(`params.freq has an unknown field ${JSON.stringify(k)}`, `/params/freq/${k}`);
  for (const k of ['min', 'max', 'samples_per_peak', 'nyquist_factor'] as const) {
    if (f[k] !== undefined && !(isNum(f[k]) && (f[k] as number) >= 0)) throw bad(`params.freq.${k} must be a finite number >= 0`, `/params/freq/${k}`);
  }
  if (f.n !== undefined) {
    if (!(Number.isInteger(f.n) && (f.n as number) >= 2 && (f.n as number) <= 10_000_000)) throw bad('params.freq.n must be an integer from 2 to 10000000', '/params/freq/n');
    if (!isNum(f.min) || !isNum(f.max)) throw bad('params.freq with n needs min and max (cycles per day)', '/params/freq');
    if (!((f.max as number) > (f.min as number))) throw bad('params.freq.max must be greater than params.freq.min', '/params/freq/max');
    if (f.samples_per_peak !== undefined || f.nyquist_factor !== undefined) throw bad('params.freq: give either n or samples_per_peak/nyquist_factor, not both', '/params/freq');
    const n = f.n as number;
    return { type: 'grid', fmin: f.min as number, df: ((f.max as number) - (f.min as number)) / (n - 1), n };
  }
  for (const k of ['samples_per_peak', 'nyquist_factor'] as const) if (f[k] !== undefined && !((f[k] as number) > 0)) throw bad(`params.freq.${k} must be > 0`, `/params/freq/${k}`);
  if (isNum(f.min) && isNum(f.max) && !(f.max > f.min)) throw bad('params.freq.max must be greater than params.freq.min', '/params/freq/max');
  const out: FreqSpec = { type: 'auto' };
  if (isNum(f.min)) out.minimumFrequency = f.min;
  if (isNum(f.max)) out.maximumFrequency = f.max;
  if (isNum(f.samples_per_peak)) out.samplesPerPeak = f.samples_per_peak;
  if (isNum(f.nyquist_factor)) out.nyquistFactor = f.nyquist_factor;
  return out;
}

/** Fills defaults and rejects bad values (InputError with the spec field). Pure. */
export function periodogramParams(params: unknown): PeriodogramParams {
  const p = (params ?? {}) as Record<string, unknown>;
  // rows_per_task / partitions_per_task: how the planner packs partitions into tasks (checked there)
  const known = ['freq', 'bands', 'method', 'normalization', 'top_n', 'multiband', 'min_obs', 'columns', 'save_periodograms', 'periodograms_max_mb', 'rows_per_task', 'partitions_per_task'];
  for (const k of Object.keys(p)) if (!known.includes(k)) throw bad(`unknown periodogram parameter ${JSON.stringify(k)} (known: ${known.join(', ')})`, `/params/${k}`);
  const method = p.method ?? 'fast';
  if (method !== 'fast' && method !== 'exact') throw bad("params.method must be 'fast' or 'exact'", '/params/method');
  const normalization = p.normalization ?? 'standard';
  if (!NORMALIZATIONS.includes(normalization as (typeof NORMALIZATIONS)[number])) throw bad(`params.normalization must be one of ${NORMALIZATIONS.join(', ')}`, '/params/normalization');
  const topN = p.top_n ?? 3;
  if (!(Number.isInteger(topN) && (topN as number) >= 1 && (topN as number) <= 100)) throw bad('params.top_n must be an integer from 1 to 100', '/params/top_n');
  const minObs = p.min_obs ?? 10;
  if (!(Number.isInteger(minObs) && (minObs as number) >= 3)) throw bad('params.min_obs must be an integer >= 3', '/params/min_obs');
  if (p.multiband !== undefined && typeof p.multiband !== 'boolean') throw bad('params.multiband must be true or false', '/params/multiband');
  if (p.save_periodograms !== undefined && typeof p.save_periodograms !== 'boolean') throw bad('params.save_periodograms must be true or false', '/params/save_periodograms');
  const maxMb = p.periodograms_max_mb ?? DEFAULT_PERIODOGRAMS_MAX_MB;
  if (!(isNum(maxMb) && maxMb > 0)) throw bad('params.periodograms_max_mb must be a number > 0 (megabytes)', '/params/periodograms_max_mb');
  let bands: string[] | undefined;
  if (p.bands !== undefined) {
    if (!Array.isArray(p.bands) || p.bands.length === 0 || !p.bands.every((b) => typeof b === 'string' && b !== '')) throw bad('params.bands must be a non-empty list of band names', '/params/bands');
    bands = [...new Set(p.bands as string[])];
  }
  const columns = { ...DEFAULT_COLUMNS };
  if (p.columns !== undefined) {
    if (typeof p.columns !== 'object' || p.columns === null || Array.isArray(p.columns)) throw bad('params.columns must map id/time/band/flux/flux_err/ra/dec to column names', '/params/columns');
    const c = p.columns as Record<string, unknown>;
    for (const [k, v] of Object.entries(c)) {
      const key = (Object.keys(COLUMN_KEYS) as (keyof PeriodogramColumns)[]).find((x) => COLUMN_KEYS[x] === k);
      if (!key) throw bad(`params.columns has an unknown field ${JSON.stringify(k)} (known: ${Object.values(COLUMN_KEYS).join(', ')})`, `/params/columns/${k}`);
      if (typeof v !== 'string' || v === '') throw bad(`params.columns.${k} must be a column name`, `/params/columns/${k}`);
      columns[key] = v;
    }
  }
  return {
    columns,
    ...(bands ? { bands } : {}),
    settings: { freq: freqSpec(p.freq), method, normalization: normalization as PeriodogramSettings['normalization'], topN: topN as number, multiband: p.multiband === true, minObs: minObs as number, ...(p.save_periodograms === true ? { savePowers: true } : {}) },
    savePeriodograms: p.save_periodograms === true,
    periodogramsMaxMb: maxMb,
  };
}

/** Where the spec names each column, for error messages. */
function columnWhere(params: unknown, key: keyof PeriodogramColumns): string {
  const c = ((params ?? {}) as { columns?: Record<string, unknown> }).columns;
  return c && c[COLUMN_KEYS[key]] !== undefined ? `/params/columns/${COLUMN_KEYS[key]}` : '/input/catalog';
}

const INTEGER_TYPES = /^(TINYINT|SMALLINT|INTEGER|BIGINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|HUGEINT)$/;

interface LoadedPartition {
  ids: (bigint | string)[];
  ra?: Float64Array;
  dec?: Float64Array;
  healpix?: (bigint | null)[];
  /** per object, its bands (sorted by band), each time-ordered */
  objects: BandLightCurve[][];
  rows: number;
  idIsInteger: boolean;
}

async function loadPartition(conn: DuckDBConnection, files: string[], p: PeriodogramParams, rawParams: unknown, where: string): Promise<LoadedPartition> {
  const src = tables.readFilesSql(files);
  let described: { name: string; type: string }[];
  try {
    described = (await conn.runAndReadAll(`DESCRIBE SELECT * FROM ${src}`)).getRows().map((r) => ({ name: String(r[0]), type: String(r[1]) }));
  } catch (err) {
    throw new InputError(`cannot read ${where}: ${firstLine(err)}`, /No files found|does not exist|Cannot open/i.test(firstLine(err)) ? 'input_not_found' : 'invalid_input', where, { cause: err });
  }
  const names = described.map((d) => d.name);
  const c = p.columns;
  for (const key of ['id', 'time', 'band', 'flux', 'fluxErr'] as const) {
    if (!names.includes(c[key])) {
      throw new InputError(`${where} has no ${COLUMN_KEYS[key]} column ${JSON.stringify(c[key])} (columns: ${names.join(', ')}); name it in params.columns.${COLUMN_KEYS[key]}`, 'missing_column', columnWhere(rawParams, key));
    }
  }
  const hasPos = names.includes(c.ra) && names.includes(c.dec);
  const hasHealpix = names.includes('_healpix_29');
  const idType = described.find((d) => d.name === c.id)!.type;
  const idIsInteger = INTEGER_TYPES.test(idType);
  const q = hats.sqlIdent;
  const filter = `WHERE ${q(c.id)} IS NOT NULL` + (p.bands ? ` AND CAST(${q(c.band)} AS VARCHAR) IN (${p.bands.map(tables.sqlString).join(', ')})` : '');
  // one columnar read in file order (no SQL sort, no second pass for positions): typed arrays straight
  // from DuckDB's vectors; grouping, ordering and per-object positions are done here in O(rows)
  const sel = [
    `CAST(${q(c.id)} AS ${idIsInteger ? 'BIGINT' : 'VARCHAR'})`,
    `CAST(${q(c.band)} AS VARCHAR)`,
    `CAST(${q(c.time)} AS DOUBLE)`,
    `CAST(${q(c.flux)} AS DOUBLE)`,
    `CAST(${q(c.fluxErr)} AS DOUBLE)`,
    hasPos ? `CAST(${q(c.ra)} AS DOUBLE)` : 'CAST(NULL AS DOUBLE)',
    hasPos ? `CAST(${q(c.dec)} AS DOUBLE)` : 'CAST(NULL AS DOUBLE)',
    hasHealpix ? 'CAST("_healpix_29" AS BIGINT)' : 'CAST(NULL AS BIGINT)',
  ];
  let read;
  try {
    read = await tables.readColumns(conn, `SELECT ${sel.join(', ')} FROM ${src} ${filter}`, [idIsInteger ? 'i64' : 'str', 'str', 'f64', 'f64', 'f64', 'f64', 'f64', 'i64'] as const);
  } catch (err) {
    throw new InputError(`cannot read the light curves of ${where}: ${firstLine(err)}`, 'invalid_input', where, { cause: err });
  }
  return groupRows(read.rows, read.columns, read.valid[7], { hasPos, hasHealpix, idIsInteger });
}

type IdColumn = BigInt64Array | (string | null)[];
type RowColumns = readonly [IdColumn, (string | null)[], Float64Array, Float64Array, Float64Array, Float64Array, Float64Array, BigInt64Array];

const cmpKey = (a: bigint | string, b: bigint | string): number => (a < b ? -1 : a > b ? 1 : 0);
/** Total order on doubles used for tie-breaking: NaN after every number (as DuckDB sorts them). */
const cmpNum = (a: number, b: number): number => (a < b ? -1 : a > b ? 1 : a === b ? 0 : Number.isNaN(a) ? (Number.isNaN(b) ? 0 : 1) : -1);

/** Mean of `xs[perm[from..to)]`: the value itself when all are equal, else a compensated (Neumaier) mean; RA across the 0/360 wrap. */
function meanOf(xs: Float64Array, perm: Uint32Array, from: number, to: number, wrap: boolean): number {
  let lo = Infinity;
  let hi = -Infinity;
  let any = false;
  for (let i = from; i < to; i++) {
    const x = xs[perm[i]!]!;
    if (Number.isNaN(x)) continue;
    any = true;
    if (x < lo) lo = x;
    if (x > hi) hi = x;
  }
  if (!any) return Number.NaN;
  if (lo === hi) return lo;
  const shift = wrap && hi - lo > 180;
  let sum = 0;
  let comp = 0;
  let n = 0;
  for (let i = from; i < to; i++) {
    let x = xs[perm[i]!]!;
    if (Number.isNaN(x)) continue;
    if (shift && x > 180) x -= 360;
    const t = sum + x;
    comp += Math.abs(sum) >= Math.abs(x) ? sum - t + x : x - t + sum;
    sum = t;
    n++;
  }
  const m = (sum + comp) / n;
  return shift ? (m + 360) % 360 : m;
}

/**
 * Groups rows (any order) into objects (sorted by id) and bands (sorted by name), each light curve
 * ordered by time, ties broken by flux then error, so every run groups and sums identically.
 */
function groupRows(n: number, cols: RowColumns, hpValid: Uint8Array | undefined, o: { hasPos: boolean; hasHealpix: boolean; idIsInteger: boolean }): LoadedPartition {
  const [cId, cBand, cT, cY, cDy, cRa, cDec, cHp] = cols;
  const idAt = (i: number): bigint | string => (o.idIsInteger ? (cId as BigInt64Array)[i]! : ((cId as (string | null)[])[i] ?? ''));
  // objects in first-seen order, then ranked by id
  const objOf = new Int32Array(n);
  const firstIds: (bigint | string)[] = [];
  const index = new Map<bigint | string, number>();
  let prev: bigint | string | undefined;
  let prevObj = -1;
  for (let i = 0; i < n; i++) {
    const id = idAt(i);
    if (id !== prev) {
      let k = index.get(id);
      if (k === undefined) {
        k = firstIds.length;
        index.set(id, k);
        firstIds.push(id);
      }
      prev = id;
      prevObj = k;
    }
    objOf[i] = prevObj;
  }
  const nObj = firstIds.length;
  const order = Array.from({ length: nObj }, (_, k) => k).sort((a, b) => cmpKey(firstIds[a]!, firstIds[b]!));
  const rank = new Int32Array(nObj);
  order.forEach((k, r) => (rank[k] = r));
  // counting sort of the rows by object rank (stable: file order within an object)
  const start = new Uint32Array(nObj + 1);
  for (let i = 0; i < n; i++) start[rank[objOf[i]!]! + 1]!++;
  for (let r = 0; r < nObj; r++) start[r + 1]! += start[r]!;
  const fill = start.slice(0, nObj);
  const perm = new Uint32Array(n);
  for (let i = 0; i < n; i++) perm[fill[rank[objOf[i]!]!]!++] = i;
  const band = (i: number) => cBand[i] ?? '';
  const rowCmp = (a: number, b: number): number => {
    const ba = band(a);
    const bb = band(b);
    return (ba < bb ? -1 : ba > bb ? 1 : 0) || cmpNum(cT[a]!, cT[b]!) || cmpNum(cY[a]!, cY[b]!) || cmpNum(cDy[a]!, cDy[b]!);
  };
  const out: LoadedPartition = { ids: [], objects: [], rows: n, idIsInteger: o.idIsInteger };
  const ra = o.hasPos ? new Float64Array(nObj) : undefined;
  const dec = o.hasPos ? new Float64Array(nObj) : undefined;
  const hp: (bigint | null)[] = [];
  for (let r = 0; r < nObj; r++) {
    const from = start[r]!;
    const to = start[r + 1]!;
    // most inputs are already time-ordered per object: check before sorting
    let sorted = true;
    for (let i = from + 1; i < to; i++) {
      if (rowCmp(perm[i - 1]!, perm[i]!) > 0) {
        sorted = false;
        break;
      }
    }
    if (!sorted) perm.subarray(from, to).sort(rowCmp);
    const bands: BandLightCurve[] = [];
    let j = from;
    while (j < to) {
      const b = band(perm[j]!);
      let k = j;
      while (k < to && band(perm[k]!) === b) k++;
      const len = k - j;
      const lc: BandLightCurve = { band: b, t: new Float64Array(len), y: new Float64Array(len), dy: new Float64Array(len) };
      for (let x = 0; x < len; x++) {
        const row = perm[j + x]!;
        lc.t[x] = cT[row]!;
        lc.y[x] = cY[row]!;
        lc.dy[x] = cDy[row]!;
      }
      bands.push(lc);
      j = k;
    }
    out.ids.push(firstIds[order[r]!]!);
    out.objects.push(bands);
    if (ra && dec) {
      ra[r] = meanOf(cRa, perm, from, to, true);
      dec[r] = meanOf(cDec, perm, from, to, false);
    }
    if (o.hasHealpix) {
      // any_value: the first non-NULL index of the object's rows
      let h: bigint | null = null;
      for (let i = from; i < to && h === null; i++) if (!hpValid || hpValid[perm[i]!]) h = cHp[perm[i]!]!;
      hp.push(h);
    }
  }
  if (ra && dec) {
    out.ra = ra;
    out.dec = dec;
  }
  if (o.hasHealpix) out.healpix = hp;
  return out;
}

/** Objects per thread job: small enough to report progress and notice cancels often. */
function chunkJobs(objects: BandLightCurve[][], settings: PeriodogramSettings): PeriodogramJob[] {
  const jobs: PeriodogramJob[] = [];
  let cur: BandLightCurve[][] = [];
  let points = 0;
  for (const o of objects) {
    cur.push(o);
    points += o.reduce((s, b) => s + b.t.length, 0);
    if (cur.length >= 32 || points >= 8192) {
      jobs.push({ settings, objects: cur });
      cur = [];
      points = 0;
    }
  }
  if (cur.length > 0) jobs.push({ settings, objects: cur });
  return jobs;
}

const threadEntry = resolveThreadEntry(import.meta.url, 'periodogram-thread');

let outTableCounter = 0;

async function writeResults(conn: DuckDBConnection, out: string, data: LoadedPartition, idName: string, results: ObjectResult[]): Promise<number> {
  const table = `periodogram_out_${process.pid}_${++outTableCounter}`;
  const q = hats.sqlIdent;
  const cols: string[] = [`${q(idName)} ${data.idIsInteger ? 'BIGINT' : 'VARCHAR'}`];
  if (data.ra) cols.push('ra DOUBLE', 'dec DOUBLE');
  if (data.healpix) cols.push('_healpix_29 BIGINT');
  cols.push('band VARCHAR', 'n_obs INTEGER', 'best_period DOUBLE', 'best_frequency DOUBLE', 'power DOUBLE', 'fap DOUBLE', 'peak_periods DOUBLE[]', 'peak_powers DOUBLE[]');
  await conn.run(`CREATE TEMP TABLE ${table} (${cols.join(', ')})`);
  // one row per (object, band) result, appended a column at a time (tables.appendColumns: a
  // native append per 2048-row chunk instead of one per value)
  const objOf: number[] = [];
  results.forEach((r, o) => {
    for (let k = 0; k < r.rows.length; k++) objOf.push(o);
  });
  const flat = results.flatMap((r) => r.rows);
  const rows = flat.length;
  const finiteOrNaN = (x: number | null | undefined) => (x !== null && x !== undefined && Number.isFinite(x) ? x : Number.NaN);
  const columns: tables.AppendColumn[] = [
    data.idIsInteger ? { type: 'i64', data: BigInt64Array.from(objOf, (o) => data.ids[o] as bigint) } : { type: 'str', data: objOf.map((o) => String(data.ids[o])) },
  ];
  if (data.ra && data.dec) {
    const ra = data.ra;
    const dec = data.dec;
    columns.push({ type: 'f64', data: Float64Array.from(objOf, (o) => finiteOrNaN(ra[o])), nanIsNull: true }, { type: 'f64', data: Float64Array.from(objOf, (o) => finiteOrNaN(dec[o])), nanIsNull: true });
  }
  if (data.healpix) {
    const hp = data.healpix;
    const valid = Uint8Array.from(objOf, (o) => (typeof hp[o] === 'bigint' ? 1 : 0));
    columns.push({ type: 'i64', data: BigInt64Array.from(objOf, (o) => hp[o] ?? 0n), valid: valid.includes(0) ? valid : undefined });
  }
  columns.push(
    { type: 'str', data: flat.map((r) => r.band) },
    { type: 'i32', data: Int32Array.from(flat, (r) => r.nObs) },
    { type: 'f64', data: Float64Array.from(flat, (r) => r.bestPeriod) },
    { type: 'f64', data: Float64Array.from(flat, (r) => r.bestFrequency) },
    { type: 'f64', data: Float64Array.from(flat, (r) => r.power) },
    { type: 'f64', data: Float64Array.from(flat, (r) => finiteOrNaN(r.fap)), nanIsNull: true },
    { type: 'f64[]', data: flat.map((r) => r.peakPeriods) },
    { type: 'f64[]', data: flat.map((r) => r.peakPowers) },
  );
  try {
    const app: DuckDBAppender = await conn.createAppender(table, 'main', 'temp');
    tables.appendColumns(app, columns);
    app.closeSync();
    await conn.run(`COPY (SELECT * FROM ${table}) TO ${tables.sqlString(out)} (FORMAT parquet, COMPRESSION zstd)`);
  } finally {
    await conn.run(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
  }
  return rows;
}

/** Bytes the saved periodograms of a partition will take (float32 powers), known before computing: the grid of every kept band. */
function savedBytes(data: LoadedPartition, s: PeriodogramSettings): number {
  let floats = 0;
  for (const bands of data.objects) {
    const kept = bands.filter((b) => b.t.length >= s.minObs);
    for (const b of kept) floats += gridSize(s.freq, b.t);
    if (s.multiband && kept.length > 0) floats += gridSize(s.freq, allTimes(kept));
  }
  return floats * 4;
}

function gridSize(freq: FreqSpec, t: Float64Array): number {
  if (freq.type === 'grid') return freq.n;
  try {
    return gridFor(freq, t).n;
  } catch {
    return 0; // rejected later by the kernel (e.g. zero baseline): nothing saved
  }
}

/**
 * The full periodograms of a partition as Parquet, one row per (object, band) row of the
 * results: <id>, band, fmin, df, n_freq, power FLOAT[] (power[k] at frequency fmin + k df,
 * cycles per day, in the job's normalization; float32). Same order as part.parquet.
 */
async function writePeriodograms(conn: DuckDBConnection, out: string, data: LoadedPartition, idName: string, results: ObjectResult[]): Promise<number> {
  const table = `periodogram_pw_${process.pid}_${++outTableCounter}`;
  const q = hats.sqlIdent;
  await conn.run(`CREATE TEMP TABLE ${table} (${q(idName)} ${data.idIsInteger ? 'BIGINT' : 'VARCHAR'}, band VARCHAR, fmin DOUBLE, df DOUBLE, n_freq INTEGER, power FLOAT[])`);
  try {
    const ids: (bigint | string)[] = [];
    const bands: string[] = [];
    const fmin: number[] = [];
    const df: number[] = [];
    const nf: number[] = [];
    const pw: Float32Array[] = [];
    results.forEach((r, o) => {
      for (const row of r.rows) {
        if (!row.powers || !row.grid) continue;
        ids.push(data.ids[o]!);
        bands.push(row.band);
        fmin.push(row.grid.fmin);
        df.push(row.grid.df);
        nf.push(row.grid.n);
        pw.push(row.powers);
      }
    });
    const app: DuckDBAppender = await conn.createAppender(table, 'main', 'temp');
    tables.appendColumns(app, [
      data.idIsInteger ? { type: 'i64', data: BigInt64Array.from(ids as bigint[]) } : { type: 'str', data: ids.map(String) },
      { type: 'str', data: bands },
      { type: 'f64', data: Float64Array.from(fmin) },
      { type: 'f64', data: Float64Array.from(df) },
      { type: 'i32', data: Int32Array.from(nf) },
      { type: 'f32[]', data: pw },
    ]);
    app.closeSync();
    await conn.run(`COPY ${table} TO ${tables.sqlString(out)} (FORMAT parquet, COMPRESSION zstd)`);
    return ids.length;
  } finally {
    await conn.run(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
  }
}

const firstLine = (err: unknown) => ((err as Error)?.message ?? String(err)).split('\n')[0] ?? '';


export const periodogramExecutor: Executor = {
  kind: 'periodogram',
  // the kernel runs on worker threads of this process: its CPU shows in the process's usage
  inProcess: true,
  /**
   * A task covers one partition, or several consecutive ones (the planner packs small partitions,
   * coordinator/planners-science.ts): each partition is read, computed and written in turn, one
   * HATS leaf each (dataset/Norder=K/Dir=D/Npix=N.parquet, placed by protocol/layout.ts), so the
   * output catalog has one leaf per input partition whatever the batching.
   */
  async map(ctx: ExecContext): Promise<ExecResult> {
    const p = periodogramParams(ctx.spec.params);
    const parts = taskPartitions(ctx);
    if (parts.length === 0 || parts.some((x) => x.files.length === 0)) throw new InputError('task has no input partition', 'invalid_task', `task ${ctx.task.taskId}`);
    const batched = parts.length > 1 && parts.every((x) => x.order >= 0);
    const hashing = hashInputsInBackground(parts.flatMap((x) => x.files));
    const outputs: ExecResult['outputs'] = [];
    const sec = { read: 0, compute: 0, write: 0 };
    let rows = 0;
    let objects = 0;
    let inputRows = 0;
    let skipped = 0;
    let mode: string | undefined;
    let threads: number | undefined;
    for (const part of parts) {
      const where = partitionWhere(part);
      const t0 = performance.now();
      const data = await hats.withDuck((conn) => loadPartition(conn, part.files, p, ctx.spec.params, where));
      const t1 = performance.now();
      ctx.progress();
      if (ctx.signal.aborted) throw new TaskCancelledError('cancelled');
      if (p.savePeriodograms) {
        const bytes = savedBytes(data, p.settings);
        if (bytes > p.periodogramsMaxMb * 1e6) {
          throw new InputError(`the periodograms of ${where} would take ${(bytes / 1e6).toFixed(0)} MB (float32), above params.periodograms_max_mb = ${p.periodogramsMaxMb}; use a coarser grid, fewer bands, or raise the limit`, 'invalid_spec', '/params/periodograms_max_mb');
        }
      }
      const jobs = chunkJobs(data.objects, p.settings);
      let run;
      try {
        run = await runJobs(threadEntry, jobs, {
          threads: ctx.spec.resources?.cores ?? 1,
          signal: ctx.signal,
          onProgress: (done, total) => ctx.progress(done, total),
          transfer: periodogramJobBuffers,
          inProcess: computePeriodogramJob,
        });
      } catch (err) {
        if (err instanceof ThreadAbortedError || ctx.signal.aborted) throw new TaskCancelledError('cancelled');
        if (err instanceof ThreadJobError) throw new TaskFailedError(`periodogram kernel failed in ${where}: ${err.message}`, 'periodogram_failed', false, where, { cause: err });
        throw err;
      }
      const results = run.results.flat();
      const t2 = performance.now();
      const out = join(ctx.outDir, batched ? hatsLeafRelPath(part.order, part.pixel) : 'part.parquet');
      if (batched) await mkdir(dirname(out), { recursive: true });
      const n = await hats.withDuck((conn) => writeResults(conn, out, data, p.columns.id, results));
      outputs.push(await fileRecord(out, n));
      if (p.savePeriodograms) {
        const rel = part.order >= 0 ? join(PERIODOGRAMS_DIR, `Norder=${part.order}`, `Dir=${Math.floor(part.pixel / 10_000) * 10_000}`, `Npix=${part.pixel}.parquet`) : join(PERIODOGRAMS_DIR, `part-${ctx.task.index}.parquet`);
        const pwOut = join(ctx.outDir, rel);
        await mkdir(dirname(pwOut), { recursive: true });
        const m = await hats.withDuck((conn) => writePeriodograms(conn, pwOut, data, p.columns.id, results));
        outputs.push(await fileRecord(pwOut, m));
      }
      const t3 = performance.now();
      sec.read += t1 - t0;
      sec.compute += t2 - t1;
      sec.write += t3 - t2;
      rows += n;
      objects += data.objects.length;
      inputRows += data.rows;
      skipped += results.reduce((s, r) => s + r.skipped.length, 0);
      mode = run.mode;
      threads = run.threads;
    }
    const inputs = await hashing;
    ctx.progress();
    const s3 = (ms: number) => +(ms / 1000).toFixed(3);
    return {
      inputs,
      outputs,
      rows,
      summary: {
        objects, inputRows, rows, skippedBands: skipped, mode, threads, partitions: parts.length,
        seconds: { read: s3(sec.read), compute: s3(sec.compute), write: s3(sec.write) },
      },
    };
  },
};
