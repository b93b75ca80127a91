/**
 * Planners of the science kinds: `periodogram` (one task per ForcedSource
 * partition) and `crossmatch` (one task per left partition, each carrying the
 * right partitions and margin partitions it must read). What can be checked
 * before anything runs is checked here, so bad input is rejected at submit
 * with the spec field it concerns: parameters, inputs, the columns the kernel
 * needs (DESCRIBE of one leaf reads only Parquet metadata), and a match radius
 * larger than the right catalog's margin.
 *
 * The parameter rules mirror worker/executors/{periodogram,crossmatch}.ts
 * (the coordinator does not import the worker room); the executors apply them
 * again, with defaults, when they run.
 */
import { existsSync, statSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { crossmatch, hats, tables } from '../astro/index.js';
import { ApiCode, UbatchApiError, type JobSpec, type PartitionRef } from '../protocol/index.js';
import type { PlanUnit } from './jobs.js';
import { batchOptions, batchPartitions, batchUnit, catalogPartitions, openCatalogCached, type Plan, type PlanContext } from './planner.js';

type PlannerResult = Omit<Plan, 'capability'>;

const bad = (code: string, message: string, where: string) => new UbatchApiError(code, message, where);
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

function requireOutput(spec: JobSpec): void {
  if (!spec.output?.path) throw bad(ApiCode.InvalidSpec, 'output.path is required for this kind', '/output/path');
}

function firstLine(err: unknown): string {
  return ((err as Error)?.message ?? String(err)).replace(/\s+/g, ' ').trim().slice(0, 500);
}

const describedColumns = new Map<string, string[]>();

/**
 * Column names of a side's first file (DESCRIBE reads only the footer of a Parquet file, the head of a CSV), cached
 * per file version (path, size, mtime): a planned job's leaves rarely change.
 */
async function describeColumns(files: readonly string[], where: string): Promise<string[]> {
  const file = files[0]!;
  const st = await stat(file).catch(() => undefined);
  const key = st ? `${file}\0${st.size}\0${st.mtimeMs}` : undefined;
  const hit = key ? describedColumns.get(key) : undefined;
  if (hit) return hit;
  // a connection to the process's shared in-memory DuckDB (astro/hats withDuck): creating and
  // closing an instance per call cost ~25 ms each, three calls per submitted job
  const cols = await hats.withDuck(async (conn) => {
    try {
      return (await conn.runAndReadAll(`DESCRIBE SELECT * FROM ${tables.readFilesSql([file])}`)).getRows().map((r) => String(r[0]));
    } catch (err) {
      throw bad(ApiCode.InvalidInput, `cannot read ${file}: ${firstLine(err)}`, where);
    }
  });
  if (key) {
    if (describedColumns.size >= 1000) describedColumns.clear();
    describedColumns.set(key, cols);
  }
  return cols;
}

// ---------------------------------------------------------------- periodogram

const PERIODOGRAM_COLUMNS: Record<string, string> = { id: 'objectId', time: 'mjd', band: 'band', flux: 'flux', flux_err: 'fluxErr', ra: 'ra', dec: 'dec' };

function checkPeriodogramParams(params: Record<string, unknown>): Record<string, string> {
  const known = ['freq', 'bands', 'method', 'normalization', 'top_n', 'multiband', 'min_obs', 'columns', 'save_periodograms', 'periodograms_max_mb', 'rows_per_task', 'partitions_per_task'];
  for (const k of Object.keys(params)) if (!known.includes(k)) throw bad(ApiCode.InvalidSpec, `unknown periodogram parameter ${JSON.stringify(k)} (known: ${known.join(', ')})`, `/params/${k}`);
  const f = params.freq;
  if (f !== undefined && f !== 'auto') {
    if (typeof f !== 'object' || f === null || Array.isArray(f)) throw bad(ApiCode.InvalidSpec, "params.freq must be 'auto' or { min, max, n } or { min?, max?, samples_per_peak?, nyquist_factor? }", '/params/freq');
    const g = f as Record<string, unknown>;
    for (const k of Object.keys(g)) {
      if (!['min', 'max', 'n', 'samples_per_peak', 'nyquist_factor'].includes(k)) throw bad(ApiCode.InvalidSpec, `params.freq has an unknown field ${JSON.stringify(k)}`, `/params/freq/${k}`);
      if (k !== 'n' && !(isNum(g[k]) && (g[k] as number) >= 0)) throw bad(ApiCode.InvalidSpec, `params.freq.${k} must be a finite number >= 0`, `/params/freq/${k}`);
    }
    if (g.n !== undefined) {
      if (!(Number.isInteger(g.n) && (g.n as number) >= 2 && (g.n as number) <= 10_000_000)) throw bad(ApiCode.InvalidSpec, 'params.freq.n must be an integer from 2 to 10000000', '/params/freq/n');
      if (!isNum(g.min) || !isNum(g.max)) throw bad(ApiCode.InvalidSpec, 'params.freq with n needs min and max (cycles per day)', '/params/freq');
      if (g.samples_per_peak !== undefined || g.nyquist_factor !== undefined) throw bad(ApiCode.InvalidSpec, 'params.freq: give either n or samples_per_peak/nyquist_factor, not both', '/params/freq');
    }
    for (const k of ['samples_per_peak', 'nyquist_factor']) if (g[k] !== undefined && !((g[k] as number) > 0)) throw bad(ApiCode.InvalidSpec, `params.freq.${k} must be > 0`, `/params/freq/${k}`);
    if (isNum(g.min) && isNum(g.max) && !(g.max > g.min)) throw bad(ApiCode.InvalidSpec, 'params.freq.max must be greater than params.freq.min', '/params/freq/max');
  }
  if (params.method !== undefined && params.method !== 'fast' && params.method !== 'exact') throw bad(ApiCode.InvalidSpec, "params.method must be 'fast' or 'exact'", '/params/method');
  if (params.normalization !== undefined && !['standard', 'model', 'log', 'psd'].includes(params.normalization as string)) throw bad(ApiCode.InvalidSpec, 'params.normalization must be one of standard, model, log, psd', '/params/normalization');
  if (params.top_n !== undefined && !(Number.isInteger(params.top_n) && (params.top_n as number) >= 1 && (params.top_n as number) <= 100)) throw bad(ApiCode.InvalidSpec, 'params.top_n must be an integer from 1 to 100', '/params/top_n');
  if (params.min_obs !== undefined && !(Number.isInteger(params.min_obs) && (params.min_obs as number) >= 3)) throw bad(ApiCode.InvalidSpec, 'params.min_obs must be an integer >= 3', '/params/min_obs');
  if (params.multiband !== undefined && typeof params.multiband !== 'boolean') throw bad(ApiCode.InvalidSpec, 'params.multiband must be true or false', '/params/multiband');
  if (params.save_periodograms !== undefined && typeof params.save_periodograms !== 'boolean') throw bad(ApiCode.InvalidSpec, 'params.save_periodograms must be true or false', '/params/save_periodograms');
  if (params.periodograms_max_mb !== undefined && !(isNum(params.periodograms_max_mb) && params.periodograms_max_mb > 0)) throw bad(ApiCode.InvalidSpec, 'params.periodograms_max_mb must be a number > 0 (megabytes)', '/params/periodograms_max_mb');
  if (params.bands !== undefined && !(Array.isArray(params.bands) && params.bands.length > 0 && params.bands.every((b) => typeof b === 'string' && b !== ''))) throw bad(ApiCode.InvalidSpec, 'params.bands must be a non-empty list of band names', '/params/bands');
  const columns = { ...PERIODOGRAM_COLUMNS };
  if (params.columns !== undefined) {
    if (typeof params.columns !== 'object' || params.columns === null || Array.isArray(params.columns)) throw bad(ApiCode.InvalidSpec, 'params.columns must map id/time/band/flux/flux_err/ra/dec to column names', '/params/columns');
    for (const [k, v] of Object.entries(params.columns as Record<string, unknown>)) {
      if (!(k in PERIODOGRAM_COLUMNS)) throw bad(ApiCode.InvalidSpec, `params.columns has an unknown field ${JSON.stringify(k)} (known: ${Object.keys(PERIODOGRAM_COLUMNS).join(', ')})`, `/params/columns/${k}`);
      if (typeof v !== 'string' || v === '') throw bad(ApiCode.InvalidSpec, `params.columns.${k} must be a column name`, `/params/columns/${k}`);
      columns[k] = v;
    }
  }
  return columns;
}

/** Default of params.periodograms_max_mb (as worker/executors/periodogram.ts). */
const DEFAULT_PERIODOGRAMS_MAX_MB = 10_240;

/**
 * Size guard of save_periodograms, from the input's row count (Parquet metadata) before
 * anything runs. Float32 powers; a fixed grid of n frequencies costs n per light curve,
 * counted as rows / min_obs light curves (the most there can be); astropy's automatic grid
 * has about samples_per_peak x nyquist_factor / 2 frequencies per point of the light curve
 * (fewer with min/max limits), so rows x that. Per band, plus the pooled row with multiband.
 * Each task checks the exact figure again before it computes.
 */
function checkPeriodogramSize(params: Record<string, unknown>, rows: number): void {
  const limitMb = (params.periodograms_max_mb as number | undefined) ?? DEFAULT_PERIODOGRAMS_MAX_MB;
  const f = params.freq;
  const minObs = (params.min_obs as number | undefined) ?? 10;
  let floats: number;
  let how: string;
  if (f && typeof f === 'object' && (f as { n?: number }).n !== undefined) {
    const n = (f as { n: number }).n;
    floats = n * Math.ceil(rows / minObs);
    how = `${n} frequencies x up to ${Math.ceil(rows / minObs)} light curves (${rows} rows / min_obs ${minObs})`;
  } else {
    const g = (f ?? {}) as { samples_per_peak?: number; nyquist_factor?: number };
    const perPoint = ((g.samples_per_peak ?? 5) * (g.nyquist_factor ?? 5)) / 2;
    floats = perPoint * rows;
    how = `~${perPoint} frequencies per point (automatic grid) x ${rows} rows`;
  }
  if (params.multiband === true) floats *= 2;
  const mb = (floats * 4) / 1e6;
  if (mb > limitMb) {
    throw bad(ApiCode.InvalidSpec, `params.save_periodograms: the full periodograms would take up to ~${mb.toFixed(0)} MB as float32 (${how}${params.multiband === true ? ', x2 with multiband' : ''}), above params.periodograms_max_mb = ${limitMb}; use a coarser grid (freq.n, samples_per_peak), fewer bands or objects, or raise params.periodograms_max_mb`, '/params/save_periodograms');
  }
}

/**
 * periodogram: a task takes consecutive small partitions together until it holds about this many
 * light-curve rows (params.rows_per_task). A task's fixed cost (dispatch, ledger, commit, a DuckDB
 * read and a Parquet write, thread hand-off) is ~0.1 s, against ~15 us of kernel per row with a
 * 10,000-frequency grid (fast method; exact ~50 us): 13 tasks of 15k-20k rows each cost +42 %
 * CPU over the kernel reading the same Parquet (bench/results/science-mesh.md, run 2). There is
 * still at least one task per live worker slot, and one output leaf per input partition.
 */
export const PERIODOGRAM_ROWS_PER_TASK = 1_000_000;

export async function planPeriodogram(spec: JobSpec, ctx: PlanContext = {}): Promise<PlannerResult> {
  const params = (spec.params ?? {}) as Record<string, unknown>;
  const columns = checkPeriodogramParams(params);
  const batching = batchOptions(params, ctx, PERIODOGRAM_ROWS_PER_TASK);
  requireOutput(spec);
  const parts = await catalogPartitions(spec, '/input/catalog');
  const have = await describeColumns(parts[0]!.files, '/input/catalog');
  for (const key of ['id', 'time', 'band', 'flux', 'flux_err']) {
    const col = columns[key]!;
    if (!have.includes(col)) {
      const named = (params.columns as Record<string, unknown> | undefined)?.[key] !== undefined;
      throw bad(ApiCode.InvalidInput, `input ${parts[0]!.files[0]} has no ${key} column ${JSON.stringify(col)} (columns: ${have.join(', ')}); name it in params.columns.${key}`, named ? `/params/columns/${key}` : '/input/catalog');
    }
  }
  const rows = parts.reduce((s, p) => s + (p.rows ?? 100_000), 0);
  if (params.save_periodograms === true) checkPeriodogramSize(params, rows);
  // plain files (order -1) stay one task each; HATS partitions are packed (one leaf each in the output)
  const groups = parts.some((x) => x.order < 0) ? parts.map((x) => [x]) : batchPartitions(parts, batching);
  return { count: groups.length, units: groups.map(batchUnit), hasReduce: false, estimateCoreSeconds: rows * 5e-5 + groups.length * 0.1 };
}

// ---------------------------------------------------------------- crossmatch

interface SideInfo {
  kind: 'hats' | 'file';
  root: string;
  raColumn: string;
  decColumn: string;
  catalog?: hats.HatsCatalog;
}

async function openSide(raw: unknown, where: string, margin: boolean): Promise<SideInfo> {
  if (typeof raw !== 'string' || raw === '') throw bad(ApiCode.InvalidSpec, `${where.slice(1).replace('/', '.')} must be the path of a HATS catalog directory or a .parquet/.csv file`, where);
  const path = resolve(raw);
  if (!existsSync(path)) throw bad(ApiCode.InputNotFound, `input not found: ${path}`, where);
  if (statSync(path).isFile()) {
    if (!/\.(parquet|parq|csv|tsv|csv\.gz)$/i.test(path)) throw bad(ApiCode.InvalidInput, `input file ${path} is neither Parquet nor CSV`, where);
    return { kind: 'file', root: path, raColumn: 'ra', decColumn: 'dec' };
  }
  let catalog: hats.HatsCatalog;
  try {
    catalog = await openCatalogCached(path, { margin, rowCounts: 'auto' });
  } catch (err) {
    throw bad(ApiCode.InvalidInput, `${path} is not a readable HATS catalog: ${firstLine(err)}`, where);
  }
  return { kind: 'hats', root: catalog.root, raColumn: catalog.raColumn, decColumn: catalog.decColumn, catalog };
}

function checkCrossmatchParams(p: Record<string, unknown>): { radius: number; leftId: string; rightId: string; leftColumns: string[]; rightColumns: string[] } {
  const known = ['radius_arcsec', 'k', 'mode', 'left_columns', 'right_columns', 'left_id', 'right_id', 'rows_per_task', 'partitions_per_task'];
  for (const k of Object.keys(p)) if (!known.includes(k)) throw bad(ApiCode.InvalidSpec, `unknown crossmatch parameter ${JSON.stringify(k)} (known: ${known.join(', ')})`, `/params/${k}`);
  const radius = p.radius_arcsec ?? 1;
  if (!isNum(radius) || radius <= 0 || radius > 3600) throw bad(ApiCode.InvalidSpec, 'params.radius_arcsec must be a number > 0 and <= 3600', '/params/radius_arcsec');
  const mode = p.mode ?? 'nearest';
  if (mode !== 'nearest' && mode !== 'all') throw bad(ApiCode.InvalidSpec, "params.mode must be 'nearest' or 'all'", '/params/mode');
  if (p.k !== undefined && !(Number.isInteger(p.k) && (p.k as number) >= 1 && (p.k as number) <= 1000)) throw bad(ApiCode.InvalidSpec, 'params.k must be an integer from 1 to 1000', '/params/k');
  if (mode === 'all' && p.k !== undefined && p.k !== 1) throw bad(ApiCode.InvalidSpec, "params.k conflicts with mode 'all' (every pair within the radius is returned)", '/params/k');
  const list = (v: unknown, where: string): string[] => {
    if (v === undefined) return [];
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string' && x !== '')) throw bad(ApiCode.InvalidSpec, `${where.slice(1).replace('/', '.')} must be a list of column names`, where);
    return v as string[];
  };
  for (const f of ['left_id', 'right_id']) if (p[f] !== undefined && (typeof p[f] !== 'string' || p[f] === '')) throw bad(ApiCode.InvalidSpec, `params.${f} must be a column name`, `/params/${f}`);
  return {
    radius,
    leftId: (p.left_id as string | undefined) ?? 'objectId',
    rightId: (p.right_id as string | undefined) ?? 'source_id',
    leftColumns: list(p.left_columns, '/params/left_columns'),
    rightColumns: list(p.right_columns, '/params/right_columns'),
  };
}

function checkColumns(have: string[], side: 'left' | 'right', id: { name: string; given: boolean }, ra: string, dec: string, extra: string[], inputWhere: string): void {
  if (!have.includes(id.name)) {
    throw bad(ApiCode.InvalidInput, `${side} input has no id column ${JSON.stringify(id.name)} (columns: ${have.join(', ')}); name it in params.${side}_id`, id.given ? `/params/${side}_id` : inputWhere);
  }
  for (const c of [ra, dec]) if (!have.includes(c)) throw bad(ApiCode.InvalidInput, `${side} input has no position column ${JSON.stringify(c)} (columns: ${have.join(', ')})`, inputWhere);
  extra.forEach((c, i) => {
    if (!have.includes(c)) throw bad(ApiCode.InvalidInput, `${side} input has no column ${JSON.stringify(c)} (columns: ${have.join(', ')})`, `/params/${side}_columns/${i}`);
  });
}

const unitPart = (p: { order: number; pixel: number; files: string[] }) => ({ order: p.order, pixel: p.pixel, files: p.files });

/**
 * crossmatch: a task takes consecutive small left partitions together until it holds about this
 * many left rows (params.rows_per_task); its unit lists the right (and margin) partitions any of
 * them needs. A task's fixed cost (dispatch, ledger, commit, schema reads, a Parquet write) is paid
 * per task; a plain-file right side is read and indexed once per task. At least one task per
 * live worker slot; one output leaf per left partition.
 */
export const CROSSMATCH_ROWS_PER_TASK = 1_000_000;

export async function planCrossmatch(spec: JobSpec, ctx: PlanContext = {}): Promise<PlannerResult> {
  const params = (spec.params ?? {}) as Record<string, unknown>;
  const o = checkCrossmatchParams(params);
  const batching = batchOptions(params, ctx, CROSSMATCH_ROWS_PER_TASK);
  requireOutput(spec);
  const input = spec.input ?? {};
  const left = await openSide(input.left, '/input/left', false);
  const right = await openSide(input.right, '/input/right', true);

  // the left partitions (cone/pixel selection applies to the left side)
  const leftParts: PartitionRef[] = left.kind === 'file'
    ? [{ order: -1, pixel: 0, files: [left.root] }]
    : await catalogPartitions({ ...spec, input: { catalog: left.root } }, '/input/left');
  const rightParts = right.catalog ? right.catalog.partitions.filter((p) => p.files.length > 0) : [];
  const margin = right.catalog?.margin;
  const threshold = right.catalog?.marginThresholdArcsec ?? margin?.marginThresholdArcsec;
  if (right.kind === 'hats') {
    if (rightParts.length === 0) throw bad(ApiCode.InvalidInput, `HATS catalog ${right.root} has no data partitions`, '/input/right');
    if (margin) {
      if (threshold === undefined || o.radius > threshold) {
        throw bad(ApiCode.InvalidSpec, `params.radius_arcsec ${o.radius} is larger than the margin threshold of the right catalog's margin cache (${threshold ?? 'unknown'} arcsec, ${margin.root}): pairs across partition edges would be missed; use a radius <= ${threshold ?? 'the threshold'} or build a wider margin`, '/params/radius_arcsec');
      }
    } else if (rightParts.length > 1 && left.kind === 'hats') {
      throw bad(ApiCode.InvalidInput, `HATS catalog ${right.root} has no margin cache: pairs across its partition edges would be missed; build one (e.g. hats-import margin) or give a single Parquet file`, '/input/right');
    }
  }

  // the columns the kernel needs, checked on one leaf of each side
  const leftCols = await describeColumns(leftParts[0]!.files, '/input/left');
  checkColumns(leftCols, 'left', { name: o.leftId, given: params.left_id !== undefined }, left.raColumn, left.decColumn, o.leftColumns, '/input/left');
  const rightSample = right.kind === 'file' ? [right.root] : rightParts[0]!.files;
  const rightCols = await describeColumns(rightSample, '/input/right');
  checkColumns(rightCols, 'right', { name: o.rightId, given: params.right_id !== undefined }, right.raColumn, right.decColumn, o.rightColumns, '/input/right');

  const leftSide = { kind: left.kind, root: left.root, raColumn: left.raColumn, decColumn: left.decColumn };
  const rightOf = (lp: PartitionRef) => {
    if (right.kind === 'file') return { kind: 'file', root: right.root, raColumn: right.raColumn, decColumn: right.decColumn };
    const whole = lp.order < 0;
    // what crossmatchPartition's alignment can touch for this left pixel: overlapping margin
    // partitions, and right partitions overlapping the left pixel or one of those margin partitions
    const mParts = margin ? margin.partitions.filter((m) => m.files.length > 0 && (whole || crossmatch.pixelsOverlap(lp, m))) : [];
    const rParts = whole ? rightParts : rightParts.filter((r) => crossmatch.pixelsOverlap(lp, r) || mParts.some((m) => crossmatch.pixelsOverlap(r, m)));
    return { rParts, mParts, whole };
  };
  const hatsRight = (rParts: PartitionRef[], mParts: PartitionRef[], whole: boolean) => ({
    kind: 'hats',
    root: right.root,
    raColumn: right.raColumn,
    decColumn: right.decColumn,
    partitions: rParts.map(unitPart),
    ...(margin && !whole ? { margin: { root: margin.root, thresholdArcsec: threshold!, partitions: mParts.map(unitPart) } } : {}),
  });
  // a plain-file left is one task; HATS left partitions are packed into tasks (one leaf each)
  const groups = leftParts.some((x) => x.order < 0) ? leftParts.map((x) => [x]) : batchPartitions(leftParts, batching);
  const units: PlanUnit[] = groups.map((group) => {
    const base = batchUnit(group);
    if (right.kind === 'file') return { ...base, unit: { ...(base.unit as object | undefined), left: leftSide, right: rightOf(group[0]!) } };
    // the union of what the group's partitions need, in the catalogs' order (each partition's own alignment picks its part)
    const need = group.map((lp) => rightOf(lp) as { rParts: PartitionRef[]; mParts: PartitionRef[]; whole: boolean });
    const rParts = rightParts.filter((r) => need.some((n) => n.rParts.includes(r)));
    const mParts = margin ? margin.partitions.filter((m) => need.some((n) => n.mParts.includes(m))) : [];
    return { ...base, unit: { ...(base.unit as object | undefined), left: leftSide, right: hatsRight(rParts, mParts, need.some((n) => n.whole)) } };
  });
  const leftRows = leftParts.reduce((s, p) => s + (p.rows ?? 100_000), 0);
  return { count: units.length, units, hasReduce: false, estimateCoreSeconds: leftRows * 5e-6 + units.length * 0.2 };
}
