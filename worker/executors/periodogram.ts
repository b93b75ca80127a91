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
import { join } from 'node:path';
import type { DuckDBAppender, DuckDBConnection } from '@duckdb/node-api';
import { LIST, DOUBLE } from '@duckdb/node-api';
import { hats, tables } from '../../astro/index.js';
import { InputError, TaskCancelledError, TaskFailedError } from '../errors.js';
import { fileRecord } from '../files.js';
import type { ExecContext, ExecResult, Executor } from '../types.js';
import {
  computePeriodogramJob,
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
}

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
  const known = ['freq', 'bands', 'method', 'normalization', 'top_n', 'multiband', 'min_obs', 'columns', 'save_periodograms'];
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
  if (p.save_periodograms !== undefined && p.save_periodograms !== false) throw bad('params.save_periodograms is not supported yet (only false)', '/params/save_periodograms');
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
    settings: { freq: freqSpec(p.freq), method, normalization: normalization as PeriodogramSettings['normalization'], topN: topN as number, multiband: p.multiband === true, minObs: minObs as number },
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
  const idSql = `CAST(${q(c.id)} AS ${idIsInteger ? 'BIGINT' : 'VARCHAR'})`;
  const filter = `WHERE ${q(c.id)} IS NOT NULL` + (p.bands ? ` AND CAST(${q(c.band)} AS VARCHAR) IN (${p.bands.map(tables.sqlString).join(', ')})` : '');
  // per object: mean position and HEALPix index. Forced photometry usually repeats one position:
  // then it is taken as is (exact, whatever order DuckDB aggregates in); otherwise a compensated
  // mean, RA averaged across the 0/360 wrap when the rows straddle it
  const ra = `CAST(${q(c.ra)} AS DOUBLE)`;
  const dec = `CAST(${q(c.dec)} AS DOUBLE)`;
  const perObject = [
    idSql,
    hasPos ? `CASE WHEN min(${ra}) = max(${ra}) THEN min(${ra}) WHEN max(${ra}) - min(${ra}) > 180 THEN (favg(CASE WHEN ${ra} > 180 THEN ${ra} - 360 ELSE ${ra} END) + 360) % 360 ELSE favg(${ra}) END` : 'NULL',
    hasPos ? `CASE WHEN min(${dec}) = max(${dec}) THEN min(${dec}) ELSE favg(${dec}) END` : 'NULL',
    hasHealpix ? 'CAST(any_value("_healpix_29") AS BIGINT)' : 'NULL',
  ];
  // light curves ordered by object, band, time (ties broken by the values) so every run groups and sums identically
  const lcSql = `SELECT ${idSql}, CAST(${q(c.band)} AS VARCHAR), CAST(${q(c.time)} AS DOUBLE), CAST(${q(c.flux)} AS DOUBLE), CAST(${q(c.fluxErr)} AS DOUBLE) FROM ${src} ${filter} ORDER BY 1, 2, 3, 4, 5`;
  const objSql = `SELECT ${perObject.join(', ')} FROM ${src} ${filter} GROUP BY 1`;
  let columns;
  let objColumns;
  try {
    columns = (await conn.runAndReadAll(lcSql)).getColumns();
    objColumns = (await conn.runAndReadAll(objSql)).getColumns();
  } catch (err) {
    throw new InputError(`cannot read the light curves of ${where}: ${firstLine(err)}`, 'invalid_input', where, { cause: err });
  }
  const [cId = [], cBand = [], cT = [], cY = [], cDy = []] = columns;
  const [oId = [], oRa = [], oDec = [], oHp = []] = objColumns;
  const perId = new Map<unknown, number>();
  oId.forEach((v, i) => perId.set(v, i));
  const n = cId.length;
  const num = (v: unknown) => (typeof v === 'number' ? v : Number.NaN);
  const out: LoadedPartition = { ids: [], objects: [], rows: n, idIsInteger };
  const raOut: number[] = [];
  const decOut: number[] = [];
  const hpOut: (bigint | null)[] = [];
  let i = 0;
  while (i < n) {
    const id = cId[i];
    const bands: BandLightCurve[] = [];
    let j = i;
    while (j < n && cId[j] === id) {
      const band = String(cBand[j] ?? '');
      let k = j;
      while (k < n && cId[k] === id && String(cBand[k] ?? '') === band) k++;
      const len = k - j;
      const lc: BandLightCurve = { band, t: new Float64Array(len), y: new Float64Array(len), dy: new Float64Array(len) };
      for (let r = 0; r < len; r++) {
        lc.t[r] = num(cT[j + r]);
        lc.y[r] = num(cY[j + r]);
        lc.dy[r] = num(cDy[j + r]);
      }
      bands.push(lc);
      j = k;
    }
    out.ids.push(id as bigint | string);
    out.objects.push(bands);
    const o = perId.get(id);
    raOut.push(o === undefined ? Number.NaN : num(oRa[o]));
    decOut.push(o === undefined ? Number.NaN : num(oDec[o]));
    const hp = o === undefined ? null : oHp[o];
    hpOut.push(typeof hp === 'bigint' ? hp : null);
    i = j;
  }
  if (hasPos) {
    out.ra = Float64Array.from(raOut);
    out.dec = Float64Array.from(decOut);
  }
  if (hasHealpix) out.healpix = hpOut;
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
  const listType = LIST(DOUBLE);
  let rows = 0;
  try {
    const app: DuckDBAppender = await conn.createAppender(table, 'main', 'temp');
    results.forEach((r, o) => {
      for (const row of r.rows) {
        const id = data.ids[o]!;
        if (typeof id === 'bigint') app.appendBigInt(id);
        else app.appendVarchar(String(id));
        if (data.ra && data.dec) {
          const a = data.ra[o]!;
          const d = data.dec[o]!;
          if (Number.isFinite(a)) app.appendDouble(a);
          else app.appendNull();
          if (Number.isFinite(d)) app.appendDouble(d);
          else app.appendNull();
        }
        if (data.healpix) {
          const h = data.healpix[o];
          if (typeof h === 'bigint') app.appendBigInt(h);
          else app.appendNull();
        }
        app.appendVarchar(row.band);
        app.appendInteger(row.nObs);
        app.appendDouble(row.bestPeriod);
        app.appendDouble(row.bestFrequency);
        app.appendDouble(row.power);
        if (row.fap === null || !Number.isFinite(row.fap)) app.appendNull();
        else app.appendDouble(row.fap);
        app.appendList(row.peakPeriods, listType);
        app.appendList(row.peakPowers, listType);
        app.endRow();
        rows++;
      }
    });
    app.closeSync();
    await conn.run(`COPY (SELECT * FROM ${table}) TO ${tables.sqlString(out)} (FORMAT parquet, COMPRESSION zstd)`);
  } finally {
    await conn.run(`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
  }
  return rows;
}

const firstLine = (err: unknown) => ((err as Error)?.message ?? String(err)).split('\n')[0] ?? '';

export const periodogramExecutor: Executor = {
  kind: 'periodogram',
  // the kernel runs on worker threads of this process: its CPU shows in the process's usage
  inProcess: true,
  async map(ctx: ExecContext): Promise<ExecResult> {
    const p = periodogramParams(ctx.spec.params);
    const part = ctx.task.partition;
    if (!part || part.files.length === 0) throw new InputError('task has no input partition', 'invalid_task', `task ${ctx.task.taskId}`);
    const where = part.order >= 0 ? `partition Norder=${part.order}/Npix=${part.pixel} (${part.files[0]})` : `input ${part.files[0]}`;
    const hashing = Promise.all(part.files.map((f) => fileRecord(f).catch((err) => { throw new InputError(`input not found: ${f}`, 'input_not_found', f, { cause: err }); })));
    hashing.catch(() => undefined);
    const t0 = performance.now();
    const data = await hats.withDuck((conn) => loadPartition(conn, part.files, p, ctx.spec.params, where));
    const t1 = performance.now();
    ctx.progress();
    if (ctx.signal.aborted) throw new TaskCancelledError('cancelled');
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
    const out = join(ctx.outDir, 'part.parquet');
    const rows = await hats.withDuck((conn) => writeResults(conn, out, data, p.columns.id, results));
    const t3 = performance.now();
    const inputs = await hashing;
    const skipped = results.reduce((s, r) => s + r.skipped.length, 0);
    ctx.progress();
    return {
      inputs,
      outputs: [await fileRecord(out, rows)],
      rows,
      summary: {
        objects: data.objects.length, inputRows: data.rows, rows, skippedBands: skipped, mode: run.mode, threads: run.threads,
        seconds: { read: +((t1 - t0) / 1000).toFixed(3), compute: +((t2 - t1) / 1000).toFixed(3), write: +((t3 - t2) / 1000).toFixed(3) },
      },
    };
  },
};
