/**
 * What the three image kinds (image.background, image.stamps, image.inject)
 * share: the per-task unit the planner makes (coordinator/planners-images.ts),
 * the parameter parsers (one per kind, used by the planner at submit and by
 * the executor again at run time, so both agree on defaults and limits),
 * reading a calexp-like FITS image (IMAGE + MASK + VARIANCE), and writing
 * small row sets as Parquet through DuckDB.
 *
 * Parameter errors are `ImageParamError` (code + JSON pointer `where`): the
 * planner turns them into UbatchApiError, the executor into InputError.
 * Apart from file reading/writing it is pure and imports only astro/ and
 * ../errors.js (plain classes), so the planner can use it without pulling in
 * the daemon.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { fits, hats, imaging, wcs as wcsNs } from '../../astro/index.js';
import { InputError, TaskCancelledError } from '../errors.js';

type FitsHeader = fits.FitsHeader;
type TanSipWcs = wcsNs.TanSipWcs;
type Image = imaging.Image;

export class ImageParamError extends Error {
  override name = 'ImageParamError';
  constructor(
    readonly code: string,
    message: string,
    readonly where: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

function fail(message: string, where: string, code = 'invalid_spec'): never {
  throw new ImageParamError(code, message, where);
}

// ---------------------------------------------------------------------------------------
// Units (Task.unit of image tasks)

/** One image HDU of the collection: what the planner copies from the image index. */
export interface ImageRef {
  path: string;
  /** 0-based HDU index of the science image */
  hdu: number;
  visit: number | null;
  detector: number | null;
  band: string | null;
  mjd: number | null;
}

export interface StampTarget {
  id: string;
  ra: number;
  dec: number;
}

/** image.background and image.inject: one image per task. */
export interface SingleImageUnit {
  image: ImageRef;
}

/** image.stamps: every image covering the task's targets (all epochs of each target are in one task). */
export interface StampsUnit {
  /** the sky-map patch the targets sit in (-1 when the job is not grouped by patch) */
  tract: number;
  patch: number;
  images: ImageRef[];
  targets: StampTarget[];
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const numOrNull = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

function imageRefOf(v: unknown, where: string): ImageRef {
  if (!isObj(v) || typeof v.path !== 'string' || typeof v.hdu !== 'number') return fail('task unit has no valid image reference', where, 'invalid_task');
  return { path: v.path, hdu: v.hdu, visit: numOrNull(v.visit), detector: numOrNull(v.detector), band: typeof v.band === 'string' ? v.band : null, mjd: numOrNull(v.mjd) };
}

/** Validates the unit of a background/inject task (it came over the wire as unknown). */
export function singleImageUnit(unit: unknown, taskId: string): SingleImageUnit {
  if (!isObj(unit)) return fail(`task ${taskId} has no image unit`, `task ${taskId}`, 'invalid_task');
  return { image: imageRefOf(unit.image, `task ${taskId}`) };
}

export function stampsUnit(unit: unknown, taskId: string): StampsUnit {
  const where = `task ${taskId}`;
  if (!isObj(unit) || !Array.isArray(unit.images) || !Array.isArray(unit.targets)) return fail(`task ${taskId} has no stamps unit`, where, 'invalid_task');
  const targets = unit.targets.map((t): StampTarget => {
    if (!isObj(t) || typeof t.id !== 'string' || typeof t.ra !== 'number' || typeof t.dec !== 'number') return fail('task unit has an invalid target', where, 'invalid_task');
    return { id: t.id, ra: t.ra, dec: t.dec };
  });
  return { tract: numOrNull(unit.tract) ?? -1, patch: numOrNull(unit.patch) ?? -1, images: unit.images.map((r) => imageRefOf(r, where)), targets };
}

/** A short file-name stem for an image: visit/detector/band when known, else the file name (+ HDU). */
export function imageStem(ref: ImageRef): string {
  if (ref.visit !== null) {
    const det = ref.detector !== null ? `-det${String(ref.detector).padStart(3, '0')}` : '';
    return safeName(`visit${String(ref.visit).padStart(4, '0')}${det}${ref.band ? `-${ref.band}` : ''}`);
  }
  let b = basename(ref.path);
  for (const ext of ['.fits.gz', '.fits.fz', '.fits', '.fit', '.fts', '.fz']) if (b.toLowerCase().endsWith(ext)) b = b.slice(0, -ext.length);
  return safeName(ref.hdu > 1 ? `${b}-hdu${ref.hdu}` : b);
}

/** A string usable as one path component. */
export function safeName(s: string): string {
  const t = s.replace(/[^A-Za-z0-9._+-]+/g, '_').replace(/^\.+/, '_');
  return t === '' ? '_' : t.slice(0, 120);
}

// ---------------------------------------------------------------------------------------
// Parameters

const num = (v: unknown, where: string, lo: number, hi: number, dflt: number, integer = false): number => {
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi || (integer && !Number.isInteger(v))) fail(`${where.slice(1).replaceAll('/', '.')} must be ${integer ? 'an integer' : 'a number'} from ${lo} to ${hi}`, where);
  return v as number;
};
const bool = (v: unknown, where: string, dflt: boolean): boolean => {
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'boolean') fail(`${where.slice(1).replaceAll('/', '.')} must be true or false`, where);
  return v as boolean;
};

/** Image selection that JobSpec.select cannot express: params.bands and params.visits. */
export interface ImageFilterParams {
  bands?: string[];
  visits?: [number, number];
}

export function imageFilterParams(p: Record<string, unknown>): ImageFilterParams {
  const out: ImageFilterParams = {};
  if (p.bands !== undefined) {
    if (!Array.isArray(p.bands) || p.bands.length === 0 || !p.bands.every((b) => typeof b === 'string' && b !== '')) fail('params.bands must be a non-empty list of band names', '/params/bands');
    out.bands = p.bands as string[];
  }
  if (p.visits !== undefined) {
    const v = p.visits;
    if (!Array.isArray(v) || v.length !== 2 || !v.every((x) => typeof x === 'number' && Number.isFinite(x)) || (v[0] as number) > (v[1] as number)) fail('params.visits must be [min, max] (inclusive)', '/params/visits');
    out.visits = [v[0] as number, v[1] as number];
  }
  return out;
}

export interface BackgroundParams extends ImageFilterParams {
  mode: 'mesh' | 'lsb';
  box: number;
  filter: number;
  writeModel: boolean;
  writeMask: boolean;
}

/** image.background params: { mode: mesh|lsb (mesh), box: 64, filter: 3, write_model: false, write_mask: false } */
export function backgroundParams(params: unknown): BackgroundParams {
  const p = isObj(params) ? params : {};
  const mode = p.mode ?? 'mesh';
  if (mode !== 'mesh' && mode !== 'lsb') fail(`params.mode must be "mesh" or "lsb", got ${JSON.stringify(mode)}`, '/params/mode');
  const filter = num(p.filter, '/params/filter', 1, 99, 3, true);
  if (filter % 2 === 0) fail('params.filter must be odd (a median filter over filter×filter boxes)', '/params/filter');
  return {
    mode: mode as 'mesh' | 'lsb',
    box: num(p.box, '/params/box', 4, 4096, 64, true),
    filter,
    writeModel: bool(p.write_model, '/params/write_model', false),
    writeMask: bool(p.write_mask, '/params/write_mask', false),
    ...imageFilterParams(p),
  };
}

export interface StampsParams extends ImageFilterParams {
  /** inline targets (already validated) */
  targets?: StampTarget[];
  targetsFile?: string;
  size: number;
  png: boolean;
  stretch: imaging.PngStretchOptions;
  stack: boolean;
  resample: 'none' | 'sinc';
  /** targets per task at most; a patch with more is split (each object still gets all its epochs in one task) */
  maxTargetsPerTask: number;
  /** drop targets no image covers instead of failing the job */
  skipUncovered: boolean;
}

export const MAX_INLINE_TARGETS = 10_000;

/**
 * image.stamps params: { targets: [{id, ra, dec}] | targets_file: <.parquet|.csv with id, ra, dec>,
 * size: 64, png: true, stretch: {softening, min, max, scale}, stack: true,
 * resample: none|sinc (sinc when stack, so the epochs line up), max_targets_per_task: 1000, skip_uncovered: false }
 */
export function stampsParams(params: unknown): StampsParams {
  const p = isObj(params) ? params : {};
  const hasTargets = p.targets !== undefined;
  const hasFile = p.targets_file !== undefined;
  if (hasTargets === hasFile) fail('give exactly one of params.targets (a list of {id, ra, dec}) or params.targets_file (a .parquet/.csv with id, ra, dec)', hasTargets ? '/params/targets_file' : '/params/targets');
  const out: StampsParams = {
    size: num(p.size, '/params/size', 3, 1024, 64, true),
    png: bool(p.png, '/params/png', true),
    stretch: {},
    stack: bool(p.stack, '/params/stack', true),
    resample: 'none',
    maxTargetsPerTask: num(p.max_targets_per_task, '/params/max_targets_per_task', 1, 100_000, 1000, true),
    skipUncovered: bool(p.skip_uncovered, '/params/skip_uncovered', false),
    ...imageFilterParams(p),
  };
  const rs = p.resample ?? (out.stack ? 'sinc' : 'none');
  if (rs !== 'none' && rs !== 'sinc') fail('params.resample must be "none" (integer-aligned cutouts) or "sinc" (Lanczos-3 shift onto the centre)', '/params/resample');
  out.resample = rs as 'none' | 'sinc';
  if (p.stretch !== undefined) {
    if (!isObj(p.stretch)) fail('params.stretch must be an object {softening, min, max, scale}', '/params/stretch');
    const s = p.stretch as Record<string, unknown>;
    for (const k of Object.keys(s)) if (!['softening', 'min', 'max', 'scale'].includes(k)) fail(`params.stretch.${k} is not a stretch option (softening, min, max, scale)`, `/params/stretch/${k}`);
    if (s.softening !== undefined) out.stretch.softening = num(s.softening, '/params/stretch/softening', 1e-12, 1e12, 1);
    if (s.min !== undefined) out.stretch.min = num(s.min, '/params/stretch/min', -1e30, 1e30, 0);
    if (s.max !== undefined) out.stretch.max = num(s.max, '/params/stretch/max', -1e30, 1e30, 0);
    if (s.scale !== undefined) out.stretch.scale = num(s.scale, '/params/stretch/scale', 1, 16, 1, true);
    if (out.stretch.min !== undefined && out.stretch.max !== undefined && out.stretch.max <= out.stretch.min) fail('params.stretch.max must be above params.stretch.min', '/params/stretch/max');
  }
  if (hasFile) {
    if (typeof p.targets_file !== 'string' || p.targets_file === '') fail('params.targets_file must be the path of a .parquet or .csv file with columns id, ra, dec', '/params/targets_file');
    out.targetsFile = p.targets_file as string;
  } else {
    if (!Array.isArray(p.targets) || p.targets.length === 0) fail('params.targets must be a non-empty list of {id, ra, dec}', '/params/targets');
    const list = p.targets as unknown[];
    if (list.length > MAX_INLINE_TARGETS) fail(`params.targets holds ${list.length} targets; more than ${MAX_INLINE_TARGETS} belong in params.targets_file`, '/params/targets');
    out.targets = list.map((t, i) => targetOf(t, `/params/targets/${i}`, i));
    checkUniqueIds(out.targets, (i) => `/params/targets/${i}`);
  }
  return out;
}

function targetOf(t: unknown, where: string, i: number): StampTarget {
  if (!isObj(t)) return fail('a target must be an object {id, ra, dec}', where);
  const ra = t.ra;
  const dec = t.dec;
  if (typeof ra !== 'number' || !Number.isFinite(ra) || ra < -360 || ra > 720) fail('target ra must be a number of degrees', `${where}/ra`);
  if (typeof dec !== 'number' || !Number.isFinite(dec) || dec < -90 || dec > 90) fail('target dec must be a number of degrees from -90 to 90', `${where}/dec`);
  const id = t.id === undefined || t.id === null ? String(i) : typeof t.id === 'string' || typeof t.id === 'number' || typeof t.id === 'bigint' ? String(t.id) : fail('target id must be a string or a number', `${where}/id`);
  if (id === '') fail('target id must not be empty', `${where}/id`);
  return { id, ra: (((ra as number) % 360) + 360) % 360, dec: dec as number };
}

function checkUniqueIds(targets: StampTarget[], whereOf: (i: number) => string): void {
  const seen = new Map<string, number>();
  targets.forEach((t, i) => {
    const j = seen.get(t.id);
    if (j !== undefined) fail(`target id ${JSON.stringify(t.id)} appears twice (entries ${j} and ${i}); ids name the stamp folders and must be unique`, whereOf(i));
    seen.set(t.id, i);
  });
}

/** Reads params.targets_file (Parquet or CSV with id, ra, dec). */
export async function readTargetsFile(path: string): Promise<StampTarget[]> {
  const where = '/params/targets_file';
  if (!existsSync(path)) fail(`targets file not found: ${path}`, where, 'input_not_found');
  const ext = extname(path).toLowerCase();
  const reader = ext === '.parquet' || ext === '.parq' ? `read_parquet(${hats.sqlString(path)})` : ext === '.csv' || ext === '.tsv' || path.endsWith('.csv.gz') ? `read_csv(${hats.sqlString(path)}, header = true)` : fail(`targets file ${path} must be .parquet or .csv`, where, 'invalid_input');
  let rows: Record<string, unknown>[];
  try {
    rows = await hats.withDuck(async (conn) => {
      const cols = (await conn.runAndReadAll(`DESCRIBE SELECT * FROM ${reader}`)).getRowObjectsJS().map((r) => String(r['column_name']).toLowerCase());
      for (const c of ['ra', 'dec']) if (!cols.includes(c)) fail(`targets file ${path} has no column ${c} (columns: ${cols.join(', ')})`, where, 'invalid_input');
      const id = cols.includes('id') ? 'CAST(id AS VARCHAR)' : cols.includes('objectid') ? 'CAST(objectId AS VARCHAR)' : 'CAST(row_number() OVER () - 1 AS VARCHAR)';
      return (await conn.runAndReadAll(`SELECT ${id} AS id, CAST(ra AS DOUBLE) AS ra, CAST(dec AS DOUBLE) AS dec FROM ${reader}`)).getRowObjectsJS();
    });
  } catch (err) {
    if (err instanceof ImageParamError) throw err;
    return fail(`cannot read targets file ${path}: ${firstLine(err)}`, where, 'invalid_input');
  }
  if (rows.length === 0) fail(`targets file ${path} has no rows`, where, 'invalid_input');
  const targets = rows.map((r, i) => targetOf(r, `${where} (row ${i})`, i));
  checkUniqueIds(targets, (i) => `${where} (row ${i})`);
  return targets;
}

export type InjectSourcesParams = { n: number; magMin: number; magMax: number; seed: number; minSeparationPx: number } | { catalog: string };

export interface InjectParams extends ImageFilterParams {
  sources: InjectSourcesParams;
  /** undefined: from the image header (PSFFWHM, PSFBETA) */
  psf?: imaging.PsfModel;
  matchRadiusPx: number;
  /** bin width, or explicit ascending edges */
  magBins: number | number[];
  writeImages: boolean;
  poisson: boolean;
  thresholdSigma: number;
  seed: number;
}

/**
 * image.inject params: { sources: {n: 200, mag_min: 18, mag_max: 24, seed: 1, min_separation_px: 4×FWHM} | catalog: <.parquet/.csv with ra, dec, mag
 * [, id, kind: star|sersic, n, r_eff_arcsec, axis_ratio, pa_deg]>, psf: {type: gaussian|moffat, fwhm, beta} (default: header PSFFWHM/PSFBETA),
 * match_radius_px: 2, mag_bins: 0.5 | [edges], write_images: false, poisson: true, threshold_sigma: 5 }
 */
export function injectParams(params: unknown): InjectParams {
  const p = isObj(params) ? params : {};
  let sources: InjectSourcesParams;
  if (p.catalog !== undefined && p.sources !== undefined) fail('give params.sources (random stars) or params.catalog (a source list), not both', '/params/catalog');
  if (p.catalog !== undefined) {
    if (typeof p.catalog !== 'string' || p.catalog === '') fail('params.catalog must be the path of a .parquet/.csv with ra, dec, mag', '/params/catalog');
    sources = { catalog: p.catalog as string };
  } else {
    const s = p.sources === undefined ? {} : isObj(p.sources) ? p.sources : fail('params.sources must be an object {n, mag_min, mag_max, seed}', '/params/sources');
    const magMin = num(s.mag_min, '/params/sources/mag_min', 0, 40, 18);
    const magMax = num(s.mag_max, '/params/sources/mag_max', 0, 40, 24);
    if (!(magMax > magMin)) fail('params.sources.mag_max must be above mag_min', '/params/sources/mag_max');
    sources = {
      n: num(s.n, '/params/sources/n', 1, 100_000, 200, true),
      magMin,
      magMax,
      seed: num(s.seed, '/params/sources/seed', 0, 2 ** 31, 1, true),
      minSeparationPx: num(s.min_separation_px, '/params/sources/min_separation_px', 0, 1000, -1),
    };
  }
  let psf: imaging.PsfModel | undefined;
  if (p.psf !== undefined) {
    if (!isObj(p.psf)) fail('params.psf must be {type: gaussian|moffat, fwhm, beta}', '/params/psf');
    const q = p.psf as Record<string, unknown>;
    const type = q.type ?? 'moffat';
    const fwhm = num(q.fwhm, '/params/psf/fwhm', 0.1, 100, Number.NaN);
    if (Number.isNaN(fwhm)) fail('params.psf.fwhm (pixels) is required', '/params/psf/fwhm');
    if (type === 'gaussian') psf = { kind: 'gaussian', fwhm };
    else if (type === 'moffat') {
      const beta = num(q.beta, '/params/psf/beta', 1.01, 100, 3.5);
      psf = { kind: 'moffat', fwhm, beta };
    } else fail('params.psf.type must be "gaussian" or "moffat"', '/params/psf/type');
  }
  let magBins: number | number[] = 0.5;
  if (p.mag_bins !== undefined) {
    if (Array.isArray(p.mag_bins)) {
      const e = p.mag_bins;
      if (e.length < 2 || !e.every((x, i) => typeof x === 'number' && Number.isFinite(x) && (i === 0 || x > (e[i - 1] as number)))) fail('params.mag_bins must be a bin width or at least two ascending edges', '/params/mag_bins');
      magBins = e as number[];
    } else magBins = num(p.mag_bins, '/params/mag_bins', 0.01, 10, 0.5);
  }
  const seed = 'seed' in sources ? sources.seed : num(p.seed, '/params/seed', 0, 2 ** 31, 1, true);
  return {
    sources,
    ...(psf ? { psf } : {}),
    matchRadiusPx: num(p.match_radius_px, '/params/match_radius_px', 0.1, 50, 2),
    magBins,
    writeImages: bool(p.write_images, '/params/write_images', false),
    poisson: bool(p.poisson, '/params/poisson', true),
    thresholdSigma: num(p.threshold_sigma, '/params/threshold_sigma', 0.5, 100, 5),
    seed,
    ...imageFilterParams(p),
  };
}

/** Bin edges covering [lo, hi] for a width, or the explicit edges. */
export function magBinEdges(bins: number | number[], lo: number, hi: number): number[] {
  if (Array.isArray(bins)) return bins;
  const a = Math.floor(lo / bins) * bins;
  const edges: number[] = [];
  for (let e = a; e < hi + bins * 1e-9 || edges.length < 2; e += bins) edges.push(Math.round(e * 1e6) / 1e6);
  if (edges[edges.length - 1]! <= hi) edges.push(Math.round((edges[edges.length - 1]! + bins) * 1e6) / 1e6);
  return edges;
}

// ---------------------------------------------------------------------------------------
// Reading and writing images

export interface Calexp {
  image: Image;
  wcs: TanSipWcs;
  primary: FitsHeader;
  imageHeader: FitsHeader;
  maskHeader?: FitsHeader;
  varianceHeader?: FitsHeader;
  /** header lookups fall back from the image HDU to the primary (MAGZERO, GAIN, PSFFWHM live there in calexps) */
  numeric: imaging.NumericHeader;
}

export class ImageReadError extends Error {
  override name = 'ImageReadError';
  constructor(readonly code: 'input_not_found' | 'invalid_input', message: string, readonly path: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

function toF32(d: fits.FitsData | null): Float32Array | undefined {
  if (d === null) return undefined;
  if (d instanceof Float32Array) return d;
  if (d instanceof BigInt64Array || d instanceof BigUint64Array) return Float32Array.from(d, (v) => Number(v));
  return Float32Array.from(d);
}
function toI32(d: fits.FitsData | null): Int32Array | undefined {
  if (d === null) return undefined;
  if (d instanceof Int32Array) return d;
  if (d instanceof BigInt64Array || d instanceof BigUint64Array) return Int32Array.from(d, (v) => Number(v));
  return Int32Array.from(d);
}

/**
 * Reads the science image at `ref.hdu` plus the file's MASK and VARIANCE planes
 * (found by EXTNAME, when the file has them and they match the image's shape).
 */
export async function readCalexp(ref: ImageRef, signal?: AbortSignal): Promise<Calexp> {
  if (!existsSync(ref.path)) throw new ImageReadError('input_not_found', `image not found: ${ref.path}`, ref.path);
  let layouts: fits.HduLayout[];
  try {
    layouts = await fits.scanFits(ref.path);
  } catch (err) {
    throw new ImageReadError('invalid_input', `${ref.path} is not a readable FITS file: ${firstLine(err)}`, ref.path, { cause: err });
  }
  const nameOf = (l: fits.HduLayout) => (l.header.getString('EXTNAME') ?? '').trim().toUpperCase();
  const img = layouts[ref.hdu];
  if (img === undefined) throw new ImageReadError('invalid_input', `${ref.path} has no HDU ${ref.hdu}`, ref.path);
  const wanted = [ref.hdu];
  const maskL = layouts.find((l) => l.index !== ref.hdu && nameOf(l) === 'MASK');
  const varL = layouts.find((l) => l.index !== ref.hdu && nameOf(l) === 'VARIANCE');
  if (maskL) wanted.push(maskL.index);
  if (varL) wanted.push(varL.index);
  let hdus: fits.FitsHdu[];
  try {
    hdus = await fits.readFits(ref.path, { hdus: wanted, ...(signal ? { signal } : {}) });
  } catch (err) {
    throw new ImageReadError('invalid_input', `cannot read the image planes of ${ref.path} (HDU ${wanted.join(', ')}): ${firstLine(err)}`, ref.path, { cause: err });
  }
  const by = new Map(hdus.map((h) => [h.index, h]));
  const ih = by.get(ref.hdu);
  const data = toF32(ih?.data ?? null);
  if (!ih || !data || ih.shape.length !== 2) throw new ImageReadError('invalid_input', `HDU ${ref.hdu} of ${ref.path} is not a 2-D image`, ref.path);
  const [width, height] = ih.shape as [number, number];
  let wcs: TanSipWcs;
  try {
    wcs = wcsNs.TanSipWcs.fromHeader(ih.header);
  } catch (err) {
    throw new ImageReadError('invalid_input', `HDU ${ref.hdu} of ${ref.path} has no usable TAN/TAN-SIP WCS: ${firstLine(err)}`, ref.path, { cause: err });
  }
  const image: Image = { width, height, data };
  const primary = layouts[0]?.header ?? new fits.FitsHeader();
  const out: Calexp = { image, wcs, primary, imageHeader: ih.header, numeric: { getNumber: (k) => ih.header.getNumber(k) ?? primary.getNumber(k) } };
  const mh = maskL ? by.get(maskL.index) : undefined;
  const mask = toI32(mh?.data ?? null);
  if (mh && mask && mask.length === width * height) {
    image.mask = mask;
    out.maskHeader = mh.header;
  }
  const vh = varL ? by.get(varL.index) : undefined;
  const variance = toF32(vh?.data ?? null);
  if (vh && variance && variance.length === width * height) {
    image.variance = variance;
    out.varianceHeader = vh.header;
  }
  return out;
}

/** Header cards of `h` without structure, checksums or EXTNAME (the writer adds its own). */
export function copyCards(h: FitsHeader | undefined): fits.FitsCard[] {
  if (!h) return [];
  return h.cards.filter((c) => !/^(SIMPLE|XTENSION|BITPIX|NAXIS\d*|EXTEND|PCOUNT|GCOUNT|END|EXTNAME|CHECKSUM|DATASUM|BSCALE|BZERO|BLANK)$/.test(c.key));
}

// ---------------------------------------------------------------------------------------
// Parquet

export type ColumnType = 'VARCHAR' | 'INTEGER' | 'BIGINT' | 'DOUBLE' | 'BOOLEAN';

/**
 * Writes rows as Parquet (zstd) through DuckDB: rows go to a JSON-lines file in
 * `scratchDir`, read back with explicit column types (non-finite numbers become
 * NULL), and copied to `path` via a temporary name.
 */
export async function writeRowsParquet(path: string, columns: ReadonlyArray<readonly [string, ColumnType]>, rows: ReadonlyArray<Record<string, unknown>>, scratchDir: string): Promise<number> {
  await mkdir(dirname(path), { recursive: true });
  await mkdir(scratchDir, { recursive: true });
  const tag = randomBytes(4).toString('hex');
  const jsonl = join(scratchDir, `rows-${tag}.jsonl`);
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${tag}`);
  const clean = (v: unknown): unknown => (typeof v === 'number' && !Number.isFinite(v) ? null : typeof v === 'bigint' ? Number(v) : v);
  try {
    await writeFile(jsonl, rows.map((r) => JSON.stringify(Object.fromEntries(columns.map(([c]) => [c, clean(r[c])])))).join('\n') + '\n');
    const select = columns.map(([c]) => `"${c}"`).join(', ');
    const src =
      rows.length > 0
        ? `read_json(${hats.sqlString(jsonl)}, format = 'newline_delimited', columns = {${columns.map(([c, t]) => `${hats.sqlString(c)}: ${hats.sqlString(t)}`).join(', ')}})`
        : `(SELECT ${columns.map(([c, t]) => `NULL::${t} AS "${c}"`).join(', ')} LIMIT 0)`;
    await hats.withDuck((conn) => conn.run(`COPY (SELECT ${select} FROM ${src}) TO ${hats.sqlString(tmp)} (FORMAT parquet, COMPRESSION zstd)`));
    await rename(tmp, path);
  } finally {
    await rm(jsonl, { force: true });
    await rm(tmp, { force: true });
  }
  return rows.length;
}

export function firstLine(err: unknown): string {
  return ((err as Error)?.message ?? String(err)).split('\n')[0]!.slice(0, 400);
}

/** Lets the event loop run (heartbeats, in-progress acks) between CPU-heavy kernel calls. */
export const yieldToLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

/**
 * Maps what an image executor throws to the worker's task errors: bad
 * parameters, unreadable inputs, all-masked images and missing zero points
 * are InputError (a retry cannot help); an aborted kernel becomes a
 * cancellation (the daemon tells cancel from wall-time by the signal's
 * reason); anything else (a failed write, say) stays retryable.
 */
export function toTaskError(err: unknown, where: string, signal: AbortSignal): unknown {
  if (err instanceof ImageParamError) return new InputError(err.message, err.code, err.where, { cause: err });
  if (err instanceof ImageReadError) return new InputError(err.message, err.code, err.path, { cause: err });
  if (signal.aborted || err instanceof imaging.ImagingAbortedError || err instanceof fits.FitsAbortError) return new TaskCancelledError('cancelled', { cause: err });
  if (err instanceof imaging.ZeroPointError) return new InputError(`${err.message}; give the image a MAGZERO/FLUXMAG0/PHOTCALIB header`, 'no_zero_point', where, { cause: err });
  if (err instanceof imaging.InsufficientDataError) return new InputError(err.message, 'insufficient_data', where, { cause: err });
  if (err instanceof imaging.ImagingOptionError || err instanceof imaging.ImageShapeError) return new InputError(err.message, 'invalid_input', where, { cause: err });
  if (err instanceof imaging.ImagingIoError && !/^cannot write/.test(err.message)) return new InputError(`${err.message}${err.cause ? `: ${firstLine(err.cause)}` : ''}`, 'invalid_input', err.path ?? where, { cause: err });
  if (err instanceof fits.FitsError) return new InputError(`FITS error: ${err.message}`, 'invalid_input', where, { cause: err });
  return err;
}
